//! Configuration from Parameter Store and S3 through the real SDK against the emulator:
//! each source at init, a document over 4 KB (advanced parameter) and one of 50
//! services, a changed document picked up by a warm function, an invalid new version
//! refused with the old one kept and a `config_refused` notification.

use std::time::Duration;

use greenlight::config_source::{refresh_and_report, LiveConfig, Refresh};
use greenlight_standins::runtime::FunctionHost;
use greenlight_tests::aws::{notifications, sdk_config, topic_with_queue};
use greenlight_tests::{binaries, moto, unique};
use serde_json::json;

fn service(i: usize, tags: &str) -> String {
    format!(
        "  - name: svc-{i:02}\n    repository: repo-{i:02}\n    tags: [{tags}]\n    cluster: prod\n    service: svc-{i:02}\n    container: app\n    codedeploy: {{ application: app-{i:02}, deployment_group: dg-{i:02} }}\n    smoke:\n      checks:\n        - {{ name: health, path: /health, expect_status: 200, body_contains: ok }}\n        - {{ name: version, path: /version, json_equals: {{ /version: \"${{image_tag}}\" }} }}\n"
    )
}

fn document(services: usize, tags: &str) -> String {
    let mut text = String::from("services:\n");
    for i in 0..services {
        text.push_str(&service(i, tags));
    }
    text
}

