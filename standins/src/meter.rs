//! A meter in front of a stand-in or the emulator: counts calls per operation, adds
//! a per-call latency (AWS answers in tens of milliseconds, the stand-ins in
//! microseconds), and can answer throttling errors the way AWS does under load.
//!
//! Throttling answers follow each protocol's documented error shape:
//! - AWS JSON 1.0/1.1 (`X-Amz-Target`; CodeDeploy, ECS, ECR, CodePipeline): HTTP 400,
//!   `{"__type": "ThrottlingException", "message": "Rate exceeded"}` and the
//!   `x-amzn-ErrorType` header [AWS JSON protocols, "Operation error serialization"];
//! - AWS Query (`Action=` form bodies; SNS, ELBv2): HTTP 400,
//!   `<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>…` [AWS Query
//!   protocol, error responses]. SNS calls the code `Throttling`.
//!
//! [`proxy`] forwards to another endpoint (the emulator), so its calls can be metered too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::http::{response, Handler, Request};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Throttle {
    Off,
    /// The next N calls.
    Calls(u64),
    /// Every call until then.
    Until(Instant),
}

#[derive(Debug)]
struct State {
    counts: BTreeMap<String, u64>,
    throttled: BTreeMap<String, u64>,
    latency: Duration,
    throttle: Throttle,
}

/// Counts, latency and throttling for one or more endpoints; clone freely.
#[derive(Debug, Clone)]
pub struct Meter {
    state: Arc<Mutex<State>>,
}

impl Default for Meter {
    fn default() -> Self {
        Meter {
            state: Arc::new(Mutex::new(State {
                counts: BTreeMap::new(),
                throttled: BTreeMap::new(),
                latency: Duration::ZERO,
                throttle: Throttle::Off,
            })),
        }
    }
}

/// The operation a request calls, as `Service.Operation` where the wire says both.
pub fn operation(request: &Request) -> String {
    if let Some(target) = request.header("x-amz-target") {
        // "CodeDeploy_20141006.ListDeployments" → "CodeDeploy.ListDeployments"
        let (service, op) = target.split_once('.').unwrap_or(("", target));
        let service = service.split('_').next().unwrap_or(service);
        let service = match service {
            "AmazonEC2ContainerServiceV20141113" => "ECS",
            "AmazonEC2ContainerRegistry" => "ECR",
            other => other,
        };
        return format!("{service}.{op}");
    }
    let body = String::from_utf8_lossy(&request.body);
    if let Some(action) = body
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
    {
        return action.to_string();
    }
    if let Some((_, op)) = request.path.rsplit_once("/operation/") {
        return op.to_string();
    }
    format!("{} {}", request.method, request.path)
}

fn throttling_response(request: &Request) -> crate::http::Response {
    if request.header("x-amz-target").is_some() {
        let mut r = response(
            400,
            "application/x-amz-json-1.1",
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
        );
        r.headers_mut().insert(
            "x-amzn-errortype",
            hyper::header::HeaderValue::from_static("ThrottlingException"),
        );
        r
    } else {
        response(
            400,
            "text/xml",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>standin-throttled</RequestId></ErrorResponse>",
        )
    }
}

impl Meter {
    pub fn new() -> Self {
        Meter::default()
    }

    /// Every call through `handler` is counted, delayed and possibly throttled.
    pub fn wrap(&self, handler: Handler) -> Handler {
        let meter = self.clone();
        Arc::new(move |request: Request| {
            let meter = meter.clone();
            let handler = handler.clone();
            Box::pin(async move {
                let operation = operation(&request);
                let (latency, throttled) = {
                    let mut state = meter.state.lock().unwrap();
                    *state.counts.entry(operation.clone()).or_default() += 1;
                    let throttled = match state.throttle {
                        Throttle::Off => false,
                        Throttle::Calls(0) => {
                            state.throttle = Throttle::Off;
                            false
                        }
                        Throttle::Calls(n) => {
                            state.throttle = Throttle::Calls(n - 1);
                            true
                        }
                        Throttle::Until(until) => Instant::now() < until,
                    };
                    if throttled {
                        *state.throttled.entry(operation).or_default() += 1;
                    }
                    (state.latency, throttled)
                };
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                if throttled {
                    return throttling_response(&request);
                }
                handler(request).await
            })
        })
    }

