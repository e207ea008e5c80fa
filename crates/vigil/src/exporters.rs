//! The exporter subcommands: each runs one exporter of `vigil-exporters` as its own process,
//! so it can be a sidecar or a Deployment next to the apps it watches.

use std::process::ExitCode;

use crate::flags::{ContainerMetricsFlags, KubeStateFlags, ProbeFlags};

/// The listener settings an exporter's flags give.
struct Listen {
    addrs: Vec<String>,
    web_config: Option<std::path::PathBuf>,
    read_timeout: std::time::Duration,
    max_connections: usize,
}

/// Serve `app` (with `--web.config.file`'s TLS and auth) until the process ends.
async fn serve(l: Listen, app: axum::Router) -> Result<(), String> {
    let server = vigil_serve::Server::bind(vigil_serve::Options {
        listen: l.addrs,
        web_config: l.web_config,
        read_timeout: Some(l.read_timeout).filter(|d| !d.is_zero()),
        max_connections: l.max_connections,
    })
    .await
    .map_err(|e| e.to_string())?;
    server.serve(app, std::future::pending()).await;
    Ok(())
}

/// Logs to stderr at `level` and above, as text or JSON (`--log.level`, `--log.format`).
pub fn init_logging(level: &str, format: &str) {
    let filter =
        tracing_subscriber::EnvFilter::new(format!("{level},hyper=warn,reqwest=warn,kube=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

fn runtime(what: &str) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("vigil {what}: cannot start the async runtime: {e}");
            None
        }
    }
}

/// A duration flag given in seconds (`30`) or as a duration (`30s`, `1m`).
fn seconds_or_duration(s: &str) -> Option<std::time::Duration> {
    match s.parse::<f64>() {
        Ok(n) if n >= 0.0 && n.is_finite() => Some(std::time::Duration::from_secs_f64(n)),
        _ => vigil_config::parse_duration(s).ok(),
    }
}

