//! `greenlight bench --scale`: what one alarm and one push cost in an account of N
//! CodeDeploy applications, with every AWS call taking a fixed latency.
//!
//! For each N: the CodeDeploy stand-in is seeded with N applications of 3 groups
//! each (10 past deployments per group) that Greenlight does not manage, one of
//! which names the same alarm and has a deployment in flight; plus the 3 configured
//! groups, each with `--history` past deployments listed in a shuffled order and one
//! deployment in flight. ECS and SNS are the moto emulator behind a proxy. Both sit
//! behind a meter that counts every call and delays it by `--latency-ms`.
//!
//! Then the release binaries run under the local Runtime API host:
//! - alarm-rollback gets an alarm guarding 2 of the 3 configured groups (one via the
//!   config, one via the group's own alarm configuration) and, separately, an alarm
//!   guarding nothing;
//! - deploy-on-push gets a push of a new image for a configured service.
//!
//! Reported per N: AWS calls and handler time (invoke to answer, warm function, so
//! init is not counted) per alarm and per push, and whether exactly the right
//! deployments were stopped and started.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenlight_standins::codedeploy::{CodeDeployStandIn, ListOrder, NoTraffic, Timing};
use greenlight_standins::http::serve;
use greenlight_standins::meter::{proxy, Meter};
use greenlight_standins::runtime::FunctionHost;
use serde::Serialize;
use serde_json::{json, Value};

/// One account size's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleRow {
    pub applications: usize,
    pub deployment_groups: usize,
    pub alarm_calls: u64,
    pub alarm_ms: f64,
    pub alarm_stopped_right: bool,
    pub idle_alarm_calls: u64,
    pub idle_alarm_ms: f64,
    pub push_calls: u64,
    pub push_ms: f64,
    pub push_started_one: bool,
    pub calls_by_operation: Value,
}

#[derive(Debug, Serialize)]
pub struct ScaleReport {
    pub latency_ms: u64,
    pub history: usize,
    pub rows: Vec<ScaleRow>,
}

const CONFIG: &str = r#"
services:
  - { name: web, repository: web-app, tags: ["v*"], cluster: prod, service: web, container: web,
      codedeploy: { application: shop, deployment_group: web-dg, hooks: [] }, alarms: [shop-5xx] }
  - { name: api, repository: api, cluster: prod, service: api, container: api,
      codedeploy: { application: shop, deployment_group: api-dg, hooks: [] } }
  - { name: worker, repository: worker, cluster: prod, service: worker, container: worker,
      codedeploy: { application: jobs, deployment_group: worker-dg, hooks: [] } }
"#;

fn group(application: &str, name: &str, alarms: &[&str]) -> Value {
    let alarms: Vec<Value> = alarms.iter().map(|a| json!({"name": a})).collect();
    json!({"applicationName": application, "deploymentGroupName": name,
           "serviceRoleArn": "arn:aws:iam::123456789012:role/cd",
           "deploymentConfigName": "CodeDeployDefault.ECSAllAtOnce",
           "ecsServices": [{"clusterName": "prod", "serviceName": "web"}],
           "alarmConfiguration": {"enabled": !alarms.is_empty(), "alarms": alarms}})
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn description(service: &str, n: u64) -> String {
    let digest = format!("sha256:{n:064x}");
    format!("Greenlight: app:v{n} [greenlight service={service} tag=v{n} digest={digest}]")
}

/// Seeds the account; returns (the in-flight ids that must be stopped, those that must not).
fn seed(
    codedeploy: &CodeDeployStandIn,
    applications: usize,
    history: usize,
) -> (Vec<String>, Vec<String>) {
    codedeploy.set_list_order(ListOrder::Shuffled(applications as u64));
    let start = now_secs() - 3600.0;
    let mut keep_running = Vec::new();
    for a in 0..applications {
        let application = format!("team-{a:04}");
        codedeploy.seed_application(&application);
        for g in 0..3 {
            let name = format!("group-{g}");
            let alarms: &[&str] = if a == 0 && g == 0 { &["shop-5xx"] } else { &[] };
            codedeploy.seed_group(group(&application, &name, alarms));
            for i in 0..10 {
                codedeploy.seed_deployment(
                    &application,
                    &name,
                    "Succeeded",
                    start - 600.0 * i as f64,
                    "",
                );
            }
        }
    }
    keep_running.push(codedeploy.seed_deployment(
        "team-0000",
        "group-0",
        "InProgress",
        now_secs() - 30.0,
        "",
    ));
    for application in ["shop", "jobs"] {
        codedeploy.seed_application(application);
    }
    codedeploy.seed_group(group("shop", "web-dg", &[]));
    codedeploy.seed_group(group("shop", "api-dg", &["shop-5xx"]));
    codedeploy.seed_group(group("jobs", "worker-dg", &[]));
    let mut must_stop = Vec::new();
    for (application, name, service) in [
        ("shop", "web-dg", "web"),
        ("shop", "api-dg", "api"),
        ("jobs", "worker-dg", "worker"),
    ] {
        for i in 0..history {
            let status = ["Succeeded", "Failed", "Stopped"][i % 3];
            codedeploy.seed_deployment(
                application,
                name,
                status,
                start - 60.0 * i as f64,
                &description(service, 1000 + i as u64),
            );
        }
        let id = codedeploy.seed_deployment(
            application,
            name,
            "InProgress",
            now_secs() - 60.0,
            &description(service, 1),
        );
        if service == "worker" {
            keep_running.push(id);
        } else {
            must_stop.push(id);
        }
    }
    (must_stop, keep_running)
}

fn alarm(name: &str) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../events/alarm-eventbridge.json"))
            .unwrap_or_default();
    event["detail"]["alarmName"] = name.into();
    event
}

