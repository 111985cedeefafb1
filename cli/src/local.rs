//! What the rehearsal and the benchmark both set up in the moto emulator.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// SDK configuration for the emulator at `endpoint`, with dummy credentials.
pub async fn emulator_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "test",
            "test",
            None,
            None,
            "greenlight-local",
        ))
        .load()
        .await
}

/// ECS cluster `prod` with service `web` (CodeDeploy controller) running `image` in
/// container `web` on port 8080.
pub async fn seed_service(sdk: &SdkConfig, image: &str) -> Result<(), String> {
    seed_named_service(sdk, "web", image).await
}

/// The CodeDeploy-controlled ECS service `prod/<name>` (cluster created if absent)
/// running `image` in its container `web`.
pub async fn seed_named_service(sdk: &SdkConfig, name: &str, image: &str) -> Result<(), String> {
    use aws_sdk_ecs::types::{
        ContainerDefinition, DeploymentController, DeploymentControllerType, LogConfiguration,
        LogDriver, PortMapping,
    };
    let ecs = aws_sdk_ecs::Client::new(sdk);
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .map_err(|e| format!("CreateCluster: {e:?}"))?;
    let registered = ecs
        .register_task_definition()
        .family(name)
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image(image)
                .memory(256)
                .port_mappings(PortMapping::builder().container_port(8080).build())
                // awslogs, as most services log: green's lines are read on a failure.
                .log_configuration(
                    LogConfiguration::builder()
                        .log_driver(LogDriver::Awslogs)
                        .options("awslogs-group", format!("/ecs/{name}"))
                        .options("awslogs-region", "us-east-1")
                        .options("awslogs-stream-prefix", "app")
                        .build()
                        .map_err(|e| e.to_string())?,
                )
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("RegisterTaskDefinition: {e:?}"))?;
    let controller = DeploymentController::builder()
        .r#type(DeploymentControllerType::CodeDeploy)
        .build()
        .map_err(|e| e.to_string())?;
    ecs.create_service()
        .cluster("prod")
        .service_name(name)
        .set_task_definition(
            registered
                .task_definition
                .and_then(|t| t.task_definition_arn),
        )
        .desired_count(2)
        .deployment_controller(controller)
        .send()
        .await
        .map_err(|e| format!("CreateService: {e:?}"))?;
    Ok(())
}

/// An SNS topic named `name`; its ARN.
pub async fn topic(sdk: &SdkConfig, name: &str) -> Result<String, String> {
    aws_sdk_sns::Client::new(sdk)
        .create_topic()
        .name(name)
        .send()
        .await
        .map_err(|e| format!("CreateTopic: {e:?}"))?
        .topic_arn
        .ok_or_else(|| "CreateTopic: no topic ARN".to_string())
}

/// A manifest unique to `seed`. moto derives the digest from the layer digests only,
/// so the seed goes into the layer.
pub fn manifest(seed: &str) -> String {
    let hex: String = seed.bytes().map(|b| format!("{b:02x}")).collect();
    let digest = format!("sha256:{:0>64}", &hex[..hex.len().min(64)]);
    serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023, "digest": digest},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654, "digest": digest}]})
    .to_string()
}
