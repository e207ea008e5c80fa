//! Label matchers, as in PromQL selectors: `=`, `!=`, `=~`, `!~`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use regex::{Regex, RegexBuilder};

/// Why a matcher cannot be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MatcherError {
    /// The regex does not compile (its message is the regex crate's, as before).
    #[error("{0}")]
    Regex(#[from] regex::Error),
    /// The regexes of matchers alive now (queries in flight, loaded rules) already hold the
    /// process's allowance: a query of many large regexes fails instead of taking the
    /// machine's memory.
    #[error(
        "regular expressions in use take more than {} MiB of compiled size; this one, charged {} KiB, would pass it",
        .allowance >> 20,
        .charge >> 10
    )]
    TooManyLarge { charge: usize, allowance: usize },
}

/// Compiled sizes a regex is tried at, smallest first; it is charged the first it fits:
/// 4 KiB at least, else within four times its size (a failed try stops at its limit, so the
/// tries cost about what the last one does). Most fit the first; the last is the regex
/// crate's own default limit.
const REGEX_TIERS: [usize; 7] = [
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    10 << 20,
];

/// What the compiled regexes of every live matcher may be charged together. A counted
/// repetition compiles to hundreds of times its text (`a{1000}{300}` is 12 bytes and about
/// 10 MB compiled), so without it one request of a thousand such matchers held gigabytes.
const REGEX_ALLOWANCE: usize = 1 << 30;

static REGEX_CHARGED: AtomicUsize = AtomicUsize::new(0);

/// A compiled regex and its charge, given back when the last matcher sharing it is dropped.
#[derive(Debug)]
struct Charged {
    re: Regex,
    charge: usize,
    to: &'static AtomicUsize,
}

impl Drop for Charged {
    fn drop(&mut self) {
        self.to.fetch_sub(self.charge, Ordering::Relaxed);
    }
}

/// Compile `src` at the smallest tier it fits, charged to `to`, which may hold `allowance`.
fn compile_charged(
    src: &str,
    to: &'static AtomicUsize,
    allowance: usize,
) -> Result<Arc<Charged>, MatcherError> {
    let mut last = None;
    for tier in REGEX_TIERS {
        match RegexBuilder::new(src).size_limit(tier).build() {
            Ok(re) => {
                let before = to.fetch_add(tier, Ordering::Relaxed);
                // Dropped right away if over: `Charged::drop` gives the charge back.
                let c = Arc::new(Charged {
                    re,
                    charge: tier,
                    to,
                });
                if before + tier > allowance {
                    return Err(MatcherError::TooManyLarge {
                        charge: tier,
                        allowance,
                    });
                }
                return Ok(c);
            }
            Err(e @ regex::Error::CompiledTooBig(_)) => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.expect("every tier tried").into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(&self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One matcher. Regexes are fully anchored, as Prometheus's are. A missing label matches as
/// the empty string, so `{foo=""}` selects series without `foo`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Arc<Charged>>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Matcher {
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let value = value.into();
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(compile_charged(
                &format!("^(?s:{value})$"),
                &REGEX_CHARGED,
                REGEX_ALLOWANCE,
            )?),
            _ => None,
        };
        Ok(Matcher {
            name: name.into(),
            op,
            value,
            re,
        })
    }

    /// `name="value"`, which cannot fail.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
        }
    }

    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|r| r.re.is_match(v)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|r| r.re.is_match(v)),
        }
    }

    /// Whether this matcher selects series that lack the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name,
            self.op.as_str(),
            vigil_model::labels::quote(&self.value)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored() {
        let m = Matcher::new(MatchOp::Regex, "a", "fo+").unwrap();
        assert!(m.matches("foo"));
        assert!(!m.matches("xfoo"));
        assert!(!m.matches("foox"));
        let n = Matcher::new(MatchOp::NotRegex, "a", "fo+").unwrap();
        assert!(n.matches(""));
    }

    /// Large regexes are charged while they are held: past the allowance a new one fails
    /// with its own error, and dropping them gives the charge back. Syntax errors and regexes
    /// past the largest tier keep the regex crate's messages. (An allowance of its own, so
    /// tests running beside it are not refused.)
    #[test]
    fn large_regexes_are_bounded_together() {
        static POOL: AtomicUsize = AtomicUsize::new(0);
        let last = REGEX_TIERS[REGEX_TIERS.len() - 1];
        let allowance = 3 * last + REGEX_TIERS[4];
        // About 5 MB compiled: charged the 10 MiB tier.
        let big = "^(?s:a{1000}{170})$";
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(compile_charged(big, &POOL, allowance).unwrap());
        }
        assert!(held[0].re.is_match(&"a".repeat(170_000)));
        assert_eq!(held[0].charge, last);
        assert_eq!(POOL.load(Ordering::Relaxed), 3 * last);
        let err = compile_charged(big, &POOL, allowance).unwrap_err();
        assert!(
            matches!(err, MatcherError::TooManyLarge { charge, .. } if charge == last),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "regular expressions in use take more than 31 MiB of compiled size; this one, charged 10240 KiB, would pass it"
        );
        // The refused one gave its charge back; a small one still fits.
        assert_eq!(POOL.load(Ordering::Relaxed), 3 * last);
        let small = compile_charged("^(?s:fo+)$", &POOL, allowance).unwrap();
        assert_eq!(small.charge, REGEX_TIERS[0]);
        held.pop();
        held.push(compile_charged(big, &POOL, allowance).unwrap());
        drop(held);
        drop(small);
        assert_eq!(POOL.load(Ordering::Relaxed), 0);
        // What matchers usually hold fits the first tiers.
        for (re, most) in [
            (".+", REGEX_TIERS[0]),
            ("api|web|db|cache", REGEX_TIERS[0]),
            ("5..", REGEX_TIERS[0]),
            ("\\w+", REGEX_TIERS[2]),
        ] {
            let c = compile_charged(&format!("^(?s:{re})$"), &POOL, allowance).unwrap();
            assert!(c.charge <= most, "{re}: {}", c.charge);
        }
        let e = Matcher::new(MatchOp::Regex, "a", "(").unwrap_err();
        assert!(matches!(e, MatcherError::Regex(_)), "{e}");
        let e = Matcher::new(MatchOp::Regex, "a", "a{1000}{1000}").unwrap_err();
        assert!(e.to_string().contains("exceeds size limit"), "{e}");
    }
}
