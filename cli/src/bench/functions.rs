//! Each function's cold start, first and warm invocations and peak memory, run
//! under the local Runtime API host against a local stack.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use greenlight_standins::codedeploy::{CodeDeployStandIn, NoTraffic, Timing};
use greenlight_standins::http::serve;
use greenlight_standins::runtime::FunctionHost;
use serde_json::{json, Value};

use super::report::{stat, FunctionResult};

/// The local stack the functions run against.
pub(super) struct Stack {
    pub(super) env: Vec<(String, String)>,
    codedeploy: CodeDeployStandIn,
    codedeploy_url: String,
    hook_payloads: Arc<Mutex<Vec<Value>>>,
    _moto: tokio::process::Child,
}

pub(super) async fn rpc(url: &str, operation: &str, input: Value) -> Result<Value, String> {
    let client = reqwest::Client::new();
    let response = client
        .post(url)
        .header("x-amz-target", format!("CodeDeploy_20141006.{operation}"))
        .header("content-type", "application/x-amz-json-1.1")
        .body(input.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{operation}: {status} {body}"));
    }
    serde_json::from_str(&body).map_err(|e| e.to_string())
}

/// The ECS service deploy-on-push re-registers, and the topic every function publishes to.
/// One call per service first, so the emulator's lazy start-up is not measured.
pub(super) async fn seed_moto(endpoint: &str) -> Result<String, String> {
    let sdk = crate::local::emulator_config(endpoint).await;
    crate::local::seed_service(
        &sdk,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app:v0",
    )
    .await?;
    crate::local::topic(&sdk, "greenlight").await
}

/// A push of a new image each time, so deploy-on-push takes its full path: read the
/// task definition, register the pinned revision, create the deployment, notify.
pub(super) fn push_event() -> Value {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    json!({"version": "0", "id": format!("bench-{n}"), "detail-type": "ECR Image Action", "source": "aws.ecr", "account": "123456789012",
        "time": greenlight_standins::rfc3339_now(), "region": "us-east-1", "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": "web-app", "image-digest": format!("sha256:{n:064x}"), "action-type": "PUSH", "image-tag": format!("v1.0.{n}")}})
}

pub(super) fn alarm_event() -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../../events/alarm-eventbridge.json"))
            .unwrap_or_default();
    event["detail"]["alarmName"] = "web-5xx".into();
    event
}

pub(super) fn peak_rss_mb(pid: Option<u32>) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The pause before each cold start (see `one_cold_start`).
const SETTLE: Duration = Duration::from_millis(30);

/// What one cold start of one function measured.
#[derive(Default)]
struct Samples {
    init: Vec<f64>,
    first: Vec<f64>,
    cold: Vec<f64>,
    warm: Vec<f64>,
    rss: Vec<f64>,
    errors: Vec<String>,
}

/// Every function's cold starts, interleaved: each round starts every function once, so
/// the floor and the functions share whatever state the machine and the stack are in
/// at that moment (run in blocks, drift between the blocks lands in the ratios). The
/// rounds' orders form a balanced Latin square (Williams design): over a cycle, each
/// function follows each of the others equally often, so what one leaves behind (a
/// deployment finishing in the stand-in, the emulator's work) weighs on all alike.
pub(super) async fn bench_functions(
    stack: &Stack,
    functions: &[(&str, std::path::PathBuf)],
    runs: usize,
    warm: usize,
) -> Vec<FunctionResult> {
    let mut samples: Vec<Samples> = functions.iter().map(|_| Samples::default()).collect();
    for round in 0..runs {
        eprint!("\rround {}/{runs}", round + 1);
        for i in balanced_order(functions.len(), round) {
            let (name, binary) = &functions[i];
            one_cold_start(stack, name, binary, warm, &mut samples[i]).await;
        }
    }
    eprintln!();
    functions
        .iter()
        .zip(samples)
        .map(|((name, binary), mut s)| {
            s.errors.dedup();
            FunctionResult {
                function: name.to_string(),
                init_ms: stat(s.init),
                first_ms: stat(s.first),
                cold_total_ms: stat(s.cold),
                warm_ms: stat(s.warm),
                peak_rss_mb: stat(s.rss),
                zip_bytes: None,
                binary_bytes: std::fs::metadata(binary).ok().map(|m| m.len()),
                errors: s.errors,
            }
        })
        .collect()
}

