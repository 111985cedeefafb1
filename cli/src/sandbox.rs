//! `greenlight sandbox`: everything one function needs to run by hand under
//! `cargo lambda watch`, on this machine: the moto emulator and the CodeDeploy stand-in
//! with the demo's resources (ECR repository `web-app` with images v1.0.0 and v2.0.0,
//! ECS cluster `prod` running service `web` at v1.0.0 under CodeDeploy, application
//! `web-app` with group `web-dg`, an SNS topic), a Greenlight configuration for them,
//! the environment file for `cargo lambda watch --env-file`, and the push event of
//! v2.0.0 (an image that exists, so deploy-on-push can start it). Runs until
//! interrupted; the emulator goes with it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use greenlight_standins::codedeploy::{CodeDeployStandIn, Timing, Traffic};
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Where the configuration, the environment file and the event go.
    #[arg(long, default_value = "target/sandbox")]
    pub dir: PathBuf,
    /// The moto server binary (scripts/bootstrap installs it).
    #[arg(long, default_value = ".venv/bin/moto_server")]
    pub moto: PathBuf,
    /// Where the CodeDeploy stand-in invokes hook functions: `cargo lambda watch`'s
    /// address (its Invoke API, `/2015-03-31/functions/NAME/invocations`).
    #[arg(long, default_value = "http://127.0.0.1:9100")]
    pub lambda_url: String,
}

const HOOK_PATTERN: &str = "CodeDeployHook_greenlight-{event}";

/// No load balancer in the sandbox: traffic moves are only said.
struct Said;

impl Traffic for Said {
    fn install_green(&self, group: &str, image: &str) {
        eprintln!("sandbox: {group}: green runs {image}");
    }
    fn test_to_green(&self, group: &str) {
        eprintln!("sandbox: {group}: test traffic to green");
    }
    fn production_to_green(&self, group: &str, percent: u8) {
        eprintln!("sandbox: {group}: {percent}% of production to green");
    }
    fn promote(&self, group: &str) {
        eprintln!("sandbox: {group}: green promoted");
    }
    fn rollback(&self, group: &str) {
        eprintln!("sandbox: {group}: rolled back to blue");
    }
}

