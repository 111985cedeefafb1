//! The stack a rehearsal runs on: the emulator, the stand-ins, the load balancer,
//! the three functions under local runtime hosts, and the configuration.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use greenlight_standins::cloudwatch::CloudWatchStandIn;
use greenlight_standins::codedeploy::{CodeDeployStandIn, Timing};
use greenlight_standins::ecs::EcsStandIn;
use greenlight_standins::lb::{Behavior, LoadBalancer};
use greenlight_standins::runtime::FunctionHost;
use serde_json::Value;

use crate::rehearse::balancer::{serve_balancer, Balancer, Router};
use crate::rehearse::document::document;
use crate::rehearse::engine::{DeployPath, Engine};
use crate::rehearse::fixture::{
    behavior_for, free_port, image_uri, Fixture, ACCOUNT, ALARM, ECS_HOOK, HOOK_PREFIX,
    LEDGER_TABLE, REPOSITORY, SCHEDULE_GROUP, STAGING_ALARM,
};
use crate::rehearse::green::GreenTasks;
use crate::rehearse::report::brief;
use crate::rehearse::report::Heard;
use crate::rehearse::seed::{
    cloudwatch, seed_codedeploy, seed_codedeploy_group, seed_ecs_native, seed_load_balancer,
};
use crate::rehearse::timeline::Timeline;
use crate::rehearse::Options;

