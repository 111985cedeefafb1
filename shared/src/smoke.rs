//! The smoke-test engine: runs configured HTTP checks against a base URL and
//! returns a structured report. Pure library (no AWS): the lifecycle hook and the
//! `greenlight smoke` CLI run the same code.
//!
//! Semantics:
//! - Each check is tried up to `attempts` times; a failed attempt waits `backoff`,
//!   doubling each time (green can take seconds to warm up).
//! - Every attempt has its own timeout; the whole run has a deadline, and no attempt
//!   or backoff extends past it. A check cut short by the deadline fails.
//! - At most `concurrency` checks run at once. Redirects are not followed, so a
//!   check can expect a 3xx.
//! - `${image_tag}`, `${image_digest}` and `${deployment_id}` are replaced in the
//!   path, headers, body and every expectation, so a check can prove the answer
//!   came from the new version.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::config::CheckSpec;

/// How much of a body a report keeps.
const EXCERPT_BYTES: usize = 256;

/// Values for `${…}` placeholders.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Placeholders {
    pub image_tag: Option<String>,
    pub image_digest: Option<String>,
    pub deployment_id: Option<String>,
    /// `secret:NAME[#key]` / `ssm:NAME` → value, resolved for this run only.
    pub secrets: BTreeMap<String, String>,
    /// References that could not be resolved → why: their checks fail unsent.
    pub secret_errors: BTreeMap<String, String>,
}

/// The secret references (`secret:NAME`, `secret:NAME#key`, `ssm:NAME`) in a check's
/// headers and body: the only places configuration allows them.
pub fn secret_references(check: &CheckSpec) -> Vec<String> {
    let mut refs: Vec<String> = check
        .headers
        .values()
        .chain(check.body.iter())
        .flat_map(|text| crate::config::placeholder_names(text))
        .filter(|name| is_secret_reference(name))
        .collect();
    refs.sort();
    refs.dedup();
    refs
}

pub use crate::placeholder::is_secret_reference;

/// What stands in a report where a secret's value was.
pub const MASK: &str = "****";

impl Placeholders {
    /// Replaces known placeholders that have a value; others stay as written, so the
    /// mismatch shows which value was missing.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, value) in [
            ("image_tag", &self.image_tag),
            ("image_digest", &self.image_digest),
            ("deployment_id", &self.deployment_id),
        ] {
            if let Some(value) = value {
                out = out.replace(&format!("${{{name}}}"), value);
            }
        }
        for (reference, value) in &self.secrets {
            out = out.replace(&format!("${{{reference}}}"), value);
        }
        out
    }

    fn apply_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.apply(s)),
            other => other.clone(),
        }
    }
}

/// Run-wide settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub warmup: Duration,
    /// When the whole run must be over.
    pub deadline: Instant,
    pub concurrency: usize,
}

/// The result of one smoke run.
#[derive(Debug, Clone, Serialize)]
pub struct SmokeReport {
    pub base_url: String,
    pub passed: bool,
    pub checks: Vec<CheckReport>,
    pub elapsed_ms: u64,
    /// The run's deadline cut at least one check short.
    pub deadline_reached: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub name: String,
    pub method: String,
    pub url: String,
    pub passed: bool,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub number: u32,
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Transport error (refused, timed out, ...), when there was no response.
    pub error: Option<String>,
    pub mismatches: Vec<Mismatch>,
    /// The start of the body, for people reading a failure.
    pub body_excerpt: Option<String>,
}

impl Attempt {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.mismatches.is_empty()
    }
}

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    pub expectation: String,
    pub expected: String,
    pub got: String,
}

impl SmokeReport {
    /// One line per failed check: the last attempt's first problem, for people.
    pub fn failure_summary(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| {
                let last = c.attempts.last();
                let why = match last {
                    None => "never attempted (deadline reached)".to_string(),
                    Some(a) => match (&a.error, a.mismatches.first()) {
                        (Some(e), _) => e.clone(),
                        (None, Some(m)) => {
                            format!("{}: expected {}, got {}", m.expectation, m.expected, m.got)
                        }
                        (None, None) => "failed".to_string(),
                    },
                };
                let latency = last
                    .map(|a| format!(", {} ms", a.latency_ms))
                    .unwrap_or_default();
                format!(
                    "{} {} {}: {} (after {} attempt(s){latency})",
                    c.name,
                    c.method,
                    c.url,
                    why,
                    c.attempts.len()
                )
            })
            .collect()
    }

    pub fn passed_count(&self) -> usize {
        self.checks.iter().filter(|c| c.passed).count()
    }
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("greenlight-smoke/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(256)
}

