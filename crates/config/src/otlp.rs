//! The `otlp:` section: how the OTLP receiver translates what it receives (read by the
//! receiver on each request, so a reload applies at once). Defaults and checks are
//! Prometheus's `OTLPConfig`.

use crate::context::Ctx;
use crate::error::ConfigError;
use crate::raw::RawOtlp;
use crate::types::OtlpConfig;
use vigil_model::names::NameValidation;

const STRATEGIES: [&str; 4] = [
    "UnderscoreEscapingWithSuffixes",
    "UnderscoreEscapingWithoutSuffixes",
    "NoUTF8EscapingWithSuffixes",
    "NoTranslation",
];

pub(crate) fn otlp(
    ctx: &Ctx<'_>,
    raw: &Option<RawOtlp>,
    names: NameValidation,
) -> Result<OtlpConfig, ConfigError> {
    let mut out = OtlpConfig::default();
    let Some(r) = raw else {
        return Ok(out);
    };
    // Each trimmed, none empty or twice (Prometheus's words: "promoted", "ignored").
    let attrs = |field: &str, word: &str, list: &Option<Vec<String>>| {
        let mut seen: Vec<String> = Vec::new();
        for a in list.iter().flatten() {
            let a = a.trim();
            let why = if a.is_empty() {
                format!("empty {word} OTel resource attribute")
            } else if seen.iter().any(|x| x == a) {
                format!("duplicated {word} OTel resource attribute {a:?}")
            } else {
                seen.push(a.to_string());
                continue;
            };
            return Err(ctx.err(format!("otlp.{field}"), format!("invalid '{field}': {why}")));
        }
        Ok(seen)
    };
    out.promote_resource_attributes = attrs(
        "promote_resource_attributes",
        "promoted",
        &r.promote_resource_attributes,
    )?;
    out.ignore_resource_attributes = attrs(
        "ignore_resource_attributes",
        "ignored",
        &r.ignore_resource_attributes,
    )?;
    out.promote_all_resource_attributes = r.promote_all_resource_attributes.unwrap_or(false);
    if out.promote_all_resource_attributes && !out.promote_resource_attributes.is_empty() {
        return Err(ctx.err(
            "otlp.promote_resource_attributes",
            "'promote_all_resource_attributes' and 'promote_resource_attributes' cannot be configured simultaneously",
        ));
    }
    if !out.ignore_resource_attributes.is_empty() && !out.promote_all_resource_attributes {
        return Err(ctx.err(
            "otlp.ignore_resource_attributes",
            "'ignore_resource_attributes' cannot be configured unless 'promote_all_resource_attributes' is true",
        ));
    }
    if let Some(s) = &r.translation_strategy {
        let s = s.trim();
        if !s.is_empty() {
            if !STRATEGIES.contains(&s) {
                return Err(ctx.err(
                    "otlp.translation_strategy",
                    format!("unsupported OTLP translation strategy {s:?}"),
                ));
            }
            if names == NameValidation::Legacy
                && (s == "NoTranslation" || s == "NoUTF8EscapingWithSuffixes")
            {
                return Err(ctx.err(
                    "otlp.translation_strategy",
                    format!("OTLP translation strategy {s:?} is not allowed when UTF8 is disabled"),
                ));
            }
            out.translation_strategy = s.to_string();
        }
    }
    out.keep_identifying_resource_attributes =
        r.keep_identifying_resource_attributes.unwrap_or(false);
    out.convert_histograms_to_nhcb = r.convert_histograms_to_nhcb.unwrap_or(false);
    out.promote_scope_metadata = r.promote_scope_metadata.unwrap_or(false);
    out.label_name_underscore_sanitization = r.label_name_underscore_sanitization.unwrap_or(true);
    out.label_name_preserve_multiple_underscores =
        r.label_name_preserve_multiple_underscores.unwrap_or(true);
    Ok(out)
}
