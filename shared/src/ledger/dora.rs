//! The four DORA keys from the ledger's attempts: pure arithmetic over [`Entry`]s,
//! so `greenlight metrics` and the tests compute them the same way.
//!
//! - **Deployment frequency**: attempts that succeeded in the window, per day.
//! - **Lead time**: from the image's push to the end of its successful deployment
//!   (median and 90th percentile).
//! - **Change failure rate**: attempts rolled back over attempts that started
//!   (a launch AWS refused never reached anyone and is counted apart).
//! - **Time to restore**: for a rolled-back attempt, from the failure being seen
//!   (the alarm's stop or the failing gate) to production serving the previous
//!   version again (the deployment's end); median.

use serde::Serialize;

use super::record::{Entry, Outcome};

const DAY_MS: i64 = 86_400_000;

/// The four keys over a window, for one service or the fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryMetrics {
    /// The service, or `None` for every service together.
    pub service: Option<String>,
    pub days: u32,
    /// Attempts that ended in the window, by outcome.
    pub succeeded: usize,
    pub rolled_back: usize,
    pub start_failed: usize,
    pub deployments_per_day: f64,
    pub lead_time_median_ms: Option<i64>,
    pub lead_time_p90_ms: Option<i64>,
    /// `None` when nothing started in the window.
    pub change_failure_rate: Option<f64>,
    pub time_to_restore_median_ms: Option<i64>,
    /// Per day, oldest first: successes and rollbacks (the charts' data).
    pub daily: Vec<Day>,
}

/// One day of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Day {
    /// The day's start, milliseconds since the epoch (UTC).
    pub start_ms: i64,
    pub succeeded: usize,
    pub rolled_back: usize,
}

/// The keys over the `days` before `now_ms`, from attempts that ended in them.
pub fn compute(
    service: Option<&str>,
    entries: &[Entry],
    days: u32,
    now_ms: i64,
) -> DeliveryMetrics {
    let days = days.max(1);
    let from = now_ms - i64::from(days) * DAY_MS;
    let ended: Vec<&Entry> = entries
        .iter()
        .filter(|e| service.is_none_or(|s| e.service == s))
        .filter(|e| e.ended_at.is_some_and(|t| t > from && t <= now_ms))
        .collect();
    let count = |o: Outcome| ended.iter().filter(|e| e.outcome == Some(o)).count();
    let (succeeded, rolled_back, start_failed) = (
        count(Outcome::Succeeded),
        count(Outcome::RolledBack),
        count(Outcome::StartFailed),
    );
    let mut lead: Vec<i64> = ended.iter().filter_map(|e| e.lead_time_ms()).collect();
    lead.sort_unstable();
    let mut restore: Vec<i64> = ended
        .iter()
        .filter(|e| e.outcome == Some(Outcome::RolledBack))
        .filter_map(|e| Some(e.ended_at? - e.failed_at().unwrap_or(e.started_at?)))
        .map(|ms| ms.max(0))
        .collect();
    restore.sort_unstable();
    let started = succeeded + rolled_back;
    // The last `days` UTC days, today last.
    let today = now_ms.div_euclid(DAY_MS) * DAY_MS;
    let daily = (0..i64::from(days))
        .map(|i| {
            let start_ms = today - (i64::from(days) - 1 - i) * DAY_MS;
            let within = |e: &&&Entry| {
                e.ended_at
                    .is_some_and(|t| t >= start_ms && t < start_ms + DAY_MS)
            };
            Day {
                start_ms,
                succeeded: ended
                    .iter()
                    .filter(within)
                    .filter(|e| e.outcome == Some(Outcome::Succeeded))
                    .count(),
                rolled_back: ended
                    .iter()
                    .filter(within)
                    .filter(|e| e.outcome == Some(Outcome::RolledBack))
                    .count(),
            }
        })
        .collect();
    DeliveryMetrics {
        service: service.map(str::to_string),
        days,
        succeeded,
        rolled_back,
        start_failed,
        deployments_per_day: succeeded as f64 / f64::from(days),
        lead_time_median_ms: percentile(&lead, 50),
        lead_time_p90_ms: percentile(&lead, 90),
        change_failure_rate: (started > 0).then(|| rolled_back as f64 / started as f64),
        time_to_restore_median_ms: percentile(&restore, 50),
        daily,
    }
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}
