//! `greenlight deploy`, `status` and `stop` on the CodeDeploy path, as an operator runs
//! them: the real `greenlight` binary against the moto emulator (ECR, ECS) and the
//! CodeDeploy stand-in (the engine: lifecycle events, hooks, a canary). The ECS-native
//! round trip is in `ecs_native.rs`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_codedeploy::types::LifecycleEventStatus;
use aws_sdk_ecs::types::DeploymentController;
use greenlight_standins::codedeploy::{CodeDeployStandIn, NoTraffic, Timing};
use greenlight_standins::http::serve;
use greenlight_tests::aws::sdk_config;
use greenlight_tests::{moto, unique};
use serde_json::{json, Value};

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// Runs `greenlight` with `--config`, ECS and ECR in the emulator, CodeDeploy at `codedeploy`.
async fn cli(args: &[&str], config: &str, codedeploy: &str) -> (Option<i32>, String, String) {
    let mut args = args.to_vec();
    args.extend(["--config", config]);
    let run = greenlight_tests::greenlight(
        &args,
        &[
            ("AWS_ENDPOINT_URL", &moto().endpoint),
            ("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy),
        ],
    )
    .await;
    (run.code, run.stdout, run.stderr)
}

/// Refusals, a deployment started as a push would (the AppSpec naming the hook), a
/// duplicate refused, `status` during the canary (lifecycle event, green's share of
/// production, the smoke-test hook's result) and after the stop, and the stop itself.
#[tokio::test]
async fn greenlight_deploy_status_and_stop_round_trip_on_codedeploy() {
    let base = sdk_config(&moto().endpoint).await;
    let ecs = aws_sdk_ecs::Client::new(&base);
    let ecr = aws_sdk_ecr::Client::new(&base);

    // The service as the user's stack made it: CODE_DEPLOY controller, image by digest.
    let service = unique("web");
    let (cluster, td) = greenlight_tests::aws::cluster_and_web_task_definition(
        &ecs,
        &format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app@{DIGEST}"),
    )
    .await;
    ecs.create_service()
        .cluster(&cluster)
        .service_name(&service)
        .task_definition(td)
        .desired_count(1)
        .deployment_controller(
            DeploymentController::builder()
                .r#type(aws_sdk_ecs::types::DeploymentControllerType::CodeDeploy)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let repository = unique("web-app");
    ecr.create_repository()
        .repository_name(&repository)
        .send()
        .await
        .unwrap();
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 100, "digest": format!("sha256:{:064x}", 42)},
        "layers": []});
    ecr.put_image()
        .repository_name(&repository)
        .image_tag("v2.0.0")
        .image_manifest(manifest.to_string())
        .send()
        .await
        .unwrap();

    // The engine: a canary of 10% for 5 "minutes" of 2 s; the smoke-test hook answers
    // Succeeded through the real SDK, as the lifecycle-hook function would.
    let url: Arc<OnceLock<String>> = Arc::default();
    let hook_url = url.clone();
    let invoked: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let invoked_by = invoked.clone();
    let codedeploy = CodeDeployStandIn::new(
        Arc::new(NoTraffic),
        Arc::new(move |function: String, payload: Value| {
            invoked_by.lock().unwrap().push(function);
            let url = hook_url.get().cloned().unwrap_or_default();
            Box::pin(async move {
                let sdk = sdk_config(&url).await;
                let _ = aws_sdk_codedeploy::Client::new(&sdk)
                    .put_lifecycle_event_hook_execution_status()
                    .deployment_id(payload["DeploymentId"].as_str().unwrap_or_default())
                    .lifecycle_event_hook_execution_id(
                        payload["LifecycleEventHookExecutionId"]
                            .as_str()
                            .unwrap_or_default(),
                    )
                    .status(LifecycleEventStatus::Succeeded)
                    .send()
                    .await;
            })
        }),
        Arc::new(|_event: Value| {}),
        Arc::new(|_line: String| {}),
        Some(ecs.clone()),
        Timing {
            minute: Duration::from_secs(2),
            hook_timeout: Duration::from_secs(30),
            tick: Duration::from_millis(10),
        },
    );
    codedeploy.seed_application("shop");
    codedeploy.seed_group(
        json!({"applicationName": "shop", "deploymentGroupName": "web-dg",
        "serviceRoleArn": "arn:aws:iam::123456789012:role/cd",
        "ecsServices": [{"clusterName": cluster, "serviceName": service}]}),
    );
    let addr = serve(codedeploy.handler()).await.unwrap();
    let endpoint = format!("http://{addr}");
    url.set(endpoint.clone()).unwrap();

    let config = std::env::temp_dir().join(format!("{}.yaml", unique("operate-cd")));
    std::fs::write(
        &config,
        format!(
            "services:\n  - {{ name: web, repository: {repository}, tags: [\"v*\"], cluster: {cluster}, service: {service}, container: web,\n      codedeploy: {{ application: shop, deployment_group: web-dg, deployment_config: CodeDeployDefault.ECSCanary10Percent5Minutes, hooks: [AfterAllowTestTraffic] }} }}\n"
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().to_string();

    // Refused: a digest that is not in the repository.
    let missing = format!("sha256:{:064x}", 7);
    let (code, _, err) = cli(&["deploy", "web", "--digest", &missing], &config, &endpoint).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!("refused: no image {missing} in {repository}")),
        "{err}"
    );

    let (code, out, err) = cli(
        &["deploy", "web", "--tag", "v2.0.0", "--json"],
        &config,
        &endpoint,
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    let started: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(started["outcomes"][0]["outcome"], "started", "{started}");
    let id = started["outcomes"][0]["deployment_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.starts_with("d-"), "{id}");
    let (_, again, _) = cli(
        &["deploy", "web", "--tag", "v2.0.0", "--json"],
        &config,
        &endpoint,
    )
    .await;
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["outcomes"][0]["outcome"], "duplicate", "{again}");
    assert_eq!(codedeploy.deployment_ids(), std::slice::from_ref(&id));

    // status during the canary: at AllowTraffic, 10% of production on green, the
    // smoke-test hook (the one the AppSpec named) passed.
    let mut status = Value::Null;
    for _ in 0..200 {
        let (_, out, _) = cli(&["status", "web", "--json"], &config, &endpoint).await;
        status = serde_json::from_str(&out).unwrap();
        if status[0]["in_flight"][0]["green_production_percent"] == 10.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let in_flight = &status[0]["in_flight"][0];
    assert_eq!(status[0]["path"], "CodeDeploy", "{status}");
    assert_eq!(in_flight["id"], id.as_str(), "{status}");
    assert_eq!(in_flight["image_tag"], "v2.0.0", "{status}");
    assert_eq!(in_flight["at"], "AllowTraffic", "{status}");
    assert_eq!(in_flight["green_production_percent"], 10.0, "{status}");
    assert_eq!(
        in_flight["hooks"],
        json!([{"hook": "AfterAllowTestTraffic", "status": "Succeeded"}]),
        "{status}"
    );
    assert_eq!(status[0]["production_digest"], DIGEST, "{status}");
    assert_eq!(
        invoked.lock().unwrap().as_slice(),
        ["CodeDeployHook_greenlight-AfterAllowTestTraffic"]
    );
    let (code, text, _) = cli(&["status"], &config, &endpoint).await;
    assert_eq!(code, Some(0));
    assert!(
        text.contains("web (CodeDeploy)")
            && text.contains(&format!("in flight: {id} InProgress at AllowTraffic"))
            && text.contains("traffic: green serves 10% of production")
            && text.contains("hooks: AfterAllowTestTraffic Succeeded"),
        "{text}"
    );

    // stop (with rollback, the default), then status: nothing in flight, stopped.
    let (code, out, err) = cli(&["stop", "web"], &config, &endpoint).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("stopped {id}")), "{out}");
    for _ in 0..200 {
        if codedeploy.status(&id).as_deref() == Some("Stopped") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, out, _) = cli(&["status", "web", "--json"], &config, &endpoint).await;
    let after: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(after[0]["in_flight"], json!([]), "{after}");
    assert_eq!(after[0]["last_finished"]["id"], id.as_str(), "{after}");
    assert_eq!(after[0]["last_finished"]["status"], "Stopped", "{after}");
    assert_eq!(after[0]["production_digest"], DIGEST, "{after}");
    let (_, out, _) = cli(&["stop", "web"], &config, &endpoint).await;
    assert!(out.contains("nothing in flight"), "{out}");

    // The report page of the live deployment, rendered in headless Chromium: its
    // lifecycle, the hook's result and the stop.
    let page = std::env::temp_dir().join(format!("{}.html", unique("live-report")));
    let page_arg = page.to_string_lossy().to_string();
    let run = greenlight_tests::greenlight(
        &["report", "--deployment", &id, "--out", &page_arg],
        &[("AWS_ENDPOINT_URL_CODEDEPLOY", &endpoint)],
    )
    .await;
    let (code, out, err) = (run.code, run.stdout, run.stderr);
    assert_eq!(code, Some(0), "{out}{err}");
    let (dom, console) = greenlight_tests::chromium_dom(&page);
    assert!(dom.contains(r#"data-rendered="ok""#), "{console}");
    for expected in [
        format!("CodeDeploy deployment {id} (shop/web-dg)"),
        "lifecycle AfterAllowTestTraffic".to_string(),
        "lifecycle AllowTestTraffic Succeeded".to_string(),
        "Stopped".to_string(),
    ] {
        assert!(
            dom.contains(&expected),
            "the page lacks {expected:?}: {dom}"
        );
    }
}

/// `status --watch` refreshes in place: the screen cleared and the status printed
/// again every interval, until interrupted.
#[tokio::test]
async fn status_watch_refreshes_in_place_until_interrupted() {
    let config = std::env::temp_dir().join(format!("{}.yaml", unique("watch")));
    std::fs::write(
        &config,
        "services:\n  - { name: web, repository: web-app, cluster: no-such-cluster, service: web, container: web, pipeline: { name: web-pipeline, image_variable: IMAGE_URI } }\n",
    )
    .unwrap();
    let mut child = std::process::Command::new(greenlight_tests::binaries().join("greenlight"))
        .args(["status", "--watch", "1", "--config"])
        .arg(&config)
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut text = String::new();
        let _ = std::io::BufReader::new(stdout).read_to_string(&mut text);
        text
    });
    // Wait for two refreshes, then interrupt (a generous bound: each is one second apart).
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "--watch keeps running until interrupted"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let text = reader.join().unwrap();
    let refreshes = text.matches("\x1b[2J\x1b[H").count();
    assert!(refreshes >= 2, "{refreshes} refresh(es): {text:?}");
    // Each refresh prints the service, and what could not be read says why.
    let frames: Vec<&str> = text.split("\x1b[2J\x1b[H").skip(1).collect();
    for frame in &frames[..2] {
        assert!(frame.contains("web (pipeline)"), "{frame:?}");
        assert!(frame.contains("error:"), "{frame:?}");
    }
}
