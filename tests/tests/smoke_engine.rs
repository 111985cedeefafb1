//! The smoke-test engine against real HTTP servers on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use greenlight::config::CheckSpec;
use greenlight::smoke::{self, Placeholders, RunOptions, SmokeReport};
use greenlight::Config;
use greenlight_tests::free_port;
use greenlight_tests::http::{Reply, TestServer};
use tokio::time::Instant;

/// Checks from a YAML list, through the real config parser.
fn checks(yaml_list: &str) -> Vec<CheckSpec> {
    let doc = format!(
        "services:\n  - name: s\n    repository: r\n    cluster: c\n    service: s\n    container: x\n    codedeploy: {{ application: a, deployment_group: g }}\n    smoke:\n      checks: {yaml_list}\n"
    );
    Config::parse(&doc)
        .expect("valid checks")
        .services
        .remove(0)
        .smoke
        .checks
}

async fn run_with(
    url: &str,
    checks: &[CheckSpec],
    placeholders: Placeholders,
    deadline: Duration,
) -> SmokeReport {
    let client = smoke::http_client().unwrap();
    let options = RunOptions {
        warmup: Duration::ZERO,
        deadline: Instant::now() + deadline,
        concurrency: 4,
    };
    smoke::run(&client, url, checks, &placeholders, &options).await
}

async fn run(url: &str, checks: &[CheckSpec]) -> SmokeReport {
    run_with(
        url,
        checks,
        Placeholders::default(),
        Duration::from_secs(20),
    )
    .await
}

#[tokio::test]
async fn healthy_target_passes_every_check() {
    let server = TestServer::start(|r| match r.path.as_str() {
        "/health" => Reply::new(200, "ok"),
        "/version" => {
            Reply::new(200, r#"{"version":"v2","build":{"sha":"abc"}}"#).header("x-version", "v2")
        }
        _ => Reply::new(404, "not found"),
    })
    .await;
    let checks = checks(
        r#"[ { name: health, path: /health, expect_status: 200, body_contains: ok },
             { name: version, path: /version, json_equals: { /version: v2, /build/sha: abc }, header_equals: { x-version: v2 } } ]"#,
    );
    let report = run(&server.url(), &checks).await;
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.passed_count(), 2);
    assert!(report.checks.iter().all(|c| c.attempts.len() == 1));
}

#[tokio::test]
async fn wrong_status_fails_with_expected_and_got() {
    let server = TestServer::start(|_| Reply::new(503, "down")).await;
    let checks = checks(
        "[ { name: health, path: /health, expect_status: 200, attempts: 2, backoff_ms: 10 } ]",
    );
    let report = run(&server.url(), &checks).await;
    assert!(!report.passed);
    let check = &report.checks[0];
    assert_eq!(check.attempts.len(), 2, "retried up to attempts");
    let mismatch = &check.attempts[1].mismatches[0];
    assert_eq!(
        (
            mismatch.expectation.as_str(),
            mismatch.expected.as_str(),
            mismatch.got.as_str()
        ),
        ("status", "200", "503")
    );
    assert_eq!(server.requests(), 2);
    assert!(
        report.failure_summary()[0].contains("status: expected 200, got 503"),
        "{:?}",
        report.failure_summary()
    );
}

#[tokio::test]
async fn wrong_body_shows_the_first_mismatching_bytes() {
    let server = TestServer::start(|_| Reply::new(200, "status: degraded")).await;
    let checks =
        checks("[ { name: health, path: /health, body_contains: 'status: ok', attempts: 1 } ]");
    let report = run(&server.url(), &checks).await;
    let attempt = &report.checks[0].attempts[0];
    assert!(!report.passed);
    assert_eq!(attempt.status, Some(200));
    assert_eq!(attempt.mismatches[0].expectation, "body contains");
    assert_eq!(attempt.mismatches[0].got, "\"status: degraded\"");
    assert_eq!(attempt.body_excerpt.as_deref(), Some("status: degraded"));
}

