//! The smoke engine's throughput: 1,000 checks against an instant local server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use greenlight_standins::http::{response, serve};

use super::report::SmokeBench;

/// 1,000 checks at concurrency 50 against an instant local server.
pub(super) async fn bench_smoke() -> Result<SmokeBench, String> {
    let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let server_nanos = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (count, nanos) = (served.clone(), server_nanos.clone());
    let addr = serve(Arc::new(move |_request| {
        let (count, nanos) = (count.clone(), nanos.clone());
        Box::pin(async move {
            let started = Instant::now();
            let r = response(200, "text/plain", "ok");
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            nanos.fetch_add(
                started.elapsed().as_nanos() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            r
        })
    }))
    .await
    .map_err(|e| e.to_string())?;
    let checks: Vec<String> = (0..1000).map(|i| format!("{{ name: c{i}, path: /health, expect_status: 200, body_contains: ok, attempts: 1 }}")).collect();
    let doc = format!(
        "services:\n  - name: s\n    repository: r\n    cluster: c\n    service: s\n    container: x\n    codedeploy: {{ application: a, deployment_group: g }}\n    smoke:\n      concurrency: 50\n      checks: [ {} ]\n",
        checks.join(", ")
    );
    let config = greenlight::Config::parse(&doc).map_err(|e| e.to_string())?;
    let smoke = &config.services[0].smoke;
    let client = greenlight::smoke::http_client().map_err(|e| e.to_string())?;
    let options = greenlight::smoke::RunOptions {
        warmup: Duration::ZERO,
        deadline: tokio::time::Instant::now() + Duration::from_secs(120),
        concurrency: smoke.concurrency,
    };
    let url = format!("http://{addr}");
    // One warm-up pass fills the connection pool, as a real smoke run's retries would.
    let _ = greenlight::smoke::run(
        &client,
        &url,
        &smoke.checks[..50],
        &Default::default(),
        &options,
    )
    .await;
    served.store(0, std::sync::atomic::Ordering::Relaxed);
    server_nanos.store(0, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let report =
        greenlight::smoke::run(&client, &url, &smoke.checks, &Default::default(), &options).await;
    let seconds = started.elapsed().as_secs_f64();
    let attempts: Vec<f64> = report
        .checks
        .iter()
        .flat_map(|c| c.attempts.iter().map(|a| a.latency_ms as f64))
        .collect();
    let mean_check_ms = attempts.iter().sum::<f64>() / attempts.len().max(1) as f64;
    let n = served.load(std::sync::atomic::Ordering::Relaxed).max(1) as f64;
    let server_mean_ms = server_nanos.load(std::sync::atomic::Ordering::Relaxed) as f64 / n / 1e6;
    Ok(SmokeBench {
        checks: report.checks.len(),
        concurrency: smoke.concurrency,
        seconds,
        checks_per_second: report.checks.len() as f64 / seconds,
        mean_check_ms,
        server_mean_ms,
        // With 50 in flight on 2 cores the latency is mostly queueing; per-check cost is
        // wall time per check (inverse throughput) minus the server's own time.
        overhead_per_check_ms: seconds * 1000.0 / report.checks.len().max(1) as f64
            - server_mean_ms,
        passed: report.passed_count(),
    })
}