/// Builds the HTTP client the engine uses: pooled connections, no redirects, the
/// platform's trusted roots for https.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    client_builder().build()
}

/// HTTP clients for the lifecycle hook, built for a fast cold start: loading the
/// system's trusted roots costs milliseconds (it reads and parses every CA), and the
/// test listeners smoke checks aim at are usually plain http. So the plain-http client
/// is built at init with no roots, and the https client only when an https target
/// first appears.
pub struct HttpClients {
    plain: reqwest::Client,
    verified: std::sync::OnceLock<Result<reqwest::Client, HttpsClientError>>,
}

/// The https client could not be built (the system's trust store is unreadable).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot build the https client: {0}")]
pub struct HttpsClientError(String);

impl HttpClients {
    pub fn new() -> Result<HttpClients, reqwest::Error> {
        Ok(HttpClients {
            // No roots at all: this client can only speak plain http.
            plain: client_builder()
                .tls_certs_only(Vec::new())
                .https_only(false)
                .build()?,
            verified: std::sync::OnceLock::new(),
        })
    }

    /// The client for `base_url`.
    pub fn for_url(&self, base_url: &str) -> Result<&reqwest::Client, HttpsClientError> {
        if base_url.starts_with("https://") {
            self.verified
                .get_or_init(|| http_client().map_err(|e| HttpsClientError(e.to_string())))
                .as_ref()
                .map_err(Clone::clone)
        } else {
            Ok(&self.plain)
        }
    }
}

/// Runs `checks` against `base_url`. Never panics on any response; returns the report.
pub async fn run(
    client: &reqwest::Client,
    base_url: &str,
    checks: &[CheckSpec],
    placeholders: &Placeholders,
    options: &RunOptions,
) -> SmokeReport {
    let started = Instant::now();
    let base_url = base_url.trim_end_matches('/').to_string();
    if !options.warmup.is_zero() {
        tokio::time::sleep_until(options.deadline.min(started + options.warmup)).await;
    }
    // Futures collected first: a stream that holds a closure over `&CheckSpec` trips
    // the compiler's higher-ranked Send check when the run is spawned.
    let pending: Vec<_> = checks
        .iter()
        .map(|check| run_check(client, &base_url, check, placeholders, options.deadline))
        .collect();
    let reports: Vec<CheckReport> = futures::stream::iter(pending)
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    let deadline_reached = reports.iter().any(|r| !r.passed) && Instant::now() >= options.deadline;
    let mut report = SmokeReport {
        passed: reports.iter().all(|r| r.passed),
        base_url,
        checks: reports,
        elapsed_ms: started.elapsed().as_millis() as u64,
        deadline_reached,
    };
    // A server may echo a token back: no secret value leaves the run.
    report.mask(placeholders.secrets.values());
    report
}

impl SmokeReport {
    /// Replaces every occurrence of `values` in the report's texts with [`MASK`].
    pub fn mask<'a>(&mut self, values: impl IntoIterator<Item = &'a String>) {
        let values: Vec<&String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            return;
        }
        let hide = |text: &mut String| {
            for v in &values {
                if text.contains(v.as_str()) {
                    *text = text.replace(v.as_str(), MASK);
                }
            }
        };
        hide(&mut self.base_url);
        for check in &mut self.checks {
            hide(&mut check.url);
            for attempt in &mut check.attempts {
                if let Some(e) = attempt.error.as_mut() {
                    hide(e);
                }
                if let Some(b) = attempt.body_excerpt.as_mut() {
                    hide(b);
                }
                for m in &mut attempt.mismatches {
                    hide(&mut m.expected);
                    hide(&mut m.got);
                }
            }
        }
    }
}

async fn run_check(
    client: &reqwest::Client,
    base_url: &str,
    check: &CheckSpec,
    placeholders: &Placeholders,
    deadline: Instant,
) -> CheckReport {
    let url = format!("{base_url}{}", placeholders.apply(&check.path));
    let mut report = CheckReport {
        name: check.name.clone(),
        method: check.method.clone(),
        url: url.clone(),
        passed: false,
        attempts: Vec::new(),
    };
    let unresolved: Vec<String> = secret_references(check)
        .into_iter()
        .filter_map(|r| Some(format!("${{{r}}}: {}", placeholders.secret_errors.get(&r)?)))
        .collect();
    if !unresolved.is_empty() {
        // Never sent: a request without its credential proves nothing.
        report.attempts.push(Attempt {
            number: 1,
            status: None,
            latency_ms: 0,
            error: Some(format!(
                "secret could not be read, check not sent: {}",
                unresolved.join("; ")
            )),
            mismatches: Vec::new(),
            body_excerpt: None,
        });
        return report;
    }
    let mut backoff = check.backoff;
    for number in 1..=check.attempts.max(1) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let timeout = check.timeout.min(deadline - now);
        let attempt = attempt(client, &url, check, placeholders, number, timeout).await;
        let passed = attempt.passed();
        report.attempts.push(attempt);
        if passed {
            report.passed = true;
            break;
        }
        if number < check.attempts {
            tokio::time::sleep_until(deadline.min(Instant::now() + backoff)).await;
            backoff = backoff.saturating_mul(2);
        }
    }
    report
}

