//! How `/api/v1/search/*` (`--enable-feature=search-api`) decides which names and values
//! match its `search[]` terms, and scores them, as current Prometheus does (its
//! `web/api/v1/search_filters.go` and `util/strutil`): a substring match scored by where it
//! starts, Jaro-Winkler similarity above a threshold, or a subsequence score that rewards
//! consecutive runs. Positions and lengths count characters, not bytes.

/// The fuzzy algorithm of a search (`fuzz_alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuzzAlg {
    /// A substring match, or with a threshold above 0 Jaro-Winkler similarity (the default).
    JaroWinkler,
    /// Every term character in order, scored by runs and gaps.
    Subsequence,
}

impl FuzzAlg {
    pub const NAMES: [&'static str; 2] = ["jarowinkler", "subsequence"];

    pub fn parse(s: &str) -> Option<FuzzAlg> {
        match s {
            "jarowinkler" => Some(FuzzAlg::JaroWinkler),
            "subsequence" => Some(FuzzAlg::Subsequence),
            _ => None,
        }
    }
}

/// The terms of one search: a value is accepted when any term accepts it, with the best
/// score of those that do.
#[derive(Debug, Clone)]
pub struct Filter {
    terms: Vec<Vec<char>>,
    raw: Vec<String>,
    /// `fuzz_threshold` / 100.
    threshold: f64,
    alg: FuzzAlg,
    case_sensitive: bool,
}

impl Filter {
    /// None when no term is left once empty ones are skipped: everything matches, scored 1.
    pub fn new(
        terms: &[&str],
        fuzz_threshold: u32,
        alg: FuzzAlg,
        case_sensitive: bool,
    ) -> Option<Filter> {
        let raw: Vec<String> = terms
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| {
                if case_sensitive {
                    t.to_string()
                } else {
                    fold(t)
                }
            })
            .collect();
        if raw.is_empty() {
            return None;
        }
        Some(Filter {
            terms: raw.iter().map(|t| t.chars().collect()).collect(),
            raw,
            threshold: f64::from(fuzz_threshold) / 100.0,
            alg,
            case_sensitive,
        })
    }

    /// The value's score if any term accepts it.
    pub fn accept(&self, value: &str) -> Option<f64> {
        let folded;
        let value = if self.case_sensitive {
            value
        } else {
            folded = fold(value);
            &folded
        };
        // The value's characters, made only for the scores that walk them.
        let mut chars: Option<Vec<char>> = None;
        let mut best: Option<f64> = None;
        for (raw, term) in self.raw.iter().zip(&self.terms) {
            if let Some(s) = self.accept_term(raw, term, value, &mut chars) {
                best = Some(best.map_or(s, |b: f64| b.max(s)));
                if s >= 1.0 {
                    break;
                }
            }
        }
        best
    }

    fn accept_term(
        &self,
        raw: &str,
        term: &[char],
        value: &str,
        chars: &mut Option<Vec<char>>,
    ) -> Option<f64> {
        match self.alg {
            FuzzAlg::JaroWinkler => substring(raw, term, value).or_else(|| {
                // At threshold 0 the search is substring-only.
                if self.threshold <= 0.0 {
                    return None;
                }
                // The best score the two lengths allow: a value that cannot reach the
                // threshold (a long one against a short term) is not scored.
                let n = value.chars().count();
                if jaro_winkler_bound(term.len(), n) < self.threshold - 1e-9 {
                    return None;
                }
                let chars = chars.get_or_insert_with(|| value.chars().collect());
                let s = jaro_winkler(term, chars);
                (s >= self.threshold).then_some(s)
            }),
            FuzzAlg::Subsequence => {
                if value.starts_with(raw) {
                    return Some(1.0);
                }
                let chars = chars.get_or_insert_with(|| value.chars().collect());
                let s = subsequence(term, chars);
                // 0 is no match, whatever the threshold.
                (s > 0.0 && s >= self.threshold).then_some(s)
            }
        }
    }
}

/// Lower case as Go's `strings.ToLower` makes it: character by character (no final-sigma
/// rule), each to one character (`İ` to `i`).
fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{130}' => 'i',
            c => c.to_lowercase().next().unwrap_or(c),
        })
        .collect()
}

/// A substring match: 1 at the start, else falling linearly to 0.1 as the match moves to
/// the last place it can start.
fn substring(raw: &str, term: &[char], value: &str) -> Option<f64> {
    let at = value.find(raw)?;
    if at == 0 {
        return Some(1.0);
    }
    let pos = value[..at].chars().count();
    let last = value.chars().count().saturating_sub(term.len());
    if last == 0 {
        return Some(1.0);
    }
    Some(1.0 - 0.9 * pos as f64 / last as f64)
}

