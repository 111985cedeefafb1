//! The release ledger through the real SDK against the emulator's DynamoDB: what the
//! functions' notifications record (once, whatever the order or the redeliveries),
//! `greenlight history` and `greenlight metrics` reading it back, and a ledger that
//! cannot be written never costing the notification.

use greenlight::aws::Sns;
use greenlight::ledger::{Applied, Ledger, Outcome};
use greenlight::notify::{Notification, NotificationEvent, Notifier, Severity};
use greenlight_tests::aws::{notifications, sdk_config, topic_with_queue};
use greenlight_tests::{greenlight, moto, unique};
use serde_json::Value;

async fn table() -> (aws_config::SdkConfig, String) {
    let sdk = sdk_config(&moto().endpoint).await;
    let name = unique("ledger");
    greenlight_cli::ledger_table::create(&sdk, &name)
        .await
        .unwrap();
    (sdk, name)
}

fn step(event: NotificationEvent, service: &str, id: &str) -> Notification {
    Notification::new(event, Severity::Info, service, "step").deployment(id, None)
}

fn started(service: &str, id: &str, tag: &str) -> Notification {
    step(NotificationEvent::DeploymentStarted, service, id)
        .fact("image_tag", tag)
        .fact("image_digest", digest_of(tag))
        .fact("path", "CodeDeploy")
        .fact("pushed_at", 1_000_i64)
}

/// A valid digest per tag.
fn digest_of(tag: &str) -> String {
    let hex: String = tag.bytes().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex:0>64}")
}

fn hook(service: &str, id: &str, status: &str) -> Notification {
    let event = if status == "Failed" {
        NotificationEvent::HookFailed
    } else {
        NotificationEvent::HookPassed
    };
    step(event, service, id)
        .description("health: expected 200, got 503")
        .fact("lifecycle_event", "AfterAllowTestTraffic")
        .fact("status", status)
}

fn finished(service: &str, id: &str, state: &str) -> Notification {
    step(NotificationEvent::DeploymentFinished, service, id).fact("state", state)
}

#[tokio::test]
async fn each_step_is_recorded_once_whatever_the_order_and_redeliveries() {
    let (sdk, name) = table().await;
    let ledger = Ledger::new(&sdk, &name);
    // The hook answers before deploy-on-push records the launch: merged, not lost.
    let first_hook = ledger.record(&hook("web", "d-1", "Failed")).await.unwrap();
    assert!(
        matches!(first_hook, Some(Applied::Written(None))),
        "{first_hook:?}"
    );
    ledger.record(&started("web", "d-1", "v1")).await.unwrap();
    let alarm = step(NotificationEvent::RollbackRequested, "web", "d-1").fact("alarm", "web-5xx");
    ledger.record(&alarm).await.unwrap();
    let finish = ledger
        .record(&finished("web", "d-1", "FAILURE"))
        .await
        .unwrap();
    let Some(Applied::Written(Some(item))) = finish else {
        panic!("the finish returns the item: {finish:?}")
    };
    assert_eq!(item.outcome, Some(Outcome::RolledBack));
    assert_eq!(item.trigger.as_deref(), Some("push"));
    // Every step delivered again: nothing changes.
    for again in [
        hook("web", "d-1", "Succeeded"),
        started("web", "d-1", "v9"),
        alarm.clone(),
        finished("web", "d-1", "SUCCESS"),
    ] {
        assert_eq!(
            ledger.record(&again).await.unwrap(),
            Some(Applied::AlreadyRecorded),
            "{:?}",
            again.event
        );
    }
    let history = ledger.history("web", None, 10).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    let entry = &history[0];
    assert_eq!(entry.image_tag.as_deref(), Some("v1"));
    assert_eq!(entry.outcome, Some(Outcome::RolledBack));
    assert_eq!(entry.state.as_deref(), Some("FAILURE"));
    assert_eq!(entry.gates["AfterAllowTestTraffic"].status, "Failed");
    assert_eq!(entry.stopped_by.as_deref(), Some("alarm web-5xx"));
    assert_eq!(entry.why().as_deref(), Some("stopped by alarm web-5xx"));
    assert_eq!(entry.pushed_at, Some(1_000));
}