async fn attempt(
    client: &reqwest::Client,
    url: &str,
    check: &CheckSpec,
    placeholders: &Placeholders,
    number: u32,
    timeout: Duration,
) -> Attempt {
    let method =
        reqwest::Method::from_bytes(check.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut request = client.request(method, url).timeout(timeout);
    for (name, value) in &check.headers {
        request = request.header(name, placeholders.apply(value));
    }
    if let Some(body) = &check.body {
        request = request.body(placeholders.apply(body));
    }
    let started = Instant::now();
    let outcome = async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, headers, body))
    }
    .await;
    let latency = started.elapsed();
    let latency_ms = latency.as_millis() as u64;
    match outcome {
        Err(e) => Attempt {
            number,
            status: None,
            latency_ms,
            error: Some(describe_transport_error(&e, timeout)),
            mismatches: Vec::new(),
            body_excerpt: None,
        },
        Ok((status, headers, body)) => {
            let body_text = String::from_utf8_lossy(&body);
            let mismatches =
                expectations(check, placeholders, status, &headers, &body_text, latency);
            Attempt {
                number,
                status: Some(status),
                latency_ms,
                error: None,
                mismatches,
                body_excerpt: Some(excerpt(&body_text, 0)),
            }
        }
    }
}

fn describe_transport_error(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("timed out after {} ms", timeout.as_millis())
    } else if e.is_connect() {
        // The innermost cause says refused / unreachable / DNS.
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        format!("cannot connect: {cause}")
    } else {
        format!("request failed: {e}")
    }
}

/// Every expectation of `check` against one response.
pub fn expectations(
    check: &CheckSpec,
    placeholders: &Placeholders,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &str,
    latency: Duration,
) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    if !check.expect_status.matches(status) {
        mismatches.push(Mismatch {
            expectation: "status".into(),
            expected: check.expect_status.to_string(),
            got: status.to_string(),
        });
    }
    if let Some(needle) = &check.body_contains {
        let needle = placeholders.apply(needle);
        if !body.contains(&needle) {
            mismatches.push(Mismatch {
                expectation: "body contains".into(),
                expected: format!("{needle:?}"),
                got: format!("{:?}", excerpt(body, first_difference(body, &needle))),
            });
        }
    }
    if !check.json_equals.is_empty() {
        match serde_json::from_str::<Value>(body) {
            Err(e) => mismatches.push(Mismatch {
                expectation: "body is JSON".into(),
                expected: "a JSON document".into(),
                got: format!("{e}: {:?}", excerpt(body, 0)),
            }),
            Ok(json) => {
                for (pointer, expected) in &check.json_equals {
                    let expected = placeholders.apply_json(expected);
                    let got = json.pointer(pointer);
                    if !json_matches(got, &expected) {
                        mismatches.push(Mismatch {
                            expectation: format!("json {pointer}"),
                            expected: expected.to_string(),
                            got: got.map_or("nothing at that pointer".into(), Value::to_string),
                        });
                    }
                }
            }
        }
    }
    for name in &check.header_present {
        if !headers.contains_key(name.as_str()) {
            mismatches.push(Mismatch {
                expectation: format!("header {name}"),
                expected: "present".into(),
                got: "absent".into(),
            });
        }
    }
    for (name, expected) in &check.header_equals {
        let expected = placeholders.apply(expected);
        let got = headers
            .get(name.as_str())
            .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string());
        if got.as_deref() != Some(expected.as_str()) {
            mismatches.push(Mismatch {
                expectation: format!("header {name}"),
                expected: format!("{expected:?}"),
                got: got.map_or("absent".into(), |g| format!("{g:?}")),
            });
        }
    }
    if let Some(max) = check.max_latency {
        if latency > max {
            mismatches.push(Mismatch {
                expectation: "latency".into(),
                expected: format!("<= {} ms", max.as_millis()),
                got: format!("{} ms", latency.as_millis()),
            });
        }
    }
    mismatches
}

