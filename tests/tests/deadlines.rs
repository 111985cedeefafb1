//! Every function, as its real binary under a Lambda Runtime API host, ends each
//! invocation before its deadline when AWS misbehaves: endpoints that refuse
//! connections, and endpoints that accept and never answer, under several deadlines.
//! (Before the SDK timeouts and the bounded refresh and notifications, the hook never
//! answered with silent endpoints, and answered late with refused ones.)

use std::time::{Duration, Instant};

use greenlight_standins::runtime::FunctionHost;
use greenlight_tests::{binaries, unique};
use serde_json::{json, Value};

const CONFIG: &str = r#"
notifications: { topic_arn: "arn:aws:sns:us-east-1:123456789012:greenlight" }
services:
  - { name: web, repository: web-app, cluster: prod, service: web, container: web,
      codedeploy: { application: web-app, deployment_group: web-dg }, alarms: [web-5xx] }
  - { name: api, repository: api, cluster: prod, service: api, container: api,
      ecs_native: { stages: [POST_TEST_TRAFFIC_SHIFT] }, alarms: [api-5xx],
      smoke: { base_url: "http://127.0.0.1:9/", checks: [ { name: health, path: /health } ] } }
"#;

fn push() -> Value {
    json!({"version": "0", "id": "e1", "detail-type": "ECR Image Action", "source": "aws.ecr",
        "account": "123456789012", "time": "2026-11-29T10:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": "web-app",
            "image-digest": format!("sha256:{}", "a".repeat(64)), "action-type": "PUSH", "image-tag": "v2"}})
}

fn alarm() -> Value {
    json!({"version": "0", "id": "a1", "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
        "account": "123456789012", "time": "2026-11-29T10:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-5xx"],
        "detail": {"alarmName": "web-5xx", "state": {"value": "ALARM", "reason": "r", "timestamp": "2026-11-29T10:00:00.000+0000"},
            "previousState": {"value": "OK", "reason": "r", "timestamp": "2026-11-29T09:00:00.000+0000"},
            "configuration": {"metrics": []}}})
}

fn codedeploy_hook() -> Value {
    json!({"DeploymentId": "d-ABCDEF123", "LifecycleEventHookExecutionId": "exec-1"})
}

fn ecs_hook() -> Value {
    json!({"executionId": "exec-1", "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT",
        "resourceArn": "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/api/dep1",
        "executionDetails": {"serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/prod/api",
            "targetServiceRevisionArn": "arn:aws:ecs:us-east-1:123456789012:service-revision/prod/api/2",
            "testTrafficWeights": {}, "productionTrafficWeights": {}},
        "hookDetails": {}})
}

/// An address that refuses connections (bound, then closed) and one that accepts
/// them and never answers.
async fn broken_endpoints() -> (String, String) {
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_url = format!("http://{}", refused.local_addr().unwrap());
    drop(refused);
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    (refused_url, silent_url)
}

/// Runs one invocation and returns how long it took to end (answer or error).
async fn invocation_time(
    binary: &str,
    extra_env: &[(&str, &str)],
    endpoint: &str,
    deadline: Duration,
    event: Value,
) -> Duration {
    let mut env: Vec<(String, String)> = vec![
        ("GREENLIGHT_CONFIG".into(), CONFIG.into()),
        (
            "GREENLIGHT_HOOK_FUNCTION".into(),
            "greenlight-{event}".into(),
        ),
        ("AWS_ENDPOINT_URL".into(), endpoint.into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
    ];
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let host = FunctionHost::start(
        binary,
        &binaries().join(binary),
        &env,
        deadline,
        Some(std::env::temp_dir().join(format!("{}.log", unique("deadline")))),
    )
    .await
    .unwrap();
    assert!(
        host.wait_ready(Duration::from_secs(20)).await.is_some(),
        "{binary} did not start"
    );
    let started = Instant::now();
    // The host itself would wait for ever: give it the deadline and a generous margin.
    let ended = tokio::time::timeout(deadline + Duration::from_secs(20), host.invoke(event)).await;
    let took = started.elapsed();
    host.stop().await;
    assert!(
        ended.is_ok(),
        "{binary} never answered ({took:?}, deadline {deadline:?})"
    );
    took
}

/// A binary, its extra environment and the event it gets.
type Case = (&'static str, Vec<(&'static str, &'static str)>, Value);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_function_ends_before_its_deadline_when_aws_refuses_or_never_answers() {
    let (refused, silent) = broken_endpoints().await;
    let cases: Vec<Case> = vec![
        ("deploy-on-push", vec![], push()),
        ("alarm-rollback", vec![], alarm()),
        (
            "lifecycle-hook",
            vec![("GREENLIGHT_HOOK", "AfterAllowTestTraffic")],
            codedeploy_hook(),
        ),
        ("lifecycle-hook", vec![], ecs_hook()),
    ];
    let mut runs = Vec::new();
    for deadline in [Duration::from_secs(3), Duration::from_secs(8)] {
        for endpoint in [&refused, &silent] {
            for (binary, env, event) in &cases {
                let (binary, env, event, endpoint) =
                    (*binary, env.clone(), event.clone(), endpoint.clone());
                runs.push(tokio::spawn(async move {
                    let took = invocation_time(binary, &env, &endpoint, deadline, event).await;
                    (binary, endpoint, deadline, took)
                }));
            }
        }
    }
    let mut late = Vec::new();
    for run in runs {
        let (binary, endpoint, deadline, took) = run.await.unwrap();
        // The host measures from its own side of the invocation: allow its overhead.
        if took > deadline + Duration::from_millis(300) {
            late.push(format!(
                "{binary} against {endpoint}: {took:?} with a {deadline:?} deadline"
            ));
        }
    }
    assert!(
        late.is_empty(),
        "invocations that outlived their deadline: {late:#?}"
    );
}
