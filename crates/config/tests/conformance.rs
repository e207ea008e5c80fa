//! Prometheus's own config test files: every `*.good.yml` loads (and, once the files it names
//! exist, passes the file checks), every `*.bad.yml` is rejected. Prints a table of verdicts
//! and messages (`cargo test -p vigil-config --test conformance -- --nocapture`).

use std::path::{Path, PathBuf};

use vigil_config::Config;

const SHARED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/config"
);

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// Create the certificate, key, password and token files the good configs name.
fn create_named_files(dir: &Path) {
    for sub in [dir.to_path_buf(), dir.join("scrape_configs")] {
        for f in [
            "valid_cert_file",
            "valid_key_file",
            "valid_ca_file",
            "valid_password_file",
            "valid_token_file",
            "valid_username_file",
        ] {
            std::fs::write(sub.join(f), "x").unwrap();
        }
    }
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/second.rules"), "groups: []\n").unwrap();
    std::fs::write(dir.join("my_rule"), "groups: []\n").unwrap();
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.to_string_lossy().ends_with(".good.yml") || p.to_string_lossy().ends_with(".bad.yml")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn upstream_config_files() {
    let tmp = std::env::temp_dir().join(format!("vigil-config-conformance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    copy_dir(Path::new(SHARED), &tmp);
    create_named_files(&tmp);
    let mut wrong = Vec::new();
    let (mut good, mut good_ok, mut bad, mut bad_ok) = (0, 0, 0, 0);
    let mut all = files(&tmp);
    all.extend(files(&tmp.join("scrape_configs")));
    println!("{:<58} {:<9} message", "file", "verdict");
    for path in all {
        let name = path.strip_prefix(&tmp).unwrap().display().to_string();
        let is_good = name.ends_with(".good.yml");
        let res = Config::load(&path).map(|c| {
            // Rule files outside the test folder (absolute paths) cannot be created here.
            let problems: Vec<String> = c
                .check_files()
                .into_iter()
                .filter(|p| !p.contains("\"/absolute/"))
                .collect();
            (c, problems)
        });
        let (verdict, msg) = match &res {
            Ok((c, p)) if p.is_empty() => {
                ("accepted", c.warnings.first().cloned().unwrap_or_default())
            }
            Ok((_, p)) => ("files", p.join("; ")),
            Err(e) => ("rejected", e.to_string()),
        };
        let short = msg.replace(&tmp.display().to_string(), ".");
        println!(
            "{:<58} {:<9} {}",
            name,
            verdict,
            short.chars().take(160).collect::<String>()
        );
        if is_good {
            good += 1;
            if verdict == "accepted" {
                good_ok += 1;
            } else {
                wrong.push(format!("{name}: {short}"));
            }
        } else {
            bad += 1;
            if verdict == "rejected" {
                bad_ok += 1;
            } else {
                wrong.push(format!("{name} was not rejected"));
            }
        }
    }
    println!("good accepted: {good_ok}/{good}, bad rejected: {bad_ok}/{bad}");
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Chapter 14's config is a ConfigMap; the config inside it loads, and its relabeling turns
/// Kubernetes pod label sets into the targets Prometheus would scrape.
#[test]
fn kiamol_chapter_14_config_relabels_pods_like_prometheus() {
    use vigil_model::Labels;
    use vigil_model::relabel::process;

    #[derive(serde::Deserialize)]
    struct ConfigMap {
        data: std::collections::BTreeMap<String, String>,
    }
    let cm_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/kiamol-ch14/prometheus/prometheus-config.yaml"
    );
    let text = std::fs::read_to_string(cm_path).unwrap();
    // The file holds one document with extra top-level keys; read only `data`.
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(flatten)]
        cm: ConfigMap,
        #[serde(flatten)]
        _rest: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
    }
    let doc: Doc = serde_saphyr::from_str(&text).unwrap();
    let cfg = Config::parse(&doc.cm.data["prometheus.yml"], Path::new(".")).unwrap();
    let job = &cfg.scrape_configs[0];
    assert_eq!(job.job_name, "test-pods");
    assert_eq!(job.scrape_interval, std::time::Duration::from_secs(30));
    let rules = &job.relabel_configs;

    let pod = |ns: &str, extra: &[(&str, &str)]| {
        let mut v = vec![
            ("__address__", "10.1.0.5:80"),
            ("__meta_kubernetes_namespace", ns),
            ("__meta_kubernetes_pod_name", "apod-api-7d5c9-abcde"),
            ("__meta_kubernetes_pod_labelpresent_app", "true"),
            ("__meta_kubernetes_pod_label_app", "apod-api"),
            ("__metrics_path__", "/metrics"),
            ("job", "test-pods"),
        ];
        v.extend_from_slice(extra);
        Labels::from_pairs(v)
    };
    // Plain annotated pod: scraped on its own address, job from the app label, instance from the pod name.
    let out = process(&pod("kiamol-ch14-test", &[]), rules).unwrap();
    assert_eq!(out.get("__address__"), Some("10.1.0.5:80"));
    assert_eq!(out.get("job"), Some("apod-api"));
    assert_eq!(out.get("instance"), Some("apod-api-7d5c9-abcde"));
    // A blackbox sidecar: port, path and probe target from annotations.
    let bb = pod(
        "kiamol-ch14-test",
        &[
            (
                "__meta_kubernetes_pod_annotationpresent_prometheus_io_port",
                "true",
            ),
            (
                "__meta_kubernetes_pod_annotation_prometheus_io_port",
                "9115",
            ),
            (
                "__meta_kubernetes_pod_annotationpresent_prometheus_io_path",
                "true",
            ),
            (
                "__meta_kubernetes_pod_annotation_prometheus_io_path",
                "/probe",
            ),
            (
                "__meta_kubernetes_pod_annotationpresent_prometheus_io_target",
                "true",
            ),
            (
                "__meta_kubernetes_pod_annotation_prometheus_io_target",
                "http://numbers-api/healthz",
            ),
        ],
    );
    let out = process(&bb, rules).unwrap();
    assert_eq!(out.get("__address__"), Some("10.1.0.5:9115"));
    assert_eq!(out.get("__metrics_path__"), Some("/probe"));
    assert_eq!(
        out.get("__param_target"),
        Some("http://numbers-api/healthz")
    );
    // Other namespaces, and pods that opt out, are dropped.
    assert!(process(&pod("default", &[]), rules).is_none());
    let opt_out = pod(
        "kiamol-ch14-test",
        &[
            (
                "__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape",
                "true",
            ),
            (
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
                "false",
            ),
        ],
    );
    assert!(process(&opt_out, rules).is_none());
}

/// The label sets Kubernetes pod discovery produces for chapter 14's apps (annotations from
/// their manifests), through the chapter's relabel rules: what Prometheus would scrape.
#[test]
fn kiamol_chapter_14_annotated_apps() {
    use vigil_model::Labels;
    use vigil_model::relabel::process;

    #[derive(serde::Deserialize)]
    struct ConfigMap {
        data: std::collections::BTreeMap<String, String>,
        #[serde(flatten)]
        _rest: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
    }
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/kiamol-ch14/prometheus/prometheus-config.yaml"
    ))
    .unwrap();
    let cm: ConfigMap = serde_saphyr::from_str(&text).unwrap();
    let cfg = Config::parse(&cm.data["prometheus.yml"], Path::new(".")).unwrap();
    let job = &cfg.scrape_configs[0];
    assert_eq!(job.kubernetes_sd_configs.len(), 1);
    let rules = &job.relabel_configs;

    // What the pod role yields for a pod, plus what the scrape pool adds before relabeling.
    let pod = |ns: &str, app: &str, name: &str, annotations: &[(&str, &str)]| {
        let mut v: Vec<(String, String)> = vec![
            ("__address__".into(), "10.1.0.5:80".into()),
            ("__meta_kubernetes_namespace".into(), ns.into()),
            ("__meta_kubernetes_pod_name".into(), name.into()),
            ("__meta_kubernetes_pod_ip".into(), "10.1.0.5".into()),
            (
                "__meta_kubernetes_pod_labelpresent_app".into(),
                "true".into(),
            ),
            ("__meta_kubernetes_pod_label_app".into(), app.into()),
            ("__metrics_path__".into(), "/metrics".into()),
            ("__scheme__".into(), "http".into()),
            ("job".into(), "test-pods".into()),
        ];
        for (k, val) in annotations {
            let k = k.replace(['.', '/'], "_");
            v.push((
                format!("__meta_kubernetes_pod_annotationpresent_{k}"),
                "true".into(),
            ));
            v.push((
                format!("__meta_kubernetes_pod_annotation_{k}"),
                val.to_string(),
            ));
        }
        Labels::from_pairs(v)
    };

    // The brief's probe pod: every annotation set.
    let probe = pod(
        "kiamol-ch14-test",
        "apod-api",
        "apod-api-7d5c9-abcde",
        &[
            ("prometheus.io/scrape", "true"),
            ("prometheus.io/port", "9113"),
            ("prometheus.io/path", "/probe"),
            ("prometheus.io/target", "http://numbers-api/healthz"),
        ],
    );
    let out = process(&probe, rules).expect("kept");
    assert_eq!(out.get("__address__"), Some("10.1.0.5:9113"));
    assert_eq!(out.get("__metrics_path__"), Some("/probe"));
    assert_eq!(
        out.get("__param_target"),
        Some("http://numbers-api/healthz")
    );
    assert_eq!(out.get("job"), Some("apod-api"));
    assert_eq!(out.get("instance"), Some("apod-api-7d5c9-abcde"));

    // apod/api.yaml: only a path.
    let out = process(
        &pod(
            "kiamol-ch14-test",
            "apod-api",
            "apod-api-1",
            &[("prometheus.io/path", "/actuator/prometheus")],
        ),
        rules,
    )
    .unwrap();
    assert_eq!(out.get("__address__"), Some("10.1.0.5:80"));
    assert_eq!(out.get("__metrics_path__"), Some("/actuator/prometheus"));
    assert_eq!(out.get("__param_target"), None);

    // todo-list/update/proxy-with-exporter.yaml: an exporter sidecar port.
    let out = process(
        &pod(
            "kiamol-ch14-test",
            "todo-proxy",
            "todo-proxy-1",
            &[("prometheus.io/port", "9113")],
        ),
        rules,
    )
    .unwrap();
    assert_eq!(out.get("__address__"), Some("10.1.0.5:9113"));
    assert_eq!(out.get("__metrics_path__"), Some("/metrics"));
    assert_eq!(out.get("job"), Some("todo-proxy"));

    // todo-list/db.yaml and proxy.yaml opt out; other namespaces are not this job's.
    let db = pod(
        "kiamol-ch14-test",
        "todo-db",
        "todo-db-1",
        &[("prometheus.io/scrape", "false")],
    );
    assert!(process(&db, rules).is_none());
    assert!(process(&pod("kube-system", "apod-api", "x", &[]), rules).is_none());
    let elsewhere = pod(
        "kiamol-ch14-monitoring",
        "apod-api",
        "x",
        &[("prometheus.io/scrape", "true")],
    );
    assert!(process(&elsewhere, rules).is_none());
}

