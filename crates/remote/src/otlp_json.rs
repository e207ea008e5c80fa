//! OTLP's JSON encoding (OTLP/HTTP `application/json`) read into the same messages as the
//! protobuf one: proto3's JSON mapping with OTLP's exceptions, as OpenTelemetry's own reader
//! takes it. Keys in lowerCamelCase or as in the .proto; 64-bit integers as numbers or
//! strings; enums as numbers or names; `traceId`/`spanId` in hex (OTLP's rule), other bytes in
//! base64; doubles as numbers or `"NaN"`/`"Infinity"`/`"-Infinity"`. Unknown keys are skipped.

use serde_json::{Map, Value};

use crate::otlp_proto::{self as p, any_value, metric};

type R<T> = Result<T, String>;

/// The request in `body`, or what is wrong and where (`resourceMetrics[0].scopeMetrics[1]...`).
pub fn decode(body: &[u8]) -> R<p::ExportMetricsServiceRequest> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let o = obj(&v, "request")?;
    Ok(p::ExportMetricsServiceRequest {
        resource_metrics: list(o, "resourceMetrics", "resource_metrics", resource_metrics)?,
    })
}

/// `at`: the field's name, empty for a list element (its list names it).
fn obj<'a>(v: &'a Value, at: &str) -> R<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| format!("{at}: expected an object"))
}

/// A field by its JSON name or its .proto name.
fn field<'a>(o: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    o.get(camel)
        .or_else(|| o.get(snake))
        .filter(|v| !v.is_null())
}

fn list<T>(
    o: &Map<String, Value>,
    camel: &str,
    snake: &str,
    each: impl Fn(&Value, &str) -> R<T>,
) -> R<Vec<T>> {
    let Some(v) = field(o, camel, snake) else {
        return Ok(Vec::new());
    };
    let a = v
        .as_array()
        .ok_or_else(|| format!("{camel}: expected an array"))?;
    a.iter()
        .enumerate()
        .map(|(i, x)| {
            // An element that is not an object says so at its own place (`x[0]: ...`).
            each(x, "").map_err(|e| match e.strip_prefix(':') {
                Some(rest) => format!("{camel}[{i}]:{rest}"),
                None => format!("{camel}[{i}].{e}"),
            })
        })
        .collect()
}

fn string(o: &Map<String, Value>, camel: &str, snake: &str) -> R<String> {
    match field(o, camel, snake) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{camel}: expected a string")),
    }
}

fn boolean(o: &Map<String, Value>, camel: &str, snake: &str) -> R<bool> {
    match field(o, camel, snake) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{camel}: expected true or false")),
    }
}

/// A 64-bit integer: a number or a decimal string.
fn int<T: std::str::FromStr + TryFrom<i64> + TryFrom<u64> + Default>(
    o: &Map<String, Value>,
    camel: &str,
    snake: &str,
) -> R<T> {
    let bad = || format!("{camel}: expected an integer");
    match field(o, camel, snake) {
        None => Ok(T::default()),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| bad()),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                T::try_from(u).map_err(|_| bad())
            } else if let Some(i) = n.as_i64() {
                T::try_from(i).map_err(|_| bad())
            } else {
                Err(bad())
            }
        }
        Some(_) => Err(bad()),
    }
}

fn double_value(v: &Value, at: &str) -> R<f64> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{at}: expected a number")),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .parse()
                .map_err(|_| format!("{at}: expected a number")),
        },
        _ => Err(format!("{at}: expected a number")),
    }
}

fn double(o: &Map<String, Value>, camel: &str, snake: &str) -> R<Option<f64>> {
    field(o, camel, snake)
        .map(|v| double_value(v, camel))
        .transpose()
}

/// An enum: its number, or its name from `names` (index = number).
fn enumeration(o: &Map<String, Value>, camel: &str, snake: &str, names: &[&str]) -> R<i32> {
    match field(o, camel, snake) {
        None => Ok(0),
        Some(Value::String(s)) => names
            .iter()
            .position(|n| n == s)
            .map(|i| i as i32)
            .or_else(|| s.parse().ok())
            .ok_or_else(|| format!("{camel}: unknown value {s:?}")),
        Some(_) => int::<i32>(o, camel, snake),
    }
}