fn s3(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

fn env(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

#[tokio::test]
async fn an_advanced_parameter_over_4_kb_loads_and_a_new_version_is_picked_up() {
    let sdk = sdk_config(&moto().endpoint).await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let name = format!("/greenlight/{}", unique("config"));
    let text = document(12, "\"v*\"");
    assert!(
        text.len() > 4096 && text.len() <= 8192,
        "{} bytes",
        text.len()
    );
    ssm.put_parameter()
        .name(&name)
        .value(&text)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .tier(aws_sdk_ssm::types::ParameterTier::Advanced)
        .send()
        .await
        .unwrap();
    let live = LiveConfig::load(
        &sdk,
        env(vec![
            ("GREENLIGHT_CONFIG_SSM", name.clone()),
            ("GREENLIGHT_CONFIG_REFRESH_SECONDS", "0".into()),
        ]),
    )
    .await
    .expect("loads from SSM");
    assert_eq!(live.shared().load().services.len(), 12);
    assert!(matches!(live.refresh().await, Refresh::Unchanged));

    // A new version with one more service: switched for the next invocation.
    let newer = document(13, "\"v*\"");
    ssm.put_parameter()
        .name(&name)
        .value(&newer)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .tier(aws_sdk_ssm::types::ParameterTier::Advanced)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    assert!(matches!(live.refresh().await, Refresh::Switched { .. }));
    assert_eq!(live.shared().load().services.len(), 13);

    // An invalid version: refused, the 13 services stay, reported once.
    ssm.put_parameter()
        .name(&name)
        .value("services:\n  - name: broken\n")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    match live.refresh().await {
        Refresh::Refused { error, .. } => {
            assert!(error.contains(&format!("SSM parameter {name}")), "{error}");
            assert!(error.contains("services[0].repository: missing"), "{error}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(live.shared().load().services.len(), 13);
    assert!(
        matches!(live.refresh().await, Refresh::Unchanged),
        "reported once per version"
    );
}

#[tokio::test]
async fn fifty_services_from_s3_load_and_a_refused_version_is_notified() {
    let sdk = sdk_config(&moto().endpoint).await;
    let bucket = unique("cfg").to_lowercase();
    let client = s3(&sdk);
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let text = document(50, "\"v*\"");
    client
        .put_object()
        .bucket(&bucket)
        .key("greenlight.yaml")
        .body(text.into_bytes().into())
        .send()
        .await
        .unwrap();
    let url = format!("s3://{bucket}/greenlight.yaml");
    let live = LiveConfig::load(
        &sdk,
        env(vec![
            ("GREENLIGHT_CONFIG_S3", url.clone()),
            ("GREENLIGHT_CONFIG_REFRESH_SECONDS", "0".into()),
        ]),
    )
    .await
    .expect("loads from S3");
    assert_eq!(live.shared().load().services.len(), 50);
    assert!(
        matches!(live.refresh().await, Refresh::Unchanged),
        "same ETag"
    );

    client
        .put_object()
        .bucket(&bucket)
        .key("greenlight.yaml")
        .body(b"services: [ { name: x } ]".to_vec().into())
        .send()
        .await
        .unwrap();
    let (topic, queue) = topic_with_queue(&sdk).await;
    let notifier =
        greenlight::notify::Notifier::new(greenlight::aws::Sns::from_conf(&sdk), Some(topic));
    assert!(matches!(
        refresh_and_report(
            &live,
            &notifier,
            tokio::time::Instant::now() + std::time::Duration::from_secs(60)
        )
        .await,
        Refresh::Refused { .. }
    ));
    assert_eq!(
        live.shared().load().services.len(),
        50,
        "the old document stays"
    );
    let sent = notifications(&sdk, &queue).await;
    assert!(
        sent.iter()
            .any(|(event, chat, _)| event == "config_refused" && chat.to_string().contains(&url)),
        "{sent:?}"
    );

    // A missing object fails init and names the source.
    let missing = LiveConfig::load(
        &sdk,
        env(vec![(
            "GREENLIGHT_CONFIG_S3",
            format!("s3://{bucket}/nope.yaml"),
        )]),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains(&format!("s3://{bucket}/nope.yaml")),
        "{missing}"
    );
    assert!(missing.contains("GetObject"), "{missing}");
}

/// The real deploy-on-push binary, warm, with its document in Parameter Store: a push
/// its tags excluded is ignored; after the parameter changes, the same push is taken.
#[tokio::test]
async fn a_warm_function_follows_a_changed_parameter() {
    let sdk = sdk_config(&moto().endpoint).await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let name = format!("/greenlight/{}", unique("warm"));
    let put = |text: String| {
        let (ssm, name) = (ssm.clone(), name.clone());
        async move {
            ssm.put_parameter()
                .name(&name)
                .value(text)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .overwrite(true)
                .send()
                .await
                .unwrap();
        }
    };
    put(document(1, "\"v*\"")).await;
    let env: Vec<(String, String)> = vec![
        ("GREENLIGHT_CONFIG_SSM".into(), name.clone()),
        ("GREENLIGHT_CONFIG_REFRESH_SECONDS".into(), "0".into()),
        (
            "GREENLIGHT_HOOK_FUNCTION".into(),
            "greenlight-{event}".into(),
        ),
        ("AWS_ENDPOINT_URL".into(), moto().endpoint.clone()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
    ];
    let host = FunctionHost::start(
        "deploy-on-push",
        &binaries().join("deploy-on-push"),
        &env,
        Duration::from_secs(30),
        Some(std::env::temp_dir().join(format!("{}.log", unique("warm-dop")))),
    )
    .await
    .unwrap();
    assert!(
        host.wait_ready(Duration::from_secs(20)).await.is_some(),
        "deploy-on-push did not start"
    );
    let push = json!({"version": "0", "id": "e1", "detail-type": "ECR Image Action", "source": "aws.ecr",
        "account": "123456789012", "time": "2026-11-29T10:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": "repo-00", "image-digest": format!("sha256:{}", "a".repeat(64)),
            "action-type": "PUSH", "image-tag": "release-1"}});
    let first = host.invoke(push.clone()).await.unwrap();
    assert_eq!(first["decision"], "ignored", "{first}");
    put(document(1, "\"release-*\"")).await;
    let second = host.invoke(push).await;
    let second = format!("{second:?}");
    // The push is now svc-00's (the emulator has no cluster, so it cannot start).
    assert!(
        !second.contains("ignored") && second.contains("svc-00"),
        "the new tags are in force: {second}"
    );
    host.stop().await;
}

fn greenlight(args: &[String]) -> std::process::Output {
    std::process::Command::new(binaries().join("greenlight"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap()
}

async fn tier_of(
    sdk: &aws_config::SdkConfig,
    name: &str,
) -> Option<aws_sdk_ssm::types::ParameterTier> {
    aws_sdk_ssm::Client::new(sdk)
        .describe_parameters()
        .parameter_filters(
            aws_sdk_ssm::types::ParameterStringFilter::builder()
                .key("Name")
                .option("Equals")
                .values(name)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .parameters
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.name() == Some(name))
        .and_then(|p| p.tier)
}

/// `greenlight config push` validates then uploads (advanced tier when over 4 KB);
/// `greenlight config check` reads `ssm:` and `s3://` sources.
#[tokio::test]
async fn config_push_and_check_work_with_ssm_and_s3() {
    let sdk = sdk_config(&moto().endpoint).await;
    let bucket = unique("push").to_lowercase();
    s3(&sdk)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let dir = std::env::temp_dir();
    let big = dir.join(format!("{}.yaml", unique("big")));
    std::fs::write(&big, document(12, "\"v*\"")).unwrap();
    let small = dir.join(format!("{}.yaml", unique("small")));
    std::fs::write(&small, document(1, "\"v*\"")).unwrap();
    let bad = dir.join(format!("{}.yaml", unique("bad")));
    std::fs::write(&bad, "services:\n  - name: broken\n").unwrap();
    let parameter = format!("ssm:/greenlight/{}", unique("pushed"));
    let s3_url = format!("s3://{bucket}/greenlight.yaml");
    let path = |p: &std::path::Path| p.to_string_lossy().to_string();
    let outputs = tokio::task::spawn_blocking({
        let (big, small, bad, parameter, s3_url) = (
            path(&big),
            path(&small),
            path(&bad),
            parameter.clone(),
            s3_url.clone(),
        );
        move || {
            let arg = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            vec![
                greenlight(&arg(&["config", "push", &bad, "--to", &parameter])),
                greenlight(&arg(&["config", "check", &parameter])),
                greenlight(&arg(&["config", "push", &big, "--to", &parameter])),
                greenlight(&arg(&["config", "check", &parameter])),
                greenlight(&arg(&["config", "push", &big, "--to", &s3_url])),
                greenlight(&arg(&["config", "check", &s3_url])),
                // The document shrinks under 4 KB: SSM cannot go back to standard.
                greenlight(&arg(&["config", "push", &small, "--to", &parameter])),
            ]
        }
    })
    .await
    .unwrap();
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert_eq!(outputs[0].status.code(), Some(1), "{}", text(&outputs[0]));
    assert!(
        text(&outputs[0]).contains("nothing uploaded"),
        "{}",
        text(&outputs[0])
    );
    assert_eq!(
        outputs[1].status.code(),
        Some(1),
        "nothing was uploaded: {}",
        text(&outputs[1])
    );
    assert!(outputs[2].status.success(), "{}", text(&outputs[2]));
    assert!(outputs[3].status.success(), "{}", text(&outputs[3]));
    assert!(
        text(&outputs[3]).contains("OK (12 service(s))"),
        "{}",
        text(&outputs[3])
    );
    let name = parameter.strip_prefix("ssm:").unwrap_or_default();
    assert_eq!(
        tier_of(&sdk, name).await,
        Some(aws_sdk_ssm::types::ParameterTier::Advanced)
    );
    assert!(outputs[6].status.success(), "{}", text(&outputs[6]));
    assert_eq!(
        tier_of(&sdk, name).await,
        Some(aws_sdk_ssm::types::ParameterTier::Advanced),
        "a shrinking document keeps the advanced tier"
    );
    assert!(outputs[4].status.success(), "{}", text(&outputs[4]));
    assert!(
        text(&outputs[5]).contains("OK (12 service(s))"),
        "{}",
        text(&outputs[5])
    );
}
