//! deploy-on-push through the real SDK: ECS, ECR and SNS in the moto emulator;
//! CodeDeploy (and CodePipeline) with aws-smithy-mocks, because the emulator's
//! deployments never leave `Created`, it raises no DeploymentLimitExceededException,
//! and implements no StopDeployment.

use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use aws_sdk_codedeploy::operation::batch_get_deployments::BatchGetDeploymentsOutput;
use aws_sdk_codedeploy::operation::create_deployment::{
    CreateDeploymentError, CreateDeploymentOutput,
};
use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentOutput;
use aws_sdk_codedeploy::operation::list_deployments::ListDeploymentsOutput;
use aws_sdk_codedeploy::operation::stop_deployment::StopDeploymentOutput;
use aws_sdk_codedeploy::types::error::DeploymentLimitExceededException;
use aws_sdk_codedeploy::types::{
    DeploymentInfo, DeploymentStatus, RevisionLocationType, StopStatus,
};
use aws_sdk_codedeploy::Client as CodeDeployClient;
use aws_sdk_ecs::types::{
    ContainerDefinition, HostVolumeProperties, KeyValuePair, LogConfiguration, LogDriver,
    MountPoint, NetworkMode, PortMapping, Tag, TaskDefinition, Ulimit, UlimitName, Volume,
};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::DateTime;
use deploy_on_push::DeployOnPush;
use greenlight::aws::{CodeDeploy, Ecr, Ecs, Pipelines, Sns};
use greenlight::deploy::Backends;
use greenlight::notify::Notifier;
use greenlight::Config;
use greenlight_tests::aws::{notifications, sdk_config, topic_with_queue};
use greenlight_tests::{moto, unique};
use serde_json::{json, Value};

const DIGEST: &str = "sha256:3c6a3f3b1f7a4f0e8f4b2b0e1f6a9d4c5b7e8a9f0c1d2e3f4a5b6c7d8e9f0a1b";
const HOOKS: &str = "CodeDeployHook_greenlight-{event}";

/// A cluster with a service running a rich task definition; returns (cluster, family, original TD).
async fn ecs_service(sdk: &SdkConfig) -> (String, String, TaskDefinition) {
    let ecs = aws_sdk_ecs::Client::new(sdk);
    let cluster = unique("prod");
    let family = unique("web");
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let registered = ecs
        .register_task_definition()
        .family(&family)
        .task_role_arn("arn:aws:iam::123456789012:role/web-task")
        .execution_role_arn("arn:aws:iam::123456789012:role/web-exec")
        .network_mode(NetworkMode::Bridge)
        .cpu("512")
        .memory("1024")
        .volumes(
            Volume::builder()
                .name("scratch")
                .host(HostVolumeProperties::builder().source_path("/tmp").build())
                .build(),
        )
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app:v1.3.0")
                .memory(512)
                .essential(true)
                .port_mappings(
                    PortMapping::builder()
                        .container_port(8080)
                        .host_port(0)
                        .build(),
                )
                .environment(
                    KeyValuePair::builder()
                        .name("MODE")
                        .value("production")
                        .build(),
                )
                .mount_points(
                    MountPoint::builder()
                        .source_volume("scratch")
                        .container_path("/scratch")
                        .build(),
                )
                .ulimits(
                    Ulimit::builder()
                        .name(UlimitName::Nofile)
                        .soft_limit(4096)
                        .hard_limit(8192)
                        .build()
                        .unwrap(),
                )
                .log_configuration(
                    LogConfiguration::builder()
                        .log_driver(LogDriver::Awslogs)
                        .options("awslogs-group", "/ecs/web")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .container_definitions(
            ContainerDefinition::builder()
                .name("envoy")
                .image("public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29")
                .memory(128)
                .build(),
        )
        .tags(Tag::builder().key("team").value("platform").build())
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap();
    ecs.create_service()
        .cluster(&cluster)
        .service_name("web")
        .task_definition(registered.task_definition_arn().unwrap())
        .desired_count(1)
        .send()
        .await
        .unwrap();
    (cluster, family, registered)
}

fn config(cluster: &str, on_busy: &str, container: &str) -> Arc<Config> {
    Arc::new(
        Config::parse(&format!(
            r#"
services:
  - name: web
    repository: web-app
    tags: ["v*"]
    cluster: {cluster}
    service: web
    container: {container}
    codedeploy: {{ application: web-app, deployment_group: web-dg, deployment_config: CodeDeployDefault.ECSAllAtOnce }}
    on_busy: {on_busy}
"#
        ))
        .unwrap(),
    )
}

fn push_event(tag: &str, time: &str) -> Value {
    json!({
        "version": "0", "id": unique("evt"), "detail-type": "ECR Image Action", "source": "aws.ecr",
        "account": "123456789012", "time": time, "region": "us-east-1", "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": "web-app", "image-digest": DIGEST, "action-type": "PUSH", "image-tag": tag}
    })
}

