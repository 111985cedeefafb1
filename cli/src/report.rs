//! `greenlight report`: the deployment page ([`crate::deployment_page`]) from a
//! rehearsal (`--rehearsal-json`, or `greenlight rehearse --report DIR`) or from a live
//! deployment (`--deployment ID`, read through the SDK), or the fleet page
//! (`--fleet`, [`crate::fleet`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// A deployment to report on: a CodeDeploy id (`d-…`) or an ECS service deployment ARN.
    #[arg(
        long,
        conflicts_with_all = ["rehearsal_json", "fleet"],
        required_unless_present_any = ["rehearsal_json", "fleet"]
    )]
    pub deployment: Option<String>,
    /// Instead: the fleet page, every configured service from the release ledger.
    #[arg(long, conflicts_with = "rehearsal_json")]
    pub fleet: bool,
    /// The fleet page's window, in days.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// The ledger (fleet page).
    #[command(flatten)]
    pub table: crate::ledger::Table,
    #[command(flatten)]
    pub source: crate::operate::Source,
    /// A rehearsal report (`greenlight rehearse --json > FILE`).
    #[arg(long)]
    pub rehearsal_json: Option<PathBuf>,
    /// Only this scenario of the rehearsal (default: all, one section each).
    #[arg(long)]
    pub scenario: Option<u8>,
    /// Where to write the page.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(options: Options) -> ExitCode {
    if options.fleet {
        return fleet(&options);
    }
    let sections = match (&options.deployment, &options.rehearsal_json) {
        (_, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))
            .and_then(|text| {
                serde_json::from_str::<Value>(&text)
                    .map_err(|e| format!("{} is not a rehearsal report: {e}", file.display()))
            })
            .map(|report| {
                report["scenarios"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| options.scenario.is_none_or(|n| s["number"] == n))
                    .collect::<Vec<_>>()
            }),
        (Some(id), None) => match crate::runtime() {
            Some(runtime) => runtime.block_on(live(id)).map(|s| vec![s]),
            None => Err("no async runtime".into()),
        },
        (None, None) => Err("give --deployment or --rehearsal-json".into()),
    };
    let sections = match sections {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => {
            eprintln!("nothing to report: no scenario matched");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("greenlight report: {e}");
            return ExitCode::FAILURE;
        }
    };
    said(&options.out, write(&options.out, &sections))
}

