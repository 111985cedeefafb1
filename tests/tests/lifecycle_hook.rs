//! The lifecycle hook end to end at the SDK layer: CodeDeploy is mocked with
//! aws-smithy-mocks (the emulator implements neither PutLifecycleEventHookExecutionStatus
//! nor GetDeploymentTarget, and its deployments never reach a lifecycle event);
//! smoke targets are real HTTP servers on 127.0.0.1; listener resolution uses the
//! emulator's ELBv2. Every case asserts exactly one status report with the right
//! ids and status.

// The hook's futures nest deeply (a smoke run inside a guarded decision).
#![recursion_limit = "256"]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentOutput;
use aws_sdk_codedeploy::operation::get_deployment_group::GetDeploymentGroupOutput;
use aws_sdk_codedeploy::operation::get_deployment_target::GetDeploymentTargetOutput;
use aws_sdk_codedeploy::operation::list_deployment_targets::ListDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::put_lifecycle_event_hook_execution_status::{
    PutLifecycleEventHookExecutionStatusError, PutLifecycleEventHookExecutionStatusOutput,
};
use aws_sdk_codedeploy::types::error::{
    InvalidLifecycleEventHookExecutionIdException, LifecycleEventAlreadyCompletedException,
};
use aws_sdk_codedeploy::types::{
    DeploymentGroupInfo, DeploymentInfo, DeploymentTarget, EcsTarget,
    LifecycleEvent as SdkLifecycleEvent, LifecycleEventStatus, LoadBalancerInfo,
    TargetGroupPairInfo, TrafficRoute,
};
use aws_sdk_codedeploy::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use greenlight::aws::elb::ListenerResolver;
use greenlight::aws::sns::{Publication, Publisher};
use greenlight::aws::{AwsError, CodeDeploy, LoadBalancers};
use greenlight::marker::DeploymentMarker;
use greenlight::notify::Notifier;
use greenlight::{Config, LifecycleEvent};
use greenlight_tests::http::{Reply, TestServer};
use lifecycle_hook::{CodeDeployContract, Hook};
use serde_json::{json, Value};
use tokio::time::Instant;

const DEPLOYMENT: &str = "d-HOOKTEST1";
const EXECUTION: &str = "exec-123";

/// Records publications instead of sending them.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Publication>>>);

impl Publisher for Recorder {
    async fn publish(&self, publication: &Publication) -> Result<String, AwsError> {
        self.0.lock().unwrap().push(publication.clone());
        Ok("msg-1".into())
    }
}

/// A resolver that must never be reached, or that panics on purpose.
struct PanickingResolver;

impl ListenerResolver for PanickingResolver {
    async fn listener_url(&self, _listener_arn: &str) -> Result<String, AwsError> {
        panic!("resolver exploded");
    }
}

fn config(base_url: &str, extra_check_fields: &str) -> Config {
    Config::parse(&format!(
        r#"
notifications: {{ topic_arn: "arn:aws:sns:us-east-1:123456789012:greenlight" }}
services:
  - name: web
    repository: web-app
    cluster: prod
    service: web
    container: web
    codedeploy: {{ application: web-app, deployment_group: web-dg }}
    smoke:
      {base_url}
      checks:
        - {{ name: health, path: /health, expect_status: 200, body_contains: ok {extra_check_fields} }}
        - {{ name: version, path: /version, json_equals: {{ /version: "${{image_tag}}" }} {extra_check_fields} }}
"#
    ))
    .expect("test config is valid")
}

fn get_deployment(group: &'static str) -> Rule {
    mock!(Client::get_deployment)
        .match_requests(|r| r.deployment_id() == Some(DEPLOYMENT))
        .then_output(move || {
            let marker = DeploymentMarker {
                service: Some("web".into()),
                image_tag: Some("v2".into()),
                image_digest: Some("sha256:feed".into()),
            };
            GetDeploymentOutput::builder()
                .deployment_info(
                    DeploymentInfo::builder()
                        .deployment_id(DEPLOYMENT)
                        .application_name("web-app")
                        .deployment_group_name(group)
                        .description(format!("web-app:v2 {}", marker.render()))
                        .build(),
                )
                .build()
        })
}