/// A CodeDeploy that remembers what it created, so ListDeployments/BatchGetDeployments
/// answer like the real service after a CreateDeployment.
/// (id, description, status, created seconds)
type Record = (String, String, String, i64);

#[derive(Clone, Default)]
struct FakeGroup {
    deployments: Arc<Mutex<Vec<Record>>>,
    appspecs: Arc<Mutex<Vec<String>>>,
}

impl FakeGroup {
    fn with(self, id: &str, description: &str, status: &str, created: i64) -> Self {
        self.deployments.lock().unwrap().push((
            id.into(),
            description.into(),
            status.into(),
            created,
        ));
        self
    }

    fn rules(&self) -> (Rule, Rule, Rule) {
        let list_state = self.deployments.clone();
        let list = mock!(CodeDeployClient::list_deployments)
            .match_requests(|r| {
                r.application_name() == Some("web-app")
                    && r.deployment_group_name() == Some("web-dg")
            })
            .then_output(move || {
                let ids: Vec<String> = list_state
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|d| d.0.clone())
                    .collect();
                ListDeploymentsOutput::builder()
                    .set_deployments(Some(ids))
                    .build()
            });
        let batch_state = self.deployments.clone();
        let batch = mock!(CodeDeployClient::batch_get_deployments).then_output(move || {
            let infos = batch_state
                .lock()
                .unwrap()
                .iter()
                .map(|(id, description, status, created)| {
                    DeploymentInfo::builder()
                        .deployment_id(id)
                        .application_name("web-app")
                        .deployment_group_name("web-dg")
                        .description(description)
                        .status(DeploymentStatus::from(status.as_str()))
                        .create_time(DateTime::from_secs(*created))
                        .build()
                })
                .collect();
            BatchGetDeploymentsOutput::builder()
                .set_deployments_info(Some(infos))
                .build()
        });
        let (create_state, appspecs) = (self.deployments.clone(), self.appspecs.clone());
        let create = mock!(CodeDeployClient::create_deployment)
            .match_requests(move |r| {
                let ok = r.application_name() == Some("web-app")
                    && r.deployment_group_name() == Some("web-dg")
                    && r.deployment_config_name() == Some("CodeDeployDefault.ECSAllAtOnce");
                if ok {
                    let revision = r.revision().unwrap();
                    assert_eq!(
                        revision.revision_type(),
                        Some(&RevisionLocationType::AppSpecContent)
                    );
                    appspecs.lock().unwrap().push(
                        revision
                            .app_spec_content()
                            .unwrap()
                            .content()
                            .unwrap()
                            .to_string(),
                    );
                    let mut state = create_state.lock().unwrap();
                    let id = format!("d-NEW{}", state.len() + 1);
                    state.insert(
                        0,
                        (
                            id,
                            r.description().unwrap_or_default().to_string(),
                            "Created".into(),
                            now(),
                        ),
                    );
                }
                ok
            })
            .then_output(|| {
                CreateDeploymentOutput::builder()
                    .deployment_id("d-CREATED")
                    .build()
            });
        (list, batch, create)
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rfc3339(secs: i64) -> String {
    DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap()
}

fn handler(
    sdk: &SdkConfig,
    config: Arc<Config>,
    topic: &str,
    rules: &[&Rule],
) -> DeployOnPush<Sns> {
    DeployOnPush {
        config: config.into(),
        backends: Backends {
            codedeploy: CodeDeploy::new(mock_client!(
                aws_sdk_codedeploy,
                RuleMode::MatchAny,
                rules
            )),
            ecs: Ecs::from_conf(sdk),
            pipelines: Pipelines::from_conf(sdk),
            hook_pattern: Some(HOOKS.into()),
        },
        ecr: Ecr::from_conf(sdk),
        capture: greenlight::evidence::Capture::from_conf(sdk),
        notifier: Notifier::new(Sns::from_conf(sdk), Some(topic.into())),
        trigger: greenlight::ledger::Trigger::Push,
        ledger: None,
        scheduler: None,
    }
}

/// The writable part of a task definition, for "every other field intact" comparisons.
fn writable(td: &TaskDefinition) -> TaskDefinition {
    TaskDefinition::builder()
        .set_family(td.family.clone())
        .set_task_role_arn(td.task_role_arn.clone())
        .set_execution_role_arn(td.execution_role_arn.clone())
        .set_network_mode(td.network_mode.clone())
        .set_container_definitions(td.container_definitions.clone())
        .set_volumes(td.volumes.clone())
        .set_placement_constraints(td.placement_constraints.clone())
        .set_requires_compatibilities(td.requires_compatibilities.clone())
        .set_cpu(td.cpu.clone())
        .set_memory(td.memory.clone())
        .set_pid_mode(td.pid_mode.clone())
        .set_ipc_mode(td.ipc_mode.clone())
        .set_proxy_configuration(td.proxy_configuration.clone())
        .set_ephemeral_storage(td.ephemeral_storage.clone())
        .set_runtime_platform(td.runtime_platform.clone())
        .build()
}

#[tokio::test]
async fn a_push_registers_a_pinned_task_definition_and_creates_the_deployment() {
    let sdk = sdk_config(&moto().endpoint).await;
    let (cluster, family, original) = ecs_service(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk).await;
    let group = FakeGroup::default();
    let (list, batch, create) = group.rules();
    let handler = handler(
        &sdk,
        config(&cluster, "queue", "web"),
        &topic,
        &[&list, &batch, &create],
    );

    let answer = handler
        .handle(push_event("v1.4.0", &rfc3339(now() - 5)))
        .await
        .unwrap();

    assert_eq!(create.num_calls(), 1);
    assert_eq!(answer[0]["outcome"], "started", "{answer}");
    // The new revision: the pinned image, everything else as before.
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let latest = ecs
        .describe_task_definition()
        .task_definition(&family)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let registered = latest.task_definition.clone().unwrap();
    assert_eq!(registered.revision, original.revision + 1);
    let pinned = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app@{DIGEST}");
    assert_eq!(
        registered.container_definitions()[0].image(),
        Some(pinned.as_str())
    );
    let mut expected = writable(&original);
    expected.container_definitions.as_mut().unwrap()[0].image = Some(pinned.clone());
    assert_eq!(writable(&registered), expected, "every other field intact");
    let tags: Vec<_> = latest
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert!(tags.contains(&("team", "platform")));
    assert!(tags.contains(&("greenlight:image-tag", "v1.4.0")));
    assert!(tags.contains(&("greenlight:image-digest", DIGEST)));
    // The AppSpec, field by field.
    let appspec: Value = serde_json::from_str(&group.appspecs.lock().unwrap()[0]).unwrap();
    let target = &appspec["Resources"][0]["TargetService"];
    assert_eq!(target["Type"], "AWS::ECS::Service");
    assert_eq!(
        target["Properties"]["TaskDefinition"],
        registered.task_definition_arn().unwrap()
    );
    assert_eq!(
        target["Properties"]["LoadBalancerInfo"]["ContainerName"],
        "web"
    );
    assert_eq!(
        target["Properties"]["LoadBalancerInfo"]["ContainerPort"],
        8080
    );
    assert_eq!(
        appspec["Hooks"],
        json!([
            {"AfterAllowTestTraffic": "CodeDeployHook_greenlight-AfterAllowTestTraffic"},
            {"AfterAllowTraffic": "CodeDeployHook_greenlight-AfterAllowTraffic"}
        ])
    );
    let description = group.deployments.lock().unwrap()[0].1.clone();
    assert!(
        description.contains("web-app:v1.4.0") && description.contains(DIGEST),
        "{description}"
    );
    // The notification.
    let sent = notifications(&sdk, &queue).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "deployment_started");
    assert_eq!(sent[0].1["metadata"]["threadId"], "d-CREATED");
    assert_eq!(
        sent[0].1["metadata"]["additionalContext"]["image_digest"],
        DIGEST
    );
}

