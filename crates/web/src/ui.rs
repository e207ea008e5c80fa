//! The web UI: the single-page app built from `ui/` (embedded at build time by `build.rs`),
//! served for each page path, and its assets under `/assets/`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The UI's pages; each serves the app, which renders the page its path names.
pub const PAGES: [&str; 13] = [
    "/dashboards",
    "/d/{uid}",
    "/d/{uid}/{slug}",
    "/graph",
    "/query",
    "/targets",
    "/service-discovery",
    "/config",
    "/flags",
    "/status",
    "/tsdb-status",
    "/alerts",
    "/rules",
];

fn asset(name: &str) -> Option<(&'static str, bool, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(n, _, _, _)| *n == name)
        .map(|(_, t, z, b)| (*t, *z, *b))
}

/// Whether the request's `Accept-Encoding` takes gzip: `gzip` or `x-gzip` listed and not at
/// `q=0`, or else `*` not at `q=0` (an explicit refusal of gzip wins over `*`).
fn takes_gzip(headers: &HeaderMap) -> bool {
    let mut named: Option<bool> = None;
    let mut any = false;
    for coding in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            let p = p.trim();
            p.get(..2).is_some_and(|k| k.eq_ignore_ascii_case("q="))
                && p[2..].trim().parse::<f32>().is_ok_and(|q| q == 0.0)
        });
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            named = Some(named.unwrap_or(false) || !refused);
        } else if name == "*" {
            any |= !refused;
        }
    }
    named.unwrap_or(any)
}

/// A gzipped asset unpacked, for the rare client that does not take gzip; each is unpacked
/// once.
fn unpacked(name: &str, gz: &'static [u8]) -> &'static [u8] {
    use std::collections::HashMap;
    use std::io::Read;
    use std::sync::{Mutex, OnceLock};
    static PLAIN: OnceLock<Mutex<HashMap<String, &'static [u8]>>> = OnceLock::new();
    let mut plain = PLAIN.get_or_init(Default::default).lock().unwrap();
    plain.entry(name.to_string()).or_insert_with(|| {
        let mut out = Vec::new();
        // The bytes were compressed by build.rs: failing to unpack them is a broken build.
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .expect("embedded UI asset is valid gzip");
        Box::leak(out.into_boxed_slice())
    })
}

/// The PromQL function names the query editor completes and highlights, from the engine's
/// own table (so the UI never lists a function the engine lacks, or misses one it has).
fn function_names() -> &'static str {
    static META: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    META.get_or_init(|| {
        let names: Vec<&str> = vigil_promql::functions::FUNCTIONS
            .iter()
            .map(|f| f.name)
            .collect();
        format!(
            "<meta name=\"promql-functions\" content=\"{}\">",
            names.join(",")
        )
    })
}

/// The app's HTML with a `<base>` for the route prefix: the app uses relative URLs only, so
/// it works under any prefix.
async fn index(State(s): State<Arc<AppState>>) -> Response {
    match asset("index.html") {
        Some((t, _, b)) => {
            // `--web.page-title`, escaped (Prometheus inserts it raw).
            let title = s
                .page_title
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;");
            let html = String::from_utf8_lossy(b)
                .replacen(
                    "<head>",
                    &format!("<head>\n<base href=\"{}/\">", s.external_path),
                    1,
                )
                .replacen(
                    "<title>vigil</title>",
                    &format!(
                        "<title>{title}</title><meta name=\"page-title\" content=\"{title}\">{}",
                        function_names()
                    ),
                    1,
                );
            ([(header::CONTENT_TYPE, t)], html).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some((t, gzipped, b)) = asset(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, t),
            // Names are stable across builds: revalidate rather than cache forever.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        if gzipped && !takes_gzip(&headers) {
            unpacked(&name, b)
        } else {
            b
        },
    )
        .into_response();
    if gzipped {
        let h = response.headers_mut();
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if takes_gzip(&headers) {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
    }
    response
}

pub fn routes() -> Router<Arc<AppState>> {
    let mut r = Router::new().route("/assets/{name}", get(file));
    for p in PAGES {
        r = r.route(p, get(index));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn takes(v: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        takes_gzip(&h)
    }

    #[test]
    fn accept_encoding_as_rfc_9110_reads_it() {
        assert!(takes("gzip, deflate, br"));
        assert!(takes("br;q=1.0, GZIP;q=0.5"));
        assert!(takes("x-gzip"));
        assert!(takes("*"));
        assert!(!takes("identity"));
        assert!(!takes("gzip;q=0"));
        assert!(!takes("gzip; Q=0.0, identity"));
        // An explicit refusal of gzip wins over `*`.
        assert!(!takes("gzip;q=0, *"));
        assert!(!takes("*;q=0"));
        assert!(!takes(""));
    }
}
