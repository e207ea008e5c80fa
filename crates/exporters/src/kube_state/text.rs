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

/// A Kubernetes quantity held exactly, as `num / den`: the decimal digits as written, times
/// the suffix's power of two or ten, so rounding is Kubernetes' own and not float noise's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantity {
    num: i128,
    den: i128,
}

impl Quantity {
    /// `100m`, `128Mi`, `1.5Gi`, `2e3`, `1E` (exa), `1Ei`, `16318412Ki`.
    pub fn parse(q: &str) -> Option<Quantity> {
        let q = q.trim();
        let (neg, body) = match q.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, q.strip_prefix('+').unwrap_or(q)),
        };
        let end = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (digits, suffix) = body.split_at(end);
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty() || int.len() + frac.len() > 30 {
            return None;
        }
        let mut num: i128 = format!("{int}{frac}").parse().ok()?;
        let mut den: i128 = 10i128.checked_pow(frac.len() as u32)?;
        let (base, exp): (i128, i32) = match suffix {
            "" => (10, 0),
            "n" => (10, -9),
            "u" => (10, -6),
            "m" => (10, -3),
            "k" => (10, 3),
            "M" => (10, 6),
            "G" => (10, 9),
            "T" => (10, 12),
            "P" => (10, 15),
            "E" => (10, 18),
            "Ki" => (2, 10),
            "Mi" => (2, 20),
            "Gi" => (2, 30),
            "Ti" => (2, 40),
            "Pi" => (2, 50),
            "Ei" => (2, 60),
            s => {
                let e = s.strip_prefix(['e', 'E'])?;
                let e: i32 = e.parse().ok()?;
                (10, e)
            }
        };
        if base == 10 && exp.unsigned_abs() > 30 {
            return None;
        }
        let factor = base.checked_pow(exp.unsigned_abs())?;
        if exp >= 0 {
            num = num.checked_mul(factor)?;
        } else {
            den = den.checked_mul(factor)?;
        }
        Some(Quantity {
            num: if neg { -num } else { num },
            den,
        })
    }

    /// `n / d` rounded away from zero.
    fn ceil_div(n: i128, d: i128) -> i128 {
        let q = n / d;
        if n % d == 0 {
            q
        } else if n > 0 {
            q + 1
        } else {
            q - 1
        }
    }

    /// `Quantity.Value()`: rounded up (away from zero) to a whole number.
    pub fn value(&self) -> f64 {
        Self::ceil_div(self.num, self.den) as f64
    }

    /// `Quantity.MilliValue() / 1000`: rounded up to a thousandth.
    pub fn milli(&self) -> f64 {
        Self::ceil_div(self.num.saturating_mul(1000), self.den) as f64 / 1000.0
    }

    /// `Quantity.AsApproximateFloat64`: the nearest float.
    pub fn approximate(&self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// kube-state-metrics' `convertValueToFloat64` (HPA targets, quotas): thousandths, unless
    /// the quantity is too large for milli-units, then whole units.
    pub fn ksm_float(&self) -> f64 {
        let whole = self.value();
        if whole > (i64::MAX / 1000) as f64 {
            whole
        } else {
            self.milli()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let v = |q: &str| Quantity::parse(q).map(|x| x.value());
        let m = |q: &str| Quantity::parse(q).map(|x| x.milli());
        assert_eq!(m("100m"), Some(0.1));
        assert_eq!(m("250m"), Some(0.25));
        assert_eq!(m("0.00025"), Some(0.001));
        assert_eq!(v("4"), Some(4.0));
        assert_eq!(v("128Mi"), Some(134217728.0));
        assert_eq!(v("16318412Ki"), Some(16710053888.0));
        assert_eq!(v("1.5Gi"), Some(1610612736.0));
        // Rounded up exactly as Kubernetes does, where floats would round to nearest.
        assert_eq!(v("0.3Gi"), Some(322122548.0));
        assert_eq!(v("1.1Gi"), Some(1181116007.0));
        assert_eq!(v("2e3"), Some(2000.0));
        assert_eq!(v("1E"), Some(1e18));
        assert_eq!(v("1Ei"), Some(1152921504606846976.0));
        assert_eq!(v("-1.5"), Some(-2.0));
        assert_eq!(Quantity::parse("12x"), None);
        assert_eq!(Quantity::parse(""), None);
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
    }
}
