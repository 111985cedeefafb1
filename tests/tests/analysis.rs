//! `greenlight analyze` as a user runs it, against the CloudWatch stand-in through the
//! real SDK (rpc-v2-cbor): exit 0 pass, 1 fail, 2 inconclusive, 3 could not analyse.

use greenlight_standins::cloudwatch::CloudWatchStandIn;
use greenlight_standins::http::serve;
use greenlight_tests::{binaries, unique};

const GREEN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/2222";
const BLUE: &str = "targetgroup/web-blue/1111";
const LB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/9999";
const START: i64 = 1_795_000_020 / 60 * 60;

const CONFIG: &str = r#"
services:
  - name: web
    repository: web-app
    cluster: prod
    service: web
    container: web
    ecs_native: {}
    analysis:
      window_minutes: 3
      min_requests: 100
      metrics:
        - { metric: error_rate, max: 1, max_over_blue: 0.5 }
        - { metric: latency_p99, max: 800, max_ratio_to_blue: 1.5 }
"#;

/// Three minutes of traffic on both target groups; green answers in `green_p99_ms`.
fn seed(cw: &CloudWatchStandIn, green_requests: f64, green_p99_ms: f64) {
    let green = [
        ("TargetGroup", "targetgroup/web-green/2222"),
        ("LoadBalancer", "app/web/9999"),
    ];
    let blue = [("TargetGroup", BLUE), ("LoadBalancer", "app/web/9999")];
    for minute in -3..3 {
        let t = START + minute * 60;
        cw.put("AWS/ApplicationELB", "RequestCount", &blue, "Sum", t, 900.0);
        cw.put(
            "AWS/ApplicationELB",
            "HTTPCode_Target_5XX_Count",
            &blue,
            "Sum",
            t,
            1.0,
        );
        cw.put(
            "AWS/ApplicationELB",
            "TargetResponseTime",
            &blue,
            "p99",
            t,
            0.200,
        );
        if minute >= 0 {
            cw.put(
                "AWS/ApplicationELB",
                "RequestCount",
                &green,
                "Sum",
                t,
                green_requests,
            );
            // No 5xx datapoint for green: zero errors.
            cw.put(
                "AWS/ApplicationELB",
                "TargetResponseTime",
                &green,
                "p99",
                t,
                green_p99_ms / 1000.0,
            );
        }
    }
}

async fn analyze(cw: &CloudWatchStandIn, service: &str, extra: &[&str]) -> (i32, String) {
    let addr = serve(cw.handler()).await.unwrap();
    let config = std::env::temp_dir().join(format!("{}.yaml", unique("analysis")));
    std::fs::write(&config, CONFIG).unwrap();
    let binary = binaries().join("greenlight");
    let start = greenlight_standins::rfc3339(START as u64);
    let end = greenlight_standins::rfc3339(START as u64 + 180);
    let mut args: Vec<String> = vec![
        "analyze".into(),
        "--config".into(),
        config.to_string_lossy().into(),
        "--service".into(),
        service.into(),
        "--green-target-group".into(),
        GREEN.into(),
        "--blue-target-group".into(),
        BLUE.into(),
        "--load-balancer".into(),
        LB.into(),
        "--start".into(),
        start,
        "--end".into(),
        end,
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(binary)
            .args(&args)
            .env("AWS_ENDPOINT_URL_CLOUDWATCH", format!("http://{addr}"))
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test]
async fn a_green_like_blue_passes_with_exit_0() {
    let cw = CloudWatchStandIn::new();
    seed(&cw, 500.0, 210.0);
    let (code, out) = analyze(&cw, "web", &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verdict: Pass"), "{out}");
    assert_eq!(
        cw.calls(),
        1,
        "one GetMetricData for the whole window: {out}"
    );
}

#[tokio::test]
async fn a_green_ten_times_slower_fails_with_exit_1_and_says_why() {
    let cw = CloudWatchStandIn::new();
    seed(&cw, 500.0, 2000.0);
    let (code, out) = analyze(&cw, "web", &["--json"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("p99 2000 ms on green, above max 800 ms"),
        "{out}"
    );
    assert!(out.contains("\"stop\": true"), "{out}");
}

#[tokio::test]
async fn too_little_traffic_is_inconclusive_with_exit_2() {
    let cw = CloudWatchStandIn::new();
    seed(&cw, 20.0, 210.0);
    let (code, out) = analyze(&cw, "web", &[]).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("fewer than min_requests 100"), "{out}");
}

#[tokio::test]
async fn an_unknown_service_cannot_be_analysed_exit_3() {
    let cw = CloudWatchStandIn::new();
    let (code, out) = analyze(&cw, "nope", &[]).await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("no service named \"nope\""), "{out}");
}

/// The gate as the hook runs it: raw per-request observations (as the load balancer
/// reports them) aggregated by the stand-in, one GetMetricData call per evaluation,
/// only settled intervals judged, and a green 10x slower than blue failed.
#[tokio::test]
async fn the_gate_judges_settled_intervals_with_one_call_per_evaluation() {
    use greenlight::analysis::Verdict;
    use greenlight::gate::{evaluate, Targets};
    let cw = CloudWatchStandIn::new();
    let targets = Targets {
        load_balancer: "app/web/9999".into(),
        green_target_group: "targetgroup/web-green/2222".into(),
        blue_target_group: BLUE.into(),
    };
    for minute in -3..3i64 {
        for i in 0..150 {
            let at = (START + minute * 60) as f64 + f64::from(i) * 0.39;
            for (tg, seconds) in [(BLUE, 0.02), ("targetgroup/web-green/2222", 0.2)] {
                if tg != BLUE && minute < 0 {
                    continue;
                }
                let dims = [("TargetGroup", tg), ("LoadBalancer", "app/web/9999")];
                cw.observe("AWS/ApplicationELB", "RequestCount", &dims, at, 1.0);
                cw.observe(
                    "AWS/ApplicationELB",
                    "TargetResponseTime",
                    &dims,
                    at,
                    seconds,
                );
            }
        }
    }
    let addr = serve(cw.handler()).await.unwrap();
    let sdk = greenlight_tests::aws::sdk_config(&format!("http://{addr}")).await;
    let metrics = greenlight::aws::cloudwatch::Metrics::from_conf(&sdk);
    let config = greenlight::Config::parse(CONFIG).unwrap();
    let mut settings = config.services[0].analysis.clone().unwrap();
    settings.metrics.retain(|m| m.name == "latency_p99");
    settings.metrics[0].max = None;
    let from = START * 1000;
    // 1.5 minutes in, with 2 minutes to settle: nothing to judge yet, and no call.
    let none = evaluate(&metrics, &settings, &targets, from, from + 90_000, &[])
        .await
        .unwrap();
    assert!(none.is_none());
    assert_eq!(cw.calls(), 0);
    // 4 minutes in: the first two minutes have settled.
    let result = evaluate(&metrics, &settings, &targets, from, from + 240_000, &[])
        .await
        .unwrap()
        .expect("two settled intervals");
    assert_eq!(cw.calls(), 1, "one GetMetricData call for the evaluation");
    assert_eq!(result.intervals.len(), 2);
    assert_eq!(result.verdict, Verdict::Fail);
    let p99 = &result.intervals[0].metrics[0];
    assert_eq!(p99.green, Some(200.0));
    assert_eq!(p99.blue, Some(20.0));
    assert!(p99.reason.contains("10.0x"), "{}", p99.reason);
}