pub fn run(options: Options) -> ExitCode {
    let Some(runtime) = crate::runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(sandbox(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("greenlight sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn sandbox(options: &Options) -> Result<(), String> {
    std::fs::create_dir_all(&options.dir).map_err(|e| format!("{}: {e}", options.dir.display()))?;
    let dir = std::fs::canonicalize(&options.dir).map_err(|e| e.to_string())?;
    let (_moto, moto_endpoint) = crate::rehearse::start_moto(&options.moto).await?;
    let sdk = crate::local::emulator_config(&moto_endpoint).await;

    let ecr = aws_sdk_ecr::Client::new(&sdk);
    ecr.create_repository()
        .repository_name("web-app")
        .send()
        .await
        .map_err(|e| format!("CreateRepository: {e:?}"))?;
    let mut digests = Vec::new();
    for tag in ["v1.0.0", "v2.0.0"] {
        let image = ecr
            .put_image()
            .repository_name("web-app")
            .image_tag(tag)
            .image_manifest(crate::local::manifest(tag))
            .send()
            .await
            .map_err(|e| format!("PutImage {tag}: {e:?}"))?;
        digests.push(
            image
                .image
                .and_then(|i| i.image_id)
                .and_then(|i| i.image_digest)
                .ok_or("PutImage: no digest")?,
        );
    }
    let registry = greenlight::events::ecr_registry("123456789012", "us-east-1");
    crate::local::seed_service(&sdk, &format!("{registry}/web-app@{}", digests[0])).await?;
    let topic = crate::local::topic(&sdk, "greenlight").await?;

    let codedeploy = CodeDeployStandIn::new(
        Arc::new(Said),
        hook_invoker(options.lambda_url.clone()),
        Arc::new(|event: Value| eprintln!("sandbox: EventBridge would deliver {event}")),
        Arc::new(|line: String| eprintln!("sandbox: {line}")),
        Some(aws_sdk_ecs::Client::new(&sdk)),
        Timing::default(),
    );
    codedeploy.seed_application("web-app");
    codedeploy.seed_group(json!({
        "applicationName": "web-app", "deploymentGroupName": "web-dg",
        "serviceRoleArn": "arn:aws:iam::123456789012:role/ecsCodeDeployRole",
        "deploymentConfigName": "CodeDeployDefault.ECSAllAtOnce",
        "ecsServices": [{"clusterName": "prod", "serviceName": "web"}]
    }));
    let codedeploy_addr = greenlight_standins::http::serve(codedeploy.handler())
        .await
        .map_err(|e| e.to_string())?;

    let config = dir.join("greenlight.yaml");
    write(
        &config,
        "services:\n  - name: web\n    repository: web-app\n    cluster: prod\n    service: web\n    container: web\n    codedeploy: { application: web-app, deployment_group: web-dg }\n",
    )?;
    let env_file = dir.join("lambda.env");
    write(
        &env_file,
        &format!(
            "AWS_ENDPOINT_URL={moto_endpoint}\nAWS_ENDPOINT_URL_CODEDEPLOY=http://{codedeploy_addr}\nAWS_REGION=us-east-1\nAWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test\nGREENLIGHT_CONFIG_FILE={}\nGREENLIGHT_TOPIC_ARN={topic}\nGREENLIGHT_HOOK_FUNCTION={HOOK_PATTERN}\n",
            config.display()
        ),
    )?;
    let event = dir.join("ecr-push.json");
    let push = json!({"version": "0", "id": "sandbox-push", "detail-type": "ECR Image Action",
        "source": "aws.ecr", "account": "123456789012", "time": greenlight_standins::rfc3339_now(),
        "region": "us-east-1", "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": "web-app", "image-digest": digests[1],
            "action-type": "PUSH", "image-tag": "v2.0.0"}});
    write(
        &event,
        &serde_json::to_string_pretty(&push).unwrap_or_default(),
    )?;

    println!(
        "sandbox ready: emulator {moto_endpoint}, CodeDeploy stand-in http://{codedeploy_addr}"
    );
    println!("  environment: {}", env_file.display());
    println!("  push event:  {}", event.display());
    println!(
        "  cargo lambda watch -A 127.0.0.1 -P 9100 --env-file {}",
        env_file.display()
    );
    println!(
        "  cargo lambda invoke deploy-on-push -A 127.0.0.1 -P 9100 --data-file {}",
        event.display()
    );
    println!("sandbox: running until interrupted (Ctrl-C)");
    wait_for_the_end().await;
    println!("sandbox: stopped");
    Ok(())
}

/// Invokes a hook through `cargo lambda watch`'s Invoke API. `cargo lambda watch` knows
/// functions by binary name, so every hook the AppSpec names is the `lifecycle-hook`
/// binary (without GREENLIGHT_HOOK it asks CodeDeploy which event it serves).
fn hook_invoker(lambda_url: String) -> greenlight_standins::codedeploy::HookInvoker {
    let http = reqwest::Client::new();
    Arc::new(move |named: String, payload: Value| {
        let (http, url) = (http.clone(), lambda_url.clone());
        let function = "lifecycle-hook";
        eprintln!("sandbox: the AppSpec's hook {named} runs as the {function} binary");
        Box::pin(async move {
            let target = format!("{url}/2015-03-31/functions/{function}/invocations");
            let body = payload.to_string();
            match http
                .post(&target)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
            {
                Ok(r) => eprintln!("sandbox: invoked {function}: HTTP {}", r.status()),
                Err(e) => eprintln!("sandbox: cannot invoke {function} at {target}: {e}"),
            }
        })
    })
}

async fn wait_for_the_end() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn write(path: &std::path::Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