#[tokio::test]
async fn a_body_is_read_up_to_its_cap_and_a_failure_says_it_was_cut() {
    // The needle sits just past the cap: found, the cap would not hold.
    let long = format!("{}status: ok", "x".repeat(smoke::MAX_BODY_BYTES));
    let server = TestServer::start(move |r| match r.path.as_str() {
        "/long" => Reply::new(200, long.clone()),
        _ => Reply::new(200, "status: ok"),
    })
    .await;
    let checks = checks(
        "[ { name: long, path: /long, body_contains: 'status: ok', attempts: 1 },
           { name: short, path: /short, body_contains: 'status: ok', attempts: 1 } ]",
    );
    let report = run(&server.url(), &checks).await;
    let long = &report.checks[0].attempts[0];
    assert_eq!(long.status, Some(200));
    let said: Vec<&str> = long
        .mismatches
        .iter()
        .map(|m| m.expectation.as_str())
        .collect();
    assert_eq!(
        said,
        ["body contains", "body read"],
        "{:?}",
        long.mismatches
    );
    assert!(long.mismatches[1].got.contains("cut at 1048576 bytes"));
    assert!(report.checks[1].passed, "{:?}", report.checks[1]);
}

#[tokio::test]
async fn slow_answers_break_the_latency_budget() {
    let server =
        TestServer::start(|_| Reply::new(200, "ok").delayed(Duration::from_millis(150))).await;
    let checks = checks("[ { name: fast, path: /, max_latency_ms: 50, attempts: 1 } ]");
    let report = run(&server.url(), &checks).await;
    let mismatch = &report.checks[0].attempts[0].mismatches[0];
    assert!(!report.passed);
    assert_eq!(mismatch.expectation, "latency");
    assert_eq!(mismatch.expected, "<= 50 ms");
    assert!(report.checks[0].attempts[0].latency_ms >= 150);
}

#[tokio::test]
async fn a_hanging_target_times_out_per_attempt() {
    let server = TestServer::start(|_| Reply::hang()).await;
    let checks =
        checks("[ { name: hang, path: /, timeout_ms: 200, attempts: 2, backoff_ms: 10 } ]");
    let started = Instant::now();
    let report = run(&server.url(), &checks).await;
    assert!(!report.passed);
    let attempts = &report.checks[0].attempts;
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].error.as_deref(), Some("timed out after 200 ms"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "timeouts bound the run"
    );
}

#[tokio::test]
async fn a_flaky_target_passes_after_retries() {
    let server = TestServer::start(|r| {
        if r.index < 2 {
            Reply::new(502, "warming up")
        } else {
            Reply::new(200, "ok")
        }
    })
    .await;
    let checks = checks("[ { name: health, path: /health, attempts: 5, backoff_ms: 20 } ]");
    let report = run(&server.url(), &checks).await;
    assert!(report.passed, "{report:#?}");
    let attempts = &report.checks[0].attempts;
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0].status, Some(502));
    assert_eq!(attempts[2].status, Some(200));
}

#[tokio::test]
async fn connection_refused_is_reported_not_panicked() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let checks = checks("[ { name: health, path: /health, attempts: 2, backoff_ms: 10 } ]");
    let report = run(&url, &checks).await;
    assert!(!report.passed);
    let error = report.checks[0].attempts[0].error.clone().unwrap();
    assert!(error.starts_with("cannot connect"), "{error}");
    assert_eq!(report.checks[0].attempts[0].status, None);
}

