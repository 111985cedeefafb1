//! Scale and throttling, through the real SDK: the CodeDeploy stand-in (JSON 1.1,
//! paginated lists, a shuffled list order, seeded accounts of hundreds of
//! applications) behind a meter that counts every call and can throttle; ECS and
//! SNS in the moto emulator, behind a metering proxy.
//!
//! What is asserted is the number of AWS calls and which deployments were stopped
//! or started, never wall time (that is `greenlight bench --scale`'s job).

// The hook's futures nest deeply (a smoke run inside a guarded decision).
#![recursion_limit = "256"]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alarm_rollback::Rollback;
use aws_config::SdkConfig;
use deploy_on_push::DeployOnPush;
use greenlight::aws::sns::{Publication, Publisher};
use greenlight::aws::{AwsError, CodeDeploy, Ecr, Ecs, Pipelines, Sns};
use greenlight::deploy::Backends;
use greenlight::notify::Notifier;
use greenlight::{Config, LifecycleEvent};
use greenlight_standins::codedeploy::{CodeDeployStandIn, ListOrder, NoTraffic, Timing};
use greenlight_standins::http::serve;
use greenlight_standins::meter::{proxy, Meter};
use greenlight_tests::aws::{sdk_config, topic_with_queue};
use greenlight_tests::http::{Reply, TestServer};
use greenlight_tests::{moto, unique};
use lifecycle_hook::{CodeDeployContract, Hook};
use serde_json::{json, Value};
use tokio::time::Instant;

/// Records publications instead of sending them.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Publication>>>);

impl Publisher for Recorder {
    async fn publish(&self, publication: &Publication) -> Result<String, AwsError> {
        self.0.lock().unwrap().push(publication.clone());
        Ok("msg-1".into())
    }
}

/// A metered CodeDeploy stand-in; hook invocations are recorded, not run.
struct Stand {
    codedeploy: CodeDeployStandIn,
    meter: Meter,
    url: String,
    hook_payloads: Arc<Mutex<Vec<Value>>>,
}

async fn stand() -> Stand {
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
            hook_timeout: Duration::from_secs(120),
            ..Timing::default()
        },
    );
    let meter = Meter::new();
    let addr = serve(meter.wrap(codedeploy.handler())).await.unwrap();
    Stand {
        codedeploy,
        meter,
        url: format!("http://{addr}"),
        hook_payloads,
    }
}

/// A CodeDeploy adapter aimed at the stand-in, configured like the functions'.
fn codedeploy_client(sdk: &SdkConfig, url: &str) -> CodeDeploy {
    let conf = aws_sdk_codedeploy::config::Builder::from(sdk)
        .endpoint_url(url)
        .build();
    CodeDeploy::new(aws_sdk_codedeploy::Client::from_conf(conf))
}

fn group(application: &str, name: &str, alarms: &[&str]) -> Value {
    let alarms: Vec<Value> = alarms.iter().map(|a| json!({"name": a})).collect();
    json!({"applicationName": application, "deploymentGroupName": name,
           "serviceRoleArn": "arn:aws:iam::123456789012:role/cd",
           "alarmConfiguration": {"enabled": !alarms.is_empty(), "alarms": alarms}})
}

fn marker(service: &str, digest: &str) -> String {
    deploy_on_push::plan::description(service, "web-app", "v0", digest)
}

fn digest(n: u64) -> String {
    format!("sha256:{n:064x}")
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `count` past deployments, one a minute going back from an hour ago.
fn seed_history(stand: &Stand, application: &str, group: &str, service: &str, count: u64) {
    let start = now_secs() - 3600.0;
    for i in 0..count {
        let status = ["Succeeded", "Failed", "Stopped"][(i % 3) as usize];
        stand.codedeploy.seed_deployment(
            application,
            group,
            status,
            start - 60.0 * i as f64,
            &marker(service, &digest(1000 + i)),
        );
    }
}

fn alarm(name: &str) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../events/alarm-eventbridge.json")).unwrap();
    event["detail"]["alarmName"] = name.into();
    event
}

const ALARM_CONFIG: &str = r#"
services:
  - { name: web, repository: web-app, cluster: prod, service: web, container: web,
      codedeploy: { application: shop, deployment_group: web-dg }, alarms: [shop-5xx] }
  - { name: api, repository: api, cluster: prod, service: api, container: api,
      codedeploy: { application: shop, deployment_group: api-dg } }
  - { name: worker, repository: worker, cluster: prod, service: worker, container: worker,
      codedeploy: { application: jobs, deployment_group: worker-dg } }
"#;

