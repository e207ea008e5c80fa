//! Go's number printing, which alert text shows as it is: `{{ $value }}` is `%v` (shortest
//! digits, exponent form when the exponent is below -4 or at least 6), `humanize` is `%.4g`.
//! Rust's own formatting differs (`1000000` for Go's `1e+06`, `inf` for `+Inf`).

/// Decimal digits and the exponent of the first digit: `1234.5` -> ("12345", 3).
fn digits(v: f64, prec: Option<usize>) -> (String, i32) {
    // Rust's `{:e}` gives the shortest round-trip digits, `{:.Ne}` correctly rounded ones
    // (ties to even on exact values, as Go's strconv).
    let s = match prec {
        None => format!("{:e}", v.abs()),
        Some(p) => format!("{:.*e}", p, v.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp.parse().unwrap_or(0))
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v.is_infinite() {
        Some(if v > 0.0 { "+Inf" } else { "-Inf" }.into())
    } else {
        None
    }
}

fn exp_form(neg: bool, d: &str, exp: i32, upper: bool) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(&d[..1]);
    if d.len() > 1 {
        out.push('.');
        out.push_str(&d[1..]);
    }
    out.push(if upper { 'E' } else { 'e' });
    out.push(if exp < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", exp.abs()));
    out
}

fn plain_form(neg: bool, d: &str, exp: i32) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(d);
    } else {
        let int_len = exp as usize + 1;
        if d.len() <= int_len {
            out.push_str(d);
            for _ in d.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&d[..int_len]);
            out.push('.');
            out.push_str(&d[int_len..]);
        }
    }
    out
}

/// Go's `%g` with precision `prec` (`None`: shortest, as `%v`).
pub fn format_g(v: f64, prec: Option<usize>) -> String {
    format_g_case(v, prec, false)
}

pub fn format_g_case(v: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let neg = v.is_sign_negative();
    if v == 0.0 {
        return if neg { "-0" } else { "0" }.into();
    }
    let (d, exp) = match prec {
        None => digits(v, None),
        Some(p) => digits(v, Some(p.max(1) - 1)),
    };
    // Trailing zeros go (%g never keeps them without '#').
    let d = d.trim_end_matches('0');
    let d = if d.is_empty() { "0" } else { d };
    let eprec: i32 = match prec {
        None => 6,
        Some(p) => {
            let p = p.max(1) as i32;
            // Go: when the digits are fewer than the precision and all before the point,
            // the digit count decides.
            if p > d.len() as i32 && d.len() as i32 > exp {
                d.len() as i32
            } else {
                p
            }
        }
    };
    if exp < -4 || exp >= eprec {
        exp_form(neg, d, exp, upper)
    } else {
        plain_form(neg, d, exp)
    }
}

/// Go's `%e` with precision (default 6).
pub fn format_e(v: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let neg = v.is_sign_negative();
    let (d, exp) = digits(v, Some(prec));
    let exp = if v == 0.0 { 0 } else { exp };
    exp_form(neg, &d, exp, upper)
}

/// Go's `%f` with precision (default 6).
pub fn format_f(v: f64, prec: usize) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    format!("{:.*}", prec, v)
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`, as promtool prints sample values.
pub fn format_upper_e_shortest(v: f64) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let neg = v.is_sign_negative();
    if v == 0.0 {
        return if neg { "-0E+00" } else { "0E+00" }.into();
    }
    let (d, exp) = digits(v, None);
    exp_form(neg, &d, exp, true)
}

/// `strconv.FormatFloat(v, 'e', -1, 64)`, as the API prints alert values.
pub fn format_lower_e_shortest(v: f64) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let neg = v.is_sign_negative();
    if v == 0.0 {
        return if neg { "-0e+00" } else { "0e+00" }.into();
    }
    let (d, exp) = digits(v, None);
    exp_form(neg, &d, exp, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_v_as_go_prints_it() {
        for (v, want) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (100000.0, "100000"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (123456789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
        ] {
            assert_eq!(format_g(v, None), want, "{v}");
        }
    }

    #[test]
    fn percent_4g_as_go_prints_it() {
        for (v, want) in [
            (1.2345, "1.234"),
            (1234.5, "1234"),
            (1235.5, "1236"),
            (12.345, "12.35"),
            (1.0, "1"),
            (120.0, "120"),
            (999.0, "999"),
            (1000.0, "1000"),
            (12345.0, "1.234e+04"),
            (123456789.0, "1.235e+08"),
            (0.12, "0.12"),
            (1e-5, "1e-05"),
            (0.125, "0.125"),
            (9.223372036854776, "9.223"),
        ] {
            assert_eq!(format_g(v, Some(4)), want, "{v}");
        }
    }

    #[test]
    fn e_and_f() {
        assert_eq!(format_e(1234.5678, 6, false), "1.234568e+03");
        assert_eq!(format_e(0.0, 6, false), "0.000000e+00");
        assert_eq!(format_f(3720.01, 2), "3720.01");
        assert_eq!(format_upper_e_shortest(1.0), "1E+00");
        assert_eq!(format_upper_e_shortest(0.0), "0E+00");
        assert_eq!(format_lower_e_shortest(1.0), "1e+00");
        assert_eq!(format_lower_e_shortest(123.5), "1.235e+02");
    }
}
