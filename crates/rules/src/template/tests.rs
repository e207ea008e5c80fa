//! Templates as Prometheus renders them: outputs and error texts from Prometheus's own
//! template tests and Go's text/template documentation.

use std::collections::BTreeMap;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn no_query(_: &str) -> Result<Vec<QSample>, String> {
    Ok(Vec::new())
}

fn ups(q: &str) -> Result<Vec<QSample>, String> {
    match q {
        "up" => Ok(vec![
            QSample {
                labels: labels(&[("__name__", "up"), ("instance", "b:9100")]),
                value: 0.0,
                histogram: None,
            },
            QSample {
                labels: labels(&[("__name__", "up"), ("instance", "a:9100")]),
                value: 1.0,
                histogram: None,
            },
        ]),
        "latency" => Ok(vec![QSample {
            labels: labels(&[("__name__", "latency")]),
            value: 0.0,
            histogram: Some(std::sync::Arc::new(latency())),
        }]),
        "missing" => Ok(Vec::new()),
        "bad(" => Err("1:5: parse error: unclosed left parenthesis".into()),
        _ => Ok(Vec::new()),
    }
}

/// A native histogram: 3 observations in (0.5,1] and 1 in (1,2], sum 4.
fn latency() -> vigil_model::FloatHistogram {
    let mut h = vigil_model::FloatHistogram {
        count: 4.0,
        sum: 4.0,
        ..Default::default()
    };
    h.set_positive(&[(0, 3.0), (1, 1.0)]);
    h
}

fn expand(text: &str, value: f64) -> String {
    expand_with(text, value, &ups)
}

fn expand_with(text: &str, value: f64, q: &dyn Fn(&str) -> Result<Vec<QSample>, String>) -> String {
    expand_data(text, value, None, q)
}

fn expand_data(
    text: &str,
    value: f64,
    histogram: Option<vigil_promql::Hist>,
    q: &dyn Fn(&str) -> Result<Vec<QSample>, String>,
) -> String {
    let data = AlertData {
        labels: labels(&[
            ("__name__", "up"),
            ("instance", "web:9100"),
            ("job", "node"),
        ]),
        external_labels: labels(&[("cluster", "prod")]),
        external_url: "http://vigil:9090/prefix".into(),
        value,
        histogram,
    };
    let env = Env {
        query: q,
        external_url: "http://vigil:9090/prefix",
        now: 1_700_000_000.0,
    };
    expand_alert("HighLoad", text, &data, &env)
}

/// An alert on a native histogram sample: `$value` is the histogram (printed as Go's
/// `FloatHistogram.String()`, as Prometheus 2.52+ renders it), no number; a `query` sample's
/// `.Value` likewise.
#[test]
fn histogram_values_render_as_prometheus_renders_them() {
    let h = Some(std::sync::Arc::new(latency()));
    let want = "{count:4, sum:4, (0.5,1]:3, (1,2]:1}";
    assert_eq!(expand_data("{{ $value }}", 0.0, h.clone(), &ups), want);
    assert_eq!(expand_data("{{ .Value }}", 0.0, h.clone(), &ups), want);
    let err = expand_data("{{ $value | humanize }}", 0.0, h.clone(), &ups);
    assert!(
        err.contains("can't convert *histogram.FloatHistogram to float"),
        "{err}"
    );
    assert_eq!(
        expand_data(
            "{{ with query \"latency\" }}{{ . | first | value }}{{ end }}",
            0.0,
            None,
            &ups
        ),
        want
    );
    assert_eq!(
        expand_data(
            "{{ range query \"latency\" }}{{ .Value }}{{ end }}",
            0.0,
            None,
            &ups
        ),
        want
    );
    // Its exported fields, and `%s` through its String method, as Go reads them.
    assert_eq!(
        expand_data(
            "{{ $value.Count | humanize }} in {{ $value.Sum }}s, schema {{ $value.Schema }}; {{ printf \"%s\" $value }}",
            0.0,
            h.clone(),
            &ups
        ),
        format!("4 in 4s, schema 0; {want}")
    );
    assert!(
        expand_data("{{ $value.Nope }}", 0.0, h.clone(), &ups)
            .contains("can't evaluate field Nope in type *histogram.FloatHistogram")
    ); // Compared as Go compares two pointers: the same histogram is equal to itself, a query's
    // histogram that only looks alike is not, and a number is another type.
    assert_eq!(
        expand_data(
            "{{ eq $value $value }} {{ eq $value .Value }} {{ ne $value $value }}",
            0.0,
            h.clone(),
            &ups
        ),
        "true true false"
    );
    assert_eq!(
        expand_data(
            "{{ with query \"latency\" }}{{ eq $value (. | first | value) }}{{ end }}",
            0.0,
            h.clone(),
            &ups
        ),
        "false"
    );
    assert!(
        expand_data("{{ eq $value 1.0 }}", 0.0, h.clone(), &ups)
            .contains("incompatible types for comparison")
    );
    // A missing value compares without error, equal only to another missing one.
    assert_eq!(
        expand_data(
            "{{ eq $value (args).arg0 }} {{ eq (args).arg0 $value }} {{ eq (args).arg0 (args).arg1 }}",
            0.0,
            None,
            &ups
        ),
        "false false true"
    );
    // A query's sample is itself, as a Go pointer is.
    assert_eq!(
        expand_data(
            "{{ with query \"latency\" }}{{ $s := first . }}{{ eq $s $s }}{{ end }}",
            0.0,
            None,
            &ups
        ),
        "true"
    );
}

