//! `remote_write` and `remote_read` sections.

use super::*;

pub(crate) const RESERVED_HEADERS: &[&str] = &[
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "retry-after",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
];

pub(crate) fn check_headers(
    ctx: &Ctx<'_>,
    field: &str,
    h: &Option<BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let h = h.clone().unwrap_or_default();
    for k in h.keys() {
        let l = k.to_ascii_lowercase();
        if l == "authorization" {
            return Err(ctx.err(field, "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter"));
        }
        if RESERVED_HEADERS.contains(&l.as_str()) {
            return Err(ctx.err(
                field,
                format!("{l} is a reserved header. It must not be changed"),
            ));
        }
    }
    Ok(h)
}

/// `metadata_config`, checked as Prometheus checks it: whether metadata is sent, how often,
/// how many entries per request.
pub(crate) fn metadata_send(
    ctx: &Ctx<'_>,
    f: &str,
    m: &Option<RawMetadataConfig>,
) -> Result<(bool, Duration, usize), ConfigError> {
    let defaults = (true, Duration::from_secs(60), 2000);
    let Some(m) = m else { return Ok(defaults) };
    let every = ctx
        .duration(
            &format!("{f}.metadata_config.send_interval"),
            &m.send_interval,
        )?
        .filter(|d| !d.is_zero())
        .unwrap_or(defaults.1);
    let per_send = match m.max_samples_per_send {
        Some(n) if n < 0 => {
            return Err(ctx.err(
                format!("{f}.metadata_config.max_samples_per_send"),
                format!("max_samples_per_send must not be negative, got {n}"),
            ));
        }
        Some(n) if n > 0 => n as usize,
        _ => defaults.2,
    };
    Ok((m.send.unwrap_or(true), every, per_send))
}