/// Round `round`'s order of 0..n in a Williams design: the row 0, 1, n-1, 2, n-2, …
/// shifted by the round; for odd n the cycle also runs each row reversed. Over a cycle
/// (n rounds, 2n for odd n) every ordered pair of neighbours occurs equally often.
fn balanced_order(n: usize, round: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let base = (0..n).map(|j| {
        if j % 2 == 1 {
            j.div_ceil(2)
        } else {
            (n - j / 2) % n
        }
    });
    let cycle = if n % 2 == 0 { n } else { 2 * n };
    let row = round % cycle;
    let mut order: Vec<usize> = base.map(|b| (b + row % n) % n).collect();
    if row >= n {
        order.reverse();
    }
    order
}

/// One fresh process: init, the first invocation, `warm` more, peak RSS.
async fn one_cold_start(stack: &Stack, name: &str, binary: &Path, warm: usize, into: &mut Samples) {
    stack.idle().await;
    // A cold start on Lambda begins in a sandbox of its own: let the stand-in and the
    // emulator finish what the last function's invocations set going.
    tokio::time::sleep(SETTLE).await;
    let host =
        match FunctionHost::start(name, binary, &stack.env, Duration::from_secs(30), None).await {
            Ok(h) => h,
            Err(e) => {
                into.errors.push(e.to_string());
                return;
            }
        };
    let Some(init_time) = host.wait_ready(Duration::from_secs(10)).await else {
        into.errors.push("did not finish init".into());
        host.stop().await;
        return;
    };
    let invoke_once = async || -> Result<f64, String> {
        let event = match name {
            "deploy-on-push" => {
                stack.idle().await;
                push_event()
            }
            "alarm-rollback" => alarm_event(),
            "lifecycle-hook" => {
                stack.idle().await;
                stack.hook_payload().await?
            }
            _ => json!({}),
        };
        let started = Instant::now();
        host.invoke(event).await.map_err(|e| e.to_string())?;
        Ok(started.elapsed().as_secs_f64() * 1000.0)
    };
    let init_ms = init_time.as_secs_f64() * 1000.0;
    match invoke_once().await {
        Ok(ms) => {
            into.init.push(init_ms);
            into.first.push(ms);
            into.cold.push(init_ms + ms);
        }
        Err(e) => into.errors.push(format!("first invocation: {e}")),
    }
    let mut warm_runs = Vec::new();
    for _ in 0..warm {
        match invoke_once().await {
            Ok(ms) => warm_runs.push(ms),
            Err(e) => into.errors.push(format!("warm invocation: {e}")),
        }
    }
    if !warm_runs.is_empty() {
        into.warm.push(stat(warm_runs).median);
    }
    if let Some(mb) = peak_rss_mb(host.pid()) {
        into.rss.push(mb);
    }
    host.stop().await;
}

