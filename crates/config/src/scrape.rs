//! The `global` section and scrape configs: intervals, limits, protocols, and what they inherit.

use super::*;

pub(crate) fn protocols(
    ctx: &Ctx<'_>,
    field: &str,
    v: &Option<Vec<String>>,
) -> Result<Option<Vec<ScrapeProtocol>>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    let mut out = Vec::new();
    for p in v {
        let sp = ScrapeProtocol::parse(p).ok_or_else(|| ctx.err(field, format!("unknown scrape protocol {p}, supported: [OpenMetricsText0.0.1 OpenMetricsText1.0.0 PrometheusProto PrometheusText0.0.4 PrometheusText1.0.0]")))?;
        if out.contains(&sp) {
            return Err(ctx.err(
                field,
                format!("duplicated protocol in scrape_protocols, got {v:?}"),
            ));
        }
        out.push(sp);
    }
    if out.is_empty() {
        return Err(ctx.err(field, "scrape_protocols cannot be empty"));
    }
    Ok(Some(out))
}

/// `metric_name_validation_scheme`: `None` when unset or empty (inherited).
fn validation(
    ctx: &Ctx<'_>,
    field: &str,
    scope: &str,
    v: &Option<String>,
) -> Result<Option<NameValidation>, ConfigError> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => NameValidation::parse(s).map(Some).ok_or_else(|| {
            ctx.err(field, format!("unknown {scope} name validation method specified, must be either '', 'legacy' or 'utf8', got {s}"))
        }),
    }
}

/// `metric_name_escaping_scheme`: `None` when unset or empty.
fn escaping(
    ctx: &Ctx<'_>,
    field: &str,
    scope: &str,
    v: &Option<String>,
) -> Result<Option<NameEscaping>, ConfigError> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => NameEscaping::parse(s).map(Some).ok_or_else(|| {
            ctx.err(field, format!("unknown {scope} name escaping method specified, must be one of 'allow-utf-8', 'underscores', 'dots', or 'values', got {s:?}"))
        }),
    }
}

/// What a scope that names a validation scheme but no escaping asks targets for.
fn default_escaping(v: NameValidation) -> NameEscaping {
    match v {
        NameValidation::Utf8 => NameEscaping::AllowUtf8,
        NameValidation::Legacy => NameEscaping::Underscores,
    }
}