pub(crate) fn remote_write(
    ctx: &Ctx<'_>,
    v: &Option<Vec<Item<RawRemoteWrite>>>,
) -> Result<Vec<RemoteWriteConfig>, ConfigError> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, r) in v.iter().flatten().enumerate() {
        let f = format!("remote_write[{i}]");
        let Some(r) = r else {
            return Err(ctx.err(f, "empty or null remote write config section"));
        };
        let _at = ctx.at(r);
        let r = &r.value;
        let url = r.url.clone().unwrap_or_default();
        if url.is_empty() {
            return Err(ctx.err(&f, "url for remote_write is empty"));
        }
        let name = r.name.clone().unwrap_or_default();
        if !name.is_empty() && !names.insert(name.clone()) {
            return Err(ctx.err(
                &f,
                format!("found multiple remote write configs with job name {name:?}"),
            ));
        }
        let headers = check_headers(ctx, &format!("{f}.headers"), &r.headers)?;
        // Authentication vigil cannot do yet is refused by name: sending unsigned would only
        // fail at the receiver, later and less clearly.
        for (set, what) in [
            (r.sigv4.is_some(), "sigv4"),
            (r.azuread.is_some(), "azuread"),
            (r.google_iam.is_some(), "google_iam"),
        ] {
            if set {
                return Err(ctx.err(
                    format!("{f}.{what}"),
                    format!("vigil cannot authenticate remote write with {what} yet; remove it or send through a proxy that signs requests"),
                ));
            }
        }
        let msg = r
            .protobuf_message
            .clone()
            .unwrap_or_else(|| "prometheus.WriteRequest".into());
        if !matches!(
            msg.as_str(),
            "prometheus.WriteRequest" | "io.prometheus.write.v2.Request"
        ) {
            return Err(ctx.err(format!("{f}.protobuf_message"), format!("unknown remote write protobuf message {msg}, supported: prometheus.WriteRequest, io.prometheus.write.v2.Request")));
        }

        let mut q = QueueConfig::default();
        if let Some(rq) = &r.queue_config {
            let _at = ctx.at(rq);
            let rq = &rq.value;
            let qf = format!("{f}.queue_config");
            let pos = |name: &str, v: Option<i64>, cur: u64| -> Result<u64, ConfigError> {
                match v {
                    None => Ok(cur),
                    Some(x) if x > 0 => Ok(x as u64),
                    Some(x) => Err(ctx.err(
                        format!("{qf}.{name}"),
                        format!("{name} must be greater than 0, got {x}"),
                    )),
                }
            };
            q.capacity = pos("capacity", rq.capacity, q.capacity)?;
            q.max_shards = pos("max_shards", rq.max_shards, q.max_shards)?;
            q.min_shards = pos("min_shards", rq.min_shards, q.min_shards)?;
            q.max_samples_per_send = pos(
                "max_samples_per_send",
                rq.max_samples_per_send,
                q.max_samples_per_send,
            )?;
            if q.min_shards > q.max_shards {
                return Err(ctx.err(
                    &qf,
                    format!(
                        "min_shards ({}) must not be greater than max_shards ({})",
                        q.min_shards, q.max_shards
                    ),
                ));
            }
            if let Some(d) = ctx.duration(
                &format!("{qf}.batch_send_deadline"),
                &rq.batch_send_deadline,
            )? {
                q.batch_send_deadline = d;
            }
            if let Some(d) = ctx.duration(&format!("{qf}.min_backoff"), &rq.min_backoff)? {
                q.min_backoff = d;
            }
            if let Some(d) = ctx.duration(&format!("{qf}.max_backoff"), &rq.max_backoff)? {
                q.max_backoff = d;
            }
            if q.max_backoff < q.min_backoff {
                return Err(ctx.err(
                    &qf,
                    format!(
                        "max_backoff ({}) must not be less than min_backoff ({})",
                        format_duration(q.max_backoff),
                        format_duration(q.min_backoff)
                    ),
                ));
            }
            if let Some(d) =
                ctx.duration(&format!("{qf}.sample_age_limit"), &rq.sample_age_limit)?
            {
                q.sample_age_limit = d;
            }
            q.retry_on_http_429 = rq.retry_on_http_429.unwrap_or(false);
        }
        let metadata = metadata_send(ctx, &f, &r.metadata_config)?;
        out.push(RemoteWriteConfig {
            url,
            name,
            remote_timeout: ctx
                .duration(&format!("{f}.remote_timeout"), &r.remote_timeout)?
                .unwrap_or(Duration::from_secs(30)),
            headers,
            write_relabel_configs: relabels(
                ctx,
                &format!("{f}.write_relabel_configs"),
                "relabeling rule in remote write config",
                &r.write_relabel_configs,
                // Alerts and remote series may carry any UTF-8 name.
                NameValidation::Utf8,
            )?,
            protobuf_message: msg,
            send_exemplars: r.send_exemplars.unwrap_or(false),
            send_native_histograms: r.send_native_histograms.unwrap_or(false),
            send_metadata: metadata.0,
            metadata_send_interval: metadata.1,
            metadata_max_per_send: metadata.2,
            queue_config: q,
            http_client: http_of!(ctx, &f, r)?,
        });
    }
    Ok(out)
}

pub(crate) fn remote_read(
    ctx: &Ctx<'_>,
    v: &Option<Vec<Item<RawRemoteRead>>>,
) -> Result<Vec<RemoteReadConfig>, ConfigError> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, r) in v.iter().flatten().enumerate() {
        let f = format!("remote_read[{i}]");
        let Some(r) = r else {
            return Err(ctx.err(f, "empty or null remote read config section"));
        };
        let _at = ctx.at(r);
        let r = &r.value;
        let url = r.url.clone().unwrap_or_default();
        if url.is_empty() {
            return Err(ctx.err(&f, "url for remote_read is empty"));
        }
        let name = r.name.clone().unwrap_or_default();
        if !name.is_empty() && !names.insert(name.clone()) {
            return Err(ctx.err(
                &f,
                format!("found multiple remote read configs with job name {name:?}"),
            ));
        }
        out.push(RemoteReadConfig {
            url,
            name,
            remote_timeout: ctx
                .duration(&format!("{f}.remote_timeout"), &r.remote_timeout)?
                .unwrap_or(Duration::from_secs(60)),
            headers: check_headers(ctx, &format!("{f}.headers"), &r.headers)?,
            read_recent: r.read_recent.unwrap_or(false),
            required_matchers: r.required_matchers.clone().unwrap_or_default(),
            filter_external_labels: r.filter_external_labels.unwrap_or(true),
            http_client: http_of!(ctx, &f, r)?,
        });
    }
    Ok(out)
}
