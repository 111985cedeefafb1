//! Adapters through the real AWS SDK against the moto emulator.

use aws_sdk_ecs::types::{ContainerDefinition, PortMapping, Tag};
use greenlight::aws::elb::ListenerResolver;
use greenlight::aws::{Ecs, LoadBalancers, Sns};
use greenlight::notify::{Notification, NotificationEvent, Notifier, Severity};
use greenlight_tests::aws::sdk_config;
use greenlight_tests::{moto, unique};
use serde_json::Value;

#[tokio::test]
async fn ecs_adapter_reads_the_services_task_definition_with_tags() {
    let sdk = sdk_config(&moto().endpoint).await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let cluster = unique("cluster");
    let family = unique("web");
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let registered = ecs
        .register_task_definition()
        .family(&family)
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app:v1")
                .memory(256)
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .build(),
        )
        .tags(Tag::builder().key("team").value("platform").build())
        .send()
        .await
        .unwrap();
    let arn = registered
        .task_definition
        .unwrap()
        .task_definition_arn
        .unwrap();
    ecs.create_service()
        .cluster(&cluster)
        .service_name("web")
        .task_definition(&arn)
        .desired_count(1)
        .send()
        .await
        .unwrap();

    let current = Ecs::from_conf(&sdk)
        .service_task_definition(&cluster, "web")
        .await
        .unwrap();

    assert_eq!(
        current.task_definition.task_definition_arn(),
        Some(arn.as_str())
    );
    let container = &current.task_definition.container_definitions()[0];
    assert_eq!(
        container.image(),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app:v1")
    );
    assert_eq!(container.port_mappings()[0].container_port(), Some(8080));
    assert!(current
        .tags
        .iter()
        .any(|t| t.key() == Some("team") && t.value() == Some("platform")));
}

#[tokio::test]
async fn ecs_adapter_names_a_missing_service() {
    let sdk = sdk_config(&moto().endpoint).await;
    let cluster = unique("cluster");
    aws_sdk_ecs::Client::new(&sdk)
        .create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let err = Ecs::from_conf(&sdk)
        .service_task_definition(&cluster, "nope")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("service nope not found in cluster"),
        "{err}"
    );
}

#[tokio::test]
async fn listener_resolver_builds_the_test_listener_url() {
    let endpoint = &moto().endpoint;
    let sdk = sdk_config(endpoint).await;
    let (listener_arn, dns) = greenlight_tests::aws::listener_on(&sdk, endpoint, 8080).await;

    let url = LoadBalancers::from_conf(&sdk)
        .listener_url(&listener_arn)
        .await
        .unwrap();

    assert_eq!(url, format!("http://{dns}:8080"));
    let missing = LoadBalancers::from_conf(&sdk)
        .listener_url("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/none/0/0")
        .await;
    assert!(missing.is_err());
}

/// Creates a topic with an SQS subscriber and returns (topic ARN, queue URL).
async fn topic_with_queue(sdk: &aws_config::SdkConfig, raw: bool) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name(unique("greenlight"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("inbox"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        queue_url.rsplit('/').next().unwrap()
    );
    let mut subscribe = sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn);
    if raw {
        subscribe = subscribe.attributes("RawMessageDelivery", "true");
    }
    subscribe.send().await.unwrap();
    (topic, queue_url)
}

async fn receive_all(sdk: &aws_config::SdkConfig, queue_url: &str) -> Vec<String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let out = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    out.messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.body)
        .collect()
}

#[tokio::test]
async fn notifications_reach_an_sqs_subscriber_as_custom_notification_json_with_attributes() {
    let sdk = sdk_config(&moto().endpoint).await;
    let (topic, queue) = topic_with_queue(&sdk, false).await;
    let notifier = Notifier::new(Sns::from_conf(&sdk), Some(topic.clone()));
    let notification = Notification::new(
        NotificationEvent::HookFailed,
        Severity::Error,
        "web",
        "AfterAllowTestTraffic failed",
    )
    .deployment("d-TEST1", Some("us-east-1"))
    .description("health: expected 200, got 503")
    .next_step("Look at the green tasks")
    .fact("lifecycle_event", "AfterAllowTestTraffic");

    let id = notifier.notify(&notification).await;

    assert!(id.is_some(), "publish failed");
    assert_eq!(notifier.failures(), 0);
    let bodies = receive_all(&sdk, &queue).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    // The SQS subscriber gets the SNS envelope; its Message is the `default` variant.
    let envelope: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(
        envelope["Subject"],
        "[Greenlight] web: AfterAllowTestTraffic failed"
    );
    assert_eq!(
        envelope["MessageAttributes"]["event"]["Value"],
        "hook_failed"
    );
    assert_eq!(envelope["MessageAttributes"]["service"]["Value"], "web");
    assert_eq!(envelope["MessageAttributes"]["severity"]["Value"], "error");
    let chat: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(chat["version"], "1.0");
    assert_eq!(chat["source"], "custom");
    assert_eq!(chat["content"]["title"], "AfterAllowTestTraffic failed");
    assert!(chat["content"]["description"]
        .as_str()
        .unwrap()
        .contains("expected 200, got 503"));
    assert_eq!(chat["metadata"]["threadId"], "d-TEST1");
    assert_eq!(
        chat["metadata"]["additionalContext"]["lifecycle_event"],
        "AfterAllowTestTraffic"
    );
}

#[tokio::test]
async fn a_failed_publish_is_counted_and_does_not_fail_the_caller() {
    let sdk = sdk_config(&moto().endpoint).await;
    let notifier = Notifier::new(
        Sns::from_conf(&sdk),
        Some("arn:aws:sns:us-east-1:123456789012:does-not-exist".into()),
    );
    let notification = Notification::new(
        NotificationEvent::HookPassed,
        Severity::Info,
        "web",
        "passed",
    );
    assert_eq!(notifier.notify(&notification).await, None);
    assert_eq!(notifier.failures(), 1);
}
