//! `greenlight rehearse`: a whole blue/green deployment on this machine, real
//! function binaries end to end.
//!
//! What runs:
//! - the three functions' binaries, each under a local Lambda Runtime API host
//!   (two hook processes: AfterAllowTestTraffic and AfterAllowTraffic);
//! - the moto emulator for ECR, ECS, CloudWatch and SNS (an SQS queue subscribed to
//!   the topic collects every notification);
//! - on the CodeDeploy path, the CodeDeploy stand-in (real JSON 1.1 protocol) reached
//!   through `AWS_ENDPOINT_URL_CODEDEPLOY`; on the ECS-native path, the ECS stand-in
//!   (`AWS_ENDPOINT_URL_ECS`, passing other ECS calls to the emulator) running the
//!   service's own canary deployment and invoking one hook function with ECS's payload;
//!   minutes of a deployment configuration last one second here;
//! - a load balancer with production and test listeners in front of a sample app whose
//!   behaviour depends on the image tag (`-broken`: fails its health check;
//!   `-degrades`: passes smoke tests, answers production traffic with 500).
//!
//! The rehearsal plays EventBridge: an image it puts into ECR becomes the "ECR Image
//! Action" event; an alarm it sets to ALARM in CloudWatch becomes the "CloudWatch
//! Alarm State Change" event. moto's alarms never evaluate, so the rehearsal
//! evaluates the 5xx alarm itself from what the production listener served.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use greenlight_standins::cloudwatch::CloudWatchStandIn;
use greenlight_standins::codedeploy::{CodeDeployStandIn, Timing};
use greenlight_standins::ecs::EcsStandIn;
use greenlight_standins::lb::{Behavior, Color, LoadBalancer};
use greenlight_standins::runtime::FunctionHost;
use serde::Serialize;
use serde_json::{json, Value};

const REPOSITORY: &str = "web-app";
const ACCOUNT: &str = "123456789012";
const HOOK_PREFIX: &str = "CodeDeployHook_greenlight-";
const ALARM: &str = "web-5xx";
const ECS_HOOK: &str = "greenlight-hook-ecs";
/// The analysis window in the rehearsal (seconds, its compressed minutes).
const ANALYSIS_WINDOW_SECONDS: u64 = 5;

/// Which deployment path(s) to rehearse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathChoice {
    Codedeploy,
    EcsNative,
    Both,
}

/// One deployment path, as the stack runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeployPath {
    Codedeploy,
    EcsNative,
}

impl DeployPath {
    fn label(self) -> &'static str {
        match self {
            DeployPath::Codedeploy => "CodeDeploy",
            DeployPath::EcsNative => "ECS-native",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            DeployPath::Codedeploy => "codedeploy",
            DeployPath::EcsNative => "ecs-native",
        }
    }
}

/// The engine running deployments, read alike on both paths.
enum Engine {
    CodeDeploy(CodeDeployStandIn),
    Ecs(EcsStandIn),
}

impl Engine {
    /// Succeeded, Failed, Stopped, or the engine's in-flight status.
    fn status(&self, id: &str) -> Option<String> {
        match self {
            Engine::CodeDeploy(c) => c.status(id),
            Engine::Ecs(e) => e.outcome(id),
        }
    }

    fn deployment_ids(&self) -> Vec<String> {
        match self {
            Engine::CodeDeploy(c) => c.deployment_ids(),
            Engine::Ecs(e) => e.deployment_arns(),
        }
    }
}

/// Options of the subcommand.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Play only this scenario (1 healthy, 2 broken, 3 degrades under traffic, 4 burst of
    /// pushes, 5 approval at a PAUSE hook: ECS-native only, 6 slow under production
    /// traffic: the analysis rolls it back with no alarm).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=6))]
    pub scenario: Option<u8>,
    /// The deployment path(s) to rehearse.
    #[arg(long, value_enum, default_value = "both")]
    pub path: PathChoice,
    /// Print the report as JSON on stdout (the timeline goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Where the function binaries are.
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// The moto server executable.
    #[arg(long, default_value = ".venv/bin/moto_server")]
    pub moto: PathBuf,
    /// Where each function's logs are written.
    #[arg(long, default_value = "target/rehearsal")]
    pub log_dir: PathBuf,
    /// Also write one HTML report per scenario into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// One check of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub number: u8,
    pub path: DeployPath,
    pub name: String,
    pub passed: bool,
    pub seconds: f64,
    pub checks: Vec<Check>,
    pub figures: HashMap<String, f64>,
    /// The timeline lines of this scenario.
    pub timeline: Vec<String>,
    /// Production traffic on green, sampled: seconds since the scenario began.
    pub traffic: Vec<TrafficSample>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct TrafficSample {
    pub t: f64,
    pub green_percent: u8,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub passed: bool,
    pub seconds: f64,
    pub scenarios: Vec<ScenarioReport>,
    pub timeline: Vec<String>,
}

/// The timeline, printed as it happens.
#[derive(Clone)]
struct Timeline {
    started: Instant,
    lines: Arc<Mutex<Vec<String>>>,
    to_stderr: bool,
    spinner: bool,
}

impl Timeline {
    fn say(&self, line: impl AsRef<str>) {
        let line = format!(
            "[{:7.3}s] {}",
            self.started.elapsed().as_secs_f64(),
            line.as_ref()
        );
        if self.spinner {
            eprint!("\r\x1b[K");
        }
        if self.to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        self.lines.lock().unwrap().push(line);
    }

    fn progress(&self, what: &str) {
        if self.spinner {
            const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
            let frame = FRAMES[(self.started.elapsed().as_millis() / 150) as usize % 4];
            eprint!("\r\x1b[K{frame} {what}");
            let _ = std::io::stderr().flush();
        }
    }
}

/// Everything the scenarios act on.
struct Stack {
    timeline: Timeline,
    sdk: SdkConfig,
    lb: LoadBalancer,
    path: DeployPath,
    engine: Engine,
    /// Where the engine's stand-in listens.
    engine_endpoint: String,
    config: greenlight::Config,
    deploy_on_push: Arc<FunctionHost>,
    alarm_rollback: Arc<FunctionHost>,
    hosts: Vec<Arc<FunctionHost>>,
    behaviors: Arc<Mutex<HashMap<String, Behavior>>>,
    pending: Arc<AtomicUsize>,
    queue_url: String,
    notifications: Arc<Mutex<Vec<(String, String)>>>,
    _moto: tokio::process::Child,
    moto_endpoint: String,
    production_url: String,
    /// (seconds on the timeline, production percent on green), every 50 ms.
    traffic: Arc<Mutex<Vec<(f64, u8)>>>,
    /// `greenlight status`'s reader, aimed at this stack's engine and CloudWatch.
    status: crate::operate::StatusReader,
}

pub async fn run(options: Options) -> Result<Report, String> {
    let timeline = Timeline {
        started: Instant::now(),
        lines: Arc::new(Mutex::new(Vec::new())),
        to_stderr: options.json,
        spinner: std::io::stderr().is_terminal(),
    };
    let paths: &[DeployPath] = match options.path {
        PathChoice::Codedeploy => &[DeployPath::Codedeploy],
        PathChoice::EcsNative => &[DeployPath::EcsNative],
        PathChoice::Both => &[DeployPath::Codedeploy, DeployPath::EcsNative],
    };
    let mut scenarios = Vec::new();
    let wanted = |n: u8| options.scenario.is_none_or(|s| s == n);
    for &path in paths {
        timeline.say(format!("=== the {} path ===", path.label()));
        let stack = Stack::start(&options, timeline.clone(), path).await?;
        let sampler = stack.sample_production();
        if wanted(1) {
            scenarios.push(stack.scenario_healthy().await);
        }
        if wanted(2) {
            scenarios.push(stack.scenario_broken().await);
        }
        if wanted(3) {
            scenarios.push(stack.scenario_degrading().await);
        }
        if wanted(4) {
            scenarios.push(stack.scenario_burst().await);
        }
        if wanted(5) && path == DeployPath::EcsNative {
            scenarios.push(stack.scenario_approval().await);
        }
        if wanted(6) {
            scenarios.push(stack.scenario_slow().await);
        }
        sampler.abort();
        for host in &stack.hosts {
            host.stop().await;
        }
    }
    let passed = !scenarios.is_empty() && scenarios.iter().all(|s| s.passed);
    if let Some(dir) = &options.report {
        for s in &scenarios {
            let out = dir.join(format!("report-{}-{}.html", s.path.slug(), s.number));
            let section = serde_json::to_value(s).map_err(|e| e.to_string())?;
            crate::report::write(&out, &[section])?;
            timeline.say(format!("report: {}", out.display()));
        }
    }
    let lines = timeline.lines.lock().unwrap().clone();
    Ok(Report {
        passed,
        seconds: timeline.started.elapsed().as_secs_f64(),
        scenarios,
        timeline: lines,
    })
}

