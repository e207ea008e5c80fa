//! Hostile query texts: deep nesting of every construct, long chains and huge inputs. Each one
//! is answered or refused with a parse error; none may overflow the stack or take unbounded
//! memory. Runs on the test harness's ordinary 2 MiB thread stacks, like the server's threads.

use vigil_model::Labels;
use vigil_promql::limits::{MAX_NESTING, MAX_NODES};
use vigil_promql::{Engine, Value, parse, pretty::pretty};
use vigil_storage::{MemoryStorage, Storage};

fn storage() -> MemoryStorage {
    let s = MemoryStorage::default();
    let mut app = s.appender();
    app.append(
        0,
        &Labels::from_pairs([("__name__", "up"), ("job", "a")]),
        0,
        1.0,
    )
    .unwrap();
    app.commit().unwrap();
    s
}

/// Parse, evaluate at t=0, print and format: the value, or the first error.
fn run(q: &str) -> Result<Value, String> {
    let e = parse(q).map_err(|e| e.to_string())?;
    // Printing and formatting walk the whole tree too.
    let printed = e.to_string();
    assert!(!printed.is_empty());
    let _ = pretty(&e);
    let _ = vigil_promql::ast::Expr::value_type(&e);
    Engine::default()
        .instant(&storage(), &e, 0)
        .map_err(|e| e.to_string())
}

fn scalar(v: Result<Value, String>) -> f64 {
    match v {
        Ok(Value::Scalar(s)) => s.v,
        other => panic!("expected a scalar, got {other:?}"),
    }
}

fn vector_len(v: Result<Value, String>) -> usize {
    match v {
        Ok(Value::Vector(v)) => v.len(),
        other => panic!("expected a vector, got {other:?}"),
    }
}

#[test]
fn the_four_queries_prometheus_answers_are_answered() {
    // 2,000 nested parentheses.
    let q = format!("{}1{}", "(".repeat(2000), ")".repeat(2000));
    assert_eq!(scalar(run(&q)), 1.0);
    // 10,000 unary minus signs (an even number: the value is unchanged).
    let q = format!("{}up", "-".repeat(10_000));
    assert_eq!(vector_len(run(&q)), 1);
    let q = format!("{}1", "-".repeat(10_000));
    assert_eq!(scalar(run(&q)), 1.0);
    // 50,000 chained `+1`.
    let q = format!("1{}", "+1".repeat(50_000));
    assert_eq!(scalar(run(&q)), 50_001.0);
    // 3,000 nested `sum(`.
    let q = format!("{}up{}", "sum(".repeat(3000), ")".repeat(3000));
    assert_eq!(vector_len(run(&q)), 1);
}

#[test]
fn deep_nesting_of_every_construct_is_answered_below_the_limit() {
    let n = 2000;
    let cases = [
        format!("{}up{}", "abs(".repeat(n), ")".repeat(n)),
        format!("{}up{}", "topk(1, ".repeat(n), ")".repeat(n)),
        format!(
            "{}up{}",
            "label_replace(".repeat(n),
            r#", "a", "b", "c", "d")"#.repeat(n)
        ),
        format!("{}up{}", "(up + ".repeat(n), ")".repeat(n)),
        format!("{}up{}", "sum(rate((".repeat(200), ")[5m:1m]))".repeat(200)),
        format!("{}up{}", "(up or ".repeat(n), ")".repeat(n)),
        "2 ^ ".repeat(n) + "1",
        format!("{}1{}", "scalar(vector(".repeat(n), "))".repeat(n)),
    ];
    for q in &cases {
        let r = run(q);
        assert!(r.is_ok(), "{}...: {r:?}", &q[..40]);
    }
}

#[test]
fn long_chains_of_every_operator_are_answered() {
    for op in [
        "+", "-", "*", "/", "%", "atan2", "==bool", "or", "and", "unless",
    ] {
        let q = format!("up{}", format!(" {op} up").repeat(40_000));
        let r = run(&q);
        assert!(r.is_ok(), "{op}: {r:?}");
    }
}

