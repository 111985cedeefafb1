//! `greenlight approve SERVICE` / `greenlight reject SERVICE`: answers an ECS-native
//! deployment paused at a PAUSE lifecycle hook with ContinueServiceDeployment
//! (CONTINUE or ROLLBACK). Talks to whatever ECS endpoint the SDK is given, so it
//! works against AWS and against the local stand-in alike.

use std::path::PathBuf;
use std::process::ExitCode;

use greenlight::deploy::{Approval, Backends};
use greenlight::Config;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// The configured service (its `name` in the configuration document).
    pub service: String,
    /// The configuration document; default: GREENLIGHT_CONFIG / GREENLIGHT_CONFIG_FILE.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub use greenlight::deploy::Approval as Decision;

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
    let sdk = greenlight::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    answer_with(
        &Backends::from_conf(&sdk, None),
        &config,
        &options.service,
        decision,
    )
    .await
}

/// Finds `service`'s deployment paused at a PAUSE hook and answers it.
pub async fn answer_with(
    backends: &Backends,
    config: &Config,
    service: &str,
    decision: Approval,
) -> Result<String, String> {
    let service = config
        .service_by_name(service)
        .ok_or_else(|| format!("no service named {service:?} in the configuration"))?;
    backends
        .for_service(service)
        .answer_pause(decision)
        .await
        .map_err(|e| e.to_string())
}
