//! `vigil demo`: chapter 14's whole monitoring story in one process, on one machine, with no
//! cluster: a simulated Kubernetes API holding the chapter's apps (`cluster`), the apps
//! themselves on loopback pod IPs (`apps`, `todo`), a load generator (`loadgen`), and the vigil
//! server scraping them through Kubernetes discovery with the chapter's configuration, its
//! dashboards and an alert. `vigil demo scale DEPLOYMENT N` changes a running demo's replicas
//! through the simulated API, as `kubectl scale` would.

mod apps;
mod cluster;
mod loadgen;
pub mod todo;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use crate::flags::Cli;

const CONFIG: &str = include_str!("assets/prometheus.yml");
const RULES: &str = include_str!("assets/rules.yml");
const DASHBOARDS: [(&str, &str); 3] = [
    (
        "todo-list.json",
        include_str!("assets/dashboards/todo-list.json"),
    ),
    (
        "numbers-api.json",
        include_str!("assets/dashboards/numbers-api.json"),
    ),
    (
        "cluster.json",
        include_str!("assets/dashboards/cluster.json"),
    ),
];

/// `vigil demo`: its flags, or `scale` (which takes none of them).
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DemoFlags {
    #[command(subcommand)]
    pub action: Option<DemoAction>,
    /// Where the demo keeps its data and configuration: an empty or new directory, or one an
    /// earlier demo used; kept on exit [default: a new temporary directory, removed on exit]
    #[arg(long = "data")]
    pub data: Option<PathBuf>,
    /// Address the server's UI and API listen on.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    pub listen: String,
    /// The server's log level (debug, info, warn, error).
    #[arg(long = "log.level", default_value = "warn")]
    pub log_level: String,
}

#[derive(Subcommand, Debug)]
pub enum DemoAction {
    /// Change the replicas of a running demo's Deployment (new pods are discovered and
    /// scraped without a reload), as `kubectl scale deployment NAME --replicas=N` would.
    Scale {
        /// timecheck, todo-web, todo-proxy, todo-db, numbers-api or loadgen.
        deployment: String,
        /// How many pods (0 to 20).
        replicas: u32,
        /// The simulated API's address [default: the running demo's, from the file it
        /// writes in the temporary directory]
        #[arg(long = "api")]
        api: Option<String>,
    },
}

/// Marks a directory as the demo's, so `--data` never writes over anything else.
const MARKER: &str = ".vigil-demo";

/// Where a running demo says where its simulated API is (read by `vigil demo scale`): one
/// per user, as the temporary directory may be shared.
fn api_pointer() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
    std::env::temp_dir().join(format!("vigil-demo-{uid}.api"))
}

