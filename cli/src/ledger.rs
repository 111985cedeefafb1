//! `greenlight history` and `greenlight metrics`: what ran, when and why it ended,
//! and the four DORA keys, read from the release ledger (one DynamoDB Query per
//! service and page). Exit codes: 0 done, 1 could not read, 3 bad arguments.

use std::process::ExitCode;

use greenlight::ledger::{delivery_metrics, DeliveryMetrics, Entry, Ledger, ENV_LEDGER_TABLE};
use serde_json::json;

use crate::operate::Source;

const DAY_MS: i64 = 86_400_000;
/// At most this many attempts per service are read for the metrics.
const METRICS_READ_LIMIT: usize = 10_000;

/// Which ledger table.
#[derive(Debug, Clone, clap::Args)]
pub struct Table {
    /// The ledger table (the stack's LedgerTableName output); default
    /// GREENLIGHT_LEDGER_TABLE.
    #[arg(long)]
    pub table: Option<String>,
}

impl Table {
    /// `--table`, else GREENLIGHT_LEDGER_TABLE; the error says where to find it.
    pub(crate) fn name(&self) -> Result<String, String> {
        self.table
            .clone()
            .or_else(|| std::env::var(ENV_LEDGER_TABLE).ok())
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| format!("no ledger table: pass --table or set {ENV_LEDGER_TABLE} (the stack's LedgerTableName output)"))
    }
}

#[derive(Debug, clap::Args)]
pub struct HistoryOptions {
    /// The service, as the configuration names it.
    pub service: String,
    /// At most this many attempts, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub table: Table,
    /// Print the attempts as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct MetricsOptions {
    /// One service; default: every service in the configuration, and the fleet.
    pub service: Option<String>,
    /// The window, in days, ending now.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    #[command(flatten)]
    pub table: Table,
    #[command(flatten)]
    pub source: Source,
    #[arg(long)]
    pub json: bool,
}

pub fn history(options: HistoryOptions) -> ExitCode {
    let table = match options.table.name() {
        Ok(t) => t,
        Err(e) => return bad_arguments(&e),
    };
    let Some(runtime) = crate::runtime() else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(async {
        let sdk = greenlight::aws::load_sdk_config()
            .await
            .map_err(|e| e.to_string())?;
        Ledger::new(&sdk, &table)
            .history(&options.service, None, options.limit)
            .await
            .map_err(|e| format!("cannot read the ledger {table}: {e}"))
    });
    match result {
        Ok(entries) if options.json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&entries).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok(entries) => {
            println!("{}", history_text(&options.service, &entries));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

pub fn metrics(options: MetricsOptions) -> ExitCode {
    let table = match options.table.name() {
        Ok(t) => t,
        Err(e) => return bad_arguments(&e),
    };
    let Some(runtime) = crate::runtime() else {
        return ExitCode::FAILURE;
    };
    let now = now_ms();
    let result: Result<Vec<DeliveryMetrics>, String> = runtime.block_on(async {
        let sdk = greenlight::aws::load_sdk_config()
            .await
            .map_err(|e| e.to_string())?;
        let services = match &options.service {
            Some(service) => vec![service.clone()],
            None => options
                .source
                .load(&sdk)
                .await?
                .services
                .iter()
                .map(|s| s.name.clone())
                .collect(),
        };
        let ledger = Ledger::new(&sdk, &table);
        // Attempts that ended in the window may have started a day before it.
        let since = now - (i64::from(options.days) + 1) * DAY_MS;
        let mut entries = Vec::new();
        for service in &services {
            entries.extend(
                ledger
                    .history(service, Some(since), METRICS_READ_LIMIT)
                    .await
                    .map_err(|e| format!("cannot read the ledger {table}: {e}"))?,
            );
        }
        let mut all: Vec<DeliveryMetrics> = services
            .iter()
            .map(|s| delivery_metrics(Some(s), &entries, options.days, now))
            .collect();
        if options.service.is_none() {
            all.insert(0, delivery_metrics(None, &entries, options.days, now));
        }
        Ok(all)
    });
    match result {
        Ok(all) if options.json => {
            let value = if options.service.is_some() {
                json!(all.first())
            } else {
                json!({"fleet": all.first(), "services": all.get(1..)})
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok(all) => {
            let text: Vec<String> = all.iter().map(metrics_text).collect();
            println!("{}", text.join("\n\n"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn bad_arguments(message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(3)
}

/// One line per attempt, newest first.
pub fn history_text(service: &str, entries: &[Entry]) -> String {
    if entries.is_empty() {
        return format!("{service}: no deployment recorded");
    }
    let mut lines = vec![format!(
        "{service}: {} deployment{} recorded, newest first",
        entries.len(),
        if entries.len() == 1 { "" } else { "s" }
    )];
    for e in entries {
        let outcome = e.outcome.map_or("in flight", |o| o.as_str());
        let duration = e.duration_ms().map(seconds).unwrap_or_else(|| "-".into());
        let image = match (&e.image_tag, &e.image_digest) {
            (Some(tag), Some(digest)) => format!("{tag} ({})", short(digest)),
            (Some(tag), None) => tag.clone(),
            (None, Some(digest)) => short(digest).to_string(),
            (None, None) => "?".into(),
        };
        let mut line = format!(
            "{}  {image}  {}  {outcome}  {duration}  {}",
            e.started_at.map(utc).unwrap_or_else(|| "?".into()),
            e.trigger.as_deref().unwrap_or("?"),
            e.deployment_id
        );
        if let Some(by) = &e.revoked_by {
            line.push_str(&format!("\n    revoked: {by} fired during its soak"));
        }
        if let Some(from) = &e.promoted_from {
            line.push_str(&format!("\n    promoted from {from}"));
        }
        if let (Some(by), Some(reason)) = (&e.forced_by, &e.forced_reason) {
            line.push_str(&format!("\n    forced by {by}: {reason}"));
        }
        if let Some(why) = e
            .why()
            .filter(|_| e.outcome != Some(greenlight::ledger::Outcome::Succeeded))
        {
            line.push_str(&format!("\n    why: {}", why.replace('\n', "\n         ")));
        }
        lines.push(line);
    }
    lines.join("\n")
}

pub fn metrics_text(m: &DeliveryMetrics) -> String {
    let name = m.service.as_deref().unwrap_or("every service");
    let percent = |r: Option<f64>| r.map_or("-".into(), |r| format!("{:.0}%", r * 100.0));
    let time = |ms: Option<i64>| ms.map_or("-".into(), seconds);
    [
        format!("{name}, the last {} days:", m.days),
        format!(
            "  deployment frequency  {:.2} a day ({} succeeded)",
            m.deployments_per_day, m.succeeded
        ),
        format!(
            "  lead time             median {}, p90 {} (push to production)",
            time(m.lead_time_median_ms),
            time(m.lead_time_p90_ms)
        ),
        format!(
            "  change failure rate   {} ({} of {} rolled back; {} never started)",
            percent(m.change_failure_rate),
            m.rolled_back,
            m.succeeded + m.rolled_back,
            m.start_failed
        ),
        format!(
            "  time to restore       median {} (failure seen to production back on the previous version)",
            time(m.time_to_restore_median_ms)
        ),
    ]
    .join("\n")
}

pub(crate) fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

pub(crate) fn seconds(ms: i64) -> String {
    if ms >= 60_000 {
        format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

pub(crate) fn utc(ms: i64) -> String {
    aws_smithy_types::DateTime::from_millis(ms)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .map(|t| t.chars().take(19).collect::<String>().replace('T', " ") + "Z")
        .unwrap_or_else(|_| ms.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
