//! `greenlight`: the operator's command line.
//!
//! - `greenlight config check <file>`: validates a configuration document exactly as
//!   the functions do and prints every problem with its key path (exit 0/1).
//! - `greenlight smoke --config <file> --service <name> --url <url>`: runs the
//!   service's smoke checks (the hook's engine) against any URL (exit 0/1).
//! - `greenlight rehearse`: a whole blue/green deployment on this machine, the real
//!   function binaries against local stand-ins (exit 0 when every scenario passed).
//! - `greenlight approve|reject SERVICE`: answers an ECS-native deployment paused at a
//!   PAUSE lifecycle hook.

mod analyze;
mod approval;
mod bench;
mod bench_scale;
mod deployment_page;
mod finding;
mod fleet;
mod ledger;
mod local;
mod operate;
mod preflight;
mod rehearse;
mod report;
mod sandbox;
mod template_check;
mod timeline_chart;
mod why;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use greenlight::smoke::{self, Placeholders, RunOptions};
use greenlight::{Config, LifecycleEvent};

#[derive(Parser)]
#[command(
    name = "greenlight",
    version,
    about = "Greenlight: ECS blue/green deployments with a real smoke-test gate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Configuration documents.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Runs a service's smoke checks against a URL and prints the report.
    Smoke {
        /// The Greenlight configuration document (YAML or JSON).
        #[arg(long)]
        config: PathBuf,
        /// The service whose checks to run.
        #[arg(long)]
        service: String,
        /// Base URL to test, e.g. http://localhost:8080.
        #[arg(long)]
        url: String,
        /// Run the checks configured for this lifecycle event (default: all checks).
        #[arg(long)]
        event: Option<LifecycleEvent>,
        /// Value for ${image_tag}.
        #[arg(long)]
        image_tag: Option<String>,
        /// Value for ${image_digest}.
        #[arg(long)]
        image_digest: Option<String>,
        /// Value for ${deployment_id}.
        #[arg(long)]
        deployment_id: Option<String>,
        /// Print the full report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rehearses blue/green deployments locally: the real functions, the moto emulator,
    /// a CodeDeploy stand-in, a load balancer and a sample app.
    Rehearse(rehearse::Options),
    /// Measures cold start, memory, package size and hook overhead of the release builds
    /// against a bare lambda_runtime function, and the smoke engine's throughput.
    Bench(bench::Options),
    /// Judges green's target group against blue's from CloudWatch with a service's
    /// `analysis:` settings. Exit 0 pass, 1 fail, 2 inconclusive, 3 could not analyse.
    Analyze(analyze::Options),
    /// Approves an ECS-native deployment paused at a PAUSE lifecycle hook
    /// (ContinueServiceDeployment CONTINUE). Exit 0 done, 1 nothing to approve or an error.
    Approve(approval::Options),
    /// Rejects it: the deployment rolls back (ContinueServiceDeployment ROLLBACK).
    Reject(approval::Options),
    /// Each service: its path, what production runs, what is in flight (and where),
    /// the last finished deployment. `--watch` refreshes in place.
    Status(operate::StatusOptions),
    /// Starts a deployment of a tag or digest exactly as a push would (same rules).
    Deploy(operate::DeployOptions),
    /// Stops the service's in-flight deployment, with rollback unless --no-rollback.
    Stop(operate::StopOptions),
    /// Promotes a verified digest to a service with `promote:` (approves a manual
    /// promotion, or with --force --reason sends an unverified one, recorded).
    /// Exit 0 promoted, 1 refused (with why) or failed, 3 bad arguments.
    Promote(operate::PromoteOptions),
    /// What ran for a service, when, and why it ended, from the release ledger.
    /// Exit 0 done, 1 could not read the ledger, 3 bad arguments.
    History(ledger::HistoryOptions),
    /// The four DORA keys (deployment frequency, lead time, change failure rate, time
    /// to restore) from the release ledger, per service and for the fleet.
    Metrics(ledger::MetricsOptions),
    /// Writes a self-contained HTML report of a deployment or of rehearsal scenarios.
    Report(report::Options),
    /// Checks, service by service, what makes deployments fail at 3 a.m. Exit 1 on errors.
    Preflight(preflight::Options),
    /// The emulator and the CodeDeploy stand-in with the demo's resources, and the
    /// environment file for running one function by hand under `cargo lambda watch`.
    Sandbox(sandbox::Options),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validates a configuration document; prints every problem with its key path.
    /// SOURCE: a file, `ssm:NAME` (Parameter Store) or `s3://bucket/key`.
    Check { source: String },
    /// Validates FILE, then uploads it to `ssm:NAME` (advanced tier when over 4 KB) or
    /// `s3://bucket/key`; nothing is uploaded when the document has a problem.
    Push {
        file: PathBuf,
        #[arg(long)]
        to: String,
    },
}

