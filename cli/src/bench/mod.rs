//! `greenlight bench`: cold start, memory, package size and hook overhead of each
//! function's release build, next to a bare lambda_runtime function (the Rust floor)
//! built with the same profile; and the smoke engine's throughput.
//!
//! Each run starts a fresh process under the local Runtime API host and measures:
//! - init: process start → first `GET /runtime/invocation/next`;
//! - first: the first invocation, end to end through the Runtime API, against the local
//!   stack (moto for SNS/ECS/ECR, the CodeDeploy stand-in for CodeDeploy);
//! - warm: the next invocations (median of them);
//! - peak RSS: `VmHWM` of the process after those invocations.
//!
//! The events: deploy-on-push gets a push of a new image (full path: task definition
//! read and registered, deployment created, notification); the hook a deployment waiting
//! at AfterAllowTestTraffic with a smoke target answering at once (invoke → status
//! reported); alarm-rollback an alarm that guards three deployment groups (lookups for
//! all three, nothing in flight).
//!
//! Medians over `--runs` rounds, with min and max; each round starts the floor and every
//! function once, in a balanced order, so they are compared under the same conditions
//! (see `functions::bench_functions`). Package sizes are the zips that
//! `cargo lambda build --release --arm64 --output-format zip` wrote, when present.

mod analysis;
mod functions;
mod ledger;
mod report;
mod smoke;

use std::path::PathBuf;
use std::sync::Arc;

use greenlight_standins::http::{response, serve};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Where the release binaries are (the functions and bench-hello).
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// Where `cargo lambda build --release --arm64 --output-format zip` wrote the zips.
    #[arg(long, default_value = "target/lambda")]
    pub zip_dir: PathBuf,
    /// The moto server executable.
    #[arg(long, default_value = ".venv/bin/moto_server")]
    pub moto: PathBuf,
    /// Cold starts per function.
    #[arg(long, default_value_t = 11)]
    pub runs: usize,
    /// Warm invocations after each cold start.
    #[arg(long, default_value_t = 5)]
    pub warm: usize,
    /// The JSON results file.
    #[arg(long, default_value = "bench-results/bench.json")]
    pub out: PathBuf,
    /// Extra environment for the functions, KEY=VALUE (repeatable), e.g. SSL_CERT_FILE=...
    #[arg(long = "env", value_parser = crate::parse_key_value)]
    pub env: Vec<(String, String)>,
    /// Instead: the scale benchmark (AWS calls and handler time per alarm and per push
    /// in accounts of --sizes CodeDeploy applications).
    #[arg(long)]
    pub scale: bool,
    /// Instead: only the analysis benchmark (GetMetricData calls and engine time per
    /// interval for a 5-minute window of 3 metrics; needs no function builds).
    #[arg(long, conflicts_with = "scale")]
    pub analysis: bool,
    /// Instead: only the ledger benchmark (history of --ledger-attempts attempts
    /// against the emulator; needs no function builds).
    #[arg(long, conflicts_with_all = ["scale", "analysis"])]
    pub ledger: bool,
    /// Attempts in the ledger benchmark.
    #[arg(long, default_value_t = 1000)]
    pub ledger_attempts: usize,
    /// Account sizes for --scale, in CodeDeploy applications (3 groups each).
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    pub sizes: Vec<usize>,
    /// Past deployments in each configured group, for --scale.
    #[arg(long, default_value_t = 300)]
    pub history: usize,
    /// Latency of every AWS call, for --scale.
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
}