#[tokio::test]
async fn the_same_push_twice_or_a_second_tag_starts_one_deployment() {
    let sdk = sdk_config(&moto().endpoint).await;
    let (cluster, _, _) = ecs_service(&sdk).await;
    let (topic, _) = topic_with_queue(&sdk).await;
    let group = FakeGroup::default();
    let (list, batch, create) = group.rules();
    let handler = handler(
        &sdk,
        config(&cluster, "queue", "web"),
        &topic,
        &[&list, &batch, &create],
    );
    let event = push_event("v1.4.0", &rfc3339(now() - 5));

    let first = handler.handle(event.clone()).await.unwrap();
    let again = handler.handle(event).await.unwrap();
    let other_tag = handler
        .handle(push_event("v1.4", &rfc3339(now())))
        .await
        .unwrap();

    assert_eq!(create.num_calls(), 1, "one CreateDeployment for one digest");
    assert_eq!(first[0]["outcome"], "started");
    assert_eq!(again[0]["outcome"], "duplicate");
    assert_eq!(other_tag[0]["outcome"], "duplicate");
}

#[tokio::test]
async fn a_busy_group_queues_skips_or_supersedes_per_on_busy() {
    let sdk = sdk_config(&moto().endpoint).await;
    let (cluster, _, _) = ecs_service(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk).await;
    let in_flight = deploy_on_push::plan::description("web", "web-app", "v1.3.0", "sha256:aaaa");
    for (on_busy, outcome, event) in [
        ("queue", "queued", "deployment_queued"),
        ("skip", "skipped", "deployment_skipped"),
    ] {
        let group = FakeGroup::default().with("d-BUSY", &in_flight, "InProgress", now() - 60);
        let (list, batch, create) = group.rules();
        let handler = handler(
            &sdk,
            config(&cluster, on_busy, "web"),
            &topic,
            &[&list, &batch, &create],
        );
        let answer = handler
            .handle(push_event("v1.4.0", &rfc3339(now())))
            .await
            .unwrap();
        assert_eq!(create.num_calls(), 0, "{on_busy}");
        assert_eq!(answer[0]["outcome"], outcome);
        assert_eq!(answer[0]["in_flight_id"], "d-BUSY");
        let sent = notifications(&sdk, &queue).await;
        assert_eq!(
            sent.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
            [event],
            "{on_busy}"
        );
    }

    let group = FakeGroup::default().with("d-BUSY", &in_flight, "InProgress", now() - 60);
    let (list, batch, create) = group.rules();
    let stop = mock!(CodeDeployClient::stop_deployment)
        .match_requests(|r| {
            r.deployment_id() == Some("d-BUSY") && r.auto_rollback_enabled() == Some(true)
        })
        .then_output(|| {
            StopDeploymentOutput::builder()
                .status(StopStatus::Pending)
                .build()
        });
    let handler = handler(
        &sdk,
        config(&cluster, "supersede", "web"),
        &topic,
        &[&list, &batch, &create, &stop],
    );
    let answer = handler
        .handle(push_event("v1.4.0", &rfc3339(now())))
        .await
        .unwrap();
    assert_eq!(stop.num_calls(), 1);
    assert_eq!(
        create.num_calls(),
        0,
        "the new image deploys when the stop completes"
    );
    assert_eq!(answer[0]["outcome"], "superseded");
}

