//! Every EventBridge rule pattern in `template.yaml` held against AWS's documented
//! sample events (`events/upstream/`): it matches what it must and nothing else.
//!
//! The emulator does not implement TestEventPattern, but it routes PutEvents through
//! rule patterns to targets: each pattern, resolved as CloudFormation would with the
//! given parameters, becomes a rule with an SQS queue as its target, and the queue
//! shows, through the real SDK, which samples matched.

use std::collections::BTreeMap;

use greenlight_cli::iam::Template;
use greenlight_tests::aws::sdk_config;
use greenlight_tests::{moto, unique, workspace_root};
use serde_json::{json, Value};

fn upstream(name: &str) -> Value {
    let path = workspace_root().join("events/upstream").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A documented sample with some fields changed (a JSON pointer each).
fn varied(mut event: Value, changes: &[(&str, Value)]) -> Value {
    for (pointer, value) in changes {
        *event.pointer_mut(pointer).unwrap() = value.clone();
    }
    event
}

/// Each rule's pattern, by event name, resolved with `parameters` and `case`.
fn patterns(parameters: &[(&str, &str)], case: &[(&str, bool)]) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let mut template = Template::parse(&text).unwrap();
    for (name, value) in parameters {
        template.set_parameter(name, value);
    }
    let case: BTreeMap<String, bool> = case.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    let mut out = BTreeMap::new();
    for (_, resource) in template.root()["Resources"].as_mapping().unwrap() {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (name, event) in events {
            if event["Type"].as_str() == Some("EventBridgeRule") {
                let pattern = template
                    .resolve_value(&event["Properties"]["Pattern"], &case)
                    .unwrap();
                out.insert(name.as_str().unwrap().to_string(), pattern);
            }
        }
    }
    out
}

/// Which of `events` the rule with `pattern` delivers to its target, in order.
async fn delivered(pattern: &Value, events: &[Value]) -> Vec<bool> {
    let sdk = sdk_config(&moto().endpoint).await;
    let (bus, sqs) = (
        aws_sdk_eventbridge::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
    );
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("pattern"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let rule = unique("rule");
    bus.put_rule()
        .name(&rule)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    bus.put_targets()
        .rule(&rule)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for event in events {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(event["source"].as_str().unwrap())
            .detail_type(event["detail-type"].as_str().unwrap())
            .detail(event["detail"].to_string())
            .set_resources(event["resources"].as_array().map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            }))
            .build();
        let put = bus.put_events().entries(entry).send().await.unwrap();
        assert_eq!(put.failed_entry_count, 0, "{put:?}");
        // The emulator delivers during PutEvents: the queue holds it now or never.
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        for message in &received {
            sqs.delete_message()
                .queue_url(&queue_url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        out.push(!received.is_empty());
    }
    out
}

#[tokio::test]
async fn each_rule_matches_what_aws_sends_and_nothing_else() {
    let parameters = [
        ("RepositoryNames", "my-repository-name,other"),
        ("CodeDeployApplications", "myApplication"),
    ];
    let all = patterns(&parameters, &[("HasAlarmPrefix", false)]);
    assert_eq!(
        all.keys().collect::<Vec<_>>(),
        [
            "AlarmEntered",
            "DeploymentStateChanged",
            "EcsDeploymentStateChanged",
            "ImagePushed",
            "PromotionDue"
        ]
    );

    let push = upstream("ecr-image-push.aws-docs.json");
    let pushes = [
        push.clone(),
        varied(push.clone(), &[("/detail/result", json!("FAILURE"))]),
        varied(push.clone(), &[("/detail/action-type", json!("DELETE"))]),
        varied(
            push.clone(),
            &[("/detail/repository-name", json!("not-configured"))],
        ),
    ];
    assert_eq!(
        delivered(&all["ImagePushed"], &pushes).await,
        [true, false, false, false],
        "a successful push to a configured repository, nothing else"
    );

    let codedeploy = upstream("codedeploy-deployment-state-change.lambda-events.json");
    let ecs = upstream("ecs-deployment-in-progress.aws-docs.json");
    let deployments = [
        codedeploy.clone(),
        varied(
            codedeploy.clone(),
            &[("/detail/application", json!("someone-elses"))],
        ),
        ecs.clone(),
    ];
    assert_eq!(
        delivered(&all["DeploymentStateChanged"], &deployments).await,
        [true, false, false],
        "CodeDeploy state changes of the configured applications"
    );

    let ecs_events = [
        ecs.clone(),
        varied(
            ecs.clone(),
            &[("/detail/eventName", json!("SERVICE_DEPLOYMENT_COMPLETED"))],
        ),
        varied(
            ecs.clone(),
            &[
                ("/detail/eventName", json!("SERVICE_DEPLOYMENT_FAILED")),
                ("/detail/eventType", json!("ERROR")),
            ],
        ),
        codedeploy.clone(),
    ];
    assert_eq!(
        delivered(&all["EcsDeploymentStateChanged"], &ecs_events).await,
        [false, true, true, false],
        "an ECS deployment that ended, not one in progress"
    );

    let alarm = upstream("cloudwatch-alarm-state-change.aws-docs.json");
    let alarms = [
        alarm.clone(),
        varied(
            alarm.clone(),
            &[
                ("/detail/state/value", json!("OK")),
                ("/detail/previousState/value", json!("ALARM")),
            ],
        ),
        push.clone(),
    ];
    assert_eq!(
        delivered(&all["AlarmEntered"], &alarms).await,
        [true, false, false],
        "an alarm entering ALARM, any name without a prefix"
    );

    // Greenlight's own event, as the soak's schedule puts it on the bus: what the
    // rule delivers is what deploy-on-push parses.
    let due = greenlight::events::PromotionDue {
        service: "web-prod".into(),
        from: "web-staging".into(),
        digest: format!("sha256:{}", "d".repeat(64)),
        source_deployment: "d-1".into(),
        approved_by: None,
        forced: None,
    };
    let due_event = due.event("us-east-1", "2026-12-06T18:00:00Z");
    assert_eq!(
        greenlight::events::PromotionDue::parse(&due_event).as_ref(),
        Ok(&due)
    );
    assert_eq!(
        delivered(
            &all["PromotionDue"],
            &[due_event, push.clone(), codedeploy.clone()]
        )
        .await,
        [true, false, false],
        "Greenlight's promotion events, nothing else"
    );

    // With AlarmNamePrefix, only alarms whose name starts with it.
    for (prefix, expected) in [("ServerCpu", true), ("web-", false)] {
        let prefixed = patterns(&[("AlarmNamePrefix", prefix)], &[("HasAlarmPrefix", true)]);
        assert_eq!(
            delivered(&prefixed["AlarmEntered"], std::slice::from_ref(&alarm)).await,
            [expected],
            "prefix {prefix}: {}",
            prefixed["AlarmEntered"]
        );
    }
}
