use serde_json::Value;

use super::*;

fn sample(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn without(mut value: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    value
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
    value
}

fn set(mut value: Value, pointer: &str, new: Value) -> Value {
    *value.pointer_mut(pointer).unwrap() = new;
    value
}

#[test]
fn ecr_push_sample_parses_and_pins_the_digest() {
    let push = EcrImageAction::parse(&sample("ecr-push.json")).unwrap();
    assert!(push.is_successful_push());
    assert_eq!(push.repository, "web-app");
    assert_eq!(push.tag.as_deref(), Some("v1.4.0"));
    assert_eq!(
        push.pinned_image().unwrap(),
        format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app@{}",
            push.digest.clone().unwrap()
        )
    );
}

#[test]
fn ecr_failed_push_and_delete_samples_parse_as_not_pushes() {
    assert!(!EcrImageAction::parse(&sample("ecr-push-failed.json"))
        .unwrap()
        .is_successful_push());
    assert!(!EcrImageAction::parse(&sample("ecr-delete.json"))
        .unwrap()
        .is_successful_push());
}

#[test]
fn malformed_ecr_events_name_the_field() {
    let push = sample("ecr-push.json");
    let cases = [
        (
            without(push.clone(), "/detail/repository-name"),
            "detail: missing field `repository-name`",
        ),
        (
            set(push.clone(), "/detail/image-digest", "sha256:zz".into()),
            "detail.image-digest: \"sha256:zz\" is not",
        ),
        (
            without(push.clone(), "/detail/image-digest"),
            "detail.image-digest: missing on a successful push",
        ),
        (
            set(push.clone(), "/detail/image-tag", "../etc".into()),
            "detail.image-tag:",
        ),
        (
            set(push.clone(), "/detail/repository-name", 7.into()),
            "detail.repository-name: invalid type",
        ),
        (
            set(push.clone(), "/account", "12".into()),
            "account: missing or not a 12-digit",
        ),
        (
            set(push, "/detail", Value::Null),
            "detail: invalid type: null",
        ),
    ];
    for (event, expected) in cases {
        let err = EcrImageAction::parse(&event).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{err:?} does not contain {expected:?}"
        );
    }
}

#[test]
fn foreign_events_are_rejected_naming_what_they_were() {
    let err = EcrImageAction::parse(&sample("alarm-eventbridge.json")).unwrap_err();
    assert!(
        matches!(&err, EventError::Foreign { found, .. } if found.contains("aws.cloudwatch")),
        "{err}"
    );
    let err = EcrImageAction::parse(&serde_json::json!([1, 2])).unwrap_err();
    assert!(err.to_string().contains("not a JSON object"), "{err}");
    let err = HookInvocation::parse(&sample("ecr-push.json")).unwrap_err();
    assert!(matches!(err, EventError::Foreign { .. }), "{err}");
    let err = DeploymentStateChange::parse(&sample("lifecycle-hook.json")).unwrap_err();
    assert!(
        err.to_string()
            .contains("keys [DeploymentId, LifecycleEventHookExecutionId]"),
        "{err}"
    );
    let err = AlarmTransition::parse_all(&sample("ecr-push.json")).unwrap_err();
    assert!(matches!(err, EventError::Foreign { .. }), "{err}");
}

#[test]
fn lifecycle_hook_sample_parses_and_empty_ids_are_rejected() {
    let hook = HookInvocation::parse(&sample("lifecycle-hook.json")).unwrap();
    assert!(hook.deployment_id.starts_with("d-"));
    assert!(!hook.execution_id.is_empty());
    let err = HookInvocation::parse(&serde_json::json!({"DeploymentId": "d-1"})).unwrap_err();
    assert!(
        err.to_string()
            .contains("missing field `LifecycleEventHookExecutionId`"),
        "{err}"
    );
    let err = HookInvocation::parse(
        &serde_json::json!({"DeploymentId": "", "LifecycleEventHookExecutionId": "x"}),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("DeploymentId: missing or empty"),
        "{err}"
    );
}

