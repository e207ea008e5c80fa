//! Go's `fmt.Sprintf` for the verbs alert templates use (`%s %d %v %f %e %g %q %x %t %%`),
//! with flags, width and precision, and Go's markers for mistakes (`%!d(float64=1.5)`,
//! `%!s(MISSING)`, `%!(EXTRA ...)`), which are printed, not errors.

use super::gofmt;
use super::value::Value;

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn bad(verb: char, v: &Value) -> String {
    match v {
        Value::Missing | Value::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", v.type_name(), v.print()),
    }
}

fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    let Some(w) = spec.width else { return s };
    let n = s.chars().count();
    if n >= w {
        return s;
    }
    let fill = w - n;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        // Zeros go after the sign.
        let (sign, rest) = match s.chars().next() {
            Some(c @ ('+' | '-' | ' ')) => (c.to_string(), s[1..].to_string()),
            _ => (String::new(), s.clone()),
        };
        format!("{sign}{}{rest}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn sign(s: String, spec: &Spec, neg: bool) -> String {
    if neg || s.starts_with('-') {
        s
    } else if spec.plus {
        format!("+{s}")
    } else if spec.space {
        format!(" {s}")
    } else {
        s
    }
}

fn float_verb(verb: char, f: f64, spec: &Spec) -> String {
    let s = match verb {
        'f' | 'F' => gofmt::format_f(f, spec.prec.unwrap_or(6)),
        'e' | 'E' => gofmt::format_e(f, spec.prec.unwrap_or(6), verb == 'E'),
        'g' | 'G' | 'v' => gofmt::format_g_case(f, spec.prec, verb == 'G'),
        _ => unreachable!(),
    };
    pad(sign(s, spec, f.is_sign_negative()), spec, f.is_finite())
}

fn one(verb: char, v: &Value, spec: &Spec) -> String {
    match (verb, v) {
        ('v', Value::Float(f)) => float_verb('g', *f, spec),
        ('v', Value::Int(i)) => pad(sign(i.to_string(), spec, *i < 0), spec, true),
        ('v', other) => pad(other.print(), spec, false),
        ('s', Value::Str(s) | Value::Html(s)) => {
            let s = match spec.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            };
            pad(s, spec, false)
        }
        ('s', Value::StrMap(_) | Value::AnyMap(_) | Value::List(_)) => pad(v.print(), spec, false),
        // A histogram is a `fmt.Stringer`: `%s` and `%q` format its text.
        ('s', Value::Histogram(_)) => pad(v.print(), spec, false),
        ('q', Value::Histogram(_)) => pad(vigil_model::labels::quote(&v.print()), spec, false),
        ('d', Value::Int(i)) => pad(sign(i.to_string(), spec, *i < 0), spec, true),
        ('d', Value::Uint(u)) => pad(sign(u.to_string(), spec, false), spec, true),
        ('f' | 'F' | 'e' | 'E' | 'g' | 'G', Value::Float(f)) => float_verb(verb, *f, spec),
        ('q', Value::Str(s) | Value::Html(s)) => pad(vigil_model::labels::quote(s), spec, false),
        ('q', Value::Int(i)) => match char::from_u32(*i as u32) {
            Some(c) => pad(format!("'{c}'"), spec, false),
            None => bad(verb, v),
        },
        ('x' | 'X', Value::Int(i)) => {
            let s = if verb == 'x' {
                format!("{:x}", i.unsigned_abs())
            } else {
                format!("{:X}", i.unsigned_abs())
            };
            let s = if spec.sharp { format!("0{verb}{s}") } else { s };
            pad(
                sign(if *i < 0 { format!("-{s}") } else { s }, spec, *i < 0),
                spec,
                true,
            )
        }
        ('x' | 'X', Value::Str(s) | Value::Html(s)) => {
            let h: String = s
                .bytes()
                .map(|b| {
                    if verb == 'x' {
                        format!("{b:02x}")
                    } else {
                        format!("{b:02X}")
                    }
                })
                .collect();
            pad(h, spec, false)
        }
        ('t', Value::Bool(b)) => pad(b.to_string(), spec, false),
        ('c', Value::Int(i)) => match char::from_u32(*i as u32) {
            Some(c) => pad(c.to_string(), spec, false),
            None => bad(verb, v),
        },
        _ => bad(verb, v),
    }
}