    /// Calls per operation since the last reset (throttled ones included).
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.state.lock().unwrap().counts.clone()
    }

    /// Calls answered with a throttling error, per operation.
    pub fn throttled(&self) -> BTreeMap<String, u64> {
        self.state.lock().unwrap().throttled.clone()
    }

    /// All calls since the last reset.
    pub fn total(&self) -> u64 {
        self.state.lock().unwrap().counts.values().sum()
    }

    /// Calls of one operation (`CodeDeploy.ListDeployments`, `Publish`, ...).
    pub fn count(&self, operation: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .counts
            .get(operation)
            .copied()
            .unwrap_or_default()
    }

    pub fn reset(&self) {
        let mut state = self.state.lock().unwrap();
        state.counts.clear();
        state.throttled.clear();
    }

    /// Every call waits this long before it is answered.
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    /// The next `calls` calls are answered with a throttling error.
    pub fn throttle_next(&self, calls: u64) {
        self.state.lock().unwrap().throttle = Throttle::Calls(calls);
    }

    /// Every call for `duration` from now is answered with a throttling error.
    pub fn throttle_for(&self, duration: Duration) {
        self.state.lock().unwrap().throttle = Throttle::Until(Instant::now() + duration);
    }
}

/// Forwards every request to `upstream` (e.g. the emulator) and returns its answer.
pub fn proxy(upstream: String) -> Handler {
    let client = reqwest::Client::new();
    Arc::new(move |request: Request| {
        let client = client.clone();
        let url = format!("{}{}", upstream.trim_end_matches('/'), request.path);
        Box::pin(async move {
            let mut outgoing = client.request(request.method.clone(), &url);
            for (name, value) in &request.headers {
                if name != hyper::header::HOST && name != hyper::header::CONTENT_LENGTH {
                    outgoing = outgoing.header(name, value);
                }
            }
            match outgoing.body(request.body.clone()).send().await {
                Ok(answer) => {
                    let status = answer.status().as_u16();
                    let content_type = answer
                        .headers()
                        .get(hyper::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("application/octet-stream")
                        .to_string();
                    let body = answer.bytes().await.unwrap_or_default();
                    response(status, &content_type, body)
                }
                Err(e) => response(502, "text/plain", format!("proxy: {e}")),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: Option<&str>, body: &str) -> Request {
        let mut headers = hyper::HeaderMap::new();
        if let Some(t) = target {
            headers.insert("x-amz-target", t.parse().unwrap());
        }
        Request {
            method: hyper::Method::POST,
            path: "/".into(),
            headers,
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn operations_are_named_for_json_and_query_protocols() {
        assert_eq!(
            operation(&request(Some("CodeDeploy_20141006.ListDeployments"), "{}")),
            "CodeDeploy.ListDeployments"
        );
        assert_eq!(
            operation(&request(
                Some("AmazonEC2ContainerServiceV20141113.DescribeServices"),
                "{}"
            )),
            "ECS.DescribeServices"
        );
        assert_eq!(
            operation(&request(None, "Action=Publish&TopicArn=x")),
            "Publish"
        );
    }

    #[tokio::test]
    async fn counts_delays_and_throttles_the_next_calls() {
        let meter = Meter::new();
        let inner: Handler =
            Arc::new(|_r: Request| Box::pin(async { response(200, "text/plain", "ok") }));
        let handler = meter.wrap(inner);
        meter.set_latency(Duration::from_millis(20));
        meter.throttle_next(2);
        let started = Instant::now();
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let r = handler(request(Some("CodeDeploy_20141006.GetDeployment"), "{}")).await;
            statuses.push(r.status().as_u16());
        }
        assert!(started.elapsed() >= Duration::from_millis(60));
        assert_eq!(statuses, [400, 400, 200]);
        assert_eq!(meter.count("CodeDeploy.GetDeployment"), 3);
        assert_eq!(meter.throttled()["CodeDeploy.GetDeployment"], 2);
        meter.reset();
        assert_eq!(meter.total(), 0);
    }
}