#[tokio::test]
async fn placeholders_prove_the_new_version_answered() {
    let server = TestServer::start(|r| {
        let tag = r
            .headers
            .iter()
            .find(|(k, _)| k == "x-expect-tag")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        Reply::new(
            200,
            format!(
                r#"{{"version":"v2.0.1","echo":"{tag}","path":"{}"}}"#,
                r.path
            ),
        )
    })
    .await;
    let checks = checks(
        r#"[ { name: version, path: "/version?d=${deployment_id}", headers: { x-expect-tag: "${image_tag}" },
               json_equals: { /version: "${image_tag}", /echo: "${image_tag}", /path: "/version?d=${deployment_id}" } } ]"#,
    );
    let new = Placeholders {
        image_tag: Some("v2.0.1".into()),
        image_digest: None,
        deployment_id: Some("d-XYZ".into()),
        ..Default::default()
    };
    let report = run_with(&server.url(), &checks, new, Duration::from_secs(10)).await;
    assert!(report.passed, "{report:#?}");
    assert_eq!(
        report.checks[0].url,
        format!("{}/version?d=d-XYZ", server.url())
    );

    let old = Placeholders {
        image_tag: Some("v2.0.2".into()),
        ..Placeholders::default()
    };
    let checks_once: Vec<_> = checks
        .into_iter()
        .map(|c| CheckSpec { attempts: 1, ..c })
        .collect();
    let report = run_with(&server.url(), &checks_once, old, Duration::from_secs(10)).await;
    assert!(!report.passed);
    let mismatch = &report.checks[0].attempts[0].mismatches[0];
    assert_eq!(
        (mismatch.expected.as_str(), mismatch.got.as_str()),
        ("\"v2.0.2\"", "\"v2.0.1\"")
    );
}

#[tokio::test]
async fn the_overall_deadline_cuts_retries_short() {
    let server = TestServer::start(|_| Reply::new(500, "no")).await;
    let checks = checks("[ { name: health, path: /, attempts: 50, backoff_ms: 100 } ]");
    let started = Instant::now();
    let report = run_with(
        &server.url(),
        &checks,
        Placeholders::default(),
        Duration::from_millis(600),
    )
    .await;
    assert!(!report.passed && report.deadline_reached);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
    assert!(report.checks[0].attempts.len() < 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded() {
    // Each answer takes 60 ms; from the arrival times, count how many were in flight at once.
    let arrivals = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let server = TestServer::start(move |_| {
        seen.lock().unwrap().push(std::time::Instant::now());
        Reply::new(200, "ok").delayed(Duration::from_millis(60))
    })
    .await;
    let list: Vec<String> = (0..12)
        .map(|i| format!("{{ name: c{i}, path: /{i} }}"))
        .collect();
    let checks = checks(&format!("[ {} ]", list.join(", ")));
    let client = smoke::http_client().unwrap();
    let options = RunOptions {
        warmup: Duration::ZERO,
        deadline: Instant::now() + Duration::from_secs(20),
        concurrency: 3,
    };
    let report = smoke::run(
        &client,
        &server.url(),
        &checks,
        &Placeholders::default(),
        &options,
    )
    .await;
    assert!(report.passed);
    let times = arrivals.lock().unwrap().clone();
    let overlap = |t: &std::time::Instant| {
        times
            .iter()
            .filter(|u| *u <= t && t.duration_since(**u) < Duration::from_millis(55))
            .count()
    };
    let peak = times.iter().map(overlap).max().unwrap();
    assert!(
        (2..=3).contains(&peak),
        "peak in flight {peak}, expected 2..=3"
    );
    let names: Vec<_> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names[..3], ["c0", "c1", "c2"], "report keeps config order");
}

#[tokio::test]
async fn the_hooks_clients_speak_plain_http_without_roots_and_build_https_on_demand() {
    let server = TestServer::start(|_| Reply::new(200, "ok")).await;
    let clients = smoke::HttpClients::new().unwrap();
    let plain = clients.for_url(&server.url()).unwrap();
    let report = smoke::run(
        plain,
        &server.url(),
        &checks("[ { name: h, path: / } ]"),
        &Placeholders::default(),
        &RunOptions {
            warmup: Duration::ZERO,
            deadline: Instant::now() + Duration::from_secs(10),
            concurrency: 1,
        },
    )
    .await;
    assert!(report.passed, "{report:#?}");
    let https = clients.for_url("https://example.internal:8443").unwrap();
    assert!(
        !std::ptr::eq(plain, https),
        "https targets get the client with trusted roots"
    );
    assert!(
        std::ptr::eq(https, clients.for_url("https://other.internal").unwrap()),
        "built once"
    );
}
