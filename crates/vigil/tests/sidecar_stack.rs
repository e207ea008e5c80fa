//! Chapter 14's todo-list stack on this machine with real software: nginx (with `stub_status`)
//! and Debian's `prometheus-nginx-exporter`, PostgreSQL and Debian's
//! `prometheus-postgres-exporter`, and the to-do app of `examples/todo-app` instrumented with the
//! `prometheus-client` crate. vigil scrapes them through `file_sd_configs` under the chapter's job
//! names, traffic goes through nginx to the app and into the database, and every query of the
//! chapter's todo-list v3 dashboard returns data.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/kiamol-ch14/grafana/update/grafana-dashboard-todo-list-v3.json"
);

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// A command as the `postgres` user when we are root (PostgreSQL refuses to run as root).
fn pg_cmd(bin: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().join("bin").join(name))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .unwrap_or_else(|| panic!("PostgreSQL's {name} is not installed: run ./scripts/test"))
}

/// A PostgreSQL server in `dir` on `port`, stopped when dropped.
struct Postgres {
    data: PathBuf,
}

impl Postgres {
    fn start(dir: &Path, port: u16) -> Postgres {
        let data = dir.join("pgdata");
        if is_root() {
            // The server runs as `postgres`: it needs its directory.
            let _ = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir)
                .status();
        }
        let out = pg_cmd(&pg_bin("initdb"))
            .args(["--auth=trust", "--username=postgres", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = pg_cmd(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("postgres.log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1",
                dir.display()
            ))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Postgres { data }
    }

    fn psql(&self, port: u16, db: &str, sql: &str) {
        let out = pg_cmd(&pg_bin("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = pg_cmd(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// nginx in front of the app, with `stub_status`, in `dir`.
fn nginx(dir: &Path, port: u16, app: u16) -> Proc {
    let conf = dir.join("nginx.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n{user}events {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/nginx-body;\n  proxy_temp_path {d}/nginx-proxy;\n  fastcgi_temp_path {d}/nginx-fastcgi;\n  uwsgi_temp_path {d}/nginx-uwsgi;\n  scgi_temp_path {d}/nginx-scgi;\n  server {{\n    listen 127.0.0.1:{port};\n    location = /stub_status {{ stub_status; }}\n    location / {{ proxy_pass http://127.0.0.1:{app}; }}\n  }}\n}}\n",
            user = if is_root() { "user root;\n" } else { "" },
        ),
    )
    .unwrap();
    spawn(
        "nginx",
        &debian_bin("nginx"),
        &[
            "-c".into(),
            conf.display().to_string(),
            "-p".into(),
            d.to_string(),
            "-g".into(),
            "daemon off;".into(),
        ],
        dir,
    )
}

/// The to-do app: an example of this crate (`cargo test --all-targets` builds it; a run of this
/// test alone builds it here).
fn todo_app_bin() -> PathBuf {
    let bin = vigil_bin().with_file_name("examples").join("todo-app");
    if !bin.exists() {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-p", "vigil", "--example", "todo-app"])
            .status()
            .unwrap();
        assert!(st.success(), "building examples/todo-app");
    }
    bin
}

/// Every query of the dashboard, with its panel's title.
fn dashboard_queries() -> Vec<(String, String)> {
    let d: Value = serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap();
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = d["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = stack.pop() {
        stack.extend(p["panels"].as_array().into_iter().flatten());
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push((p["title"].as_str().unwrap_or("").to_string(), e.to_string()));
            }
        }
    }
    out
}

#[test]
fn chapter14_todo_stack_feeds_every_dashboard_panel() {
    let dir = temp_dir("sidecar-stack");
    let pg_port = free_port();
    let pg = Postgres::start(&dir, pg_port);
    pg.psql(pg_port, "postgres", "CREATE DATABASE todo");
    pg.psql(
        pg_port,
        "todo",
        "CREATE TABLE items (id serial PRIMARY KEY, item text NOT NULL)",
    );
    let pge_port = free_port();
    let mut pge = Command::new(debian_bin("prometheus-postgres-exporter"));
    pge.arg(format!("--web.listen-address=127.0.0.1:{pge_port}"))
        .env(
            "DATA_SOURCE_NAME",
            format!("postgresql://postgres@127.0.0.1:{pg_port}/todo?sslmode=disable"),
        )
        .current_dir(&dir)
        .stdout(std::fs::File::create(dir.join("postgres-exporter.log")).unwrap())
        .stderr(std::fs::File::create(dir.join("postgres-exporter.err")).unwrap());
    let _pge = Proc {
        child: pge.spawn().unwrap(),
        name: "postgres-exporter".into(),
        log: dir.join("postgres-exporter.err"),
    };
    let app_port = free_port();
    let _app = spawn(
        "todo-app",
        &todo_app_bin(),
        &[format!("127.0.0.1:{app_port}")],
        &dir,
    );
    let nginx_port = free_port();
    let _nginx = nginx(&dir, nginx_port, app_port);
    wait_http(&format!("http://127.0.0.1:{nginx_port}/stub_status"));
    let ne_port = free_port();
    let _ne = spawn(
        "nginx-exporter",
        &debian_bin("prometheus-nginx-exporter"),
        &[
            format!("-nginx.scrape-uri=http://127.0.0.1:{nginx_port}/stub_status"),
            format!("-web.listen-address=127.0.0.1:{ne_port}"),
        ],
        &dir,
    );
    for p in [pge_port, app_port, ne_port] {
        wait_http(&format!("http://127.0.0.1:{p}/metrics"));
    }
    // Pods stand in as file_sd targets under the chapter's job names.
    let sd = dir.join("todo.json");
    std::fs::write(
        &sd,
        format!(
            r#"[{{"targets": ["127.0.0.1:{app_port}"], "labels": {{"job": "todo-web"}}}},
                {{"targets": ["127.0.0.1:{ne_port}"], "labels": {{"job": "todo-proxy"}}}},
                {{"targets": ["127.0.0.1:{pge_port}"], "labels": {{"job": "todo-db"}}}}]"#
        ),
    )
    .unwrap();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: todo\n    file_sd_configs:\n      - files: ['{}']\n",
        sd.display()
    );
    let v = Vigil::start("sidecar-stack", Some(&cfg), &[]);
    // (discovered targets reach the scrapers after the discovery manager's first update)
    wait_for("all three jobs up", Duration::from_secs(30), || {
        (query(&v.base, "up == 1").len() == 3).then_some(())
    });
    // Traffic: new items through the proxy to the app, rows into the database.
    for round in 0..6 {
        for i in 0..5 {
            let (code, _) = http(
                "POST",
                &format!("http://127.0.0.1:{nginx_port}/new"),
                Some(&format!("item=task-{round}-{i}")),
            )
            .unwrap();
            assert_eq!(code, 303, "adding an item through nginx");
            let (code, page) =
                http("GET", &format!("http://127.0.0.1:{nginx_port}/"), None).unwrap();
            assert_eq!(code, 200);
            assert!(page.contains(&format!("task-{round}-{i}")));
            pg.psql(pg_port, "todo", &format!("INSERT INTO items (item) VALUES ('task-{round}-{i}'); SELECT count(*) FROM items"));
        }
        std::thread::sleep(Duration::from_millis(700));
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut empty = Vec::new();
    let queries = dashboard_queries();
    assert_eq!(queries.len(), 20, "the v3 dashboard's queries");
    for (title, q) in &queries {
        let r = query(&v.base, q);
        if r.is_empty() {
            empty.push(format!("{title}: {q}"));
        }
    }
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );
    // And the values mean what the panels say.
    let one = |q: &str| -> f64 {
        let r = query(&v.base, q);
        assert_eq!(r.len(), 1, "{q}: {r:?}");
        r[0]["value"][1].as_str().unwrap().parse().unwrap()
    };
    assert_eq!(one("sum(todo_tasks_created_total)"), 30.0);
    assert!(one(r#"sum(rate(nginx_http_requests_total{job="todo-proxy"}[5m]))"#) > 0.0);
    assert!(one(r#"sum(rate(pg_stat_database_tup_inserted{datname="todo"}[5m]))"#) > 0.0);
    let p90 = one(
        r#"histogram_quantile(0.90, sum without(code, job, method, instance) (rate(http_request_duration_seconds_bucket{code="200"}[5m])))"#,
    );
    assert!(p90.is_finite() && p90 > 0.0, "p90 {p90}");
    assert!(one(r#"sum(http_request_duration_seconds_count{code="303",method="POST"})"#) >= 30.0);
}
