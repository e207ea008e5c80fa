//! The config crate's tests: parsing, validation and errors as Prometheus words them.

use super::*;

fn parse(y: &str) -> Result<Config, ConfigError> {
    Config::parse(y, Path::new("/etc/prometheus"))
}

#[test]
fn defaults_and_inheritance() {
    let c = parse("global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 5s\n").unwrap();
    assert_eq!(c.scrape_configs[0].scrape_interval, Duration::from_secs(15));
    assert_eq!(c.scrape_configs[0].scrape_timeout, Duration::from_secs(10));
    assert_eq!(
        c.scrape_configs[1].scrape_timeout,
        Duration::from_secs(5),
        "timeout capped at the interval"
    );
    assert_eq!(c.scrape_configs[0].metrics_path, "/metrics");
    assert!(c.scrape_configs[0].honor_timestamps);
}

#[test]
fn errors_name_the_field() {
    let e = parse("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - regex: x\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("scrape_configs[0] (job \"a\").relabel_configs[0]")
            && e.contains("requires 'target_label'"),
        "{e}"
    );
    let e = parse("scrape_configs:\n  - job_name: a\n    bogus: 1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("bogus"), "{e}");
    let e = parse("scrape_configs:\n  - job_name: a\nscrape_configs:\n  - job_name: b\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("(line 3, column 1): field scrape_configs already set"),
        "{e}"
    );
}

#[test]
fn errors_carry_path_job_and_position() {
    let y = "scrape_configs:\n  - job_name: a\n  - job_name: b\n    relabel_configs:\n      - source_labels: [x]\n        action: hashmod\n        target_label: y\n";
    let e = parse(y).unwrap_err();
    assert_eq!(
        e.field(),
        Some("scrape_configs[1] (job \"b\").relabel_configs[0]")
    );
    assert_eq!(e.line_column(), Some((5, 9)));
    assert_eq!(
        e.to_string(),
        "parsing YAML file <config>: scrape_configs[1] (job \"b\").relabel_configs[0] (line 5, column 9): relabel configuration for hashmod requires non-zero modulus"
    );
    // Shape errors: Prometheus's wording, the section's path, the key's position.
    let e = parse("scrape_configs:\n  - job_name: a\n    consult_sd_configs: []\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "parsing YAML file <config>: scrape_configs[0] (line 3, column 5): field consult_sd_configs not found in type config.ScrapeConfig"
    );
    let e = parse("global:\n  scrape_interval: [1]\n").unwrap_err();
    assert_eq!(e.field(), Some("global.scrape_interval"), "{e}");
    assert_eq!(e.line_column().map(|l| l.0), Some(2), "{e}");
    // Regex errors fit on one line and quote the pattern.
    let e = parse("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - regex: abc(def\n        target_label: x\n")
            .unwrap_err()
            .to_string();
    assert!(
        e.ends_with("error parsing regexp: unclosed group: `abc(def`") && !e.contains('\n'),
        "{e}"
    );
}

#[test]
fn unsupported_discovery_is_kept_and_warned_about() {
    let c = parse("scrape_configs:\n  - job_name: a\n  - job_name: bar\n    consul_sd_configs:\n      - server: x\n    static_configs:\n      - targets: [a:1]\n").unwrap();
    assert_eq!(
        c.scrape_configs[1].unsupported_sd_configs,
        ["consul_sd_configs"]
    );
    assert_eq!(
        c.warnings,
        [
            "scrape_configs[1] (job \"bar\"): consul_sd_configs is not supported by vigil yet and will discover no targets"
        ]
    );
    let e = parse("scrape_configs:\n  - job_name: a\n    consul_sd_configs: {server: x}\n")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("scrape_configs[0].consul_sd_configs"),
        "{e}"
    );
}