/// Superseding a deployment that finished meanwhile starts the push at once; if that
/// start fails, the failure is returned for Lambda to retry (retryable) or notified
/// (not retryable): never dropped.
#[tokio::test]
async fn a_supersede_whose_restart_fails_is_retried_or_notified_never_dropped() {
    use aws_sdk_codedeploy::operation::stop_deployment::StopDeploymentError;
    use aws_sdk_codedeploy::types::error::{
        DeploymentAlreadyCompletedException, InvalidRoleException,
    };
    let sdk = sdk_config(&moto().endpoint).await;
    let (cluster, _, _) = ecs_service(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk).await;
    let in_flight = deploy_on_push::plan::description("web", "web-app", "v1.3.0", "sha256:aaaa");
    let finished_meanwhile = || {
        mock!(CodeDeployClient::stop_deployment).then_error(|| {
            StopDeploymentError::DeploymentAlreadyCompletedException(
                DeploymentAlreadyCompletedException::builder()
                    .message("done")
                    .build(),
            )
        })
    };

    // A throttled CreateDeployment: the error goes back to Lambda, naming the operation.
    let group = FakeGroup::default().with("d-BUSY", &in_flight, "InProgress", now() - 60);
    let (list, batch, _) = group.rules();
    let stop = finished_meanwhile();
    let throttled = mock!(CodeDeployClient::create_deployment).then_error(|| {
        CreateDeploymentError::generic(
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate exceeded")
                .build(),
        )
    });
    let throttled_handler = handler(
        &sdk,
        config(&cluster, "supersede", "web"),
        &topic,
        &[&list, &batch, &throttled, &stop],
    );
    // As in Lambda, retries end at the invocation's deadline; what is returned then
    // (the last throttling error, or the attempt cut off) names the operation.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    let err = greenlight::aws::retry::within(
        deadline,
        throttled_handler.handle(push_event("v1.4.0", &rfc3339(now()))),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string()
            .contains("CodeDeploy CreateDeployment failed"),
        "{err}"
    );
    assert!(throttled.num_calls() >= 1);

    // A refused CreateDeployment: notified as a failed start, the event acknowledged.
    let group = FakeGroup::default().with("d-BUSY", &in_flight, "InProgress", now() - 60);
    let (list, batch, _) = group.rules();
    let stop = finished_meanwhile();
    let refused = mock!(CodeDeployClient::create_deployment).then_error(|| {
        CreateDeploymentError::InvalidRoleException(
            InvalidRoleException::builder()
                .message("the service role cannot be assumed")
                .build(),
        )
    });
    let refused_handler = handler(
        &sdk,
        config(&cluster, "supersede", "web"),
        &topic,
        &[&list, &batch, &refused, &stop],
    );
    notifications(&sdk, &queue).await;
    let answer = refused_handler
        .handle(push_event("v1.4.1", &rfc3339(now())))
        .await
        .unwrap();
    assert_eq!(answer[0]["outcome"], "failed_to_start", "{answer}");
    assert_eq!(refused.num_calls(), 1);
    let sent: Vec<String> = notifications(&sdk, &queue)
        .await
        .into_iter()
        .map(|n| n.0)
        .collect();
    assert!(
        sent.contains(&"deployment_start_failed".to_string()),
        "{sent:?}"
    );
}