/// Prints the summary table.
pub fn print_summary(report: &Report) {
    println!();
    println!(
        "{:<3} {:<11} {:<64} {:<6} {:>8}  key figure",
        "#", "path", "scenario", "result", "seconds"
    );
    for s in &report.scenarios {
        let figure = s
            .figures
            .iter()
            .map(|(k, v)| format!("{k} {v:.2}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "{:<3} {:<11} {:<64} {:<6} {:>8.1}  {figure}",
            s.number,
            s.path.label(),
            s.name,
            if s.passed { "PASS" } else { "FAIL" },
            s.seconds
        );
        for c in s.checks.iter().filter(|c| !c.passed) {
            println!("      FAILED: {}: {}", c.what, c.detail);
        }
    }
    let passed = report.scenarios.iter().filter(|s| s.passed).count();
    let failed = report.scenarios.len() - passed;
    println!(
        "rehearsal: {passed} passed, {failed} failed ({:.1} s)",
        report.seconds
    );
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

pub(crate) async fn start_moto(binary: &Path) -> Result<(tokio::process::Child, String), String> {
    if !binary.exists() {
        return Err(format!(
            "{} not found: run scripts/bootstrap first",
            binary.display()
        ));
    }
    let port = free_port()?;
    let mut command = tokio::process::Command::new(binary);
    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start moto: {e}"))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok((child, endpoint));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("moto did not start within 30 s".into())
}

fn image_uri(digest: &str) -> String {
    format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}@{digest}")
}

fn behavior_for(tag: &str) -> Behavior {
    let version = tag.to_string();
    if tag.ends_with("-broken") {
        Behavior::Broken { version }
    } else if tag.ends_with("-degrades") {
        Behavior::Degrading { version }
    } else if tag.ends_with("-slow") {
        Behavior::Slow { version }
    } else {
        Behavior::Healthy { version }
    }
}

impl Stack {
    async fn start(
        options: &Options,
        timeline: Timeline,
        path: DeployPath,
    ) -> Result<Stack, String> {
        std::fs::create_dir_all(&options.log_dir)
            .map_err(|e| format!("{}: {e}", options.log_dir.display()))?;
        let (moto, moto_endpoint) = start_moto(&options.moto).await?;
        timeline.say(format!("moto emulator on {moto_endpoint}"));
        let sdk = crate::local::emulator_config(&moto_endpoint).await;

        // ECR, ECS, SNS with an SQS inbox, the alarm.
        let ecr = aws_sdk_ecr::Client::new(&sdk);
        ecr.create_repository()
            .repository_name(REPOSITORY)
            .send()
            .await
            .map_err(|e| format!("CreateRepository: {e:?}"))?;
        let behaviors: Arc<Mutex<HashMap<String, Behavior>>> = Arc::default();
        let initial = Self::put_image(&ecr, "v1.0.0").await?;
        behaviors
            .lock()
            .unwrap()
            .insert(initial.clone(), behavior_for("v1.0.0"));
        if path == DeployPath::Codedeploy {
            crate::local::seed_service(&sdk, &image_uri(&initial)).await?;
        }
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        let sns = aws_sdk_sns::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let topic = crate::local::topic(&sdk, "greenlight").await?;
        let queue_url = sqs
            .create_queue()
            .queue_name("greenlight-inbox")
            .send()
            .await
            .map_err(|e| format!("CreateQueue: {e:?}"))?
            .queue_url
            .unwrap_or_default();
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(format!("arn:aws:sqs:us-east-1:{ACCOUNT}:greenlight-inbox"))
            .send()
            .await
            .map_err(|e| format!("Subscribe: {e:?}"))?;
        cloudwatch(
            &moto_endpoint,
            &[
                ("Action", "PutMetricAlarm"),
                ("AlarmName", ALARM),
                ("Namespace", "AWS/ApplicationELB"),
                ("MetricName", "HTTPCode_Target_5XX_Count"),
                ("Statistic", "Sum"),
                ("Period", "60"),
                ("EvaluationPeriods", "1"),
                ("Threshold", "5"),
                ("ComparisonOperator", "GreaterThanThreshold"),
            ],
        )
        .await?;
        timeline.say(format!(
            "seeded: ECR {REPOSITORY}:v1.0.0, SNS topic with an SQS inbox, alarm {ALARM}"
        ));

        // The load balancer as ELBv2 describes it (in the emulator): two target
        // groups, production and test listeners, and a rule on each for ECS-native.
        let elb_seed = seed_load_balancer(&sdk, &moto_endpoint).await?;
        // CloudWatch for the analysis: the stand-in speaks the SDK's rpc-v2-cbor.
        let metrics = CloudWatchStandIn::new();
        let metrics_addr = greenlight_standins::http::serve(metrics.handler())
            .await
            .map_err(|e| e.to_string())?;
        timeline.say(format!(
            "ELBv2 load balancer, target groups and listener rules in the emulator; CloudWatch stand-in on http://{metrics_addr}"
        ));

        // The load balancer in front of the sample app.
        let resolver_behaviors = behaviors.clone();
        let lb = LoadBalancer::new(
            &image_uri(&initial),
            Arc::new(move |image: &str| {
                let digest = image.rsplit('@').next().unwrap_or(image);
                resolver_behaviors
                    .lock()
                    .unwrap()
                    .get(digest)
                    .cloned()
                    .unwrap_or(Behavior::Broken {
                        version: format!("unknown image {image}"),
                    })
            }),
        );
        {
            // Every request counted per target group as ELB reports to CloudWatch;
            // test-listener moves mirrored into the emulator's rule, as ECS makes them.
            let (metrics, lb_dimension) = (
                metrics.clone(),
                greenlight::aws::cloudwatch::load_balancer_dimension(&elb_seed.load_balancer),
            );
            let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
            let (rule, pair) = (
                elb_seed.test_rule.clone(),
                [elb_seed.blue.clone(), elb_seed.green.clone()],
            );
            lb.target_groups(
                &elb_seed.blue,
                &elb_seed.green,
                Arc::new(move |tg: &str, status: u16, seconds: f64| {
                    let tg = greenlight::aws::cloudwatch::target_group_dimension(tg);
                    let dims = [
                        ("TargetGroup", tg.as_str()),
                        ("LoadBalancer", lb_dimension.as_str()),
                    ];
                    let at = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_secs_f64();
                    let ns = "AWS/ApplicationELB";
                    metrics.observe(ns, "RequestCount", &dims, at, 1.0);
                    if status >= 500 {
                        metrics.observe(ns, "HTTPCode_Target_5XX_Count", &dims, at, 1.0);
                    }
                    metrics.observe(ns, "TargetResponseTime", &dims, at, seconds);
                }),
                Arc::new(move |to: &str| {
                    let (elbv2, rule, pair, to) =
                        (elbv2.clone(), rule.clone(), pair.clone(), to.to_string());
                    tokio::spawn(async move {
                        let _ = forward_rule(&elbv2, &rule, &pair, &to).await;
                    });
                }),
            );
        }
        let production = greenlight_standins::http::serve(lb.listener(true))
            .await
            .map_err(|e| e.to_string())?;
        let test = greenlight_standins::http::serve(lb.listener(false))
            .await
            .map_err(|e| e.to_string())?;
        timeline.say(format!(
            "load balancer: production http://{production}, test http://{test}"
        ));

        // Function hosts are created after the stand-in, which needs to invoke them:
        // the stand-in reaches them through these late-bound slots.
        let hooks_slot: Arc<Mutex<HashMap<String, Arc<FunctionHost>>>> = Arc::default();
        let dop_slot: Arc<Mutex<Option<Arc<FunctionHost>>>> = Arc::default();
        let pending = Arc::new(AtomicUsize::new(0));
        let (tl_hooks, tl_events, tl_obs) = (timeline.clone(), timeline.clone(), timeline.clone());
        let (hooks_for_invoker, pending_hooks) = (hooks_slot.clone(), pending.clone());
        let (dop_for_events, pending_events) = (dop_slot.clone(), pending.clone());
        let (engine, engine_env) = match path {
            DeployPath::Codedeploy => {
                let codedeploy = CodeDeployStandIn::new(
                    Arc::new(lb.clone()),
                    Arc::new(move |function: String, payload: Value| {
                        let host = hooks_for_invoker.lock().unwrap().get(&function).cloned();
                        let (timeline, pending) = (tl_hooks.clone(), pending_hooks.clone());
                        pending.fetch_add(1, Ordering::SeqCst);
                        Box::pin(async move {
                            match host {
                                Some(host) => {
                                    let answer = host.invoke(payload).await;
                                    timeline.say(format!(
                                        "{function} returned {}",
                                        brief(&answer.map_err(|e| e.to_string()))
                                    ));
                                }
                                None => timeline.say(format!(
                                    "no function named {function}: the hook is never answered"
                                )),
                            }
                            pending.fetch_sub(1, Ordering::SeqCst);
                        })
                    }),
                    state_changes_to(dop_for_events, tl_events, pending_events),
                    Arc::new(move |line: String| tl_obs.say(line)),
                    Some(ecs.clone()),
                    Timing::default(),
                );
                let addr = greenlight_standins::http::serve(codedeploy.handler())
                    .await
                    .map_err(|e| e.to_string())?;
                timeline.say(format!("CodeDeploy stand-in on http://{addr}"));
                Self::seed_codedeploy(&addr.to_string(), &elb_seed).await?;
                (
                    Engine::CodeDeploy(codedeploy),
                    (
                        "AWS_ENDPOINT_URL_CODEDEPLOY".to_string(),
                        format!("http://{addr}"),
                    ),
                )
            }
            DeployPath::EcsNative => {
                let ecs_standin = EcsStandIn::new(
                    moto_endpoint.clone(),
                    Arc::new(lb.clone()),
                    Arc::new(move |function: String, payload: Value| {
                        // ECS invokes the hook by ARN; the host is named by the function name.
                        let name = function.rsplit(':').next().unwrap_or(&function).to_string();
                        let host = hooks_for_invoker.lock().unwrap().get(&name).cloned();
                        let (timeline, pending) = (tl_hooks.clone(), pending_hooks.clone());
                        pending.fetch_add(1, Ordering::SeqCst);
                        Box::pin(async move {
                            let answer = match host {
                                Some(host) => host.invoke(payload).await.map_err(|e| e.to_string()),
                                None => Err(format!("no function named {name}")),
                            };
                            timeline.say(format!("{name} returned {}", brief(&answer)));
                            pending.fetch_sub(1, Ordering::SeqCst);
                            answer
                        })
                    }),
                    state_changes_to(dop_for_events, tl_events, pending_events),
                    Arc::new(move |line: String| tl_obs.say(line)),
                    greenlight_standins::ecs::Timing {
                        minute: Duration::from_secs(1),
                        // callBackDelay seconds: the analysis asks again each interval.
                        second: Duration::from_millis(250),
                        hook_timeout: Duration::from_secs(60),
                        tick: Duration::from_millis(20),
                    },
                );
                let addr = greenlight_standins::http::serve(ecs_standin.handler())
                    .await
                    .map_err(|e| e.to_string())?;
                timeline.say(format!(
                    "ECS stand-in on http://{addr} (other ECS calls go to the emulator)"
                ));
                let endpoint = format!("http://{addr}");
                Self::seed_ecs_native(&endpoint, &image_uri(&initial), &elb_seed).await?;
                (
                    Engine::Ecs(ecs_standin),
                    ("AWS_ENDPOINT_URL_ECS".to_string(), endpoint),
                )
            }
        };

        let target = match path {
            DeployPath::Codedeploy => {
                "codedeploy: { application: web-app, deployment_group: web-dg }"
            }
            DeployPath::EcsNative => "ecs_native: {}",
        };
        let config_text = format!(
            r#"notifications: {{ notify_idle_alarms: true }}
services:
  - name: web
    repository: {REPOSITORY}
    tags: ["v*"]
    cluster: prod
    service: web
    container: web
    {target}
    alarms: [{ALARM}]
    on_busy: queue
    smoke:
      base_url: http://{test}
      production_url: http://{production}
      deadline_seconds: 20
      checks:
        - {{ name: health, path: /health, expect_status: 200, body_contains: ok, attempts: 2, backoff_ms: 200, timeout_ms: 2000 }}
        - {{ name: version, path: /version, json_equals: {{ /version: "${{image_tag}}" }}, attempts: 2, backoff_ms: 200, timeout_ms: 2000 }}
    # Minutes are compressed to seconds here; a real service would say window_minutes: 5,
    # interval_seconds: 60 and keep the default settle_seconds: 120.
    analysis:
      window_seconds: {ANALYSIS_WINDOW_SECONDS}
      interval_seconds: 1
      settle_seconds: 1
      min_requests: 2
      # No failed interval tolerated: with a handful of canary requests per one-second
      # interval, the first one may also hold the fast smoke requests from just before.
      failure_limit: 0
      metrics:
        - {{ metric: latency_p50, max_ratio_to_blue: 4 }}
"#
        );
        let common: Vec<(String, String)> = vec![
            ("GREENLIGHT_CONFIG".into(), config_text.clone()),
            ("GREENLIGHT_TOPIC_ARN".into(), topic.clone()),
            (
                "GREENLIGHT_HOOK_FUNCTION".into(),
                format!("{HOOK_PREFIX}{{event}}"),
            ),
            ("AWS_ENDPOINT_URL".into(), moto_endpoint.clone()),
            engine_env.clone(),
            (
                "AWS_ENDPOINT_URL_CLOUDWATCH".into(),
                format!("http://{metrics_addr}"),
            ),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()),
        ];
        let start = |name: String, binary: &str, extra: Vec<(String, String)>| {
            let mut env = common.clone();
            // Each function signs with its own access key id (the emulator and stand-ins
            // accept any), so recorded calls can be held against that function's role.
            env.push(("AWS_ACCESS_KEY_ID".into(), binary.to_string()));
            let binary = options.bin_dir.join(binary);
            env.extend(extra);
            let log = options.log_dir.join(format!("{name}.log"));
            async move {
                if !binary.exists() {
                    return Err(format!(
                        "{} not found: build the functions first (scripts/run does)",
                        binary.display()
                    ));
                }
                FunctionHost::start(&name, &binary, &env, Duration::from_secs(60), Some(log))
                    .await
                    .map(Arc::new)
                    .map_err(|e| format!("cannot start {name}: {e}"))
            }
        };
        let deploy_on_push = start("deploy-on-push".into(), "deploy-on-push", vec![]).await?;
        let alarm_rollback = start("alarm-rollback".into(), "alarm-rollback", vec![]).await?;
        let mut hosts = vec![deploy_on_push.clone(), alarm_rollback.clone()];
        match path {
            DeployPath::Codedeploy => {
                for event in ["AfterAllowTestTraffic", "AfterAllowTraffic"] {
                    let name = format!("{HOOK_PREFIX}{event}");
                    let host = start(
                        name.clone(),
                        "lifecycle-hook",
                        vec![("GREENLIGHT_HOOK".into(), event.into())],
                    )
                    .await?;
                    hooks_slot.lock().unwrap().insert(name, host.clone());
                    hosts.push(host);
                }
            }
            DeployPath::EcsNative => {
                // One function serves every stage: ECS's payload names it.
                let host = start(ECS_HOOK.into(), "lifecycle-hook", vec![]).await?;
                hooks_slot
                    .lock()
                    .unwrap()
                    .insert(ECS_HOOK.into(), host.clone());
                hosts.push(host);
            }
        }
        *dop_slot.lock().unwrap() = Some(deploy_on_push.clone());
        for host in &hosts {
            match host.wait_ready(Duration::from_secs(20)).await {
                Some(init) => timeline.say(format!(
                    "{} ready (init {:.1} ms)",
                    host.name,
                    init.as_secs_f64() * 1000.0
                )),
                None => {
                    return Err(format!(
                        "{} did not start; see {}",
                        host.name,
                        options.log_dir.join(format!("{}.log", host.name)).display()
                    ))
                }
            }
        }
        let notifications: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let engine_sdk = sdk.to_builder().endpoint_url(&engine_env.1).build();
        let status = crate::operate::StatusReader {
            backends: greenlight::deploy::Backends {
                codedeploy: greenlight::aws::CodeDeploy::from_conf(match path {
                    DeployPath::Codedeploy => &engine_sdk,
                    DeployPath::EcsNative => &sdk,
                }),
                ecs: greenlight::aws::Ecs::from_conf(match path {
                    DeployPath::Codedeploy => &sdk,
                    DeployPath::EcsNative => &engine_sdk,
                }),
                pipelines: greenlight::aws::Pipelines::from_conf(&sdk),
                hook_pattern: None,
            },
            elb: greenlight::aws::LoadBalancers::from_conf(&sdk),
            metrics: greenlight::aws::cloudwatch::Metrics::from_conf(
                &sdk.to_builder()
                    .endpoint_url(format!("http://{metrics_addr}"))
                    .build(),
            ),
        };
        let stack = Stack {
            timeline,
            sdk,
            lb,
            path,
            engine,
            engine_endpoint: engine_env.1.clone(),
            config: greenlight::Config::parse(&config_text).map_err(|e| e.to_string())?,
            deploy_on_push,
            alarm_rollback,
            hosts,
            behaviors,
            pending,
            queue_url,
            notifications,
            _moto: moto,
            moto_endpoint: moto_endpoint.clone(),
            production_url: format!("http://{production}"),
            traffic: Arc::default(),
            status,
        };
        stack.poll_notifications();
        Ok(stack)
    }

    /// The ECS-native service: cluster prod, service web behind the load balancer's
    /// rules, a canary of 10% for 5 (compressed) minutes, Greenlight's hook at
    /// POST_TEST_TRAFFIC_SHIFT and POST_PRODUCTION_TRAFFIC_SHIFT, and optionally a
    /// PAUSE hook at `pause_at`. Through the ECS stand-in, as a user's template would.
    async fn seed_ecs_native(endpoint: &str, image: &str, elb: &ElbSeed) -> Result<(), String> {
        let client = reqwest_like::Client::ecs(endpoint);
        let hook_arn = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{ECS_HOOK}");
        {
            client
                .call("CreateCluster", json!({"clusterName": "prod"}))
                .await?;
            let registered = client
                .call(
                    "RegisterTaskDefinition",
                    json!({"family": "web", "containerDefinitions": [{"name": "web", "image": image, "memory": 256,
                        "portMappings": [{"containerPort": 8080}]}]}),
                )
                .await?;
            let td = registered["taskDefinition"]["taskDefinitionArn"].clone();
            client
                .call(
                    "CreateService",
                    json!({"cluster": "prod", "serviceName": "web", "taskDefinition": td, "desiredCount": 2,
                        "deploymentController": {"type": "ECS"},
                        "deploymentConfiguration": ecs_deployment_configuration(&hook_arn, None),
                        "loadBalancers": [{"targetGroupArn": elb.blue,
                            "containerName": "web", "containerPort": 8080,
                            "advancedConfiguration": {
                                "alternateTargetGroupArn": elb.green,
                                "productionListenerRule": elb.production_rule,
                                "testListenerRule": elb.test_rule,
                                "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/ecsInfrastructureRoleForLoadBalancers")}}]}),
                )
                .await?;
        }
        Ok(())
    }

    /// Adds (or removes) a PAUSE hook on the ECS-native service (UpdateService).
    async fn set_pause(&self, pause_at: Option<&str>) -> Result<(), String> {
        let hook_arn = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{ECS_HOOK}");
        reqwest_like::Client::ecs(&self.engine_endpoint)
            .call(
                "UpdateService",
                json!({"cluster": "prod", "service": "web",
                    "deploymentConfiguration": ecs_deployment_configuration(&hook_arn, pause_at)}),
            )
            .await
            .map(|_| ())
    }

    async fn seed_codedeploy(endpoint: &str, elb: &ElbSeed) -> Result<(), String> {
        let client = reqwest_like::Client::new(endpoint);
        client
            .call(
                "CreateApplication",
                json!({"applicationName": "web-app", "computePlatform": "ECS"}),
            )
            .await?;
        client
            .call(
                "CreateDeploymentGroup",
                json!({
                    "applicationName": "web-app",
                    "deploymentGroupName": "web-dg",
                    "serviceRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/ecsCodeDeployRole"),
                    "deploymentConfigName": "CodeDeployDefault.ECSCanary10Percent5Minutes",
                    "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                    "ecsServices": [{"serviceName": "web", "clusterName": "prod"}],
                    "autoRollbackConfiguration": {"enabled": true, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]},
                    "alarmConfiguration": {"enabled": true, "alarms": [{"name": ALARM}]},
                    "loadBalancerInfo": {"targetGroupPairInfoList": [{
                        "targetGroups": [{"name": "web-blue"}, {"name": "web-green"}],
                        "prodTrafficRoute": {"listenerArns": [elb.production_listener]},
                        "testTrafficRoute": {"listenerArns": [elb.test_listener]}
                    }]}
                }),
            )
            .await?;
        Ok(())
    }

    async fn put_image(ecr: &aws_sdk_ecr::Client, tag: &str) -> Result<String, String> {
        let output = ecr
            .put_image()
            .repository_name(REPOSITORY)
            .image_tag(tag)
            .image_manifest(crate::local::manifest(tag))
            .send()
            .await
            .map_err(|e| format!("PutImage {tag}: {e:?}"))?;
        output
            .image
            .and_then(|i| i.image_id)
            .and_then(|i| i.image_digest)
            .ok_or_else(|| format!("PutImage {tag}: no digest"))
    }

    /// Pushes `tag` to ECR and delivers the "ECR Image Action" event to deploy-on-push.
    async fn push(&self, tag: &str) -> Result<(String, Value), String> {
        let ecr = aws_sdk_ecr::Client::new(&self.sdk);
        let digest = Self::put_image(&ecr, tag).await?;
        self.behaviors
            .lock()
            .unwrap()
            .insert(digest.clone(), behavior_for(tag));
        let event = json!({
            "version": "0", "id": format!("push-{tag}"), "detail-type": "ECR Image Action", "source": "aws.ecr",
            "account": ACCOUNT, "time": greenlight_standins::rfc3339_now(), "region": "us-east-1", "resources": [],
            "detail": {"result": "SUCCESS", "repository-name": REPOSITORY, "image-digest": digest, "action-type": "PUSH", "image-tag": tag}
        });
        self.timeline.say(format!(
            "ECR push {REPOSITORY}:{tag} ({}) -> EventBridge -> deploy-on-push",
            &digest[7..19]
        ));
        let answer = self
            .deploy_on_push
            .invoke(event)
            .await
            .map_err(|e| format!("deploy-on-push failed: {e}"))?;
        self.timeline
            .say(format!("deploy-on-push: {}", brief(&Ok(answer.clone()))));
        Ok((digest, answer))
    }

    /// Waits for a deployment to end, with a progress indicator; its final status.
    async fn wait_end(&self, id: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.engine.status(id).unwrap_or_default();
            if matches!(status.as_str(), "Succeeded" | "Failed" | "Stopped")
                || Instant::now() >= deadline
            {
                return status;
            }
            self.timeline.progress(&format!(
                "waiting for {id} ({status}, production {}% green)",
                self.lb.production_green_percent()
            ));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every asynchronous invocation (hooks, state changes) has returned.
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.pending.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Let the SQS poller catch the last publishes.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    fn sample_production(&self) -> tokio::task::JoinHandle<()> {
        let url = format!("{}/", self.production_url);
        let (lb, traffic, started) = (self.lb.clone(), self.traffic.clone(), self.timeline.started);
        tokio::spawn(async move {
            let client = reqwest_like::Client::plain();
            let mut last_sample = Instant::now() - Duration::from_secs(1);
            loop {
                let _ = client.get(&url).await;
                if last_sample.elapsed() >= Duration::from_millis(50) {
                    last_sample = Instant::now();
                    traffic.lock().unwrap().push((
                        started.elapsed().as_secs_f64(),
                        lb.production_green_percent(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }

    fn poll_notifications(&self) {
        let (sqs, queue, store, timeline) = (
            aws_sdk_sqs::Client::new(&self.sdk),
            self.queue_url.clone(),
            self.notifications.clone(),
            self.timeline.clone(),
        );
        tokio::spawn(async move {
            loop {
                if let Ok(out) = sqs
                    .receive_message()
                    .queue_url(&queue)
                    .max_number_of_messages(10)
                    .send()
                    .await
                {
                    for message in out.messages.unwrap_or_default() {
                        let envelope: Value = serde_json::from_str(message.body().unwrap_or("{}"))
                            .unwrap_or_default();
                        let event = envelope["MessageAttributes"]["event"]["Value"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        let subject = envelope["Subject"].as_str().unwrap_or_default().to_string();
                        timeline.say(format!("SNS {event}: {subject}"));
                        store.lock().unwrap().push((event, subject));
                        if let Some(handle) = message.receipt_handle() {
                            let _ = sqs
                                .delete_message()
                                .queue_url(&queue)
                                .receipt_handle(handle)
                                .send()
                                .await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    fn take_notifications(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.notifications.lock().unwrap())
    }

    fn blue_version(&self) -> String {
        let blue = self.lb.blue().unwrap_or_default();
        let digest = blue.rsplit('@').next().unwrap_or_default().to_string();
        self.behaviors
            .lock()
            .unwrap()
            .get(&digest)
            .map(|b| b.version().to_string())
            .unwrap_or_default()
    }

    fn report(
        &self,
        number: u8,
        name: &str,
        started: Instant,
        checks: Vec<Check>,
        figures: HashMap<String, f64>,
    ) -> ScenarioReport {
        let passed = checks.iter().all(|c| c.passed);
        self.timeline.say(format!(
            "scenario {number} ({}) {}: {name}",
            self.path.label(),
            if passed { "PASSED" } else { "FAILED" }
        ));
        let from = started
            .saturating_duration_since(self.timeline.started)
            .as_secs_f64();
        let timeline = self
            .timeline
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| line_seconds(l).is_some_and(|t| t >= from - 0.0005))
            .cloned()
            .collect();
        let traffic = self
            .traffic
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| *t >= from)
            .map(|(t, green_percent)| TrafficSample {
                t: t - from,
                green_percent: *green_percent,
            })
            .collect();
        ScenarioReport {
            number,
            path: self.path,
            name: name.into(),
            passed,
            seconds: started.elapsed().as_secs_f64(),
            checks,
            figures,
            timeline,
            traffic,
        }
    }

    /// Pushes `tag`, checks that deploy-on-push started a deployment, and returns its id.
    async fn push_expecting_start(&self, tag: &str, checks: &mut Vec<Check>) -> Option<String> {
        let pushed = self.push(tag).await;
        let id = pushed.as_ref().ok().and_then(|(_, a)| Self::started_id(a));
        checks.push(check(
            &format!("deploy-on-push started a deployment for {tag}"),
            id.is_some(),
            format!("{pushed:?}"),
        ));
        id
    }

    fn started_id(answer: &Value) -> Option<String> {
        answer.as_array()?.iter().find_map(|o| {
            (o["outcome"] == "started")
                .then(|| o["deployment_id"].as_str().map(str::to_string))
                .flatten()
        })
    }

    /// 1. A healthy image is deployed without anyone touching it.
    async fn scenario_healthy(&self) -> ScenarioReport {
        let started = Instant::now();
        self.timeline.say("scenario 1: push a healthy image");
        let mut checks = Vec::new();
        let mut figures = HashMap::new();
        let id = self.push_expecting_start("v1.1.0", &mut checks).await;
        if let Some(id) = id {
            let status = self.wait_end(&id, Duration::from_secs(60)).await;
            figures.insert("seconds_to_promote".into(), started.elapsed().as_secs_f64());
            checks.push(check("deployment succeeded", status == "Succeeded", status));
        }
        self.settle().await;
        checks.push(check(
            "production serves v1.1.0",
            self.blue_version() == "v1.1.0",
            self.blue_version(),
        ));
        let events: Vec<String> = self.take_notifications().into_iter().map(|n| n.0).collect();
        for expected in ["deployment_started", "hook_passed", "deployment_finished"] {
            checks.push(check(
                &format!("notification {expected}"),
                events.iter().any(|e| e == expected),
                format!("{events:?}"),
            ));
        }
        // CodeDeploy: AfterAllowTestTraffic's smoke checks, then AfterAllowTraffic's
        // smoke checks and analysis; ECS-native: POST_TEST and POST_PRODUCTION smoke
        // checks, and the analysis at the first production step.
        let hooks = match self.path {
            DeployPath::Codedeploy => 1,
            DeployPath::EcsNative => 2,
        };
        checks.push(check(
            "every hook passed, the analysis among them",
            events.iter().filter(|e| *e == "hook_passed").count() == hooks
                && events.iter().filter(|e| *e == "analysis_passed").count() == 1,
            format!("{events:?}"),
        ));
        self.report(
            1,
            "healthy image: smoke passes, production moves to green",
            started,
            checks,
            figures,
        )
    }

    /// 2. A broken image fails its smoke test; production never serves it.
    async fn scenario_broken(&self) -> ScenarioReport {
        let started = Instant::now();
        self.timeline.say("scenario 2: push a broken image");
        let log_from = self.lb.production_log().len();
        let mut checks = Vec::new();
        let id = self
            .push_expecting_start("v1.2.0-broken", &mut checks)
            .await;
        if let Some(id) = id {
            let status = self.wait_end(&id, Duration::from_secs(60)).await;
            checks.push(check(
                "deployment failed and rolled back",
                status == "Failed",
                status,
            ));
        }
        self.settle().await;
        let served = &self.lb.production_log()[log_from..];
        let broken = served
            .iter()
            .filter(|s| s.version == "v1.2.0-broken")
            .count();
        checks.push(check(
            "production never served the broken version",
            broken == 0 && !served.is_empty(),
            format!(
                "{broken} of {} production answers came from v1.2.0-broken",
                served.len()
            ),
        ));
        checks.push(check(
            "production still serves v1.1.0",
            self.blue_version() == "v1.1.0",
            self.blue_version(),
        ));
        let events: Vec<String> = self.take_notifications().into_iter().map(|n| n.0).collect();
        checks.push(check(
            "notification hook_failed",
            events.iter().any(|e| e == "hook_failed"),
            format!("{events:?}"),
        ));
        checks.push(check(
            "notification deployment_finished",
            events.iter().any(|e| e == "deployment_finished"),
            format!("{events:?}"),
        ));
        let mut figures = HashMap::new();
        figures.insert("production_answers_sampled".into(), served.len() as f64);
        self.report(
            2,
            "broken image: smoke fails, rolled back, production untouched",
            started,
            checks,
            figures,
        )
    }

    /// 3. An image that degrades under production traffic: the alarm stops it.
    async fn scenario_degrading(&self) -> ScenarioReport {
        let started = Instant::now();
        self.timeline
            .say("scenario 3: push an image that fails under production traffic");
        let mut checks = Vec::new();
        let mut figures = HashMap::new();
        let id = self
            .push_expecting_start("v1.3.0-degrades", &mut checks)
            .await;
        if let Some(id) = id {
            // Play CloudWatch: the alarm goes to ALARM once green served 3 errors in production.
            let log_from = self.lb.production_log().len();
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut fired = None;
            while Instant::now() < deadline {
                let errors = self.lb.production_log()[log_from..]
                    .iter()
                    .filter(|s| s.color == Color::Green && s.status >= 500)
                    .count();
                if errors >= 3 {
                    fired = Some(Instant::now());
                    break;
                }
                if matches!(
                    self.engine.status(&id).as_deref(),
                    Some("Succeeded" | "Failed" | "Stopped")
                ) {
                    break;
                }
                self.timeline.progress("watching production 5xx");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            checks.push(check(
                "green served 5xx in production during the canary",
                fired.is_some(),
                "no 5xx seen".into(),
            ));
            if let Some(fired) = fired {
                let answer = self.fire_alarm().await;
                checks.push(check(
                    "alarm-rollback stopped the deployment",
                    answer.as_ref().is_ok_and(|a| a[0]["acted"] == true),
                    format!("{answer:?}"),
                ));
                let back = loop {
                    if self.lb.production_green_percent() == 0
                        || fired.elapsed() > Duration::from_secs(30)
                    {
                        break fired.elapsed();
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                };
                figures.insert("seconds_alarm_to_blue".into(), back.as_secs_f64());
                self.timeline.say(format!(
                    "production traffic back on blue {:.3} s after the alarm",
                    back.as_secs_f64()
                ));
                let status = self.wait_end(&id, Duration::from_secs(30)).await;
                checks.push(check("deployment stopped", status == "Stopped", status));
            }
            self.reset_alarm().await;
        }
        self.settle().await;
        checks.push(check(
            "production serves v1.1.0 again",
            self.blue_version() == "v1.1.0",
            self.blue_version(),
        ));
        let events: Vec<String> = self.take_notifications().into_iter().map(|n| n.0).collect();
        checks.push(check(
            "notification rollback_requested",
            events.iter().any(|e| e == "rollback_requested"),
            format!("{events:?}"),
        ));
        self.report(
            3,
            "degrades under production: alarm stops it, back to blue",
            started,
            checks,
            figures,
        )
    }

    /// Scenario 6: an image that passes its smoke checks but answers 10x slower under
    /// production traffic, with no alarm firing: the analysis rolls it back.
    async fn scenario_slow(&self) -> ScenarioReport {
        let started = Instant::now();
        self.timeline.say(
            "scenario 6: push an image that is 10x slower under production traffic (no alarm fires)",
        );
        let previous = self.blue_version();
        let log_from = self.lb.production_log().len();
        let mut checks = Vec::new();
        let mut figures = HashMap::new();
        let before = match self.config.service_by_name("web") {
            Some(web) => self.status.status_of(web).await.production_digest,
            None => None,
        };
        let id = self.push_expecting_start("v1.6.0-slow", &mut checks).await;
        if let Some(id) = &id {
            let (status, seen) = tokio::join!(
                self.wait_end(id, Duration::from_secs(90)),
                self.watch_status(id)
            );
            checks.push(check(
                "deployment rolled back",
                matches!(status.as_str(), "Failed" | "Stopped"),
                status,
            ));
            self.check_status_during(id, seen, &mut checks);
        }
        self.settle().await;
        let served = &self.lb.production_log()[log_from..];
        let slow: Vec<u64> = served
            .iter()
            .filter(|s| s.version == "v1.6.0-slow")
            .map(|s| s.at_ms)
            .collect();
        if let (Some(first), Some(last)) = (slow.first(), slow.last()) {
            let exposed = (last - first) as f64 / 1000.0;
            figures.insert("seconds_slow_image_served_production".into(), exposed);
            // Target: rolled back within the window + 2 intervals of traffic reaching it.
            let limit = ANALYSIS_WINDOW_SECONDS as f64 + 2.0;
            checks.push(check(
                &format!("rolled back within window + 2 intervals ({limit:.0} s) of production traffic reaching it"),
                exposed <= limit,
                format!("{exposed:.1} s from its first to its last production answer"),
            ));
        } else {
            checks.push(check(
                "production traffic reached the slow image",
                false,
                "it never served production".into(),
            ));
        }
        checks.push(check(
            &format!("production serves {previous} again"),
            self.blue_version() == previous && self.lb.production_green_percent() == 0,
            self.blue_version(),
        ));
        if let Some(id) = &id {
            self.check_status_after(id, before.as_deref(), &mut checks)
                .await;
        }
        let events: Vec<String> = self.take_notifications().into_iter().map(|n| n.0).collect();
        checks.push(check(
            "notification analysis_failed",
            events.iter().any(|e| e == "analysis_failed"),
            format!("{events:?}"),
        ));
        checks.push(check(
            "no alarm was involved",
            !events.iter().any(|e| e == "rollback_requested"),
            format!("{events:?}"),
        ));
        self.report(
            6,
            "slow under production, no alarm: the analysis rolls it back",
            started,
            checks,
            figures,
        )
    }

    /// `greenlight status web` every 100 ms while `id` is in flight: the snapshots
    /// that showed it with production traffic on green.
    async fn watch_status(&self, id: &str) -> Vec<crate::operate::ServiceStatus> {
        let Some(web) = self.config.service_by_name("web") else {
            return Vec::new();
        };
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if matches!(
                self.engine.status(id).as_deref(),
                Some("Succeeded" | "Failed" | "Stopped")
            ) {
                break;
            }
            let status = self.status.status_of(web).await;
            let on_green = status.in_flight.iter().any(|d| {
                d.deployment.id == id
                    && d.progress.green_production_percent.unwrap_or_default() > 0.0
            });
            if on_green {
                seen.push(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    }

    /// What `greenlight status` showed while production traffic reached green: the
    /// deployment, its event or stage, the split, the hooks' results, the analysis.
    fn check_status_during(
        &self,
        id: &str,
        seen: Vec<crate::operate::ServiceStatus>,
        checks: &mut Vec<Check>,
    ) {
        // The most telling snapshot: the last one with an analysis, else the last.
        let best = seen
            .iter()
            .rev()
            .find(|s| s.in_flight.iter().any(|d| d.analysis.is_some()))
            .or(seen.last());
        let Some(status) = best else {
            checks.push(check(
                "greenlight status showed the deployment with production traffic on green",
                false,
                "no status snapshot while green served production".into(),
            ));
            return;
        };
        let text =
            crate::operate::print_status(&serde_json::to_value([status]).unwrap_or_default());
        for line in text.lines() {
            self.timeline.say(format!("greenlight status web | {line}"));
        }
        // ECS lists each hook once, with its latest status; CodeDeploy lists each
        // hooked lifecycle event, the smoke-test one passed by now.
        let d = status.in_flight.iter().find(|d| d.deployment.id == id);
        let hooks_shown = d.is_some_and(|d| match self.path {
            DeployPath::Codedeploy => d.progress.hooks.iter().any(|h| h.status == "Succeeded"),
            DeployPath::EcsNative => !d.progress.hooks.is_empty(),
        });
        checks.push(check(
            "greenlight status showed it in flight: stage, green's share of production, its hooks",
            d.is_some_and(|d| d.progress.at.is_some()) && hooks_shown,
            text.clone(),
        ));
        checks.push(check(
            "greenlight status showed the analysis so far",
            d.is_some_and(|d| d.analysis.is_some()),
            text,
        ));
    }

    /// After the rollback: nothing in flight, the deployment last finished and not
    /// successful, production on the image it served before the push.
    async fn check_status_after(&self, id: &str, before: Option<&str>, checks: &mut Vec<Check>) {
        let Some(web) = self.config.service_by_name("web") else {
            return;
        };
        let status = self.status.status_of(web).await;
        let text =
            crate::operate::print_status(&serde_json::to_value([&status]).unwrap_or_default());
        for line in text.lines() {
            self.timeline.say(format!("greenlight status web | {line}"));
        }
        let last = status.last_finished.as_ref();
        checks.push(check(
            "greenlight status afterwards: nothing in flight, the deployment rolled back, production on the image from before",
            status.in_flight.is_empty()
                && last.is_some_and(|l| l.id == id && l.phase != greenlight::deploy::Phase::Succeeded)
                && before.is_some()
                && status.production_digest.as_deref() == before,
            format!("before: {before:?}\n{text}"),
        ));
    }

    async fn fire_alarm(&self) -> Result<Value, String> {
        let reason = "Threshold Crossed: 1 out of the last 1 datapoints [12.0] was greater than the threshold (5.0)";
        cloudwatch(
            &self.moto_endpoint,
            &[
                ("Action", "SetAlarmState"),
                ("AlarmName", ALARM),
                ("StateValue", "ALARM"),
                ("StateReason", reason),
            ],
        )
        .await?;
        let event = alarm_event("OK", "ALARM", reason);
        self.timeline.say(format!(
            "CloudWatch {ALARM} -> ALARM -> EventBridge -> alarm-rollback"
        ));
        let answer = self
            .alarm_rollback
            .invoke(event)
            .await
            .map_err(|e| e.to_string())?;
        self.timeline
            .say(format!("alarm-rollback: {}", brief(&Ok(answer.clone()))));
        Ok(answer)
    }

    async fn reset_alarm(&self) {
        let _ = cloudwatch(
            &self.moto_endpoint,
            &[
                ("Action", "SetAlarmState"),
                ("AlarmName", ALARM),
                ("StateValue", "OK"),
                ("StateReason", "recovered"),
            ],
        )
        .await;
        // The OK transition reaches alarm-rollback too, which ignores it.
        if let Ok(answer) = self
            .alarm_rollback
            .invoke(alarm_event("ALARM", "OK", "recovered"))
            .await
        {
            self.timeline.say(format!(
                "alarm-rollback <- {ALARM} OK: {}",
                brief(&Ok(answer))
            ));
        }
    }

    /// Scenario 5 (ECS-native): a PAUSE hook holds the deployment before production
    /// traffic moves until someone runs `greenlight approve`.
    async fn scenario_approval(&self) -> ScenarioReport {
        let started = Instant::now();
        self.timeline.say(
            "scenario 5: a PAUSE hook before production traffic, answered with greenlight approve",
        );
        let mut checks = Vec::new();
        let mut figures = HashMap::new();
        let paused = self.set_pause(Some("POST_TEST_TRAFFIC_SHIFT")).await;
        checks.push(check(
            "the service has a PAUSE hook",
            paused.is_ok(),
            format!("{paused:?}"),
        ));
        let id = self.push_expecting_start("v1.5.0", &mut checks).await;
        if let (Some(id), Engine::Ecs(ecs)) = (id, &self.engine) {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut awaiting = None;
            while awaiting.is_none() && Instant::now() < deadline {
                awaiting = ecs.awaiting_action();
                self.timeline.progress("waiting for the PAUSE hook");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            checks.push(check(
                "the deployment paused before production traffic moved",
                awaiting.is_some() && self.lb.production_green_percent() == 0,
                format!(
                    "{awaiting:?}, production {}% green",
                    self.lb.production_green_percent()
                ),
            ));
            let sdk = self
                .sdk
                .to_builder()
                .endpoint_url(&self.engine_endpoint)
                .build();
            let answer = crate::approval::answer_with(
                &greenlight::deploy::Backends::from_conf(&sdk, None),
                &self.config,
                "web",
                crate::approval::Decision::Approve,
            )
            .await;
            self.timeline.say(format!(
                "greenlight approve web: {}",
                match &answer {
                    Ok(m) | Err(m) => m,
                }
            ));
            checks.push(check(
                "greenlight approve web continued it",
                answer.as_ref().is_ok_and(|m| m.contains("approved")),
                format!("{answer:?}"),
            ));
            let status = self.wait_end(&id, Duration::from_secs(60)).await;
            figures.insert("seconds_to_promote".into(), started.elapsed().as_secs_f64());
            checks.push(check(
                "deployment succeeded after approval",
                status == "Succeeded",
                status,
            ));
        }
        let _ = self.set_pause(None).await;
        self.settle().await;
        checks.push(check(
            "production serves v1.5.0",
            self.blue_version() == "v1.5.0",
            self.blue_version(),
        ));
        let events: Vec<String> = self.take_notifications().into_iter().map(|n| n.0).collect();
        checks.push(check(
            "notification approval_pending (what to run, for people and chat)",
            events.iter().any(|e| e == "approval_pending"),
            format!("{events:?}"),
        ));
        self.report(
            5,
            "PAUSE hook: held before production, approved, promoted",
            started,
            checks,
            figures,
        )
    }

    /// 4. Three pushes while a deployment is in flight: the newest deploys next.
    async fn scenario_burst(&self) -> ScenarioReport {
        let started = Instant::now();
        self.timeline
            .say("scenario 4: three pushes in quick succession");
        let before = self.engine.deployment_ids().len();
        let mut checks = Vec::new();
        let first_id = self.push_expecting_start("v1.4.0", &mut checks).await;
        let mut queued = 0;
        for tag in ["v1.4.1", "v1.4.2"] {
            tokio::time::sleep(Duration::from_millis(1100)).await;
            if let Ok((_, answer)) = self.push(tag).await {
                queued += usize::from(answer[0]["outcome"] == "queued");
            }
        }
        checks.push(check(
            "the next two pushes were queued",
            queued == 2,
            format!("{queued} queued"),
        ));
        if let Some(id) = &first_id {
            let status = self.wait_end(id, Duration::from_secs(60)).await;
            checks.push(check(
                "the first deployment succeeded",
                status == "Succeeded",
                status,
            ));
        }
        self.settle().await;
        let next = self
            .engine
            .deployment_ids()
            .last()
            .cloned()
            .unwrap_or_default();
        if Some(&next) != first_id.as_ref() {
            let status = self.wait_end(&next, Duration::from_secs(60)).await;
            checks.push(check(
                "the queued deployment succeeded",
                status == "Succeeded",
                status,
            ));
        } else {
            checks.push(check(
                "a queued deployment started",
                false,
                "no deployment after the first".into(),
            ));
        }
        self.settle().await;
        checks.push(check(
            "production serves the newest image v1.4.2",
            self.blue_version() == "v1.4.2",
            self.blue_version(),
        ));
        let notes = self.take_notifications();
        let skipped: Vec<&(String, String)> = notes
            .iter()
            .filter(|n| n.0 == "deployment_skipped")
            .collect();
        checks.push(check(
            "v1.4.1 was reported as skipped",
            skipped.iter().any(|n| n.1.contains("v1.4.1")),
            format!("{notes:?}"),
        ));
        let created = self.engine.deployment_ids().len() - before;
        checks.push(check(
            "two deployments for three pushes (v1.4.0, then the newest v1.4.2)",
            created == 2,
            format!("{created} deployments created"),
        ));
        let mut figures = HashMap::new();
        figures.insert(
            "seconds_to_newest_in_production".into(),
            started.elapsed().as_secs_f64(),
        );
        self.report(
            4,
            "three pushes while busy: newest deployed next, middle skipped",
            started,
            checks,
            figures,
        )
    }
}

/// The EventBridge rule for the engine's state-change events: deploy-on-push,
/// invoked asynchronously.
fn state_changes_to(
    deploy_on_push: Arc<Mutex<Option<Arc<FunctionHost>>>>,
    timeline: Timeline,
    pending: Arc<AtomicUsize>,
) -> greenlight_standins::codedeploy::EventSink {
    Arc::new(move |event: Value| {
        let host = deploy_on_push.lock().unwrap().clone();
        let (timeline, pending) = (timeline.clone(), pending.clone());
        pending.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            if let Some(host) = host {
                let state = event["detail"]["state"]
                    .as_str()
                    .or(event["detail"]["eventName"].as_str())
                    .unwrap_or_default()
                    .to_string();
                let answer = host.invoke(event).await;
                timeline.say(format!(
                    "deploy-on-push <- state change {state}: {}",
                    brief(&answer.map_err(|e| e.to_string()))
                ));
            }
            pending.fetch_sub(1, Ordering::SeqCst);
        });
    })
}

/// The ECS-native service's deployment configuration: a 10% canary for 5 minutes,
/// Greenlight's hook where smoke checks belong, and a PAUSE hook when asked.
/// The seconds a timeline line was said at (`[  6.606s] …`).
fn line_seconds(line: &str) -> Option<f64> {
    line.strip_prefix('[')?
        .split_once("s]")?
        .0
        .trim()
        .parse()
        .ok()
}

/// The load balancer's ELBv2 resources in the emulator.
type ElbSeed = greenlight_standins::elb_fixture::BlueGreenElb;

/// A load balancer (in a VPC with two subnets, as ELBv2 requires), target groups
/// web-blue and web-green, listeners 80 and 8080 and a forward rule on each.
async fn seed_load_balancer(sdk: &SdkConfig, moto: &str) -> Result<ElbSeed, String> {
    let vpc = query_call(
        moto,
        "ec2",
        "2016-11-15",
        &[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")],
    )
    .await
    .map(|xml| xml_value(&xml, "vpcId"))?;
    let mut subnets = Vec::new();
    for (cidr, zone) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
        let xml = query_call(
            moto,
            "ec2",
            "2016-11-15",
            &[
                ("Action", "CreateSubnet"),
                ("VpcId", &vpc),
                ("CidrBlock", cidr),
                ("AvailabilityZone", zone),
            ],
        )
        .await?;
        subnets.push(xml_value(&xml, "subnetId"));
    }
    greenlight_standins::elb_fixture::create(
        &aws_sdk_elasticloadbalancingv2::Client::new(sdk),
        "web",
        aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum::Internal,
        subnets,
    )
    .await
}

/// Points a listener rule at one of the pair with a weighted forward (all to `to`).
async fn forward_rule(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    rule: &str,
    pair: &[String; 2],
    to: &str,
) -> Result<(), String> {
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple,
    };
    let mut forward = ForwardActionConfig::builder();
    for tg in pair {
        forward = forward.target_groups(
            TargetGroupTuple::builder()
                .target_group_arn(tg)
                .weight(if tg == to { 100 } else { 0 })
                .build(),
        );
    }
    let action = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(forward.build())
        .build();
    elb.modify_rule()
        .rule_arn(rule)
        .actions(action)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("ModifyRule: {e:?}"))
}

/// The text of the first `<name>` element of an XML answer.
fn xml_value(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    xml.split_once(&open)
        .and_then(|(_, rest)| rest.split_once('<'))
        .map(|(value, _)| value.to_string())
        .unwrap_or_default()
}

fn ecs_deployment_configuration(hook_arn: &str, pause_at: Option<&str>) -> Value {
    let mut hooks = vec![
        json!({"targetType": "AWS_LAMBDA", "hookTargetArn": hook_arn,
        "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/greenlight-ecs-hook-invoke"),
        "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"]}),
    ];
    if let Some(stage) = pause_at {
        hooks.push(json!({"targetType": "PAUSE", "lifecycleStages": [stage],
            "timeoutConfiguration": {"timeoutInMinutes": 60, "action": "ROLLBACK"}}));
    }
    json!({"strategy": "CANARY", "bakeTimeInMinutes": 0,
        "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5},
        "lifecycleHooks": hooks})
}

/// A CloudWatch call over the Query protocol. The Rust SDK's CloudWatch client speaks
/// the newer RPCv2 CBOR protocol, which the moto emulator (5.2.5) answers with 404;
/// the Query protocol is what moto implements.
async fn cloudwatch(endpoint: &str, params: &[(&str, &str)]) -> Result<(), String> {
    query_call(endpoint, "monitoring", "2010-08-01", params)
        .await
        .map(|_| ())
}

/// A call over the AWS Query protocol (form-encoded POST, XML answer) to the emulator.
async fn query_call(
    endpoint: &str,
    signing_name: &str,
    version: &str,
    params: &[(&str, &str)],
) -> Result<String, String> {
    let mut body: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect();
    body.push(format!("Version={version}"));
    let body = body.join("&");
    let host = endpoint.trim_start_matches("http://");
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{signing_name}/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, answer) = reqwest_like::Client::plain().raw(host, request).await?;
    if status == 200 {
        Ok(answer)
    } else {
        Err(format!(
            "{signing_name} {:?}: HTTP {status}: {answer}",
            params.first()
        ))
    }
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn check(what: &str, passed: bool, detail: String) -> Check {
    Check {
        what: what.into(),
        passed,
        detail,
    }
}

fn alarm_event(previous: &str, state: &str, reason: &str) -> Value {
    let now = greenlight_standins::rfc3339_now();
    json!({
        "version": "0", "id": format!("alarm-{state}-{now}"), "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
        "account": ACCOUNT, "time": now, "region": "us-east-1", "resources": [format!("arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{ALARM}")],
        "detail": {
            "alarmName": ALARM,
            "configuration": {"metrics": [{"id": "m1", "metricStat": {"metric": {"namespace": "AWS/ApplicationELB", "name": "HTTPCode_Target_5XX_Count", "dimensions": {}}, "period": 60, "stat": "Sum"}, "returnData": true}]},
            "previousState": {"value": previous, "reason": "previous", "timestamp": now},
            "state": {"value": state, "reason": reason, "timestamp": now}
        }
    })
}

/// One line about a function's answer.
fn brief(answer: &Result<Value, String>) -> String {
    match answer {
        Err(e) => format!("error: {e}"),
        Ok(Value::Array(items)) if items.is_empty() => "noted".into(),
        Ok(Value::Array(items)) => items
            .iter()
            .map(|o| {
                let kind = match o["acted"].as_bool() {
                    Some(true) => Some("acted:"),
                    Some(false) => Some("ignored:"),
                    None => None,
                };
                let mut s = o["outcome"]
                    .as_str()
                    .or(o["decision"].as_str())
                    .or(kind)
                    .unwrap_or("?")
                    .to_string();
                for key in ["deployment_id", "in_flight_id", "reason", "alarm"] {
                    if let Some(v) = o[key].as_str() {
                        s.push_str(&format!(" {v}"));
                    }
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; "),
        Ok(v) => {
            let mut s = v["status"]
                .as_str()
                .or(v["decision"].as_str())
                .unwrap_or_default()
                .to_string();
            if let Some(reason) = v["reason"].as_str() {
                s.push_str(&format!(": {reason}"));
            }
            s.chars().take(220).collect()
        }
    }
}

/// A tiny HTTP client for the stand-ins (plain HTTP/1.1 on loopback).
mod reqwest_like {
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub struct Client {
        endpoint: String,
        /// The JSON 1.1 target prefix of the service called.
        target: &'static str,
    }

    impl Client {
        /// A CodeDeploy client.
        pub fn new(endpoint: &str) -> Client {
            Client {
                endpoint: endpoint.trim_start_matches("http://").to_string(),
                target: "CodeDeploy_20141006",
            }
        }

        /// An ECS client.
        pub fn ecs(endpoint: &str) -> Client {
            Client {
                endpoint: endpoint.trim_start_matches("http://").to_string(),
                target: "AmazonEC2ContainerServiceV20141113",
            }
        }

        pub fn plain() -> Client {
            Client {
                endpoint: String::new(),
                target: "",
            }
        }

        pub async fn raw(&self, host: &str, request: String) -> Result<(u16, String), String> {
            self.send(host, request).await
        }

        async fn send(&self, host: &str, request: String) -> Result<(u16, String), String> {
            let mut stream = tokio::net::TcpStream::connect(host)
                .await
                .map_err(|e| e.to_string())?;
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut response = String::new();
            stream
                .read_to_string(&mut response)
                .await
                .map_err(|e| e.to_string())?;
            let status = response
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let body = response
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or_default();
            Ok((status, body))
        }

        /// A JSON 1.1 call.
        pub async fn call(&self, operation: &str, input: Value) -> Result<Value, String> {
            let body = input.to_string();
            let request = format!(
                "POST / HTTP/1.1\r\nHost: {}\r\nX-Amz-Target: {}.{operation}\r\nContent-Type: application/x-amz-json-1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                self.endpoint,
                self.target,
                body.len()
            );
            let (status, body) = self.send(&self.endpoint, request).await?;
            if status != 200 {
                return Err(format!("{operation}: HTTP {status}: {body}"));
            }
            serde_json::from_str(&body).map_err(|e| e.to_string())
        }

        pub async fn get(&self, url: &str) -> Result<(u16, String), String> {
            let rest = url.trim_start_matches("http://");
            let (host, path) = rest
                .split_once('/')
                .map(|(h, p)| (h, format!("/{p}")))
                .unwrap_or((rest, "/".into()));
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            self.send(host, request).await
        }
    }
}