fn main() -> ExitCode {
    // Bad arguments exit 3, not clap's 2: `greenlight analyze` answers 2 for an
    // inconclusive verdict, and a script must not mistake one for the other.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check { source },
        } => config_check(&source),
        Command::Config {
            command: ConfigCommand::Push { file, to },
        } => config_push(&file, &to),
        Command::Smoke {
            config,
            service,
            url,
            event,
            image_tag,
            image_digest,
            deployment_id,
            json,
        } => {
            let placeholders = Placeholders {
                image_tag,
                image_digest,
                deployment_id,
                ..Default::default()
            };
            smoke_run(&config, &service, &url, event, placeholders, json)
        }
        Command::Rehearse(options) => rehearse_run(options),
        Command::Bench(options) => bench_run(options),
        Command::Analyze(options) => analyze::run(options),
        Command::Approve(options) => approval::run(options, approval::Decision::Approve),
        Command::Reject(options) => approval::run(options, approval::Decision::Reject),
        Command::Status(options) => operate::status(options),
        Command::Deploy(options) => operate::deploy(options),
        Command::Stop(options) => operate::stop(options),
        Command::Promote(options) => operate::promote(options),
        Command::History(options) => ledger::history(options),
        Command::Metrics(options) => ledger::metrics(options),
        Command::Report(options) => report::run(options),
        Command::Preflight(options) => preflight::run(options),
        Command::Sandbox(options) => sandbox::run(options),
    }
}

pub(crate) fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

/// The async runtime for a subcommand; `None` (after saying why) if it cannot start.
fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new()
        .inspect_err(|e| eprintln!("cannot start the async runtime: {e}"))
        .ok()
}

