//! `greenlight analyze`: the analysis engine against whatever CloudWatch endpoint the
//! SDK is given (`AWS_ENDPOINT_URL_CLOUDWATCH` honoured): green's target group judged
//! against blue's, interval by interval, with the service's `analysis:` settings.
//! Exit codes: 0 pass, 1 fail, 2 inconclusive, 3 could not analyse (bad input or an
//! AWS error, said on stderr).

use std::path::PathBuf;
use std::process::ExitCode;

use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;
use greenlight::analysis::{self, RunResult, Verdict};
use greenlight::aws::cloudwatch::Metrics;
use greenlight::Config;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// The configuration document (the service's `analysis:` settings).
    #[arg(long)]
    pub config: PathBuf,
    /// The configured service.
    #[arg(long)]
    pub service: String,
    /// Green's target group: ARN or `targetgroup/NAME/ID`.
    #[arg(long)]
    pub green_target_group: String,
    /// Blue's target group: ARN or `targetgroup/NAME/ID`.
    #[arg(long)]
    pub blue_target_group: String,
    /// The load balancer: ARN or `app/NAME/ID`.
    #[arg(long)]
    pub load_balancer: String,
    /// Start of the analysis (RFC 3339), when production traffic reached green.
    #[arg(long, requires = "end", conflicts_with = "last_minutes")]
    pub start: Option<String>,
    /// End of the analysis (RFC 3339).
    #[arg(long, requires = "start")]
    pub end: Option<String>,
    /// Instead of --start/--end: the last N settled minutes.
    #[arg(long)]
    pub last_minutes: Option<u32>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(options: Options) -> ExitCode {
    let Some(runtime) = crate::runtime() else {
        return ExitCode::from(3);
    };
    match runtime.block_on(analyze(&options)) {
        Ok(result) => {
            if options.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&result).unwrap_or_default()
                );
            } else {
                print(&result);
            }
            ExitCode::from(match result.verdict {
                Verdict::Pass => 0,
                Verdict::Fail => 1,
                Verdict::Inconclusive => 2,
            })
        }
        Err(message) => {
            eprintln!("greenlight analyze: {message}");
            ExitCode::from(3)
        }
    }
}

fn seconds(text: &str, what: &str) -> Result<i64, String> {
    DateTime::from_str(text, Format::DateTime)
        .map(|t| t.secs())
        .map_err(|e| format!("{what} {text:?} is not an RFC 3339 time: {e}"))
}

async fn analyze(options: &Options) -> Result<RunResult, String> {
    let config = Config::from_file(&options.config).map_err(|e| format!("configuration: {e}"))?;
    let service = config.service_by_name(&options.service).ok_or_else(|| {
        format!(
            "no service named {:?} in the configuration",
            options.service
        )
    })?;
    let settings = service
        .analysis
        .clone()
        .ok_or_else(|| format!("service {} has no analysis: settings", service.name))?;
    let interval = settings.interval.as_secs() as i64;
    let (start, end) = match (&options.start, &options.end, options.last_minutes) {
        (Some(start), Some(end), _) => (seconds(start, "--start")?, seconds(end, "--end")?),
        (_, _, Some(minutes)) => {
            let now = DateTime::from(std::time::SystemTime::now()).secs();
            let end = (now - settings.settle.as_secs() as i64) / 60 * 60;
            (end - i64::from(minutes) * 60, end)
        }
        _ => return Err("give --start and --end, or --last-minutes".into()),
    };
    if end <= start {
        return Err("the end is not after the start".into());
    }
    let window = settings.window.as_secs() as i64;
    let sdk = greenlight::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    let samples = Metrics::from_conf(&sdk)
        .target_group_samples(
            &options.load_balancer,
            &options.green_target_group,
            &options.blue_target_group,
            &settings.metrics,
            start - window,
            end,
            interval as i32,
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut starts = Vec::new();
    let mut t = start;
    while t + interval <= end {
        starts.push(t * 1000);
        t += interval;
    }
    Ok(analysis::judge_window(
        &settings,
        &samples,
        start * 1000,
        &starts,
        &[],
    ))
}

fn print(result: &RunResult) {
    println!(
        "{:<22} {:<13} {:>9}  metrics (green / blue)",
        "interval (UTC)", "verdict", "requests"
    );
    for interval in &result.intervals {
        let when = DateTime::from_millis(interval.start_ms)
            .fmt(Format::DateTime)
            .unwrap_or_default();
        let metrics: Vec<String> = interval
            .metrics
            .iter()
            .map(|m| {
                let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
                format!(
                    "{} {} / {} {:?}",
                    m.metric,
                    show(m.green),
                    show(m.blue),
                    m.verdict
                )
            })
            .collect();
        println!(
            "{:<22} {:<13} {:>9}  {}",
            when,
            format!("{:?}", interval.verdict),
            interval
                .green_requests
                .map_or("-".into(), |r| format!("{r:.0}")),
            if metrics.is_empty() {
                interval.reason.clone()
            } else {
                metrics.join("; ")
            }
        );
    }
    println!(
        "verdict: {:?}{} — {}",
        result.verdict,
        if result.stop {
            " (would stop the deployment)"
        } else {
            ""
        },
        result.reason
    );
}