fn hex(o: &Map<String, Value>, camel: &str, snake: &str) -> R<Vec<u8>> {
    let s = string(o, camel, snake)?;
    if s.len() % 2 != 0 {
        return Err(format!("{camel}: expected hex digits"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| format!("{camel}: expected hex digits"))
        })
        .collect()
}

fn base64(s: &str, at: &str) -> R<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let digits: Vec<u8> = s.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (k, c) in chunk.iter().enumerate() {
            n |= val(*c).ok_or_else(|| format!("{at}: expected base64"))? << (18 - 6 * k);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    Ok(out)
}

fn resource_metrics(v: &Value, at: &str) -> R<p::ResourceMetrics> {
    let o = obj(v, at)?;
    let resource = match field(o, "resource", "resource") {
        None => None,
        Some(r) => {
            let r = obj(r, "resource")?;
            Some(p::Resource {
                attributes: list(r, "attributes", "attributes", key_value)
                    .map_err(|e| format!("resource.{e}"))?,
            })
        }
    };
    Ok(p::ResourceMetrics {
        resource,
        scope_metrics: list(o, "scopeMetrics", "scope_metrics", scope_metrics)?,
    })
}

fn scope_metrics(v: &Value, at: &str) -> R<p::ScopeMetrics> {
    let o = obj(v, at)?;
    let scope = match field(o, "scope", "scope") {
        None => None,
        Some(s) => {
            let s = obj(s, "scope")?;
            Some(p::InstrumentationScope {
                name: string(s, "name", "name")?,
                version: string(s, "version", "version")?,
                attributes: list(s, "attributes", "attributes", key_value)
                    .map_err(|e| format!("scope.{e}"))?,
            })
        }
    };
    Ok(p::ScopeMetrics {
        scope,
        metrics: list(o, "metrics", "metrics", metric_of)?,
        schema_url: string(o, "schemaUrl", "schema_url")?,
    })
}

fn key_value(v: &Value, at: &str) -> R<p::KeyValue> {
    let o = obj(v, at)?;
    Ok(p::KeyValue {
        key: string(o, "key", "key")?,
        value: field(o, "value", "value")
            .map(|x| any_value_of(x, "value"))
            .transpose()?,
    })
}

fn any_value_of(v: &Value, at: &str) -> R<p::AnyValue> {
    let o = obj(v, at)?;
    let value = if let Some(Value::String(s)) = field(o, "stringValue", "string_value") {
        Some(any_value::Value::StringValue(s.clone()))
    } else if field(o, "boolValue", "bool_value").is_some() {
        Some(any_value::Value::BoolValue(boolean(
            o,
            "boolValue",
            "bool_value",
        )?))
    } else if field(o, "intValue", "int_value").is_some() {
        Some(any_value::Value::IntValue(int(o, "intValue", "int_value")?))
    } else if let Some(d) = double(o, "doubleValue", "double_value")? {
        Some(any_value::Value::DoubleValue(d))
    } else if let Some(a) = field(o, "arrayValue", "array_value") {
        let a = obj(a, "arrayValue")?;
        Some(any_value::Value::ArrayValue(p::ArrayValue {
            values: list(a, "values", "values", any_value_of)?,
        }))
    } else if let Some(kv) = field(o, "kvlistValue", "kvlist_value") {
        let kv = obj(kv, "kvlistValue")?;
        Some(any_value::Value::KvlistValue(p::KeyValueList {
            values: list(kv, "values", "values", key_value)?,
        }))
    } else if let Some(b) = field(o, "bytesValue", "bytes_value") {
        let s = b.as_str().ok_or("bytesValue: expected a string")?;
        Some(any_value::Value::BytesValue(base64(s, "bytesValue")?))
    } else {
        None
    };
    Ok(p::AnyValue { value })
}

