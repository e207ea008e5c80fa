//! Nothing vigil accepts does nothing without a word: configured sections it does not carry out
//! yet are logged loudly, printed by `vigil check config`, named on the rules, alerts and config
//! pages; runtime information tells a failed reload from a good one; the shown configuration
//! is re-serialised without the file's comments and with secrets masked.

mod support;

use std::time::Duration;

use support::*;

const CFG: &str = "# remote_write password in a comment: hunter2\nglobal:\n  scrape_interval: 1s\nrule_files: ['rules/*.yml']\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:9093']\n      dns_sd_configs:\n        - names: [alertmanager.example]\nremote_write:\n  - url: http://user:s3cret@127.0.0.1:9201/write\nremote_read:\n  - url: http://127.0.0.1:9201/read\nscrape_configs: []\n";

#[test]
fn configured_sections_vigil_does_not_run_are_never_silent() {
    let v = Vigil::start("noops", Some(CFG), &["--web.enable-lifecycle"]);
    let log = v.proc.log_text();
    let want = "NOT RUNNING: alerting.alertmanagers[0].dns_sd_configs: vigil does not support this discovery yet";
    assert!(log.contains(want), "missing {want:?} in the log:\n{log}");
    assert!(!log.contains("s3cret"), "{log}");

    // The API beside the (empty) rules and alerts says what is configured but not running.
    let r = get_json(&format!("{}/api/v1/rules", v.base));
    assert_eq!(r["data"]["groups"], serde_json::json!([]));
    let w = r["warnings"].to_string();
    assert!(
        w.contains("dns_sd_configs: vigil does not support this discovery yet"),
        "{w}"
    );
    let a = get_json(&format!("{}/api/v1/alerts", v.base));
    let w = a["warnings"].to_string();
    assert!(w.contains("no Alertmanager is found through it"), "{w}");

    // The configuration as shown: re-serialised, comments gone, secrets masked, warnings beside.
    let c = get_json(&format!("{}/api/v1/status/config", v.base));
    let yaml = c["data"]["yaml"].as_str().unwrap();
    assert!(!yaml.contains("hunter2") && !yaml.contains('#'), "{yaml}");
    assert!(
        !yaml.contains("s3cret") && yaml.contains("<secret>"),
        "{yaml}"
    );
    assert!(yaml.contains("rules/*.yml"), "{yaml}");
    assert!(c["warnings"].to_string().contains("dns_sd_configs"), "{c}");

    // `vigil check config` prints the same.
    let out = std::process::Command::new(vigil_bin())
        .args(["check", "config"])
        .arg(v.dir.join("vigil.yml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("WARNING: NOT RUNNING: alerting"), "{text}");
    assert!(
        !text.contains("rule files found"),
        "no rule file matches: {text}"
    );

    // Runtime information: a failed reload is reported as failed, then a good one as good.
    let rt = get_json(&format!("{}/api/v1/status/runtimeinfo", v.base));
    assert_eq!(rt["data"]["reloadConfigSuccess"], true);
    assert_eq!(rt["data"]["storageRetention"], "15d");
    assert!(rt["data"].get("goroutineCount").is_none(), "{rt}");
    let first = rt["data"]["lastConfigTime"].as_str().unwrap().to_string();
    v.write_config("scrape_configs: [{job_name: x, nonsense: 1}]\n");
    let (code, _) = http("POST", &format!("{}/-/reload", v.base), None).unwrap();
    assert_eq!(code, 500);
    let rt = get_json(&format!("{}/api/v1/status/runtimeinfo", v.base));
    assert_eq!(rt["data"]["reloadConfigSuccess"], false, "{rt}");
    assert_eq!(rt["data"]["lastConfigTime"], first.as_str());
    std::thread::sleep(Duration::from_millis(1100));
    v.write_config("global:\n  scrape_interval: 1s\n");
    let (code, _) = http("POST", &format!("{}/-/reload", v.base), None).unwrap();
    assert_eq!(code, 200);
    let rt = get_json(&format!("{}/api/v1/status/runtimeinfo", v.base));
    assert_eq!(rt["data"]["reloadConfigSuccess"], true);
    assert_ne!(rt["data"]["lastConfigTime"], first.as_str());
    // And the warnings are gone with the sections.
    let r = get_json(&format!("{}/api/v1/rules", v.base));
    assert!(r.get("warnings").is_none(), "{r}");

    // An out-of-order window longer than the head's least reach (half of the default 2h
    // --storage.tsdb.min-block-duration) works for floats and native histograms alike
    // (out-of-order blocks), so it is named nowhere; before, it was NOT RUNNING for native
    // histograms.
    let warned = |window: &str| {
        v.write_config(&format!(
            "storage:\n  tsdb:\n    out_of_order_time_window: {window}\n"
        ));
        let (code, _) = http("POST", &format!("{}/-/reload", v.base), None).unwrap();
        assert_eq!(code, 200);
        let c = get_json(&format!("{}/api/v1/status/config", v.base));
        c["warnings"]
            .to_string()
            .contains("out_of_order_time_window")
    };
    assert!(!warned("2h"));
    assert!(!warned("1h"));
    let log = v.proc.log_text();
    assert!(!log.contains("out_of_order_time_window"), "{log}");
}
