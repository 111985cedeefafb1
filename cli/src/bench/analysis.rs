//! The analysis engine's cost per evaluation, against the CloudWatch stand-in.

use std::time::{Duration, Instant};

use greenlight_standins::http::serve;

use super::report::AnalysisBench;

/// A 5-minute window of 1-minute intervals, 3 metrics (error rate, p99 latency, a
/// custom metric), with 5 minutes of blue baseline before it, served by the CloudWatch
/// stand-in; evaluated as the hook evaluates it once the window has settled.
pub async fn bench_analysis() -> Result<AnalysisBench, String> {
    use greenlight::analysis::{self, AnalysisConfig, LatencyStat, Measure, MetricRule};
    use greenlight::gate::Targets;
    let cloudwatch = greenlight_standins::cloudwatch::CloudWatchStandIn::new();
    let addr = serve(cloudwatch.handler())
        .await
        .map_err(|e| e.to_string())?;
    let rule = |name: &str, measure: Measure, max: f64| MetricRule {
        name: name.into(),
        measure,
        max: Some(max),
        max_over_blue: None,
        max_ratio_to_blue: None,
    };
    let config = AnalysisConfig {
        window: Duration::from_secs(300),
        interval: Duration::from_secs(60),
        min_requests: 100,
        failure_limit: 0,
        on_inconclusive: analysis::OnInconclusive::Fail,
        dry_run: false,
        metrics: vec![
            rule("error_rate", Measure::ErrorRate, 1.0),
            rule("latency_p99", Measure::Latency(LatencyStat::P99), 800.0),
            rule(
                "checkout-errors",
                Measure::Custom {
                    namespace: "Shop".into(),
                    metric_name: "CheckoutErrors".into(),
                    dimensions: [("Service".to_string(), "web".to_string())].into(),
                    stat: "Sum".into(),
                },
                5.0,
            ),
        ],
        settle: Duration::from_secs(120),
    };
    let targets = Targets {
        load_balancer: "app/web/1".into(),
        green_target_group: "targetgroup/web-green/2".into(),
        blue_target_group: "targetgroup/web-blue/1".into(),
    };
    let now_s = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64)
        / 60
        * 60;
    let from_s = now_s - 8 * 60;
    // 200 requests a minute on each side: requests, latencies, a few 5xx on blue.
    for minute in -5..5i64 {
        let start = (from_s + minute * 60) as f64;
        for (tg, side) in [
            (&targets.green_target_group, minute >= 0),
            (&targets.blue_target_group, true),
        ] {
            if !side {
                continue;
            }
            let dims = [("TargetGroup", tg.as_str()), ("LoadBalancer", "app/web/1")];
            for i in 0..200 {
                let at = start + f64::from(i) * 0.29;
                cloudwatch.observe("AWS/ApplicationELB", "RequestCount", &dims, at, 1.0);
                cloudwatch.observe(
                    "AWS/ApplicationELB",
                    "TargetResponseTime",
                    &dims,
                    at,
                    0.02 + f64::from(i % 7) * 0.01,
                );
            }
        }
    }
    let sdk = crate::local::emulator_config(&format!("http://{addr}")).await;
    let metrics = greenlight::aws::cloudwatch::Metrics::from_conf(&sdk);
    let (from_ms, now_ms) = (from_s * 1000, now_s * 1000);
    // Warm the client (connection, first-use construction), then measure.
    gate_evaluate(&metrics, &config, &targets, from_ms, now_ms).await?;
    let calls_before = cloudwatch.calls();
    let evaluations = 20;
    let started = Instant::now();
    let mut result = None;
    for _ in 0..evaluations {
        result = gate_evaluate(&metrics, &config, &targets, from_ms, now_ms).await?;
    }
    let evaluation_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(evaluations);
    let calls = (cloudwatch.calls() - calls_before) as f64 / f64::from(evaluations);
    let result = result.ok_or("nothing to judge: the window did not settle")?;
    let periods = metrics
        .target_group_samples(
            &targets.load_balancer,
            &targets.green_target_group,
            &targets.blue_target_group,
            &config.metrics,
            from_s - 300,
            from_s + 300,
            60,
        )
        .await
        .map_err(|e| e.to_string())?;
    let starts = analysis::intervals_to_judge(&config, from_ms, now_ms);
    let rounds = 2000;
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(analysis::judge_window(
            &config,
            std::hint::black_box(&periods),
            from_ms,
            &starts,
            &[],
        ));
    }
    let engine_ms_per_interval =
        started.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds) / starts.len().max(1) as f64;
    Ok(AnalysisBench {
        window_intervals: result.intervals.len(),
        metrics: config.metrics.len(),
        get_metric_data_calls_per_evaluation: calls,
        engine_ms_per_interval,
        evaluation_ms,
        verdict: format!("{:?}", result.verdict),
    })
}

async fn gate_evaluate(
    metrics: &greenlight::aws::cloudwatch::Metrics,
    config: &greenlight::analysis::AnalysisConfig,
    targets: &greenlight::gate::Targets,
    from_ms: i64,
    now_ms: i64,
) -> Result<Option<greenlight::analysis::RunResult>, String> {
    greenlight::gate::evaluate(metrics, config, targets, from_ms, now_ms, &[])
        .await
        .map_err(|e| e.to_string())
}

pub fn print_analysis(a: &AnalysisBench) {
    println!(
        "analysis: {} intervals x {} metrics judged {}; {:.1} GetMetricData call(s) per evaluation; engine {:.4} ms per interval; whole evaluation {:.2} ms",
        a.window_intervals, a.metrics, a.verdict, a.get_metric_data_calls_per_evaluation, a.engine_ms_per_interval, a.evaluation_ms
    );
}