/// Everything the scenarios act on.
pub(crate) struct Stack {
    pub(crate) timeline: Timeline,
    pub(crate) sdk: SdkConfig,
    pub(crate) lb: LoadBalancer,
    /// Scenario 7's staging service's load balancer.
    pub(crate) staging: Option<Balancer>,
    pub(crate) path: DeployPath,
    pub(crate) engine: Engine,
    /// Where the engine's stand-in listens.
    pub(crate) engine_endpoint: String,
    pub(crate) config: greenlight::Config,
    pub(crate) deploy_on_push: Arc<FunctionHost>,
    pub(crate) alarm_rollback: Arc<FunctionHost>,
    pub(crate) hosts: Vec<Arc<FunctionHost>>,
    pub(crate) behaviors: Arc<Mutex<HashMap<String, Behavior>>>,
    pub(crate) pending: Arc<AtomicUsize>,
    pub(crate) queue_url: String,
    pub(crate) notifications: Arc<Mutex<Vec<Heard>>>,
    pub(crate) _moto: tokio::process::Child,
    pub(crate) moto_endpoint: String,
    pub(crate) production_url: String,
    /// (seconds on the timeline, production percent on green), every 50 ms.
    pub(crate) traffic: Arc<Mutex<Vec<(f64, u8)>>>,
    /// `greenlight status`'s reader, aimed at this stack's engine and CloudWatch.
    pub(crate) status: crate::operate::StatusReader,
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

impl Stack {
    pub(crate) async fn start(
        options: &Options,
        timeline: Timeline,
        path: DeployPath,
        fixture: Fixture,
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
            if fixture == Fixture::Promotion {
                crate::local::seed_named_service(&sdk, "web-staging", &image_uri(&initial)).await?;
            }
        }
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        let sns = aws_sdk_sns::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let topic = crate::local::topic(&sdk, "greenlight").await?;
        greenlight_cli::ledger_table::create(&sdk, LEDGER_TABLE).await?;
        aws_sdk_scheduler::Client::new(&sdk)
            .create_schedule_group()
            .name(SCHEDULE_GROUP)
            .send()
            .await
            .map_err(|e| format!("CreateScheduleGroup: {e:?}"))?;
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
        let alarms: &[&str] = match fixture {
            Fixture::Single => &[ALARM],
            Fixture::Promotion => &[ALARM, STAGING_ALARM],
        };
        for alarm in alarms {
            cloudwatch(
                &moto_endpoint,
                &[
                    ("Action", "PutMetricAlarm"),
                    ("AlarmName", alarm),
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
        }
        timeline.say(format!(
            "seeded: ECR {REPOSITORY}:v1.0.0, SNS topic with an SQS inbox, alarm {ALARM}"
        ));

        // The load balancer as ELBv2 describes it (in the emulator): two target
        // groups, production and test listeners, and a rule on each for ECS-native.
        let elb_seed = seed_load_balancer(&sdk, &moto_endpoint, "web").await?;
        let staging_seed = match fixture {
            Fixture::Single => None,
            Fixture::Promotion => Some(seed_load_balancer(&sdk, &moto_endpoint, "staging").await?),
        };
        // CloudWatch for the analysis: the stand-in speaks the SDK's rpc-v2-cbor.
        let metrics = CloudWatchStandIn::new();
        let metrics_addr = greenlight_standins::http::serve(metrics.handler())
            .await
            .map_err(|e| e.to_string())?;
        timeline.say(format!(
            "ELBv2 load balancer, target groups and listener rules in the emulator; CloudWatch stand-in on http://{metrics_addr}"
        ));

        // The load balancer in front of the sample app.
        let Balancer {
            lb,
            production,
            test,
        } = serve_balancer(&sdk, &elb_seed, &metrics, &behaviors, &image_uri(&initial)).await?;
        let staging = match &staging_seed {
            Some(seed) => {
                Some(serve_balancer(&sdk, seed, &metrics, &behaviors, &image_uri(&initial)).await?)
            }
            None => None,
        };
        let green_tasks = Arc::new(GreenTasks::new(sdk.clone(), behaviors.clone()));
        let router = Arc::new(Router {
            production: lb.clone(),
            staging: staging.as_ref().map(|b| b.lb.clone()),
            tasks: green_tasks.clone(),
        });
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
        // Where the functions reach ECS when it is not the engine's own stand-in.
        let mut ecs_env: Option<(String, String)> = None;
        let (engine, engine_env) = match path {
            DeployPath::Codedeploy => {
                let codedeploy = CodeDeployStandIn::new(
                    router.clone(),
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
                // Green's tasks are played by an ECS stand-in here too (the emulator's
                // tasks cannot exit with a code); every other ECS call passes through.
                let tasks_standin = EcsStandIn::new(
                    moto_endpoint.clone(),
                    Arc::new(greenlight_standins::codedeploy::NoTraffic),
                    Arc::new(|name: String, _| {
                        Box::pin(async move { Err(format!("no ECS-native hook {name} here")) })
                    }),
                    Arc::new(|_| {}),
                    Arc::new(|_| {}),
                    greenlight_standins::ecs::Timing::default(),
                );
                let tasks_addr = greenlight_standins::http::serve(tasks_standin.handler())
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = green_tasks.ecs.set(tasks_standin);
                ecs_env = Some((
                    "AWS_ENDPOINT_URL_ECS".to_string(),
                    format!("http://{tasks_addr}"),
                ));
                seed_codedeploy(&addr.to_string(), &elb_seed).await?;
                if let Some(seed) = &staging_seed {
                    let (endpoint, group) = (addr.to_string(), "staging-dg");
                    seed_codedeploy_group(&endpoint, seed, group, "web-staging", STAGING_ALARM)
                        .await?;
                }
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
                    router.clone(),
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
                let _ = green_tasks.ecs.set(ecs_standin.clone());
                seed_ecs_native(&endpoint, &image_uri(&initial), &elb_seed, "web").await?;
                if let Some(seed) = &staging_seed {
                    seed_ecs_native(&endpoint, &image_uri(&initial), seed, "web-staging").await?;
                }
                (
                    Engine::Ecs(ecs_standin),
                    ("AWS_ENDPOINT_URL_ECS".to_string(), endpoint),
                )
            }
        };

        let config_text = document(
            fixture,
            path,
            (test, production),
            staging.as_ref().map(|b| (b.test, b.production)),
        );
        let common: Vec<(String, String)> = vec![
            ("GREENLIGHT_CONFIG".into(), config_text.clone()),
            ("GREENLIGHT_TOPIC_ARN".into(), topic.clone()),
            ("GREENLIGHT_LEDGER_TABLE".into(), LEDGER_TABLE.into()),
            ("GREENLIGHT_SCHEDULE_GROUP".into(), SCHEDULE_GROUP.into()),
            (
                "GREENLIGHT_SCHEDULER_ROLE_ARN".into(),
                format!("arn:aws:iam::{ACCOUNT}:role/greenlight-scheduler"),
            ),
            (
                "GREENLIGHT_EVENT_BUS_ARN".into(),
                format!("arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"),
            ),
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
        ]
        .into_iter()
        .chain(ecs_env.clone())
        .collect();
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
        let notifications: Arc<Mutex<Vec<Heard>>> = Arc::default();
        let engine_sdk = sdk.to_builder().endpoint_url(&engine_env.1).build();
        let tasks_sdk = match &ecs_env {
            Some((_, url)) => sdk.to_builder().endpoint_url(url).build(),
            None => engine_sdk.clone(),
        };
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
            // Green's tasks from the stand-in that plays them, its lines from the emulator.
            capture: greenlight::evidence::Capture {
                ecs: greenlight::aws::Ecs::from_conf(&tasks_sdk),
                ..greenlight::evidence::Capture::from_conf(&sdk)
            },
            redact: Vec::new(),
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
            staging,
            traffic: Arc::default(),
            status,
        };
        stack.poll_notifications();
        Ok(stack)
    }
}

/// The EventBridge rule for the engine's state-change events: deploy-on-push,
/// invoked asynchronously.
pub(crate) fn state_changes_to(
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