#[tokio::test]
async fn deployment_limit_exceeded_from_create_is_handled_as_busy() {
    let sdk = sdk_config(&moto().endpoint).await;
    let (cluster, _, _) = ecs_service(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk).await;
    let group = FakeGroup::default();
    let (list, batch, _) = group.rules();
    let create = mock!(CodeDeployClient::create_deployment).then_error(|| {
        CreateDeploymentError::DeploymentLimitExceededException(
            DeploymentLimitExceededException::builder()
                .message(
                    "The Deployment Group 'web-dg' already has an active Deployment 'd-OTHER1234'",
                )
                .build(),
        )
    });
    let handler = handler(
        &sdk,
        config(&cluster, "queue", "web"),
        &topic,
        &[&list, &batch, &create],
    );

    let answer = handler
        .handle(push_event("v1.4.0", &rfc3339(now())))
        .await
        .unwrap();

    assert_eq!(create.num_calls(), 1);
    assert_eq!(answer[0]["outcome"], "queued", "{answer}");
    assert_eq!(answer[0]["in_flight_id"], "d-OTHER1234");
    assert_eq!(notifications(&sdk, &queue).await[0].0, "deployment_queued");
}

#[tokio::test]
async fn a_container_the_task_definition_lacks_is_notified_and_acknowledged() {
    let sdk = sdk_config(&moto().endpoint).await;
    let (cluster, family, _) = ecs_service(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk).await;
    let group = FakeGroup::default();
    let (list, batch, create) = group.rules();
    let handler = handler(
        &sdk,
        config(&cluster, "queue", "api"),
        &topic,
        &[&list, &batch, &create],
    );

    let answer = handler
        .handle(push_event("v1.4.0", &rfc3339(now())))
        .await
        .expect("acknowledged: retrying cannot help");

    assert_eq!(create.num_calls(), 0);
    assert_eq!(answer[0]["outcome"], "failed_to_start");
    let reason = answer[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!(
            "task definition {family} has no container named \"api\" (it has: web, envoy)"
        )),
        "{reason}"
    );
    let sent = notifications(&sdk, &queue).await;
    assert_eq!(sent[0].0, "deployment_start_failed");
}