/// The highest Jaro-Winkler score strings of `a` and `b` characters can have: every
/// character of the shorter matched, none transposed, a 4-character common prefix.
fn jaro_winkler_bound(a: usize, b: usize) -> f64 {
    let (short, long) = (a.min(b), a.max(b));
    if short == 0 {
        return if long == 0 { 1.0 } else { 0.0 };
    }
    let jaro = (2.0 + short as f64 / long as f64) / 3.0;
    jaro + 0.4 * (1.0 - jaro)
}

/// Jaro-Winkler similarity (prefix scale 0.1, up to 4 characters), in [0, 1].
pub fn jaro_winkler(a: &[char], b: &[char]) -> f64 {
    if a == b {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (s1, s2) = if a.len() > b.len() { (b, a) } else { (a, b) };
    let (l1, l2) = (s1.len(), s2.len());
    let reach = (l2 / 2).saturating_sub(1);
    let mut m1 = vec![false; l1];
    let mut m2 = vec![false; l2];
    let mut matches = 0.0;
    for i in 0..l1 {
        let from = i.saturating_sub(reach);
        let to = (i + reach + 1).min(l2);
        for j in from..to {
            if !m2[j] && s1[i] == s2[j] {
                m1[i] = true;
                m2[j] = true;
                matches += 1.0;
                break;
            }
        }
    }
    if matches == 0.0 {
        return 0.0;
    }
    let mut transpositions = 0.0;
    let mut k = 0;
    for i in 0..l1 {
        if !m1[i] {
            continue;
        }
        while !m2[k] {
            k += 1;
        }
        if s1[i] != s2[k] {
            transpositions += 1.0;
        }
        k += 1;
    }
    let jaro =
        (matches / l1 as f64 + matches / l2 as f64 + (matches - transpositions * 0.5) / matches)
            / 3.0;
    let prefix = s1
        .iter()
        .zip(s2)
        .take(4)
        .take_while(|(x, y)| x == y)
        .count();
    jaro + prefix as f64 * 0.1 * (1.0 - jaro)
}

/// The subsequence score of `pattern` in `text`, in [0, 1] (1 only when equal, 0 when the
/// pattern is not a subsequence): the best over the places the first character matches of
/// the sum of each consecutive run's length squared, less each leading or inner gap and half
/// the trailing one (as fractions of the text's length), over the pattern's length squared.
/// Greedy from each start, as Prometheus's.
pub fn subsequence(pattern: &[char], text: &[char]) -> f64 {
    if pattern.is_empty() {
        return 1.0;
    }
    if text.is_empty() || pattern.len() > text.len() {
        return 0.0;
    }
    if pattern == text {
        return 1.0;
    }
    let n = text.len() as f64;
    let from_start = |start: usize| -> Option<f64> {
        let (mut p, mut i) = (0, start);
        let mut score = 0.0;
        let mut prev_to: Option<usize> = None;
        while i < text.len() && p < pattern.len() {
            if text[i] != pattern[p] {
                i += 1;
                continue;
            }
            let from = i;
            p += 1;
            i += 1;
            while i < text.len() && p < pattern.len() && text[i] == pattern[p] {
                p += 1;
                i += 1;
            }
            let to = i - 1;
            let gap = match prev_to {
                None => from,
                Some(t) => from - t - 1,
            };
            score -= gap as f64 / n;
            let size = (to - from + 1) as f64;
            score += size * size;
            prev_to = Some(to);
        }
        if p < pattern.len() {
            return None;
        }
        let trailing = text.len() - 1 - prev_to.unwrap_or(0);
        Some(score - trailing as f64 / n * 0.5)
    };
    let mut best: Option<f64> = None;
    for (start, c) in text[..=text.len() - pattern.len()].iter().enumerate() {
        if *c != pattern[0] {
            continue;
        }
        // No later start can complete what this one could not.
        let Some(s) = from_start(start) else { break };
        best = Some(best.map_or(s, |b: f64| b.max(s)));
    }
    best.map_or(0.0, |b| b / (pattern.len() * pattern.len()) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    fn one(term: &str, alg: FuzzAlg, threshold: u32, value: &str) -> Option<f64> {
        Filter::new(&[term], threshold, alg, true)
            .unwrap()
            .accept(value)
    }

    /// Scores worked out by hand from the definitions (and Prometheus's documented example:
    /// "goroutine" in "go_goroutines" scores 0.325).
    #[test]
    fn substring_scores_fall_with_the_match_position() {
        let jw = FuzzAlg::JaroWinkler;
        assert_eq!(one("go", jw, 0, "go_goroutines"), Some(1.0));
        let s = one("goroutine", jw, 0, "go_goroutines").unwrap();
        assert!((s - 0.325).abs() < 1e-12, "{s}");
        // The last place it can start scores 0.1.
        let s = one("es", jw, 0, "go_goroutines").unwrap();
        assert!((s - 0.1).abs() < 1e-12, "{s}");
        assert_eq!(one("xyz", jw, 0, "go_goroutines"), None);
        // Characters, not bytes: "é" is one.
        let s = one("b", jw, 0, "éab").unwrap();
        assert!((s - (1.0 - 0.9 * 2.0 / 2.0)).abs() < 1e-12, "{s}");
    }

    #[test]
    fn jaro_winkler_as_defined() {
        // The textbook pairs.
        let s = jaro_winkler(&c("MARTHA"), &c("MARHTA"));
        assert!((s - 0.961_111_111_111_111_1).abs() < 1e-12, "{s}");
        let s = jaro_winkler(&c("DIXON"), &c("DICKSONX"));
        assert!((s - 0.813_333_333_333_333_3).abs() < 1e-12, "{s}");
        assert_eq!(jaro_winkler(&c("abc"), &c("abc")), 1.0);
        assert_eq!(jaro_winkler(&c("abc"), &c("xyz")), 0.0);
        // Only above a threshold, and only when the substring did not match.
        let jw = FuzzAlg::JaroWinkler;
        assert_eq!(one("MARHTA", jw, 0, "MARTHA"), None);
        assert!(one("MARHTA", jw, 96, "MARTHA").is_some());
        assert_eq!(one("MARHTA", jw, 97, "MARTHA"), None);
    }

    #[test]
    fn subsequence_rewards_runs_and_penalises_gaps() {
        // "abc" in "abc": equal.
        assert_eq!(subsequence(&c("abc"), &c("abc")), 1.0);
        // "ac" in "abc": runs a, c (1 + 1), inner gap 1/3: (2 - 1/3) / 4.
        let s = subsequence(&c("ac"), &c("abc"));
        assert!((s - (2.0 - 1.0 / 3.0) / 4.0).abs() < 1e-12, "{s}");
        // "bc" in "abcd": leading gap 1/4, run 2 (4), trailing 1/8: (4 - 0.25 - 0.125) / 4.
        let s = subsequence(&c("bc"), &c("abcd"));
        assert!((s - (4.0 - 0.25 - 0.125) / 4.0).abs() < 1e-12, "{s}");
        // The best start wins: "ab" in "axab" from 2 (leading 2/4, run 4) beats from 0.
        let s = subsequence(&c("ab"), &c("axab"));
        assert!((s - (4.0 - 0.5) / 4.0).abs() < 1e-12, "{s}");
        assert_eq!(subsequence(&c("ba"), &c("ab")), 0.0);
        let sub = FuzzAlg::Subsequence;
        // A prefix scores 1; a threshold drops the weaker.
        assert_eq!(one("go_g", sub, 0, "go_goroutines"), Some(1.0));
        assert!(one("ggr", sub, 0, "go_goroutines").is_some());
        assert_eq!(one("ggr", sub, 90, "go_goroutines"), None);
    }

    /// The bound that lets a value skip Jaro-Winkler is never below a score reached.
    #[test]
    fn jaro_winkler_bound_holds() {
        let words = [
            "a",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "go_goroutines",
            "process_cpu_seconds_total",
            "MARTHA",
            "MARHTA",
            "xyzzy",
            "aaaaaaaaaaaaaaaaaaaa",
            "http_requests_total",
        ];
        for a in words {
            for b in words {
                let s = jaro_winkler(&c(a), &c(b));
                let bound = jaro_winkler_bound(a.chars().count(), b.chars().count());
                assert!(s <= bound + 1e-12, "{a} {b}: {s} > {bound}");
            }
        }
    }

    /// Go's case folding: one character for one, no final-sigma rule.
    #[test]
    fn folds_as_go_does() {
        assert_eq!(fold("ΟΔΟΣ"), "οδοσ");
        assert_eq!(fold("İSTANBUL"), "istanbul");
        assert_eq!(fold("Go_Goroutines"), "go_goroutines");
    }

    #[test]
    fn terms_or_together_and_case_folds_on_request() {
        let f = Filter::new(&["", "zzz", "GO"], 0, FuzzAlg::JaroWinkler, false).unwrap();
        assert_eq!(f.accept("go_goroutines"), Some(1.0));
        assert_eq!(f.accept("up"), None);
        let f = Filter::new(&["GO"], 0, FuzzAlg::JaroWinkler, true).unwrap();
        assert_eq!(f.accept("go_goroutines"), None);
        assert!(Filter::new(&["", ""], 0, FuzzAlg::JaroWinkler, true).is_none());
    }
}