/// Hostile YAML: deep nesting and alias bombs end in an error naming where, not in a stack
/// overflow or memory exhaustion (serde-saphyr's recursion limit and node budget).
#[test]
fn hostile_yaml_is_an_error() {
    let n = 100_000;
    for y in [
        format!("tracing: {}{}", "[".repeat(n), "]".repeat(n)),
        format!("otlp: {}{}", "[".repeat(n), "]".repeat(n)),
        format!("global: {}{}", "[".repeat(n), "]".repeat(n)),
        format!("scrape_configs: {}1{}", "{a: ".repeat(n), "}".repeat(n)),
    ] {
        let err = vigil_config::Config::parse(&y, std::path::Path::new("."))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("(line 1, column"), "{err}");
    }
    let bomb = "tracing:\n  endpoint: x\n  a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n  a1: &a1 [*a0,*a0,*a0,*a0,*a0,*a0,*a0,*a0,*a0]\n  a2: &a2 [*a1,*a1,*a1,*a1,*a1,*a1,*a1,*a1,*a1]\n  a3: &a3 [*a2,*a2,*a2,*a2,*a2,*a2,*a2,*a2,*a2]\n  a4: &a4 [*a3,*a3,*a3,*a3,*a3,*a3,*a3,*a3,*a3]\n  a5: &a5 [*a4,*a4,*a4,*a4,*a4,*a4,*a4,*a4,*a4]\n  a6: &a6 [*a5,*a5,*a5,*a5,*a5,*a5,*a5,*a5,*a5]\n  a7: &a7 [*a6,*a6,*a6,*a6,*a6,*a6,*a6,*a6,*a6]\n  a8: &a8 [*a7,*a7,*a7,*a7,*a7,*a7,*a7,*a7,*a7]\n  a9: &a9 [*a8,*a8,*a8,*a8,*a8,*a8,*a8,*a8,*a8]\n";
    let err = vigil_config::Config::parse(bomb, std::path::Path::new("."))
        .expect_err("refused")
        .to_string();
    assert!(err.contains("budget breached"), "{err}");
}
