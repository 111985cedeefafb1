//! `greenlight promote SERVICE [--digest D] [--force --reason TEXT]`: a person lets
//! a promotion through (`approval: manual`), or sends one the checks refuse, with a
//! reason the ledger and the notification keep. The same event and the same
//! decision as the soak's schedule: deploy-on-push's handler, run here.
//! Exit codes: 0 deployed (or already there), 1 refused or failed, 3 bad arguments.

use std::process::ExitCode;

use greenlight::events::{Forced, PromotionDue};
use greenlight::ledger::{Entry, Ledger, Outcome};
use serde_json::{json, Value};

use super::{finish, hook_pattern, push_handler, service, Source};

#[derive(Debug, clap::Args)]
pub struct PromoteOptions {
    /// The service to promote to (it has `promote: { from: … }`).
    pub service: String,
    /// The digest (`sha256:…`); default: the newest that succeeded in the source.
    #[arg(long)]
    pub digest: Option<String>,
    /// Promote even if unverified or revoked; needs --reason, recorded with your name.
    #[arg(long, requires = "reason")]
    pub force: bool,
    /// Why it must go anyway (with --force).
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub table: crate::ledger::Table,
    /// The hook function the AppSpec names (CodeDeploy); as for `greenlight deploy`.
    #[arg(long)]
    pub hook_function: Option<String>,
    #[command(flatten)]
    pub source: Source,
    #[arg(long)]
    pub json: bool,
}

pub fn promote(options: PromoteOptions) -> ExitCode {
    // Promotion is verified from the ledger.
    let table = match options.table.name() {
        Ok(table) => table,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(3);
        }
    };
    let Some(runtime) = crate::runtime() else {
        return ExitCode::FAILURE;
    };
    let json = options.json;
    finish(runtime.block_on(run(options, table)), json, |v| {
        match v["outcome"].as_str().unwrap_or_default() {
            "started" => format!(
                "{}: promoting {} from {} (deployment {})",
                v["service"].as_str().unwrap_or_default(),
                v["digest"].as_str().unwrap_or_default(),
                v["from"].as_str().unwrap_or_default(),
                v["deployment_id"].as_str().unwrap_or_default()
            ),
            other => format!(
                "{}: {other} ({})",
                v["service"].as_str().unwrap_or_default(),
                v["digest"].as_str().unwrap_or_default()
            ),
        }
    })
}

async fn run(options: PromoteOptions, table: String) -> Result<Value, String> {
    let sdk = greenlight::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    let config = options.source.load(&sdk).await?;
    let target = service(&config, &options.service)?.clone();
    let Some(promotion) = &target.promote else {
        return Err(format!(
            "refused: {} has no promote: key, so it takes pushes, not promotions (greenlight deploy deploys it)",
            target.name
        ));
    };
    let from = promotion.from.clone();
    let source_entries = Ledger::new(&sdk, &table)
        .history(&from, None, 200)
        .await
        .map_err(|e| format!("cannot read the ledger {table}: {e}"))?;
    let (digest, source_deployment) = pick(&source_entries, options.digest.as_deref(), &from)?;
    let by = std::env::var("USER").unwrap_or_else(|_| "someone".into());
    let due = PromotionDue {
        service: target.name.clone(),
        from: from.clone(),
        digest: digest.clone(),
        source_deployment,
        approved_by: Some(by.clone()),
        forced: options.force.then(|| Forced {
            by,
            reason: options.reason.clone().unwrap_or_default(),
        }),
    };
    let hook_pattern = hook_pattern(&options.hook_function);
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    let handler = push_handler(&sdk, config, Some(hook_pattern), Some(&table));
    let answer = handler
        .handle(due.event(&region, &now))
        .await
        .map_err(|e| format!("could not promote: {e}"))?;
    let report = answer.get(0).cloned().unwrap_or(Value::Null);
    let outcome = report["outcome"].as_str().unwrap_or_default();
    match outcome {
        "started" | "duplicate" | "already_serving" => Ok(json!({
            "service": target.name, "from": from, "digest": digest,
            "outcome": outcome, "deployment_id": report["deployment_id"],
        })),
        "promotion_refused" => Err(format!(
            "refused: {}",
            report["reason"].as_str().unwrap_or("no reason given")
        )),
        _ => Err(format!("not promoted: {report}")),
    }
}

/// The digest to promote and its source deployment: the given digest's newest
/// success in the source, or the newest success; a digest that never succeeded
/// there keeps its newest attempt (the decision then says why it is unverified).
fn pick(entries: &[Entry], digest: Option<&str>, from: &str) -> Result<(String, String), String> {
    let of_digest = |e: &&Entry| digest.is_none_or(|d| e.image_digest.as_deref() == Some(d));
    let chosen = entries
        .iter()
        .filter(of_digest)
        .find(|e| e.outcome == Some(Outcome::Succeeded))
        .or_else(|| entries.iter().find(of_digest));
    match (chosen, digest) {
        (Some(entry), _) => Ok((
            entry.image_digest.clone().unwrap_or_default(),
            entry.deployment_id.clone(),
        )),
        (None, Some(d)) => Ok((d.to_string(), format!("none-in-{from}"))),
        (None, None) => Err(format!(
            "refused: the ledger has no deployment of {from} that succeeded: give --digest"
        )),
    }
}