/// The page's path on stdout, or why it was not written on stderr.
fn said(out: &Path, written: Result<(), String>) -> ExitCode {
    match written {
        Ok(()) => {
            println!("{}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("greenlight report: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The fleet page, written to `--out`.
fn fleet(options: &Options) -> ExitCode {
    // The fleet page reads the release ledger.
    let table = match options.table.name() {
        Ok(table) => table,
        Err(e) => {
            eprintln!("greenlight report: {e}");
            return ExitCode::from(3);
        }
    };
    let Some(runtime) = crate::runtime() else {
        return ExitCode::FAILURE;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let page = runtime.block_on(async {
        let sdk = greenlight::aws::load_sdk_config()
            .await
            .map_err(|e| e.to_string())?;
        let config = options.source.load(&sdk).await?;
        let ledger = greenlight::ledger::Ledger::new(&sdk, &table);
        crate::fleet::page_from_ledger(&config, &ledger, options.days, now).await
    });
    said(
        &options.out,
        page.and_then(|page| write_page(&options.out, &page)),
    )
}

pub fn write(out: &Path, sections: &[Value]) -> Result<(), String> {
    write_page(out, &crate::deployment_page::page(sections))
}

/// Writes `html` to `out`, creating its folder.
fn write_page(out: &Path, html: &str) -> Result<(), String> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(out, html).map_err(|e| format!("{}: {e}", out.display()))
}

/// A live deployment as a report section: CodeDeploy's lifecycle events with their
/// times, or an ECS service deployment's status and stage.
async fn live(id: &str) -> Result<Value, String> {
    let sdk = greenlight::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    let mut timeline = Vec::new();
    // Each hook's (or hooked lifecycle event's) result, as the page's checks.
    let mut checks: Vec<Value> = Vec::new();
    let (name, status) = if id.contains(":service-deployment/") {
        let ecs = greenlight::aws::Ecs::from_conf(&sdk);
        let d = ecs
            .service_deployments(&[id.to_string()])
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or_else(|| format!("ECS DescribeServiceDeployments: no deployment {id}"))?;
        let at = |t: Option<&aws_smithy_types::DateTime>| {
            t.and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
                .unwrap_or_else(|| "-".into())
        };
        timeline.push(format!("[{}] created", at(d.created_at())));
        timeline.push(format!("[{}] started", at(d.started_at())));
        if let Some(stage) = d.lifecycle_stage() {
            timeline.push(format!("stage {}", stage.as_str()));
        }
        for hook in d.lifecycle_hook_details() {
            let status = hook.status().map(|s| s.as_str()).unwrap_or_default();
            checks.push(json!({
                "what": format!("hook {}", hook.target_arn().or(hook.target_type().map(|t| t.as_str())).unwrap_or_default()),
                "passed": status == "SUCCEEDED", "detail": status}));
        }
        if let Some(rollback) = d.rollback() {
            timeline.push(format!(
                "[{}] rolling back: {}",
                at(rollback.started_at()),
                rollback.reason().unwrap_or_default()
            ));
        }
        timeline.push(format!(
            "[{}] {}",
            at(d.finished_at()),
            d.status().map(|s| s.as_str()).unwrap_or("?")
        ));
        (
            format!("ECS service deployment {id}"),
            d.status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
        )
    } else {
        let client = aws_sdk_codedeploy::Client::new(&sdk);
        let info = client
            .get_deployment()
            .deployment_id(id)
            .send()
            .await
            .map_err(|e| format!("CodeDeploy GetDeployment {id}: {e:?}"))?
            .deployment_info
            .ok_or_else(|| format!("CodeDeploy GetDeployment: no deployment {id}"))?;
        let targets = client
            .list_deployment_targets()
            .deployment_id(id)
            .send()
            .await
            .map_err(|e| format!("CodeDeploy ListDeploymentTargets {id}: {e:?}"))?;
        for target in targets.target_ids() {
            let target = client
                .get_deployment_target()
                .deployment_id(id)
                .target_id(target)
                .send()
                .await
                .map_err(|e| format!("CodeDeploy GetDeploymentTarget {id}: {e:?}"))?;
            let events = target
                .deployment_target
                .and_then(|t| t.ecs_target)
                .map(|t| t.lifecycle_events.unwrap_or_default())
                .unwrap_or_default();
            for e in events {
                let status = e.status().map(|s| s.as_str()).unwrap_or_default();
                if matches!(status, "Succeeded" | "Failed") {
                    checks.push(json!({
                        "what": format!("lifecycle {}", e.lifecycle_event_name().unwrap_or_default()),
                        "passed": status == "Succeeded", "detail": status}));
                }
                let at = e
                    .start_time()
                    .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
                    .unwrap_or_else(|| "-".into());
                timeline.push(format!(
                    "[{at}] lifecycle {} {}",
                    e.lifecycle_event_name().unwrap_or_default(),
                    e.status().map(|s| s.as_str()).unwrap_or_default()
                ));
            }
        }
        let status = info
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        (
            format!(
                "CodeDeploy deployment {id} ({}/{})",
                info.application_name().unwrap_or_default(),
                info.deployment_group_name().unwrap_or_default()
            ),
            status,
        )
    };
    Ok(json!({
        "name": name, "path": if id.contains(":service-deployment/") { "ecs-native" } else { "codedeploy" },
        "passed": status == "Succeeded" || status == "SUCCESSFUL", "status": status,
        "timeline": timeline, "traffic": [], "checks": checks, "figures": {}
    }))
}
