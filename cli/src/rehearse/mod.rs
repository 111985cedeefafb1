//! `greenlight rehearse`: a whole blue/green deployment on this machine, real
//! function binaries end to end.
//!
//! What runs:
//! - the three functions' binaries, each under a local Lambda Runtime API host
//!   (two hook processes: AfterAllowTestTraffic and AfterAllowTraffic);
//! - the moto emulator for ECR, ECS, CloudWatch and SNS (an SQS queue subscribed to
//!   the topic collects every notification);
//! - on the CodeDeploy path, the CodeDeploy stand-in (real JSON 1.1 protocol) reached
//!   through `AWS_ENDPOINT_URL_CODEDEPLOY`; on the ECS-native path, the ECS stand-in
//!   (`AWS_ENDPOINT_URL_ECS`, passing other ECS calls to the emulator) running the
//!   service's own canary deployment and invoking one hook function with ECS's payload;
//!   minutes of a deployment configuration last one second here;
//! - a load balancer with production and test listeners in front of a sample app whose
//!   behaviour depends on the image tag (`-broken`: fails its health check;
//!   `-degrades`: passes smoke tests, answers production traffic with 500).
//!
//! The rehearsal plays EventBridge: an image it puts into ECR becomes the "ECR Image
//! Action" event; an alarm it sets to ALARM in CloudWatch becomes the "CloudWatch
//! Alarm State Change" event. moto's alarms never evaluate, so the rehearsal
//! evaluates the 5xx alarm itself from what the production listener served.

mod actions;
mod balancer;
mod document;
mod engine;
mod fixture;
mod green;
mod ledger;
mod report;
mod scenarios;
mod seed;
mod stack;
mod status;
mod timeline;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub(crate) use engine::{DeployPath, PathChoice};
use fixture::Fixture;
pub(crate) use report::Report;
pub(crate) use stack::start_moto;
use stack::Stack;
use timeline::Timeline;

/// Options of the subcommand.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Play only this scenario (1 healthy, 2 broken, 3 degrades under traffic, 4 burst of
    /// pushes, 5 approval at a PAUSE hook: ECS-native only, 6 slow under production
    /// traffic: the analysis rolls it back with no alarm, 7 staging to production:
    /// promotion of the same digest, revoked by an alarm, forced with a reason).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=7))]
    pub scenario: Option<u8>,
    /// The deployment path(s) to rehearse.
    #[arg(long, value_enum, default_value = "both")]
    pub path: PathChoice,
    /// Print the report as JSON on stdout (the timeline goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Where the function binaries are.
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// The moto server executable.
    #[arg(long, default_value = ".venv/bin/moto_server")]
    pub moto: PathBuf,
    /// Where each function's logs are written.
    #[arg(long, default_value = "target/rehearsal")]
    pub log_dir: PathBuf,
    /// Also write one HTML report per scenario into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

pub async fn run(options: Options) -> Result<Report, String> {
    let timeline = Timeline {
        started: Instant::now(),
        lines: Arc::new(Mutex::new(Vec::new())),
        to_stderr: options.json,
        spinner: std::io::stderr().is_terminal(),
    };
    let paths: &[DeployPath] = match options.path {
        PathChoice::Codedeploy => &[DeployPath::Codedeploy],
        PathChoice::EcsNative => &[DeployPath::EcsNative],
        PathChoice::Both => &[DeployPath::Codedeploy, DeployPath::EcsNative],
    };
    let mut scenarios = Vec::new();
    let wanted = |n: u8| options.scenario.is_none_or(|s| s == n);
    for &path in paths {
        timeline.say(format!("=== the {} path ===", path.label()));
        if (1..=6).any(wanted) {
            scenarios.extend(single_service(&options, &timeline, path, wanted).await?);
        }
        if wanted(7) {
            timeline.say(format!(
                "=== the {} path: staging and production ===",
                path.label()
            ));
            let stack = Stack::start(&options, timeline.clone(), path, Fixture::Promotion).await?;
            let sampler = stack.sample_production();
            scenarios.push(stack.scenario_promotion().await);
            sampler.abort();
            for host in &stack.hosts {
                host.stop().await;
            }
        }
    }
    let passed = !scenarios.is_empty() && scenarios.iter().all(|s| s.passed);
    if let Some(dir) = &options.report {
        for s in &scenarios {
            let out = dir.join(format!("report-{}-{}.html", s.path.slug(), s.number));
            let section = serde_json::to_value(s).map_err(|e| e.to_string())?;
            crate::report::write(&out, &[section])?;
            timeline.say(format!("report: {}", out.display()));
        }
    }
    let lines = timeline.lines.lock().unwrap().clone();
    Ok(Report {
        passed,
        seconds: timeline.started.elapsed().as_secs_f64(),
        scenarios,
        timeline: lines,
    })
}

/// Scenarios 1 to 6 (those wanted) on one stack with the service `web`.
async fn single_service(
    options: &Options,
    timeline: &Timeline,
    path: DeployPath,
    wanted: impl Fn(u8) -> bool,
) -> Result<Vec<report::ScenarioReport>, String> {
    let mut scenarios = Vec::new();
    let stack = Stack::start(options, timeline.clone(), path, Fixture::Single).await?;
    let sampler = stack.sample_production();
    if wanted(1) {
        scenarios.push(stack.scenario_healthy().await);
    }
    if wanted(2) {
        scenarios.push(stack.scenario_broken().await);
    }
    if wanted(3) {
        scenarios.push(stack.scenario_degrading().await);
    }
    if wanted(4) {
        scenarios.push(stack.scenario_burst().await);
    }
    if wanted(5) && path.pauses() {
        scenarios.push(stack.scenario_approval().await);
    }
    if wanted(6) {
        scenarios.push(stack.scenario_slow().await);
    }
    stack.show_history().await;
    sampler.abort();
    for host in &stack.hosts {
        host.stop().await;
    }
    Ok(scenarios)
}

/// Prints the summary table.
pub fn print_summary(report: &Report) {
    println!();
    println!(
        "{:<3} {:<11} {:<64} {:<6} {:>8}  key figure",
        "#", "path", "scenario", "result", "seconds"
    );
    for s in &report.scenarios {
        let figure = s
            .figures
            .iter()
            .map(|(k, v)| format!("{k} {v:.2}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "{:<3} {:<11} {:<64} {:<6} {:>8.1}  {figure}",
            s.number,
            s.path.label(),
            s.name,
            if s.passed { "PASS" } else { "FAIL" },
            s.seconds
        );
        for c in s.checks.iter().filter(|c| !c.passed) {
            println!("      FAILED: {}: {}", c.what, c.detail);
        }
    }
    let passed = report.scenarios.iter().filter(|s| s.passed).count();
    let failed = report.scenarios.len() - passed;
    println!(
        "rehearsal: {passed} passed, {failed} failed ({:.1} s)",
        report.seconds
    );
}