#[tokio::test]
async fn an_alarm_in_an_account_of_hundreds_of_applications_makes_a_bounded_number_of_calls() {
    let stand = stand().await;
    stand.codedeploy.set_list_order(ListOrder::Shuffled(7));
    // 400 applications of 3 groups each that Greenlight does not manage; one of them
    // names the same alarm and has a deployment in flight: CodeDeploy's business.
    for a in 0..400 {
        let application = format!("team-{a:03}");
        stand.codedeploy.seed_application(&application);
        for g in 0..3 {
            let alarms: &[&str] = if a == 17 && g == 0 {
                &["shop-5xx"]
            } else {
                &[]
            };
            stand
                .codedeploy
                .seed_group(group(&application, &format!("group-{g}"), alarms));
        }
    }
    let foreign = stand.codedeploy.seed_deployment(
        "team-017",
        "group-0",
        "InProgress",
        now_secs() - 30.0,
        "not Greenlight's",
    );
    // The configured groups: web-dg is guarded by the config, api-dg by its own
    // alarmConfiguration, worker-dg by neither. 300 past deployments each, one in flight.
    for application in ["shop", "jobs"] {
        stand.codedeploy.seed_application(application);
    }
    stand
        .codedeploy
        .seed_group(group("shop", "web-dg", &["unrelated"]));
    stand
        .codedeploy
        .seed_group(group("shop", "api-dg", &["shop-5xx"]));
    stand.codedeploy.seed_group(group("jobs", "worker-dg", &[]));
    let mut in_flight = Vec::new();
    for (application, group, service) in [
        ("shop", "web-dg", "web"),
        ("shop", "api-dg", "api"),
        ("jobs", "worker-dg", "worker"),
    ] {
        seed_history(&stand, application, group, service, 300);
        in_flight.push(stand.codedeploy.seed_deployment(
            application,
            group,
            "InProgress",
            now_secs() - 60.0,
            &marker(service, &digest(1)),
        ));
    }
    let sdk = sdk_config(&moto().endpoint).await;
    let recorder = Recorder::default();
    let rollback = Rollback {
        config: Config::parse(ALARM_CONFIG).unwrap().into(),
        backends: Backends {
            codedeploy: codedeploy_client(&sdk, &stand.url),
            ecs: Ecs::from_conf(&sdk),
            pipelines: Pipelines::from_conf(&sdk),
            hook_pattern: None,
        },
        notifier: Notifier::new(recorder.clone(), Some("arn:aws:sns:us-east-1:1:t".into())),
        ledger: None,
    };

    let answer = rollback.handle(alarm("shop-5xx")).await.unwrap();

    let calls = stand.meter.counts();
    assert!(
        stand.meter.total() <= 12,
        "calls for one alarm must not grow with the account: {calls:?}"
    );
    assert_eq!(calls.get("CodeDeploy.ListApplications"), None, "{calls:?}");
    assert_eq!(
        calls.get("CodeDeploy.ListDeploymentGroups"),
        None,
        "{calls:?}"
    );
    assert_eq!(
        calls["CodeDeploy.BatchGetDeploymentGroups"], 2,
        "one per configured application"
    );
    assert_eq!(
        calls["CodeDeploy.StopDeployment"], 2,
        "web-dg and api-dg: {answer}"
    );
    let status = |id: &str| stand.codedeploy.status(id).unwrap();
    assert_eq!(
        status(&in_flight[0]),
        "Stopped",
        "web-dg: named by the config"
    );
    assert_eq!(
        status(&in_flight[1]),
        "Stopped",
        "api-dg: named by its own alarm configuration"
    );
    assert_eq!(
        status(&in_flight[2]),
        "InProgress",
        "worker-dg is not guarded"
    );
    assert_eq!(status(&foreign), "InProgress", "not a configured group");
    let mut services: Vec<&str> = answer[0]["stopped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["group"]["service"].as_str().unwrap())
        .collect();
    services.sort();
    assert_eq!(services, ["api", "web"]);
    assert_eq!(
        recorder.0.lock().unwrap().len(),
        2,
        "one notification per stop"
    );

    // An alarm that guards nothing costs the configuration reads only.
    stand.meter.reset();
    let answer = rollback.handle(alarm("nobody-cares")).await.unwrap();
    assert_eq!(answer[0]["acted"], false);
    assert_eq!(stand.meter.total(), 2, "{:?}", stand.meter.counts());
}

/// A cluster and service in the emulator running `web-app:v0`; returns the cluster.
async fn ecs_service(sdk: &SdkConfig) -> String {
    let ecs = aws_sdk_ecs::Client::new(sdk);
    let (cluster, task_definition) = greenlight_tests::aws::cluster_and_web_task_definition(
        &ecs,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app:v0",
    )
    .await;
    ecs.create_service()
        .cluster(&cluster)
        .service_name("web")
        .task_definition(task_definition)
        .desired_count(1)
        .send()
        .await
        .unwrap();
    cluster
}

fn push(tag: &str, digest: &str, time: &str) -> Value {
    json!({
        "version": "0", "id": unique("evt"), "detail-type": "ECR Image Action", "source": "aws.ecr",
        "account": "123456789012", "time": time, "region": "us-east-1", "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": "web-app", "image-digest": digest,
                   "action-type": "PUSH", "image-tag": tag}
    })
}

