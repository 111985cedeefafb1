//! `greenlight approve SERVICE` / `greenlight reject SERVICE`: answers an ECS-native
//! deployment paused at a PAUSE lifecycle hook with ContinueServiceDeployment
//! (CONTINUE or ROLLBACK). Talks to whatever ECS endpoint the SDK is given, so it
//! works against AWS and against the local stand-in alike.

use std::path::PathBuf;
use std::process::ExitCode;

use aws_sdk_ecs::types::{DeploymentLifecycleHookAction, DeploymentLifecycleHookStatus};
use greenlight::aws::ecs::ECS_IN_FLIGHT;
use greenlight::aws::Ecs;
use greenlight::Config;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// The configured service (its `name` in the configuration document).
    pub service: String,
    /// The configuration document; default: GREENLIGHT_CONFIG / GREENLIGHT_CONFIG_FILE.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    fn action(self) -> DeploymentLifecycleHookAction {
        match self {
            Decision::Approve => DeploymentLifecycleHookAction::Continue,
            Decision::Reject => DeploymentLifecycleHookAction::Rollback,
        }
    }
}

pub fn run(options: Options, decision: Decision) -> ExitCode {
    let Some(runtime) = crate::runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(answer(&options, decision)) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn answer(options: &Options, decision: Decision) -> Result<String, String> {
    let config = match &options.config {
        Some(path) => Config::from_file(path),
        None => Config::from_env(),
    }
    .map_err(|e| format!("configuration: {e}"))?;
    let sdk = greenlight::aws::load_sdk_config().await?;
    answer_with(&Ecs::from_conf(&sdk), &config, &options.service, decision).await
}

/// Finds `service`'s deployment paused at a PAUSE hook and answers it.
pub async fn answer_with(
    ecs: &Ecs,
    config: &Config,
    service: &str,
    decision: Decision,
) -> Result<String, String> {
    let service = config
        .service_by_name(service)
        .ok_or_else(|| format!("no service named {service:?} in the configuration"))?;
    if service.ecs_native().is_none() {
        return Err(format!(
            "{} is deployed through {}: only ECS-native deployments pause for approval",
            service.name,
            service.path().as_str()
        ));
    }
    let in_flight: Vec<String> = ecs
        .list_service_deployments(&service.cluster, &service.service, &ECS_IN_FLIGHT, None)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|b| b.service_deployment_arn)
        .collect();
    if in_flight.is_empty() {
        return Err(format!(
            "{}: no deployment in flight on {}/{}",
            service.name, service.cluster, service.service
        ));
    }
    let deployments = ecs
        .service_deployments(&in_flight)
        .await
        .map_err(|e| e.to_string())?;
    let paused = deployments.iter().find_map(|d| {
        let hook = d
            .lifecycle_hook_details()
            .iter()
            .find(|h| h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction))?;
        Some((
            d.service_deployment_arn()?.to_string(),
            hook.hook_id()?.to_string(),
            d.lifecycle_stage().map(|s| s.as_str().to_string()),
        ))
    });
    let Some((arn, hook_id, stage)) = paused else {
        return Err(format!(
            "{}: the deployment in flight ({}) is not waiting at a PAUSE hook",
            service.name,
            in_flight.join(", ")
        ));
    };
    ecs.continue_service_deployment(&arn, &hook_id, decision.action())
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "{}: {} {arn} at {} (hook {hook_id}){}",
        service.name,
        match decision {
            Decision::Approve => "approved",
            Decision::Reject => "rejected",
        },
        stage.as_deref().unwrap_or("its paused stage"),
        match decision {
            Decision::Approve => "; the deployment continues",
            Decision::Reject => "; the deployment rolls back",
        }
    ))
}
