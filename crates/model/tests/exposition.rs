//! Behaviour of the exposition parsers, modelled on Prometheus's promparse and
//! openmetricsparse tests (own data, same expectations and error wording).

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::Cell;

use vigil_model::Labels;
use vigil_model::exposition::{Entry, Format, MetricType, ParseError, Parser, SampleEntry};

// ---------------------------------------------------------------------------------------------
// Allocation counting (per thread, so parallel tests do not disturb each other).

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is passed to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller upholds `alloc`'s contract, which is forwarded as it is.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with layout `l` (every allocation goes there).
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: as `dealloc`: `p` and `l` are System's, and the caller upholds the rest.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// All entries, asserting on the way that every sample's `series` is a slice of the input
/// and its labels can be read back.
fn parse(input: &[u8], f: Format) -> Result<Vec<Entry<'_>>, ParseError> {
    let out: Result<Vec<_>, _> = Parser::new(input, f).collect();
    if let Ok(v) = &out {
        for e in v {
            if let Entry::Sample(s) = e {
                check_sample(input, s);
            }
        }
    }
    out
}

fn ok(input: &str, f: Format) -> Vec<Entry<'_>> {
    parse(input.as_bytes(), f).unwrap_or_else(|e| panic!("{input:?}: {e}"))
}

/// The single error of an input (the parser stops after it).
fn err(input: &[u8], f: Format) -> ParseError {
    let mut p = Parser::new(input, f);
    for e in p.by_ref() {
        if let Err(e) = e {
            assert!(
                p.next().is_none(),
                "parser went on after an error: {input:?}"
            );
            return e;
        }
    }
    panic!("no error for {:?}", String::from_utf8_lossy(input));
}

fn within(input: &[u8], s: &str) -> bool {
    let (b, p) = (input.as_ptr() as usize, s.as_ptr() as usize);
    p >= b && p + s.len() <= b + input.len()
}

fn check_sample(input: &[u8], s: &SampleEntry<'_>) {
    assert!(
        within(input, s.series),
        "series {:?} not in input",
        s.series
    );
    // A name is borrowed from the input unless it was quoted with escapes; a classic name
    // outside braces starts the series' text.
    if let Cow::Borrowed(n) = &s.name {
        assert!(within(input, n));
    }
    assert!(!s.name.is_empty());
    if !s.series.starts_with('{') {
        assert!(s.series.starts_with(&*s.name));
    }
    let l = s.to_labels();
    assert_eq!(l.metric_name(), Some(&*s.name));
    for (n, v) in s.labels() {
        assert!(!n.is_empty(), "{n:?}");
        if let Cow::Borrowed(n) = n {
            assert!(within(input, n));
        }
        if let Cow::Borrowed(v) = v {
            assert!(within(input, v));
        }
    }
    if let Some(e) = &s.exemplar {
        for (n, _) in e.labels() {
            assert!(!n.is_empty(), "{n:?}");
        }
    }
}

fn labels_of(s: &SampleEntry<'_>) -> Vec<(String, String)> {
    s.labels()
        .map(|(n, v)| (n.to_string(), v.into_owned()))
        .collect()
}

