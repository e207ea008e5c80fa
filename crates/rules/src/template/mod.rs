//! Go's text/template as Prometheus runs alert label and annotation templates: the same
//! syntax, functions, output formats (`{{ $value }}` prints `1e+06`) and error texts, so an
//! alert reads the same from vigil as from Prometheus. Written here rather than taken from a
//! crate: the Rust ports print floats the Rust way, read missing labels as `<no value>` and
//! carry no positions in their errors (docs/rules.md lists what differs).

mod exec;
pub mod funcs;
pub mod gofmt;
mod parse;
mod printf;
pub mod value;

pub use funcs::Env;
pub use value::{AlertData, QSample, Value};

use std::sync::Arc;

/// What Prometheus puts before every alert template: the variables it offers.
pub const ALERT_PREAMBLE: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template(parse::Tree);

impl Template {
    /// Parse `text` as template `name`; the error reads `template: NAME:LINE: msg`.
    pub fn parse(name: &str, text: &str) -> Result<Template, String> {
        parse::parse(name, text, funcs::names())
            .map(Template)
            .map_err(|e| e.to_string())
    }

    /// Run with `data` as dot (and `$`).
    pub fn execute(&self, data: Value, env: &Env) -> Result<String, String> {
        exec::execute(&self.0, data, env).map_err(|e| e.to_string())
    }
}

fn alert_name(alert: &str) -> String {
    format!("__alert_{alert}")
}

/// Check an alert's label or annotation template when rules load, as Prometheus does.
pub fn check_alert(alert: &str, text: &str) -> Result<(), String> {
    if !text.contains("{{") {
        return Ok(());
    }
    Template::parse(&alert_name(alert), &format!("{ALERT_PREAMBLE}{text}")).map(|_| ())
}

/// Expand an alert's label or annotation template; a failure is the text Prometheus shows
/// in its place: `<error expanding template: ...>`.
pub fn expand_alert(alert: &str, text: &str, data: &AlertData, env: &Env) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    let name = alert_name(alert);
    let r = match Template::parse(&name, &format!("{ALERT_PREAMBLE}{text}")) {
        Err(e) => Err(format!("error parsing template {name}: {e}")),
        Ok(t) => t
            .execute(Value::Data(Arc::new(data.clone())), env)
            .map_err(|e| format!("error executing template {name}: {e}")),
    };
    match r {
        Ok(s) => s,
        Err(e) => format!("<error expanding template: {e}>"),
    }
}

#[cfg(test)]
mod tests;
