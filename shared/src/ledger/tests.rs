use super::record::attr;
use super::*;
use crate::notify::{NotificationEvent, Severity};

const NOW: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400_000;

fn started() -> Notification {
    Notification::new(
        NotificationEvent::DeploymentStarted,
        Severity::Info,
        "web",
        "Deploying web-app:v2",
    )
    .deployment("d-1", None)
    .image("123.dkr.ecr.us-east-1.amazonaws.com/web-app@sha256:aa")
    .fact("image_tag", "v2")
    .fact("image_digest", "sha256:aa")
    .fact("target", "app/group")
    .fact("path", "CodeDeploy")
    .fact("pushed_at", NOW - 5_000)
}

fn set_value<'a>(write: &'a Write, name: &str) -> Option<&'a Field> {
    write.set.iter().find(|(n, _)| *n == name).map(|(_, f)| f)
}

#[test]
fn a_start_records_the_image_trigger_and_times_once() {
    let write = write_for(&started(), NOW).unwrap();
    assert_eq!(
        (write.service.as_str(), write.deployment_id.as_str()),
        ("web", "d-1")
    );
    assert_eq!(
        set_value(&write, attr::DIGEST),
        Some(&Field::S("sha256:aa".into()))
    );
    assert_eq!(
        set_value(&write, attr::TRIGGER),
        Some(&Field::S("push".into()))
    );
    assert_eq!(
        set_value(&write, attr::PUSHED_AT),
        Some(&Field::N(NOW - 5_000))
    );
    assert_eq!(set_value(&write, attr::STARTED_AT), Some(&Field::N(NOW)));
    assert_eq!(
        set_value(&write, attr::EXPIRES_AT),
        Some(&Field::N(NOW / 1000 + record::RETENTION_DAYS * 86_400))
    );
    assert_eq!(write.once, attr::TRIGGER);
    let manual = write_for(&started().fact("trigger", "manual"), NOW).unwrap();
    assert_eq!(
        set_value(&manual, attr::TRIGGER),
        Some(&Field::S("manual".into()))
    );
}

#[test]
fn a_gate_is_its_own_attribute_written_once_per_stage() {
    let hook = Notification::new(
        NotificationEvent::HookFailed,
        Severity::Error,
        "web",
        "AfterAllowTestTraffic failed",
    )
    .deployment("d-1", None)
    .description("health: expected 200, got 503")
    .fact("lifecycle_event", "AfterAllowTestTraffic")
    .fact("status", "Failed");
    let write = write_for(&hook, NOW).unwrap();
    let (name, json) = write.gate.clone().unwrap();
    assert_eq!(name, "gate_AfterAllowTestTraffic");
    assert_eq!(write.once, name);
    let (stage, record) = record::gate_from(&name, &json).unwrap();
    assert_eq!(stage, "AfterAllowTestTraffic");
    assert_eq!(record.status, "Failed");
    assert_eq!(record.reason, "health: expected 200, got 503");
    assert_eq!(record.at, Some(NOW));
    // The start time only where nothing recorded one.
    assert!(write.set.is_empty());
    assert!(write
        .set_if_absent
        .iter()
        .any(|(n, f)| *n == attr::STARTED_AT && *f == Field::N(NOW)));
}

#[test]
fn a_finish_sets_the_outcome_once_and_asks_for_the_item() {
    let finish = |state: &str| {
        Notification::new(
            NotificationEvent::DeploymentFinished,
            Severity::Info,
            "web",
            "done",
        )
        .deployment("d-1", None)
        .fact("state", state)
    };
    let write = write_for(&finish("SUCCESS"), NOW).unwrap();
    assert_eq!(
        set_value(&write, attr::OUTCOME),
        Some(&Field::S("succeeded".into()))
    );
    assert_eq!(write.once, attr::OUTCOME);
    assert!(write.returns_item);
    for state in ["FAILURE", "STOP"] {
        let write = write_for(&finish(state), NOW).unwrap();
        assert_eq!(
            set_value(&write, attr::OUTCOME),
            Some(&Field::S("rolled_back".into())),
            "{state}"
        );
    }
}

#[test]
fn notifications_about_no_attempt_write_nothing() {
    for event in [
        NotificationEvent::DeploymentQueued,
        NotificationEvent::DeploymentSkipped,
        NotificationEvent::AlarmWithoutDeployment,
        NotificationEvent::ConfigRefused,
        NotificationEvent::LedgerWriteFailed,
    ] {
        let n = Notification::new(event, Severity::Info, "web", "x").deployment("d-1", None);
        assert_eq!(write_for(&n, NOW), None, "{event:?}");
    }
    // A start without a deployment (a pipeline's execution) has no attempt key.
    let mut pipeline = started();
    pipeline.deployment_id = None;
    assert_eq!(write_for(&pipeline, NOW), None);
}

#[test]
fn a_refused_start_is_keyed_by_its_image() {
    let n = Notification::new(
        NotificationEvent::DeploymentStartFailed,
        Severity::Error,
        "web",
        "could not start",
    )
    .description("no container web")
    .fact("image_digest", "sha256:bb");
    let write = write_for(&n, NOW).unwrap();
    assert_eq!(write.deployment_id, "not-started/sha256:bb");
    assert_eq!(
        set_value(&write, attr::OUTCOME),
        Some(&Field::S("start_failed".into()))
    );
    assert_eq!(
        set_value(&write, attr::REASON),
        Some(&Field::S("no container web".into()))
    );
}

