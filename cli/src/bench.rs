//! `greenlight bench`: cold start, memory, package size and hook overhead of each
//! function's release build, next to a bare lambda_runtime function (the Rust floor)
//! built with the same profile; and the smoke engine's throughput.
//!
//! Each run starts a fresh process under the local Runtime API host and measures:
//! - init: process start → first `GET /runtime/invocation/next`;
//! - first: the first invocation, end to end through the Runtime API, against the local
//!   stack (moto for SNS/ECS/ECR, the CodeDeploy stand-in for CodeDeploy);
//! - warm: the next invocations (median of them);
//! - peak RSS: `VmHWM` of the process after those invocations.
//!
//! The events: deploy-on-push gets a push of a new image (full path: task definition
//! read and registered, deployment created, notification); the hook a deployment waiting
//! at AfterAllowTestTraffic with a smoke target answering at once (invoke → status
//! reported); alarm-rollback an alarm that guards three deployment groups (lookups for
//! all three, nothing in flight).
//!
//! Medians over `--runs` runs, with min and max. Package sizes are the zips that
//! `cargo lambda build --release --arm64 --output-format zip` wrote, when present.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use greenlight_standins::codedeploy::{CodeDeployStandIn, NoTraffic, Timing};
use greenlight_standins::http::{response, serve};
use greenlight_standins::runtime::FunctionHost;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Where the release binaries are (the functions and bench-hello).
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// Where `cargo lambda build --release --arm64 --output-format zip` wrote the zips.
    #[arg(long, default_value = "target/lambda")]
    pub zip_dir: PathBuf,
    /// The moto server executable.
    #[arg(long, default_value = ".venv/bin/moto_server")]
    pub moto: PathBuf,
    /// Cold starts per function.
    #[arg(long, default_value_t = 11)]
    pub runs: usize,
    /// Warm invocations after each cold start.
    #[arg(long, default_value_t = 5)]
    pub warm: usize,
    /// The JSON results file.
    #[arg(long, default_value = "bench-results/bench.json")]
    pub out: PathBuf,
    /// Extra environment for the functions, KEY=VALUE (repeatable), e.g. SSL_CERT_FILE=...
    #[arg(long = "env", value_parser = crate::parse_key_value)]
    pub env: Vec<(String, String)>,
    /// Instead: the scale benchmark (AWS calls and handler time per alarm and per push
    /// in accounts of --sizes CodeDeploy applications).
    #[arg(long)]
    pub scale: bool,
    /// Instead: only the analysis benchmark (GetMetricData calls and engine time per
    /// interval for a 5-minute window of 3 metrics; needs no function builds).
    #[arg(long, conflicts_with = "scale")]
    pub analysis: bool,
    /// Account sizes for --scale, in CodeDeploy applications (3 groups each).
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    pub sizes: Vec<usize>,
    /// Past deployments in each configured group, for --scale.
    #[arg(long, default_value_t = 300)]
    pub history: usize,
    /// Latency of every AWS call, for --scale.
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