#[test]
fn masking_covers_every_way_of_writing_a_secret() {
    let y = r#"global:
  scrape_interval: 15s
remote_write:
  - url: http://user:hunter1@remote/push
    basic_auth:
      username: u
      password: &pw "hunter2 # not a comment"
scrape_configs:
  - job_name: a
    authorization: {type: Bearer, credentials: hunter3}
    tls_config:
      cert_file: c
      key: |
        -----BEGIN hunter4-----
        abc
    http_headers:
      X-Token:
        secrets: ["hunter5", hunter6]
  - job_name: b
    basic_auth:
      username: v
      password: *pw
    consul_sd_configs:
      - server: x
        token: hunter7
        tls_config: {key: hunter8, cert: c}
"#;
    let c = parse(y).unwrap();
    let m = c.to_masked_yaml();
    for n in 1..=8 {
        assert!(!m.contains(&format!("hunter{n}")), "hunter{n} leaked:\n{m}");
    }
    // Still YAML with the same shape.
    let again = parse(&m).unwrap();
    assert_eq!(again.scrape_configs.len(), 2);
    assert_eq!(
        again.scrape_configs[1]
            .http_client
            .basic_auth
            .as_ref()
            .and_then(|b| b.password.as_ref())
            .map(|p| p.0.as_str()),
        Some("<secret>")
    );
    assert!(m.contains("scrape_interval: 15s"));
}

#[test]
fn bearer_token_becomes_authorization_and_secrets_are_masked() {
    let c = parse(
        "scrape_configs:\n  - job_name: a\n    bearer_token: 1234\n    basic_auth_unused: null\n",
    )
    .unwrap_err();
    let _ = c;
    let c = parse("scrape_configs:\n  - job_name: a\n    bearer_token: 1234\n").unwrap();
    let a = c.scrape_configs[0]
        .http_client
        .authorization
        .as_ref()
        .unwrap();
    assert_eq!(
        (a.kind.as_str(), a.credentials.as_ref().unwrap().0.as_str()),
        ("Bearer", "1234")
    );
    assert!(c.to_masked_yaml().contains("bearer_token: <secret>"));
    assert!(!c.to_masked_yaml().contains("1234"));
}

#[test]
fn relative_paths_resolve_against_the_config_dir() {
    let c = parse(
        "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: ['t/*.json']\n",
    )
    .unwrap();
    assert_eq!(
        c.scrape_configs[0].file_sd_configs[0].files[0],
        "/etc/prometheus/t/*.json"
    );
}

/// Remote write authentication vigil cannot do is refused naming the field; what it does
/// not send (metadata, remote write 2.0) is named.
#[test]
fn remote_write_refuses_unsupported_auth_and_names_what_is_not_sent() {
    for what in ["sigv4", "azuread", "google_iam"] {
        let y = format!("remote_write:\n  - url: http://r/w\n    {what}: {{}}\n");
        let e = Config::parse(&y, Path::new(".")).unwrap_err().to_string();
        assert!(e.contains(&format!("remote_write[0].{what}")), "{e}");
    }
    let y = "remote_write:\n  - url: http://r/w\n    protobuf_message: io.prometheus.write.v2.Request\n";
    let c = Config::parse(y, Path::new(".")).unwrap();
    assert_eq!(
        c.remote_write[0].protobuf_message,
        "io.prometheus.write.v2.Request"
    );
    let u: Vec<String> = c.unimplemented().iter().map(|u| u.to_string()).collect();
    assert!(
        !u.iter()
            .any(|m| m.contains("protobuf_message") || m.contains("metadata_config")),
        "{u:?}"
    );
    let y = "remote_write:\n  - url: http://r/w\n    round_robin_dns: true\n    send_native_histograms: true\n";
    let c = Config::parse(y, Path::new(".")).unwrap();
    let u: Vec<String> = c.unimplemented().iter().map(|u| u.to_string()).collect();
    assert!(
        u.iter()
            .any(|m| m.starts_with("remote_write[0].round_robin_dns")),
        "{u:?}"
    );
    assert!(c.remote_write[0].send_native_histograms);
}

