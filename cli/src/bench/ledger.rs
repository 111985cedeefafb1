//! The release ledger's read cost: `greenlight history` of a service with many
//! attempts, against the emulator's DynamoDB through the real SDK (the figure the
//! issue sets: 1,000 attempts in under a second), and the DORA keys over them.

use std::time::Instant;

use futures::stream::{self, StreamExt};
use greenlight::ledger::{delivery_metrics, write_for, Ledger};
use greenlight::notify::{Notification, NotificationEvent, Severity};
use serde::Serialize;

/// What the ledger benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerBench {
    pub attempts: usize,
    /// Writing them: two UpdateItems each (start, finish), 8 at a time.
    pub write_seconds: f64,
    /// `history(service, limit = attempts)`: median, min and max of 5 reads.
    pub history_ms_median: f64,
    pub history_ms_min: f64,
    pub history_ms_max: f64,
    pub history_returned: usize,
    /// The four keys over what was read.
    pub metrics_ms: f64,
}

pub async fn bench_ledger(moto: &std::path::Path, attempts: usize) -> Result<LedgerBench, String> {
    let (_moto, endpoint) = crate::rehearse::start_moto(moto).await?;
    let sdk = crate::local::emulator_config(&endpoint).await;
    greenlight_cli::ledger_table::create(&sdk, "bench-ledger").await?;
    let ledger = Ledger::new(&sdk, "bench-ledger");
    let started = Instant::now();
    let writes: Vec<Result<(), String>> = stream::iter(0..attempts)
        .map(|i| {
            let ledger = ledger.clone();
            async move {
                let id = format!("d-{i:05}");
                let digest = format!("sha256:{i:064x}");
                let start = Notification::new(
                    NotificationEvent::DeploymentStarted,
                    Severity::Info,
                    "web",
                    "start",
                )
                .deployment(&id, None)
                .fact("image_digest", digest)
                .fact("image_tag", format!("v{i}"))
                .fact("pushed_at", 1_000_i64);
                let state = if i % 7 == 0 { "FAILURE" } else { "SUCCESS" };
                let finish = Notification::new(
                    NotificationEvent::DeploymentFinished,
                    Severity::Info,
                    "web",
                    "end",
                )
                .deployment(&id, None)
                .fact("state", state);
                // Written as the functions write them, minus the finish's EMF line
                // (it would print a thousand lines here).
                for n in [start, finish] {
                    let write = write_for(&n, now_ms()).ok_or("no write for a step")?;
                    ledger.apply(&write).await.map_err(|e| e.to_string())?;
                }
                Ok(())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    writes.into_iter().collect::<Result<Vec<()>, String>>()?;
    let write_seconds = started.elapsed().as_secs_f64();
    let mut times = Vec::new();
    let mut entries = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        entries = ledger
            .history("web", None, attempts)
            .await
            .map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let t = Instant::now();
    let _ = delivery_metrics(Some("web"), &entries, 30, now_ms());
    Ok(LedgerBench {
        attempts,
        write_seconds,
        history_ms_median: times[times.len() / 2],
        history_ms_min: times[0],
        history_ms_max: times[times.len() - 1],
        history_returned: entries.len(),
        metrics_ms: t.elapsed().as_secs_f64() * 1000.0,
    })
}

pub fn print_ledger(b: &LedgerBench) {
    println!(
        "ledger: history of {} attempts in {:.0} ms median ({:.0}-{:.0}, 5 reads, {} returned) against the emulator; the four keys over them in {:.2} ms; writing them took {:.1} s",
        b.attempts, b.history_ms_median, b.history_ms_min, b.history_ms_max, b.history_returned, b.metrics_ms, b.write_seconds
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
