//! The CodeDeploy stand-in on its own, through the real aws-sdk-codedeploy client:
//! one test per documented behaviour it claims.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_codedeploy::types::{
    AppSpecContent, LifecycleEventStatus, RevisionLocation, RevisionLocationType,
};
use aws_sdk_codedeploy::Client;
use greenlight_standins::codedeploy::{CodeDeployStandIn, Timing, Traffic};
use serde_json::{json, Value};

/// Records what the stand-in does to traffic.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
}

impl Traffic for Recorder {
    fn install_green(&self, _: &str, image: &str) {
        self.calls.lock().unwrap().push(format!("install {image}"));
    }
    fn test_to_green(&self, _: &str) {
        self.calls.lock().unwrap().push("test->green".into());
    }
    fn production_to_green(&self, _: &str, percent: u8) {
        self.calls.lock().unwrap().push(format!("prod {percent}%"));
    }
    fn promote(&self, _: &str) {
        self.calls.lock().unwrap().push("promote".into());
    }
    fn rollback(&self, _: &str) {
        self.calls.lock().unwrap().push("rollback".into());
    }
}

/// What a hook function does when invoked.
#[derive(Clone, Copy)]
enum HookAnswer {
    Succeed,
    Fail,
    Never,
}

struct Harness {
    client: Client,
    standin: CodeDeployStandIn,
    traffic: Arc<Recorder>,
    events: Arc<Mutex<Vec<Value>>>,
    log: Arc<Mutex<Vec<String>>>,
    invocations: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn harness(answer: HookAnswer, timing: Timing) -> Harness {
    let traffic = Arc::new(Recorder::default());
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let invocations: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let client_slot: Arc<Mutex<Option<Client>>> = Arc::default();
    let (inv, slot, ev, lg) = (
        invocations.clone(),
        client_slot.clone(),
        events.clone(),
        log.clone(),
    );
    let standin = CodeDeployStandIn::new(
        traffic.clone(),
        Arc::new(move |function: String, payload: Value| {
            inv.lock().unwrap().push((function, payload.clone()));
            let client = slot.lock().unwrap().clone();
            Box::pin(async move {
                let status = match answer {
                    HookAnswer::Succeed => LifecycleEventStatus::Succeeded,
                    HookAnswer::Fail => LifecycleEventStatus::Failed,
                    HookAnswer::Never => return,
                };
                if let Some(client) = client {
                    let _ = client
                        .put_lifecycle_event_hook_execution_status()
                        .deployment_id(payload["DeploymentId"].as_str().unwrap())
                        .lifecycle_event_hook_execution_id(
                            payload["LifecycleEventHookExecutionId"].as_str().unwrap(),
                        )
                        .status(status)
                        .send()
                        .await;
                }
            })
        }),
        Arc::new(move |event: Value| ev.lock().unwrap().push(event)),
        Arc::new(move |line: String| lg.lock().unwrap().push(line)),
        None,
        timing,
    );
    let addr = greenlight_standins::http::serve(standin.handler())
        .await
        .unwrap();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "t", "t", None, None, "test",
        ))
        .load()
        .await;
    let client = Client::new(&sdk);
    *client_slot.lock().unwrap() = Some(client.clone());
    client
        .create_application()
        .application_name("app")
        .send()
        .await
        .unwrap();
    client
        .create_deployment_group()
        .application_name("app")
        .deployment_group_name("dg")
        .service_role_arn("arn:aws:iam::123456789012:role/cd")
        .send()
        .await
        .unwrap();
    Harness {
        client,
        standin,
        traffic,
        events,
        log,
        invocations,
    }
}

fn fast() -> Timing {
    Timing {
        minute: Duration::from_millis(100),
        hook_timeout: Duration::from_millis(500),
        tick: Duration::from_millis(5),
    }
}