const TEMPORALITY: &[&str] = &[
    "AGGREGATION_TEMPORALITY_UNSPECIFIED",
    "AGGREGATION_TEMPORALITY_DELTA",
    "AGGREGATION_TEMPORALITY_CUMULATIVE",
];

fn metric_of(v: &Value, at: &str) -> R<p::Metric> {
    let o = obj(v, at)?;
    let temporality = |d: &Map<String, Value>| {
        enumeration(
            d,
            "aggregationTemporality",
            "aggregation_temporality",
            TEMPORALITY,
        )
    };
    let data = if let Some(g) = field(o, "gauge", "gauge") {
        let g = obj(g, "gauge")?;
        Some(metric::Data::Gauge(p::Gauge {
            data_points: list(g, "dataPoints", "data_points", number_point)
                .map_err(|e| format!("gauge.{e}"))?,
        }))
    } else if let Some(s) = field(o, "sum", "sum") {
        let s = obj(s, "sum")?;
        Some(metric::Data::Sum(p::Sum {
            data_points: list(s, "dataPoints", "data_points", number_point)
                .map_err(|e| format!("sum.{e}"))?,
            aggregation_temporality: temporality(s)?,
            is_monotonic: boolean(s, "isMonotonic", "is_monotonic")?,
        }))
    } else if let Some(h) = field(o, "histogram", "histogram") {
        let h = obj(h, "histogram")?;
        Some(metric::Data::Histogram(p::Histogram {
            data_points: list(h, "dataPoints", "data_points", histogram_point)
                .map_err(|e| format!("histogram.{e}"))?,
            aggregation_temporality: temporality(h)?,
        }))
    } else if let Some(h) = field(o, "exponentialHistogram", "exponential_histogram") {
        let h = obj(h, "exponentialHistogram")?;
        Some(metric::Data::ExponentialHistogram(
            p::ExponentialHistogram {
                data_points: list(h, "dataPoints", "data_points", exponential_point)
                    .map_err(|e| format!("exponentialHistogram.{e}"))?,
                aggregation_temporality: temporality(h)?,
            },
        ))
    } else if let Some(s) = field(o, "summary", "summary") {
        let s = obj(s, "summary")?;
        Some(metric::Data::Summary(p::Summary {
            data_points: list(s, "dataPoints", "data_points", summary_point)
                .map_err(|e| format!("summary.{e}"))?,
        }))
    } else {
        None
    };
    Ok(p::Metric {
        name: string(o, "name", "name")?,
        description: string(o, "description", "description")?,
        unit: string(o, "unit", "unit")?,
        data,
    })
}

fn times(o: &Map<String, Value>) -> R<(u64, u64)> {
    Ok((
        int(o, "startTimeUnixNano", "start_time_unix_nano")?,
        int(o, "timeUnixNano", "time_unix_nano")?,
    ))
}

fn number_point(v: &Value, at: &str) -> R<p::NumberDataPoint> {
    let o = obj(v, at)?;
    let (start, time) = times(o)?;
    let value = if let Some(d) = double(o, "asDouble", "as_double")? {
        Some(p::number_data_point::Value::AsDouble(d))
    } else if field(o, "asInt", "as_int").is_some() {
        Some(p::number_data_point::Value::AsInt(int(
            o, "asInt", "as_int",
        )?))
    } else {
        None
    };
    Ok(p::NumberDataPoint {
        attributes: list(o, "attributes", "attributes", key_value)?,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value,
        exemplars: list(o, "exemplars", "exemplars", exemplar)?,
        flags: int(o, "flags", "flags")?,
    })
}

fn doubles(o: &Map<String, Value>, camel: &str, snake: &str) -> R<Vec<f64>> {
    let Some(v) = field(o, camel, snake) else {
        return Ok(Vec::new());
    };
    v.as_array()
        .ok_or_else(|| format!("{camel}: expected an array"))?
        .iter()
        .map(|x| double_value(x, camel))
        .collect()
}

