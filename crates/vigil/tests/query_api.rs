//! The query-tooling parts of the HTTP API against vigil scraping a real node exporter:
//! metadata, target metadata, exemplars, parse/format of queries, result limits, timeouts.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn metadata_parse_format_limits_and_timeouts() {
    let dir = temp_dir("query-api");
    let (_ne, ne_port) = node_exporter(&dir);
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"
    );
    let v = Vigil::start("query-api", Some(&cfg), &[]);
    let b = &v.base;
    wait_for("node exporter scraped", Duration::from_secs(15), || {
        (!query(b, "node_cpu_seconds_total").is_empty()).then_some(())
    });

    // Metadata as the exporter declares it (`# HELP` / `# TYPE` lines).
    let exposition = get(&format!("http://127.0.0.1:{ne_port}/metrics")).1;
    let help = exposition
        .lines()
        .find_map(|l| l.strip_prefix("# HELP node_cpu_seconds_total "))
        .expect("the exporter documents node_cpu_seconds_total")
        .to_string();
    let md = wait_for("metadata", Duration::from_secs(10), || {
        let j = get_json(&format!(
            "{b}/api/v1/metadata?metric=node_cpu_seconds_total"
        ));
        (j["data"]["node_cpu_seconds_total"].is_array()).then_some(j)
    });
    assert_eq!(md["status"], "success");
    let e = &md["data"]["node_cpu_seconds_total"][0];
    assert_eq!(e["type"], "counter");
    assert_eq!(e["help"], help.as_str());
    assert_eq!(e["unit"], "");
    let all = get_json(&format!("{b}/api/v1/metadata?limit=3"));
    assert_eq!(all["data"].as_object().unwrap().len(), 3);

    let tm = get_json(&format!(
        "{b}/api/v1/targets/metadata?match_target={}&metric=node_memory_MemTotal_bytes",
        enc("{job=\"node\"}")
    ));
    let list = tm["data"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{tm}");
    assert_eq!(list[0]["target"]["job"], "node");
    assert_eq!(list[0]["type"], "gauge");
    assert!(
        list[0].get("metric").is_none(),
        "no metric field when one was asked for"
    );
    let tm = get_json(&format!(
        "{b}/api/v1/targets/metadata?match_target={}",
        enc("{job=\"other\"}")
    ));
    assert_eq!(tm["data"], serde_json::json!([]));

    // Without --enable-feature=exemplar-storage no exemplar is kept: an empty list for a
    // valid query, an error for a bad one or a range that ends before it starts (tests/
    // exemplars.rs has them stored).
    let ex = get_json(&format!(
        "{b}/api/v1/query_exemplars?query=up&start=0&end=10"
    ));
    assert_eq!(ex["data"], serde_json::json!([]));
    let (code, _) = get(&format!("{b}/api/v1/query_exemplars?query=up{{"));
    assert_eq!(code, 400);
    let (code, body) = get(&format!(
        "{b}/api/v1/query_exemplars?query=up&start=10&end=0"
    ));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("end timestamp must not be before start timestamp"));

    // parse_query and format_query.
    let q = enc("sum by(job)(rate(up[5m]))>0");
    let pq = get_json(&format!("{b}/api/v1/parse_query?query={q}"));
    assert_eq!(pq["data"]["type"], "binaryExpr");
    assert_eq!(pq["data"]["lhs"]["type"], "aggregation");
    assert_eq!(pq["data"]["lhs"]["expr"]["args"][0]["range"], 300_000);
    let fq = get_json(&format!("{b}/api/v1/format_query?query={q}"));
    assert_eq!(fq["data"], "sum by (job) (rate(up[5m])) > 0");
    let (code, body) = get(&format!("{b}/api/v1/parse_query?query={}", enc("sum(")));
    assert_eq!(code, 400);
    assert!(body.contains("bad_data"), "{body}");

    // Duration expressions: printed as written, resolved per query; one that reads the
    // query's step is unknown in the parsed tree (0) and refused as a bad parameter where the
    // step makes it 0 (an instant query), as Prometheus.
    let q = enc("rate(up[step() * 2 + 1m])");
    let fq = get_json(&format!("{b}/api/v1/format_query?query={q}"));
    assert_eq!(fq["data"], "rate(up[step() * 2 + 1m])");
    let pq = get_json(&format!("{b}/api/v1/parse_query?query={q}"));
    assert_eq!(pq["data"]["args"][0]["range"], 0, "{pq}");
    let r = get_json(&format!(
        "{b}/api/v1/query_range?query={q}&start=1&end=100&step=15"
    ));
    assert_eq!(r["status"], "success", "{r}");
    let (code, body) = get(&format!("{b}/api/v1/query?query={}", enc("up[step()]")));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("bad_data")
            && body
                .contains("invalid parameter \\\"query\\\": 3:9: duration must be greater than 0"),
        "{body}"
    );

    // `limit` on label lookups, with the warning Grafana looks for.
    let l = get_json(&format!("{b}/api/v1/label/__name__/values?limit=5"));
    assert_eq!(l["data"].as_array().unwrap().len(), 5);
    assert_eq!(l["warnings"][0], "results truncated due to limit");
    let l = get_json(&format!("{b}/api/v1/labels?limit=100000"));
    assert!(l.get("warnings").is_none());
    let s = get_json(&format!(
        "{b}/api/v1/series?match[]={}&limit=2",
        enc("node_cpu_seconds_total")
    ));
    assert_eq!(s["data"].as_array().unwrap().len(), 2);

    // Annotations come back beside the data, worded and positioned as Prometheus's.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let r = get_json(&format!(
        "{b}/api/v1/query_range?query={}&start={}&end={now}&step=1",
        enc("sort(node_cpu_seconds_total)"),
        now - 5
    ));
    assert_eq!(r["status"], "success");
    assert_eq!(
        r["warnings"][0],
        "PromQL warning: sort is ineffective for range queries since results are always ordered by labels (1:1)"
    );
    let r = get_json(&format!(
        "{b}/api/v1/query?query={}",
        enc("histogram_quantile(1.5, node_cpu_seconds_total)")
    ));
    let w: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x.as_str())
        .collect();
    assert!(
        w.contains(&"PromQL warning: quantile value should be between 0 and 1, got 1.5 (1:20)"),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|x| x.starts_with("PromQL warning: bucket label \"le\" is missing")),
        "{w:?}"
    );
    assert!(
        get_json(&format!("{b}/api/v1/query?query=up"))
            .get("warnings")
            .is_none()
    );

    // A request `timeout` shorter than the evaluation: Prometheus's timeout error.
    let (code, body) = get(&format!(
        "{b}/api/v1/query?query={}&timeout=0.0001",
        enc("count(node_cpu_seconds_total)")
    ));
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("\"errorType\":\"timeout\""), "{body}");
    // Without it the same query answers.
    assert_eq!(query(b, "count(node_cpu_seconds_total) > 0").len(), 1);
}
