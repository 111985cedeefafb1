//! A CloudWatch stand-in for GetMetricData in the protocol aws-sdk-cloudwatch 1.x
//! speaks, Smithy RPC v2 CBOR, which the moto emulator (5.2.5) does not answer.
//!
//! The wire contract [Smithy "RPC v2 CBOR protocol"; CloudWatch API reference,
//! GetMetricData]:
//! - `POST /service/GraniteServiceVersion20100801/operation/GetMetricData`, body a CBOR
//!   map with the input's member names (`MetricDataQueries`, `StartTime`, `EndTime`,
//!   `ScanBy`, ...); timestamps are CBOR tag 1 (epoch seconds).
//! - The answer carries `smithy-protocol: rpc-v2-cbor` (the client checks it) and
//!   `Content-Type: application/cbor`; `MetricDataResults[]` with `Id`, `Label`,
//!   `Timestamps`, `Values`, `StatusCode` (`Complete`), newest first by default
//!   (`ScanBy` TimestampDescending).
//! - Errors: a non-2xx status and a CBOR map with `__type` and `message`.
//!
//! Datapoints are what a test or the rehearsal puts in with [`CloudWatchStandIn::put`];
//! as with ELB, a metric with no datapoint in a period returns nothing for it.
//! Simplified: raw `MetricStat` queries only (no metric math, which Greenlight does not
//! use), no pagination (results fit one answer for the periods Greenlight asks).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ciborium::value::{Integer, Value};

use crate::http::{Handler, Request};

/// One datapoint: a statistic's value for one period.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    namespace: String,
    metric: String,
    dimensions: BTreeMap<String, String>,
    stat: String,
    /// Period start, seconds since the epoch.
    timestamp: i64,
    value: f64,
}

/// One raw observation (a request, an error, a latency), aggregated into whatever
/// period and statistic a query asks, as CloudWatch aggregates what ELB reports.
#[derive(Debug, Clone, PartialEq)]
struct Observation {
    namespace: String,
    metric: String,
    dimensions: BTreeMap<String, String>,
    /// Seconds since the epoch.
    at: f64,
    value: f64,
}

/// The stand-in; clone freely.
#[derive(Clone, Default)]
pub struct CloudWatchStandIn {
    points: Arc<Mutex<Vec<Point>>>,
    observations: Arc<Mutex<Vec<Observation>>>,
    alarms: Arc<Mutex<Vec<String>>>,
    calls: Arc<Mutex<u64>>,
}

fn text(value: &str) -> Value {
    Value::Text(value.to_string())
}

fn get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    match map {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn as_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Text(t) => Some(t.clone()),
        _ => None,
    }
}

