//! kube-state-metrics' `kube_state_metrics_list_total` and `kube_state_metrics_watch_total`:
//! the list and watch requests the Kubernetes client sends, by resource and result. They are
//! counted where the requests leave (a tower layer on the client), because kube's watcher
//! restarts an ended watch without telling its caller: counting its events would miss every
//! watch after the first, and the kubernetes-mixin's `KubeStateMetricsWatchErrors` divides
//! errors by this total. As kube-state-metrics counts its ListerWatcher's calls, each page of
//! a list is one list; a request that got a response other than 2xx, or none, is an error.
//! One exception: a list answered 404 (a kind this cluster does not serve yet, such as v1
//! MutatingAdmissionPolicies before Kubernetes 1.36, which vigil watches by default and retries)
//! is not counted, else the mixin's error ratio would keep `KubeStateMetricsListErrors` firing on
//! every older cluster; the exporter logs it once instead.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::{Request, Response};
use parking_lot::Mutex;
use tower::{Layer, Service};

/// A request's kind, as the counters name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    List,
    Watch,
}

/// Counts by (resource, operation, succeeded); a resource is its `apiVersion/plural`
/// (`v1/pods`, `apps/v1/deployments`), so kinds of different groups that share a plural, or
/// one kind at two versions, are told apart.
#[derive(Default)]
pub struct ListWatch {
    counts: Mutex<BTreeMap<(String, Op, bool), u64>>,
}

impl ListWatch {
    fn record(&self, plural: String, op: Op, ok: bool) {
        *self.counts.lock().entry((plural, op, ok)).or_default() += 1;
    }

    /// How many `op` requests for the resource `api_plural` (`apps/v1/deployments`) got the
    /// result `ok`.
    pub fn count(&self, api_plural: &str, op: Op, ok: bool) -> u64 {
        self.counts
            .lock()
            .get(&(api_plural.to_string(), op, ok))
            .copied()
            .unwrap_or(0)
    }
}

/// What a request to the API server is: a list or a watch of a collection, by its
/// `apiVersion/plural` (`/api/v1/pods` is `v1/pods`, `/apis/apps/v1/namespaces/x/deployments`
/// is `apps/v1/deployments`), or neither (`/livez`, `/version`, discovery).
fn classify(uri: &hyper::Uri) -> Option<(String, Op)> {
    let path = uri.path();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (api, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => (v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (format!("{g}/{v}"), rest),
        _ => return None,
    };
    let plural = match rest {
        [plural] | ["namespaces", _, plural] => *plural,
        _ => return None,
    };
    let watch = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    Some((
        format!("{api}/{plural}"),
        if watch { Op::Watch } else { Op::List },
    ))
}

/// The layer counting requests into a [`ListWatch`].
#[derive(Clone)]
pub struct CountLayer(pub Arc<ListWatch>);

impl<S> Layer<S> for CountLayer {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            counts: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    counts: Arc<ListWatch>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Counted<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let what = classify(req.uri());
        let counts = self.counts.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            if let Some((plural, op)) = what {
                let status = res.as_ref().ok().map(|r| r.status());
                let unserved = op == Op::List && status == Some(hyper::StatusCode::NOT_FOUND);
                if !unserved {
                    let ok = status.is_some_and(|s| s.is_success());
                    counts.record(plural, op, ok);
                }
            }
            res
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_watches_are_told_apart_by_path_and_query() {
        let c = |s: &str| classify(&s.parse().unwrap());
        assert_eq!(
            c("/api/v1/pods?limit=500"),
            Some(("v1/pods".into(), Op::List))
        );
        assert_eq!(
            c("/apis/apps/v1/namespaces/a/deployments?watch=true&resourceVersion=5"),
            Some(("apps/v1/deployments".into(), Op::Watch))
        );
        assert_eq!(
            c("/api/v1/namespaces/a/configmaps?resourceVersion=1&watch=1"),
            Some(("v1/configmaps".into(), Op::Watch))
        );
        // Another group's `pods` is another resource.
        assert_eq!(
            c("/apis/metrics.k8s.io/v1beta1/pods"),
            Some(("metrics.k8s.io/v1beta1/pods".into(), Op::List))
        );
        // `watchful=true` is not a watch.
        assert_eq!(
            c("/api/v1/pods?watchful=true"),
            Some(("v1/pods".into(), Op::List))
        );
        assert_eq!(c("/livez"), None);
        assert_eq!(c("/version"), None);
        // Discovery and single objects are neither.
        assert_eq!(c("/apis/apps/v1"), None);
        assert_eq!(c("/api/v1/namespaces/a"), None);
    }
}