/// `vigil probe`: serve the prober until killed.
pub fn probe(f: ProbeFlags) -> ExitCode {
    use vigil_exporters::probe;
    if f.systemd_socket {
        eprintln!(
            "vigil probe: --web.systemd-socket: refused: systemd socket activation is not supported; give --web.listen-address"
        );
        return ExitCode::FAILURE;
    }
    // As the blackbox exporter: `blackbox.yml` in the working directory by default; without it
    // vigil has built-in `http_2xx` and `tcp_connect` modules.
    let config = f.config_file.clone().or_else(|| {
        let d = std::path::PathBuf::from("blackbox.yml");
        d.exists().then_some(d)
    });
    let loaded = match &config {
        Some(path) => probe::load_file(path),
        None => probe::load_modules(None),
    };
    let modules = match loaded {
        Ok(m) => m,
        Err(e @ probe::ConfigError::Read { .. }) => {
            eprintln!("vigil probe: cannot read --config.file: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("vigil probe: {e}");
            return ExitCode::FAILURE;
        }
    };
    if f.config_check {
        println!("Config file is ok exiting...");
        return ExitCode::SUCCESS;
    }
    let Some(interval) = seconds_or_duration(&f.auto_reload_interval) else {
        eprintln!(
            "vigil probe: invalid --config.auto-reload-interval {:?}",
            f.auto_reload_interval
        );
        return ExitCode::FAILURE;
    };
    if !f.timeout_offset.is_finite() || f.timeout_offset < 0.0 {
        eprintln!("vigil probe: --timeout-offset must be a non-negative number of seconds");
        return ExitCode::FAILURE;
    }
    let Some(read_timeout) = seconds_or_duration(&f.read_timeout) else {
        eprintln!(
            "vigil probe: --web.read-timeout: not a duration: {:?}",
            f.read_timeout
        );
        return ExitCode::FAILURE;
    };
    init_logging(&f.log_level, &f.log_format);
    // Bodies being probed at once hold at most a quarter of memory: a site sending without
    // end fails its own probe (see `probe::set_body_budget`).
    probe::set_body_budget((crate::server::usable_memory() / 4).min(usize::MAX as u64) as usize);
    let Some(rt) = runtime("probe") else {
        return ExitCode::FAILURE;
    };
    let state = std::sync::Arc::new(probe::ProbeState::new(
        modules,
        probe::ProbeOptions {
            config_file: config,
            timeout_offset: f.timeout_offset,
            prober_log: f.log_prober.parse().unwrap_or(tracing::Level::INFO),
            history_limit: f.history_limit,
        },
    ));
    let prefix = vigil_web::route_prefix(f.route_prefix.as_deref(), f.external_url.as_deref());
    let res: Result<(), String> = rt.block_on(async move {
        // SIGHUP and --config.enable-auto-reload re-read the file, as /-/reload does.
        let s = state.clone();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                let s = s.clone();
                let _ = tokio::task::spawn_blocking(move || s.reload()).await;
            }
        });
        if f.auto_reload {
            let s = state.clone();
            tokio::spawn(async move {
                let mut tick =
                    tokio::time::interval(interval.max(std::time::Duration::from_secs(1)));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let s = s.clone();
                    let _ = tokio::task::spawn_blocking(move || s.reload()).await;
                }
            });
        }
        serve(
            Listen {
                addrs: f.listen_address,
                web_config: f.web_config_file,
                read_timeout,
                max_connections: f.max_connections,
            },
            probe::router(state, &prefix),
        )
        .await
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil probe: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `host:port` for kube-state-metrics' `--host`/`--port` (`::` is every interface).
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// kube-state-metrics' flags that vigil refuses when set, with the reason; and the ones with no
/// effect, warned about.
fn kube_state_review(f: &KubeStateFlags) -> (Vec<String>, Vec<String>) {
    let mut refused = Vec::new();
    let mut warn = Vec::new();
    let mut no = |set: bool, flag: &str, why: &str| {
        if set {
            refused.push(format!("--{flag}: refused: {why}"));
        }
    };
    no(
        !f.metric_opt_in_list.is_empty(),
        "metric-opt-in-list",
        "vigil renders none of kube-state-metrics' opt-in families yet",
    );
    no(f.total_shards == 0, "total-shards", "must be at least 1");
    no(
        f.shard >= f.total_shards.max(1),
        "shard",
        "must be less than --total-shards",
    );
    no(
        f.pod.is_some() || f.pod_namespace.is_some(),
        "pod",
        "automatic sharding is not implemented yet",
    );
    no(
        f.node.is_some(),
        "node",
        "per-node sharding of pods is not implemented yet",
    );
    no(
        f.track_unscheduled_pods,
        "track-unscheduled-pods",
        "per-node sharding of pods is not implemented yet",
    );
    no(
        f.object_limit != 0,
        "object-limit",
        "a limit on listed objects is not implemented",
    );
    no(
        f.continue_without_crs_file,
        "continue-without-custom-resource-state-config-file",
        "vigil reads the config file at start only; a missing file is an error",
    );
    no(
        f.config.is_some() || f.continue_without_config,
        "config",
        "an options file is not read; give the flags instead",
    );
    no(
        f.auth_filter,
        "auth-filter",
        "TokenReview/SubjectAccessReview authentication is not implemented (--tls-config gives TLS and basic auth)",
    );
    if !f.metric_allowlist.is_empty() && !f.metric_denylist.is_empty() {
        refused.push("--metric-allowlist: refused: --metric-allowlist and --metric-denylist are mutually exclusive (as in kube-state-metrics)".into());
    }
    if f.auto_gomemlimit || f.auto_gomemlimit_ratio.is_some() {
        warn.push("--auto-gomemlimit: Go runtime tuning, no effect in vigil".to_string());
    }
    if f.server_write_timeout.is_some() {
        warn.push("--server-write-timeout: not applied yet (the flag has no effect)".to_string());
    }
    if f.server_idle_timeout.is_some() {
        warn.push(
            "--server-idle-timeout: not applied yet; --server-read-timeout bounds idle connections"
                .to_string(),
        );
    }
    (refused, warn)
}