#[test]
fn eventbridge_alarm_samples_parse() {
    let alarms = AlarmTransition::parse_all(&sample("alarm-eventbridge.json")).unwrap();
    let alarm = &alarms[0];
    assert_eq!(alarm.alarm_name, "web-5xx");
    assert!(alarm.entered_alarm());
    assert_eq!(alarm.via, AlarmVia::EventBridge);
    assert_eq!(
        alarm.metric.as_deref(),
        Some("AWS/ApplicationELB/HTTPCode_Target_5XX_Count")
    );
    assert_eq!(alarm.threshold, Some(5.0));

    let ok = &AlarmTransition::parse_all(&sample("alarm-eventbridge-ok.json")).unwrap()[0];
    assert_eq!(ok.state, AlarmState::Ok);
    assert!(!ok.entered_alarm());

    let composite =
        &AlarmTransition::parse_all(&sample("alarm-eventbridge-composite.json")).unwrap()[0];
    assert!(composite.entered_alarm());
    assert!(composite
        .composite_rule
        .as_deref()
        .unwrap()
        .contains("ALARM(web-5xx)"));
}

#[test]
fn repeated_alarm_is_not_a_transition() {
    let event = set(
        sample("alarm-eventbridge.json"),
        "/detail/previousState/value",
        "ALARM".into(),
    );
    let alarm = &AlarmTransition::parse_all(&event).unwrap()[0];
    assert!(!alarm.entered_alarm());
}

#[test]
fn sns_alarm_samples_parse() {
    let alarm = &AlarmTransition::parse_all(&sample("alarm-sns.json")).unwrap()[0];
    assert_eq!(alarm.alarm_name, "web-errors");
    assert_eq!(alarm.via, AlarmVia::Sns);
    assert!(alarm.entered_alarm());
    assert_eq!(alarm.threshold, Some(10.0));
    assert_eq!(
        alarm.metric.as_deref(),
        Some("AWS/ApplicationELB/HTTPCode_Target_5XX_Count")
    );
    let composite = &AlarmTransition::parse_all(&sample("alarm-sns-composite.json")).unwrap()[0];
    assert!(composite.composite_rule.is_some() && composite.entered_alarm());
}

#[test]
fn malformed_sns_alarms_name_the_field() {
    let event = set(
        sample("alarm-sns.json"),
        "/Records/0/Sns/Message",
        "not json".into(),
    );
    let err = AlarmTransition::parse_all(&event).unwrap_err().to_string();
    assert!(err.contains("Records[0].Sns.Message: not JSON"), "{err}");
    let event = set(
        sample("alarm-sns.json"),
        "/Records/0/Sns/Message",
        r#"{"NewStateValue":"ALARM"}"#.into(),
    );
    let err = AlarmTransition::parse_all(&event).unwrap_err().to_string();
    assert!(
        err.contains("Records[0].Sns.Message: missing field `AlarmName`"),
        "{err}"
    );
    let event = without(sample("alarm-sns.json"), "/Records/0/Sns");
    let err = AlarmTransition::parse_all(&event).unwrap_err().to_string();
    assert!(err.contains("Records[0]: missing field `Sns`"), "{err}");
}

#[test]
fn malformed_eventbridge_alarm_names_the_field() {
    let event = without(sample("alarm-eventbridge.json"), "/detail/alarmName");
    let err = AlarmTransition::parse_all(&event).unwrap_err().to_string();
    assert!(err.contains("detail: missing field `alarmName`"), "{err}");
    let event = set(
        sample("alarm-eventbridge.json"),
        "/detail/state/value",
        "SIDEWAYS".into(),
    );
    let err = AlarmTransition::parse_all(&event).unwrap_err().to_string();
    assert!(err.contains("detail.state.value"), "{err}");
}

