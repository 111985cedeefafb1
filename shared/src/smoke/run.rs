//! A run: checks at most `concurrency` at once, attempts with backoff, all within
//! the run's deadline.

use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use super::expect::{excerpt, expectations};
use super::placeholders::{secret_references, Placeholders};
use super::report::{Attempt, CheckReport, Mismatch, SmokeReport};
use crate::config::CheckSpec;

/// Run-wide settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub warmup: Duration,
    /// When the whole run must be over.
    pub deadline: Instant,
    pub concurrency: usize,
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
        let body = read_capped(response).await?;
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
        Ok((status, headers, (body, cut))) => {
            let body_text = String::from_utf8_lossy(&body);
            let mut mismatches =
                expectations(check, placeholders, status, &headers, &body_text, latency);
            if cut && !mismatches.is_empty() {
                mismatches.push(Mismatch {
                    expectation: "body read".into(),
                    expected: format!("at most {MAX_BODY_BYTES} bytes"),
                    got: format!(
                        "a longer body, cut at {MAX_BODY_BYTES} bytes: the expectations above saw only its start"
                    ),
                });
            }
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

/// The most of an answer's body a check reads (1 MiB). Expectations see this much;
/// every step after the read (search, JSON, excerpt) is then bounded, which matters
/// because the hook decides on one thread: a step that never yields would hold back
/// the deadline guard's timer. It also keeps a 256 MB function's memory safe from a
/// target that streams without end.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The body up to [`MAX_BODY_BYTES`], and whether there was more.
async fn read_capped(mut response: reqwest::Response) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY_BYTES - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
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
