//! Kubernetes' names and quantities as kube-state-metrics turns them into labels and values.

pub use crate::exposition::{Family, Rendered, counter, gauge};

/// Every character outside `[a-zA-Z0-9_]` turned into `_` (kube-state-metrics'
/// `SanitizeLabelName`; used as is for `resource` values).
pub fn sanitize(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A Kubernetes label key as kube-state-metrics names it: sanitized, `_` put between a
/// lower-case letter or digit and a following capital, lower-cased, after `prefix`.
pub fn label_name(prefix: &str, key: &str) -> String {
    let clean = sanitize(key);
    let mut s = String::with_capacity(prefix.len() + clean.len() + 4);
    s.push_str(prefix);
    let mut prev: Option<char> = None;
    for c in clean.chars() {
        if c.is_ascii_uppercase()
            && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
        {
            s.push('_');
        }
        s.push(c.to_ascii_lowercase());
        prev = Some(c);
    }
    s
}

/// Round up to a whole number, as Kubernetes' `Quantity.Value()` does; a value within float
/// noise of a whole number is that number (`0.1 * 1000` is 100, not 101).
pub fn ceil_whole(x: f64) -> f64 {
    if (x - x.round()).abs() <= 1e-9 * x.abs().max(1.0) {
        x.round()
    } else {
        x.ceil()
    }
}

/// `Quantity.MilliValue() / 1000`: rounded up to a thousandth.
pub fn milli(x: f64) -> f64 {
    ceil_whole(x * 1000.0) / 1000.0
}

/// A quantity (`100m`, `128Mi`, `1.5Gi`, `2e3`, `16318412Ki`) as a number of base units.
pub fn quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    // An exponent (`2e3`) is part of the number; a lone trailing `E` is exa.
    let (num, suffix) = if suffix.is_empty() && (num.ends_with('E') || num.ends_with('e')) {
        (&num[..num.len() - 1], "E")
    } else {
        (num, suffix)
    };
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    Some(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity("100m"), Some(0.1));
        assert_eq!(quantity("4"), Some(4.0));
        assert_eq!(quantity("128Mi"), Some(134217728.0));
        assert_eq!(quantity("16318412Ki"), Some(16710053888.0));
        assert_eq!(quantity("1.5Gi"), Some(1610612736.0));
        assert_eq!(quantity("2e3"), Some(2000.0));
        assert_eq!(quantity("1E"), Some(1e18));
        assert_eq!(quantity("12x"), None);
    }

    #[test]
    fn label_names_are_sanitized() {
        assert_eq!(
            label_name("label_", "app.kubernetes.io/name"),
            "label_app_kubernetes_io_name"
        );
        assert_eq!(label_name("label_", "myLabel"), "label_my_label");
        assert_eq!(label_name("label_", "HTTPPort"), "label_httpport");
        assert_eq!(label_name("label_", "team-A"), "label_team_a");
        assert_eq!(sanitize("nvidia.com/gpu"), "nvidia_com_gpu");
        assert_eq!(milli(0.1), 0.1);
        assert_eq!(milli(0.00025), 0.001);
        assert_eq!(ceil_whole(1.5), 2.0);
    }
}
