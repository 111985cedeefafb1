//! alarm-rollback with the samples in `events/`. CodeDeploy is mocked with
//! aws-smithy-mocks: the emulator implements no StopDeployment and drops
//! `alarmConfiguration` from deployment groups. Notifications go through the
//! emulator's SNS to an SQS subscriber.

use std::collections::HashMap;
use std::time::Instant;

use alarm_rollback::Rollback;
use aws_sdk_codedeploy::operation::batch_get_deployment_groups::BatchGetDeploymentGroupsOutput;
use aws_sdk_codedeploy::operation::list_deployments::{
    ListDeploymentsError, ListDeploymentsOutput,
};
use aws_sdk_codedeploy::operation::stop_deployment::{StopDeploymentError, StopDeploymentOutput};
use aws_sdk_codedeploy::types::error::{
    DeploymentAlreadyCompletedException, DeploymentGroupDoesNotExistException,
};
use aws_sdk_codedeploy::types::{
    Alarm, AlarmConfiguration, DeploymentGroupInfo, DeploymentStatus, StopStatus,
};
use aws_sdk_codedeploy::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use greenlight::aws::{CodeDeploy, Sns};
use greenlight::deploy::Backends;
use greenlight::notify::Notifier;
use greenlight::Config;
use greenlight_tests::aws::{notifications, sdk_config, topic_with_queue};
use greenlight_tests::moto;
use serde_json::Value;

const CONFIG: &str = r#"
services:
  - { name: web, repository: web-app, cluster: prod, service: web, container: web,
      codedeploy: { application: web-app, deployment_group: web-dg }, alarms: [web-5xx, web-errors] }
  - { name: worker, repository: worker, cluster: prod, service: worker, container: worker,
      codedeploy: { application: worker-app, deployment_group: worker-dg }, alarms: [web-5xx] }
  - { name: api, repository: api, cluster: prod, service: api, container: api,
      codedeploy: { application: api-app, deployment_group: api-dg } }
"#;