fn as_seconds(value: Option<&Value>) -> Option<f64> {
    let value = match value? {
        Value::Tag(1, inner) => inner.as_ref(),
        other => other,
    };
    match value {
        Value::Integer(i) => i64::try_from(*i).ok().map(|v| v as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn timestamp(seconds: i64) -> Value {
    Value::Tag(1, Box::new(Value::Integer(Integer::from(seconds))))
}

impl CloudWatchStandIn {
    pub fn new() -> Self {
        CloudWatchStandIn::default()
    }

    /// Records a datapoint (as CloudWatch would have aggregated it for `timestamp`'s period).
    pub fn put(
        &self,
        namespace: &str,
        metric: &str,
        dimensions: &[(&str, &str)],
        stat: &str,
        timestamp: i64,
        value: f64,
    ) {
        self.points.lock().unwrap().push(Point {
            namespace: namespace.to_string(),
            metric: metric.to_string(),
            dimensions: dimensions
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            stat: stat.to_string(),
            timestamp,
            value,
        });
    }

    /// Records one observation at `at` (epoch seconds): queries aggregate them per
    /// period with the statistic they ask (Sum, Average, SampleCount, Minimum,
    /// Maximum, pNN).
    pub fn observe(
        &self,
        namespace: &str,
        metric: &str,
        dimensions: &[(&str, &str)],
        at: f64,
        value: f64,
    ) {
        self.observations.lock().unwrap().push(Observation {
            namespace: namespace.to_string(),
            metric: metric.to_string(),
            dimensions: dimensions
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            at,
            value,
        });
    }

    /// Defines a metric alarm (its name is all DescribeAlarms reports here).
    pub fn put_alarm(&self, name: &str) {
        self.alarms.lock().unwrap().push(name.to_string());
    }

    /// GetMetricData calls answered so far.
    pub fn calls(&self) -> u64 {
        *self.calls.lock().unwrap()
    }

    pub fn handler(&self) -> Handler {
        let this = self.clone();
        crate::traffic::recorded(
            "cloudwatch",
            Arc::new(move |request: Request| {
                let this = this.clone();
                Box::pin(async move { this.answer(&request) })
            }),
        )
    }

    fn answer(&self, request: &Request) -> crate::http::Response {
        let operation = request
            .path
            .rsplit_once("/operation/")
            .map(|(_, op)| op.to_string())
            .unwrap_or_default();
        if operation != "GetMetricData" && operation != "DescribeAlarms" {
            return error(
                400,
                "InvalidAction",
                &format!(
                    "the stand-in answers GetMetricData and DescribeAlarms only, not {operation:?}"
                ),
            );
        }
        let input: Value = match ciborium::de::from_reader(&request.body[..]) {
            Ok(v) => v,
            Err(e) => return error(400, "SerializationException", &format!("not CBOR: {e}")),
        };
        if operation == "DescribeAlarms" {
            // [API reference, DescribeAlarms]: AlarmNames filters; the answer lists
            // MetricAlarms and CompositeAlarms (the stand-in defines metric alarms only).
            let wanted: Option<Vec<String>> = match get(&input, "AlarmNames") {
                Some(Value::Array(names)) => {
                    Some(names.iter().filter_map(|n| as_text(Some(n))).collect())
                }
                _ => None,
            };
            let alarms: Vec<Value> = self
                .alarms
                .lock()
                .unwrap()
                .iter()
                .filter(|a| wanted.as_ref().is_none_or(|w| w.contains(a)))
                .map(|a| {
                    Value::Map(vec![
                        (text("AlarmName"), text(a)),
                        (
                            text("AlarmArn"),
                            text(&format!(
                                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{a}"
                            )),
                        ),
                        (text("StateValue"), text("OK")),
                    ])
                })
                .collect();
            return cbor(
                200,
                &Value::Map(vec![
                    (text("MetricAlarms"), Value::Array(alarms)),
                    (text("CompositeAlarms"), Value::Array(Vec::new())),
                ]),
            );
        }
        *self.calls.lock().unwrap() += 1;
        let (Some(start), Some(end)) = (
            as_seconds(get(&input, "StartTime")),
            as_seconds(get(&input, "EndTime")),
        ) else {
            // AWS's common error for a missing required parameter.
            return error(
                400,
                "MissingParameter",
                "StartTime and EndTime are required",
            );
        };
        let ascending = as_text(get(&input, "ScanBy")).as_deref() == Some("TimestampAscending");
        let points = self.points.lock().unwrap();
        let observations = self.observations.lock().unwrap();
        let mut results = Vec::new();
        let queries = match get(&input, "MetricDataQueries") {
            Some(Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        };
        for query in &queries {
            let id = as_text(get(query, "Id")).unwrap_or_default();
            let Some(stat_query) = get(query, "MetricStat") else {
                // A stand-in limit, said with a common error code AWS's model allows.
                return error(
                    400,
                    "InvalidParameterValue",
                    "the stand-in answers MetricStat queries only (metric math is not answered)",
                );
            };
            let metric = get(stat_query, "Metric").cloned().unwrap_or(Value::Null);
            let namespace = as_text(get(&metric, "Namespace")).unwrap_or_default();
            let name = as_text(get(&metric, "MetricName")).unwrap_or_default();
            let stat = as_text(get(stat_query, "Stat")).unwrap_or_default();
            let dimensions: BTreeMap<String, String> = match get(&metric, "Dimensions") {
                Some(Value::Array(ds)) => ds
                    .iter()
                    .filter_map(|d| Some((as_text(get(d, "Name"))?, as_text(get(d, "Value"))?)))
                    .collect(),
                _ => BTreeMap::new(),
            };
            let period = match get(stat_query, "Period") {
                Some(Value::Integer(i)) => i128::from(*i).max(1) as f64,
                _ => 60.0,
            };
            // Raw observations, aggregated per period from StartTime.
            let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for o in observations.iter().filter(|o| {
                o.namespace == namespace
                    && o.metric == name
                    && o.dimensions == dimensions
                    && o.at >= start
                    && o.at < end
            }) {
                let bucket = start + ((o.at - start) / period).floor() * period;
                buckets.entry(bucket as i64).or_default().push(o.value);
            }
            let aggregated: Vec<Point> = buckets
                .into_iter()
                .filter_map(|(timestamp, values)| {
                    Some(Point {
                        namespace: namespace.clone(),
                        metric: name.clone(),
                        dimensions: dimensions.clone(),
                        stat: stat.clone(),
                        timestamp,
                        value: statistic(&stat, values)?,
                    })
                })
                .collect();
            let mut matching: Vec<&Point> = points
                .iter()
                .chain(aggregated.iter())
                .filter(|p| {
                    p.namespace == namespace
                        && p.metric == name
                        && p.stat == stat
                        && p.dimensions == dimensions
                        && (p.timestamp as f64) >= start
                        && (p.timestamp as f64) < end
                })
                .collect();
            matching.sort_by_key(|p| p.timestamp);
            if !ascending {
                matching.reverse();
            }
            results.push(Value::Map(vec![
                (text("Id"), text(&id)),
                (text("Label"), text(&name)),
                (
                    text("Timestamps"),
                    Value::Array(matching.iter().map(|p| timestamp(p.timestamp)).collect()),
                ),
                (
                    text("Values"),
                    Value::Array(matching.iter().map(|p| Value::Float(p.value)).collect()),
                ),
                (text("StatusCode"), text("Complete")),
            ]));
        }
        let output = Value::Map(vec![
            (text("MetricDataResults"), Value::Array(results)),
            (text("Messages"), Value::Array(Vec::new())),
        ]);
        cbor(200, &output)
    }
}

/// A CloudWatch statistic of one period's values [CloudWatch user guide, "Statistics
/// definitions"]; percentiles by nearest rank. `None` for an unknown statistic.
fn statistic(stat: &str, mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    values.sort_by(|a, b| a.total_cmp(b));
    match stat {
        "Sum" => Some(values.iter().sum()),
        "SampleCount" => Some(n),
        "Average" => Some(values.iter().sum::<f64>() / n),
        "Minimum" => values.first().copied(),
        "Maximum" => values.last().copied(),
        p if p.starts_with('p') => {
            let q: f64 = p[1..].parse().ok()?;
            let rank = ((q / 100.0) * n).ceil().max(1.0) as usize;
            values.get(rank - 1).copied()
        }
        _ => None,
    }
}

fn cbor(status: u16, value: &Value) -> crate::http::Response {
    let mut body = Vec::new();
    let _ = ciborium::ser::into_writer(value, &mut body);
    let mut r = crate::http::response(status, "application/cbor", body);
    r.headers_mut().insert(
        "smithy-protocol",
        hyper::header::HeaderValue::from_static("rpc-v2-cbor"),
    );
    r
}

fn error(status: u16, code: &str, message: &str) -> crate::http::Response {
    cbor(
        status,
        &Value::Map(vec![
            (text("__type"), text(code)),
            (text("message"), text(message)),
        ]),
    )
}

#[cfg(test)]
mod tests {
    use super::statistic;

    #[test]
    fn statistics_follow_cloudwatch_definitions() {
        let v = || vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(statistic("Sum", v()), Some(10.0));
        assert_eq!(statistic("SampleCount", v()), Some(4.0));
        assert_eq!(statistic("Average", v()), Some(2.5));
        assert_eq!(statistic("Minimum", v()), Some(1.0));
        assert_eq!(statistic("Maximum", v()), Some(4.0));
        assert_eq!(statistic("p50", v()), Some(2.0));
        assert_eq!(statistic("p99", v()), Some(4.0));
        assert_eq!(statistic("Sum", vec![]), None);
        assert_eq!(statistic("tm99", v()), None);
    }
}
