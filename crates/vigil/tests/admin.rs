//! The TSDB admin API and status page against a running vigil.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::*;

#[test]
fn admin_api_is_off_by_default_and_deletes_snapshots_when_on() {
    let dir = temp_dir("admin");
    let (_ne, ne_port) = node_exporter(&dir);
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"
    );

    let off = Vigil::start("admin-off", Some(&cfg), &[]);
    let (code, body) = http(
        "POST",
        &format!("{}/api/v1/admin/tsdb/snapshot", off.base),
        None,
    )
    .unwrap();
    assert_eq!(code, 500, "as Prometheus 2.42 answers");
    assert_eq!(
        body,
        r#"{"status":"error","errorType":"unavailable","error":"admin APIs disabled"}"#
    );
    drop(off);

    let v = Vigil::start("admin-on", Some(&cfg), &["--web.enable-admin-api"]);
    wait_for("node scraped", Duration::from_secs(15), || {
        (!query(&v.base, "node_memory_MemTotal_bytes").is_empty()).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let status = get_json(&format!("{}/api/v1/status/tsdb", v.base));
    assert!(
        status["data"]["headStats"]["numSeries"].as_u64().unwrap() > 100,
        "{status}"
    );
    assert!(
        status["data"]["seriesCountByMetricName"]
            .as_array()
            .unwrap()
            .len()
            == 10
    );

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (code, body) = http(
        "POST",
        &format!(
            "{}/api/v1/admin/tsdb/delete_series?match[]={}",
            v.base,
            enc("node_memory_MemTotal_bytes")
        ),
        None,
    )
    .unwrap();
    assert_eq!(code, 204, "{body}");
    let past = get_json(&format!(
        "{}/api/v1/query?query=node_memory_MemTotal_bytes&time={}",
        v.base,
        now - 0.5
    ));
    assert_eq!(
        past["data"]["result"].as_array().unwrap().len(),
        0,
        "deleted: {past}"
    );
    assert!(
        !query(&v.base, "node_memory_Active_bytes").is_empty(),
        "other series untouched"
    );

    let (code, body) = http(
        "POST",
        &format!("{}/api/v1/admin/tsdb/snapshot", v.base),
        None,
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let snap: serde_json::Value = serde_json::from_str(&body).unwrap();
    let name = snap["data"]["name"].as_str().unwrap();
    assert!(v.dir.join("data/snapshots").join(name).is_dir());
    let (code, _) = http(
        "POST",
        &format!("{}/api/v1/admin/tsdb/clean_tombstones", v.base),
        None,
    )
    .unwrap();
    assert_eq!(code, 204);
}