/// Go's limit on widths and precisions.
const MAX_WIDTH: usize = 1_000_000;

#[cfg(test)]
pub fn sprintf(f: &str, args: &[Value]) -> String {
    sprintf_within(f, args, usize::MAX).expect("no bound")
}

/// Go's `fmt.Sprintf`, or None once the result passes `limit` bytes (checked as each verb is
/// written: widths of up to 1e6 each, and arguments of up to the executor's bound, cannot
/// grow it far past the limit first).
pub fn sprintf_within(f: &str, args: &[Value], limit: usize) -> Option<String> {
    let mut out = String::new();
    let mut next = 0usize;
    let chars: Vec<char> = f.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec::default();
        while i < chars.len() {
            match chars[i] {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = !spec.minus,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            i += 1;
        }
        let num = |i: &mut usize, next: &mut usize| -> Option<usize> {
            if *i < chars.len() && chars[*i] == '*' {
                *i += 1;
                let v = args.get(*next);
                *next += 1;
                return match v {
                    Some(Value::Int(n)) if *n >= 0 => Some(*n as usize),
                    _ => None,
                };
            }
            let start = *i;
            while *i < chars.len() && chars[*i].is_ascii_digit() {
                *i += 1;
            }
            if *i > start {
                chars[start..*i]
                    .iter()
                    .collect::<String>()
                    .parse()
                    .ok()
                    .or(Some(usize::MAX))
            } else {
                None
            }
        };
        spec.width = num(&mut i, &mut next);
        let mut bad = None;
        // Go refuses widths and precisions over 1e6 (a template must not allocate without
        // bound by asking for one).
        if spec.width.is_some_and(|w| w > MAX_WIDTH) {
            bad = Some("%!(BADWIDTH)");
            spec.width = None;
        }
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            spec.prec = Some(num(&mut i, &mut next).unwrap_or(0));
            if spec.prec.is_some_and(|p| p > MAX_WIDTH) {
                bad = Some("%!(BADPREC)");
                spec.prec = None;
            }
        }
        if let Some(b) = bad {
            out.push_str(b);
        }
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(next) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(v) => {
                out.push_str(&one(verb, v, &spec));
            }
        }
        next += 1;
        if out.len() > limit {
            return None;
        }
    }
    if next < args.len() {
        if out
            .len()
            .saturating_add(super::funcs::printed_len(&args[next..]))
            > limit
        {
            return None;
        }
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|v| format!("{}={}", v.type_name(), v.print()))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    (out.len() <= limit).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_as_go() {
        let f = Value::Float;
        let i = Value::Int;
        let s = |x: &str| Value::Str(x.into());
        assert_eq!(sprintf("%.2f", &[f(1.23456)]), "1.23");
        assert_eq!(sprintf("%0.2f", &[f(3720.01)]), "3720.01");
        assert_eq!(sprintf("%d", &[f(1.5)]), "%!d(float64=1.5)");
        assert_eq!(sprintf("%s", &[i(5)]), "%!s(int=5)");
        assert_eq!(sprintf("%d %d", &[i(1)]), "1 %!d(MISSING)");
        assert_eq!(sprintf("%d", &[i(1), i(2)]), "1%!(EXTRA int=2)");
        assert_eq!(sprintf("%v|%v", &[f(1e6), s("x")]), "1e+06|x");
        assert_eq!(
            sprintf("%5.1f|%-4d|%04d", &[f(2.25), i(7), i(-7)]),
            "  2.2|7   |-007"
        );
        assert_eq!(sprintf("%q %x %%", &[s("a\"b"), i(255)]), "\"a\\\"b\" ff %");
        assert_eq!(
            sprintf("%g %e", &[f(100000.0), f(1234.5678)]),
            "100000 1.234568e+03"
        );
        assert_eq!(sprintf("%.3s", &[s("abcdef")]), "abc");
        assert_eq!(sprintf("%+d", &[i(3)]), "+3");
    }
}
