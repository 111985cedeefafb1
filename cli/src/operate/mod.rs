//! Steering Greenlight by hand, on either deployment path, through the same seam the
//! functions use: `greenlight status`, `greenlight deploy`, `greenlight stop`.
//! Each talks to whatever endpoints the SDK is given (AWS, or the local stand-ins).
//! Exit codes: 0 done, 1 refused or failed (the reason on stderr), 3 bad arguments.

mod promote;
mod status;

use std::process::ExitCode;

use greenlight::aws::{Ecr, Sns};
use greenlight::config::ServiceConfig;
use greenlight::deploy::Backends;
use greenlight::notify::Notifier;
use greenlight::Config;
use serde_json::{json, Value};

/// Where the configuration comes from for the operator commands.
#[derive(Debug, Clone, clap::Args)]
pub struct Source {
    /// The configuration document (a file, `ssm:NAME` or `s3://bucket/key`); default:
    /// the GREENLIGHT_CONFIG* variables, as the functions read them.
    #[arg(long)]
    pub config: Option<String>,
}

impl Source {
    pub async fn load(&self, sdk: &greenlight::aws::SdkConfig) -> Result<Config, String> {
        match &self.config {
            Some(source) => {
                let text = match greenlight::config_source::ConfigSource::from_argument(source)
                    .map_err(|e| e.to_string())?
                {
                    greenlight::config_source::ConfigSource::File(path) => {
                        std::fs::read_to_string(&path)
                            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                    }
                    remote => greenlight::config_source::ConfigStore::from_conf(sdk)
                        .fetch(&remote, None)
                        .await
                        .map_err(|e| e.to_string())?
                        .map(|d| d.text)
                        .unwrap_or_default(),
                };
                Config::parse(&text).map_err(|e| format!("configuration {source}: {e}"))
            }
            None => greenlight::config_source::LiveConfig::load(sdk, |n| std::env::var(n).ok())
                .await
                .map(|live| (*live.shared().load()).clone())
                .map_err(|e| format!("configuration: {e}")),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct DeployOptions {
    /// The configured service.
    pub service: String,
    /// The image tag to deploy (must be in the repository and allowed by `tags`).
    #[arg(long, conflicts_with = "digest", required_unless_present = "digest")]
    pub tag: Option<String>,
    /// The image digest to deploy (`sha256:…`, must be in the repository).
    #[arg(long)]
    pub digest: Option<String>,
    /// The hook function the AppSpec names (CodeDeploy); default GREENLIGHT_HOOK_FUNCTION,
    /// else the template's `CodeDeployHook_greenlight-{event}`.
    #[arg(long)]
    pub hook_function: Option<String>,
    #[command(flatten)]
    pub source: Source,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct StopOptions {
    /// The configured service.
    pub service: String,
    /// Stop without rolling back (CodeDeploy only: ECS always rolls back).
    #[arg(long)]
    pub no_rollback: bool,
    #[command(flatten)]
    pub source: Source,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusOptions {
    /// One configured service; default: all.
    pub service: Option<String>,
    #[command(flatten)]
    pub source: Source,
    #[arg(long)]
    pub json: bool,
    /// Refresh in place every N seconds (default 5) until interrupted.
    #[arg(long, num_args = 0..=1, default_missing_value = "5")]
    pub watch: Option<u64>,
}

fn finish(result: Result<Value, String>, json: bool, text: impl Fn(&Value) -> String) -> ExitCode {
    match result {
        Ok(value) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            } else {
                println!("{}", text(&value));
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn service<'a>(config: &'a Config, name: &str) -> Result<&'a ServiceConfig, String> {
    config.service_by_name(name).ok_or_else(|| {
        let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
        format!(
            "refused: no service {name:?} in the configuration (services: {})",
            names.join(", ")
        )
    })
}

fn backends(sdk: &greenlight::aws::SdkConfig, hook_pattern: Option<String>) -> Backends {
    Backends::from_conf(sdk, hook_pattern)
}

pub fn deploy(options: DeployOptions) -> ExitCode {
    let Some(runtime) = crate::runtime() else {
        return ExitCode::FAILURE;
    };
    let json = options.json;
    finish(runtime.block_on(start(options)), json, |v| {
        let outcomes: Vec<String> = v["outcomes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                format!(
                    "{}: {}{}",
                    o["service"].as_str().unwrap_or_default(),
                    o["outcome"].as_str().unwrap_or_default(),
                    o["deployment_id"]
                        .as_str()
                        .map(|id| format!(" (deployment {id})"))
                        .or_else(|| o["reason"].as_str().map(|r| format!(": {r}")))
                        .unwrap_or_default()
                )
            })
            .collect();
        format!(
            "{}:{} ({})\n{}",
            v["repository"].as_str().unwrap_or_default(),
            v["tag"].as_str().unwrap_or_default(),
            v["digest"].as_str().unwrap_or_default(),
            outcomes.join("\n")
        )
    })
}

/// As a push would: the same intake, exactly-once and `on_busy` rules and task
/// definition rendering (deploy-on-push's own handler, with this one service).
async fn start(options: DeployOptions) -> Result<Value, String> {
    let sdk = greenlight::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    let config = options.source.load(&sdk).await?;
    let svc = service(&config, &options.service)?.clone();
    if let Some(promote) = &svc.promote {
        return Err(format!(
            "refused: {} takes only digests that proved themselves in {}: greenlight promote {} [--digest D] (--force --reason TEXT to go past the checks, recorded)",
            svc.name, promote.from, svc.name
        ));
    }
    let images = Ecr::from_conf(&sdk)
        .tagged_images(&svc.repository)
        .await
        .map_err(|e| format!("cannot list the images of {}: {e}", svc.repository))?;
    let (tag, digest) = match (&options.tag, &options.digest) {
        (Some(tag), _) => {
            let image = images
                .iter()
                .find(|i| i.tags.iter().any(|t| t == tag))
                .ok_or_else(|| format!("refused: no image tagged {tag} in {}", svc.repository))?;
            (tag.clone(), image.digest.clone())
        }
        (None, Some(digest)) => {
            let image = images
                .iter()
                .find(|i| &i.digest == digest)
                .ok_or_else(|| format!("refused: no image {digest} in {}", svc.repository))?;
            let tag = image
                .tags
                .iter()
                .find(|t| svc.tags.matches(t))
                .ok_or_else(|| {
                    format!(
                        "refused: {digest} has no tag that {}'s tags allow (its tags: {})",
                        svc.name,
                        image.tags.join(", ")
                    )
                })?;
            (tag.clone(), digest.clone())
        }
        (None, None) => return Err("give --tag or --digest".into()),
    };
    if !svc.tags.matches(&tag) {
        return Err(format!(
            "refused: tag {tag} is not one {}'s tags allow",
            svc.name
        ));
    }
    let hook_pattern = hook_pattern(&options.hook_function);
    let only_this = Config {
        notifications: config.notifications.clone(),
        services: vec![svc.clone()],
        redact: config.redact.clone(),
    };
    let handler = push_handler(&sdk, only_this, Some(hook_pattern), None);
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    // The event EventBridge would deliver for this image, marked as the CLI's.
    let event = json!({
        "version": "0", "id": format!("greenlight-cli-{}", std::process::id()),
        "detail-type": "ECR Image Action", "source": "aws.ecr", "account": "000000000000",
        "time": now, "region": region, "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": svc.repository, "image-digest": digest,
            "action-type": "PUSH", "image-tag": tag}
    });
    let outcomes = handler
        .handle(event)
        .await
        .map_err(|e| format!("could not deploy: {e}"))?;
    Ok(
        json!({"service": svc.name, "repository": svc.repository, "tag": tag, "digest": digest,
        "outcomes": outcomes}),
    )
}

/// The hook function the AppSpec names: `--hook-function`, else
/// GREENLIGHT_HOOK_FUNCTION, else the template's `CodeDeployHook_greenlight-{event}`.
fn hook_pattern(flag: &Option<String>) -> String {
    flag.clone()
        .or_else(|| std::env::var(deploy_on_push::ENV_HOOK_FUNCTION).ok())
        .unwrap_or_else(|| "CodeDeployHook_greenlight-{event}".into())
}

/// deploy-on-push's own handler, as the CLI runs it: `config`, the ledger
/// `table` (default GREENLIGHT_LEDGER_TABLE), deployments marked as a person's.
pub(crate) fn push_handler(
    sdk: &greenlight::aws::SdkConfig,
    config: Config,
    hook_pattern: Option<String>,
    table: Option<&str>,
) -> deploy_on_push::DeployOnPush<Sns> {
    let topic = config.notifications.topic_arn.clone();
    let ledger = match table {
        Some(table) => Some(greenlight::ledger::Ledger::new(sdk, table)),
        None => greenlight::ledger::Ledger::from_env(sdk),
    };
    deploy_on_push::DeployOnPush {
        config: config.into(),
        backends: backends(sdk, hook_pattern),
        ecr: Ecr::from_conf(sdk),
        capture: greenlight::evidence::Capture::from_conf(sdk),
        notifier: Notifier::new(Sns::from_conf(sdk), topic).recording_to(ledger.clone()),
        trigger: greenlight::ledger::Trigger::Manual,
        ledger,
        scheduler: greenlight::aws::scheduler::Scheduler::from_env(sdk),
    }
}

pub fn stop(options: StopOptions) -> ExitCode {
    let Some(runtime) = crate::runtime() else {
        return ExitCode::FAILURE;
    };
    let json = options.json;
    finish(runtime.block_on(stop_in_flight(options)), json, |v| {
        let stopped: Vec<String> = v["stopped"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                format!(
                    "stopped {} ({})",
                    s["id"].as_str().unwrap_or_default(),
                    s["outcome"]
                )
            })
            .collect();
        if stopped.is_empty() {
            format!(
                "{}: nothing in flight",
                v["service"].as_str().unwrap_or_default()
            )
        } else {
            stopped.join("\n")
        }
    })
}

async fn stop_in_flight(options: StopOptions) -> Result<Value, String> {
    let sdk = greenlight::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    let config = options.source.load(&sdk).await?;
    let svc = service(&config, &options.service)?;
    let backends = backends(&sdk, None);
    let backend = backends.for_service(svc);
    backend.stoppable().map_err(|e| format!("refused: {e}"))?;
    let ids = backend
        .in_flight()
        .await
        .map_err(|e| format!("cannot list what is in flight in {}: {e}", backend.target()))?;
    let mut stopped = Vec::new();
    for id in ids {
        let outcome = backend
            .stop(&id, !options.no_rollback)
            .await
            .map_err(|e| format!("refused: stopping {id}: {e}"))?;
        stopped.push(json!({"id": id, "rollback": !options.no_rollback, "outcome": outcome}));
    }
    Ok(json!({"service": svc.name, "stopped": stopped}))
}

pub use promote::{promote, PromoteOptions};
pub use status::{print_status, status, ServiceStatus, StatusReader};