fn stat(mut values: Vec<f64>) -> Stat {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return Stat {
            median: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
        };
    }
    Stat {
        median: values[values.len() / 2],
        min: values[0],
        max: values[values.len() - 1],
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FunctionResult {
    pub function: String,
    pub init_ms: Stat,
    pub first_ms: Stat,
    pub cold_total_ms: Stat,
    pub warm_ms: Stat,
    pub peak_rss_mb: Stat,
    pub zip_bytes: Option<u64>,
    pub binary_bytes: Option<u64>,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SmokeBench {
    pub checks: usize,
    pub concurrency: usize,
    pub seconds: f64,
    pub checks_per_second: f64,
    pub mean_check_ms: f64,
    pub server_mean_ms: f64,
    pub overhead_per_check_ms: f64,
    pub passed: usize,
}

#[derive(Debug, Serialize)]
pub struct AnalysisBench {
    pub window_intervals: usize,
    pub metrics: usize,
    /// GetMetricData calls per evaluation (one evaluation per interval during a deployment).
    pub get_metric_data_calls_per_evaluation: f64,
    /// The pure engine's time per interval judged (judge_window over a fetched window).
    pub engine_ms_per_interval: f64,
    /// One whole evaluation: the GetMetricData round trip to a local stand-in + judging.
    pub evaluation_ms: f64,
    pub verdict: String,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub runs: usize,
    pub functions: Vec<FunctionResult>,
    pub smoke: SmokeBench,
    pub analysis: AnalysisBench,
}

/// The local stack the functions run against.
struct Stack {
    env: Vec<(String, String)>,
    codedeploy: CodeDeployStandIn,
    codedeploy_url: String,
    hook_payloads: Arc<Mutex<Vec<Value>>>,
    _moto: tokio::process::Child,
}

async fn rpc(url: &str, operation: &str, input: Value) -> Result<Value, String> {
    let client = reqwest::Client::new();
    let response = client
        .post(url)
        .header("x-amz-target", format!("CodeDeploy_20141006.{operation}"))
        .header("content-type", "application/x-amz-json-1.1")
        .body(input.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{operation}: {status} {body}"));
    }
    serde_json::from_str(&body).map_err(|e| e.to_string())
}

impl Stack {
    async fn start(moto_binary: &Path, smoke_url: &str) -> Result<Stack, String> {
        let (moto, moto_endpoint) = crate::rehearse::start_moto(moto_binary).await?;
        let topic = seed_moto(&moto_endpoint).await?;
        let hook_payloads: Arc<Mutex<Vec<Value>>> = Arc::default();
        let recorder = hook_payloads.clone();
        let codedeploy = CodeDeployStandIn::new(
            Arc::new(NoTraffic),
            Arc::new(move |_function: String, payload: Value| {
                recorder.lock().unwrap().push(payload);
                Box::pin(async {})
            }),
            Arc::new(|_event: Value| {}),
            Arc::new(|_line: String| {}),
            None,
            Timing {
                hook_timeout: Duration::from_secs(600),
                ..Timing::default()
            },
        );
        let addr = serve(codedeploy.handler())
            .await
            .map_err(|e| e.to_string())?;
        let codedeploy_url = format!("http://{addr}");
        rpc(
            &codedeploy_url,
            "CreateApplication",
            json!({"applicationName": "web-app", "computePlatform": "ECS"}),
        )
        .await?;
        rpc(
            &codedeploy_url,
            "CreateDeploymentGroup",
            json!({"applicationName": "web-app", "deploymentGroupName": "web-dg", "serviceRoleArn": "arn:aws:iam::123456789012:role/cd",
                   "deploymentConfigName": "CodeDeployDefault.ECSAllAtOnce", "ecsServices": [{"serviceName": "web", "clusterName": "prod"}]}),
        )
        .await?;
        // Two more groups guarded by the same alarm: alarm-rollback looks up three groups.
        for group in ["api-dg", "worker-dg"] {
            rpc(
                &codedeploy_url,
                "CreateDeploymentGroup",
                json!({"applicationName": "web-app", "deploymentGroupName": group, "serviceRoleArn": "arn:aws:iam::123456789012:role/cd"}),
            )
            .await?;
        }
        let config = format!(
            r#"services:
  - name: web
    repository: web-app
    tags: ["v*"]
    cluster: prod
    service: web
    container: web
    codedeploy: {{ application: web-app, deployment_group: web-dg, hooks: [] }}
    alarms: [web-5xx]
    smoke:
      base_url: {smoke_url}
      production_url: {smoke_url}
      checks:
        - {{ name: health, path: /health, expect_status: 200, body_contains: ok }}
  - {{ name: api, repository: api, cluster: prod, service: api, container: api,
      codedeploy: {{ application: web-app, deployment_group: api-dg }}, alarms: [web-5xx] }}
  - {{ name: worker, repository: worker, cluster: prod, service: worker, container: worker,
      codedeploy: {{ application: web-app, deployment_group: worker-dg }}, alarms: [web-5xx] }}
"#
        );
        let env = vec![
            ("GREENLIGHT_CONFIG".into(), config),
            (
                "GREENLIGHT_HOOK_FUNCTION".into(),
                "CodeDeployHook_greenlight-{event}".into(),
            ),
            ("GREENLIGHT_TOPIC_ARN".into(), topic),
            ("GREENLIGHT_HOOK".into(), "AfterAllowTestTraffic".into()),
            ("AWS_ENDPOINT_URL".into(), moto_endpoint),
            ("AWS_ENDPOINT_URL_CODEDEPLOY".into(), codedeploy_url.clone()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()),
        ];
        Ok(Stack {
            env,
            codedeploy,
            codedeploy_url,
            hook_payloads,
            _moto: moto,
        })
    }

    /// A fresh hook payload: a deployment waiting at AfterAllowTestTraffic.
    async fn hook_payload(&self) -> Result<Value, String> {
        let before = self.hook_payloads.lock().unwrap().len();
        let appspec = json!({"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {
            "TaskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1", "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 8080}}}}],
            "Hooks": [{"AfterAllowTestTraffic": "CodeDeployHook_greenlight-AfterAllowTestTraffic"}]});
        rpc(
            &self.codedeploy_url,
            "CreateDeployment",
            json!({"applicationName": "web-app", "deploymentGroupName": "web-dg",
                   "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec.to_string()}}}),
        )
        .await?;
        for _ in 0..500 {
            if let Some(payload) = self.hook_payloads.lock().unwrap().get(before).cloned() {
                return Ok(payload);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Err("the stand-in never invoked the hook".into())
    }

    /// Waits until no deployment is in flight (so the next CreateDeployment is accepted).
    async fn idle(&self) {
        for _ in 0..1000 {
            let busy = self.codedeploy.deployment_ids().iter().any(|id| {
                !matches!(
                    self.codedeploy.status(id).as_deref(),
                    Some("Succeeded" | "Failed" | "Stopped")
                )
            });
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The ECS service deploy-on-push re-registers, and the topic every function publishes to.
/// One call per service first, so the emulator's lazy start-up is not measured.
async fn seed_moto(endpoint: &str) -> Result<String, String> {
    let sdk = crate::local::emulator_config(endpoint).await;
    crate::local::seed_service(
        &sdk,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app:v0",
    )
    .await?;
    crate::local::topic(&sdk, "greenlight").await
}

/// A push of a new image each time, so deploy-on-push takes its full path: read the
/// task definition, register the pinned revision, create the deployment, notify.
fn push_event() -> Value {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    json!({"version": "0", "id": format!("bench-{n}"), "detail-type": "ECR Image Action", "source": "aws.ecr", "account": "123456789012",
        "time": greenlight_standins::rfc3339_now(), "region": "us-east-1", "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": "web-app", "image-digest": format!("sha256:{n:064x}"), "action-type": "PUSH", "image-tag": format!("v1.0.{n}")}})
}

fn alarm_event() -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../events/alarm-eventbridge.json"))
            .unwrap_or_default();
    event["detail"]["alarmName"] = "web-5xx".into();
    event
}

fn peak_rss_mb(pid: Option<u32>) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

async fn bench_function(
    stack: &Stack,
    name: &str,
    binary: &Path,
    runs: usize,
    warm: usize,
) -> FunctionResult {
    let mut result = FunctionResult {
        function: name.to_string(),
        init_ms: stat(vec![]),
        first_ms: stat(vec![]),
        cold_total_ms: stat(vec![]),
        warm_ms: stat(vec![]),
        peak_rss_mb: stat(vec![]),
        zip_bytes: None,
        binary_bytes: std::fs::metadata(binary).ok().map(|m| m.len()),
        errors: Vec::new(),
    };
    let (mut init, mut first, mut cold, mut warm_all, mut rss) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        stack.idle().await;
        let host = match FunctionHost::start(
            name,
            binary,
            &stack.env,
            Duration::from_secs(30),
            None,
        )
        .await
        {
            Ok(h) => h,
            Err(e) => {
                result.errors.push(e.to_string());
                continue;
            }
        };
        let Some(init_time) = host.wait_ready(Duration::from_secs(10)).await else {
            result.errors.push("did not finish init".into());
            host.stop().await;
            continue;
        };
        let invoke_once = async || -> Result<f64, String> {
            let event = match name {
                "deploy-on-push" => {
                    stack.idle().await;
                    push_event()
                }
                "alarm-rollback" => alarm_event(),
                "lifecycle-hook" => {
                    stack.idle().await;
                    stack.hook_payload().await?
                }
                _ => json!({}),
            };
            let started = Instant::now();
            host.invoke(event).await.map_err(|e| e.to_string())?;
            Ok(started.elapsed().as_secs_f64() * 1000.0)
        };
        match invoke_once().await {
            Ok(ms) => {
                init.push(init_time.as_secs_f64() * 1000.0);
                first.push(ms);
                cold.push(init_time.as_secs_f64() * 1000.0 + ms);
            }
            Err(e) => result.errors.push(format!("first invocation: {e}")),
        }
        let mut warm_runs = Vec::new();
        for _ in 0..warm {
            match invoke_once().await {
                Ok(ms) => warm_runs.push(ms),
                Err(e) => result.errors.push(format!("warm invocation: {e}")),
            }
        }
        if !warm_runs.is_empty() {
            warm_all.push(stat(warm_runs).median);
        }
        if let Some(mb) = peak_rss_mb(host.pid()) {
            rss.push(mb);
        }
        host.stop().await;
    }
    result.init_ms = stat(init);
    result.first_ms = stat(first);
    result.cold_total_ms = stat(cold);
    result.warm_ms = stat(warm_all);
    result.peak_rss_mb = stat(rss);
    result.errors.dedup();
    result
}

/// 1,000 checks at concurrency 50 against an instant local server.
async fn bench_smoke() -> Result<SmokeBench, String> {
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

pub async fn run(options: Options) -> Result<BenchReport, String> {
    let smoke_target = serve(Arc::new(|request: greenlight_standins::http::Request| {
        Box::pin(async move {
            if request.path.starts_with("/health") {
                response(200, "text/plain", "ok")
            } else {
                response(404, "text/plain", "")
            }
        })
    }))
    .await
    .map_err(|e| e.to_string())?;
    let mut stack = Stack::start(&options.moto, &format!("http://{smoke_target}")).await?;
    stack.env.extend(options.env.iter().cloned());
    let mut functions = Vec::new();
    for name in [
        "bench-hello",
        "deploy-on-push",
        "lifecycle-hook",
        "alarm-rollback",
    ] {
        let binary = options.bin_dir.join(name);
        if !binary.exists() {
            return Err(format!(
                "{} not found: build release binaries first (scripts/bench does)",
                binary.display()
            ));
        }
        eprintln!("benchmarking {name} ({} runs)...", options.runs);
        let mut result = bench_function(&stack, name, &binary, options.runs, options.warm).await;
        result.zip_bytes = std::fs::metadata(options.zip_dir.join(name).join("bootstrap.zip"))
            .ok()
            .map(|m| m.len());
        functions.push(result);
    }
    eprintln!("benchmarking the smoke engine...");
    let smoke = bench_smoke().await?;
    eprintln!("benchmarking the analysis...");
    let analysis = bench_analysis().await?;
    let report = BenchReport {
        runs: options.runs,
        functions,
        smoke,
        analysis,
    };
    if let Some(parent) = options.out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(
        &options.out,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .map_err(|e| format!("{}: {e}", options.out.display()))?;
    Ok(report)
}

pub fn print(report: &BenchReport) {
    let floor = &report.functions[0];
    let ratio = |v: f64, base: f64| {
        if base > 0.0 {
            format!("{:.1}x", v / base)
        } else {
            "-".into()
        }
    };
    println!(
        "{:<16} {:>22} {:>10} {:>22} {:>10} {:>12} {:>22} {:>10} {:>10}",
        "function",
        "init ms med (min-max)",
        "x floor",
        "first ms med (min-max)",
        "cold ms",
        "warm ms",
        "peak RSS MB (min-max)",
        "zip MB",
        "x floor"
    );
    for f in &report.functions {
        println!(
            "{:<16} {:>22} {:>10} {:>22} {:>10.2} {:>12.2} {:>22} {:>10} {:>10}",
            f.function,
            format!(
                "{:.2} ({:.2}-{:.2})",
                f.init_ms.median, f.init_ms.min, f.init_ms.max
            ),
            ratio(f.init_ms.median, floor.init_ms.median),
            format!(
                "{:.2} ({:.2}-{:.2})",
                f.first_ms.median, f.first_ms.min, f.first_ms.max
            ),
            f.cold_total_ms.median,
            f.warm_ms.median,
            format!(
                "{:.1} ({:.1}-{:.1})",
                f.peak_rss_mb.median, f.peak_rss_mb.min, f.peak_rss_mb.max
            ),
            f.zip_bytes
                .map_or("-".into(), |b| format!("{:.2}", b as f64 / 1_048_576.0)),
            match (f.zip_bytes, floor.zip_bytes) {
                (Some(a), Some(b)) => ratio(a as f64, b as f64),
                _ => "-".into(),
            },
        );
        for e in &f.errors {
            println!("    error: {e}");
        }
    }
    let s = &report.smoke;
    println!(
        "smoke engine: {} checks at concurrency {} in {:.3} s = {:.0} checks/s; mean check latency {:.2} ms, server {:.3} ms, overhead {:.3} ms per check; {} passed",
        s.checks, s.concurrency, s.seconds, s.checks_per_second, s.mean_check_ms, s.server_mean_ms, s.overhead_per_check_ms, s.passed
    );
    print_analysis(&report.analysis);
}

pub fn print_analysis(a: &AnalysisBench) {
    println!(
        "analysis: {} intervals x {} metrics judged {}; {:.1} GetMetricData call(s) per evaluation; engine {:.4} ms per interval; whole evaluation {:.2} ms",
        a.window_intervals, a.metrics, a.verdict, a.get_metric_data_calls_per_evaluation, a.engine_ms_per_interval, a.evaluation_ms
    );
}
