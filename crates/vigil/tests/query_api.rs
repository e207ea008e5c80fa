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

/// The NDJSON lines of a search answer: every `results` record in order, and the trailer.
fn search_lines(base: &str, path_and_query: &str) -> (Vec<serde_json::Value>, serde_json::Value) {
    let (code, body) = get(&format!("{base}{path_and_query}"));
    assert_eq!(code, 200, "{path_and_query}: {body}");
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let (trailer, batches) = lines.split_last().expect("a trailer");
    assert_eq!(trailer["status"], "success", "{body}");
    let mut records = Vec::new();
    for b in batches {
        records.extend(b["results"].as_array().expect("a batch").iter().cloned());
    }
    (records, trailer.clone())
}

/// `--enable-feature=search-api` over a real node exporter's series: `/api/v1/search/*`
/// finds exactly the names and values `/api/v1/label/.../values` lists that contain a term,
/// scored by where the term starts (Prometheus's substring score), in the order asked for,
/// cut at `limit` with `has_more`, with the metric's metadata from the target, over GET and
/// POST. Bad parameters, the feature off and agent mode answer as Prometheus does. (Debian's
/// Prometheus 2.42 predates the API, so the expectations come from its definition in
/// current Prometheus's `web/api/v1/search.go`.)
#[test]
fn search_api_finds_names_and_values_as_prometheus_defines() {
    let dir = temp_dir("search-api");
    let (_ne, ne_port) = node_exporter(&dir);
    let cfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"
    );
    let v = Vigil::start(
        "search-api",
        Some(&cfg),
        &["--enable-feature=search-api", "--web.search.max-limit=5000"],
    );
    let b = &v.base;
    wait_for("node exporter scraped", Duration::from_secs(15), || {
        (!query(b, "node_cpu_seconds_total").is_empty()).then_some(())
    });
    wait_for("metadata", Duration::from_secs(10), || {
        let j = get_json(&format!(
            "{b}/api/v1/metadata?metric=node_cpu_seconds_total"
        ));
        j["data"]["node_cpu_seconds_total"].is_array().then_some(())
    });
    let names: Vec<String> = get_json(&format!("{b}/api/v1/label/__name__/values"))["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let score = |name: &str, term: &str| {
        let at = name.find(term).unwrap();
        if at == 0 {
            1.0
        } else {
            1.0 - 0.9 * at as f64 / (name.len() - term.len()) as f64
        }
    };
    // Every name with "cpu", ascending, each with its score; metadata where the target
    // declares the family.
    let (got, trailer) = search_lines(
        b,
        "/api/v1/search/metric_names?search[]=cpu&include_score=true&include_metadata=true&limit=5000",
    );
    let want: Vec<&String> = names.iter().filter(|n| n.contains("cpu")).collect();
    assert!(want.len() > 3, "{want:?}");
    assert_eq!(trailer["has_more"], false);
    assert_eq!(
        got.iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        want.iter().map(|n| n.as_str()).collect::<Vec<_>>()
    );
    for r in &got {
        let n = r["name"].as_str().unwrap();
        let s = r["score"].as_f64().unwrap();
        assert!((s - score(n, "cpu")).abs() < 1e-9, "{r}");
    }
    let cpu = got
        .iter()
        .find(|r| r["name"] == "node_cpu_seconds_total")
        .unwrap();
    assert_eq!(cpu["type"], "counter", "{cpu}");
    assert!(cpu["help"].as_str().is_some_and(|h| !h.is_empty()), "{cpu}");
    // By score: best first, ties by name; cut at the limit, with more to come.
    let (top, trailer) = search_lines(
        b,
        "/api/v1/search/metric_names?search[]=cpu&sort_by=score&limit=3&batch_size=2",
    );
    let mut by_score: Vec<(f64, &String)> = want.iter().map(|n| (score(n, "cpu"), *n)).collect();
    by_score.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(y.1)));
    assert_eq!(
        top.iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        by_score[..3]
            .iter()
            .map(|x| x.1.as_str())
            .collect::<Vec<_>>()
    );
    assert!(top.iter().all(|r| r.get("score").is_none()));
    assert_eq!(trailer["has_more"], true);
    // Label values of one metric, case folded, descending; label names; a POSTed form.
    let modes: Vec<String> = get_json(&format!(
        "{b}/api/v1/label/mode/values?match[]=node_cpu_seconds_total"
    ))["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    let (got, _) = search_lines(
        b,
        "/api/v1/search/label_values?label=mode&match[]=node_cpu_seconds_total&search[]=I&case_sensitive=false&sort_by=alpha&sort_dir=dsc",
    );
    let mut want: Vec<&String> = modes.iter().filter(|m| m.contains('i')).collect();
    want.reverse();
    assert!(want.contains(&&"idle".to_string()), "{modes:?}");
    assert_eq!(
        got.iter()
            .map(|r| r["value"].as_str().unwrap())
            .collect::<Vec<_>>(),
        want.iter().map(|m| m.as_str()).collect::<Vec<_>>()
    );
    let (got, _) = search_lines(
        b,
        "/api/v1/search/label_names?match[]=node_cpu_seconds_total",
    );
    assert_eq!(
        got.iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["__name__", "cpu", "instance", "job", "mode"]
    );
    let (code, body) = http(
        "POST",
        &format!("{b}/api/v1/search/label_values"),
        Some("label=mode&match%5B%5D=node_cpu_seconds_total&search%5B%5D=idle"),
    )
    .unwrap();
    assert_eq!(
        (code, body.as_str()),
        (
            200,
            "{\"results\":[{\"value\":\"idle\"}]}\n{\"status\":\"success\",\"has_more\":false}\n"
        )
    );
    // Refusals, in the API's usual JSON.
    let refused = |q: &str| {
        let (code, body) = get(&format!("{b}{q}"));
        let j: serde_json::Value = serde_json::from_str(&body).unwrap();
        (
            code,
            j["errorType"].as_str().unwrap().to_string(),
            j["error"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(
        refused("/api/v1/search/metric_names?limit=5001"),
        (
            400,
            "bad_data".into(),
            "limit 5001 exceeds the configured maximum (5000, see --web.search.max-limit)".into()
        )
    );
    assert_eq!(
        refused("/api/v1/search/label_values?search[]=x"),
        (
            400,
            "bad_data".into(),
            "missing required parameter \"label\"".into()
        )
    );
    // Without the feature, and in agent mode.
    let off = Vigil::start("search-api-off", Some("scrape_configs: []\n"), &[]);
    let (code, body) = get(&format!("{}/api/v1/search/label_names", off.base));
    assert_eq!(
        (code, body.as_str()),
        (
            500,
            "{\"status\":\"error\",\"errorType\":\"unavailable\",\"error\":\"search API disabled\"}"
        )
    );
    let port = free_port();
    let _agent = spawn(
        "vigil-agent",
        &vigil_bin(),
        &[
            "--agent".into(),
            "--enable-feature=search-api".into(),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--config.file={}", off.dir.join("vigil.yml").display()),
            format!("--storage.agent.path={}", dir.join("agent").display()),
        ],
        &dir,
    );
    let agent = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{agent}/-/ready"));
    let (code, body) = get(&format!("{agent}/api/v1/search/label_names"));
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("unavailable with Prometheus Agent"), "{body}");
    // An agent without the feature says it is off first, as Prometheus's does.
    let port = free_port();
    let _agent_off = spawn(
        "vigil-agent-off",
        &vigil_bin(),
        &[
            "--agent".into(),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--config.file={}", off.dir.join("vigil.yml").display()),
            format!("--storage.agent.path={}", dir.join("agent-off").display()),
        ],
        &dir,
    );
    let agent_off = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{agent_off}/-/ready"));
    let (code, body) = get(&format!("{agent_off}/api/v1/search/label_names"));
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("search API disabled"), "{body}");
}