#[tokio::test]
async fn history_is_newest_first_paged_and_per_service() {
    let (sdk, name) = table().await;
    let ledger = Ledger::new(&sdk, &name);
    for i in 0..12 {
        ledger
            .record(&started("api", &format!("d-{i:02}"), "v"))
            .await
            .unwrap();
        // Distinct start times (milliseconds) for a strict order.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    ledger
        .record(&started("web", "d-other", "w"))
        .await
        .unwrap();
    let newest = ledger.history("api", None, 5).await.unwrap();
    let ids: Vec<&str> = newest.iter().map(|e| e.deployment_id.as_str()).collect();
    assert_eq!(ids, ["d-11", "d-10", "d-09", "d-08", "d-07"]);
    let all = ledger.history("api", None, 100).await.unwrap();
    assert_eq!(all.len(), 12);
    assert!(all.windows(2).all(|w| w[0].started_at >= w[1].started_at));
    let since = all[3].started_at;
    assert_eq!(ledger.history("api", since, 100).await.unwrap().len(), 4);
}

#[tokio::test]
async fn a_ledger_that_cannot_be_written_costs_nothing_but_is_notified() {
    let sdk = sdk_config(&moto().endpoint).await;
    let (topic, queue) = topic_with_queue(&sdk).await;
    let notifier = Notifier::new(Sns::from_conf(&sdk), Some(topic))
        .recording_to(Some(Ledger::new(&sdk, unique("no-such-table"))));
    let id = notifier.notify(&started("web", "d-1", "v1")).await;
    assert!(id.is_some(), "the notification itself was published");
    assert_eq!(notifier.ledger_failures(), 1);
    let events: Vec<String> = notifications(&sdk, &queue)
        .await
        .into_iter()
        .map(|(event, _, _)| event)
        .collect();
    assert_eq!(events, ["deployment_started", "ledger_write_failed"]);
}

#[tokio::test]
async fn history_and_metrics_on_the_command_line() {
    let (sdk, name) = table().await;
    let ledger = Ledger::new(&sdk, &name);
    ledger.record(&started("web", "d-ok", "v1")).await.unwrap();
    ledger
        .record(&finished("web", "d-ok", "SUCCESS"))
        .await
        .unwrap();
    ledger.record(&started("web", "d-bad", "v2")).await.unwrap();
    ledger
        .record(&hook("web", "d-bad", "Failed"))
        .await
        .unwrap();
    ledger
        .record(&finished("web", "d-bad", "FAILURE"))
        .await
        .unwrap();
    let env = [("AWS_ENDPOINT_URL", moto().endpoint.as_str())];

    let run = greenlight(&["history", "web", "--table", &name], &env).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("web: 2 deployments recorded"),
        "{}",
        run.stdout
    );
    assert!(
        lines[1].contains("v2 (") && lines[1].contains("rolled_back"),
        "{}",
        run.stdout
    );
    assert_eq!(
        lines[2].trim(),
        "why: AfterAllowTestTraffic failed: health: expected 200, got 503"
    );
    assert!(
        lines[3].contains("v1 (") && lines[3].contains("succeeded"),
        "{}",
        run.stdout
    );

    let run = greenlight(&["history", "web", "--table", &name, "--json"], &env).await;
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json[0]["deployment_id"], "d-bad");

    let run = greenlight(
        &["metrics", "web", "--table", &name, "--days", "7", "--json"],
        &env,
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let m: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        (m["succeeded"].as_u64(), m["rolled_back"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(m["change_failure_rate"], 0.5);
    assert!(m["time_to_restore_median_ms"].is_number(), "{m}");

    let run = greenlight(&["metrics", "web", "--table", &name], &env).await;
    assert!(
        run.stdout
            .contains("change failure rate   50% (1 of 2 rolled back"),
        "{}",
        run.stdout
    );

    // No table named anywhere: refused as bad arguments, naming what to set.
    let run = greenlight(&["history", "web"], &env).await;
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(
        run.stderr.contains("GREENLIGHT_LEDGER_TABLE"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn greenlight_promote_refuses_an_unverified_digest_and_saying_why() {
    let (sdk, name) = table().await;
    let ledger = Ledger::new(&sdk, &name);
    ledger
        .record(&started("web-staging", "d-bad", "v2"))
        .await
        .unwrap();
    ledger
        .record(&finished("web-staging", "d-bad", "FAILURE"))
        .await
        .unwrap();
    let config = std::env::temp_dir().join(format!("{}.yaml", unique("promote")));
    std::fs::write(
        &config,
        "services:\n  - { name: web-staging, repository: web-app, cluster: s, service: web, container: web, ecs_native: {} }\n  - { name: web-prod, repository: web-app, cluster: p, service: web, container: web, ecs_native: {}, promote: { from: web-staging } }\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let env = [("AWS_ENDPOINT_URL", moto().endpoint.as_str())];

    let run = greenlight(
        &["promote", "web-prod", "--table", &name, "--config", config],
        &env,
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains(
            "refused: 000000000000 is unverified: its deployment d-bad in web-staging rolled back"
        ),
        "{}",
        run.stderr
    );
    // Forcing needs a reason; a service without promote: takes no promotion.
    let run = greenlight(
        &[
            "promote", "web-prod", "--force", "--table", &name, "--config", config,
        ],
        &env,
    )
    .await;
    assert_eq!(run.code, Some(3), "{run:?}");
    let run = greenlight(
        &[
            "promote",
            "web-staging",
            "--table",
            &name,
            "--config",
            config,
        ],
        &env,
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("web-staging has no promote: key"),
        "{}",
        run.stderr
    );
    // A promoted service is not deployed by hand past its promotion: refused, naming
    // the command that does it.
    let run = greenlight(
        &["deploy", "web-prod", "--tag", "v2", "--config", config],
        &env,
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains(
            "web-prod takes only digests that proved themselves in web-staging: greenlight promote web-prod"
        ),
        "{}",
        run.stderr
    );
}

/// A ledger that never answers (a hook in a VPC with no route to DynamoDB) holds a
/// notification up for at most the record budget (3 s), then the step goes on and
/// the miss is counted.
#[tokio::test]
async fn a_ledger_that_never_answers_holds_nothing_up_for_long() {
    let sdk = sdk_config(&moto().endpoint).await;
    let hanging =
        greenlight_tests::http::TestServer::start(|_| greenlight_tests::http::Reply::hang()).await;
    let unreachable = sdk.to_builder().endpoint_url(hanging.url()).build();
    let (topic, queue) = topic_with_queue(&sdk).await;
    let notifier = Notifier::new(Sns::from_conf(&sdk), Some(topic))
        .recording_to(Some(Ledger::new(&unreachable, "greenlight-ledger")));
    let started = std::time::Instant::now();
    let id = notifier.notify(&started_step()).await;
    let took = started.elapsed();
    assert!(id.is_some(), "published");
    assert!(took < std::time::Duration::from_secs(8), "held up {took:?}");
    assert!(
        took >= std::time::Duration::from_secs(3),
        "gave up early: {took:?}"
    );
    assert_eq!(notifier.ledger_failures(), 1);
    let events: Vec<String> = notifications(&sdk, &queue)
        .await
        .into_iter()
        .map(|(e, _, _)| e)
        .collect();
    assert_eq!(events, ["deployment_started", "ledger_write_failed"]);
}

fn started_step() -> Notification {
    started("web", "d-1", "v1")
}