#[test]
fn the_usual_alert_idioms_render_as_in_prometheus() {
    for (text, value, want) in [
        ("{{ $labels.instance }} is down", 0.0, "web:9100 is down"),
        ("{{ $value }}", 1e6, "1e+06"),
        ("{{ $value }}", 1234567.0, "1.234567e+06"),
        ("{{ $value }}", 0.5, "0.5"),
        ("{{ $value | humanize }}", 1234567.0, "1.235M"),
        ("{{ humanizePercentage $value }}", 0.1234567, "12.35%"),
        ("{{ printf \"%.2f\" $value }}", 1.23456, "1.23"),
        (
            "{{ if gt $value 0.9 }}high{{ else }}low{{ end }}",
            0.95,
            "high",
        ),
        (
            "{{ if gt $value 0.9 }}high{{ else }}low{{ end }}",
            0.5,
            "low",
        ),
        (
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}",
            0.0,
            "__name__=up instance=web:9100 job=node ",
        ),
        (
            "{{ with query \"up\" }}{{ . | first | value | humanize }}{{ end }}",
            0.0,
            "0",
        ),
        (
            "{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}:{{ .Value }} {{ end }}",
            0.0,
            "a:9100:1 b:9100:0 ",
        ),
        (
            "{{ define \"x\" }}[{{ .arg0 }}]{{ end }}{{ template \"x\" (args $labels.job) }}",
            0.0,
            "[node]",
        ),
        ("{{ index $labels \"job\" }}", 0.0, "node"),
        (
            "{{ $externalLabels.cluster }} {{ $externalURL }}",
            0.0,
            "prod http://vigil:9090/prefix",
        ),
        ("a {{- /* comment */ -}} b", 0.0, "ab"),
        (
            "{{ reReplaceAll \":.*\" \"\" $labels.instance }}",
            0.0,
            "web",
        ),
        ("{{ $labels.instance | stripPort }}", 0.0, "web"),
        ("{{ $labels.nothere }}|", 0.0, "|"),
        ("{{ .Labels.job }}", 0.0, "node"),
        ("{{ humanizeDuration 3661 }}", 0.0, "1h 1m 1s"),
        (
            "{{ humanizeTimestamp 1435065584.128 }}",
            0.0,
            "2015-06-23 13:19:44.128 +0000 UTC",
        ),
        (
            "{{ title \"aa bb CC\" }} {{ toUpper \"a\" }}{{ toLower \"B\" }}",
            0.0,
            "Aa Bb CC Ab",
        ),
        ("{{ match \"a+\" \"caab\" }}", 0.0, "true"),
        (
            "{{ graphLink \"rate(x[5m]) > 0\" }}",
            0.0,
            "/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+0&g0.tab=0",
        ),
        (
            "{{ pathPrefix }} {{ externalURL }}",
            0.0,
            "/prefix http://vigil:9090/prefix",
        ),
        (
            "{{ printf \"%0.2f\" (parseDuration \"1h2m10ms\") }}",
            0.0,
            "3720.01",
        ),
        (
            "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
            0.0,
            "2",
        ),
        (
            "{{ range $i, $e := query \"up\" }}{{ if eq $i 1 }}{{ break }}{{ end }}{{ $i }}{{ end }}",
            0.0,
            "0",
        ),
        (
            "{{ and 1 0 }} {{ or 0 \"x\" }} {{ not true }}",
            0.0,
            "0 x false",
        ),
        (
            "{{ len $labels }} {{ print 1 2 }} {{ print \"a\" 1 }}",
            0.0,
            "3 1 2 a1",
        ),
        (
            "{{ if and (eq $labels.job \"node\") (ne $labels.instance \"\") }}ok{{ end }}",
            0.0,
            "ok",
        ),
        ("{{ (1435065584.128 | toTime).Unix }}", 0.0, "1435065584"),
        ("{{ toDuration 1800 }}", 0.0, "30m0s"),
        (
            "{{ html \"<a href='x'>\" }}",
            0.0,
            "&lt;a href=&#39;x&#39;&gt;",
        ),
        (
            "{{ 1e6 }} {{ 1.0 }} {{ 0x1F }} {{ 'a' }}",
            0.0,
            "1e+06 1 31 97",
        ),
        ("{{ \"a\\tb\" }}{{ `raw\\n` }}", 0.0, "a\tbraw\\n"),
        (
            "{{ if eq $labels.job \"x\" \"node\" }}any{{ end }}",
            0.0,
            "any",
        ),
        (
            "{{ with $labels.nothere }}set{{ else }}unset{{ end }}",
            0.0,
            "unset",
        ),
        (
            "{{ if false }}a{{ else if true }}b{{ else }}c{{ end }}",
            0.0,
            "b",
        ),
        (
            "{{ range query \"missing\" }}x{{ else }}none{{ end }}",
            0.0,
            "none",
        ),
        ("{{ $value }}", f64::INFINITY, "+Inf"),
        ("{{ $value }}", f64::NAN, "NaN"),
    ] {
        assert_eq!(expand(text, value), want, "{text}");
    }
}

