//! ECS-native blue/green through the real aws-sdk-ecs client: first the ECS stand-in
//! on its own (one test per documented behaviour it claims), then Greenlight's
//! deploy-on-push and alarm-rollback driving it. The stand-in answers the
//! service-deployment operations and passes every other ECS call to the moto emulator.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_ecs::types::{
    AdvancedConfiguration, ContainerDefinition, DeploymentConfiguration, DeploymentLifecycleHook,
    DeploymentLifecycleHookAction, DeploymentLifecycleHookStage, DeploymentLifecycleHookTargetType,
    DeploymentStrategy, LoadBalancer, PortMapping, ServiceDeploymentStatus,
};
use greenlight_standins::codedeploy::Traffic;
use greenlight_standins::ecs::{EcsStandIn, Timing};
use greenlight_standins::http::serve;
use greenlight_tests::aws::sdk_config;
use greenlight_tests::{moto, unique};
use serde_json::{json, Value};

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

type Answer = Arc<dyn Fn(&Value) -> Value + Send + Sync>;

struct Harness {
    ecs: aws_sdk_ecs::Client,
    sdk: SdkConfig,
    standin: EcsStandIn,
    traffic: Arc<Recorder>,
    events: Arc<Mutex<Vec<Value>>>,
    invocations: Arc<Mutex<Vec<Value>>>,
    cluster: String,
}

async fn harness(answer: Answer) -> Harness {
    let traffic = Arc::new(Recorder::default());
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let invocations: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (inv, ev) = (invocations.clone(), events.clone());
    let standin = EcsStandIn::new(
        moto().endpoint.clone(),
        traffic.clone(),
        Arc::new(move |_function: String, payload: Value| {
            inv.lock().unwrap().push(payload.clone());
            let reply = answer(&payload);
            Box::pin(async move { Ok(reply) })
        }),
        Arc::new(move |event: Value| ev.lock().unwrap().push(event)),
        Arc::new(|_line: String| {}),
        Timing {
            minute: Duration::from_millis(50),
            second: Duration::from_millis(10),
            hook_timeout: Duration::from_secs(10),
            tick: Duration::from_millis(10),
        },
    );
    let addr = serve(standin.handler()).await.unwrap();
    let base = sdk_config(&moto().endpoint).await;
    let sdk = base
        .to_builder()
        .endpoint_url(format!("http://{addr}"))
        .build();
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let cluster = unique("prod");
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    Harness {
        ecs,
        sdk,
        standin,
        traffic,
        events,
        invocations,
        cluster,
    }
}

fn succeed() -> Answer {
    Arc::new(|_| json!({"hookStatus": "SUCCEEDED"}))
}

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const NEW_DIGEST: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