fn appspec(hooks: &[&str]) -> String {
    let hooks: Vec<Value> = hooks
        .iter()
        .map(|e| json!({ *e: format!("hook-{e}") }))
        .collect();
    json!({"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {
        "TaskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2",
        "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 8080}}}}], "Hooks": hooks})
    .to_string()
}

async fn create(
    h: &Harness,
    config: &str,
    hooks: &[&str],
) -> Result<String, aws_sdk_codedeploy::Error> {
    let revision = RevisionLocation::builder()
        .revision_type(RevisionLocationType::AppSpecContent)
        .app_spec_content(AppSpecContent::builder().content(appspec(hooks)).build())
        .build();
    h.client
        .create_deployment()
        .application_name("app")
        .deployment_group_name("dg")
        .deployment_config_name(config)
        .revision(revision)
        .send()
        .await
        .map(|o| o.deployment_id.unwrap())
        .map_err(Into::into)
}

async fn wait_end(h: &Harness, id: &str) -> String {
    for _ in 0..1000 {
        let status = h.standin.status(id).unwrap_or_default();
        if matches!(status.as_str(), "Succeeded" | "Failed" | "Stopped") {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{id} did not end");
}

#[tokio::test]
async fn one_active_deployment_per_group_with_awss_message() {
    let h = harness(HookAnswer::Never, fast()).await;
    let first = create(
        &h,
        "CodeDeployDefault.ECSAllAtOnce",
        &["AfterAllowTestTraffic"],
    )
    .await
    .unwrap();
    let err = create(&h, "CodeDeployDefault.ECSAllAtOnce", &[])
        .await
        .unwrap_err();
    match err {
        aws_sdk_codedeploy::Error::DeploymentLimitExceededException(e) => {
            assert_eq!(
                e.message(),
                Some(
                    format!("The Deployment Group 'dg' already has an active Deployment '{first}'")
                        .as_str()
                )
            );
        }
        other => panic!("expected DeploymentLimitExceededException, got {other:?}"),
    }
    assert!(first.starts_with("d-") && first.len() == 11, "{first}");
}

#[tokio::test]
async fn lifecycle_events_run_in_the_documented_order() {
    let h = harness(HookAnswer::Succeed, fast()).await;
    let id = create(
        &h,
        "CodeDeployDefault.ECSAllAtOnce",
        &[
            "BeforeInstall",
            "AfterInstall",
            "AfterAllowTestTraffic",
            "BeforeAllowTraffic",
            "AfterAllowTraffic",
        ],
    )
    .await
    .unwrap();
    assert_eq!(wait_end(&h, &id).await, "Succeeded");
    let order: Vec<String> = h
        .log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| {
            l.strip_prefix(&format!("CodeDeploy {id} lifecycle "))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(
        order,
        [
            "BeforeInstall",
            "Install",
            "AfterInstall",
            "AllowTestTraffic",
            "AfterAllowTestTraffic",
            "BeforeAllowTraffic",
            "AllowTraffic",
            "AfterAllowTraffic"
        ]
    );
    assert_eq!(
        *h.traffic.calls.lock().unwrap(),
        [
            "install arn:aws:ecs:us-east-1:123456789012:task-definition/web:2",
            "test->green",
            "prod 100%",
            "promote"
        ]
    );
}

#[tokio::test]
async fn hooks_get_the_documented_payload_and_are_awaited() {
    let h = harness(HookAnswer::Succeed, fast()).await;
    let id = create(
        &h,
        "CodeDeployDefault.ECSAllAtOnce",
        &["AfterAllowTestTraffic"],
    )
    .await
    .unwrap();
    assert_eq!(wait_end(&h, &id).await, "Succeeded");
    let invocations = h.invocations.lock().unwrap().clone();
    assert_eq!(invocations.len(), 1);
    assert_eq!(invocations[0].0, "hook-AfterAllowTestTraffic");
    let payload = invocations[0].1.as_object().unwrap();
    assert_eq!(
        payload.keys().collect::<Vec<_>>(),
        ["DeploymentId", "LifecycleEventHookExecutionId"]
    );
    assert_eq!(payload["DeploymentId"], id);
}

#[tokio::test]
async fn a_failed_hook_fails_the_deployment_and_rolls_back() {
    let h = harness(HookAnswer::Fail, fast()).await;
    let id = create(
        &h,
        "CodeDeployDefault.ECSAllAtOnce",
        &["AfterAllowTestTraffic"],
    )
    .await
    .unwrap();
    assert_eq!(wait_end(&h, &id).await, "Failed");
    let calls = h.traffic.calls.lock().unwrap().clone();
    assert_eq!(calls.last().map(String::as_str), Some("rollback"));
    assert!(
        !calls.iter().any(|c| c.starts_with("prod")),
        "production never moved: {calls:?}"
    );
}

#[tokio::test]
async fn a_second_report_is_lifecycle_event_already_completed() {
    let h = harness(HookAnswer::Succeed, fast()).await;
    let id = create(
        &h,
        "CodeDeployDefault.ECSAllAtOnce",
        &["AfterAllowTestTraffic"],
    )
    .await
    .unwrap();
    wait_end(&h, &id).await;
    let execution = h.invocations.lock().unwrap()[0].1["LifecycleEventHookExecutionId"]
        .as_str()
        .unwrap()
        .to_string();
    let err = h
        .client
        .put_lifecycle_event_hook_execution_status()
        .deployment_id(&id)
        .lifecycle_event_hook_execution_id(&execution)
        .status(LifecycleEventStatus::Failed)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_lifecycle_event_already_completed_exception(),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_hook_that_never_answers_fails_the_deployment_on_timeout() {
    let h = harness(HookAnswer::Never, fast()).await;
    let id = create(
        &h,
        "CodeDeployDefault.ECSAllAtOnce",
        &["AfterAllowTestTraffic"],
    )
    .await
    .unwrap();
    assert_eq!(wait_end(&h, &id).await, "Failed");
    let info = h
        .client
        .get_deployment()
        .deployment_id(&id)
        .send()
        .await
        .unwrap()
        .deployment_info
        .unwrap();
    assert!(info
        .error_information
        .unwrap()
        .message
        .unwrap()
        .contains("did not report a status in time"));
}

#[tokio::test]
async fn canary_and_linear_configs_shift_traffic_in_steps() {
    let steps = |percents: &[u8]| {
        percents
            .iter()
            .map(|p| format!("prod {p}%"))
            .collect::<Vec<_>>()
    };
    for (config, expected) in [
        (
            "CodeDeployDefault.ECSCanary10Percent5Minutes",
            steps(&[10, 100]),
        ),
        (
            "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
            steps(&[10, 20, 30, 40, 50, 60, 70, 80, 90, 100]),
        ),
        ("CodeDeployDefault.ECSAllAtOnce", steps(&[100])),
    ] {
        let h = harness(
            HookAnswer::Succeed,
            Timing {
                minute: Duration::from_millis(10),
                ..fast()
            },
        )
        .await;
        let id = create(&h, config, &[]).await.unwrap();
        assert_eq!(wait_end(&h, &id).await, "Succeeded", "{config}");
        let shifts: Vec<String> = h
            .traffic
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.starts_with("prod"))
            .cloned()
            .collect();
        assert_eq!(shifts, expected, "{config}");
    }
}

#[tokio::test]
async fn stop_with_rollback_returns_traffic_to_blue() {
    let h = harness(
        HookAnswer::Succeed,
        Timing {
            minute: Duration::from_secs(5),
            ..fast()
        },
    )
    .await;
    let id = create(&h, "CodeDeployDefault.ECSCanary10Percent5Minutes", &[])
        .await
        .unwrap();
    for _ in 0..200 {
        if h.traffic
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c == "prod 10%")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stop = h
        .client
        .stop_deployment()
        .deployment_id(&id)
        .auto_rollback_enabled(true)
        .send()
        .await
        .unwrap();
    assert_eq!(stop.status().map(|s| s.as_str()), Some("Pending"));
    assert_eq!(wait_end(&h, &id).await, "Stopped");
    assert_eq!(
        h.traffic.calls.lock().unwrap().last().map(String::as_str),
        Some("rollback")
    );
    let again = h
        .client
        .stop_deployment()
        .deployment_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(again
        .as_service_error()
        .unwrap()
        .is_deployment_already_completed_exception());
}

#[tokio::test]
async fn state_changes_are_emitted_as_eventbridge_events() {
    let h = harness(HookAnswer::Fail, fast()).await;
    let id = create(
        &h,
        "CodeDeployDefault.ECSAllAtOnce",
        &["AfterAllowTestTraffic"],
    )
    .await
    .unwrap();
    wait_end(&h, &id).await;
    let events = h.events.lock().unwrap().clone();
    let states: Vec<&str> = events
        .iter()
        .map(|e| e["detail"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["START", "FAILURE"]);
    assert_eq!(
        events[0]["detail-type"],
        "CodeDeploy Deployment State-change Notification"
    );
    assert_eq!(events[0]["source"], "aws.codedeploy");
    assert_eq!(events[0]["detail"]["deploymentId"], id);
    assert_eq!(events[0]["detail"]["deploymentGroup"], "dg");
}

#[tokio::test]
async fn list_deployments_filters_by_status_newest_first() {
    let h = harness(HookAnswer::Succeed, fast()).await;
    let first = create(&h, "CodeDeployDefault.ECSAllAtOnce", &[])
        .await
        .unwrap();
    wait_end(&h, &first).await;
    let second = create(&h, "CodeDeployDefault.ECSAllAtOnce", &[])
        .await
        .unwrap();
    wait_end(&h, &second).await;
    let all = h
        .client
        .list_deployments()
        .application_name("app")
        .deployment_group_name("dg")
        .send()
        .await
        .unwrap();
    assert_eq!(all.deployments(), [second.clone(), first.clone()]);
    let in_flight = h
        .client
        .list_deployments()
        .application_name("app")
        .deployment_group_name("dg")
        .include_only_statuses(aws_sdk_codedeploy::types::DeploymentStatus::InProgress)
        .send()
        .await
        .unwrap();
    assert!(in_flight.deployments().is_empty());
}