fn get_group(test_listener: String) -> Rule {
    mock!(Client::get_deployment_group).then_output(move || {
        GetDeploymentGroupOutput::builder()
            .deployment_group_info(
                DeploymentGroupInfo::builder()
                    .application_name("web-app")
                    .deployment_group_name("web-dg")
                    .load_balancer_info(
                        LoadBalancerInfo::builder()
                            .target_group_pair_info_list(
                                TargetGroupPairInfo::builder()
                                    .test_traffic_route(
                                        TrafficRoute::builder()
                                            .listener_arns(test_listener.clone())
                                            .build(),
                                    )
                                    .prod_traffic_route(
                                        TrafficRoute::builder().listener_arns("arn:prod").build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()
    })
}

fn put_status(status: LifecycleEventStatus) -> Rule {
    mock!(Client::put_lifecycle_event_hook_execution_status)
        .match_requests(move |r| {
            r.deployment_id() == Some(DEPLOYMENT)
                && r.lifecycle_event_hook_execution_id() == Some(EXECUTION)
                && r.status() == Some(&status)
        })
        .then_output(|| PutLifecycleEventHookExecutionStatusOutput::builder().build())
}

fn event() -> Value {
    json!({"DeploymentId": DEPLOYMENT, "LifecycleEventHookExecutionId": EXECUTION})
}

/// SDK configuration for clients these tests never call.
fn unused_sdk() -> greenlight::aws::SdkConfig {
    greenlight::aws::SdkConfig::builder()
        .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
        .region(aws_sdk_ecs::config::Region::new("us-east-1"))
        .build()
}

type TestHook<L> = Hook<CodeDeploy, L, Recorder, CodeDeployContract<CodeDeploy>>;

fn hook<L: ListenerResolver>(
    config: Result<Config, greenlight::config::ConfigError>,
    event: Option<LifecycleEvent>,
    rules: &[&Rule],
    listeners: L,
    recorder: &Recorder,
) -> Arc<TestHook<L>> {
    let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, rules);
    Arc::new(Hook {
        config: config.map(Into::into).map_err(Arc::new),
        hook_event: event,
        deployments: CodeDeploy::new(client.clone()),
        listeners,
        notifier: Notifier::new(
            recorder.clone(),
            Some("arn:aws:sns:us-east-1:123456789012:greenlight".into()),
        ),
        contract: CodeDeployContract::new(CodeDeploy::new(client)),
        // CodeDeploy hooks never read ECS.
        services: greenlight::aws::Ecs::new(aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::Config::builder()
                .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
                .region(aws_sdk_ecs::config::Region::new("us-east-1"))
                .build(),
        )),
        http: greenlight::smoke::HttpClients::new().unwrap(),
        report_margin: Duration::from_secs(2),
        // No analysis: configured in these tests; nothing is called through it.
        gate: lifecycle_hook::Gate::from_conf(&unused_sdk()),
        secrets: greenlight::aws::secrets::Secrets::from_conf(&unused_sdk()),
    })
}

/// A hook whose smoke checks aim at `server` (as `smoke.base_url`).
fn hook_for(
    server: &TestServer,
    extra_check_fields: &str,
    event: LifecycleEvent,
    rules: &[&Rule],
    recorder: &Recorder,
) -> Arc<TestHook<PanickingResolver>> {
    let base = format!("base_url: {}", server.url());
    hook(
        Ok(config(&base, extra_check_fields)),
        Some(event),
        rules,
        PanickingResolver,
        recorder,
    )
}

fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn healthy(
    version: &'static str,
) -> impl Fn(&greenlight_tests::http::Request) -> Reply + Send + Sync + 'static {
    move |r| match r.path.as_str() {
        "/health" => Reply::new(200, "ok"),
        "/version" => Reply::new(200, format!(r#"{{"version":"{version}"}}"#)),
        _ => Reply::new(404, ""),
    }
}

fn published_events(recorder: &Recorder) -> Vec<String> {
    recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p.attributes
                .iter()
                .filter(|(k, _)| k == "event")
                .map(|(_, v)| v.clone())
        })
        .collect()
}

#[tokio::test]
async fn green_that_passes_its_smoke_checks_is_answered_succeeded_once() {
    let server = TestServer::start(healthy("v2")).await;
    let put = put_status(LifecycleEventStatus::Succeeded);
    let recorder = Recorder::default();
    let hook = hook_for(
        &server,
        "",
        LifecycleEvent::AfterAllowTestTraffic,
        &[&get_deployment("web-dg"), &put],
        &recorder,
    );

    let answer = hook
        .handle(event(), far_deadline())
        .await
        .expect("reported");

    assert_eq!(put.num_calls(), 1);
    assert_eq!(answer["status"], "Succeeded");
    assert_eq!(
        server.requests(),
        2,
        "both checks ran against the configured base_url"
    );
    assert_eq!(published_events(&recorder), ["hook_passed"]);
}

#[tokio::test]
async fn green_that_serves_the_wrong_version_is_answered_failed_once() {
    let server = TestServer::start(healthy("v1")).await;
    let put = put_status(LifecycleEventStatus::Failed);
    let recorder = Recorder::default();
    let hook = hook_for(
        &server,
        ", attempts: 2, backoff_ms: 10",
        LifecycleEvent::AfterAllowTestTraffic,
        &[&get_deployment("web-dg"), &put],
        &recorder,
    );

    let answer = hook
        .handle(event(), far_deadline())
        .await
        .expect("reported");

    assert_eq!(put.num_calls(), 1);
    assert_eq!(answer["status"], "Failed");
    let reason = answer["reason"].as_str().unwrap();
    assert!(
        reason.contains("version") && reason.contains("expected \"v2\", got \"v1\""),
        "{reason}"
    );
    assert_eq!(published_events(&recorder), ["hook_failed"]);
    let message: Value = serde_json::from_str(&recorder.0.lock().unwrap()[0].message).unwrap();
    let chat: Value = serde_json::from_str(message["default"].as_str().unwrap()).unwrap();
    assert_eq!(
        chat["metadata"]["additionalContext"]["smoke"]["passed"], false,
        "full report attached for machines"
    );
    assert!(message["email"]
        .as_str()
        .unwrap()
        .contains("expected \"v2\", got \"v1\""));
}

#[tokio::test]
async fn a_group_greenlight_does_not_know_is_failed_closed_without_smoke_traffic() {
    let server = TestServer::start(healthy("v2")).await;
    let put = put_status(LifecycleEventStatus::Failed);
    let recorder = Recorder::default();
    let hook = hook_for(
        &server,
        "",
        LifecycleEvent::AfterAllowTestTraffic,
        &[&get_deployment("other-dg"), &put],
        &recorder,
    );

    let answer = hook
        .handle(event(), far_deadline())
        .await
        .expect("reported");

    assert_eq!(put.num_calls(), 1);
    assert!(answer["reason"]
        .as_str()
        .unwrap()
        .contains("web-app/other-dg is not in the Greenlight configuration"));
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn a_panic_while_deciding_is_answered_failed_once() {
    let put = put_status(LifecycleEventStatus::Failed);
    let recorder = Recorder::default();
    // No base_url: the hook resolves the test listener, and this resolver panics.
    let hook = hook(
        Ok(config("", "")),
        Some(LifecycleEvent::AfterAllowTestTraffic),
        &[
            &get_deployment("web-dg"),
            &get_group("arn:test".into()),
            &put,
        ],
        PanickingResolver,
        &recorder,
    );

    let answer = hook
        .handle(event(), far_deadline())
        .await
        .expect("reported despite the panic");

    assert_eq!(put.num_calls(), 1);
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("panic: resolver exploded"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_hanging_target_with_the_deadline_2s_away_is_answered_failed_in_time() {
    let server = TestServer::start(|_| Reply::hang()).await;
    let put = put_status(LifecycleEventStatus::Failed);
    let recorder = Recorder::default();
    let hook = hook_for(
        &server,
        ", timeout_ms: 60000, attempts: 3",
        LifecycleEvent::AfterAllowTestTraffic,
        &[&get_deployment("web-dg"), &put],
        &recorder,
    );
    let started = Instant::now();

    let answer = hook
        .handle(event(), started + Duration::from_secs(2))
        .await
        .expect("reported");

    assert_eq!(put.num_calls(), 1);
    assert_eq!(answer["status"], "Failed");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_execution_already_answered_is_done_not_an_error() {
    let server = TestServer::start(healthy("v2")).await;
    let put = mock!(Client::put_lifecycle_event_hook_execution_status).then_error(|| {
        PutLifecycleEventHookExecutionStatusError::LifecycleEventAlreadyCompletedException(
            LifecycleEventAlreadyCompletedException::builder()
                .message("already completed")
                .build(),
        )
    });
    let recorder = Recorder::default();
    let hook = hook_for(
        &server,
        "",
        LifecycleEvent::AfterAllowTestTraffic,
        &[&get_deployment("web-dg"), &put],
        &recorder,
    );

    let answer = hook
        .handle(event(), far_deadline())
        .await
        .expect("already completed is success");

    assert_eq!(put.num_calls(), 1, "not retried");
    assert_eq!(answer["reported"], "AlreadyCompleted");
}

#[tokio::test]
async fn a_report_codedeploy_refuses_for_good_is_returned_as_an_error_without_retries() {
    let server = TestServer::start(healthy("v2")).await;
    let put = mock!(Client::put_lifecycle_event_hook_execution_status).then_error(|| {
        PutLifecycleEventHookExecutionStatusError::InvalidLifecycleEventHookExecutionIdException(
            InvalidLifecycleEventHookExecutionIdException::builder()
                .message("bad id")
                .build(),
        )
    });
    let recorder = Recorder::default();
    let hook = hook_for(
        &server,
        "",
        LifecycleEvent::AfterAllowTestTraffic,
        &[&get_deployment("web-dg"), &put],
        &recorder,
    );

    let err = hook.handle(event(), far_deadline()).await.unwrap_err();

    // An invalid execution id stays invalid: only throttling and 5xx are retried
    // (tests/tests/scale.rs covers a throttled report).
    assert_eq!(put.num_calls(), 1);
    let message = err.to_string();
    assert!(
        message.contains(EXECUTION) && message.contains("Succeeded"),
        "{message}"
    );
}

#[tokio::test]
async fn an_invalid_configuration_is_answered_failed_with_the_reason() {
    let put = put_status(LifecycleEventStatus::Failed);
    let recorder = Recorder::default();
    let broken = Config::parse("services: []");
    let hook = hook(
        broken,
        Some(LifecycleEvent::AfterAllowTestTraffic),
        &[&put],
        PanickingResolver,
        &recorder,
    );

    let answer = hook
        .handle(event(), far_deadline())
        .await
        .expect("reported");

    assert_eq!(put.num_calls(), 1);
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("services: must list at least one service"),
        "{answer}"
    );
}

#[tokio::test]
async fn after_install_does_not_smoke_blue_by_default() {
    let server = TestServer::start(healthy("v1")).await;
    let put = put_status(LifecycleEventStatus::Succeeded);
    let recorder = Recorder::default();
    let hook = hook_for(
        &server,
        "",
        LifecycleEvent::AfterInstall,
        &[&get_deployment("web-dg"), &put],
        &recorder,
    );

    let answer = hook
        .handle(event(), far_deadline())
        .await
        .expect("reported");

    assert_eq!(put.num_calls(), 1);
    assert!(answer["reason"]
        .as_str()
        .unwrap()
        .contains("no smoke checks configured for AfterInstall"));
    assert_eq!(
        server.requests(),
        0,
        "the test listener still serves blue at AfterInstall"
    );
}

#[tokio::test]
async fn after_allow_traffic_aims_at_production() {
    let production = TestServer::start(healthy("v2")).await;
    let test = TestServer::start(healthy("v1")).await;
    let put = put_status(LifecycleEventStatus::Succeeded);
    let recorder = Recorder::default();
    let urls = format!(
        "base_url: {}\n      production_url: {}",
        test.url(),
        production.url()
    );
    let hook = hook(
        Ok(config(&urls, "")),
        Some(LifecycleEvent::AfterAllowTraffic),
        &[&get_deployment("web-dg"), &put],
        PanickingResolver,
        &recorder,
    );

    hook.handle(event(), far_deadline())
        .await
        .expect("reported");

    assert_eq!(put.num_calls(), 1);
    assert_eq!((production.requests(), test.requests()), (2, 0));
}

#[tokio::test]
async fn without_greenlight_hook_the_event_comes_from_the_deployment_target() {
    let server = TestServer::start(healthy("v2")).await;
    let targets = mock!(Client::list_deployment_targets).then_output(|| {
        ListDeploymentTargetsOutput::builder()
            .target_ids("prod:web")
            .build()
    });
    let target = mock!(Client::get_deployment_target).then_output(|| {
        let event = |name: &str, status| {
            SdkLifecycleEvent::builder()
                .lifecycle_event_name(name)
                .status(status)
                .build()
        };
        GetDeploymentTargetOutput::builder()
            .deployment_target(
                DeploymentTarget::builder()
                    .ecs_target(
                        EcsTarget::builder()
                            .lifecycle_events(event(
                                "AfterInstall",
                                LifecycleEventStatus::Succeeded,
                            ))
                            .lifecycle_events(event(
                                "AfterAllowTestTraffic",
                                LifecycleEventStatus::InProgress,
                            ))
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let put = put_status(LifecycleEventStatus::Succeeded);
    let recorder = Recorder::default();
    let base = format!("base_url: {}", server.url());
    let hook = hook(
        Ok(config(&base, "")),
        None,
        &[&get_deployment("web-dg"), &targets, &target, &put],
        PanickingResolver,
        &recorder,
    );

    hook.handle(event(), far_deadline())
        .await
        .expect("reported");

    assert_eq!(put.num_calls(), 1);
    assert_eq!(target.num_calls(), 1);
    assert_eq!(server.requests(), 2, "AfterAllowTestTraffic checks ran");
}

#[tokio::test]
async fn a_malformed_event_is_an_error_naming_the_field() {
    let put = put_status(LifecycleEventStatus::Failed);
    let recorder = Recorder::default();
    let hook = hook(
        Ok(config("", "")),
        Some(LifecycleEvent::AfterAllowTestTraffic),
        &[&put],
        PanickingResolver,
        &recorder,
    );

    let err = hook
        .handle(json!({"DeploymentId": DEPLOYMENT}), far_deadline())
        .await
        .unwrap_err();

    assert!(
        err.to_string()
            .contains("missing field `LifecycleEventHookExecutionId`"),
        "{err}"
    );
    assert_eq!(put.num_calls(), 0, "no ids, nothing to report to");
}

#[tokio::test]
async fn the_test_listener_is_resolved_through_elbv2() {
    let endpoint = &greenlight_tests::moto().endpoint;
    let sdk = greenlight_tests::aws::sdk_config(endpoint).await;
    let (listener_arn, dns) = greenlight_tests::aws::listener_on(&sdk, endpoint, 8080).await;
    let put = put_status(LifecycleEventStatus::Failed);
    let recorder = Recorder::default();
    let hook = hook(
        Ok(config("", ", timeout_ms: 300, attempts: 1")),
        Some(LifecycleEvent::AfterAllowTestTraffic),
        &[&get_deployment("web-dg"), &get_group(listener_arn), &put],
        LoadBalancers::from_conf(&sdk),
        &recorder,
    );

    let answer = hook
        .handle(event(), far_deadline())
        .await
        .expect("reported");

    // The emulator's DNS names are not reachable, so the checks fail; the point is where they aimed.
    assert_eq!(put.num_calls(), 1);
    let reason = answer["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("against http://{dns}:8080")),
        "{reason}"
    );
}