fn bench_run(options: bench::Options) -> ExitCode {
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let out = options.out.clone();
    if options.analysis {
        return match runtime.block_on(bench::bench_analysis()) {
            Ok(report) => {
                bench::print_analysis(&report);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("analysis benchmark could not run: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if options.ledger {
        return match runtime.block_on(bench::bench_ledger(&options.moto, options.ledger_attempts)) {
            Ok(report) => {
                bench::print_ledger(&report);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ledger benchmark could not run: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if options.scale {
        let out = out.with_file_name("scale.json");
        let run = bench_scale::run(
            &options.bin_dir,
            &options.moto,
            &options.sizes,
            options.history,
            options.latency_ms,
        );
        return match runtime.block_on(run) {
            Ok(report) => {
                bench_scale::print(&report);
                if let Some(parent) = out.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let written = std::fs::write(
                    &out,
                    serde_json::to_string_pretty(&report).unwrap_or_default(),
                );
                match written {
                    Ok(()) => println!("results: {}", out.display()),
                    Err(e) => eprintln!("{}: {e}", out.display()),
                }
                let right = report
                    .rows
                    .iter()
                    .all(|r| r.alarm_stopped_right && r.push_started_one);
                if right {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("scale benchmark could not run: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match runtime.block_on(bench::run(options)) {
        Ok(report) => {
            bench::print(&report);
            println!("results: {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("benchmark could not run: {e}");
            ExitCode::FAILURE
        }
    }
}

fn rehearse_run(options: rehearse::Options) -> ExitCode {
    let json = options.json;
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(rehearse::run(options)) {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                rehearse::print_summary(&report);
            }
            if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("rehearsal could not run: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads a document from a file, `ssm:NAME` or `s3://bucket/key` (the SDK's usual
/// credentials and endpoint overrides apply to the remote ones).
fn read_source(source: &str) -> Result<String, String> {
    use greenlight::config_source::{ConfigSource, ConfigStore};
    let parsed = ConfigSource::from_argument(source).map_err(|e| e.to_string())?;
    if let ConfigSource::File(path) = &parsed {
        return std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()));
    }
    let runtime = runtime().ok_or("no async runtime")?;
    runtime.block_on(async {
        let sdk = greenlight::aws::load_sdk_config()
            .await
            .map_err(|e| e.to_string())?;
        ConfigStore::from_conf(&sdk)
            .fetch(&parsed, None)
            .await
            .map_err(|e| e.to_string())?
            .map(|d| d.text)
            .ok_or_else(|| format!("{parsed}: no document"))
    })
}

fn config_push(file: &std::path::Path, to: &str) -> ExitCode {
    use greenlight::config_source::{ConfigSource, ConfigStore};
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = Config::parse(&text) {
        let problems = e.problems();
        eprintln!(
            "{}: {} problem(s); nothing uploaded",
            file.display(),
            problems.len()
        );
        for problem in problems {
            eprintln!("  {problem}");
        }
        return ExitCode::FAILURE;
    }
    let target = match ConfigSource::from_argument(to) {
        Ok(t) if t.is_remote() => t,
        _ => {
            eprintln!("--to {to:?}: expected ssm:NAME or s3://bucket/key");
            return ExitCode::from(3);
        }
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let pushed = runtime.block_on(async {
        let sdk = greenlight::aws::load_sdk_config()
            .await
            .map_err(|e| e.to_string())?;
        ConfigStore::from_conf(&sdk)
            .push(&target, &text)
            .await
            .map_err(|e| e.to_string())
    });
    match pushed {
        Ok(what) => {
            println!(
                "{}: valid; uploaded to {what} ({} bytes)",
                file.display(),
                text.len()
            );
            println!("warm functions switch to it within GREENLIGHT_CONFIG_REFRESH_SECONDS (default 60 s)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("upload to {target} failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config_check(source: &str) -> ExitCode {
    let text = match read_source(source) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{source}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let file = std::path::Path::new(source);
    match Config::parse(&text) {
        Ok(config) => {
            println!(
                "{}: OK ({} service(s))",
                file.display(),
                config.services.len()
            );
            for service in &config.services {
                let target = service.route();
                println!(
                    "  {}: {} -> {}/{} via {target}, {} smoke check(s)",
                    service.name,
                    service.repository,
                    service.cluster,
                    service.service,
                    service.smoke.checks.len()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let problems = e.problems();
            eprintln!("{}: {} problem(s)", file.display(), problems.len());
            for problem in problems {
                eprintln!("  {problem}");
            }
            ExitCode::FAILURE
        }
    }
}

fn smoke_run(
    config: &std::path::Path,
    service: &str,
    url: &str,
    event: Option<LifecycleEvent>,
    placeholders: Placeholders,
    json: bool,
) -> ExitCode {
    let config = match Config::from_file(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", config.display());
            return ExitCode::FAILURE;
        }
    };
    let Some(service_config) = config.service_by_name(service) else {
        let names: Vec<_> = config.services.iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "no service {service:?} in the configuration (services: {})",
            names.join(", ")
        );
        return ExitCode::FAILURE;
    };
    let checks = match event {
        Some(event) => smoke::checks_for(&service_config.smoke.checks, event),
        None => service_config.smoke.checks.clone(),
    };
    if checks.is_empty() {
        eprintln!("service {service:?} has no smoke checks to run");
        return ExitCode::FAILURE;
    }
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let report = runtime.block_on(async {
        let client = smoke::http_client().map_err(|e| e.to_string())?;
        let options = RunOptions {
            warmup: service_config.smoke.warmup,
            deadline: tokio::time::Instant::now() + service_config.smoke.deadline,
            concurrency: service_config.smoke.concurrency,
        };
        let mut placeholders = placeholders;
        let mut references: Vec<String> =
            checks.iter().flat_map(smoke::secret_references).collect();
        references.sort();
        references.dedup();
        if !references.is_empty() {
            let sdk = greenlight::aws::load_sdk_config()
                .await
                .map_err(|e| e.to_string())?;
            let resolved = greenlight::aws::secrets::Secrets::from_conf(&sdk)
                .resolve(&references)
                .await;
            placeholders.secrets = resolved.values;
            placeholders.secret_errors = resolved.errors;
        }
        Ok::<_, String>(smoke::run(&client, url, &checks, &placeholders, &options).await)
    });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("the smoke run could not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        println!(
            "{:<24} {:<6} {:>6} {:>9} {:>8}  detail",
            "check", "result", "status", "latency", "attempts"
        );
        for check in &report.checks {
            let last = check.attempts.last();
            let status = last
                .and_then(|a| a.status)
                .map_or("-".to_string(), |s| s.to_string());
            let latency = last.map_or("-".to_string(), |a| format!("{} ms", a.latency_ms));
            let detail = match last {
                Some(a) if !a.passed() => a
                    .error
                    .clone()
                    .or_else(|| {
                        a.mismatches.first().map(|m| {
                            format!("{}: expected {}, got {}", m.expectation, m.expected, m.got)
                        })
                    })
                    .unwrap_or_default(),
                Some(_) => String::new(),
                None => "not attempted (deadline)".into(),
            };
            println!(
                "{:<24} {:<6} {:>6} {:>9} {:>8}  {detail}",
                check.name,
                if check.passed { "PASS" } else { "FAIL" },
                status,
                latency,
                check.attempts.len()
            );
        }
        println!(
            "{} of {} check(s) passed against {} in {:?}",
            report.passed_count(),
            report.checks.len(),
            report.base_url,
            Duration::from_millis(report.elapsed_ms)
        );
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