pub(crate) fn scrape_config(
    ctx: &Ctx<'_>,
    field: &str,
    s: &RawScrapeConfig,
    g: &GlobalConfig,
    notes: &mut Vec<Unimplemented>,
) -> Result<ScrapeConfig, ConfigError> {
    let job = s.job_name.clone().unwrap_or_default();
    let f = if job.is_empty() {
        field.to_string()
    } else {
        format!("{field} (job {job:?})")
    };
    // Prometheus reads the service discovery sections before it checks the job name, so a
    // bad SD config is what it reports first.
    let kube = kubernetes(
        ctx,
        &format!("{f}.kubernetes_sd_configs"),
        &s.kubernetes_sd_configs,
    )?;
    for (i, h) in s.http_sd_configs.iter().flatten().enumerate() {
        let hf = format!("{f}.http_sd_configs[{i}]");
        let Some(h) = h else {
            return Err(ctx.err(hf, "empty or null section in http_sd_configs"));
        };
        let _at = ctx.at(h);
        http_of!(ctx, &hf, &h.value)?;
    }
    if job.is_empty() {
        return Err(ctx.err(field, "job_name is empty"));
    }
    let interval = ctx
        .duration(&format!("{f}.scrape_interval"), &s.scrape_interval)?
        .unwrap_or(g.scrape_interval);
    let timeout = match ctx.duration(&format!("{f}.scrape_timeout"), &s.scrape_timeout)? {
        Some(t) => t,
        None => g.scrape_timeout.min(interval),
    };
    if timeout > interval {
        return Err(ctx.err(&f, format!("scrape timeout greater than scrape interval for scrape config with job name {job:?}")));
    }
    let scheme = s.scheme.clone().unwrap_or_else(|| "http".into());
    if scheme != "http" && scheme != "https" {
        return Err(ctx.err(
            format!("{f}.scheme"),
            format!("unknown scrape scheme {scheme:?}: only http and https are supported"),
        ));
    }
    let body_size_limit = match &s.body_size_limit {
        None => g.body_size_limit,
        Some(t) => parse_size(&t.0).map_err(|e| ctx.err(format!("{f}.body_size_limit"), e))?,
    };
    if let Some(p) = &s.fallback_scrape_protocol {
        ScrapeProtocol::parse(p).ok_or_else(|| {
            ctx.err(
                format!("{f}.fallback_scrape_protocol"),
                format!("unknown fallback_scrape_protocol {p:?}"),
            )
        })?;
    }
    let mut unsupported = Vec::new();
    macro_rules! opaque {
        ($($n:ident),*) => {$(
            if let Some(list) = &s.$n {
                if list.iter().any(Option::is_none) {
                    return Err(ctx.err(format!("{f}.{}", stringify!($n)), format!("empty or null section in {}", stringify!($n))));
                }
                unsupported.push(stringify!($n).to_string());
            }
        )*};
    }
    opaque!(
        azure_sd_configs,
        consul_sd_configs,
        digitalocean_sd_configs,
        docker_sd_configs,
        dockerswarm_sd_configs,
        dns_sd_configs,
        ec2_sd_configs,
        eureka_sd_configs,
        gce_sd_configs,
        hetzner_sd_configs,
        ionos_sd_configs,
        kuma_sd_configs,
        lightsail_sd_configs,
        linode_sd_configs,
        marathon_sd_configs,
        nerve_sd_configs,
        nomad_sd_configs,
        oci_sd_configs,
        openstack_sd_configs,
        outscale_sd_configs,
        ovhcloud_sd_configs,
        puppetdb_sd_configs,
        scaleway_sd_configs,
        serverset_sd_configs,
        stackit_sd_configs,
        triton_sd_configs,
        uyuni_sd_configs,
        vultr_sd_configs
    );
    if s.http_sd_configs.is_some() {
        unsupported.push("http_sd_configs".into());
    }
    unsupported.sort();
    // Name the file too when the job comes from `scrape_config_files`.
    let whence = if ctx.included {
        format!(" in {}", ctx.file)
    } else {
        String::new()
    };
    for u in &unsupported {
        notes.push(Unimplemented::Field(format!(
            "{f}{whence}: {u} is not supported by vigil yet and will discover no targets"
        )));
    }
    // As Prometheus resolves them: a scrape config that sets neither scheme inherits both;
    // one that sets only validation asks for the escaping that goes with it.
    let own_validation = validation(
        ctx,
        &format!("{f}.metric_name_validation_scheme"),
        "scrape config",
        &s.metric_name_validation_scheme,
    )?;
    let name_validation = own_validation.unwrap_or(g.name_validation);
    let name_escaping = match escaping(
        ctx,
        &format!("{f}.metric_name_escaping_scheme"),
        "scrape config",
        &s.metric_name_escaping_scheme,
    )? {
        Some(e) => e,
        None if own_validation.is_none() => g.name_escaping,
        None => default_escaping(name_validation),
    };
    if name_escaping == NameEscaping::AllowUtf8 && name_validation == NameValidation::Legacy {
        return Err(ctx.err(
            &f,
            "utf8 metric names requested but validation scheme is not set to UTF8",
        ));
    }
    let native = s
        .scrape_native_histograms
        .unwrap_or(g.scrape_native_histograms);
    let protocols_follow_native = s.scrape_protocols.is_none()
        && !g.scrape_protocols_set
        && !crate::types::created_timestamp_zero_ingestion();
    Ok(ScrapeConfig {
        protocols_follow_native,
        job_name: job.clone(),
        honor_labels: s.honor_labels.unwrap_or(false),
        honor_timestamps: s.honor_timestamps.unwrap_or(true),
        track_timestamps_staleness: s.track_timestamps_staleness.unwrap_or(false),
        scrape_interval: interval,
        scrape_timeout: timeout,
        scrape_protocols: match protocols(
            ctx,
            &format!("{f}.scrape_protocols"),
            &s.scrape_protocols,
        )? {
            Some(p) => p,
            None if g.scrape_protocols_set => g.scrape_protocols.clone(),
            None if native || crate::types::created_timestamp_zero_ingestion() => {
                ScrapeProtocol::proto_first()
            }
            None => g.scrape_protocols.clone(),
        },
        scrape_native_histograms: native,
        always_scrape_classic_histograms: s
            .always_scrape_classic_histograms
            .unwrap_or(g.always_scrape_classic_histograms),
        convert_classic_histograms_to_nhcb: s
            .convert_classic_histograms_to_nhcb
            .unwrap_or(g.convert_classic_histograms_to_nhcb),
        name_validation,
        name_escaping,
        created_timestamp_zero_ingestion: crate::types::created_timestamp_zero_ingestion(),
        type_and_unit_labels: crate::types::type_and_unit_labels(),
        append_metadata: crate::types::metadata_wal_records(),
        // The config field (current Prometheus), or the feature flag it replaced.
        extra_scrape_metrics: s.extra_scrape_metrics.unwrap_or(g.extra_scrape_metrics),
        native_histogram_bucket_limit: s.native_histogram_bucket_limit.unwrap_or(0),
        native_histogram_min_bucket_factor: s.native_histogram_min_bucket_factor.unwrap_or(0.0),
        metrics_path: s.metrics_path.clone().unwrap_or_else(|| "/metrics".into()),
        scheme,
        params: s.params.clone().unwrap_or_default(),
        enable_compression: s.enable_compression.unwrap_or(true),
        body_size_limit,
        sample_limit: s.sample_limit.unwrap_or(g.sample_limit),
        target_limit: s.target_limit.unwrap_or(g.target_limit),
        label_limit: s.label_limit.unwrap_or(g.label_limit),
        label_name_length_limit: s
            .label_name_length_limit
            .unwrap_or(g.label_name_length_limit),
        label_value_length_limit: s
            .label_value_length_limit
            .unwrap_or(g.label_value_length_limit),
        keep_dropped_targets: s.keep_dropped_targets.unwrap_or(g.keep_dropped_targets),
        http_client: http_of!(ctx, &f, s)?,
        static_configs: static_configs(
            ctx,
            &format!("{f}.static_configs"),
            &s.static_configs,
            s.relabel_configs.as_ref().is_none_or(|r| r.is_empty()),
        )?,
        file_sd_configs: file_sd(ctx, &format!("{f}.file_sd_configs"), &s.file_sd_configs)?,
        kubernetes_sd_configs: kube,
        unsupported_sd_configs: unsupported,
        relabel_configs: relabels(
            ctx,
            &format!("{f}.relabel_configs"),
            "target relabeling rule in scrape config",
            &s.relabel_configs,
            name_validation,
        )?,
        metric_relabel_configs: relabels(
            ctx,
            &format!("{f}.metric_relabel_configs"),
            "metric relabeling rule in scrape config",
            &s.metric_relabel_configs,
            name_validation,
        )?,
    })
}

