//! The exporter subcommands: each runs one exporter of `vigil-exporters` as its own process,
//! so it can be a sidecar or a Deployment next to the apps it watches.

use std::process::ExitCode;

use crate::flags::{ContainerMetricsFlags, KubeStateFlags};

/// Serve `app` on `listen` (with `--web.config.file`'s TLS and auth) until the process ends.
async fn serve(
    listen: &str,
    web_config: Option<std::path::PathBuf>,
    app: axum::Router,
) -> Result<(), String> {
    let server = vigil_serve::Server::bind(vigil_serve::Options {
        listen: vec![listen.to_string()],
        web_config,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    server.serve(app, std::future::pending()).await;
    Ok(())
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

/// `vigil probe`: serve the prober until killed.
pub fn probe(
    config: Option<&std::path::Path>,
    listen: &str,
    web_config: Option<std::path::PathBuf>,
) -> ExitCode {
    use vigil_exporters::probe;
    let yaml = match config.map(std::fs::read_to_string).transpose() {
        Ok(y) => y,
        Err(e) => {
            eprintln!("vigil probe: cannot read --config.file: {e}");
            return ExitCode::FAILURE;
        }
    };
    let modules = match probe::load_modules(yaml.as_deref()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("vigil probe: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(rt) = runtime("probe") else {
        return ExitCode::FAILURE;
    };
    let state = std::sync::Arc::new(probe::ProbeState {
        modules,
        probes: Default::default(),
    });
    let res: Result<(), String> =
        rt.block_on(async move { serve(listen, web_config, probe::router(state)).await });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil probe: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `vigil kube-state`: watch the API and serve kube-state-metrics' families until killed.
pub fn kube_state(f: KubeStateFlags) -> ExitCode {
    use vigil_exporters::kube_state;
    let allow = match f
        .metric_labels_allowlist
        .as_deref()
        .map(kube_state::Options::parse_allowlist)
    {
        None => Default::default(),
        Some(Ok(a)) => a,
        Some(Err(e)) => {
            eprintln!("vigil kube-state: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = kube_state::Options {
        labels_allowlist: allow,
        legacy_resource_metrics: f.legacy_resource_metrics,
    };
    let Some(rt) = runtime("kube-state") else {
        return ExitCode::FAILURE;
    };
    let res: Result<(), String> = rt.block_on(async move {
        let client = kube_state::client(f.apiserver.as_deref(), f.kubeconfig.as_deref()).await?;
        let state = kube_state::KubeState::start(client, opts);
        serve(&f.listen_address, f.tls_config, kube_state::router(state)).await
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
    use vigil_exporters::container::{ContainerMetrics, Paths, router};
    use vigil_exporters::kube_state;
    let Some(rt) = runtime("container-metrics") else {
        return ExitCode::FAILURE;
    };
    let cm = ContainerMetrics::new(
        Paths {
            sysfs: f.sysfs,
            procfs: f.procfs,
            rootfs: f.rootfs,
        },
        f.all_cgroups,
    );
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let res: Result<(), String> = rt.block_on(async move {
        if f.kubeconfig.is_some() || f.apiserver.is_some() || in_cluster {
            let client = kube_state::client(f.apiserver.as_deref(), f.kubeconfig.as_deref()).await?;
            cm.watch_pods(client, f.node_name);
        } else {
            eprintln!("vigil container-metrics: no Kubernetes API given; pod, namespace, container and image labels stay empty");
        }
        serve(
            &f.listen_address,
            f.web_config_file,
            router(std::sync::Arc::new(cm)),
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