impl Stack {
    pub(super) async fn start(moto_binary: &Path, smoke_url: &str) -> Result<Stack, String> {
        let (moto, moto_endpoint) = crate::rehearse::start_moto(moto_binary).await?;
        let topic = seed_moto(&moto_endpoint).await?;
        let hook_payloads: Arc<Mutex<Vec<Value>>> = Arc::default();
        let recorder = hook_payloads.clone();
        let codedeploy = CodeDeployStandIn::new(
            Arc::new(NoTraffic),
            Arc::new(move |_function: String, payload: Value| {
                recorder.lock().unwrap().push(payload);
                Box::pin(async {})
            }),
            Arc::new(|_event: Value| {}),
            Arc::new(|_line: String| {}),
            None,
            Timing {
                hook_timeout: Duration::from_secs(600),
                ..Timing::default()
            },
        );
        let addr = serve(codedeploy.handler())
            .await
            .map_err(|e| e.to_string())?;
        let codedeploy_url = format!("http://{addr}");
        rpc(
            &codedeploy_url,
            "CreateApplication",
            json!({"applicationName": "web-app", "computePlatform": "ECS"}),
        )
        .await?;
        rpc(
            &codedeploy_url,
            "CreateDeploymentGroup",
            json!({"applicationName": "web-app", "deploymentGroupName": "web-dg", "serviceRoleArn": "arn:aws:iam::123456789012:role/cd",
                   "deploymentConfigName": "CodeDeployDefault.ECSAllAtOnce", "ecsServices": [{"serviceName": "web", "clusterName": "prod"}]}),
        )
        .await?;
        // Two more groups guarded by the same alarm: alarm-rollback looks up three groups.
        for group in ["api-dg", "worker-dg"] {
            rpc(
                &codedeploy_url,
                "CreateDeploymentGroup",
                json!({"applicationName": "web-app", "deploymentGroupName": group, "serviceRoleArn": "arn:aws:iam::123456789012:role/cd"}),
            )
            .await?;
        }
        let config = format!(
            r#"services:
  - name: web
    repository: web-app
    tags: ["v*"]
    cluster: prod
    service: web
    container: web
    codedeploy: {{ application: web-app, deployment_group: web-dg, hooks: [] }}
    alarms: [web-5xx]
    smoke:
      base_url: {smoke_url}
      production_url: {smoke_url}
      checks:
        - {{ name: health, path: /health, expect_status: 200, body_contains: ok }}
  - {{ name: api, repository: api, cluster: prod, service: api, container: api,
      codedeploy: {{ application: web-app, deployment_group: api-dg }}, alarms: [web-5xx] }}
  - {{ name: worker, repository: worker, cluster: prod, service: worker, container: worker,
      codedeploy: {{ application: web-app, deployment_group: worker-dg }}, alarms: [web-5xx] }}
"#
        );
        let env = vec![
            ("GREENLIGHT_CONFIG".into(), config),
            (
                "GREENLIGHT_HOOK_FUNCTION".into(),
                "CodeDeployHook_greenlight-{event}".into(),
            ),
            ("GREENLIGHT_TOPIC_ARN".into(), topic),
            ("GREENLIGHT_HOOK".into(), "AfterAllowTestTraffic".into()),
            ("AWS_ENDPOINT_URL".into(), moto_endpoint),
            ("AWS_ENDPOINT_URL_CODEDEPLOY".into(), codedeploy_url.clone()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()),
        ];
        Ok(Stack {
            env,
            codedeploy,
            codedeploy_url,
            hook_payloads,
            _moto: moto,
        })
    }

    /// A fresh hook payload: a deployment waiting at AfterAllowTestTraffic.
    pub(super) async fn hook_payload(&self) -> Result<Value, String> {
        let before = self.hook_payloads.lock().unwrap().len();
        let appspec = json!({"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {
            "TaskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1", "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 8080}}}}],
            "Hooks": [{"AfterAllowTestTraffic": "CodeDeployHook_greenlight-AfterAllowTestTraffic"}]});
        rpc(
            &self.codedeploy_url,
            "CreateDeployment",
            json!({"applicationName": "web-app", "deploymentGroupName": "web-dg",
                   "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec.to_string()}}}),
        )
        .await?;
        for _ in 0..500 {
            if let Some(payload) = self.hook_payloads.lock().unwrap().get(before).cloned() {
                return Ok(payload);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Err("the stand-in never invoked the hook".into())
    }

    /// Waits until no deployment is in flight (so the next CreateDeployment is accepted).
    pub(super) async fn idle(&self) {
        for _ in 0..1000 {
            let busy = self.codedeploy.deployment_ids().iter().any(|id| {
                !matches!(
                    self.codedeploy.status(id).as_deref(),
                    Some("Succeeded" | "Failed" | "Stopped")
                )
            });
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::balanced_order;

    /// Every round is a permutation, and over `rounds` each ordered pair of neighbours
    /// occurs `times` times.
    fn assert_balanced(n: usize, rounds: usize, times: usize) {
        let mut pairs: HashMap<(usize, usize), usize> = HashMap::new();
        for round in 0..rounds {
            let order = balanced_order(n, round);
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(
                sorted,
                (0..n).collect::<Vec<_>>(),
                "round {round}: {order:?}"
            );
            for w in order.windows(2) {
                *pairs.entry((w[0], w[1])).or_default() += 1;
            }
        }
        for a in 0..n {
            for b in (0..n).filter(|b| *b != a) {
                assert_eq!(
                    pairs.get(&(a, b)),
                    Some(&times),
                    "{a} before {b}: {pairs:?}"
                );
            }
        }
    }

    #[test]
    fn each_function_follows_each_other_equally_often() {
        assert_balanced(4, 4, 1);
        assert_balanced(4, 8, 2);
        assert_balanced(3, 6, 2);
        assert_balanced(2, 2, 1);
        assert_eq!(balanced_order(1, 5), vec![0]);
        assert!(balanced_order(0, 0).is_empty());
    }
}