impl Harness {
    async fn task_definition(&self, family: &str, digest: &str) -> String {
        self.ecs
            .register_task_definition()
            .family(family)
            .container_definitions(
                ContainerDefinition::builder()
                    .name("web")
                    .image(format!(
                        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app@{digest}"
                    ))
                    .memory(256)
                    .port_mappings(PortMapping::builder().container_port(8080).build())
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .task_definition
            .unwrap()
            .task_definition_arn
            .unwrap()
    }

    /// An ECS-native service with a hook at `stages`; returns (service name, family).
    async fn service(
        &self,
        strategy: DeploymentStrategy,
        stages: &[DeploymentLifecycleHookStage],
        target_type: DeploymentLifecycleHookTargetType,
    ) -> (String, String) {
        let family = unique("web");
        let td = self.task_definition(&family, DIGEST).await;
        let name = unique("web");
        let mut hook = DeploymentLifecycleHook::builder()
            .target_type(target_type.clone())
            .role_arn("arn:aws:iam::123456789012:role/ecs-hooks")
            .set_lifecycle_stages(Some(stages.to_vec()))
            .hook_details(aws_smithy_types::Document::Object(
                [(
                    "team".to_string(),
                    aws_smithy_types::Document::String("web".into()),
                )]
                .into_iter()
                .collect(),
            ));
        if target_type == DeploymentLifecycleHookTargetType::AwsLambda {
            hook = hook
                .hook_target_arn("arn:aws:lambda:us-east-1:123456789012:function:greenlight-hook");
        }
        let mut config = DeploymentConfiguration::builder()
            .strategy(strategy.clone())
            .bake_time_in_minutes(0)
            .lifecycle_hooks(hook.build());
        if strategy == DeploymentStrategy::Canary {
            config = config.canary_configuration(
                aws_sdk_ecs::types::CanaryConfiguration::builder()
                    .canary_percent(20.0)
                    .canary_bake_time_in_minutes(0)
                    .build(),
            );
        }
        self.ecs
            .create_service()
            .cluster(&self.cluster)
            .service_name(&name)
            .task_definition(td)
            .desired_count(1)
            .deployment_configuration(config.build())
            .load_balancers(
                LoadBalancer::builder()
                    .target_group_arn("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/1")
                    .container_name("web")
                    .container_port(8080)
                    .advanced_configuration(
                        AdvancedConfiguration::builder()
                            .alternate_target_group_arn("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/green/2")
                            .production_listener_rule("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/1/2/3")
                            .test_listener_rule("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/1/4/5")
                            .role_arn("arn:aws:iam::123456789012:role/ecs-lb")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        (name, family)
    }

    async fn deploy(&self, service: &str, family: &str, digest: &str) -> String {
        let td = self.task_definition(family, digest).await;
        self.ecs
            .update_service()
            .cluster(&self.cluster)
            .service(service)
            .task_definition(td)
            .send()
            .await
            .unwrap()
            .service
            .unwrap()
            .current_service_deployment
            .expect("UpdateService names the new service deployment")
    }

    async fn wait_for(&self, arn: &str, done: impl Fn(&str) -> bool) -> String {
        for _ in 0..500 {
            let status = self.standin.status(arn).unwrap_or_default();
            if done(&status) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.standin.status(arn).unwrap_or_default()
    }

    fn stages_invoked(&self) -> Vec<String> {
        self.invocations
            .lock()
            .unwrap()
            .iter()
            .map(|p| p["lifecycleStage"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn event_names(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                e["detail"]["eventName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }
}

#[tokio::test]
async fn an_update_deploys_through_the_stages_with_the_documented_hook_payload() {
    let h = harness(succeed()).await;
    let (service, family) = h
        .service(
            DeploymentStrategy::BlueGreen,
            &[DeploymentLifecycleHookStage::PostTestTrafficShift],
            DeploymentLifecycleHookTargetType::AwsLambda,
        )
        .await;

    let arn = h.deploy(&service, &family, NEW_DIGEST).await;
    let status = h.wait_for(&arn, |s| s == "SUCCESSFUL").await;

    assert_eq!(status, "SUCCESSFUL");
    let payload = h.invocations.lock().unwrap()[0].clone();
    assert_eq!(payload["lifecycleStage"], "POST_TEST_TRAFFIC_SHIFT");
    assert_eq!(payload["resourceArn"], arn);
    assert!(payload["executionId"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert!(payload["executionDetails"]["serviceArn"]
        .as_str()
        .unwrap()
        .ends_with(&format!("service/{}/{service}", h.cluster)));
    assert_eq!(payload["hookDetails"]["team"], "web");
    assert_eq!(
        *h.traffic.calls.lock().unwrap(),
        [
            format!("install 123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app@{NEW_DIGEST}"),
            "test->green".to_string(),
            "prod 100%".to_string(),
            "promote".to_string()
        ]
    );
    assert_eq!(
        h.event_names(),
        [
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            "SERVICE_DEPLOYMENT_COMPLETED"
        ]
    );
    // The SDK reads the deployment, its revision's image and the service's rules.
    let described = h
        .ecs
        .describe_service_deployments()
        .service_deployment_arns(&arn)
        .send()
        .await
        .unwrap()
        .service_deployments
        .unwrap()
        .remove(0);
    assert_eq!(
        described.status(),
        Some(&ServiceDeploymentStatus::Successful)
    );
    let revision = described
        .target_service_revision()
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let revisions = h
        .ecs
        .describe_service_revisions()
        .service_revision_arns(revision)
        .send()
        .await
        .unwrap()
        .service_revisions
        .unwrap();
    assert_eq!(
        revisions[0].container_images()[0].image_digest(),
        Some(NEW_DIGEST)
    );
    let services = h
        .ecs
        .describe_services()
        .cluster(&h.cluster)
        .services(&service)
        .send()
        .await
        .unwrap()
        .services
        .unwrap();
    let advanced = services[0].load_balancers()[0]
        .advanced_configuration()
        .unwrap();
    assert!(advanced
        .test_listener_rule()
        .unwrap()
        .contains("listener-rule/"));
}

#[tokio::test]
async fn a_failed_hook_rolls_back_and_reruns_the_traffic_hooks_with_weights_swung_back() {
    let h = harness(Arc::new(|p: &Value| {
        if p["lifecycleStage"] == "POST_TEST_TRAFFIC_SHIFT" {
            json!({"hookStatus": "FAILED"})
        } else {
            json!({"hookStatus": "SUCCEEDED"})
        }
    }))
    .await;
    let (service, family) = h
        .service(
            DeploymentStrategy::BlueGreen,
            &[
                DeploymentLifecycleHookStage::TestTrafficShift,
                DeploymentLifecycleHookStage::PostTestTrafficShift,
                DeploymentLifecycleHookStage::ProductionTrafficShift,
            ],
            DeploymentLifecycleHookTargetType::AwsLambda,
        )
        .await;

    let arn = h.deploy(&service, &family, NEW_DIGEST).await;
    let status = h.wait_for(&arn, |s| s.starts_with("ROLLBACK_S")).await;

    assert_eq!(status, "ROLLBACK_SUCCESSFUL");
    assert_eq!(
        h.stages_invoked(),
        [
            "TEST_TRAFFIC_SHIFT",
            "POST_TEST_TRAFFIC_SHIFT",
            "TEST_TRAFFIC_SHIFT",
            "PRODUCTION_TRAFFIC_SHIFT"
        ]
    );
    let rollback = h.invocations.lock().unwrap()[2].clone();
    let target = rollback["executionDetails"]["targetServiceRevisionArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        rollback["executionDetails"]["testTrafficWeights"][&target],
        0.0
    );
    assert!(h
        .traffic
        .calls
        .lock()
        .unwrap()
        .contains(&"rollback".to_string()));
    assert!(!h
        .traffic
        .calls
        .lock()
        .unwrap()
        .contains(&"promote".to_string()));
    assert_eq!(
        h.event_names().last().map(String::as_str),
        Some("SERVICE_DEPLOYMENT_FAILED")
    );
    // Rolled back: the service names the source revision's task definition again, and
    // the target revision receives no traffic.
    let described = h
        .ecs
        .describe_services()
        .cluster(&h.cluster)
        .services(&service)
        .send()
        .await
        .unwrap();
    let task_definition = described.services()[0]
        .task_definition()
        .unwrap_or_default();
    let image = h
        .ecs
        .describe_task_definition()
        .task_definition(task_definition)
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap()
        .container_definitions()[0]
        .image()
        .unwrap_or_default()
        .to_string();
    assert!(image.ends_with(DIGEST), "{image}");
    let deployment = h
        .ecs
        .describe_service_deployments()
        .service_deployment_arns(&arn)
        .send()
        .await
        .unwrap()
        .service_deployments()[0]
        .clone();
    let target = deployment.target_service_revision().unwrap();
    assert_eq!(target.requested_production_traffic_weight(), Some(0.0));
    assert_eq!(target.requested_test_traffic_weight(), Some(0.0));
}

/// Mid-deployment, DescribeServiceDeployments reports the stage, the hook and its
/// status, and the traffic each revision receives.
#[tokio::test]
async fn describe_reports_the_stage_the_hooks_and_the_traffic_split_mid_deployment() {
    let h = harness(Arc::new(|p: &Value| {
        if p["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT" {
            json!({"hookStatus": "IN_PROGRESS", "callBackDelay": 1})
        } else {
            json!({"hookStatus": "SUCCEEDED"})
        }
    }))
    .await;
    let (service, family) = h
        .service(
            DeploymentStrategy::Canary,
            &[DeploymentLifecycleHookStage::ProductionTrafficShift],
            DeploymentLifecycleHookTargetType::AwsLambda,
        )
        .await;
    let arn = h.deploy(&service, &family, NEW_DIGEST).await;
    let mut seen = None;
    for _ in 0..300 {
        let d = h
            .ecs
            .describe_service_deployments()
            .service_deployment_arns(&arn)
            .send()
            .await
            .unwrap()
            .service_deployments()[0]
            .clone();
        if d.lifecycle_hook_details()
            .first()
            .and_then(|h| h.status())
            .is_some_and(|s| s.as_str() == "IN_PROGRESS")
        {
            seen = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let d = seen.expect("the production hook in progress");
    assert_eq!(
        d.lifecycle_stage().map(|s| s.as_str()),
        Some("PRODUCTION_TRAFFIC_SHIFT")
    );
    assert_eq!(
        d.lifecycle_hook_details()[0].target_arn(),
        Some("arn:aws:lambda:us-east-1:123456789012:function:greenlight-hook")
    );
    let target = d.target_service_revision().unwrap();
    assert_eq!(target.requested_production_traffic_weight(), Some(20.0));
    assert_eq!(target.requested_test_traffic_weight(), Some(100.0));
    let source = &d.source_service_revisions()[0];
    assert_eq!(source.requested_production_traffic_weight(), Some(80.0));
}

#[tokio::test]
async fn in_progress_is_invoked_again_with_the_returned_hook_details() {
    let h = harness(Arc::new(|p: &Value| {
        match p["hookDetails"]["round"].as_u64() {
            Some(2) => json!({"hookStatus": "SUCCEEDED"}),
            Some(n) => json!({"hookStatus": "IN_PROGRESS", "callBackDelay": 1, "hookDetails": {"round": n + 1}}),
            None => json!({"hookStatus": "IN_PROGRESS", "callBackDelay": 1, "hookDetails": {"round": 1}}),
        }
    }))
    .await;
    let (service, family) = h
        .service(
            DeploymentStrategy::BlueGreen,
            &[DeploymentLifecycleHookStage::PostTestTrafficShift],
            DeploymentLifecycleHookTargetType::AwsLambda,
        )
        .await;

    let arn = h.deploy(&service, &family, NEW_DIGEST).await;
    let status = h.wait_for(&arn, |s| s == "SUCCESSFUL").await;

    assert_eq!(status, "SUCCESSFUL");
    assert_eq!(h.invocations.lock().unwrap().len(), 3);
    assert_eq!(h.invocations.lock().unwrap()[2]["hookDetails"]["round"], 2);
}

#[tokio::test]
async fn a_canary_runs_the_production_hooks_at_every_step() {
    let h = harness(succeed()).await;
    let (service, family) = h
        .service(
            DeploymentStrategy::Canary,
            &[
                DeploymentLifecycleHookStage::PreProductionTrafficShift,
                DeploymentLifecycleHookStage::ProductionTrafficShift,
            ],
            DeploymentLifecycleHookTargetType::AwsLambda,
        )
        .await;

    let arn = h.deploy(&service, &family, NEW_DIGEST).await;
    h.wait_for(&arn, |s| s == "SUCCESSFUL").await;

    assert_eq!(
        h.stages_invoked(),
        [
            "PRE_PRODUCTION_TRAFFIC_SHIFT",
            "PRODUCTION_TRAFFIC_SHIFT",
            "PRE_PRODUCTION_TRAFFIC_SHIFT",
            "PRODUCTION_TRAFFIC_SHIFT"
        ]
    );
    let first = h.invocations.lock().unwrap()[1].clone();
    let target = first["executionDetails"]["targetServiceRevisionArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        first["executionDetails"]["productionTrafficWeights"][&target],
        20.0
    );
    let calls = h.traffic.calls.lock().unwrap().clone();
    assert!(calls.contains(&"prod 20%".to_string()) && calls.contains(&"prod 100%".to_string()));
}

#[tokio::test]
async fn stop_with_rollback_rolls_back_and_a_finished_deployment_is_a_conflict() {
    // A hook that never decides keeps the deployment in flight.
    let h = harness(Arc::new(
        |_| json!({"hookStatus": "IN_PROGRESS", "callBackDelay": 1}),
    ))
    .await;
    let (service, family) = h
        .service(
            DeploymentStrategy::BlueGreen,
            &[DeploymentLifecycleHookStage::PostTestTrafficShift],
            DeploymentLifecycleHookTargetType::AwsLambda,
        )
        .await;
    let arn = h.deploy(&service, &family, NEW_DIGEST).await;
    h.wait_for(&arn, |s| s == "IN_PROGRESS").await;
    let listed = h
        .ecs
        .list_service_deployments()
        .cluster(&h.cluster)
        .service(&service)
        .status(ServiceDeploymentStatus::InProgress)
        .send()
        .await
        .unwrap()
        .service_deployments
        .unwrap();
    assert_eq!(listed.len(), 1);

    h.ecs
        .stop_service_deployment()
        .service_deployment_arn(&arn)
        .stop_type(aws_sdk_ecs::types::StopServiceDeploymentStopType::Rollback)
        .send()
        .await
        .unwrap();
    let status = h.wait_for(&arn, |s| s == "ROLLBACK_SUCCESSFUL").await;
    assert_eq!(status, "ROLLBACK_SUCCESSFUL");

    let err = h
        .ecs
        .stop_service_deployment()
        .service_deployment_arn(&arn)
        .stop_type(aws_sdk_ecs::types::StopServiceDeploymentStopType::Rollback)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_conflict_exception()),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_pause_hook_waits_for_continue_service_deployment() {
    let h = harness(succeed()).await;
    let (service, family) = h
        .service(
            DeploymentStrategy::BlueGreen,
            &[DeploymentLifecycleHookStage::PostTestTrafficShift],
            DeploymentLifecycleHookTargetType::Pause,
        )
        .await;
    let arn = h.deploy(&service, &family, NEW_DIGEST).await;
    let mut awaiting = None;
    for _ in 0..300 {
        awaiting = h.standin.awaiting_action();
        if awaiting.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (paused, hook_id) = awaiting.expect("the PAUSE hook awaits action");
    assert_eq!(paused, arn);
    let described = h
        .ecs
        .describe_service_deployments()
        .service_deployment_arns(&arn)
        .send()
        .await
        .unwrap()
        .service_deployments
        .unwrap()
        .remove(0);
    assert_eq!(
        described.lifecycle_hook_details()[0]
            .status()
            .map(|s| s.as_str()),
        Some("AWAITING_ACTION")
    );

    h.ecs
        .continue_service_deployment()
        .service_deployment_arn(&arn)
        .hook_id(hook_id)
        .action(DeploymentLifecycleHookAction::Continue)
        .send()
        .await
        .unwrap();

    assert_eq!(h.wait_for(&arn, |s| s == "SUCCESSFUL").await, "SUCCESSFUL");
    assert!(
        h.invocations.lock().unwrap().is_empty(),
        "a PAUSE hook invokes nothing"
    );
}

// ---- Greenlight on the ECS-native path -------------------------------------------

use greenlight::aws::sns::{Publication, Publisher};
use greenlight::aws::{AwsError, CodeDeploy, Ecr, Ecs, Pipelines};
use greenlight::config::Config;
use greenlight::deploy::Backends;
use greenlight::notify::Notifier;

#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<Publication>>>);

impl Publisher for Inbox {
    async fn publish(&self, publication: &Publication) -> Result<String, AwsError> {
        self.0.lock().unwrap().push(publication.clone());
        Ok("m".into())
    }
}

impl Inbox {
    fn events(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|p| p.attributes.clone())
            .filter(|(k, _)| k == "event")
            .map(|(_, v)| v)
            .collect()
    }
}

fn ecs_config(cluster: &str, service: &str, on_busy: &str) -> Arc<Config> {
    Arc::new(
        Config::parse(&format!(
            "services:\n  - {{ name: web, repository: web-app, tags: [\"v*\"], cluster: {cluster}, service: {service}, container: web,\n      ecs_native: {{}}, on_busy: {on_busy}, alarms: [web-5xx] }}\n"
        ))
        .unwrap(),
    )
}

fn backends(sdk: &SdkConfig) -> Backends {
    Backends {
        codedeploy: CodeDeploy::from_conf(sdk),
        ecs: Ecs::from_conf(sdk),
        pipelines: Pipelines::from_conf(sdk),
        hook_pattern: None,
    }
}

fn push(tag: &str, digest: &str) -> Value {
    json!({
        "version": "0", "id": unique("evt"), "detail-type": "ECR Image Action", "source": "aws.ecr",
        "account": "123456789012", "time": greenlight_standins::rfc3339_now(), "region": "us-east-1", "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": "web-app", "image-digest": digest, "action-type": "PUSH", "image-tag": tag}
    })
}

#[tokio::test]
async fn deploy_on_push_starts_an_ecs_native_deployment_exactly_once_and_queues_when_busy() {
    let h = harness(Arc::new(
        |_| json!({"hookStatus": "IN_PROGRESS", "callBackDelay": 1}),
    ))
    .await;
    let (service, _family) = h
        .service(
            DeploymentStrategy::BlueGreen,
            &[DeploymentLifecycleHookStage::PostTestTrafficShift],
            DeploymentLifecycleHookTargetType::AwsLambda,
        )
        .await;
    let inbox = Inbox::default();
    let handler = deploy_on_push::DeployOnPush {
        config: ecs_config(&h.cluster, &service, "queue").into(),
        backends: backends(&h.sdk),
        ecr: Ecr::from_conf(&h.sdk),
        capture: greenlight::evidence::Capture::from_conf(&h.sdk),
        notifier: Notifier::new(
            inbox.clone(),
            Some("arn:aws:sns:us-east-1:123456789012:t".into()),
        ),
        trigger: greenlight::ledger::Trigger::Push,
        ledger: None,
        scheduler: None,
    };
    let event = push("v2.0.0", NEW_DIGEST);

    let first = handler.handle(event.clone()).await.unwrap();
    let again = handler.handle(event).await.unwrap();
    let second_tag = handler.handle(push("v2.0.0-rc", NEW_DIGEST)).await.unwrap();
    let other = handler
        .handle(push(
            "v2.1.0",
            "sha256:3333333333333333333333333333333333333333333333333333333333333333",
        ))
        .await
        .unwrap();

    assert_eq!(first[0]["outcome"], "started", "{first}");
    let deployment = first[0]["deployment_id"].as_str().unwrap();
    assert!(deployment.contains(":service-deployment/"), "{deployment}");
    assert_eq!(again[0]["outcome"], "duplicate", "{again}");
    assert_eq!(second_tag[0]["outcome"], "duplicate", "{second_tag}");
    assert_eq!(other[0]["outcome"], "queued", "{other}");
    assert_eq!(other[0]["in_flight_id"], deployment);
    assert_eq!(
        h.standin.deployment_arns().len(),
        1,
        "one service deployment for four pushes"
    );
    assert_eq!(inbox.events(), ["deployment_started", "deployment_queued"]);
}

#[tokio::test]
async fn an_alarm_stops_the_in_flight_ecs_native_deployment_with_rollback() {
    let h = harness(Arc::new(
        |_| json!({"hookStatus": "IN_PROGRESS", "callBackDelay": 1}),
    ))
    .await;
    let (service, family) = h
        .service(
            DeploymentStrategy::BlueGreen,
            &[DeploymentLifecycleHookStage::PostTestTrafficShift],
            DeploymentLifecycleHookTargetType::AwsLambda,
        )
        .await;
    let arn = h.deploy(&service, &family, NEW_DIGEST).await;
    h.wait_for(&arn, |s| s == "IN_PROGRESS").await;
    let inbox = Inbox::default();
    let rollback = alarm_rollback::Rollback {
        config: ecs_config(&h.cluster, &service, "queue").into(),
        backends: backends(&h.sdk),
        notifier: Notifier::new(
            inbox.clone(),
            Some("arn:aws:sns:us-east-1:123456789012:t".into()),
        ),
        ledger: None,
    };
    let mut alarm: Value =
        serde_json::from_str(include_str!("../../events/alarm-eventbridge.json")).unwrap();
    alarm["detail"]["alarmName"] = "web-5xx".into();

    let answer = rollback.handle(alarm.clone()).await.unwrap();

    assert_eq!(answer[0]["stopped"][0]["deployment_id"], arn, "{answer}");
    assert_eq!(
        answer[0]["stopped"][0]["group"]["ecs_service"],
        service.as_str()
    );
    assert_eq!(
        h.wait_for(&arn, |s| s == "ROLLBACK_SUCCESSFUL").await,
        "ROLLBACK_SUCCESSFUL"
    );
    assert_eq!(inbox.events(), ["rollback_requested"]);
    // The same alarm again: nothing in flight, nothing to stop.
    let again = rollback.handle(alarm).await.unwrap();
    assert_eq!(again[0]["acted"], false, "{again}");
}

/// Runs the `greenlight` binary with ECS pointed at the stand-in: (succeeded, output).
async fn greenlight_cli(args: &[&str], ecs_endpoint: &str) -> (bool, String) {
    let run = greenlight_tests::greenlight(args, &[("AWS_ENDPOINT_URL_ECS", ecs_endpoint)]).await;
    (run.code == Some(0), format!("{}{}", run.stdout, run.stderr))
}

#[tokio::test]
async fn greenlight_approve_and_reject_answer_a_paused_deployment() {
    let h = harness(succeed()).await;
    let endpoint = h.sdk.endpoint_url().unwrap().to_string();
    let (service, family) = h
        .service(
            DeploymentStrategy::BlueGreen,
            &[DeploymentLifecycleHookStage::PostTestTrafficShift],
            DeploymentLifecycleHookTargetType::Pause,
        )
        .await;
    let config = std::env::temp_dir().join(format!("{}.yaml", unique("approve")));
    std::fs::write(
        &config,
        format!(
            "services:\n  - {{ name: web, repository: web-app, cluster: {}, service: {service}, container: web, ecs_native: {{}} }}\n",
            h.cluster
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().to_string();

    // Nothing in flight yet: a clear refusal, exit 1.
    let (ok, out) = greenlight_cli(&["approve", "web", "--config", &config], &endpoint).await;
    assert!(!ok && out.contains("no deployment in flight"), "{out}");

    let wait_paused = || async {
        for _ in 0..300 {
            if h.standin.awaiting_action().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no deployment paused");
    };
    let approved = h.deploy(&service, &family, NEW_DIGEST).await;
    wait_paused().await;
    let (ok, out) = greenlight_cli(&["approve", "web", "--config", &config], &endpoint).await;
    assert!(ok, "{out}");
    assert!(out.contains("approved") && out.contains(&approved), "{out}");
    assert_eq!(
        h.wait_for(&approved, |s| s == "SUCCESSFUL").await,
        "SUCCESSFUL"
    );

    let rejected = h
        .deploy(
            &service,
            &family,
            "sha256:3333333333333333333333333333333333333333333333333333333333333333",
        )
        .await;
    wait_paused().await;
    let (ok, out) = greenlight_cli(&["reject", "web", "--config", &config], &endpoint).await;
    assert!(ok && out.contains("rolls back"), "{out}");
    assert_eq!(
        h.wait_for(&rejected, |s| s == "ROLLBACK_SUCCESSFUL").await,
        "ROLLBACK_SUCCESSFUL"
    );
}

/// `greenlight deploy`, `status` and `stop` as an operator runs them, against the
/// emulator (ECR) and the ECS stand-in: refusals with reasons, a deployment started
/// exactly as a push would (a second deploy of the image is a duplicate), its stage in
/// `status`, a stop without rollback refused on ECS, a stop with rollback, and the
/// finished deployment in `status` afterwards.
#[tokio::test]
async fn greenlight_deploy_status_and_stop_round_trip() {
    let h = harness(Arc::new(
        |_| json!({"hookStatus": "IN_PROGRESS", "callBackDelay": 1}),
    ))
    .await;
    let endpoint = h.sdk.endpoint_url().unwrap().to_string();
    let (service, _family) = h
        .service(
            DeploymentStrategy::BlueGreen,
            &[DeploymentLifecycleHookStage::PostTestTrafficShift],
            DeploymentLifecycleHookTargetType::AwsLambda,
        )
        .await;
    let base = sdk_config(&moto().endpoint).await;
    let ecr = aws_sdk_ecr::Client::new(&base);
    let repository = unique("web-app");
    ecr.create_repository()
        .repository_name(&repository)
        .send()
        .await
        .unwrap();
    for (i, tag) in ["v2.0.0", "nightly"].iter().enumerate() {
        let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 100 + i, "digest": format!("sha256:{:064x}", i + 7)},
            "layers": []});
        ecr.put_image()
            .repository_name(&repository)
            .image_tag(*tag)
            .image_manifest(manifest.to_string())
            .send()
            .await
            .unwrap();
    }
    let config = std::env::temp_dir().join(format!("{}.yaml", unique("operate")));
    std::fs::write(
        &config,
        format!(
            "services:\n  - {{ name: web, repository: {repository}, tags: [\"v*\"], cluster: {}, service: {service}, container: web, ecs_native: {{}} }}\n",
            h.cluster
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().to_string();
    let cli = |args: Vec<&str>| {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend(["--config".to_string(), config.clone()]);
        let endpoint = endpoint.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = greenlight_tests::greenlight(
                &args,
                &[
                    ("AWS_ENDPOINT_URL", &moto().endpoint),
                    ("AWS_ENDPOINT_URL_ECS", &endpoint),
                ],
            )
            .await;
            (run.code, run.stdout, run.stderr)
        }
    };

    // Refusals: an unconfigured service, a tag not in the repository, a tag `tags` exclude.
    let (code, _, err) = cli(vec!["deploy", "api", "--tag", "v2.0.0"]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("refused: no service \"api\""), "{err}");
    let (code, _, err) = cli(vec!["deploy", "web", "--tag", "v9.9.9"]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("no image tagged v9.9.9"), "{err}");
    let (code, _, err) = cli(vec!["deploy", "web", "--tag", "nightly"]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("tag nightly is not one web's tags allow"),
        "{err}"
    );

    let (code, out, err) = cli(vec!["deploy", "web", "--tag", "v2.0.0", "--json"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let started: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(started["outcomes"][0]["outcome"], "started", "{started}");
    let id = started["outcomes"][0]["deployment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, again, _) = cli(vec!["deploy", "web", "--tag", "v2.0.0", "--json"]).await;
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["outcomes"][0]["outcome"], "duplicate", "{again}");
    assert_eq!(h.standin.deployment_arns().len(), 1);

    // status: in flight, at a stage.
    let mut status = Value::Null;
    for _ in 0..100 {
        let (_, out, _) = cli(vec!["status", "web", "--json"]).await;
        status = serde_json::from_str(&out).unwrap();
        if status[0]["in_flight"][0]["at"] == "POST_TEST_TRAFFIC_SHIFT" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Held by the hook after the test traffic moved: green serves all test traffic
    // and no production traffic; the hook in progress.
    let in_flight = &status[0]["in_flight"][0];
    assert_eq!(in_flight["at"], "POST_TEST_TRAFFIC_SHIFT", "{status}");
    assert_eq!(in_flight["green_test_percent"], 100.0, "{status}");
    assert_eq!(in_flight["green_production_percent"], 0.0, "{status}");
    assert_eq!(
        in_flight["hooks"],
        json!([{"hook": "greenlight-hook", "status": "IN_PROGRESS"}]),
        "{status}"
    );
    assert_eq!(status[0]["path"], "ECS-native", "{status}");
    assert_eq!(status[0]["in_flight"][0]["id"], id.as_str(), "{status}");
    assert_eq!(status[0]["in_flight"][0]["image_tag"], "v2.0.0", "{status}");
    assert!(status[0]["in_flight"][0]["at"].is_string(), "{status}");
    assert_eq!(
        status[0]["production_digest"], DIGEST,
        "production is still the source revision: {status}"
    );
    let (code, text, _) = cli(vec!["status"]).await;
    assert_eq!(code, Some(0));
    assert!(
        text.contains("web (ECS-native)")
            && text.contains("in flight:")
            && text.contains("traffic: green serves 0% of production, 100% of test")
            && text.contains("hooks: greenlight-hook IN_PROGRESS"),
        "{text}"
    );

    // stop: without rollback refused on ECS, with rollback done.
    let (code, _, err) = cli(vec!["stop", "web", "--no-rollback"]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("only with rollback"), "{err}");
    let (code, out, err) = cli(vec!["stop", "web"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("stopped {id}")), "{out}");
    for _ in 0..200 {
        if h.standin.outcome(&id).is_some_and(|o| o != "InProgress") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, out, _) = cli(vec!["status", "web", "--json"]).await;
    let after: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(after[0]["in_flight"], json!([]), "{after}");
    assert_eq!(after[0]["last_finished"]["id"], id.as_str(), "{after}");
    assert_ne!(after[0]["last_finished"]["phase"], "Succeeded", "{after}");
    let (_, out, _) = cli(vec!["stop", "web"]).await;
    assert!(out.contains("nothing in flight"), "{out}");
}

/// Promotion end to end, ECS-native on both sides: staging's success schedules the
/// soak once (a one-time schedule in the emulator's EventBridge Scheduler, carrying
/// Greenlight's event); when the schedule's event arrives, production deploys the
/// same digest by its own path, recorded as a promotion; a digest staging never
/// deployed is refused with why, and nothing deploys.
#[tokio::test]
async fn a_digest_that_completed_in_staging_is_promoted_to_production_after_its_soak() {
    let h = harness(succeed()).await;
    let stages = [DeploymentLifecycleHookStage::PostTestTrafficShift];
    let strategy = DeploymentStrategy::BlueGreen;
    let target = DeploymentLifecycleHookTargetType::AwsLambda;
    let (staging, _) = h.service(strategy.clone(), &stages, target.clone()).await;
    let (prod, _) = h.service(strategy, &stages, target).await;
    let config = Config::parse(&format!(
        "services:\n  - {{ name: web-staging, repository: web-app, cluster: {c}, service: {staging}, container: web, ecs_native: {{}}, on_busy: skip }}\n  - {{ name: web-prod, repository: web-app, cluster: {c}, service: {prod}, container: web, ecs_native: {{}}, promote: {{ from: web-staging, soak_minutes: 30 }} }}\n",
        c = h.cluster
    ))
    .unwrap();
    // The ledger and the scheduler are the emulator's (the harness's SDK goes to the stand-in).
    let moto_sdk = sdk_config(&moto().endpoint).await;
    let table = unique("ledger");
    greenlight_cli::ledger_table::create(&moto_sdk, &table)
        .await
        .unwrap();
    let scheduler = aws_sdk_scheduler::Client::new(&moto_sdk);
    let group = unique("promotions");
    scheduler
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    let ledger = greenlight::ledger::Ledger::new(&moto_sdk, &table);
    let inbox = Inbox::default();
    let handler = deploy_on_push::DeployOnPush {
        config: Arc::new(config).into(),
        backends: backends(&h.sdk),
        ecr: Ecr::from_conf(&h.sdk),
        capture: greenlight::evidence::Capture::from_conf(&h.sdk),
        notifier: Notifier::new(
            inbox.clone(),
            Some("arn:aws:sns:us-east-1:123456789012:t".into()),
        )
        .recording_to(Some(ledger.clone())),
        trigger: greenlight::ledger::Trigger::Push,
        ledger: Some(ledger.clone()),
        scheduler: Some(greenlight::aws::scheduler::Scheduler::new(
            &moto_sdk,
            &group,
            "arn:aws:iam::123456789012:role/greenlight-scheduler",
            "arn:aws:events:us-east-1:123456789012:event-bus/default",
        )),
    };

    // A push deploys staging only.
    let pushed = handler.handle(push("v2.0.0", NEW_DIGEST)).await.unwrap();
    assert_eq!(pushed.as_array().unwrap().len(), 1, "{pushed}");
    assert_eq!(pushed[0]["service"], "web-staging");
    let staging_deployment = pushed[0]["deployment_id"].as_str().unwrap().to_string();
    h.wait_for(&staging_deployment, |s| s == "SUCCESSFUL").await;
    let completed = h
        .events
        .lock()
        .unwrap()
        .iter()
        .find(|e| e["detail"]["eventName"] == "SERVICE_DEPLOYMENT_COMPLETED")
        .cloned()
        .expect("the stand-in announced the completion");

    // Delivered twice: one schedule, one notification.
    let first = handler.handle(completed.clone()).await.unwrap();
    let again = handler.handle(completed).await.unwrap();
    let scheduled: Vec<&Value> = first
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "promotion_scheduled")
        .collect();
    assert_eq!(scheduled.len(), 1, "{first}");
    assert_eq!(scheduled[0]["service"], "web-prod");
    assert!(
        !again.to_string().contains("promotion_scheduled"),
        "a redelivered completion schedules nothing more: {again}"
    );
    let name = scheduled[0]["schedule"].as_str().unwrap();
    let schedule = scheduler
        .get_schedule()
        .group_name(&group)
        .name(name)
        .send()
        .await
        .unwrap();
    let expression = schedule.schedule_expression().unwrap();
    assert!(expression.starts_with("at(20"), "{expression}");
    let at = scheduled[0]["at_seconds"].as_i64().unwrap();
    let soak = at
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
    assert!(
        (1790..=1800).contains(&soak),
        "30 minutes from now: {soak} s"
    );
    let schedule_target = schedule.target().unwrap();
    let parameters = schedule_target.event_bridge_parameters().unwrap();
    assert_eq!(parameters.source(), "greenlight.promotion");
    assert_eq!(parameters.detail_type(), "Greenlight Promotion Due");

    // The schedule fires: EventBridge delivers its input as the event's detail.
    let detail: Value = serde_json::from_str(schedule_target.input().unwrap()).unwrap();
    let due_event = json!({
        "version": "0", "id": unique("evt"), "detail-type": parameters.detail_type(),
        "source": parameters.source(), "account": "123456789012",
        "time": greenlight_standins::rfc3339_now(), "region": "us-east-1", "resources": [],
        "detail": detail,
    });
    let promoted = handler.handle(due_event.clone()).await.unwrap();
    assert_eq!(promoted[0]["service"], "web-prod", "{promoted}");
    assert_eq!(promoted[0]["outcome"], "started", "{promoted}");
    let prod_deployment = promoted[0]["deployment_id"].as_str().unwrap().to_string();
    assert!(
        prod_deployment.contains(&format!("/{prod}/")),
        "{prod_deployment}"
    );
    h.wait_for(&prod_deployment, |s| s == "SUCCESSFUL").await;
    let again = handler.handle(due_event).await.unwrap();
    assert_eq!(
        again[0]["outcome"], "duplicate",
        "the same promotion twice: {again}"
    );

    let prod_history = ledger.history("web-prod", None, 10).await.unwrap();
    assert_eq!(prod_history.len(), 1, "{prod_history:?}");
    assert_eq!(prod_history[0].image_digest.as_deref(), Some(NEW_DIGEST));
    assert_eq!(prod_history[0].trigger.as_deref(), Some("promotion"));
    assert_eq!(
        prod_history[0].promoted_from.as_deref(),
        Some(format!("web-staging/{staging_deployment}").as_str())
    );

    // A digest staging never ran: refused with why, nothing deployed.
    let unverified = greenlight::events::PromotionDue {
        digest: "sha256:3333333333333333333333333333333333333333333333333333333333333333".into(),
        source_deployment: "nowhere".into(),
        ..serde_json::from_value(detail).unwrap()
    };
    let refused = handler
        .handle(unverified.event("us-east-1", &greenlight_standins::rfc3339_now()))
        .await
        .unwrap();
    assert_eq!(refused[0]["outcome"], "promotion_refused", "{refused}");
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .contains("unverified: the ledger has no deployment nowhere of web-staging"),
        "{refused}"
    );
    assert_eq!(
        h.standin.deployment_arns().len(),
        2,
        "staging's and production's only"
    );
    let events = inbox.events();
    for expected in ["promotion_scheduled", "promotion_refused"] {
        assert_eq!(
            events.iter().filter(|e| *e == expected).count(),
            1,
            "{events:?}"
        );
    }
}