#[tokio::test]
async fn a_push_into_a_group_with_a_long_shuffled_history_is_exactly_once_in_bounded_calls() {
    let stand = stand().await;
    stand.codedeploy.set_list_order(ListOrder::Shuffled(42));
    stand.codedeploy.seed_application("web-app");
    stand.codedeploy.seed_group(group("web-app", "web-dg", &[]));
    seed_history(&stand, "web-app", "web-dg", "web", 600);
    // The pushed digest failed once, long ago: a deliberate retry may deploy it again.
    let pushed = digest(4242);
    stand.codedeploy.seed_deployment(
        "web-app",
        "web-dg",
        "Failed",
        now_secs() - 86_400.0,
        &marker("web", &pushed),
    );
    let moto_meter = Meter::new();
    let moto_addr = serve(moto_meter.wrap(proxy(moto().endpoint.clone())))
        .await
        .unwrap();
    let sdk = sdk_config(&format!("http://{moto_addr}")).await;
    let cluster = ecs_service(&sdk).await;
    let (topic, _queue) = topic_with_queue(&sdk).await;
    let config = Config::parse(&format!(
        "services:\n  - {{ name: web, repository: web-app, tags: [\"v*\"], cluster: {cluster}, service: web, container: web,\n      codedeploy: {{ application: web-app, deployment_group: web-dg, hooks: [] }} }}\n"
    ))
    .unwrap();
    let handler = DeployOnPush {
        config: config.into(),
        backends: Backends {
            codedeploy: codedeploy_client(&sdk, &stand.url),
            ecs: Ecs::from_conf(&sdk),
            pipelines: Pipelines::from_conf(&sdk),
            hook_pattern: None,
        },
        ecr: Ecr::from_conf(&sdk),
        capture: greenlight::evidence::Capture::from_conf(&sdk),
        notifier: Notifier::new(Sns::from_conf(&sdk), Some(topic)),
        trigger: greenlight::ledger::Trigger::Push,
        ledger: None,
        scheduler: None,
    };
    let time = greenlight_standins::rfc3339_now();
    let event = push("v2.0.0", &pushed, &time);
    stand.meter.reset();
    moto_meter.reset();

    let first = handler.handle(event.clone()).await.unwrap();
    let first_calls = stand.meter.total() + moto_meter.total();
    let first_breakdown = (stand.meter.counts(), moto_meter.counts());
    let redelivered = handler.handle(event).await.unwrap();
    let second_tag = handler
        .handle(push("v2.0.0-rc1", &pushed, &time))
        .await
        .unwrap();

    assert_eq!(first[0]["outcome"], "started", "{first}");
    assert_eq!(redelivered[0]["outcome"], "duplicate", "{redelivered}");
    assert_eq!(second_tag[0]["outcome"], "duplicate", "{second_tag}");
    assert_eq!(
        stand.meter.count("CodeDeploy.CreateDeployment"),
        1,
        "exactly one deployment for three deliveries"
    );
    assert!(
        first_calls <= 15,
        "a push costs at most 15 AWS calls whatever the history: {first_breakdown:?}"
    );
    assert!(
        stand.meter.count("CodeDeploy.BatchGetDeployments") <= 3,
        "only the slice the decision needs is read: {:?}",
        stand.meter.counts()
    );
}

fn hook_config(base_url: &str) -> Config {
    Config::parse(&format!(
        r#"
services:
  - name: web
    repository: web-app
    cluster: prod
    service: web
    container: web
    codedeploy: {{ application: web-app, deployment_group: web-dg }}
    smoke:
      base_url: {base_url}
      checks:
        - {{ name: health, path: /health, expect_status: 200 }}
"#
    ))
    .unwrap()
}

