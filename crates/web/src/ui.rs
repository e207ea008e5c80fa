//! The web UI: the single-page app built from `ui/` (embedded at build time by `build.rs`),
//! served for each page path, and its assets under `/assets/`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
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

fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, b)| (*t, *b))
}

/// The app's HTML with a `<base>` for the route prefix: the app uses relative URLs only, so
/// it works under any prefix.
async fn index(State(s): State<Arc<AppState>>) -> Response {
    match asset("index.html") {
        Some((t, b)) => {
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
                        "<title>{title}</title><meta name=\"page-title\" content=\"{title}\">"
                    ),
                    1,
                );
            ([(header::CONTENT_TYPE, t)], html).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn file(Path(name): Path<String>) -> Response {
    match asset(&name) {
        Some((t, b)) => (
            [
                (header::CONTENT_TYPE, t),
                // Names are stable across builds: revalidate rather than cache forever.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            b,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub fn routes() -> Router<Arc<AppState>> {
    let mut r = Router::new().route("/assets/{name}", get(file));
    for p in PAGES {
        r = r.route(p, get(index));
    }
    r
}
