//! The `alerting` section: Alertmanagers and alert relabeling.

use super::*;

/// `names`: the global `metric_name_validation_scheme`, which Prometheus's notifier applies to
/// alert relabeling.
pub(crate) fn alerting(
    ctx: &Ctx<'_>,
    a: &Option<RawAlerting>,
    names: NameValidation,
) -> Result<AlertingConfig, ConfigError> {
    let Some(a) = a else {
        return Ok(AlertingConfig::default());
    };
    let mut out = AlertingConfig {
        alert_relabel_configs: relabels(
            ctx,
            "alerting.alert_relabel_configs",
            "alert relabeling rule",
            &a.alert_relabel_configs,
            names,
        )?,
        alertmanagers: vec![],
    };
    for (i, am) in a.alertmanagers.iter().flatten().enumerate() {
        let f = format!("alerting.alertmanagers[{i}]");
        let Some(am) = am else {
            return Err(ctx.err(f, "empty or null Alertmanager config"));
        };
        let _at = ctx.at(am);
        let am = &am.value;
        let api = am.api_version.clone().unwrap_or_else(|| "v2".into());
        let mut unsupported = Vec::new();
        if am.dns_sd_configs.is_some() {
            unsupported.push("dns_sd_configs".to_string());
        }
        if am.consul_sd_configs.is_some() {
            unsupported.push("consul_sd_configs".to_string());
        }
        if am.sigv4.is_some() {
            unsupported.push("sigv4".to_string());
        }
        if api != "v2" {
            return Err(ctx.err(
                format!("{f}.api_version"),
                format!("expected Alertmanager api version to be one of [v2] but got {api}"),
            ));
        }
        out.alertmanagers.push(AlertmanagerConfig {
            scheme: am.scheme.clone().unwrap_or_else(|| "http".into()),
            path_prefix: am.path_prefix.clone().unwrap_or_else(|| "/".into()),
            timeout: ctx
                .duration(&format!("{f}.timeout"), &am.timeout)?
                .unwrap_or(Duration::from_secs(10)),
            api_version: api,
            http_client: http_of!(ctx, &f, am)?,
            static_configs: static_configs(
                ctx,
                &format!("{f}.static_configs"),
                &am.static_configs,
                am.relabel_configs.as_ref().is_none_or(|r| r.is_empty()),
            )?,
            file_sd_configs: file_sd(ctx, &format!("{f}.file_sd_configs"), &am.file_sd_configs)?,
            kubernetes_sd_configs: kubernetes(
                ctx,
                &format!("{f}.kubernetes_sd_configs"),
                &am.kubernetes_sd_configs,
            )?,
            relabel_configs: relabels(
                ctx,
                &format!("{f}.relabel_configs"),
                "Alertmanager target relabeling rule",
                &am.relabel_configs,
                // Alerts and remote series may carry any UTF-8 name.
                NameValidation::Utf8,
            )?,
            alert_relabel_configs: relabels(
                ctx,
                &format!("{f}.alert_relabel_configs"),
                "alert relabeling rule",
                &am.alert_relabel_configs,
                // Alerts and remote series may carry any UTF-8 name.
                NameValidation::Utf8,
            )?,
            unsupported,
        });
    }
    Ok(out)
}