/// A deployment of the stand-in waiting at AfterAllowTestTraffic; returns its hook payload.
async fn waiting_hook(stand: &Stand) -> Value {
    stand.codedeploy.seed_application("web-app");
    stand.codedeploy.seed_group(group("web-app", "web-dg", &[]));
    let appspec = json!({"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {
        "TaskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2",
        "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 8080}}}}],
        "Hooks": [{"AfterAllowTestTraffic": "hook"}]});
    let sdk = sdk_config(&stand.url).await;
    let client = aws_sdk_codedeploy::Client::new(&sdk);
    client
        .create_deployment()
        .application_name("web-app")
        .deployment_group_name("web-dg")
        .revision(
            aws_sdk_codedeploy::types::RevisionLocation::builder()
                .revision_type(aws_sdk_codedeploy::types::RevisionLocationType::AppSpecContent)
                .app_spec_content(
                    aws_sdk_codedeploy::types::AppSpecContent::builder()
                        .content(appspec.to_string())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    for _ in 0..500 {
        if let Some(payload) = stand.hook_payloads.lock().unwrap().first().cloned() {
            return payload;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the stand-in never invoked the hook");
}

type StandHook =
    Hook<CodeDeploy, greenlight::aws::LoadBalancers, Recorder, CodeDeployContract<CodeDeploy>>;

async fn hook_against(stand: &Stand, server: &TestServer) -> Arc<StandHook> {
    let sdk = sdk_config(&moto().endpoint).await;
    let codedeploy = codedeploy_client(&sdk, &stand.url);
    Arc::new(Hook {
        config: Ok(hook_config(&server.url()).into()),
        hook_event: Some(LifecycleEvent::AfterAllowTestTraffic),
        deployments: codedeploy.clone(),
        listeners: greenlight::aws::LoadBalancers::from_conf(&sdk),
        notifier: Notifier::new(Recorder::default(), None),
        contract: CodeDeployContract::new(codedeploy),
        services: greenlight::aws::Ecs::from_conf(&sdk),
        http: greenlight::smoke::HttpClients::new().unwrap(),
        report_margin: Duration::from_secs(2),
        gate: lifecycle_hook::Gate::from_conf(&sdk),
        secrets: greenlight::aws::secrets::Secrets::from_conf(&sdk),
    })
}

#[tokio::test]
async fn a_hook_throttled_on_every_call_for_a_while_still_answers_once_before_its_deadline() {
    let stand = stand().await;
    let server = TestServer::start(|_| Reply::new(200, "ok")).await;
    let payload = waiting_hook(&stand).await;
    let deployment = payload["DeploymentId"].as_str().unwrap().to_string();
    let hook = hook_against(&stand, &server).await;
    stand.meter.reset();
    // Every CodeDeploy call is throttled for the next 1.5 s of an 8 s invocation.
    stand.meter.throttle_for(Duration::from_millis(1500));
    let deadline = Instant::now() + Duration::from_secs(8);

    let answer = hook.handle(payload, deadline).await.unwrap();

    assert!(Instant::now() < deadline, "answered before the deadline");
    assert_eq!(answer["status"], "Succeeded", "{answer}");
    assert_eq!(answer["reported"], "Reported", "{answer}");
    let throttled = stand.meter.throttled();
    assert!(
        throttled
            .get("CodeDeploy.GetDeployment")
            .copied()
            .unwrap_or(0)
            >= 1,
        "the reads were throttled and retried: {throttled:?}"
    );
    // The stand-in accepts one report per execution; the deployment goes on.
    for _ in 0..500 {
        if stand.codedeploy.status(&deployment).as_deref() == Some("Succeeded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        stand.codedeploy.status(&deployment).as_deref(),
        Some("Succeeded")
    );
    assert_eq!(server.requests(), 1, "smoke checks ran once");
}

#[tokio::test]
async fn a_report_throttled_past_the_deadline_is_an_error_naming_the_operation_in_time() {
    let stand = stand().await;
    let server = TestServer::start(|_| Reply::new(200, "ok")).await;
    let payload = waiting_hook(&stand).await;
    let hook = hook_against(&stand, &server).await;
    stand.meter.throttle_for(Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(4);

    let err = hook.handle(payload, deadline).await.unwrap_err();

    assert!(Instant::now() <= deadline, "gave up before the deadline");
    let message = err.to_string();
    assert!(
        message.contains("PutLifecycleEventHookExecutionStatus")
            && message.contains("ThrottlingException"),
        "{message}"
    );
    assert!(
        stand
            .meter
            .throttled()
            .get("CodeDeploy.PutLifecycleEventHookExecutionStatus")
            .copied()
            .unwrap_or(0)
            > 1,
        "the report was retried: {:?}",
        stand.meter.throttled()
    );
}