fn push(n: u64) -> Value {
    json!({"version": "0", "id": format!("scale-{n}"), "detail-type": "ECR Image Action", "source": "aws.ecr", "account": "123456789012",
        "time": greenlight_standins::rfc3339_now(), "region": "us-east-1", "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": "web-app", "image-digest": format!("sha256:{n:064x}"), "action-type": "PUSH", "image-tag": format!("v9.{n}")}})
}

struct Meters {
    codedeploy: Meter,
    moto: Meter,
}

impl Meters {
    fn reset(&self) {
        self.codedeploy.reset();
        self.moto.reset();
    }
    fn total(&self) -> u64 {
        self.codedeploy.total() + self.moto.total()
    }
    fn by_operation(&self) -> Value {
        let mut all = serde_json::Map::new();
        for (op, n) in self
            .codedeploy
            .counts()
            .into_iter()
            .chain(self.moto.counts())
        {
            all.insert(op, json!(n));
        }
        Value::Object(all)
    }
}

async fn timed(host: &FunctionHost, event: Value) -> Result<(Value, f64), String> {
    let started = Instant::now();
    let answer = host
        .invoke(event)
        .await
        .map_err(|e| format!("{}: {e}", host.name))?;
    Ok((answer, started.elapsed().as_secs_f64() * 1000.0))
}