fn sample<'e, 'a>(e: &'e Entry<'a>) -> &'e SampleEntry<'a> {
    match e {
        Entry::Sample(s) => s,
        other => panic!("not a sample: {other:?}"),
    }
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// A compact rendering of entries for whole-input comparisons.
fn render(entries: &[Entry<'_>]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e {
            Entry::Help { family, help } => format!("HELP {family} {help:?}"),
            Entry::Type { family, kind } => format!("TYPE {family} {}", kind.as_str()),
            Entry::Unit { family, unit } => format!("UNIT {family} {unit:?}"),
            Entry::Histogram(h) => format!("HISTOGRAM {}", h.series),
            Entry::Sample(s) => {
                let mut r = format!("{} {:?} {:?}", s.to_labels(), s.value, s.timestamp_ms);
                if let Some(x) = &s.exemplar {
                    let l = Labels::from_pairs(x.labels().map(|(n, v)| (n, v.into_owned())));
                    r += &format!(" # {l} {:?} {:?}", x.value, x.timestamp_ms);
                }
                r
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Text format 0.0.4.

#[test]
fn text_whole_document() {
    let input = "# HELP rpc_latency_seconds How long calls take.\n\
# \tTYPE rpc_latency_seconds summary\n\
rpc_latency_seconds{quantile=\"0\"} 1.5e-05\n\
rpc_latency_seconds{quantile=\"0.5\",} 2.25e-05\n\
rpc_latency_seconds{quantile=\"0.9\",svc=\"x\"} 3e-05\n\
rpc_latency_seconds{quantile=\"0.99\", svc=\"x\"} 4e-05\n\
rpc_latency_seconds{ quantile=\"1\", svc=\"x\"} 5e-05\n\
# Hnot help, just a comment\n\
#\n\
#comment without a blank\n\
temperature{Room=\"7\",floor=\"2\"} 21\n\
# comment with \\n and \\ inside\n\
# HELP nohelp_a\n\
# HELP nohelp_b \n\
rpc_latency_seconds{ quantile=\"1\", svc=\"y\" } 6e-05\n\
rpc_latency_seconds { quantile=\"1\", svc=\"z\" } 7e-05\n\
rpc_latency_seconds { quantile= \"1\", svc= \"w\", } 8e-05\n\
rpc_latency_seconds { quantile = \"1\" , svc = \"v\" } 9e-05\n\
rpc_latency_seconds_count 42\n\
job:requests:rate1m{code_class=\"2xx\"}\t3.5\n\
\n\
   \t\n\
# HELP open_fds Open file descriptors.\n\
# TYPE open_fds gauge\n\
open_fds 17  \t1700000000000\n\
_underscored_metric 1\n\
quoted{_under=\"x\"} 1\n\
quoted{q=\"\\\"hi\\\"\"} 2\n\
  indented 3\n\
no_final_newline 4";
    let e = ok(input, Format::Text);
    assert_eq!(
        render(&e),
        [
            "HELP rpc_latency_seconds \"How long calls take.\"",
            "TYPE rpc_latency_seconds summary",
            "rpc_latency_seconds{quantile=\"0\"} 1.5e-5 None",
            "rpc_latency_seconds{quantile=\"0.5\"} 2.25e-5 None",
            "rpc_latency_seconds{quantile=\"0.9\", svc=\"x\"} 3e-5 None",
            "rpc_latency_seconds{quantile=\"0.99\", svc=\"x\"} 4e-5 None",
            "rpc_latency_seconds{quantile=\"1\", svc=\"x\"} 5e-5 None",
            "temperature{Room=\"7\", floor=\"2\"} 21.0 None",
            "HELP nohelp_a \"\"",
            "HELP nohelp_b \"\"",
            "rpc_latency_seconds{quantile=\"1\", svc=\"y\"} 6e-5 None",
            "rpc_latency_seconds{quantile=\"1\", svc=\"z\"} 7e-5 None",
            "rpc_latency_seconds{quantile=\"1\", svc=\"w\"} 8e-5 None",
            "rpc_latency_seconds{quantile=\"1\", svc=\"v\"} 9e-5 None",
            "rpc_latency_seconds_count{} 42.0 None",
            "job:requests:rate1m{code_class=\"2xx\"} 3.5 None",
            "HELP open_fds \"Open file descriptors.\"",
            "TYPE open_fds gauge",
            "open_fds{} 17.0 Some(1700000000000)",
            "_underscored_metric{} 1.0 None",
            "quoted{_under=\"x\"} 1.0 None",
            "quoted{q=\"\\\"hi\\\"\"} 2.0 None",
            "indented{} 3.0 None",
            "no_final_newline{} 4.0 None",
        ]
    );
    // The series text is the raw input, blanks inside the braces included.
    assert_eq!(
        sample(&e[13]).series,
        "rpc_latency_seconds { quantile = \"1\" , svc = \"v\" }"
    );
    assert_eq!(sample(&e[14]).series, "rpc_latency_seconds_count");
    assert_eq!(sample(&e[22]).series, "indented");
}

#[test]
fn text_types_and_help_escapes() {
    let input = "# TYPE a counter\n# TYPE b gauge\n# TYPE c histogram\n# TYPE d summary\n\
# TYPE e untyped\n# HELP f back\\\\slash new\\nline \\\"quote\\\" \\x other\n";
    let e = ok(input, Format::Text);
    let kinds: Vec<_> = e
        .iter()
        .filter_map(|e| match e {
            Entry::Type { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::Summary,
            MetricType::Unknown
        ]
    );
    // The text format unescapes only \\ and \n in HELP.
    assert_eq!(
        e[5],
        Entry::Help {
            family: "f",
            help: Cow::Owned("back\\slash new\nline \\\"quote\\\" \\x other".into())
        }
    );
    // Help text without escapes is borrowed.
    let e = ok("# HELP g plain text\n", Format::Text);
    assert!(matches!(
        &e[0],
        Entry::Help {
            help: Cow::Borrowed("plain text"),
            ..
        }
    ));
    // Prometheus drops exactly the first byte after the name.
    let e = ok("# HELP g  two blanks\n# HELP h\tafter tab\n", Format::Text);
    assert_eq!(
        render(&e),
        ["HELP g \" two blanks\"", "HELP h \"after tab\""]
    );
}

#[test]
fn text_label_values_unescape_and_borrow() {
    let input = "m{a=\"x\\ny\",b=\"\\\\\",c=\"q\\\"q\",d=\"plain\",e=\"\\t kept\",f=\"\"} 1\n";
    let e = ok(input, Format::Text);
    let s = sample(&e[0]);
    assert_eq!(
        labels_of(s),
        pairs(&[
            ("a", "x\ny"),
            ("b", "\\"),
            ("c", "q\"q"),
            ("d", "plain"),
            ("e", "\\t kept"),
            ("f", "")
        ])
    );
    let borrowed: Vec<bool> = s
        .labels()
        .map(|(_, v)| matches!(v, Cow::Borrowed(_)))
        .collect();
    assert_eq!(borrowed, [false, false, false, true, false, true]);
    // Empty values mean "no label" in the label set.
    assert_eq!(
        s.to_labels().to_string(),
        "m{a=\"x\\ny\", b=\"\\\\\", c=\"q\\\"q\", d=\"plain\", e=\"\\\\t kept\"}"
    );
}

#[test]
fn text_values_and_timestamps() {
    let input = "a NaN\nb +Inf\nc -Inf\nd Inf\ne inf\nf -infinity\ng nan\nh 1.5e3\ni -0.25\n\
j .5\nk 5.\nl 1E-3\nm -0\nn 7 0\no 7 9223372036854775807\np 1e-400\nq{x=\"y\"}8\nr1.5\ns-2\n";
    let e = ok(input, Format::Text);
    let v: Vec<(String, f64, Option<i64>)> = e
        .iter()
        .map(|e| {
            let s = sample(e);
            (s.name.to_string(), s.value, s.timestamp_ms)
        })
        .collect();
    assert!(v[0].1.is_nan());
    // NaN comes back as Go's (Prometheus's "normal") NaN, never the staleness marker.
    assert_eq!(v[0].1.to_bits(), 0x7ff8_0000_0000_0001);
    assert!(!vigil_model::is_stale_nan(v[0].1));
    assert_eq!(v[1].1, f64::INFINITY);
    assert_eq!(v[2].1, f64::NEG_INFINITY);
    assert_eq!(v[3].1, f64::INFINITY);
    assert_eq!(v[4].1, f64::INFINITY);
    assert_eq!(v[5].1, f64::NEG_INFINITY);
    assert!(v[6].1.is_nan());
    assert_eq!(v[7].1, 1500.0);
    assert_eq!(v[8].1, -0.25);
    assert_eq!(v[9].1, 0.5);
    assert_eq!(v[10].1, 5.0);
    assert_eq!(v[11].1, 0.001);
    assert_eq!(v[12], ("m".into(), 0.0, None));
    assert!(v[12].1.is_sign_negative());
    assert_eq!(v[13], ("n".into(), 7.0, Some(0)));
    assert_eq!(v[14], ("o".into(), 7.0, Some(i64::MAX)));
    assert_eq!(v[15].1, 0.0);
    // Prometheus's lexer quirks: no blank needed after `}`; a value may follow a name
    // directly when it cannot continue the name.
    assert_eq!(v[16], ("q".into(), 8.0, None));
    assert_eq!(v[17], ("r1".into(), 0.5, None));
    assert_eq!(v[18], ("s".into(), -2.0, None));
}

#[test]
fn text_errors_name_line_and_match_prometheus() {
    let cases: &[(&[u8], usize, &str)] = &[
        (b"a 1\nb{ 2\n", 2, "expected label name, got \"INVALID\""),
        (b"a{b='c'} 1\n", 1, "expected label value, got \"INVALID\""),
        (b"a{b=\n", 1, "expected label value, got \"INVALID\""),
        (
            b"a{\xff=\"foo\"} 1\n",
            1,
            "expected label name, got \"INVALID\"",
        ),
        (b"a{b=\"\xff\"} 1\n", 1, "invalid UTF-8 label value"),
        (b"a{b=\"\xc3\"} 1\n", 1, "invalid UTF-8 label value"),
        (
            b"a true\n",
            1,
            "strconv.ParseFloat: parsing \"true\": invalid syntax",
        ),
        (
            b"something_weird{problem=\"",
            1,
            "expected label value, got \"INVALID\"",
        ),
        (
            b"empty_label_name{=\"\"} 0",
            1,
            "expected label name, got \"EQUAL\"",
        ),
        (
            b"a{b=\"c\",,d=\"e\"} 1",
            1,
            "expected label name, got \"COMMA\"",
        ),
        (b"a{,b=\"c\"} 1", 1, "expected label name, got \"COMMA\""),
        (b"a{b} 1", 1, "expected equal, got \"BCLOSE\""),
        (b"a{b c} 1", 1, "expected equal, got \"LNAME\""),
        // A quoted string is a token of its own since Prometheus 3 (2.42: INVALID).
        (b"a{b\"c\"} 1", 1, "expected equal, got \"QSTRING\""),
        (
            b"a{b=\"c\\\n\"} 1",
            1,
            "expected label value, got \"INVALID\"",
        ),
        (b"foo 1_2\n", 1, "unsupported character in float"),
        (b"foo 0x1p-3\n", 1, "unsupported character in float"),
        (b"foo 0x1P-3\n", 1, "unsupported character in float"),
        (
            b"foo 0 1_2\n",
            1,
            "expected next entry after timestamp, got \"INVALID\"",
        ),
        (
            b"foo 1 1.5\n",
            1,
            "expected next entry after timestamp, got \"INVALID\"",
        ),
        (
            b"foo 1 -2\n",
            1,
            "expected timestamp or new record, got \"INVALID\"",
        ),
        (
            b"foo 1 9223372036854775808\n",
            1,
            "strconv.ParseInt: parsing \"9223372036854775808\": value out of range",
        ),
        (
            b"foo 1e400\n",
            1,
            "strconv.ParseFloat: parsing \"1e400\": value out of range",
        ),
        // 2.42: "\"INVALID\" is not a valid start token" (a name may be inside since 3.0).
        (
            b"{a=\"ok\"} 1",
            1,
            "metric name not set while parsing: \"{a=\\\"ok\\\"}\"",
        ),
        (
            b"ok 1\n\n1a 2\n",
            3,
            "\"INVALID\" is not a valid start token",
        ),
        (
            b"# TYPE #\n",
            1,
            "expected metric name after TYPE, got \"INVALID\"",
        ),
        (
            b"# HELP #\n",
            1,
            "expected metric name after HELP, got \"INVALID\"",
        ),
        (
            b"# HELP \n",
            1,
            "expected metric name after HELP, got \"INVALID\"",
        ),
        (b"# TYPE a foo\n", 1, "invalid metric type \"foo\""),
        (
            b"# TYPE a counter \n",
            1,
            "invalid metric type \"counter \"",
        ),
        (
            b"# TYPE a  counter\n",
            1,
            "invalid metric type \" counter\"",
        ),
        (b"# TYPE a\n", 1, "invalid metric type \"\""),
        (b"# TYPE a info\n", 1, "invalid metric type \"info\""),
        (
            b"# HELP a \xff\n",
            1,
            "help text is not a valid utf8 string",
        ),
        (b"a\n", 1, "expected value after metric, got \"INVALID\""),
        (b"a", 1, "expected value after metric, got \"INVALID\""),
        (
            b"a{b=\"c\"}{ 1",
            1,
            "expected value after metric, got \"BOPEN\"",
        ),
        (b"a{b=\"1\",b=\"2\"} 1", 1, "duplicate label name \"b\""),
        (
            b"a{b=\"1\" c=\"2\" b=\"3\"} 1",
            1,
            "duplicate label name \"b\"",
        ),
        (
            b"#\na{__name__=\"\"} 1 1",
            2,
            "duplicate label name \"__name__\"",
        ),
        // Prometheus does not treat \r as a blank.
        (
            b"a 1\r\n",
            1,
            "strconv.ParseFloat: parsing \"1\\r\": invalid syntax",
        ),
    ];
    for &(input, line, msg) in cases {
        let e = err(input, Format::Text);
        assert_eq!(
            (e.line, e.message.as_str()),
            (line, msg),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let e = err(b"ok 1\nbad{", Format::Text);
    assert_eq!(
        e.to_string(),
        "line 2: expected label name, got \"INVALID\""
    );
}

#[test]
fn text_commas_and_blanks_in_label_blocks() {
    // Commas are optional between labels in the text format (as in Prometheus).
    let e = ok("a{b=\"1\" c=\"2\",d=\"3\" ,} 1\n", Format::Text);
    assert_eq!(
        labels_of(sample(&e[0])),
        pairs(&[("b", "1"), ("c", "2"), ("d", "3")])
    );
    let e = ok("a{} 1\na { } 2\n", Format::Text);
    assert_eq!(labels_of(sample(&e[0])), pairs(&[]));
    assert_eq!(sample(&e[1]).series, "a { }");
}

#[test]
fn text_nul_bytes_and_raw_newlines() {
    // NUL is allowed inside label values, help and comments ...
    let e = ok("# c\0mment\n# HELP h a\0b\nn{a=\"x\0y\"} 1\n", Format::Text);
    assert_eq!(
        e[0],
        Entry::Help {
            family: "h",
            help: Cow::Borrowed("a\0b")
        }
    );
    assert_eq!(labels_of(sample(&e[1])), pairs(&[("a", "x\0y")]));
    // ... and one where a line's first token would start ends the input, as in Prometheus.
    assert_eq!(ok("a 1\n\0garbage{{{\nb 2\n", Format::Text).len(), 1);
    assert_eq!(ok("a 1\n  \0", Format::Text).len(), 1);
    // A raw newline inside a label value is accepted (Prometheus's lexer allows it) and line
    // numbers stay right after it.
    let input = "m{a=\"two\nlines\"} 1\nbad 1 x\n";
    let e = err(input.as_bytes(), Format::Text);
    assert_eq!(e.line, 3);
    let e = ok("m{a=\"two\nlines\"} 1\n", Format::Text);
    assert_eq!(labels_of(sample(&e[0])), pairs(&[("a", "two\nlines")]));
}

#[test]
fn text_duplicates_beyond_the_inline_tracker() {
    let mut line = String::from("m{");
    for i in 0..40 {
        line += &format!("l{i}=\"{i}\",");
    }
    let good = format!("{line}}} 1\n");
    let e = ok(&good, Format::Text);
    let s = sample(&e[0]);
    assert_eq!(s.labels().count(), 40);
    assert_eq!(s.to_labels().len(), 41);
    let bad = format!("{line}l33=\"again\"}} 1\n");
    assert_eq!(
        err(bad.as_bytes(), Format::Text).message,
        "duplicate label name \"l33\""
    );
    let bad = format!("{line}l3=\"again\"}} 1\n");
    assert_eq!(
        err(bad.as_bytes(), Format::Text).message,
        "duplicate label name \"l3\""
    );
}

#[test]
fn invalid_utf8_outside_values() {
    // Comments are skipped unread.
    assert_eq!(ok_bytes(b"# \xff\xfe\na 1\n", Format::Text), 1);
    let e = err(b"a 1\n\xff\xfe 2\n", Format::Text);
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "\"INVALID\" is not a valid start token")
    );
    let e = err(b"a \xff\n", Format::Text);
    assert_eq!(
        e.message,
        "strconv.ParseFloat: parsing \"\\xff\": invalid syntax"
    );
}

fn ok_bytes(input: &[u8], f: Format) -> usize {
    parse(input, f).unwrap_or_else(|e| panic!("{e}")).len()
}

// ---------------------------------------------------------------------------------------------
// OpenMetrics 1.0.

#[test]
fn openmetrics_whole_document() {
    let input = "# HELP rpc_seconds Call latency.\n\
# TYPE rpc_seconds summary\n\
# UNIT rpc_seconds seconds\n\
rpc_seconds{quantile=\"0\"} 1.5e-05\n\
rpc_seconds{quantile=\"0.5\",svc=\"x\"} 2.5e-05\n\
# HELP empty_help \n\
# HELP escapes tab\\tslash\\\\ nl\\n quote\\\" other\\x\n\
# UNIT no_unit \n\
rpc_seconds_count 99\n\
rpc_seconds_sum 1.25\n\
rpc_seconds_created 1700000000.5\n\
job:rate5m{a_b=\"c\"} 1\n\
# TYPE threads gauge\n\
threads 33 123.456\n\
# TYPE lat histogram\n\
lat_bucket{le=\"0.5\"} 1\n\
lat_bucket{le=\"+Inf\"} 2 # {trace_id=\"abc\"} 0.7\n\
lat_count 2\n\
# TYPE qd gaugehistogram\n\
qd_bucket{le=\"+Inf\"} 3 # {trace_id=\"def\",span=\"1\"} 4 1700000000.123\n\
qd_gcount 3\n\
# TYPE build info\n\
build_info{version=\"1.2\"} 1\n\
# TYPE state stateset\n\
state{state=\"on\"} 1\n\
state{state=\"off\"} 0\n\
# TYPE mystery unknown\n\
_under 1\n\
tm{_l=\"v\"} 1\n\
tm{q=\"\\\"x\\\"\"} 1\n\
# TYPE req counter\n\
req_total 17.0 1520879607.789 # {id=\"x\"} 5\n\
req_created 1520879607.789\n\
# HELP nul a\0b\n\
nul{a=\"b\0c\"} 1\n\
# EOF\n";
    let e = ok(input, Format::OpenMetrics);
    assert_eq!(
        render(&e),
        [
            "HELP rpc_seconds \"Call latency.\"",
            "TYPE rpc_seconds summary",
            "UNIT rpc_seconds \"seconds\"",
            "rpc_seconds{quantile=\"0\"} 1.5e-5 None",
            "rpc_seconds{quantile=\"0.5\", svc=\"x\"} 2.5e-5 None",
            "HELP empty_help \"\"",
            "HELP escapes \"tab\\\\tslash\\\\ nl\\n quote\\\" other\\\\x\"",
            "UNIT no_unit \"\"",
            "rpc_seconds_count{} 99.0 None",
            "rpc_seconds_sum{} 1.25 None",
            "rpc_seconds_created{} 1700000000.5 None",
            "job:rate5m{a_b=\"c\"} 1.0 None",
            "TYPE threads gauge",
            "threads{} 33.0 Some(123456)",
            "TYPE lat histogram",
            "lat_bucket{le=\"0.5\"} 1.0 None",
            "lat_bucket{le=\"+Inf\"} 2.0 None # {trace_id=\"abc\"} 0.7 None",
            "lat_count{} 2.0 None",
            "TYPE qd gaugehistogram",
            "qd_bucket{le=\"+Inf\"} 3.0 None # {span=\"1\", trace_id=\"def\"} 4.0 Some(1700000000123)",
            "qd_gcount{} 3.0 None",
            "TYPE build info",
            "build_info{version=\"1.2\"} 1.0 None",
            "TYPE state stateset",
            "state{state=\"on\"} 1.0 None",
            "state{state=\"off\"} 0.0 None",
            "TYPE mystery unknown",
            "_under{} 1.0 None",
            "tm{_l=\"v\"} 1.0 None",
            "tm{q=\"\\\"x\\\"\"} 1.0 None",
            "TYPE req counter",
            "req_total{} 17.0 Some(1520879607789) # {id=\"x\"} 5.0 None",
            "req_created{} 1520879607.789 None",
            "HELP nul \"a\\0b\"",
            "nul{a=\"b\\x00c\"} 1.0 None",
        ]
    );
    // Exemplar labels come in input order, unescaped, borrowed from the input.
    let s = sample(&e[19]);
    let x = s.exemplar.as_ref().unwrap();
    let l: Vec<_> = x.labels().collect();
    assert_eq!(
        l,
        [
            (Cow::Borrowed("trace_id"), Cow::Borrowed("def")),
            (Cow::Borrowed("span"), Cow::Borrowed("1"))
        ]
    );
    assert_eq!(s.series, "qd_bucket{le=\"+Inf\"}");
}

#[test]
fn openmetrics_eof_handling() {
    assert!(ok("# EOF", Format::OpenMetrics).is_empty());
    assert!(ok("# EOF\n", Format::OpenMetrics).is_empty());
    assert_eq!(ok("a 1\n# EOF", Format::OpenMetrics).len(), 1);
    let cases: &[(&[u8], usize, &str)] = &[
        (b"", 1, "data does not end with # EOF"),
        (b"metric 1", 1, "data does not end with # EOF"),
        (b"metric 1\n", 2, "data does not end with # EOF"),
        (b"a 1\nb 2\n", 3, "data does not end with # EOF"),
        (
            b"metric_total 1 # {aa=\"bb\"} 4",
            1,
            "data does not end with # EOF",
        ),
        (b"# EOF\na 1", 2, "unexpected data after # EOF"),
        (b"# EOF\n\n", 2, "unexpected data after # EOF"),
        (b"# EOFa 1", 1, "unexpected data after # EOF"),
        (b"# EOF \n", 1, "unexpected data after # EOF"),
    ];
    for &(input, line, msg) in cases {
        let e = err(input, Format::OpenMetrics);
        assert_eq!(
            (e.line, e.message.as_str()),
            (line, msg),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn openmetrics_errors_match_prometheus() {
    let cases: &[(&[u8], &str)] = &[
        (b"\n", "\"INVALID\" \"\\n\" is not a valid start token"),
        (b"metric", "expected value after metric, got \"EOF\""),
        (b"a\n#EOF\n", "expected value after metric, got \"INVALID\""),
        (
            b"\n\n#EOF\n",
            "\"INVALID\" \"\\n\" is not a valid start token",
        ),
        (
            b" a 1\n#EOF\n",
            "\"INVALID\" \" \" is not a valid start token",
        ),
        (b"9\n#EOF\n", "\"INVALID\" \"9\" is not a valid start token"),
        (
            b"# TYPE u untyped\n#EOF\n",
            "invalid metric type \"untyped\"",
        ),
        (
            b"# TYPE c counter \n#EOF\n",
            "invalid metric type \"counter \"",
        ),
        (
            b"#  TYPE c counter\n#EOF\n",
            "\"INVALID\" \" \" is not a valid start token",
        ),
        (
            b"# TYPE \n#EOF\n",
            "expected metric name after TYPE, got \"INVALID\"",
        ),
        (b"# TYPE m\n#EOF\n", "expected text in TYPE"),
        (b"# TYPE m counter", "expected text in TYPE"),
        (
            b"# UNIT metric suffix\n#EOF\n",
            "unit not a suffix of metric \"metric\"",
        ),
        (
            b"# UNIT metricsuffix suffix\n#EOF\n",
            "unit not a suffix of metric \"metricsuffix\"",
        ),
        (
            b"# UNIT m suffix\n#EOF\n",
            "unit not a suffix of metric \"m\"",
        ),
        (
            b"# UNIT \n#EOF\n",
            "expected metric name after UNIT, got \"INVALID\"",
        ),
        (b"# UNIT m\n#EOF\n", "expected text in UNIT"),
        (
            b"# HELP \n#EOF\n",
            "expected metric name after HELP, got \"INVALID\"",
        ),
        (b"# HELP m\n#EOF\n", "expected text in HELP"),
        (b"# HELP m x\xff\n", "help text is not a valid utf8 string"),
        (
            b"# random comment\n# EOF\n",
            "\"INVALID\" \"r\" is not a valid start token",
        ),
        (
            b"# HELLO x\n# EOF\n",
            "\"INVALID\" \"L\" is not a valid start token",
        ),
        (
            b"#\tTYPE c counter\n",
            "\"INVALID\" \"\\t\" is not a valid start token",
        ),
        (b"# TYPE c  counter\n", "invalid metric type \" counter\""),
        (
            b"a\t1\n#EOF\n",
            "expected value after metric, got \"INVALID\"",
        ),
        (
            b"a 1\t2\n#EOF\n",
            "strconv.ParseFloat: parsing \"1\\t2\": invalid syntax",
        ),
        (
            b"a 1 2 \n#EOF\n",
            "expected next entry after timestamp, got \"INVALID\"",
        ),
        (
            b"a 1 2 #\n#EOF\n",
            "expected next entry after timestamp, got \"TIMESTAMP\"",
        ),
        (b"a 1 2", "expected next entry after timestamp, got \"EOF\""),
        (
            b"a 1 \n# EOF\n",
            "expected timestamp or # symbol, got \"INVALID\"",
        ),
        (
            b"a  1\n# EOF\n",
            "expected value after metric, got \"INVALID\"",
        ),
        (
            b"a 1 1z\n#EOF\n",
            "strconv.ParseFloat: parsing \"1z\": invalid syntax",
        ),
        (b" # EOF\n", "\"INVALID\" \" \" is not a valid start token"),
        (
            b"a 1 1 1\n# EOF\n",
            "expected next entry after timestamp, got \"TIMESTAMP\"",
        ),
        (
            b"a{b='c'} 1\n# EOF\n",
            "expected label value, got \"INVALID\"",
        ),
        (
            b"a{b=\"c\",} 1\n# EOF\n",
            "expected label name, got \"BCLOSE\"",
        ),
        (
            b"a{,b=\"c\"} 1\n# EOF\n",
            "expected label name or left brace, got \"COMMA\"",
        ),
        (
            b"a{b=\"c\"d=\"e\"} 1\n# EOF\n",
            "expected comma, got \"LNAME\"",
        ),
        (
            b"a{b=\"c\",,d=\"e\"} 1\n# EOF\n",
            "expected label name, got \"COMMA\"",
        ),
        (
            b"a{b=\"c\", d=\"e\"} 1\n# EOF\n",
            "expected label name, got \"INVALID\"",
        ),
        (
            b"a{b=\"c\" } 1\n# EOF\n",
            "expected comma or left brace, got \"INVALID\"",
        ),
        (
            b"a {b=\"c\"} 1\n# EOF\n",
            "strconv.ParseFloat: parsing \"{b=\\\"c\\\"}\": invalid syntax",
        ),
        (b"a{b=\n# EOF\n", "expected label value, got \"INVALID\""),
        (
            b"a{b=\"x\ny\"} 1\n# EOF\n",
            "expected label value, got \"INVALID\"",
        ),
        (
            b"a{\xff=\"foo\"} 1\n# EOF\n",
            "expected label name or left brace, got \"INVALID\"",
        ),
        (b"a{b=\"\xff\"} 1\n# EOF\n", "invalid UTF-8 label value"),
        (
            b"a true\n",
            "strconv.ParseFloat: parsing \"true\": invalid syntax",
        ),
        (
            b"something_weird{problem=\"\n# EOF\n",
            "expected label value, got \"INVALID\"",
        ),
        (
            b"empty_label_name{=\"\"} 0\n# EOF\n",
            "expected label name or left brace, got \"EQUAL\"",
        ),
        (
            b"a{b=\"1\",b=\"2\"} 1\n# EOF\n",
            "duplicate label name \"b\"",
        ),
        (b"foo 1_2\n\n# EOF\n", "unsupported character in float"),
        (b"foo 0x1p-3\n\n# EOF\n", "unsupported character in float"),
        (b"foo 0x1P-3\n\n# EOF\n", "unsupported character in float"),
        (b"foo 0 1_2\n\n# EOF\n", "unsupported character in float"),
        (
            b"custom_metric_total 1 # {aa=bb}\n# EOF\n",
            "expected label value, got \"INVALID\"",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\"}\n# EOF\n",
            "expected value after exemplar labels, got \"INVALID\"",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\"}",
            "expected value after exemplar labels, got \"EOF\"",
        ),
        (
            b"custom_metric 1 # {aa=\"bb\"}",
            "metric name custom_metric does not support exemplars",
        ),
        (
            b"lat_count 1 # {aa=\"bb\"} 1\n# EOF\n",
            "metric name lat_count does not support exemplars",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\",,cc=\"dd\"} 1",
            "expected label name, got \"COMMA\"",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\"} 1_2",
            "unsupported character in float",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\"} 0x1p-3",
            "unsupported character in float",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\"} true",
            "strconv.ParseFloat: parsing \"true\": invalid syntax",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\",cc=}",
            "expected label value, got \"INVALID\"",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\"} 1 2 3\n# EOF\n",
            "expected next entry after exemplar timestamp, got \"TIMESTAMP\"",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\"} 1 2\n",
            "data does not end with # EOF",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\"} 1  2\n# EOF\n",
            "expected timestamp or comment, got \"INVALID\"",
        ),
        // `{` starts a series since Prometheus 3 (its name may be quoted inside); 2.42 said
        // "\"INVALID\" \"{\" is not a valid start token".
        (b"{b=\"c\",} 1", "expected label name, got \"BCLOSE\""),
        (b"a 1 NaN", "invalid timestamp"),
        (b"a 1 -Inf", "invalid timestamp"),
        (b"a 1 Inf", "invalid timestamp"),
        (
            b"# TYPE hhh histogram\nhhh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 NaN",
            "invalid exemplar timestamp",
        ),
        (
            b"# TYPE hhh histogram\nhhh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 -Inf",
            "invalid exemplar timestamp",
        ),
        (
            b"# TYPE hhh histogram\nhhh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 Inf",
            "invalid exemplar timestamp",
        ),
        // NUL handling as in Prometheus: allowed in sample label values, not elsewhere.
        (
            b"a{b=\0\"ssss\"} 1\n# EOF\n",
            "expected label value, got \"INVALID\"",
        ),
        (b"a{b=\"\0", "expected label value, got \"INVALID\""),
        (b"a{b\0=\"hiih\"}\t1", "expected equal, got \"INVALID\""),
        (
            b"a\0{b=\"ddd\"} 1",
            "expected value after metric, got \"INVALID\"",
        ),
        (b"#", "\"INVALID\" \" \" is not a valid start token"),
        (b"# H", "\"INVALID\" \" \" is not a valid start token"),
        (
            b"custom_metric_total 1 # {b=\0\"ssss\"} 1\n",
            "expected label value, got \"INVALID\"",
        ),
        (
            b"custom_metric_total 1 # {b=\"\0ss\"} 1\n",
            "expected label value, got \"INVALID\"",
        ),
    ];
    for &(input, msg) in cases {
        let e = err(input, Format::OpenMetrics);
        assert_eq!(e.message, msg, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn openmetrics_error_lines() {
    let input = "# TYPE a counter\na_total 1\na_total{x=\"1\"} 2\na_total{x=} 3\n# EOF\n";
    let e = err(input.as_bytes(), Format::OpenMetrics);
    assert_eq!(e.line, 4);
    let e = err(b"a 1\n\n# EOF\n", Format::OpenMetrics);
    assert_eq!(e.line, 2);
}

#[test]
fn openmetrics_nul_bytes_accepted() {
    for input in [
        "null_byte_metric{a=\"abc\0\"} 1\n# EOF\n",
        "a{b=\"\0ss\"} 1\n# EOF\n",
        "a{b=\"\0\"} 1\n# EOF\n",
        "a{b=\"\0\"} 1\n# EOF",
    ] {
        ok(input, Format::OpenMetrics);
    }
}

#[test]
fn openmetrics_timestamps_are_seconds() {
    let input = "a 1 1.5\nb 1 -1.5\nc 1 0.0015\nd 1 1520879607.789\ne 1 1e3\nf 1 0\n# EOF\n";
    let ts: Vec<_> = ok(input, Format::OpenMetrics)
        .iter()
        .map(|e| sample(e).timestamp_ms)
        .collect();
    assert_eq!(
        ts,
        [
            Some(1500),
            Some(-1500),
            Some(1),
            Some(1520879607789),
            Some(1_000_000),
            Some(0)
        ]
    );
    // Truncated like Go's int64 conversion, not rounded.
    let e = ok("a 1 0.0019\n# EOF\n", Format::OpenMetrics);
    assert_eq!(sample(&e[0]).timestamp_ms, Some(1));
}

#[test]
fn openmetrics_exemplars() {
    let input = "# TYPE c counter\n\
c_total 1 # {} 2\n\
c_total{a=\"b\"} 1 100 # {trace_id=\"q\\\"uote\"} 2.5 101.5\n\
# TYPE h histogram\n\
h_bucket{le=\"1\"} 0 # {} -1\n\
h_bucket{le=\"+Inf\"} 3 # {dup=\"1\",dup=\"2\"} NaN\n\
# EOF\n";
    let e = ok(input, Format::OpenMetrics);
    let x = sample(&e[1]).exemplar.as_ref().unwrap();
    assert_eq!(
        (x.value, x.timestamp_ms, x.labels().count()),
        (2.0, None, 0)
    );
    let s = sample(&e[2]);
    assert_eq!(s.timestamp_ms, Some(100_000));
    let x = s.exemplar.as_ref().unwrap();
    assert_eq!((x.value, x.timestamp_ms), (2.5, Some(101_500)));
    assert_eq!(
        x.labels().collect::<Vec<_>>(),
        [(
            Cow::Borrowed("trace_id"),
            Cow::<str>::Owned("q\"uote".into())
        )]
    );
    assert_eq!(sample(&e[4]).exemplar.as_ref().unwrap().value, -1.0);
    // Exemplar labels are not checked for duplicates (Prometheus does not either).
    let x = sample(&e[5]).exemplar.as_ref().unwrap();
    assert!(x.value.is_nan());
    assert_eq!(x.labels().count(), 2);
    // The text format has no exemplars: the rest is a timestamp error.
    assert_eq!(
        err(b"c_total 1 # {} 2\n", Format::Text).message,
        "expected timestamp or new record, got \"INVALID\""
    );
}

// ---------------------------------------------------------------------------------------------
// Common.

#[test]
fn content_type_selects_format() {
    for (ct, f) in [
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::OpenMetrics,
        ),
        ("application/openmetrics-text", Format::OpenMetrics),
        (
            "Application/OpenMetrics-Text;version=0.0.1",
            Format::OpenMetrics,
        ),
        ("text/plain; version=0.0.4; charset=utf-8", Format::Text),
        ("text/plain", Format::Text),
        ("", Format::Text),
        ("application/json", Format::Text),
        ("garbage;;;", Format::Text),
    ] {
        assert_eq!(Format::from_content_type(ct), f, "{ct}");
    }
}

#[test]
fn metric_type_spellings() {
    let all = [
        (MetricType::Counter, "counter"),
        (MetricType::Gauge, "gauge"),
        (MetricType::Histogram, "histogram"),
        (MetricType::GaugeHistogram, "gaugehistogram"),
        (MetricType::Summary, "summary"),
        (MetricType::Info, "info"),
        (MetricType::StateSet, "stateset"),
        (MetricType::Unknown, "unknown"),
    ];
    for (k, s) in all {
        assert_eq!(k.as_str(), s);
        if k != MetricType::Unknown {
            let input = format!("# TYPE m {s}\n# EOF\n");
            let e = ok(&input, Format::OpenMetrics);
            assert_eq!(
                e[0],
                Entry::Type {
                    family: "m",
                    kind: k
                }
            );
        }
    }
    let e = ok("# TYPE m unknown\n# EOF\n", Format::OpenMetrics);
    assert_eq!(
        e[0],
        Entry::Type {
            family: "m",
            kind: MetricType::Unknown
        }
    );
    assert_eq!(
        err(b"# TYPE m unknown\n", Format::Text).message,
        "invalid metric type \"unknown\""
    );
}

#[test]
fn to_labels_is_sorted_and_complete() {
    let e = ok("m{z=\"1\",a=\"2\",m=\"3\"} 1\n", Format::Text);
    let l = sample(&e[0]).to_labels();
    let names: Vec<_> = l.iter().map(|l| l.name).collect();
    assert_eq!(names, ["__name__", "a", "m", "z"]);
    assert_eq!(l.to_string(), "m{a=\"2\", m=\"3\", z=\"1\"}");
}

/// The scrape hot path: a body without escapes parses with no heap allocation at all.
#[test]
fn happy_path_does_not_allocate() {
    let mut text = String::new();
    for i in 0..200 {
        text += &format!(
            "# HELP m{i} Some help.\n# TYPE m{i} counter\nm{i}{{job=\"j\",instance=\"10.0.0.{i}:9100\",le=\"+Inf\"}} {i}.5 {}\n",
            1_700_000_000_000i64 + i
        );
    }
    let mut om = String::new();
    for i in 0..200 {
        om += &format!(
            "# TYPE m{i} histogram\nm{i}_bucket{{le=\"{i}\",a=\"b\"}} {i} 1700000000.{i} # {{trace_id=\"t{i}\"}} 0.5 1.5\n"
        );
    }
    om += "# EOF\n";
    for (body, f) in [
        (text.as_str(), Format::Text),
        (om.as_str(), Format::OpenMetrics),
    ] {
        let before = allocs();
        let mut n = 0usize;
        let mut sum = 0.0;
        for e in Parser::new(body.as_bytes(), f) {
            if let Ok(Entry::Sample(s)) = e {
                n += s.series.len() + s.labels().count();
                sum += s.value;
                if let Some(x) = &s.exemplar {
                    n += x.labels().count();
                }
            } else {
                assert!(e.is_ok());
            }
        }
        assert_eq!(allocs() - before, 0, "{f:?} allocated");
        assert!(n > 0 && sum > 0.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Robustness.

/// xorshift64*: a tiny deterministic PRNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    "# HELP a x\\\\y\\n\n# TYPE a counter\n# UNIT a_seconds seconds\na_total{x=\"1\",y=\"\\\"\"} 1 1.5 # {t=\"a\"} 1 2\na_created 1.5\n# EOF\n",
    "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2 # {} 3\nh_count 2\nh_sum 1.5\n# EOF",
    "m{a=\"b\"} 1 100\nn 2\n# TYPE q summary\nq{quantile=\"0.5\"} 3\n  x { a = \"b\" , } NaN\n",
    "# HELP go_goroutines Number\\nof goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 33 123123\n# comment\nt{l=\"two\nlines\",m=\"\\\\\"} -Inf\n",
    "# TYPE \"my.m\" counter\n{\"my.m\",\"a.b\"=\"x\"} 1\n{z=\"1\",\"q\\\"n\"} 2\nm_total{\"é ü\"=\"v\"} 3 # {\"t.id\"=\"1\"} 1\n# EOF\n",
];

/// Structural mutations of a valid input.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    const SPECIAL: &[u8] = b"{}\"\\ #,=\n\t\0\xff\xc3_:.eE+-9aZ";
    let mut b = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let len = b.len();
        let i = rng.below(len + 1);
        match rng.below(6) {
            0 if i < len => b[i] = rng.next() as u8,
            1 if i < len => {
                b.remove(i);
            }
            2 => b.insert(i, SPECIAL[rng.below(SPECIAL.len())]),
            3 if i < len => {
                let j = i + rng.below(len - i);
                let chunk = b[i..j].to_vec();
                let k = rng.below(b.len() + 1);
                b.splice(k..k, chunk);
            }
            4 => b.truncate(i),
            _ if i < len => b[i] = SPECIAL[rng.below(SPECIAL.len())],
            _ => {}
        }
    }
    b
}

/// Everything accepted can be read back, and printing it and parsing again gives the same.
fn exercise(input: &[u8], f: Format) {
    let mut errored = false;
    for e in Parser::new(input, f) {
        assert!(!errored, "entry after an error");
        match e {
            Err(e) => {
                errored = true;
                assert!(e.line >= 1);
                let lines = input.iter().filter(|&&c| c == b'\n').count() + 1;
                assert!(e.line <= lines + 1, "line {} of {lines}", e.line);
            }
            Ok(Entry::Sample(s)) => {
                check_sample(input, &s);
                let l = s.to_labels();
                // Written back as the text formats write a series (quoted names included).
                let pairs: Vec<(String, String)> = s
                    .labels()
                    .map(|(n, v)| (n.into_owned(), v.into_owned()))
                    .collect();
                let mut round = String::new();
                vigil_model::exposition::write_series(
                    &mut round,
                    &s.name,
                    pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                );
                round += " 1\n";
                let again: Vec<_> = Parser::new(round.as_bytes(), Format::Text).collect();
                match again.as_slice() {
                    [Ok(Entry::Sample(t))] => assert_eq!(t.to_labels(), l, "{round:?}"),
                    other => panic!("{round:?} did not parse back: {other:?}"),
                }
            }
            Ok(_) => {}
        }
    }
}

#[test]
fn mutations_never_panic_and_round_trip() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for seed in SEEDS {
        for f in [Format::Text, Format::OpenMetrics] {
            exercise(seed.as_bytes(), f);
        }
        for _ in 0..15_000 {
            let b = mutate(&mut rng, seed.as_bytes());
            exercise(&b, Format::Text);
            exercise(&b, Format::OpenMetrics);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    const ALPHABET: &[u8] = b"ab_:{}=\",# \t\n\\01.eE+-HELPTYPEUNITOF\0\xff";
    for _ in 0..20_000 {
        let n = rng.below(64);
        let b: Vec<u8> = (0..n)
            .map(|_| {
                if rng.below(8) == 0 {
                    rng.next() as u8
                } else {
                    ALPHABET[rng.below(ALPHABET.len())]
                }
            })
            .collect();
        exercise(&b, Format::Text);
        exercise(&b, Format::OpenMetrics);
    }
}

#[test]
fn the_seeds_are_valid() {
    for (i, s) in SEEDS.iter().enumerate() {
        let f = if i < 2 || s.ends_with("# EOF\n") {
            Format::OpenMetrics
        } else {
            Format::Text
        };
        assert!(!ok(s, f).is_empty());
    }
}

/// The hand-written fuzz seeds (if the fuzz directory is there) are valid inputs.
#[test]
fn fuzz_seeds_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    for (dir, f) in [("text", Format::Text), ("openmetrics", Format::OpenMetrics)] {
        let Ok(files) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for file in files.flatten() {
            let b = std::fs::read(file.path()).unwrap();
            if let Err(e) = parse(&b, f) {
                panic!("{}: {e}", file.path().display());
            }
        }
    }
}

/// OpenMetrics' `_created` lines, read as created timestamps when the parser is asked to (as
/// Prometheus's with `created-timestamp-zero-ingestion`): each counter's, summary's and
/// histogram's series gets its label set's `_created` value in ms (buckets and quantiles too),
/// the `_created` series are not yielded, and a `_created` line of other labels, or none
/// before the next family, gives none. Without asking, `_created` is an ordinary series.
#[test]
fn openmetrics_created_lines_as_created_timestamps() {
    let body = "# TYPE c counter\n\
        c_total{a=\"1\"} 3\n\
        c_created{a=\"1\"} 1700000000.5\n\
        c_total{a=\"2\"} 4\n\
        c_created{a=\"9\"} 1700000001\n\
        # TYPE h histogram\n\
        h_bucket{le=\"1.0\"} 1\n\
        h_bucket{le=\"+Inf\"} 2\n\
        h_count 2\n\
        h_sum 1.5\n\
        h_created 1700000002.25\n\
        # TYPE s summary\n\
        s{quantile=\"0.5\"} 0.7\n\
        s_count 2\n\
        s_sum 1.5\n\
        s_created 1700000003\n\
        # TYPE g gauge\n\
        g 1\n\
        # TYPE n counter\n\
        n_total 1\n\
        # EOF\n";
    let got: Vec<String> = Parser::new(body.as_bytes(), Format::OpenMetrics)
        .with_created_timestamps()
        .filter_map(|e| match e.unwrap() {
            Entry::Sample(s) => Some(format!("{} {:?}", s.series, s.created_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        [
            "c_total{a=\"1\"} Some(1700000000500)",
            "c_total{a=\"2\"} None",
            "h_bucket{le=\"1.0\"} Some(1700000002250)",
            "h_bucket{le=\"+Inf\"} Some(1700000002250)",
            "h_count Some(1700000002250)",
            "h_sum Some(1700000002250)",
            "s{quantile=\"0.5\"} Some(1700000003000)",
            "s_count Some(1700000003000)",
            "s_sum Some(1700000003000)",
            "g None",
            "n_total None",
        ]
    );
    let plain: Vec<String> = Parser::new(body.as_bytes(), Format::OpenMetrics)
        .filter_map(|e| match e.unwrap() {
            Entry::Sample(s) if s.name.ends_with("_created") => Some(s.series.to_string()),
            Entry::Sample(s) => {
                assert_eq!(s.created_ms, None);
                None
            }
            _ => None,
        })
        .collect();
    assert_eq!(plain.len(), 4, "{plain:?}");
    // The text format has no created timestamps.
    let text = "# TYPE c counter\nc_total 1\nc_created 1700000000\n";
    let n = Parser::new(text.as_bytes(), Format::Text)
        .with_created_timestamps()
        .filter(|e| matches!(e, Ok(Entry::Sample(_))))
        .count();
    assert_eq!(n, 2);
}

/// Reading ahead for `_created` lines covers a family about once however its lines are
/// ordered: with every `_created` line after all the samples, only the sample whose labels
/// the first of them has gets a created timestamp (the first `_created` line after a sample
/// is the only one looked at, as in Prometheus's parser), and a family without any reads
/// ahead once. (A read ahead covers 4,096 entries at most: `_created` lines farther from
/// their family's samples than that are not found.)
#[test]
fn created_lines_far_away_are_read_ahead_once() {
    let n = 4_000;
    let mut body = String::from("# TYPE c counter\n");
    for i in 0..n {
        body += &format!("c_total{{i=\"{i}\"}} 1\n");
    }
    for i in 0..n {
        body += &format!("c_created{{i=\"{i}\"}} 1700000000\n");
    }
    body += "# TYPE d counter\n";
    for i in 0..n {
        body += &format!("d_total{{i=\"{i}\"}} 1\n");
    }
    body += "# EOF\n";
    let mut with = Vec::new();
    for e in Parser::new(body.as_bytes(), Format::OpenMetrics).with_created_timestamps() {
        if let Entry::Sample(s) = e.unwrap() {
            if s.created_ms.is_some() {
                with.push(s.series.to_string());
            }
            assert!(!s.name.ends_with("_created"));
        }
    }
    assert_eq!(with, ["c_total{i=\"0\"}"]);
}

// ---------------------------------------------------------------------------------------------
// Prometheus 3's quoted (UTF-8) names.

/// A quoted string alone in the braces is the metric name; quoted label names may hold any
/// UTF-8 (escapes undone); HELP and TYPE take quoted names; a quoted classic name is that name.
#[test]
fn quoted_names_in_both_text_formats() {
    let text = "# HELP \"my.metric\" Requests.\n# TYPE \"my.metric\" counter\n{\"my.metric\",\"label.x\"=\"v\",job=\"j\"} 1\n{ \"a\\\"q\" , b=\"c\" } 2\nfoo{\"x.y\"=\"1\",\"é\"=\"2\"} 3\n{\"plain\"} 4\n";
    let om = "# HELP \"my.metric\" Requests.\n# TYPE \"my.metric\" counter\n{\"my.metric\",\"label.x\"=\"v\",job=\"j\"} 1\n{\"a\\\"q\",b=\"c\"} 2\nfoo{\"x.y\"=\"1\",\"é\"=\"2\"} 3\n{\"plain\"} 4\n# EOF\n";
    for (input, f) in [(text, Format::Text), (om, Format::OpenMetrics)] {
        let e = ok(input, f);
        assert_eq!(
            render(&e),
            [
                "HELP my.metric \"Requests.\"",
                "TYPE my.metric counter",
                "{\"my.metric\", job=\"j\", \"label.x\"=\"v\"} 1.0 None",
                "{\"a\\\"q\", b=\"c\"} 2.0 None",
                "foo{\"x.y\"=\"1\", \"é\"=\"2\"} 3.0 None",
                "plain{} 4.0 None",
            ],
            "{f:?}"
        );
        let s = sample(&e[2]);
        assert_eq!(s.name, "my.metric");
        assert!(matches!(s.name, Cow::Borrowed(_)), "no escapes: borrowed");
        assert_eq!(
            labels_of(s),
            pairs(&[("label.x", "v"), ("job", "j")]),
            "the name is not a label"
        );
        let s = sample(&e[3]);
        assert_eq!(s.name, "a\"q");
        assert!(matches!(s.name, Cow::Owned(_)));
        // A quoted classic name is that name.
        assert_eq!(sample(&e[5]).name, "plain");
    }
}

/// A quoted metric name may stand anywhere in the braces, as upstream's parsers take it;
/// exemplars may quote label names.
#[test]
fn quoted_name_after_the_labels_and_in_exemplars() {
    let text = "{a=\"b\",\"my.metric\"} 1\n{ a=\"b\" \"x\\\"y\" } 2\n";
    let om = "{a=\"b\",\"my.metric\"} 1\n{a=\"b\",\"x\\\"y\"} 2\nc_total 1 # {\"trace.id\"=\"abc\"} 1\n# EOF\n";
    for (input, f) in [(text, Format::Text), (om, Format::OpenMetrics)] {
        let e = ok(input, f);
        let s = sample(&e[0]);
        assert_eq!(s.name, "my.metric", "{f:?}");
        assert_eq!(labels_of(s), pairs(&[("a", "b")]));
        assert_eq!(s.to_labels().to_string(), "{\"my.metric\", a=\"b\"}");
        assert_eq!(sample(&e[1]).name, "x\"y", "{f:?}");
    }
    let e = ok(om, Format::OpenMetrics);
    let x = sample(&e[2]).exemplar.as_ref().unwrap();
    let l: Vec<_> = x.labels().collect();
    assert_eq!(l, [(Cow::Borrowed("trace.id"), Cow::Borrowed("abc"))]);
    // An exemplar holds no metric name.
    assert_eq!(
        err(b"c_total 1 # {\"m\"} 1\n# EOF\n", Format::OpenMetrics).message,
        "expected equal, got \"BCLOSE\""
    );
}

/// Where a metric name may not be, or is missing or repeated, the line fails as upstream's
/// parsers fail it.
#[test]
fn quoted_name_errors() {
    for f in [Format::Text, Format::OpenMetrics] {
        let eof = if f == Format::OpenMetrics {
            "# EOF\n"
        } else {
            ""
        };
        let e = |s: &str| err(format!("{s}\n{eof}").as_bytes(), f).message;
        assert!(
            e("foo{\"bar\"} 1").starts_with("metric name already set while parsing"),
            "{f:?}: {}",
            e("foo{\"bar\"} 1")
        );
        assert!(e("{\"a\",\"b\"} 1").starts_with("metric name already set while parsing"));
        assert!(e("{a=\"b\"} 1").starts_with("metric name not set while parsing"));
        assert_eq!(
            e("{\"m\",__name__=\"x\"} 1"),
            "duplicate label name \"__name__\""
        );
        assert_eq!(
            e("{\"m\",\"a\"=\"1\",a=\"2\"} 1"),
            "duplicate label name \"a\""
        );
        assert_eq!(
            e("{\"m\",\"a\\\\b\"=\"1\",\"a\\\\b\"=\"2\"} 1"),
            "duplicate label name \"a\\\\b\""
        );
        assert_eq!(e("{\"\"} 1"), "empty quoted name");
        // Outside braces a quoted name is not a start token.
        assert!(
            e("\"m\"{a=\"b\"} 1").contains("INVALID"),
            "{}",
            e("\"m\"{a=\"b\"} 1")
        );
        assert_eq!(
            err(b"{\"m\xff\"} 1\n", f).message,
            "invalid UTF-8 label value"
        );
    }
}

/// A protobuf family may carry any name: its series' text quotes what is outside the classic
/// set, so the scraper's cache keys stay unambiguous and the labels read back.
#[test]
fn protobuf_names_outside_the_classic_set() {
    use vigil_model::exposition::proto;
    let labels = [
        ("a.b".to_string(), "x".to_string()),
        ("job".to_string(), "j".to_string()),
        ("q\"n".to_string(), "y".to_string()),
    ];
    let mut body = Vec::new();
    proto::write_family(
        &mut body,
        "my.metric",
        false,
        &[(&labels[..], 1000, proto::OutValue::Untyped(7.0))],
    );
    let d = proto::decode(&body, proto::Options::default()).unwrap();
    let got: Vec<_> = d
        .entries()
        .filter_map(|e| match e {
            Entry::Sample(s) => Some((
                s.series.to_string(),
                s.name.to_string(),
                labels_of(&s),
                s.to_labels().to_string(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        [(
            "{\"my.metric\",\"a.b\"=\"x\",job=\"j\",\"q\\\"n\"=\"y\"}".to_string(),
            "my.metric".to_string(),
            pairs(&[("a.b", "x"), ("job", "j"), ("q\"n", "y")]),
            "{\"my.metric\", \"a.b\"=\"x\", job=\"j\", \"q\\\"n\"=\"y\"}".to_string(),
        )]
    );
}

/// Entries are moved by value through the parser; at 128 bytes or less that is a few
/// register moves, above it a call to `memcpy` per entry (10% of the text parser's time when
/// a quoted name's `Cow` first took a sample past it).
#[test]
fn an_entry_stays_small() {
    let size = std::mem::size_of::<Result<Entry<'_>, ParseError>>();
    assert!(size <= 128, "{size}");
}
