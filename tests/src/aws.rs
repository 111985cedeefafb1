//! SDK configuration and fixtures against the emulator.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// SDK configuration pointing every client at `endpoint`, with dummy credentials.
/// Like the functions' own configuration, the SDK makes one attempt per call:
/// Greenlight's adapters do the retrying (`greenlight::aws::retry`).
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(crate::REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::for_tests())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

/// A new cluster and a task definition of one container `web` running `image` on port
/// 8080: (cluster name, task definition ARN).
pub async fn cluster_and_web_task_definition(
    ecs: &aws_sdk_ecs::Client,
    image: &str,
) -> (String, String) {
    use aws_sdk_ecs::types::{ContainerDefinition, PortMapping};
    let cluster = crate::unique("prod");
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let task_definition = ecs
        .register_task_definition()
        .family(crate::unique("web"))
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image(image)
                .memory(256)
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_definition
        .and_then(|t| t.task_definition_arn)
        .unwrap();
    (cluster, task_definition)
}

/// Two subnet ids of the emulator's default VPC (EC2 DescribeSubnets over the Query
/// protocol; avoids compiling the large EC2 SDK crate for one fixture).
pub async fn default_subnets(endpoint: &str) -> Vec<String> {
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("Action=DescribeSubnets&Version=2016-11-15")
        .send()
        .await
        .expect("DescribeSubnets")
        .text()
        .await
        .expect("DescribeSubnets body");
    let mut subnets: Vec<String> = response
        .split("<subnetId>")
        .skip(1)
        .filter_map(|s| s.split("</subnetId>").next())
        .map(str::to_string)
        .collect();
    subnets.dedup();
    subnets.truncate(2);
    assert_eq!(
        subnets.len(),
        2,
        "emulator has no default subnets: {response}"
    );
    subnets
}

/// Creates a topic with an SQS subscriber; returns (topic ARN, queue URL).
pub async fn topic_with_queue(sdk: &SdkConfig) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name(crate::unique("greenlight"))
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn
        .expect("topic ARN");
    let queue_url = sqs
        .create_queue()
        .queue_name(crate::unique("inbox"))
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("queue URL");
    let queue_arn = format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        queue_url.rsplit('/').next().unwrap_or_default()
    );
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .expect("Subscribe");
    (topic, queue_url)
}

/// Every notification delivered to the queue so far: (event attribute, chat JSON, subject).
pub async fn notifications(
    sdk: &SdkConfig,
    queue_url: &str,
) -> Vec<(String, serde_json::Value, String)> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut out = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for message in messages {
            let envelope: serde_json::Value =
                serde_json::from_str(message.body().unwrap_or("{}")).unwrap_or_default();
            let event = envelope["MessageAttributes"]["event"]["Value"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let chat = serde_json::from_str(envelope["Message"].as_str().unwrap_or("{}"))
                .unwrap_or_default();
            let subject = envelope["Subject"].as_str().unwrap_or_default().to_string();
            out.push((event, chat, subject));
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .ok();
            }
        }
    }
}

/// An application load balancer in the emulator with one HTTP listener on `port`
/// forwarding to a target group; returns (listener ARN, load balancer DNS name).
pub async fn listener_on(sdk: &SdkConfig, endpoint: &str, port: i32) -> (String, String) {
    use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum};
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let lb = elb
        .create_load_balancer()
        .name(crate::unique("alb"))
        .set_subnets(Some(default_subnets(endpoint).await))
        .send()
        .await
        .expect("CreateLoadBalancer")
        .load_balancers
        .unwrap_or_default()
        .remove(0);
    let target_group = elb
        .create_target_group()
        .name(crate::unique("tg"))
        .protocol(ProtocolEnum::Http)
        .port(80)
        .set_vpc_id(lb.vpc_id().map(str::to_string))
        .send()
        .await
        .expect("CreateTargetGroup")
        .target_groups
        .unwrap_or_default()
        .remove(0);
    let listener = elb
        .create_listener()
        .set_load_balancer_arn(lb.load_balancer_arn().map(str::to_string))
        .protocol(ProtocolEnum::Http)
        .port(port)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .set_target_group_arn(target_group.target_group_arn().map(str::to_string))
                .build(),
        )
        .send()
        .await
        .expect("CreateListener")
        .listeners
        .unwrap_or_default()
        .remove(0);
    (
        listener.listener_arn().unwrap_or_default().to_string(),
        lb.dns_name().unwrap_or_default().to_string(),
    )
}