/// JSON equality, where a configured string also matches a number or bool with that text
/// (YAML users write `version: "2"` and `version: 2` interchangeably).
fn json_matches(got: Option<&Value>, expected: &Value) -> bool {
    match (got, expected) {
        (None, _) => false,
        (Some(got), expected) if got == expected => true,
        (Some(Value::Number(n)), Value::String(s)) => n.to_string() == *s,
        (Some(Value::Bool(b)), Value::String(s)) => b.to_string() == *s,
        _ => false,
    }
}

/// Index in `body` from which it stops agreeing with the start of `needle`'s best partial
/// match; a hint for where to look, used to centre the excerpt.
fn first_difference(body: &str, needle: &str) -> usize {
    let first = needle.chars().next();
    let Some(first) = first else { return 0 };
    body.char_indices()
        .filter(|(_, c)| *c == first)
        .map(|(i, _)| {
            let common = body[i..]
                .chars()
                .zip(needle.chars())
                .take_while(|(a, b)| a == b)
                .count();
            (common, i)
        })
        .max_by_key(|(common, _)| *common)
        .map_or(0, |(_, i)| i)
}

fn excerpt(body: &str, from: usize) -> String {
    let mut start = from.min(body.len());
    while !body.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + EXCERPT_BYTES).min(body.len());
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[start..end].to_string()
}

/// Checks that run at `event` (a lifecycle event name), in configured order.
pub fn checks_for(checks: &[CheckSpec], event: crate::LifecycleEvent) -> Vec<CheckSpec> {
    checks
        .iter()
        .filter(|c| c.events.contains(&event))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn check(yaml_fields: &str) -> CheckSpec {
        let doc = format!(
            "services:\n  - {{ name: s, repository: r, cluster: c, service: s, container: x,\n      codedeploy: {{ application: a, deployment_group: g }},\n      smoke: {{ checks: [ {{ name: c, path: /, {yaml_fields} }} ] }} }}\n"
        );
        Config::parse(&doc).unwrap().services[0].smoke.checks[0].clone()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> reqwest::header::HeaderMap {
        let mut map = reqwest::header::HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn placeholders_fill_expectations() {
        let c = check(
            r#"json_equals: { "/version": "${image_tag}" }, header_equals: { x-digest: "${image_digest}" }"#,
        );
        let vars = Placeholders {
            image_tag: Some("v2".into()),
            image_digest: Some("sha256:ab".into()),
            deployment_id: None,
            ..Default::default()
        };
        let ok = expectations(
            &c,
            &vars,
            200,
            &headers(&[("x-digest", "sha256:ab")]),
            r#"{"version":"v2"}"#,
            Duration::ZERO,
        );
        assert!(ok.is_empty(), "{ok:?}");
        let bad = expectations(
            &c,
            &vars,
            200,
            &headers(&[]),
            r#"{"version":"v1"}"#,
            Duration::ZERO,
        );
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert_eq!(bad[0].expected, "\"v2\"");
        assert_eq!(bad[0].got, "\"v1\"");
        assert_eq!(bad[1].got, "absent");
    }

    #[test]
    fn status_class_latency_and_headers() {
        let c = check("expect_status: 2xx, max_latency_ms: 50, header_present: [etag]");
        let vars = Placeholders::default();
        let got = expectations(&c, &vars, 503, &headers(&[]), "", Duration::from_millis(80));
        let names: Vec<_> = got.iter().map(|m| m.expectation.as_str()).collect();
        assert_eq!(names, ["status", "header etag", "latency"]);
        assert_eq!(got[0].expected, "2xx");
    }

    #[test]
    fn body_mismatch_shows_where_the_body_differs() {
        let c = check("body_contains: \"version=2\"");
        let body = format!("{}version=1 and more", "x".repeat(400));
        let got = expectations(
            &c,
            &Placeholders::default(),
            200,
            &headers(&[]),
            &body,
            Duration::ZERO,
        );
        assert!(got[0].got.starts_with("\"version=1"), "{:?}", got[0].got);
    }

    #[test]
    fn json_numbers_match_their_text() {
        assert!(json_matches(Some(&Value::from(2)), &Value::from("2")));
        assert!(!json_matches(Some(&Value::from(3)), &Value::from("2")));
        assert!(!json_matches(None, &Value::from("2")));
    }

    #[test]
    fn excerpt_respects_char_boundaries() {
        let body = "é".repeat(300);
        let e = excerpt(&body, 1);
        assert!(e.len() <= EXCERPT_BYTES && e.starts_with('é'));
    }
}
