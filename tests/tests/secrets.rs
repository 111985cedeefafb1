//! Secrets in smoke checks, through the real SDK against the emulator (Secrets Manager
//! and Parameter Store): resolved when a check runs and sent, never in logs (the real
//! hook binary's captured output), notifications or `greenlight smoke --json` (a
//! server that echoes the token back sees it masked); a missing secret fails the check
//! with a reason and the hook still answers.

use std::process::Command;
use std::time::Duration;

use greenlight_standins::runtime::FunctionHost;
use greenlight_tests::aws::{notifications, sdk_config, topic_with_queue};
use greenlight_tests::http::{Reply, TestServer};
use greenlight_tests::{binaries, moto, unique};
use serde_json::json;

const SERVICE_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:service/prod/web";

struct Seeded {
    secret_name: String,
    token: String,
    parameter: String,
    api_key: String,
}

async fn seed() -> Seeded {
    let sdk = sdk_config(&moto().endpoint).await;
    let token = unique("tok");
    let api_key = unique("key");
    let secret_name = format!("web/{}", unique("smoke"));
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&secret_name)
        .secret_string(json!({"token": token}).to_string())
        .send()
        .await
        .unwrap();
    let parameter = format!("/web/{}", unique("api-key"));
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&parameter)
        .value(&api_key)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    Seeded {
        secret_name,
        token,
        parameter,
        api_key,
    }
}

/// Answers 200 (echoing the Authorization header, as careless servers do) only with
/// both credentials.
async fn server(token: &str, api_key: &str) -> TestServer {
    let (token, api_key) = (token.to_string(), api_key.to_string());
    TestServer::start(move |request| {
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        if header("authorization") == format!("Bearer {token}") && header("x-api-key") == api_key {
            Reply::new(200, format!("ok, you sent {}", header("authorization")))
        } else {
            Reply::new(401, "who are you")
        }
    })
    .await
}

fn config(url: &str, secret: &str, parameter: &str) -> String {
    format!(
        r#"services:
  - name: web
    repository: web-app
    cluster: prod
    service: web
    container: web
    ecs_native: {{}}
    smoke:
      base_url: {url}
      checks:
        - name: authorized
          path: /health
          headers: {{ Authorization: "Bearer ${{secret:{secret}#token}}", X-Api-Key: "${{ssm:{parameter}}}" }}
          expect_status: 200
          body_contains: ok
"#
    )
}

fn payload() -> serde_json::Value {
    json!({
        "executionId": "exec-1",
        "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT",
        "resourceArn": "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web/dep1",
        // No target revision: the emulator answers DescribeServiceRevisions with an
        // HTML 500 that the SDK retries, which would only slow this test down.
        "executionDetails": {"serviceArn": SERVICE_ARN,
            "testTrafficWeights": {}, "productionTrafficWeights": {}},
        "hookDetails": {}
    })
}

async fn hook_with(config: String, topic: &str, log: &std::path::Path) -> FunctionHost {
    let env: Vec<(String, String)> = vec![
        ("GREENLIGHT_CONFIG".into(), config),
        ("GREENLIGHT_TOPIC_ARN".into(), topic.into()),
        ("AWS_ENDPOINT_URL".into(), moto().endpoint.clone()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()),
        ("AWS_LAMBDA_LOG_LEVEL".into(), "DEBUG".into()),
    ];
    let host = FunctionHost::start(
        "lifecycle-hook",
        &binaries().join("lifecycle-hook"),
        &env,
        Duration::from_secs(30),
        Some(log.to_path_buf()),
    )
    .await
    .unwrap();
    assert!(host.wait_ready(Duration::from_secs(20)).await.is_some());
    host
}

#[tokio::test]
async fn secrets_reach_the_server_and_nowhere_else() {
    let seeded = seed().await;
    let server = server(&seeded.token, &seeded.api_key).await;
    let sdk = sdk_config(&moto().endpoint).await;
    let (topic, queue) = topic_with_queue(&sdk).await;
    let log = std::env::temp_dir().join(format!("{}.log", unique("secrets-hook")));
    let host = hook_with(
        config(&server.url(), &seeded.secret_name, &seeded.parameter),
        &topic,
        &log,
    )
    .await;
    let answer = host.invoke(payload()).await.unwrap();
    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer}");
    assert_eq!(
        server.requests(),
        1,
        "the check was sent once, with its credentials"
    );
    host.stop().await;
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("check secrets read"),
        "the run is logged: {logs}"
    );
    for secret in [&seeded.token, &seeded.api_key] {
        assert!(!logs.contains(secret.as_str()), "a secret reached the logs");
        assert!(!answer.to_string().contains(secret.as_str()));
    }
    let sent = notifications(&sdk, &queue).await;
    let passed = sent
        .iter()
        .find(|(event, _, _)| event == "hook_passed")
        .expect("hook_passed notified");
    let text = format!("{sent:?}");
    assert!(!text.contains(&seeded.token) && !text.contains(&seeded.api_key));
    assert!(
        passed.1.to_string().contains("you sent Bearer ****"),
        "the echoed token is masked: {}",
        passed.1
    );
}

#[tokio::test]
async fn a_missing_secret_fails_the_check_unsent_and_the_hook_still_answers() {
    let seeded = seed().await;
    let server = server(&seeded.token, &seeded.api_key).await;
    let sdk = sdk_config(&moto().endpoint).await;
    let (topic, _queue) = topic_with_queue(&sdk).await;
    let log = std::env::temp_dir().join(format!("{}.log", unique("secrets-missing")));
    let host = hook_with(
        config(&server.url(), "web/no-such-secret", &seeded.parameter),
        &topic,
        &log,
    )
    .await;
    let answer = host.invoke(payload()).await.unwrap();
    host.stop().await;
    assert_eq!(answer["hookStatus"], "FAILED", "{answer}");
    let reason = answer["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("secret could not be read") && reason.contains("web/no-such-secret"),
        "{reason}"
    );
    assert_eq!(
        server.requests(),
        0,
        "a check without its credential is not sent"
    );
}

#[tokio::test]
async fn greenlight_smoke_json_never_prints_a_secret() {
    let seeded = seed().await;
    let server = server(&seeded.token, &seeded.api_key).await;
    let file = std::env::temp_dir().join(format!("{}.yaml", unique("secrets-cli")));
    std::fs::write(
        &file,
        config(&server.url(), &seeded.secret_name, &seeded.parameter),
    )
    .unwrap();
    let url = server.url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(binaries().join("greenlight"))
            .args([
                "smoke",
                "--service",
                "web",
                "--json",
                "--url",
                &url,
                "--config",
            ])
            .arg(&file)
            .env("AWS_ENDPOINT_URL", &moto().endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Bearer ****"), "{stdout}");
    assert!(!stdout.contains(&seeded.token) && !stdout.contains(&seeded.api_key));
}