#[test]
fn the_update_expression_sets_if_absent_only_what_the_write_does_not_set() {
    let mut write = write_for(&started(), NOW).unwrap();
    write.set_if_absent.push((attr::STARTED_AT, Field::N(1)));
    write
        .set_if_absent
        .push((attr::STATE, Field::S("x".into())));
    let update = expression(&write);
    assert!(
        update.expression.starts_with("SET "),
        "{}",
        update.expression
    );
    let conditional: Vec<&str> = update
        .expression
        .split(", ")
        .filter(|c| c.contains("if_not_exists"))
        .collect();
    assert_eq!(conditional.len(), 1, "{}", update.expression);
    let placeholder = conditional[0].split(' ').next().unwrap();
    assert_eq!(update.names[placeholder], attr::STATE);
    assert_eq!(update.names["#once"], attr::TRIGGER);
    assert_eq!(update.names.len(), update.values.len() + 1);
}

fn entry(outcome: Outcome, ended: i64, pushed: i64) -> Entry {
    Entry {
        service: "web".into(),
        deployment_id: format!("d-{ended}"),
        started_at: Some(pushed + 1_000),
        pushed_at: Some(pushed),
        ended_at: Some(ended),
        outcome: Some(outcome),
        ..Entry::default()
    }
}

#[test]
fn the_four_keys_follow_the_attempts() {
    let mut failed = entry(Outcome::RolledBack, NOW - 2 * DAY, NOW - 2 * DAY - 60_000);
    failed.stopped_at = Some(NOW - 2 * DAY - 20_000);
    let entries = vec![
        entry(Outcome::Succeeded, NOW - 1_000, NOW - 61_000),
        entry(Outcome::Succeeded, NOW - DAY, NOW - DAY - 121_000),
        entry(Outcome::Succeeded, NOW - 3 * DAY, NOW - 3 * DAY - 181_000),
        failed,
        entry(Outcome::StartFailed, NOW - 10, NOW - 20),
        // Outside the window, and another service: not counted.
        entry(Outcome::RolledBack, NOW - 30 * DAY, NOW - 30 * DAY - 1),
        Entry {
            service: "api".into(),
            ..entry(Outcome::RolledBack, NOW - 5, NOW - 10)
        },
    ];
    let m = delivery_metrics(Some("web"), &entries, 7, NOW);
    assert_eq!((m.succeeded, m.rolled_back, m.start_failed), (3, 1, 1));
    assert!((m.deployments_per_day - 3.0 / 7.0).abs() < 1e-9);
    assert_eq!(m.lead_time_median_ms, Some(121_000));
    assert_eq!(m.lead_time_p90_ms, Some(181_000));
    assert_eq!(m.change_failure_rate, Some(0.25));
    assert_eq!(m.time_to_restore_median_ms, Some(20_000));
    assert_eq!(m.daily.len(), 7);
    assert_eq!(m.daily.iter().map(|d| d.succeeded).sum::<usize>(), 3);
    assert_eq!(m.daily.iter().map(|d| d.rolled_back).sum::<usize>(), 1);
    assert!(m
        .daily
        .windows(2)
        .all(|w| w[1].start_ms - w[0].start_ms == DAY));
    assert_eq!(
        m.daily.last().unwrap().succeeded,
        1,
        "today's success is today's"
    );
    let fleet = delivery_metrics(None, &entries, 7, NOW);
    assert_eq!(fleet.rolled_back, 2);
    let empty = delivery_metrics(Some("web"), &[], 7, NOW);
    assert_eq!(
        (empty.change_failure_rate, empty.lead_time_median_ms),
        (None, None)
    );
}

#[test]
fn a_finish_becomes_one_emf_document() {
    let done = entry(Outcome::Succeeded, NOW, NOW - 90_000);
    let doc = emf::document(&done, NOW).unwrap();
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Greenlight");
    assert_eq!(directive["Dimensions"][0][0], "Service");
    let names: Vec<&str> = directive["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Deployments", "DeploymentFailures", "LeadTime", "Duration"]
    );
    // Every metric the directive names has its value at the top level.
    for name in names {
        assert!(doc[name].is_number(), "{name}: {doc}");
    }
    assert_eq!(doc["LeadTime"], 90_000);
    assert_eq!(doc["DeploymentFailures"], 0);
    let rolled = emf::document(&entry(Outcome::RolledBack, NOW, NOW - 1), NOW).unwrap();
    assert_eq!(rolled["DeploymentFailures"], 1);
    assert!(rolled.get("LeadTime").is_none());
    assert_eq!(emf::document(&Entry::default(), NOW), None);
}

#[test]
fn why_names_the_alarm_then_the_failed_gate() {
    let mut e = entry(Outcome::RolledBack, NOW, NOW - 1);
    e.reason = Some("Deployment d-1 failed".into());
    assert_eq!(e.why().as_deref(), Some("Deployment d-1 failed"));
    e.gates.insert(
        "AfterAllowTestTraffic".into(),
        GateRecord {
            status: "Failed".into(),
            reason: "health: 503".into(),
            at: Some(NOW - 10),
            detail: serde_json::Value::Null,
        },
    );
    assert_eq!(
        e.why().as_deref(),
        Some("AfterAllowTestTraffic failed: health: 503")
    );
    assert_eq!(e.failed_at(), Some(NOW - 10));
    e.stopped_by = Some("alarm web-5xx".into());
    assert_eq!(e.why().as_deref(), Some("stopped by alarm web-5xx"));
}