#[test]
fn ecs_deployment_state_change_sample_parses() {
    let change =
        EcsDeploymentStateChange::parse(&sample("ecs-deployment-state-change.json")).unwrap();
    assert_eq!(
        change.service_arn,
        "arn:aws:ecs:us-east-1:123456789012:service/prod/web"
    );
    assert!(change.is_terminal());
    assert_eq!(change.state(), "SUCCESS");
    let err = EcsDeploymentStateChange::parse(&set(
        sample("ecs-deployment-state-change.json"),
        "/resources",
        serde_json::json!([]),
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("resources: names no ECS service ARN"), "{err}");
}

#[test]
fn ecs_hook_payloads_parse_and_rollbacks_are_recognised() {
    let hook = match HookPayload::parse(&sample("ecs-hook-post-test-traffic-shift.json")).unwrap() {
        HookPayload::EcsNative(hook) => hook,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        hook.stage(),
        Some(crate::LifecycleEvent::AfterAllowTestTraffic)
    );
    assert_eq!(
        hook.service_arn,
        "arn:aws:ecs:us-east-1:123456789012:service/prod/web"
    );
    assert!(!hook.is_rollback());
    assert_eq!(hook.hook_details["team"], "web");

    let mut value = sample("ecs-hook-post-test-traffic-shift.json");
    value["lifecycleStage"] = "TEST_TRAFFIC_SHIFT".into();
    let target = value["executionDetails"]["targetServiceRevisionArn"].clone();
    let target = target.as_str().unwrap();
    value["executionDetails"]["testTrafficWeights"] = serde_json::json!({ target: 0, "arn:aws:ecs:us-east-1:123456789012:service-revision/prod/web/1": 100 });
    let HookPayload::EcsNative(rollback) = HookPayload::parse(&value).unwrap() else {
        panic!()
    };
    assert!(rollback.is_rollback());
    assert_eq!(
        rollback.stage(),
        Some(crate::LifecycleEvent::TestTrafficShift)
    );

    // A stage the SDK has no variant for stays text and is no error.
    value["lifecycleStage"] = "SOME_FUTURE_STAGE".into();
    let HookPayload::EcsNative(future) = HookPayload::parse(&value).unwrap() else {
        panic!()
    };
    assert_eq!(future.stage(), None);

    let err = HookPayload::parse(&without(
        sample("ecs-hook-post-test-traffic-shift.json"),
        "/executionDetails/serviceArn",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("executionDetails: missing field `serviceArn`"),
        "{err}"
    );
    assert!(matches!(
        HookPayload::parse(&sample("lifecycle-hook.json")).unwrap(),
        HookPayload::CodeDeploy(_)
    ));
}

#[test]
fn deployment_state_change_sample_parses() {
    let change = DeploymentStateChange::parse(&sample("deployment-state-change.json")).unwrap();
    assert_eq!(change.application, "web-app");
    assert_eq!(change.deployment_group, "web-dg");
    assert_eq!(change.state, "SUCCESS");
    assert!(change.is_terminal());
    let err = DeploymentStateChange::parse(&without(
        sample("deployment-state-change.json"),
        "/detail/deploymentGroup",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("detail.deploymentGroup: missing or empty"),
        "{err}"
    );
}

fn upstream(name: &str) -> Value {
    sample(&format!("upstream/{name}"))
}

#[test]
fn an_eventbridge_alarm_without_configuration_or_reason_is_accepted() {
    let event = without(sample("alarm-eventbridge.json"), "/detail/configuration");
    let event = without(event, "/detail/state/reason");
    let event = without(event, "/detail/state/timestamp");
    let alarm = &AlarmTransition::parse_all(&event).unwrap()[0];
    assert_eq!(alarm.alarm_name, "web-5xx");
    assert!(alarm.entered_alarm());
    assert_eq!(alarm.metric, None);
    // What the function needs is still required, by name.
    let err = AlarmTransition::parse_all(&without(event, "/detail/state"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("detail.state: missing"), "{err}");
}

#[test]
fn the_registry_host_carries_the_partition_dns_suffix() {
    assert_eq!(
        ecr_registry("123456789012", "cn-north-1"),
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
    );
    assert_eq!(
        ecr_registry("123456789012", "us-gov-west-1"),
        "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com"
    );
    assert_eq!(
        ecr_registry("123456789012", "eu-west-1"),
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    );
    let mut push = sample("ecr-push.json");
    push["region"] = serde_json::json!("cn-northwest-1");
    let image = EcrImageAction::parse(&push)
        .unwrap()
        .pinned_image()
        .unwrap();
    assert!(
        image.starts_with(&format!(
            "{}.dkr.ecr.cn-northwest-1.amazonaws.com.cn/",
            push["account"].as_str().unwrap()
        )),
        "{image}"
    );
}

/// AWS's own samples (events/upstream/README.md names each source).
#[test]
fn aws_lambda_events_fixtures_parse_as_aws_sends_them() {
    let change = DeploymentStateChange::parse(&upstream(
        "codedeploy-deployment-state-change.lambda-events.json",
    ))
    .unwrap();
    assert_eq!(
        (
            change.application.as_str(),
            change.deployment_group.as_str()
        ),
        ("myApplication", "myDeploymentGroup")
    );
    assert!(change.is_terminal());

    let hook =
        HookInvocation::parse(&upstream("codedeploy-lifecycle-hook.lambda-events.json")).unwrap();
    assert_eq!(hook.deployment_id, "d-deploymentId");

    let sns = &AlarmTransition::parse_all(&upstream("alarm-sns-single-metric.lambda-events.json"))
        .unwrap()[0];
    assert_eq!(sns.alarm_name, "EXAMPLE");
    assert!(sns.entered_alarm());
    assert_eq!(sns.metric.as_deref(), Some("AWS/EC2/NetworkOut"));

    let action =
        &AlarmTransition::parse_all(&upstream("alarm-lambda-action-metric.lambda-events.json"))
            .unwrap()[0];
    assert_eq!(action.alarm_name, "lambda-demo-metric-alarm");
    assert_eq!(action.via, AlarmVia::LambdaAction);
    assert!(action.entered_alarm(), "INSUFFICIENT_DATA -> ALARM");
    assert_eq!(action.metric.as_deref(), Some("AWS/Logs/CallCount"));

    let documented =
        &AlarmTransition::parse_all(&upstream("cloudwatch-alarm-state-change.aws-docs.json"))
            .unwrap()[0];
    assert_eq!(documented.alarm_name, "ServerCpuTooHigh");
    assert!(documented.entered_alarm(), "OK -> ALARM");

    let ecs =
        EcsDeploymentStateChange::parse(&upstream("ecs-deployment-in-progress.aws-docs.json"))
            .unwrap();
    assert_eq!(
        ecs.service_arn,
        "arn:aws:ecs:us-west-2:111122223333:service/default/servicetest"
    );
    assert!(!ecs.is_terminal(), "in progress: the queue waits");

    let composite = &AlarmTransition::parse_all(&upstream(
        "alarm-lambda-action-composite.lambda-events.json",
    ))
    .unwrap()[0];
    assert!(composite.composite_rule.is_some());
    assert!(
        !composite.entered_alarm(),
        "ALARM -> ALARM is no transition"
    );
}

#[test]
fn aws_samples_greenlight_cannot_act_on_are_rejected_naming_the_field() {
    // The ECR user guide's push sample carries a 60-hex-digit digest: no registry
    // could serve it, so deploying it would fail minutes later at image pull.
    let err = EcrImageAction::parse(&upstream("ecr-image-push.aws-docs.json"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("detail.image-digest") && err.contains("sha256:<64 hex>"),
        "{err}"
    );
    // A plain SNS message is not an alarm.
    let err = AlarmTransition::parse_all(&upstream("sns-plain-message.lambda-events.json"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Records[0].Sns.Message: not JSON"), "{err}");
}

#[test]
fn every_sample_in_events_parses_as_some_accepted_input() {
    let dir = format!("{}/../events", env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let parsed = EcrImageAction::parse(&value).is_ok()
            || AlarmTransition::parse_all(&value).is_ok()
            || DeploymentStateChange::parse(&value).is_ok()
            || EcsDeploymentStateChange::parse(&value).is_ok()
            || HookPayload::parse(&value).is_ok();
        assert!(parsed, "{} parses as no accepted input", path.display());
        count += 1;
    }
    assert!(
        count >= 10,
        "expected the samples in events/, found {count}"
    );
}