/// Fields Prometheus accepts and vigil does not act on are named, and `_ref` secrets are
/// refused: none is silently ignored.
#[test]
fn fields_vigil_does_not_act_on_are_named() {
    let y = "global:\n  query_log_file: q.log\n  external_labels: {dc: eu}\nscrape_configs:\n  - job_name: a\n    convert_classic_histograms_to_nhcb: true\n    scrape_failure_log_file: f.log\n    enable_http2: false\n    static_configs: [{targets: ['a:1']}]\n";
    let c = Config::parse(y, Path::new(".")).unwrap();
    let u: Vec<String> = c.unimplemented().iter().map(|u| u.to_string()).collect();
    for want in [
        "global.query_log_file: vigil does not write a query log",
        "scrape_configs[0] (a).scrape_failure_log_file:",
    ] {
        assert!(u.iter().any(|m| m.starts_with(want)), "{want}: {u:?}");
    }
    // Native histogram scraping and the conversion of classic histograms are acted on.
    for acted in [
        "scrape_native_histograms",
        "convert_classic_histograms_to_nhcb",
    ] {
        assert!(!u.iter().any(|m| m.contains(acted)), "{acted}: {u:?}");
    }
    assert!(c.scrape_configs[0].convert_classic_histograms_to_nhcb);
    // External labels are acted on (alerts, remote write, federation, remote read).
    assert!(!u.iter().any(|m| m.contains("external_labels")), "{u:?}");
    assert!(
        c.warnings.iter().any(|w| w.contains("enable_http2")),
        "{:?}",
        c.warnings
    );
    for (y, want) in [
        (
            "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password_ref: p}\n",
            "password_ref is not supported",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    tls_config: {ca_ref: c}\n",
            "ca_ref is not supported",
        ),
    ] {
        let e = Config::parse(y, Path::new(".")).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
}

/// `scrape_native_histograms` puts protobuf first unless protocols are set (in the job, or in
/// `global`, which wins over the job's native histogram setting), as current Prometheus.
#[test]
fn native_histograms_choose_the_scrape_protocols() {
    use crate::ScrapeProtocol::PrometheusProto;
    let job = |extra: &str| {
        format!("  - job_name: j\n{extra}    static_configs: [{{targets: ['a:1']}}]\n")
    };
    let parse = |global: &str, extra: &str| {
        let y = format!("{global}scrape_configs:\n{}", job(extra));
        Config::parse(&y, Path::new(".")).unwrap().scrape_configs[0].clone()
    };
    let c = parse("", "");
    assert!(!c.scrape_native_histograms);
    assert_eq!(c.scrape_protocols, crate::ScrapeProtocol::defaults());
    let c = parse("", "    scrape_native_histograms: true\n");
    assert!(c.scrape_native_histograms);
    assert_eq!(c.scrape_protocols[0], PrometheusProto);
    let c = parse("global:\n  scrape_native_histograms: true\n", "");
    assert!(c.scrape_native_histograms);
    assert_eq!(c.scrape_protocols, crate::ScrapeProtocol::proto_first());
    let c = parse(
        "global:\n  scrape_protocols: [PrometheusText0.0.4]\n",
        "    scrape_native_histograms: true\n",
    );
    assert_eq!(c.scrape_protocols.len(), 1);
    let c = parse(
        "",
        "    scrape_native_histograms: true\n    scrape_protocols: [OpenMetricsText1.0.0]\n    always_scrape_classic_histograms: true\n    native_histogram_bucket_limit: 9\n    native_histogram_min_bucket_factor: 1.1\n",
    );
    assert_eq!(c.scrape_protocols.len(), 1);
    assert!(c.always_scrape_classic_histograms);
    assert_eq!(c.native_histogram_bucket_limit, 9);
    assert_eq!(c.native_histogram_min_bucket_factor, 1.1);
}

/// `extra_scrape_metrics` (current Prometheus's replacement of the feature flag): global,
/// overridden per job.
#[test]
fn extra_scrape_metrics_resolve_per_job() {
    let y = "global:\n  extra_scrape_metrics: true\nscrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n  - job_name: b\n    extra_scrape_metrics: false\n    static_configs: [{targets: ['a:1']}]\n";
    let c = Config::parse(y, Path::new(".")).unwrap();
    assert!(c.scrape_configs[0].extra_scrape_metrics);
    assert!(!c.scrape_configs[1].extra_scrape_metrics);
    assert!(
        c.warnings
            .iter()
            .all(|w| !w.to_string().contains("extra_scrape_metrics")),
        "{:?}",
        c.warnings
    );
}

/// Scalars read as text are the text written, as Go's YAML gives a string field: not YAML 1.1
/// booleans (`yes`, `n`), not numbers printed again (`1.10`, `0x1F`, `010`), keys included.
#[test]
fn text_fields_keep_the_scalar_as_written() {
    let c = Config::parse(
        "global:\n  external_labels:\n    env: yes\n    v: 1.10\n    h: 0x1F\n    o: 010\n    n: no\n",
        std::path::Path::new("/tmp"),
    )
    .unwrap();
    let got: Vec<(String, String)> = c
        .global
        .external_labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    let want: Vec<(String, String)> = [
        ("env", "yes"),
        ("h", "0x1F"),
        ("n", "no"),
        ("o", "010"),
        ("v", "1.10"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, want);
}

/// `otlp:` as Prometheus reads and checks it.
#[test]
fn otlp_settings_and_their_checks() {
    let dir = std::path::Path::new("/tmp");
    let c = Config::parse(
        "otlp:\n  promote_resource_attributes: [' k8s.pod.name ', service.version]\n  translation_strategy: UnderscoreEscapingWithoutSuffixes\n  convert_histograms_to_nhcb: true\n",
        dir,
    )
    .unwrap();
    assert_eq!(
        c.otlp.promote_resource_attributes,
        ["k8s.pod.name", "service.version"]
    );
    assert_eq!(
        c.otlp.translation_strategy,
        "UnderscoreEscapingWithoutSuffixes"
    );
    assert!(c.otlp.convert_histograms_to_nhcb && c.otlp.label_name_underscore_sanitization);
    assert_eq!(Config::parse("", dir).unwrap().otlp, OtlpConfig::default());
    for (yaml, want) in [
        (
            "otlp:\n  promote_all_resource_attributes: true\n  promote_resource_attributes: [a]\n",
            "'promote_all_resource_attributes' and 'promote_resource_attributes' cannot be configured simultaneously",
        ),
        (
            "otlp:\n  ignore_resource_attributes: [a]\n",
            "'ignore_resource_attributes' cannot be configured unless 'promote_all_resource_attributes' is true",
        ),
        (
            "otlp:\n  promote_resource_attributes: [a, ' a']\n",
            "invalid 'promote_resource_attributes': duplicated promoted OTel resource attribute \"a\"",
        ),
        (
            "otlp:\n  promote_resource_attributes: ['']\n",
            "invalid 'promote_resource_attributes': empty promoted OTel resource attribute",
        ),
        (
            "otlp:\n  translation_strategy: Whatever\n",
            "unsupported OTLP translation strategy \"Whatever\"",
        ),
        (
            "global:\n  metric_name_validation_scheme: legacy\notlp:\n  translation_strategy: NoTranslation\n",
            "OTLP translation strategy \"NoTranslation\" is not allowed when UTF8 is disabled",
        ),
        ("otlp:\n  bogus: 1\n", "bogus"),
    ] {
        let e = Config::parse(yaml, dir).unwrap_err().to_string();
        assert!(e.contains(want), "{yaml}: {e}");
    }
}