/// `vigil kube-state`: watch the API and serve kube-state-metrics' families until killed.
pub fn kube_state(f: KubeStateFlags) -> ExitCode {
    use vigil_exporters::kube_state;
    if f.version {
        println!(
            "vigil kube-state {} (kube-state-metrics v2 compatible)",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    let (refused, warn) = kube_state_review(&f);
    if !refused.is_empty() {
        eprintln!("vigil kube-state: {}", refused.join("; "));
        return ExitCode::FAILURE;
    }
    let allowlist = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| kube_state::Options::parse_allowlist(flag, s))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let (allow, annotations_allow) = match (
        allowlist("metric-labels-allowlist", &f.metric_labels_allowlist),
        allowlist(
            "metric-annotations-allowlist",
            &f.metric_annotations_allowlist,
        ),
    ) {
        (Ok(l), Ok(a)) => (l, a),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("vigil kube-state: {e}");
            return ExitCode::FAILURE;
        }
    };
    let patterns = |flag: &str, list: &[String]| -> Result<Vec<regex::Regex>, String> {
        list.iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .map(|p| {
                regex::Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| format!("--{flag}: {p:?}: {e}"))
            })
            .collect()
    };
    let trimmed = |l: &[String]| -> Vec<String> {
        l.iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let scope = match (
        patterns("metric-allowlist", &f.metric_allowlist),
        patterns("metric-denylist", &f.metric_denylist),
    ) {
        (Ok(a), Ok(d)) => kube_state::Scope {
            resources: (!trimmed(&f.resources).is_empty()).then(|| trimmed(&f.resources)),
            namespaces: trimmed(&f.namespaces),
            namespaces_denylist: trimmed(&f.namespaces_denylist),
            metric_allowlist: a,
            metric_denylist: d,
            use_apiserver_cache: f.use_apiserver_cache,
            shard: f.shard,
            total_shards: f.total_shards.max(1),
            custom: Vec::new(),
            custom_only: f.custom_resource_state_only,
        },
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("vigil kube-state: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The inline config wins over the file, as in kube-state-metrics.
    // An empty inline config counts as not given, as in kube-state-metrics.
    let custom = match (
        f.custom_resource_state_config
            .as_ref()
            .filter(|c| !c.trim().is_empty()),
        &f.custom_resource_state_config_file,
    ) {
        (Some(text), _) => kube_state::custom::parse(text)
            .map_err(|e| format!("--custom-resource-state-config: {e}")),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("--custom-resource-state-config-file: {path}: {e}"))
            .and_then(|text| {
                kube_state::custom::parse(&text)
                    .map_err(|e| format!("--custom-resource-state-config-file: {path}: {e}"))
            }),
        (None, None) => Ok(Vec::new()),
    };
    let mut scope = scope;
    match custom {
        Ok(c) => scope.custom = c,
        Err(e) => {
            eprintln!("vigil kube-state: {e}");
            return ExitCode::FAILURE;
        }
    }
    // `--custom-resource-state-only` ignores `--resources`, as kube-state-metrics does.
    let checked = if scope.custom_only {
        Ok(Vec::new())
    } else {
        scope.check_resources()
    };
    let missing = match checked {
        Ok(m) => m,
        Err(e) => {
            eprintln!("vigil kube-state: {e}");
            return ExitCode::FAILURE;
        }
    };
    let timeout = |flag: &str, v: &str| {
        seconds_or_duration(v).ok_or_else(|| format!("--{flag}: not a duration: {v:?}"))
    };
    let read_timeout = match (
        timeout("server-read-timeout", &f.server_read_timeout),
        timeout("server-read-header-timeout", &f.server_read_header_timeout),
    ) {
        (Ok(a), Ok(b)) => a.min(b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("vigil kube-state: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rediscover = match timeout(
        "custom-resource-state-discovery-interval",
        &f.custom_resource_state_discovery_interval,
    ) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("vigil kube-state: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(if f.verbosity >= 4 { "debug" } else { "info" }, "logfmt");
    for w in warn {
        tracing::warn!("{w}");
    }
    if !missing.is_empty() {
        tracing::warn!(
            resources = %missing.join(","),
            "NOT RENDERED: vigil does not render these kube-state-metrics resources yet; their families are absent"
        );
    }
    let opts = kube_state::Options {
        labels_allowlist: allow,
        annotations_allowlist: annotations_allow,
        legacy_resource_metrics: f.legacy_resource_metrics,
    };
    let Some(rt) = runtime("kube-state") else {
        return ExitCode::FAILURE;
    };
    let main_addr = f
        .listen_address
        .clone()
        .unwrap_or_else(|| host_port(&f.host, f.port));
    let telemetry_addr = host_port(&f.telemetry_host, f.telemetry_port);
    let res: Result<(), String> = rt.block_on(async move {
        let requests = std::sync::Arc::new(kube_state::list_watch::ListWatch::default());
        let client = kube_state::counted_client(
            f.apiserver.as_deref(),
            f.kubeconfig.as_deref(),
            requests.clone(),
        )
        .await?;
        let mut scope = scope;
        let wanted = scope.custom.clone();
        scope.custom =
            kube_state::custom::resolve(&client, std::mem::take(&mut scope.custom)).await?;
        let state = kube_state::KubeState::start(client.clone(), opts, scope, requests);
        state.follow_custom(client, wanted, rediscover);
        let mut app = kube_state::router(state.clone());
        if f.enable_gzip_encoding {
            app = app.layer(tower_http::compression::CompressionLayer::new());
        }
        let bind = |addr: String| {
            vigil_serve::Server::bind(vigil_serve::Options {
                listen: vec![addr],
                web_config: f.tls_config.clone(),
                read_timeout: Some(read_timeout),
                ..Default::default()
            })
        };
        let main = bind(main_addr).await.map_err(|e| e.to_string())?;
        let telemetry = bind(telemetry_addr).await.map_err(|e| e.to_string())?;
        tokio::spawn(telemetry.serve(kube_state::telemetry_router(state), std::future::pending()));
        main.serve(app, std::future::pending()).await;
        Ok(())
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil kube-state: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `vigil container-metrics`: serve cAdvisor's families for this node's cgroups until killed.
pub fn container_metrics(f: ContainerMetricsFlags) -> ExitCode {
    use vigil_exporters::container::{ContainerMetrics, Paths, metric_selection, router};
    use vigil_exporters::kube_state;
    let (disabled, uncollected) = match metric_selection(&f.enable_metrics, &f.disable_metrics) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigil container-metrics: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !f.prometheus_endpoint.starts_with('/') {
        eprintln!("vigil container-metrics: --prometheus_endpoint must start with /");
        return ExitCode::FAILURE;
    }
    let Some(read_timeout) = seconds_or_duration(&f.read_timeout) else {
        eprintln!(
            "vigil container-metrics: --web.read-timeout: not a duration: {:?}",
            f.read_timeout
        );
        return ExitCode::FAILURE;
    };
    init_logging(if f.verbosity >= 4 { "debug" } else { "info" }, "logfmt");
    for (set, flag, why) in [
        (
            f.housekeeping_interval.is_some()
                || f.max_housekeeping_interval.is_some()
                || f.allow_dynamic_housekeeping.is_some(),
            "housekeeping_interval",
            "vigil has no housekeeping loop: cgroups are read when /metrics is scraped",
        ),
        (
            f.event_storage_event_limit.is_some() || f.event_storage_age_limit.is_some(),
            "event_storage_*",
            "vigil keeps no event store",
        ),
        (
            f.docker_only.is_some(),
            "docker_only",
            "vigil reports the node root and the pods' cgroups (every cgroup with --all-cgroups), not by container runtime",
        ),
        (
            f.store_container_labels == Some(true) || f.whitelisted_container_labels.is_some(),
            "store_container_labels",
            "vigil writes no container_label_* labels (pod, namespace and container come from the API)",
        ),
    ] {
        if set {
            tracing::warn!("--{flag}: no effect: {why}");
        }
    }
    if !uncollected.is_empty() {
        tracing::warn!(
            kinds = %uncollected.join(","),
            "--enable_metrics: vigil does not collect these metric kinds; their families are absent"
        );
    }
    let listen = f
        .listen_address
        .clone()
        .unwrap_or_else(|| host_port(&f.listen_ip, f.port));
    let Some(rt) = runtime("container-metrics") else {
        return ExitCode::FAILURE;
    };
    let mut cm = ContainerMetrics::new(
        Paths {
            sysfs: f.sysfs,
            procfs: f.procfs,
            rootfs: f.rootfs,
        },
        f.all_cgroups,
    );
    cm.disabled = disabled;
    // Only when asked for by name: the kubelet's output, which vigil's follows by default,
    // never has it.
    cm.percpu = f.enable_metrics.iter().any(|k| k == "percpu")
        && !f.disable_metrics.iter().any(|k| k == "percpu");
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let res: Result<(), String> = rt.block_on(async move {
        if f.kubeconfig.is_some() || f.apiserver.is_some() || in_cluster {
            let client = kube_state::client(f.apiserver.as_deref(), f.kubeconfig.as_deref()).await?;
            cm.watch_pods(client, f.node_name);
        } else {
            eprintln!("vigil container-metrics: no Kubernetes API given; pod, namespace, container and image labels stay empty");
        }
        serve(
            Listen {
                addrs: vec![listen],
                web_config: f.web_config_file,
                read_timeout,
                max_connections: f.max_connections,
            },
            router(std::sync::Arc::new(cm), &f.prometheus_endpoint),
        )
        .await
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil container-metrics: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `vigil node`: serve the node's families until killed.
pub fn node(f: crate::node_flags::NodeFlags) -> ExitCode {
    use vigil_exporters::node::{NOT_IMPLEMENTED, Node, Paths, router};
    let (opts, enabled) = match f.options() {
        Ok(o) => o,
        Err(errs) => {
            eprintln!("vigil node: {}", errs.join("; "));
            return ExitCode::FAILURE;
        }
    };
    if !["debug", "info", "warn", "error"].contains(&f.log_level.as_str()) {
        eprintln!(
            "vigil node: --log.level: {:?} is not one of debug, info, warn, error",
            f.log_level
        );
        return ExitCode::FAILURE;
    }
    if !["logfmt", "json"].contains(&f.log_format.as_str()) {
        eprintln!(
            "vigil node: --log.format: {:?} is not logfmt or json",
            f.log_format
        );
        return ExitCode::FAILURE;
    }
    let Some(read_timeout) = seconds_or_duration(&f.read_timeout) else {
        eprintln!(
            "vigil node: --web.read-timeout: not a duration: {:?}",
            f.read_timeout
        );
        return ExitCode::FAILURE;
    };
    init_logging(&f.log_level, &f.log_format);
    let node = Node::new(
        Paths {
            procfs: f.procfs,
            sysfs: f.sysfs,
            rootfs: f.rootfs,
            udev_data: f.udev_data,
        },
        opts,
        &enabled,
    );
    let names: Vec<&str> = node.enabled().collect();
    tracing::info!(collectors = %names.join(","), "enabled collectors");
    // node_exporter would run these by default; say plainly they are absent here.
    let missing: Vec<&str> = NOT_IMPLEMENTED
        .iter()
        .filter(|(_, default)| *default && !f.disable_defaults)
        .map(|(n, _)| *n)
        .filter(|n| !f.switches.iter().any(|s| s == &format!("{n}=false")))
        .collect();
    if !missing.is_empty() {
        tracing::info!(
            collectors = %missing.join(","),
            "node_exporter enables these collectors by default; vigil node does not implement them"
        );
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(f.gomaxprocs)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vigil node: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = router(std::sync::Arc::new(node), &f.telemetry_path, f.max_requests);
    let res = rt.block_on(serve(
        Listen {
            addrs: f.listen_address,
            web_config: f.web_config_file,
            read_timeout,
            max_connections: f.max_connections,
        },
        app,
    ));
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil node: {e}");
            ExitCode::FAILURE
        }
    }
}