#[test]
fn errors_read_as_prometheus_shows_them() {
    let err = |text: &str| expand(text, 0.0);
    // The preamble is 112 bytes: columns on the first line are shifted by it.
    assert_eq!(ALERT_PREAMBLE.len(), 112);
    assert_eq!(
        err("{{ .Foo }}"),
        "<error expanding template: error executing template __alert_HighLoad: template: __alert_HighLoad:1:115: executing \"__alert_HighLoad\" at <.Foo>: can't evaluate field Foo in type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }>"
    );
    assert_eq!(
        err("{{ humanize \"one\" }}"),
        "<error expanding template: error executing template __alert_HighLoad: template: __alert_HighLoad:1:115: executing \"__alert_HighLoad\" at <humanize \"one\">: error calling humanize: strconv.ParseFloat: parsing \"one\": invalid syntax>"
    );
    assert_eq!(
        err("{{ query \"missing\" | first }}"),
        "<error expanding template: error executing template __alert_HighLoad: template: __alert_HighLoad:1:133: executing \"__alert_HighLoad\" at <first>: error calling first: first() called on vector with no elements>"
    );
    assert_eq!(
        err("{{"),
        "<error expanding template: error parsing template __alert_HighLoad: template: __alert_HighLoad:1: unclosed action>"
    );
    assert_eq!(
        err("{{ nosuch 1 }}"),
        "<error expanding template: error parsing template __alert_HighLoad: template: __alert_HighLoad:1: function \"nosuch\" not defined>"
    );
    assert!(
        err("{{ gt $value 80 }}").contains("incompatible types for comparison: float64 and int")
    );
    assert!(err("{{ $label.x }}").contains("undefined variable \"$label\""));
    assert!(err("{{ if 1 }}").contains("unexpected EOF"));
    assert!(err("{{ end }}").contains("unexpected {{end}}"));
    assert!(err("{{ query \"bad(\" }}").contains("error calling query: 1:5: parse error"));
    assert!(
        err("{{ reReplaceAll \"(\" \"\" \"x\" }}")
            .contains("error calling reReplaceAll: regexp: Compile(`(`): error parsing regexp:")
    );
    // The load-time check catches the same parse errors.
    assert_eq!(
        check_alert("X", "{{ $label.instance }}").unwrap_err(),
        "template: __alert_X:1: undefined variable \"$label\""
    );
    assert!(check_alert("X", "{{ $labels.instance }} {{ $value | humanize }}").is_ok());
}