pub(crate) fn global(
    ctx: &Ctx<'_>,
    g: &Option<Spanned<RawGlobal>>,
) -> Result<GlobalConfig, ConfigError> {
    let mut out = GlobalConfig::default();
    let Some(g) = g else { return Ok(out) };
    let _at = ctx.at(g);
    let g = &g.value;
    if let Some(d) = ctx.duration("global.scrape_interval", &g.scrape_interval)? {
        out.scrape_interval = d;
    }
    match ctx.duration("global.scrape_timeout", &g.scrape_timeout)? {
        Some(d) => out.scrape_timeout = d,
        None => out.scrape_timeout = out.scrape_timeout.min(out.scrape_interval),
    }
    if out.scrape_timeout > out.scrape_interval {
        return Err(ctx.err(
            "global",
            "global scrape timeout greater than scrape interval",
        ));
    }
    if let Some(d) = ctx.duration("global.evaluation_interval", &g.evaluation_interval)? {
        out.evaluation_interval = d;
    }
    if let Some(d) = ctx.duration("global.rule_query_offset", &g.rule_query_offset)? {
        out.rule_query_offset = d;
    }
    out.external_labels = labels_map(ctx, "global.external_labels", &g.external_labels)?;
    // Always, as in Prometheus 3 (2.x did it only with `expand-external-labels`). A variable
    // unset or empty leaves the label empty, which drops it.
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    out.external_labels = Labels::from_pairs(out.external_labels.iter().filter_map(|l| {
        let v = crate::types::expand_env(l.value, &env);
        (!v.is_empty()).then(|| (l.name.to_string(), v))
    }));
    if let Some(t) = &g.body_size_limit {
        out.body_size_limit = parse_size(&t.0).map_err(|e| ctx.err("global.body_size_limit", e))?;
    }
    out.sample_limit = g.sample_limit.unwrap_or(0);
    out.target_limit = g.target_limit.unwrap_or(0);
    out.label_limit = g.label_limit.unwrap_or(0);
    out.label_name_length_limit = g.label_name_length_limit.unwrap_or(0);
    out.label_value_length_limit = g.label_value_length_limit.unwrap_or(0);
    out.keep_dropped_targets = g.keep_dropped_targets.unwrap_or(0);
    if let Some(p) = protocols(ctx, "global.scrape_protocols", &g.scrape_protocols)? {
        out.scrape_protocols = p;
        out.scrape_protocols_set = true;
    }
    if let Some(n) = g.scrape_native_histograms {
        out.scrape_native_histograms = n;
    }
    out.always_scrape_classic_histograms = g.always_scrape_classic_histograms.unwrap_or(false);
    // The feature flag it replaced only changes the default, as in Prometheus.
    out.extra_scrape_metrics = g
        .extra_scrape_metrics
        .unwrap_or(crate::types::extra_scrape_metrics());
    out.convert_classic_histograms_to_nhcb = g.convert_classic_histograms_to_nhcb.unwrap_or(false);
    out.name_validation = validation(
        ctx,
        "global.metric_name_validation_scheme",
        "global",
        &g.metric_name_validation_scheme,
    )?
    .unwrap_or(NameValidation::Utf8);
    out.name_escaping = match escaping(
        ctx,
        "global.metric_name_escaping_scheme",
        "global",
        &g.metric_name_escaping_scheme,
    )? {
        Some(e) => e,
        None => default_escaping(out.name_validation),
    };
    out.query_log_file = g.query_log_file.as_deref().map(|p| ctx.path(p));
    Ok(out)
}
