//! `relabel_configs` and friends: each rule checked as Prometheus checks it.

use super::*;

/// The gist of a `regex` error on one line (its Display draws the pattern with a caret).
pub(crate) fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: ").map(str::to_string))
        .unwrap_or_else(|| text.lines().map(str::trim).collect::<Vec<_>>().join(" "))
}

/// One relabel rule, validated as Prometheus's `relabel.Config.Validate`.
pub(crate) fn relabel(
    ctx: &Ctx<'_>,
    field: &str,
    what: &str,
    r: &Item<RawRelabel>,
    names: NameValidation,
) -> Result<RelabelConfig, ConfigError> {
    let Some(r) = r else {
        return Err(ctx.err(field, format!("empty or null {what}")));
    };
    let _at = ctx.at(r);
    let r = &r.value;
    let action = match &r.action {
        None => Action::Replace,
        Some(None) => return Err(ctx.err(field, "relabel action cannot be empty")),
        Some(Some(a)) if a.is_empty() => {
            return Err(ctx.err(field, "relabel action cannot be empty"));
        }
        Some(Some(a)) => Action::parse(a)
            .ok_or_else(|| ctx.err(field, format!("unknown relabel action {a:?}")))?,
    };
    let regex_src = r
        .regex
        .as_ref()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| "(.*)".into());
    let regex = RelabelRegex::new(&regex_src).map_err(|e| {
        ctx.err(
            format!("{field}.regex"),
            format!("error parsing regexp: {}: `{regex_src}`", regex_error(&e)),
        )
    })?;
    let mut src = Vec::new();
    for s in r.source_labels.iter().flatten() {
        // Source labels are read, never written: any name Prometheus 3 can hold.
        if !NameValidation::Utf8.label_name_ok(&s.0) {
            return Err(ctx.err(
                format!("{field}.source_labels"),
                format!("{:?} is not a valid label name", s.0),
            ));
        }
        src.push(s.0.clone());
    }
    let target = r.target_label.clone().unwrap_or_default();
    let replacement = r
        .replacement
        .as_ref()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| "$1".into());
    let separator = r.separator.clone().unwrap_or_else(|| ";".into());
    let modulus = r.modulus.unwrap_or(0);
    let a = action.as_str();
    if modulus == 0 && action == Action::HashMod {
        return Err(ctx.err(
            field,
            "relabel configuration for hashmod requires non-zero modulus",
        ));
    }
    let needs_target = matches!(
        action,
        Action::Replace
            | Action::HashMod
            | Action::Lowercase
            | Action::Uppercase
            | Action::KeepEqual
            | Action::DropEqual
    );
    if needs_target && target.is_empty() {
        return Err(ctx.err(
            field,
            format!("relabel configuration for {a} action requires 'target_label' value"),
        ));
    }
    let templated = target.contains('$');
    // A templated target is checked once expanded, when the rule runs (under legacy names,
    // Prometheus also checks the template's shape here; a bad one matches nothing later).
    if action == Action::Replace && !templated && !names.label_name_ok(&target) {
        return Err(ctx.err(
            field,
            format!("{target:?} is invalid 'target_label' for {a} action"),
        ));
    }
    if matches!(
        action,
        Action::Lowercase
            | Action::Uppercase
            | Action::KeepEqual
            | Action::DropEqual
            | Action::HashMod
    ) && !names.label_name_ok(&target)
    {
        return Err(ctx.err(
            field,
            format!("{target:?} is invalid 'target_label' for {a} action"),
        ));
    }
    if matches!(
        action,
        Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
    ) && replacement != "$1"
    {
        return Err(ctx.err(
            field,
            format!("'replacement' can not be set for {a} action"),
        ));
    }
    if action == Action::LabelMap
        && !replacement.contains('$')
        && !names.label_name_ok(&replacement)
    {
        return Err(ctx.err(
            field,
            format!("{replacement:?} is invalid 'replacement' for {a} action"),
        ));
    }
    if matches!(action, Action::DropEqual | Action::KeepEqual)
        && (regex_src != "(.*)" || modulus != 0 || separator != ";" || replacement != "$1")
    {
        return Err(ctx.err(
            field,
            format!(
                "{a} action requires only 'source_labels' and `target_label`, and no other fields"
            ),
        ));
    }
    if matches!(action, Action::LabelDrop | Action::LabelKeep)
        && (r.source_labels.is_some()
            || !target.is_empty()
            || modulus != 0
            || separator != ";"
            || replacement != "$1")
    {
        return Err(ctx.err(
            field,
            format!("{a} action requires only 'regex', and no other fields"),
        ));
    }
    Ok(RelabelConfig {
        source_labels: src,
        separator,
        regex,
        modulus,
        target_label: target,
        replacement,
        action,
        validation: names,
    })
}

pub(crate) fn relabels(
    ctx: &Ctx<'_>,
    field: &str,
    what: &str,
    v: &Option<Vec<Item<RawRelabel>>>,
    names: NameValidation,
) -> Result<Vec<RelabelConfig>, ConfigError> {
    v.iter()
        .flatten()
        .enumerate()
        .map(|(i, r)| relabel(ctx, &format!("{field}[{i}]"), what, r, names))
        .collect()
}