fn sample(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The configured groups' own alarm configurations, read per configured
/// application: api-dg guards itself with the composite alarm `web-health` (not in
/// the Greenlight config); the other groups name no alarm.
fn discovery() -> [Rule; 2] {
    let api = mock!(Client::batch_get_deployment_groups)
        .match_requests(|r| {
            r.application_name() == Some("api-app") && r.deployment_group_names() == ["api-dg"]
        })
        .then_output(|| {
            BatchGetDeploymentGroupsOutput::builder()
                .deployment_groups_info(
                    DeploymentGroupInfo::builder()
                        .application_name("api-app")
                        .deployment_group_name("api-dg")
                        .alarm_configuration(
                            AlarmConfiguration::builder()
                                .enabled(true)
                                .alarms(Alarm::builder().name("web-health").build())
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let others = mock!(Client::batch_get_deployment_groups)
        .match_requests(|r| r.application_name() != Some("api-app"))
        .then_output(|| BatchGetDeploymentGroupsOutput::builder().build());
    [api, others]
}

/// ListDeployments answers per group from `in_flight`; it must ask for in-flight statuses only.
fn in_flight(groups: HashMap<&'static str, Vec<&'static str>>) -> Rule {
    mock!(Client::list_deployments)
        .match_requests(|r| {
            let statuses = r.include_only_statuses();
            statuses.contains(&DeploymentStatus::InProgress)
                && statuses.contains(&DeploymentStatus::Created)
                && statuses.contains(&DeploymentStatus::Ready)
                && !statuses.contains(&DeploymentStatus::Succeeded)
        })
        .then_output(move || {
            // The mock sees no request here, so every group answers the union; the
            // per-group split is asserted through StopDeployment ids below.
            let mut ids: Vec<String> = groups.values().flatten().map(|s| s.to_string()).collect();
            ids.sort();
            ids.dedup();
            ListDeploymentsOutput::builder()
                .set_deployments(Some(ids))
                .build()
        })
}

fn stop(id: &'static str) -> Rule {
    mock!(Client::stop_deployment)
        .match_requests(move |r| {
            r.deployment_id() == Some(id) && r.auto_rollback_enabled() == Some(true)
        })
        .then_output(|| {
            StopDeploymentOutput::builder()
                .status(StopStatus::Pending)
                .build()
        })
}

async fn rollback(rules: &[&Rule]) -> (Rollback<Sns>, aws_config::SdkConfig, String) {
    let sdk = sdk_config(&moto().endpoint).await;
    let (topic, queue) = topic_with_queue(&sdk).await;
    let rollback = Rollback {
        config: Config::parse(CONFIG).unwrap().into(),
        backends: Backends {
            codedeploy: CodeDeploy::new(mock_client!(
                aws_sdk_codedeploy,
                RuleMode::MatchAny,
                rules
            )),
            ecs: greenlight::aws::Ecs::from_conf(&sdk),
            pipelines: greenlight::aws::Pipelines::from_conf(&sdk),
            hook_pattern: None,
        },
        notifier: Notifier::new(Sns::from_conf(&sdk), Some(topic)),
        ledger: None,
    };
    (rollback, sdk, queue)
}

#[tokio::test]
async fn an_eventbridge_alarm_stops_the_in_flight_deployment_with_rollback_and_notifies() {
    let list = in_flight(HashMap::from([("web-dg", vec!["d-WEB1"])]));
    let stop_web = stop("d-WEB1");
    let [batch_api, batch_others] = discovery();
    let (rollback, sdk, queue) = rollback(&[&list, &stop_web, &batch_api, &batch_others]).await;

    let answer = rollback
        .handle(sample("alarm-eventbridge.json"))
        .await
        .unwrap();

    // web-5xx guards web-dg and worker-dg (config); both list d-WEB1 in this mock.
    assert_eq!(stop_web.num_calls(), 2, "one stop per group listing it");
    assert_eq!(list.num_calls(), 2);
    // One alarm-configuration read per configured application, nothing else.
    assert_eq!(batch_api.num_calls(), 1);
    assert_eq!(batch_others.num_calls(), 2, "web-app and worker-app");
    assert_eq!(answer[0]["acted"], true);
    let sent = notifications(&sdk, &queue).await;
    let rollback_sent: Vec<_> = sent
        .iter()
        .filter(|n| n.0 == "rollback_requested")
        .collect();
    assert_eq!(rollback_sent.len(), 2, "{sent:?}");
    let context = &rollback_sent[0].1["metadata"]["additionalContext"];
    assert_eq!(context["alarm"], "web-5xx");
    assert_eq!(
        context["metric"],
        "AWS/ApplicationELB/HTTPCode_Target_5XX_Count"
    );
    assert_eq!(context["threshold"], 5.0);
    assert_eq!(context["deployment_id"], "d-WEB1");
    assert!(context["reason"]
        .as_str()
        .unwrap()
        .contains("Threshold Crossed"));
}

#[tokio::test]
async fn ok_and_repeated_alarm_events_do_nothing() {
    let list = in_flight(HashMap::from([("web-dg", vec!["d-WEB1"])]));
    let stop_web = stop("d-WEB1");
    let (rollback, sdk, queue) = rollback(&[&list, &stop_web]).await;

    let ok = rollback
        .handle(sample("alarm-eventbridge-ok.json"))
        .await
        .unwrap();
    let mut repeat = sample("alarm-eventbridge.json");
    repeat["detail"]["previousState"]["value"] = "ALARM".into();
    let repeated = rollback.handle(repeat).await.unwrap();

    assert_eq!(list.num_calls(), 0);
    assert_eq!(stop_web.num_calls(), 0);
    assert_eq!(ok[0]["acted"], false);
    assert!(ok[0]["reason"].as_str().unwrap().contains("ALARM -> OK"));
    assert!(repeated[0]["reason"]
        .as_str()
        .unwrap()
        .contains("ALARM -> ALARM"));
    assert!(notifications(&sdk, &queue).await.is_empty());
}

#[tokio::test]
async fn an_sns_delivered_alarm_stops_the_configured_group() {
    let list = in_flight(HashMap::from([("web-dg", vec!["d-WEB2"])]));
    let stop_web = stop("d-WEB2");
    let [batch_api, batch_others] = discovery();
    let (rollback, _, _) = rollback(&[&list, &stop_web, &batch_api, &batch_others]).await;

    let answer = rollback.handle(sample("alarm-sns.json")).await.unwrap();

    // web-errors guards web-dg only.
    assert_eq!(list.num_calls(), 1);
    assert_eq!(stop_web.num_calls(), 1);
    assert_eq!(answer[0]["stopped"][0]["group"]["service"], "web");
}

#[tokio::test]
async fn a_composite_alarm_named_by_a_groups_own_alarm_configuration_stops_that_group() {
    let list = in_flight(HashMap::from([("api-dg", vec!["d-API1"])]));
    let stop_api = stop("d-API1");
    let [batch_api, batch_others] = discovery();
    let (rollback, _, _) = rollback(&[&list, &stop_api, &batch_api, &batch_others]).await;

    for event in [
        sample("alarm-eventbridge-composite.json"),
        sample("alarm-sns-composite.json"),
    ] {
        let answer = rollback.handle(event).await.unwrap();
        assert_eq!(
            answer[0]["stopped"][0]["group"]["deployment_group"], "api-dg",
            "{answer}"
        );
        assert_eq!(answer[0]["stopped"][0]["group"]["service"], "api");
    }
    assert_eq!(stop_api.num_calls(), 2);
}

#[tokio::test]
async fn an_already_finished_deployment_is_a_clean_no_op() {
    let list = in_flight(HashMap::from([("web-dg", vec!["d-DONE"])]));
    let stop_done = mock!(Client::stop_deployment).then_error(|| {
        StopDeploymentError::DeploymentAlreadyCompletedException(
            DeploymentAlreadyCompletedException::builder()
                .message("done")
                .build(),
        )
    });
    let [batch_api, batch_others] = discovery();
    let (rollback, sdk, queue) = rollback(&[&list, &stop_done, &batch_api, &batch_others]).await;

    let answer = rollback
        .handle(sample("alarm-sns.json"))
        .await
        .expect("a finished deployment is not an error");

    assert_eq!(stop_done.num_calls(), 1);
    assert_eq!(
        answer[0]["stopped"][0]["outcome"]["AlreadyDone"]["reason"],
        "DeploymentAlreadyCompletedException"
    );
    assert!(notifications(&sdk, &queue)
        .await
        .iter()
        .all(|n| n.0 != "rollback_requested"));
}

#[tokio::test]
async fn no_deployment_in_flight_is_success() {
    let list = in_flight(HashMap::new());
    let [batch_api, batch_others] = discovery();
    let (rollback, _, _) = rollback(&[&list, &batch_api, &batch_others]).await;

    let answer = rollback.handle(sample("alarm-sns.json")).await.unwrap();

    assert_eq!(answer[0]["acted"], false);
    assert!(answer[0]["reason"]
        .as_str()
        .unwrap()
        .contains("no deployment in flight"));
}

#[tokio::test]
async fn an_aws_error_for_one_group_still_stops_the_others_and_asks_for_a_retry() {
    let list_web = mock!(Client::list_deployments)
        .match_requests(|r| r.deployment_group_name() == Some("web-dg"))
        .then_output(|| {
            ListDeploymentsOutput::builder()
                .deployments("d-WEB1")
                .build()
        });
    let list_worker = mock!(Client::list_deployments)
        .match_requests(|r| r.deployment_group_name() == Some("worker-dg"))
        .then_error(|| {
            ListDeploymentsError::DeploymentGroupDoesNotExistException(
                DeploymentGroupDoesNotExistException::builder()
                    .message("gone")
                    .build(),
            )
        });
    let stop_web = stop("d-WEB1");
    let [batch_api, batch_others] = discovery();
    let (rollback, _, _) = rollback(&[
        &list_web,
        &list_worker,
        &stop_web,
        &batch_api,
        &batch_others,
    ])
    .await;

    let err = rollback
        .handle(sample("alarm-eventbridge.json"))
        .await
        .unwrap_err();

    assert_eq!(
        stop_web.num_calls(),
        1,
        "web-dg stopped despite worker-dg's error"
    );
    assert!(
        err.to_string()
            .contains("DeploymentGroupDoesNotExistException"),
        "{err}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_foreign_event_is_rejected_naming_it() {
    let (rollback, _, _) = rollback(&[]).await;
    let err = rollback.handle(sample("ecr-push.json")).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("foreign event (source \"aws.ecr\""),
        "{err}"
    );
}

/// Not a timed test: prints the handler time for three matched groups (the mocked
/// CodeDeploy answers at once, so this is Greenlight's own overhead plus SNS).
#[tokio::test]
async fn three_matched_groups_are_handled_concurrently() {
    let list = in_flight(HashMap::from([("any", vec!["d-1"])]));
    let stop_one = stop("d-1");
    let batch3 = mock!(Client::batch_get_deployment_groups).then_output(|| {
        let group = |app: &str, name: &str| {
            DeploymentGroupInfo::builder()
                .application_name(app)
                .deployment_group_name(name)
                .alarm_configuration(
                    AlarmConfiguration::builder()
                        .alarms(Alarm::builder().name("web-5xx").build())
                        .build(),
                )
                .build()
        };
        BatchGetDeploymentGroupsOutput::builder()
            .deployment_groups_info(group("api-app", "api-dg"))
            .build()
    });
    let (rollback, _, _) = rollback(&[&list, &stop_one, &batch3]).await;
    let started = Instant::now();

    let answer = rollback
        .handle(sample("alarm-eventbridge.json"))
        .await
        .unwrap();

    let elapsed = started.elapsed();
    let groups: Vec<_> = answer[0]["stopped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["group"]["deployment_group"].clone())
        .collect();
    assert_eq!(
        groups.len(),
        3,
        "web-dg and worker-dg from config, api-dg from its alarm configuration: {answer}"
    );
    eprintln!("alarm-rollback handler time, 3 matched groups (mocked CodeDeploy, emulator SNS): {elapsed:?}");
}

/// An alarm of a service others promote from, with nothing in flight there, revokes
/// the digest it soaks: recorded in the ledger (so the promotion refuses it) and
/// notified. A success whose soak is over, or a service nobody promotes from, is
/// left alone.
#[tokio::test]
async fn an_alarm_during_a_soak_revokes_the_digest() {
    use greenlight::ledger::{Ledger, Outcome};
    use greenlight::notify::{Notification, NotificationEvent, Severity};
    let list = in_flight(HashMap::new());
    let [batch_api, batch_others] = discovery();
    let (mut rollback, sdk, queue) = rollback(&[&list, &batch_api, &batch_others]).await;
    let promoting = format!(
        "{CONFIG}  - {{ name: web-prod, repository: web-app, cluster: prod2, service: web, container: web, ecs_native: {{}}, promote: {{ from: web, soak_minutes: 30 }} }}\n"
    );
    rollback.config = Config::parse(&promoting).unwrap().into();
    let table = greenlight_tests::unique("ledger");
    greenlight_cli::ledger_table::create(&sdk, &table)
        .await
        .unwrap();
    let ledger = Ledger::new(&sdk, &table);
    rollback.ledger = Some(ledger.clone());
    let digest = format!("sha256:{}", "a".repeat(64));
    for (event, extra) in [
        (NotificationEvent::DeploymentStarted, None),
        (
            NotificationEvent::DeploymentFinished,
            Some(("state", "SUCCESS")),
        ),
    ] {
        let mut n = Notification::new(event, Severity::Info, "web", "step")
            .deployment("d-SOAKING", None)
            .fact("image_digest", digest.clone())
            .fact("image_tag", "v7");
        if let Some((k, v)) = extra {
            n = n.fact(k, v);
        }
        ledger.record(&n).await.unwrap();
    }

    let answer = rollback
        .handle(sample("alarm-eventbridge.json"))
        .await
        .unwrap();
    assert!(
        answer[0]["reason"]
            .as_str()
            .unwrap()
            .contains("revoked the soaking digest of d-SOAKING"),
        "{answer}"
    );
    let entry = ledger.history("web", None, 5).await.unwrap().remove(0);
    assert_eq!(entry.outcome, Some(Outcome::Succeeded));
    assert_eq!(entry.revoked_by.as_deref(), Some("alarm web-5xx"));
    let events: Vec<String> = notifications(&sdk, &queue)
        .await
        .into_iter()
        .map(|(e, _, _)| e)
        .collect();
    assert_eq!(events, ["digest_revoked"]);

    // Again: already revoked, nothing more.
    let again = rollback
        .handle(sample("alarm-eventbridge.json"))
        .await
        .unwrap();
    assert!(
        !again[0]["reason"].as_str().unwrap().contains("revoked"),
        "{again}"
    );
}
