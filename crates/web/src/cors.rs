//! `--web.cors.origin` on the API, as Prometheus answers cross-origin requests: `Vary: Origin`
//! always; when the request names an origin, the allowed headers and methods, and
//! `Access-Control-Allow-Origin` as `*` for the default `.*` or the origin itself when the
//! (anchored) expression matches it. `OPTIONS` on an API path answers 200 with the same.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The compiled `--web.cors.origin`.
#[derive(Debug, Clone)]
pub struct Cors {
    re: regex::Regex,
    any: bool,
}

impl Cors {
    /// Anchored as Prometheus anchors it: `^(?s:<expr>)$`.
    pub fn new(expr: &str) -> Result<Cors, String> {
        let re = regex::Regex::new(&format!("^(?s:{expr})$"))
            .map_err(|e| format!("invalid --web.cors.origin {expr:?}: {e}"))?;
        Ok(Cors {
            any: expr == ".*",
            re,
        })
    }

    fn apply(&self, origin: Option<&HeaderValue>, resp: &mut Response) {
        let h = resp.headers_mut();
        h.append(header::VARY, HeaderValue::from_static("Origin"));
        let Some(origin) = origin else { return };
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Accept, Authorization, Content-Type, Origin"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Date"),
        );
        if self.any {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        } else if origin.to_str().is_ok_and(|o| self.re.is_match(o)) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
    }
}

/// The middleware on `/api/v1/*`.
pub async fn layer(State(cors): State<Arc<Cors>>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut resp = if req.method() == Method::OPTIONS {
        StatusCode::OK.into_response()
    } else {
        next.run(req).await
    };
    cors.apply(origin.as_ref(), &mut resp);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(c: &Cors, origin: Option<&str>) -> axum::http::HeaderMap {
        let mut r = StatusCode::OK.into_response();
        let o = origin.map(|o| HeaderValue::from_str(o).unwrap());
        c.apply(o.as_ref(), &mut r);
        r.headers().clone()
    }

    #[test]
    fn default_allows_any_origin_and_anchoring_is_enforced() {
        let any = Cors::new(".*").unwrap();
        assert_eq!(
            headers(&any, Some("https://x.example"))["access-control-allow-origin"],
            "*"
        );
        assert!(
            headers(&any, None)
                .get("access-control-allow-origin")
                .is_none()
        );
        let one = Cors::new(r"https://grafana\.example").unwrap();
        let h = headers(&one, Some("https://grafana.example"));
        assert_eq!(h["access-control-allow-origin"], "https://grafana.example");
        assert_eq!(h["vary"], "Origin");
        assert!(
            headers(&one, Some("https://grafana.example.evil"))
                .get("access-control-allow-origin")
                .is_none()
        );
        assert!(Cors::new("(").is_err());
    }
}