pub async fn run(options: Options) -> Result<BenchReport, String> {
    let smoke_target = serve(Arc::new(|request: greenlight_standins::http::Request| {
        Box::pin(async move {
            if request.path.starts_with("/health") {
                response(200, "text/plain", "ok")
            } else {
                response(404, "text/plain", "")
            }
        })
    }))
    .await
    .map_err(|e| e.to_string())?;
    let mut stack = Stack::start(&options.moto, &format!("http://{smoke_target}")).await?;
    stack.env.extend(options.env.iter().cloned());
    let mut binaries = Vec::new();
    for name in [
        "bench-hello",
        "deploy-on-push",
        "lifecycle-hook",
        "alarm-rollback",
    ] {
        let binary = options.bin_dir.join(name);
        if !binary.exists() {
            return Err(format!(
                "{} not found: build release binaries first (scripts/bench does)",
                binary.display()
            ));
        }
        binaries.push((name, binary));
    }
    eprintln!(
        "benchmarking the floor and the functions ({} interleaved rounds)...",
        options.runs
    );
    let mut functions =
        functions::bench_functions(&stack, &binaries, options.runs, options.warm).await;
    for result in &mut functions {
        result.zip_bytes =
            std::fs::metadata(options.zip_dir.join(&result.function).join("bootstrap.zip"))
                .ok()
                .map(|m| m.len());
    }
    eprintln!("benchmarking the smoke engine...");
    let smoke = bench_smoke().await?;
    eprintln!("benchmarking the analysis...");
    let analysis = bench_analysis().await?;
    eprintln!(
        "benchmarking the ledger ({} attempts)...",
        options.ledger_attempts
    );
    let ledger = bench_ledger(&options.moto, options.ledger_attempts).await?;
    let report = BenchReport {
        runs: options.runs,
        functions,
        smoke,
        analysis,
        ledger,
    };
    if let Some(parent) = options.out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(
        &options.out,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .map_err(|e| format!("{}: {e}", options.out.display()))?;
    Ok(report)
}

pub fn print(report: &BenchReport) {
    let floor = &report.functions[0];
    let ratio = |v: f64, base: f64| {
        if base > 0.0 {
            format!("{:.1}x", v / base)
        } else {
            "-".into()
        }
    };
    println!(
        "{:<16} {:>22} {:>10} {:>22} {:>10} {:>12} {:>22} {:>10} {:>10}",
        "function",
        "init ms med (min-max)",
        "x floor",
        "first ms med (min-max)",
        "cold ms",
        "warm ms",
        "peak RSS MB (min-max)",
        "zip MB",
        "x floor"
    );
    for f in &report.functions {
        println!(
            "{:<16} {:>22} {:>10} {:>22} {:>10.2} {:>12.2} {:>22} {:>10} {:>10}",
            f.function,
            format!(
                "{:.2} ({:.2}-{:.2})",
                f.init_ms.median, f.init_ms.min, f.init_ms.max
            ),
            ratio(f.init_ms.median, floor.init_ms.median),
            format!(
                "{:.2} ({:.2}-{:.2})",
                f.first_ms.median, f.first_ms.min, f.first_ms.max
            ),
            f.cold_total_ms.median,
            f.warm_ms.median,
            format!(
                "{:.1} ({:.1}-{:.1})",
                f.peak_rss_mb.median, f.peak_rss_mb.min, f.peak_rss_mb.max
            ),
            f.zip_bytes
                .map_or("-".into(), |b| format!("{:.2}", b as f64 / 1_048_576.0)),
            match (f.zip_bytes, floor.zip_bytes) {
                (Some(a), Some(b)) => ratio(a as f64, b as f64),
                _ => "-".into(),
            },
        );
        for e in &f.errors {
            println!("    error: {e}");
        }
    }
    let s = &report.smoke;
    println!(
        "smoke engine: {} checks at concurrency {} in {:.3} s = {:.0} checks/s; mean check latency {:.2} ms, server {:.3} ms, overhead {:.3} ms per check; {} passed",
        s.checks, s.concurrency, s.seconds, s.checks_per_second, s.mean_check_ms, s.server_mean_ms, s.overhead_per_check_ms, s.passed
    );
    print_analysis(&report.analysis);
    print_ledger(&report.ledger);
}

pub use analysis::{bench_analysis, print_analysis};
use functions::Stack;
pub use ledger::{bench_ledger, print_ledger};
pub use report::BenchReport;
use smoke::bench_smoke;