async fn one_size(
    bin_dir: &Path,
    moto_endpoint: &str,
    applications: usize,
    history: usize,
    latency: Duration,
) -> Result<ScaleRow, String> {
    let codedeploy = CodeDeployStandIn::new(
        Arc::new(NoTraffic),
        Arc::new(|_f: String, _p: Value| Box::pin(async {})),
        Arc::new(|_e: Value| {}),
        Arc::new(|_l: String| {}),
        None,
        Timing::default(),
    );
    let (must_stop, keep_running) = seed(&codedeploy, applications, history);
    let meters = Meters {
        codedeploy: Meter::new(),
        moto: Meter::new(),
    };
    let codedeploy_url = format!(
        "http://{}",
        serve(meters.codedeploy.wrap(codedeploy.handler()))
            .await
            .map_err(|e| e.to_string())?
    );
    let moto_url = format!(
        "http://{}",
        serve(meters.moto.wrap(proxy(moto_endpoint.to_string())))
            .await
            .map_err(|e| e.to_string())?
    );
    let sdk = crate::local::emulator_config(moto_endpoint).await;
    let topic = crate::local::topic(&sdk, "greenlight-scale").await?;
    let env: Vec<(String, String)> = vec![
        ("GREENLIGHT_CONFIG".into(), CONFIG.into()),
        ("GREENLIGHT_TOPIC_ARN".into(), topic),
        ("AWS_ENDPOINT_URL".into(), moto_url),
        ("AWS_ENDPOINT_URL_CODEDEPLOY".into(), codedeploy_url),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
    ];
    let timeout = Duration::from_secs(120);
    let alarm_host = FunctionHost::start(
        "alarm-rollback",
        &bin_dir.join("alarm-rollback"),
        &env,
        timeout,
        None,
    )
    .await
    .map_err(|e| e.to_string())?;
    let push_host = FunctionHost::start(
        "deploy-on-push",
        &bin_dir.join("deploy-on-push"),
        &env,
        timeout,
        None,
    )
    .await
    .map_err(|e| e.to_string())?;
    for host in [&alarm_host, &push_host] {
        host.wait_ready(Duration::from_secs(10))
            .await
            .ok_or_else(|| format!("{} did not finish init", host.name))?;
    }
    // Warm both (connections, lazy credentials) with events that change nothing.
    timed(&alarm_host, alarm("warm-up")).await?;
    timed(&push_host, json!({"version": "0", "id": "warm", "detail-type": "ECR Image Action", "source": "aws.ecr", "account": "123456789012",
        "time": greenlight_standins::rfc3339_now(), "region": "us-east-1", "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": "nobody", "image-digest": format!("sha256:{:064x}", 7), "action-type": "PUSH", "image-tag": "v0"}})).await?;
    meters.codedeploy.set_latency(latency);
    meters.moto.set_latency(latency);

    meters.reset();
    let (_, alarm_ms) = timed(&alarm_host, alarm("shop-5xx")).await?;
    let alarm_calls = meters.total();
    let mut calls_by_operation = json!({"alarm": meters.by_operation()});
    let alarm_stopped_right = must_stop
        .iter()
        .all(|id| codedeploy.status(id).as_deref() == Some("Stopped"))
        && keep_running
            .iter()
            .all(|id| codedeploy.status(id).as_deref() == Some("InProgress"));

    meters.reset();
    let (_, idle_alarm_ms) = timed(&alarm_host, alarm("guards-nothing")).await?;
    let idle_alarm_calls = meters.total();

    // The web group is idle after the stop: the push deploys.
    meters.reset();
    let deployments_before = codedeploy.deployment_ids().len();
    let (answer, push_ms) = timed(&push_host, push(applications as u64 + 100)).await?;
    let push_calls = meters.total();
    calls_by_operation["push"] = meters.by_operation();
    let push_started_one = codedeploy.deployment_ids().len() == deployments_before + 1
        && answer.pointer("/0/outcome").and_then(Value::as_str) == Some("started");
    alarm_host.stop().await;
    push_host.stop().await;
    Ok(ScaleRow {
        applications: applications + 2,
        deployment_groups: applications * 3 + 3,
        alarm_calls,
        alarm_ms,
        alarm_stopped_right,
        idle_alarm_calls,
        idle_alarm_ms,
        push_calls,
        push_ms,
        push_started_one,
        calls_by_operation,
    })
}

pub async fn run(
    bin_dir: &Path,
    moto_binary: &Path,
    sizes: &[usize],
    history: usize,
    latency_ms: u64,
) -> Result<ScaleReport, String> {
    for name in ["alarm-rollback", "deploy-on-push"] {
        if !bin_dir.join(name).exists() {
            return Err(format!(
                "{} not found: build release binaries first (scripts/bench does)",
                bin_dir.join(name).display()
            ));
        }
    }
    let (_moto, moto_endpoint) = crate::rehearse::start_moto(moto_binary).await?;
    let sdk = crate::local::emulator_config(&moto_endpoint).await;
    crate::local::seed_service(
        &sdk,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app:v0",
    )
    .await?;
    let mut rows = Vec::new();
    for &size in sizes {
        eprintln!("scale: {size} applications...");
        rows.push(
            one_size(
                bin_dir,
                &moto_endpoint,
                size,
                history,
                Duration::from_millis(latency_ms),
            )
            .await?,
        );
    }
    Ok(ScaleReport {
        latency_ms,
        history,
        rows,
    })
}

pub fn print(report: &ScaleReport) {
    println!(
        "per-call latency {} ms; {} past deployments in each configured group, listed in a shuffled order",
        report.latency_ms, report.history
    );
    println!(
        "{:>13} {:>7} {:>12} {:>10} {:>9} {:>17} {:>15} {:>11} {:>9} {:>8}",
        "applications",
        "groups",
        "alarm calls",
        "alarm ms",
        "stopped",
        "idle alarm calls",
        "idle alarm ms",
        "push calls",
        "push ms",
        "started"
    );
    for r in &report.rows {
        println!(
            "{:>13} {:>7} {:>12} {:>10.0} {:>9} {:>17} {:>15.0} {:>11} {:>9.0} {:>8}",
            r.applications,
            r.deployment_groups,
            r.alarm_calls,
            r.alarm_ms,
            if r.alarm_stopped_right {
                "right"
            } else {
                "WRONG"
            },
            r.idle_alarm_calls,
            r.idle_alarm_ms,
            r.push_calls,
            r.push_ms,
            if r.push_started_one { "one" } else { "WRONG" },
        );
    }
}