#[tokio::test]
async fn when_a_deployment_ends_the_newest_queued_image_deploys_and_older_ones_are_skipped() {
    let sdk = sdk_config(&moto().endpoint).await;
    let (cluster, _, _) = ecs_service(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk).await;
    // Two images pushed while d-DONE ran (the emulator stamps them with "now").
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    let repository = unique("web-app");
    ecr.create_repository()
        .repository_name(&repository)
        .send()
        .await
        .unwrap();
    let mut digests = Vec::new();
    for (i, tag) in ["v2.0.0", "v2.0.1"].iter().enumerate() {
        let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 100 + i, "digest": format!("sha256:{:064x}", i + 1)},
            "layers": []});
        let image = ecr
            .put_image()
            .repository_name(&repository)
            .image_tag(*tag)
            .image_manifest(manifest.to_string())
            .send()
            .await
            .unwrap();
        digests.push(image.image.unwrap().image_id.unwrap().image_digest.unwrap());
        // ECR timestamps have one-second resolution; keep the pushes ordered.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let config = Arc::new(
        Config::parse(&format!(
            "services:\n  - {{ name: web, repository: {repository}, tags: [\"v*\"], cluster: {cluster}, service: web, container: web,\n      codedeploy: {{ application: web-app, deployment_group: web-dg, deployment_config: CodeDeployDefault.ECSAllAtOnce }} }}\n"
        ))
        .unwrap(),
    );
    let ended = deploy_on_push::plan::description("web", &repository, "v1.9.0", "sha256:bbbb");
    let group = FakeGroup::default().with("d-DONE", &ended, "Succeeded", now() - 120);
    let (list, batch, create) = group.rules();
    let get = mock!(CodeDeployClient::get_deployment).then_output(move || {
        GetDeploymentOutput::builder()
            .deployment_info(
                DeploymentInfo::builder()
                    .deployment_id("d-DONE")
                    .description(ended.clone())
                    .status(DeploymentStatus::Succeeded)
                    .create_time(DateTime::from_secs(now() - 120))
                    .build(),
            )
            .build()
    });
    let handler = handler(&sdk, config, &topic, &[&list, &batch, &create, &get]);
    let mut change: Value =
        serde_json::from_str(include_str!("../../events/deployment-state-change.json")).unwrap();
    change["detail"]["deploymentId"] = "d-DONE".into();

    let answer = handler.handle(change.clone()).await.unwrap();
    let again = handler.handle(change).await.unwrap();

    assert_eq!(create.num_calls(), 1, "{answer}\n{again}");
    assert_eq!(answer[0]["outcome"], "finished");
    assert_eq!(answer[1]["outcome"], "started");
    let description = group.deployments.lock().unwrap()[0].1.clone();
    assert!(
        description.contains("v2.0.1") && description.contains(&digests[1]),
        "newest deployed: {description}"
    );
    assert_eq!(
        again[1]["outcome"], "duplicate",
        "a redelivered state change starts nothing new"
    );
    let events: Vec<String> = notifications(&sdk, &queue)
        .await
        .into_iter()
        .map(|n| n.0)
        .collect();
    assert!(
        events.contains(&"deployment_finished".to_string()),
        "{events:?}"
    );
    assert!(
        events.contains(&"deployment_skipped".to_string()),
        "the middle image is reported: {events:?}"
    );
    assert!(
        events.contains(&"deployment_started".to_string()),
        "{events:?}"
    );
}

