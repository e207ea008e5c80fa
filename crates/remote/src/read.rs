//! The remote read endpoint (`POST /api/v1/read`): each query's series with their raw samples
//! in one `prometheus.ReadResponse` (the `SAMPLES` response type).

use std::collections::BTreeMap;

use vigil_model::Labels;
use vigil_storage::{MatchOp, Matcher, Storage};

use crate::codec;
use crate::proto::{Label, Query, QueryResult, ReadRequest, ReadResponse, Sample, TimeSeries};
use crate::receive::ReceiveError;

fn matcher(m: &crate::proto::LabelMatcher) -> Result<Matcher, ReceiveError> {
    let op = match m.r#type {
        0 => MatchOp::Equal,
        1 => MatchOp::NotEqual,
        2 => MatchOp::Regex,
        3 => MatchOp::NotRegex,
        t => {
            return Err(ReceiveError::BadRequest(format!(
                "invalid matcher type {t} for label {:?}",
                m.name
            )));
        }
    };
    Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| {
        ReceiveError::BadRequest(format!("invalid regexp for label {:?}: {e}", m.name))
    })
}

/// Answer one read request. Matchers on external labels are checked against them and left out
/// of the selection (the data here does not carry them), and the results carry them, as
/// Prometheus's server does. More than `sample_limit` samples in all is a 400.
pub fn read(
    storage: &dyn Storage,
    body: &[u8],
    external: &BTreeMap<String, String>,
    sample_limit: u64,
) -> Result<Vec<u8>, ReceiveError> {
    let req: ReadRequest = codec::decode(body).map_err(ReceiveError::BadRequest)?;
    // Only whole `SAMPLES` responses are served; a client that takes only streamed chunks
    // is told so (Prometheus's client offers `SAMPLES`).
    if !req.accepted_response_types.is_empty() && !req.accepted_response_types.contains(&0) {
        return Err(ReceiveError::BadRequest(format!(
            "server does not support any of the requested response types: {:?}; supported: [SAMPLES]",
            req.accepted_response_types
        )));
    }
    let mut out = ReadResponse::default();
    let mut samples = 0u64;
    for q in &req.queries {
        out.results
            .push(query(storage, q, external, sample_limit, &mut samples)?);
    }
    Ok(codec::encode(&out))
}

fn query(
    storage: &dyn Storage,
    q: &Query,
    external: &BTreeMap<String, String>,
    sample_limit: u64,
    samples: &mut u64,
) -> Result<QueryResult, ReceiveError> {
    let mut matchers = Vec::new();
    for m in &q.matchers {
        let m = matcher(m)?;
        if let Some(v) = external.get(&m.name) {
            if !m.matches(v) {
                return Ok(QueryResult::default());
            }
            // The stored series lack the external label (it is added to the results): select
            // those without one of their own, as Prometheus does.
            matchers.push(Matcher::equal(m.name.clone(), ""));
            continue;
        }
        matchers.push(m);
    }
    if matchers.iter().all(|m| m.matches_empty()) {
        return Err(ReceiveError::BadRequest(
            "a query needs at least one matcher that selects a non-empty value".into(),
        ));
    }
    let querier = storage
        .querier(q.start_timestamp_ms, q.end_timestamp_ms)
        .map_err(|e| ReceiveError::Storage(e.to_string()))?;
    let set = querier
        .select(&matchers)
        .map_err(|e| ReceiveError::Storage(e.to_string()))?;
    let mut res = QueryResult::default();
    for s in set {
        if s.samples.is_empty() {
            continue;
        }
        *samples += s.samples.len() as u64;
        if *samples > sample_limit {
            return Err(ReceiveError::BadRequest(format!(
                "exceeded sample limit ({sample_limit})"
            )));
        }
        res.timeseries.push(TimeSeries {
            labels: with_external(&s.labels, external),
            samples: s
                .samples
                .iter()
                .map(|x| Sample {
                    value: x.v,
                    timestamp: x.t,
                })
                .collect(),
            ..Default::default()
        });
    }
    Ok(res)
}

/// The series' labels plus the external labels it lacks, sorted by name.
pub fn with_external(ls: &Labels, external: &BTreeMap<String, String>) -> Vec<Label> {
    let mut out: Vec<Label> = ls
        .iter()
        .map(|l| Label {
            name: l.name.to_string(),
            value: l.value.to_string(),
        })
        .collect();
    for (n, v) in external {
        if !ls.has(n) {
            out.push(Label {
                name: n.clone(),
                value: v.clone(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