#[test]
fn nesting_past_the_limit_is_a_parse_error_naming_it() {
    let n = MAX_NESTING + 1;
    for q in [
        format!("{}1{}", "(".repeat(n), ")".repeat(n)),
        format!("{}up", "-".repeat(n)),
        format!("{}up{}", "sum(".repeat(n), ")".repeat(n)),
        format!("{}up{}", "abs(".repeat(n), ")".repeat(n)),
        format!("{}up{}", "(up + ".repeat(n), ")".repeat(n)),
    ] {
        let err = parse(&q).expect_err("refused");
        assert!(
            err.to_string()
                .contains(&format!("more than {MAX_NESTING} levels")),
            "{err}"
        );
    }
    // Unbalanced: the lexer refuses it before the parser starts.
    let err = parse(&"(".repeat(500_000)).expect_err("refused");
    assert!(
        err.to_string().contains("unclosed left parenthesis"),
        "{err}"
    );
}

#[test]
fn ten_megabyte_queries_are_refused_or_answered_quickly() {
    let ten_mb = 10 << 20;
    // Too many tokens: refused by the lexer, before any tree is built.
    for q in [format!("1{}", "+1".repeat(ten_mb / 2)), "(".repeat(ten_mb)] {
        let err = parse(&q).expect_err("refused");
        assert!(
            err.to_string().contains("more than 1000000 tokens"),
            "{err}"
        );
    }
    // Too many operators.
    let q = format!("1{}", "+1".repeat(300_000));
    let err = parse(&q).expect_err("refused");
    assert!(
        err.to_string()
            .contains(&format!("more than {MAX_NODES} operators")),
        "{err}"
    );
    // Too many tokens in one selector.
    let q = format!("up{{{}}}", r#"a="b","#.repeat(ten_mb / 6));
    let err = parse(&q).expect_err("refused");
    assert!(err.to_string().contains("tokens"), "{err}");
    // One huge label value and one huge regular expression: answered (no series match).
    let q = format!(r#"up{{job="{}"}}"#, "x".repeat(ten_mb));
    assert_eq!(vector_len(run(&q)), 0);
    let q = format!(r#"up{{job=~"{}"}}"#, "x".repeat(ten_mb));
    match parse(&q) {
        Ok(e) => match Engine::default().instant(&storage(), &e, 0) {
            Ok(Value::Vector(v)) => assert!(v.is_empty()),
            other => panic!("a huge regex: {other:?}"),
        },
        // The regex engine's own size limit.
        Err(e) => assert!(e.to_string().contains("regexp"), "{e}"),
    }
    // A huge comment and whitespace.
    let q = format!("# {}\n up", "c".repeat(ten_mb));
    assert_eq!(vector_len(run(&q)), 1);
    // Many arguments.
    let q = format!("sort_by_label(up{})", r#", "a""#.repeat(100_000));
    assert!(run(&q).is_ok());
}

#[test]
fn formatting_a_huge_answer_is_refused_not_built() {
    // Every level of a deep split expression is indented: the answer grows with the square of
    // the depth.
    let m = r#"a_long_metric_name_to_force_splitting_of_every_level{label="some value here"}"#;
    let q = format!("{}{m}{}", "sum(".repeat(15_000), ")".repeat(15_000));
    let e = parse(&q).unwrap();
    assert_eq!(
        pretty(&e).unwrap_err().to_string(),
        "the formatted query would be longer than 16777216 bytes"
    );
    let q = format!("{m}{}", format!(" + {m}").repeat(20_000));
    assert!(pretty(&parse(&q).unwrap()).is_err());
    // A long chain whose parts fit: fine.
    let q = format!("1{}", "+1".repeat(1000));
    let out = pretty(&parse(&q).unwrap()).unwrap();
    assert!(out.lines().count() > 100);
}

#[test]
fn absurd_ranges_steps_and_timestamps_are_errors_or_answers() {
    let refused = [
        ("rate(up[300y])", "1:9: parse error: duration out of range"),
        (
            "up[99999999999999999999y]",
            "1:4: parse error: duration out of range",
        ),
        (
            "up offset -300000000y",
            "1:12: parse error: duration out of range",
        ),
        (
            "up @ -9223372036854775808",
            "1:1: parse error: timestamp out of bounds for @ modifier: -9223372036854775808.000000",
        ),
        (
            "up @ 1e30",
            "1:1: parse error: timestamp out of bounds for @ modifier: 1000000000000000019884624838656.000000",
        ),
        // A subquery step of 1ms over a year: more steps than samples allowed, refused before
        // anything is allocated.
        (
            "count_over_time(up[1y:1ms])",
            "query processing would load too many samples into memory in query execution",
        ),
        (
            "quantile_over_time(0.5, rate(up[5m])[20y:1ms])",
            "query processing would load too many samples into memory in query execution",
        ),
    ];
    for (q, want) in refused {
        assert_eq!(run(q).unwrap_err(), want, "{q}");
    }
    // Far-away times are clamped, not overflowed: no data there.
    for q in [
        "up @ 1e18",
        "up @ -1e18 offset 292y",
        "rate(up[292y] @ 1e15)",
        "timestamp(up offset -292y)",
        "predict_linear(up[5m], 1e308)",
        "count_over_time(up[5m:0s])",
    ] {
        assert!(run(q).is_ok(), "{q}: {:?}", run(q));
    }
}

#[test]
fn durations_written_as_seconds_are_bounded_too() {
    for q in ["up[1e30]", "up offset 1e30", "up[5m:1e30]"] {
        assert!(run(q).unwrap_err().contains("duration out of range"), "{q}");
    }
}

#[test]
fn subquery_steps_count_against_max_samples_even_without_data() {
    // `vector(1)` loads no sample, yet every subquery step takes a slot: two subqueries of
    // 601 steps each are over a budget of 1,000, one is not.
    let engine = Engine {
        max_samples: 1000,
        ..Engine::default()
    };
    let one = parse("count_over_time(vector(1)[600s:1s])").unwrap();
    assert!(engine.instant(&storage(), &one, 600_000).is_ok());
    let two =
        parse("count_over_time(vector(1)[600s:1s]) + count_over_time(vector(1)[600s:1s])").unwrap();
    assert_eq!(
        engine
            .instant(&storage(), &two, 600_000)
            .unwrap_err()
            .to_string(),
        "query processing would load too many samples into memory in query execution"
    );
}

/// `--query.max-samples` bounds the samples held at once, as Prometheus's engine counts them:
/// a range function over many series holds one series' window at a time (plus its results),
/// so it answers where the series together are over the limit; a range selector returned as
/// it is, or one series alone over the limit, still fails.
#[test]
fn max_samples_bounds_what_is_held_not_what_is_read() {
    let s = MemoryStorage::default();
    let mut app = s.appender();
    for i in 0..20 {
        let l = Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]);
        for k in 0..60 {
            app.append(0, &l, k * 1000, k as f64).unwrap();
        }
    }
    let big = Labels::from_pairs([("__name__", "big")]);
    for k in 0..300 {
        app.append(0, &big, k * 1000, 1.0).unwrap();
    }
    app.commit().unwrap();
    let engine = Engine {
        max_samples: 200,
        ..Engine::default()
    };
    let at = 299_000;
    let too_many = "query processing would load too many samples into memory in query execution";
    for q in [
        "count_over_time(m[5m])",
        "sum(rate(m[5m]))",
        "sum by (i) (max_over_time(m[5m]))",
    ] {
        let v = engine.instant(&s, &parse(q).unwrap(), at);
        assert!(v.is_ok(), "{q}: 1,200 samples read, at most 61 held: {v:?}");
    }
    for q in ["m[5m]", "count_over_time(big[5m])"] {
        let e = engine.instant(&s, &parse(q).unwrap(), at).unwrap_err();
        assert_eq!(e.to_string(), too_many, "{q}");
    }
}

/// Storage whose series come back with freshly decoded labels, as a block's do (the
/// in-memory storage hands out references to the labels it keeps).
struct Decoding(MemoryStorage);

struct DecodingQuerier<'a>(Box<dyn vigil_storage::Querier + 'a>);

impl Storage for Decoding {
    fn appender(&self) -> Box<dyn vigil_storage::Appender + '_> {
        self.0.appender()
    }
    fn querier(
        &self,
        mint: i64,
        maxt: i64,
    ) -> Result<Box<dyn vigil_storage::Querier + '_>, vigil_storage::StorageError> {
        Ok(Box::new(DecodingQuerier(self.0.querier(mint, maxt)?)))
    }
    fn exemplars(
        &self,
        mint: i64,
        maxt: i64,
        sets: &[Vec<vigil_storage::Matcher>],
    ) -> Result<Vec<vigil_storage::SeriesExemplars>, vigil_storage::StorageError> {
        self.0.exemplars(mint, maxt, sets)
    }
}