/// Write the pointer through a new file renamed into place (a rename replaces a link planted
/// under that name rather than writing through it).
fn write_pointer(api: &str) -> std::io::Result<()> {
    let p = api_pointer();
    let tmp = p.with_extension(format!("api.{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, api.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, &p));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

pub fn main(f: DemoFlags) -> ExitCode {
    // The demo's own HTTP clients (proxy, load generator, scale) need a TLS provider chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vigil demo: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A temporary data directory outlives the runtime: it goes once every task that may still
    // write into it has stopped.
    let mut temp: Option<TempDir> = None;
    let res = match f.action {
        Some(DemoAction::Scale {
            deployment,
            replicas,
            api,
        }) => rt.block_on(scale(&deployment, replicas, api)),
        None => rt.block_on(run(f.data, &f.listen, &f.log_level, &mut temp)),
    };
    rt.shutdown_timeout(Duration::from_secs(10));
    drop(temp);
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where to reach the server from this machine given its listen address (`:9090`,
/// `0.0.0.0:9090`, `[::]:9090`, `192.0.2.1:9090`): its host, or loopback when it listens on
/// every address.
fn reach(listen: &str) -> Result<String, String> {
    let (host, port) = listen
        .rsplit_once(':')
        .ok_or_else(|| format!("--web.listen-address {listen:?}: no port"))?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        _ => {
            return Err(format!(
                "--web.listen-address {listen:?}: the demo needs a fixed port (its config scrapes the server there)"
            ));
        }
    }
    Ok(match host {
        "" | "0.0.0.0" => format!("127.0.0.1:{port}"),
        "[::]" => format!("[::1]:{port}"),
        h => format!("{h}:{port}"),
    })
}

/// Write the configuration, rules and dashboards into `dir`.
fn write_files(dir: &Path, api: &str, self_addr: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("dashboards"))?;
    std::fs::write(dir.join(MARKER), "written by vigil demo\n")?;
    let cfg = CONFIG
        .replace("{{API}}", api)
        .replace("{{SELF}}", self_addr);
    std::fs::write(dir.join("prometheus.yml"), cfg)?;
    std::fs::write(dir.join("rules.yml"), RULES)?;
    for (name, json) in DASHBOARDS {
        std::fs::write(dir.join("dashboards").join(name), json)?;
    }
    Ok(())
}

/// The data directory: `--data` when it is new, empty or an earlier demo's (anything else is
/// refused, never written over), else a new temporary one removed when the demo ends.
fn data_dir(data: Option<PathBuf>) -> Result<(PathBuf, Option<TempDir>), String> {
    match data {
        Some(d) => {
            let empty = match std::fs::read_dir(&d) {
                Ok(mut entries) => entries.next().is_none(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                Err(e) => return Err(format!("--data {}: {e}", d.display())),
            };
            if !empty && !d.join(MARKER).exists() {
                return Err(format!(
                    "--data {}: the directory holds files that are not the demo's; give a new or empty directory",
                    d.display()
                ));
            }
            Ok((d, None))
        }
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let d =
                std::env::temp_dir().join(format!("vigil-demo-{}-{nanos:x}", std::process::id()));
            // `create_dir`, not `_all`: a directory already there is not ours to remove.
            std::fs::create_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            Ok((d.clone(), Some(TempDir(d))))
        }
    }
}

/// A data directory the demo made, removed when it ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn run(
    data: Option<PathBuf>,
    listen: &str,
    log_level: &str,
    temp: &mut Option<TempDir>,
) -> Result<(), String> {
    let t0 = Instant::now();
    // Ctrl-C and SIGTERM from the first moment: before the server is up they stop the
    // start-up and everything is cleaned up all the same (the server handles them once up).
    let interrupted = tokio::spawn(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    });
    let self_addr = reach(listen)?;
    // The server's port first: taken, nothing else starts.
    drop(
        std::net::TcpListener::bind(listen.strip_prefix(':').map_or(listen.to_string(), |p| {
            format!("0.0.0.0:{p}")
        }))
        .map_err(|e| {
            format!("--web.listen-address {listen}: {e}; choose another, e.g. --web.listen-address=:9091")
        })?,
    );
    let (dir, made) = data_dir(data)?;
    *temp = made;
    let http =
        vigil_scrape::client::default_client(Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let cluster = cluster::Cluster::start().map_err(|e| format!("simulated API: {e}"))?;
    let api = cluster.kube.url();
    write_files(&dir, &api, &self_addr)
        .map_err(|e| format!("writing the demo's files in {}: {e}", dir.display()))?;
    let problems = cluster.reconcile().await;
    if !problems.is_empty() {
        cluster.stop().await;
        return Err(format!(
            "starting the simulated pods: {}",
            problems.join("; ")
        ));
    }
    let control = tokio::spawn(cluster.clone().control());

    let args: Vec<String> = vec![
        "vigil".into(),
        format!("--config.file={}", dir.join("prometheus.yml").display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--web.listen-address={listen}"),
        format!("--dashboards.dir={}", dir.join("dashboards").display()),
        format!("--log.level={log_level}"),
    ];
    let cli = <Cli as clap::Parser>::try_parse_from(args).map_err(|e| e.to_string())?;
    let mut server = tokio::spawn(crate::server::run(cli.server));
    let base = format!("http://{self_addr}");
    // Wait for the server (or its failure, or Ctrl-C), then say where to look.
    let ready = async {
        loop {
            if let Ok(r) = http.get(format!("{base}/-/ready")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let mut interrupted = interrupted;
    let early = tokio::select! {
        biased;
        r = &mut server => Some(r),
        _ = &mut interrupted => {
            // The server may have caught it too and be shutting down: let it finish; one
            // still starting (it had no handler yet) is stopped.
            match tokio::time::timeout(Duration::from_secs(10), &mut server).await {
                Ok(r) => Some(r),
                Err(_) => {
                    server.abort();
                    Some((&mut server).await)
                }
            }
        }
        _ = ready => None,
    };
    let pointer = api_pointer();
    let mut wrote_pointer = false;
    if early.is_none() {
        tracing::warn!(api = %api, "vigil demo: the Kubernetes API here is SIMULATED (no cluster): pods are loopback addresses 127.14.0.N on this machine");
        wrote_pointer = match write_pointer(&api) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(file = %pointer.display(), err = %e, "vigil demo: cannot say where the demo is; give vigil demo scale --api");
                false
            }
        };
        guide(&base, &api, t0.elapsed(), &dir, wrote_pointer);
    }
    let result = match early {
        Some(r) => r,
        None => server.await,
    };
    control.abort();
    cluster.stop().await;
    if wrote_pointer && std::fs::read_to_string(&pointer).is_ok_and(|a| a == api) {
        let _ = std::fs::remove_file(&pointer);
    }
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{e:#}")),
        // Stopped by Ctrl-C before it was up.
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(format!("the server stopped: {e}")),
    }
}

fn guide(base: &str, api: &str, took: Duration, dir: &Path, found: bool) {
    let ui = base.replace("127.0.0.1", "localhost");
    let api_flag = if found {
        String::new()
    } else {
        format!(" --api={api}")
    };
    println!(
        "
vigil demo is running (ready in {:.1}s): chapter 14's apps in a SIMULATED Kubernetes cluster
(API {api}; pods on loopback addresses 127.14.0.N; every pod's target is labelled
cluster=\"simulated\").

  Targets            {ui}/targets            the chapter's jobs, found through pod discovery
  Service discovery  {ui}/service-discovery  loadgen is dropped by prometheus.io/scrape: \"false\" (see why)
  Query              {ui}/query?g0.expr=sum%20by%20(job)%20(up)
  Dashboards         {ui}/dashboards         To-do list, Numbers API, Cluster (tag: demo)
  Alerts             {ui}/alerts             NumbersApiUnhealthy fires when the numbers API breaks

Scale a deployment and watch new pods appear on /targets without a reload:
  vigil demo scale timecheck 3{api_flag}        (from a checkout: cargo run --release -p vigil -- demo scale timecheck 3{api_flag})

Files (configuration, rules, dashboards, data): {}
Ctrl-C stops everything.
",
        took.as_secs_f64(),
        dir.display()
    );
}

async fn scale(deployment: &str, replicas: u32, api: Option<String>) -> Result<(), String> {
    if replicas > 20 {
        return Err("replicas: at most 20".into());
    }
    let deployments = cluster::Cluster::deployments();
    let Some(&(ns, name, scalable)) = deployments.iter().find(|(_, n, _)| *n == deployment) else {
        let names: Vec<&str> = deployments
            .iter()
            .filter(|d| d.2)
            .map(|(_, n, _)| *n)
            .collect();
        return Err(format!(
            "no deployment {deployment:?}; the demo has {}",
            names.join(", ")
        ));
    };
    if !scalable {
        return Err(format!(
            "{name} runs once per cluster in the demo (it watches the API, as one per node would); it is not scaled"
        ));
    }
    let api = match api {
        Some(a) => a,
        None => std::fs::read_to_string(api_pointer()).map_err(|_| {
            "no running demo found (start one with `vigil demo`, or give --api)".to_string()
        })?,
    };
    let url = format!("{api}/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale");
    let client =
        vigil_scrape::client::default_client(Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let r = client
        .patch(&url)
        .header("Content-Type", "application/merge-patch+json")
        .body(format!("{{\"spec\":{{\"replicas\":{replicas}}}}}"))
        .send()
        .await
        .map_err(|e| format!("{url}: {e} (is the demo still running?)"))?;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("{url}: {status}: {body}"));
    }
    println!("deployment.apps/{name} scaled to {replicas}");
    Ok(())
}