#[tokio::test]
async fn pipeline_services_start_an_execution_with_the_image_variable_once() {
    use aws_sdk_codepipeline::operation::start_pipeline_execution::StartPipelineExecutionOutput;
    let sdk = sdk_config(&moto().endpoint).await;
    let (topic, queue) = topic_with_queue(&sdk).await;
    // The emulator's StartPipelineExecution ignores variables and request tokens, so
    // the request is checked at the SDK layer.
    let start = mock!(aws_sdk_codepipeline::Client::start_pipeline_execution)
        .match_requests(|r| {
            r.name() == Some("web-pipeline")
                && r.variables().len() == 1
                && r.variables()[0].name() == "IMAGE_URI"
                && r.variables()[0].value()
                    == format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app@{DIGEST}")
                && r.client_request_token()
                    .is_some_and(|t| t.ends_with(DIGEST.trim_start_matches("sha256:")))
        })
        .then_output(|| {
            StartPipelineExecutionOutput::builder()
                .pipeline_execution_id("exec-1")
                .build()
        });
    let config = Arc::new(
        Config::parse(
            "services:\n  - { name: web, repository: web-app, cluster: c, service: web, container: web,\n      pipeline: { name: web-pipeline, image_variable: IMAGE_URI } }\n",
        )
        .unwrap(),
    );
    let handler = DeployOnPush {
        config: config.into(),
        backends: Backends {
            codedeploy: CodeDeploy::from_conf(&sdk),
            ecs: Ecs::from_conf(&sdk),
            pipelines: Pipelines::new(mock_client!(aws_sdk_codepipeline, [&start])),
            hook_pattern: None,
        },
        ecr: Ecr::from_conf(&sdk),
        capture: greenlight::evidence::Capture::from_conf(&sdk),
        notifier: Notifier::new(Sns::from_conf(&sdk), Some(topic)),
        trigger: greenlight::ledger::Trigger::Push,
        ledger: None,
        scheduler: None,
    };

    let answer = handler
        .handle(push_event("v1.4.0", &rfc3339(now())))
        .await
        .unwrap();

    assert_eq!(start.num_calls(), 1);
    assert_eq!(answer[0]["outcome"], "pipeline_started");
    assert_eq!(notifications(&sdk, &queue).await[0].0, "deployment_started");
}
