//! What every prober's options share: the address family preference, and reading a section's
//! keys strictly (unknown keys are errors, known-but-unimplemented ones are collected). A leaf:
//! `config` reads a module through each prober's options, and each prober's options use this.

use serde_json::Value;

/// Which address family to dial first, and whether the other one may be used.
#[derive(Debug, Clone)]
pub struct IpPreference {
    pub ip6_first: bool,
    pub fallback: bool,
}

impl Default for IpPreference {
    // The exporter's default: "ip6", falling back to IPv4.
    fn default() -> Self {
        IpPreference {
            ip6_first: true,
            fallback: true,
        }
    }
}

/// Unknown keys are errors; known-but-unimplemented ones are collected.
pub(super) fn check_keys(
    v: &Value,
    section: &str,
    known: &[&str],
    unimplemented: &[&str],
    unsupported: &mut Vec<String>,
) -> Result<(), String> {
    for k in v.as_object().into_iter().flatten().map(|(k, _)| k) {
        if unimplemented.contains(&k.as_str()) {
            unsupported.push(format!("{section}.{k}"));
        } else if !known.contains(&k.as_str()) {
            return Err(format!("{section}: unknown field {k:?}"));
        }
    }
    Ok(())
}

pub(super) fn regexes(v: &Value, key: &str) -> Result<Vec<regex::Regex>, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let r = r
                .as_str()
                .ok_or_else(|| format!("{key}: not a string: {r}"))?;
            // Go's regexp is unanchored here too.
            regex::Regex::new(r).map_err(|e| format!("{key}: regexp {r:?}: {e}"))
        })
        .collect()
}

pub(super) fn ip_preference(v: &Value, section: &str) -> Result<IpPreference, String> {
    let ip6_first = match v["preferred_ip_protocol"].as_str() {
        None | Some("") | Some("ip6") => true,
        Some("ip4") => false,
        Some(o) => {
            return Err(format!(
                "{section}.preferred_ip_protocol: {o:?} is not \"ip4\" or \"ip6\""
            ));
        }
    };
    Ok(IpPreference {
        ip6_first,
        fallback: v["ip_protocol_fallback"].as_bool().unwrap_or(true),
    })
}