fn counts(o: &Map<String, Value>, camel: &str, snake: &str) -> R<Vec<u64>> {
    let Some(v) = field(o, camel, snake) else {
        return Ok(Vec::new());
    };
    v.as_array()
        .ok_or_else(|| format!("{camel}: expected an array"))?
        .iter()
        .map(|x| {
            let mut m = Map::new();
            m.insert("n".into(), x.clone());
            int::<u64>(&m, "n", "n").map_err(|_| format!("{camel}: expected integers"))
        })
        .collect()
}

fn histogram_point(v: &Value, at: &str) -> R<p::HistogramDataPoint> {
    let o = obj(v, at)?;
    let (start, time) = times(o)?;
    Ok(p::HistogramDataPoint {
        attributes: list(o, "attributes", "attributes", key_value)?,
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: int(o, "count", "count")?,
        sum: double(o, "sum", "sum")?,
        bucket_counts: counts(o, "bucketCounts", "bucket_counts")?,
        explicit_bounds: doubles(o, "explicitBounds", "explicit_bounds")?,
        exemplars: list(o, "exemplars", "exemplars", exemplar)?,
        flags: int(o, "flags", "flags")?,
    })
}

fn buckets(o: &Map<String, Value>, name: &str) -> R<Option<p::Buckets>> {
    let Some(b) = field(o, name, name) else {
        return Ok(None);
    };
    let b = obj(b, name)?;
    Ok(Some(p::Buckets {
        offset: int(b, "offset", "offset").map_err(|e| format!("{name}.{e}"))?,
        bucket_counts: counts(b, "bucketCounts", "bucket_counts")
            .map_err(|e| format!("{name}.{e}"))?,
    }))
}

fn exponential_point(v: &Value, at: &str) -> R<p::ExponentialHistogramDataPoint> {
    let o = obj(v, at)?;
    let (start, time) = times(o)?;
    Ok(p::ExponentialHistogramDataPoint {
        attributes: list(o, "attributes", "attributes", key_value)?,
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: int(o, "count", "count")?,
        sum: double(o, "sum", "sum")?,
        scale: int(o, "scale", "scale")?,
        zero_count: int(o, "zeroCount", "zero_count")?,
        positive: buckets(o, "positive")?,
        negative: buckets(o, "negative")?,
        flags: int(o, "flags", "flags")?,
        exemplars: list(o, "exemplars", "exemplars", exemplar)?,
        zero_threshold: double(o, "zeroThreshold", "zero_threshold")?.unwrap_or(0.0),
    })
}

fn summary_point(v: &Value, at: &str) -> R<p::SummaryDataPoint> {
    let o = obj(v, at)?;
    let (start, time) = times(o)?;
    Ok(p::SummaryDataPoint {
        attributes: list(o, "attributes", "attributes", key_value)?,
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: int(o, "count", "count")?,
        sum: double(o, "sum", "sum")?.unwrap_or(0.0),
        quantile_values: list(o, "quantileValues", "quantile_values", |v, at| {
            let q = obj(v, at)?;
            Ok(p::ValueAtQuantile {
                quantile: double(q, "quantile", "quantile")?.unwrap_or(0.0),
                value: double(q, "value", "value")?.unwrap_or(0.0),
            })
        })?,
        flags: int(o, "flags", "flags")?,
    })
}

fn exemplar(v: &Value, at: &str) -> R<p::Exemplar> {
    let o = obj(v, at)?;
    let value = if let Some(d) = double(o, "asDouble", "as_double")? {
        Some(p::exemplar::Value::AsDouble(d))
    } else if field(o, "asInt", "as_int").is_some() {
        Some(p::exemplar::Value::AsInt(int(o, "asInt", "as_int")?))
    } else {
        None
    };
    Ok(p::Exemplar {
        filtered_attributes: list(o, "filteredAttributes", "filtered_attributes", key_value)?,
        time_unix_nano: int(o, "timeUnixNano", "time_unix_nano")?,
        value,
        span_id: hex(o, "spanId", "span_id")?,
        trace_id: hex(o, "traceId", "trace_id")?,
    })
}
