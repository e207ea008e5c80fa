//! `vigil demo`, run as a newcomer runs it: its targets (found through the simulated
//! Kubernetes API) come up healthy, the pod annotated `prometheus.io/scrape: "false"` is
//! dropped and the relabel steps say which rule dropped it, every panel of its dashboards
//! draws data in Chromium, the numbers API's alert fires when the API breaks, `vigil demo
//! scale` adds pods that become targets without a reload, and Ctrl-C (SIGINT) ends the
//! process leaving no files behind. Screenshots go to `target/ui-screenshots/demo-*.png`.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// Health by job of the active targets (a job is "up" only when all its targets are).
fn jobs(base: &str) -> BTreeMap<String, (usize, bool)> {
    let t = get_json(&format!("{base}/api/v1/targets?state=active"));
    let mut out: BTreeMap<String, (usize, bool)> = BTreeMap::new();
    for t in t["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let job = t["labels"]["job"].as_str().unwrap_or("").to_string();
        let e = out.entry(job).or_insert((0, true));
        e.0 += 1;
        e.1 &= t["health"] == "up";
    }
    out
}

/// The demo process, killed if the test fails before it is stopped.
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGINT to the demo, then its exit status (within 30s).
fn interrupt(child: &mut std::process::Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the demo did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The paths in `dir`, sorted.
fn listing(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

#[test]
fn demo_runs_the_chapters_story_and_stops_cleanly() {
    let tmp = temp_dir("demo-tmp");
    let logs = temp_dir("demo-logs");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(logs.join("demo.log")).unwrap();
    let started = Instant::now();
    let mut demo = Demo(
        Command::new(vigil_bin())
            .args(["demo", &format!("--web.listen-address=127.0.0.1:{port}")])
            .env("TMPDIR", &tmp)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("vigil demo"),
    );
    let log_text = || std::fs::read_to_string(logs.join("demo.log")).unwrap_or_default();

    // Ready after PostgreSQL, nginx and the exporters have started: about 10s on an idle
    // machine, over 20s on a loaded one (a CI run timed out at 20s).
    wait_http_for(&format!("{base}/-/ready"), Duration::from_secs(90));
    // The chapter's jobs, all healthy.
    let want = [
        "timecheck",
        "todo-web",
        "todo-proxy",
        "todo-db",
        "numbers-api",
        "cadvisor",
        "kube-state-metrics",
        "vigil",
    ];
    wait_for("every demo job healthy", Duration::from_secs(60), || {
        let j = jobs(&base);
        want.iter()
            .all(|w| j.get(*w).is_some_and(|(n, up)| *n > 0 && *up))
            .then_some(())
    });
    let up_after = started.elapsed();
    let out = log_text();
    assert!(
        out.contains("the Kubernetes API here is SIMULATED"),
        "the log says the cluster is simulated: {out}"
    );
    assert!(
        out.contains("/service-discovery"),
        "the guide is printed: {out}"
    );
    let up = query(&base, "up");
    assert!(
        up.iter()
            .all(|s| s["metric"]["cluster"] == "simulated" || s["metric"]["job"] == "vigil"),
        "every pod target carries cluster=\"simulated\": {up:?}"
    );

    // The load generator's pod is dropped by its annotation, and the relabel steps say so.
    let t = get_json(&format!("{base}/api/v1/targets?state=dropped"));
    let dropped = t["data"]["droppedTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .find(|d| {
            d["scrapePool"] == "test-pods"
                && d["discoveredLabels"]["__meta_kubernetes_pod_label_app"] == "loadgen"
        })
        .unwrap_or_else(|| panic!("loadgen is not among the dropped targets: {t}"));
    assert_eq!(
        dropped["discoveredLabels"]["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
        "false"
    );
    let steps = get_json(&format!(
        "{base}/api/v1/targets/relabel_steps?scrapePool=test-pods&labels={}",
        enc(&dropped["discoveredLabels"].to_string())
    ));
    let steps = steps["data"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let last = steps.last().expect("relabel steps");
    assert_eq!(last["keep"], false, "{steps:?}");
    assert_eq!(last["rule"]["action"], "drop", "{steps:?}");
    assert_eq!(last["rule"]["regex"], "true;false", "{steps:?}");

    // Every panel of the demo's dashboards has data, first through the API, then drawn.
    let uids = ["demo-todo-list", "demo-numbers-api", "demo-cluster"];
    let mut exprs = Vec::new();
    for uid in uids {
        let d = get_json(&format!("{base}/api/v1/dashboards/{uid}"));
        let dash = &d["data"]["dashboard"];
        assert!(
            dash["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "demo")),
            "{uid} is tagged demo: {d}"
        );
        let panels = dash["panels"].as_array().cloned().unwrap_or_default();
        for p in panels {
            for t in p["targets"].as_array().cloned().unwrap_or_default() {
                exprs.push((uid, t["expr"].as_str().unwrap_or("").to_string()));
            }
        }
    }
    assert!(exprs.len() > 20, "{exprs:?}");
    wait_for(
        "every demo panel's query answering",
        Duration::from_secs(60),
        || {
            exprs
                .iter()
                .all(|(_, e)| !query(&base, e).is_empty())
                .then_some(())
        },
    );
    let panels_after = started.elapsed();
    let uid_args: Vec<String> = uids.iter().map(|u| u.to_string()).collect();
    let (ok, text) = browser_script("demo.mjs", &base, &uid_args);
    assert!(ok, "demo dashboard checks failed:\n{text}");
    assert!(text.contains("all demo checks passed"));

    // The numbers API breaks after 100 calls (the load generator makes two a second; these
    // make sure of it now), its probe fails, and its alert fires.
    let numbers_ip =
        get_json(&format!("{base}/api/v1/targets?state=active"))["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|t| t["labels"]["job"] == "numbers-api")
            .and_then(|t| {
                t["discoveredLabels"]["__meta_kubernetes_pod_ip"]
                    .as_str()
                    .map(str::to_string)
            })
            .expect("the numbers-api pod's IP");
    let mut broke = false;
    for _ in 0..100 {
        let (code, _) = http("GET", &format!("http://{numbers_ip}:8080/rng"), None).unwrap();
        broke |= code == 500;
    }
    assert!(broke, "the numbers API answered 100 calls without breaking");
    wait_for(
        "NumbersApiUnhealthy firing",
        Duration::from_secs(60),
        || {
            let a = get_json(&format!("{base}/api/v1/alerts"));
            a["data"]["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .any(|a| {
                    a["labels"]["alertname"] == "NumbersApiUnhealthy" && a["state"] == "firing"
                })
                .then_some(())
        },
    );

    // Scaling adds pods, and discovery makes them targets without a reload.
    let reloaded = || {
        query(
            &base,
            "prometheus_config_last_reload_success_timestamp_seconds",
        )[0]["value"][1]
            .clone()
    };
    let reloads = reloaded();
    let st = Command::new(vigil_bin())
        .args(["demo", "scale", "timecheck", "3"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "vigil demo scale: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(String::from_utf8_lossy(&st.stdout).contains("scaled to 3"));
    wait_for(
        "three timecheck targets up",
        Duration::from_secs(30),
        || (jobs(&base).get("timecheck") == Some(&(3, true))).then_some(()),
    );
    assert_eq!(reloaded(), reloads, "no reload happened");
    // Down again: the pods gone stop listening.
    let ips = |job: &str| -> Vec<String> {
        get_json(&format!("{base}/api/v1/targets?state=active"))["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t["labels"]["job"] == job)
            .filter_map(|t| {
                t["discoveredLabels"]["__meta_kubernetes_pod_ip"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    };
    let three = ips("timecheck");
    let st = Command::new(vigil_bin())
        .args(["demo", "scale", "timecheck", "1"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert!(st.status.success());
    wait_for("one timecheck target", Duration::from_secs(30), || {
        (jobs(&base).get("timecheck") == Some(&(1, true))).then_some(())
    });
    let one = ips("timecheck");
    for ip in three.iter().filter(|ip| !one.contains(ip)) {
        wait_for(
            &format!("{ip}:8080 closed"),
            Duration::from_secs(10),
            || {
                std::net::TcpStream::connect((ip.as_str(), 8080))
                    .is_err()
                    .then_some(())
            },
        );
    }
    // Refused by name: an unknown deployment, too many replicas, a singleton exporter.
    for (args, why) in [
        (["nosuch", "2"], "no deployment \"nosuch\""),
        (["timecheck", "21"], "at most 20"),
        (["cadvisor", "2"], "not scaled"),
    ] {
        let bad = Command::new(vigil_bin())
            .args(["demo", "scale"])
            .args(args)
            .env("TMPDIR", &tmp)
            .output()
            .unwrap();
        assert!(!bad.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    // A second demo on the same port stops at once, naming the flag, and leaves the first
    // one's files alone; so does one given a directory of someone else's files.
    let other_tmp = temp_dir("demo-tmp2");
    let before = listing(&tmp);
    assert_eq!(
        before.len(),
        2,
        "the demo's directory and pointer: {before:?}"
    );
    let clash = Command::new(vigil_bin())
        .args(["demo", &format!("--web.listen-address=127.0.0.1:{port}")])
        .env("TMPDIR", &other_tmp)
        .output()
        .unwrap();
    assert!(!clash.status.success());
    assert!(
        String::from_utf8_lossy(&clash.stderr).contains("--web.listen-address"),
        "{}",
        String::from_utf8_lossy(&clash.stderr)
    );
    let foreign = temp_dir("demo-foreign");
    std::fs::write(foreign.join("prometheus.yml"), "mine\n").unwrap();
    let refused = Command::new(vigil_bin())
        .args([
            "demo",
            &format!("--web.listen-address=127.0.0.1:{}", free_port()),
            &format!("--data={}", foreign.display()),
        ])
        .env("TMPDIR", &other_tmp)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not the demo's"));
    assert_eq!(
        std::fs::read_to_string(foreign.join("prometheus.yml")).unwrap(),
        "mine\n"
    );
    assert_eq!(listing(&other_tmp), Vec::<std::path::PathBuf>::new());
    assert_eq!(
        listing(&tmp),
        before,
        "the running demo's files were touched"
    );
    let _ = std::fs::remove_dir_all(&other_tmp);
    let _ = std::fs::remove_dir_all(&foreign);

    // Ctrl-C: the process ends cleanly and its files are gone.
    let status = interrupt(&mut demo.0);
    assert!(status.success(), "exit status {status}: {}", log_text());
    let left = listing(&tmp);
    assert!(left.is_empty(), "files left behind: {left:?}");
    println!(
        "vigil demo: every target up after {:.1}s, every panel's query answering after {:.1}s",
        up_after.as_secs_f64(),
        panels_after.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir_all(&logs);
}

/// Ctrl-C a moment after starting, before or just as the server comes up (listening on every
/// address, `:PORT`): the demo ends with success and leaves no files, whichever it was.
#[test]
fn demo_interrupted_while_starting_leaves_nothing() {
    let tmp = temp_dir("demo-early");
    let port = free_port();
    let mut demo = Demo(
        Command::new(vigil_bin())
            .args(["demo", &format!("--web.listen-address=:{port}")])
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("vigil demo"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let status = interrupt(&mut demo.0);
    let mut err = String::new();
    if let Some(mut e) = demo.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(status.success(), "exit status {status}: {err}");
    let left = listing(&tmp);
    assert!(left.is_empty(), "files left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&tmp);
}