#[test]
fn hostile_templates_stop_with_an_error() {
    // Deep nesting is refused at parse time, huge output at run time, endless recursion by
    // the depth limit: none overflows a stack or grows without bound.
    let deep = "{{ (1) }}";
    assert_eq!(expand(deep, 0.0), "1");
    let nested = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(expand(&nested, 0.0).contains("max expression depth exceeded"));
    let ifs = format!(
        "{}x{}",
        "{{ if true }}".repeat(5000),
        "{{ end }}".repeat(5000)
    );
    assert!(expand(&ifs, 0.0).contains("max expression depth exceeded"));
    let recursive = "{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}";
    assert!(expand(recursive, 0.0).contains("exceeded maximum template depth"));
    let big = "{{ range $i := 1000 }}{{ range $j := 1000 }}xxxxxxxxxx{{ end }}{{ end }}";
    assert!(expand(big, 0.0).contains("output longer than"));
    // Long `else if` chains and nested blocks count as nesting.
    let chain = format!(
        "{{{{ if false }}}}{}{{{{ end }}}}",
        "{{ else if false }}".repeat(5000)
    );
    assert!(expand(&chain, 0.0).contains("max expression depth exceeded"));
    let blocks = format!(
        "{}{}",
        "{{ block \"b\" . }}".repeat(5000),
        "{{ end }}".repeat(5000)
    );
    assert!(expand(&blocks, 0.0).contains("max expression depth exceeded"));
    // Work and sizes are bounded: a huge range, a doubling string, a huge width.
    assert!(expand("{{ range 1000000000000 }}{{ end }}", 0.0).contains("more than 1000000 steps"));
    assert!(
        expand(
            "{{ range 999999 }}{{ range 999999 }}{{ end }}{{ end }}",
            0.0
        )
        .contains("more than 1000000 steps")
    );
    let doubling = format!(
        "{{{{ $x := \"xx\" }}}}{}",
        "{{ $x = printf \"%s%s\" $x $x }}".repeat(40)
    );
    assert!(expand(&doubling, 0.0).contains("result longer than"));
    // Functions whose result would pass the bound stop before building it: a replacement at
    // each of a million empty matches, many wide verbs, many copies of one long value.
    let mb = "printf \"%1000000s\" \"\"";
    for t in [
        format!("{{{{ reReplaceAll \"\" ({mb}) ({mb}) }}}}"),
        "{{ printf \"%1000000s%1000000s\" \"\" \"\" }}".to_string(),
        format!("{{{{ $x := {mb} }}}}{{{{ printf \"%s%s\" $x $x }}}}"),
        format!("{{{{ $x := {mb} }}}}{{{{ printf \"%s\" 1 $x $x }}}}"),
        format!("{{{{ $x := {mb} }}}}{{{{ print $x $x }}}}"),
        format!("{{{{ $x := {mb} }}}}{{{{ html $x $x }}}}"),
    ] {
        let out = expand(&t, 0.0);
        assert!(
            out.contains("result longer than 1048576 bytes"),
            "{t}: {out:.80}"
        );
    }
    // One match, one replacement of many `$0`s: measured before it is expanded.
    let t = format!(
        "{{{{ $x := {mb} }}}}{{{{ reReplaceAll \"(?s).+\" (printf \"%s%s%s\" \"$0\" \"$0\" \"$0\") $x }}}}"
    );
    assert!(expand(&t, 0.0).contains("result longer than 1048576 bytes"));
    assert_eq!(
        expand("{{ reReplaceAll \"(a)\" \"<$1>\" \"banana\" }}", 0.0),
        "b<a>n<a>n<a>"
    );
    // `range $i = ...` assigns the outer variable, which keeps the last item.
    assert_eq!(
        expand(
            "{{ $i := 0 }}{{ range $i = 3 }}{{ $x := $i }}{{ $x }}{{ end }}|{{ $i }}",
            0.0
        ),
        "012|2"
    );
    assert_eq!(
        expand("{{ printf \"%*d\" 100000000000 1 }}", 0.0),
        "%!(BADWIDTH)1"
    );
    assert_eq!(
        expand("{{ printf \"%.*f\" 100000000000 1.5 }}", 0.0),
        "%!(BADPREC)1.500000"
    );
    let _ = expand_with("{{ range query \"up\" }}{{ end }}", 0.0, &no_query);
}