impl vigil_storage::Querier for DecodingQuerier<'_> {
    fn select(
        &self,
        ms: &[vigil_storage::Matcher],
    ) -> Result<vigil_storage::SeriesSet<'_>, vigil_storage::StorageError> {
        Ok(Box::new(self.0.select(ms)?.map(|mut s| {
            s.labels = Labels::from_pairs(
                s.labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect::<Vec<_>>(),
            );
            s
        })))
    }
    fn label_names(
        &self,
        ms: &[vigil_storage::Matcher],
    ) -> Result<Vec<String>, vigil_storage::StorageError> {
        self.0.label_names(ms)
    }
    fn label_values(
        &self,
        name: &str,
        ms: &[vigil_storage::Matcher],
    ) -> Result<Vec<String>, vigil_storage::StorageError> {
        self.0.label_values(name, ms)
    }
}

/// `--query.max-bytes` counts the series' labels as well as their samples where the query
/// holds its own copy: a selection of one-sample series with large label sets, decoded
/// afresh, is refused although it is far below any sample limit, and the same query passes
/// with room to spare. Labels shared with storage cost the query nothing and are not charged.
#[test]
fn max_bytes_counts_label_sets_not_only_samples() {
    let s = Decoding(MemoryStorage::default());
    let mut app = s.appender();
    let fat = "x".repeat(1000);
    for i in 0..100 {
        let l = Labels::from_pairs([
            ("__name__", "wide".to_string()),
            ("i", i.to_string()),
            ("blob", fat.clone()),
        ]);
        app.append(0, &l, 0, 1.0).unwrap();
    }
    app.commit().unwrap();
    let q = parse("count(wide)").unwrap();
    let tight = Engine {
        max_bytes: 50_000,
        ..Engine::default()
    };
    let e = tight.instant(&s, &q, 0).unwrap_err().to_string();
    assert!(
        e.contains("more than 50000 bytes") && e.contains("--query.max-bytes"),
        "{e}"
    );
    // 100 samples are nowhere near the sample limit: the labels are what count.
    assert!(100 < Engine::default().max_samples);
    let roomy = Engine {
        max_bytes: 10_000_000,
        ..Engine::default()
    };
    assert!(roomy.instant(&s, &q, 0).is_ok());
    for q in ["count_over_time(wide[5m])", "sum(rate(wide[5m]))"] {
        let q = parse(q).unwrap();
        assert!(
            tight.instant(&s, &q, 0).is_err(),
            "range selections count too"
        );
    }
    // The same series read by reference (the head's labels): only handles and samples.
    for q in ["count(wide)", "count_over_time(wide[5m])"] {
        let q = parse(q).unwrap();
        assert!(tight.instant(&s.0, &q, 0).is_ok(), "shared labels charged");
    }
}
