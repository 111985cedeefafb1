//! The window as fetched: periods aligned to intervals, blue's baseline from just
//! before the deployment, and the verdict of a whole window; and the summary people read.

use std::collections::BTreeMap;

use super::judge::{judge_interval, judge_run};
use super::model::{AnalysisConfig, IntervalInput, RunResult, Sample, Verdict};

/// Green's and blue's figures for one period, as fetched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeriodSamples {
    pub green: Sample,
    pub blue: Sample,
}

/// The start of the interval holding `ms`: periods are aligned to whole intervals
/// since the epoch, as CloudWatch aligns a period to a StartTime on its boundary.
pub(crate) fn align_down(config: &AnalysisConfig, ms: i64) -> i64 {
    let step = config.interval.as_millis().max(1) as i64;
    ms.div_euclid(step) * step
}

/// Where the analysis window starts when production traffic first reached green at
/// `ms`: the first interval boundary at or after it. Only intervals wholly under
/// production traffic are judged, so requests green served before (the smoke checks
/// of an earlier hook, through the test listener) cannot dilute its figures; the
/// traffic of the partial interval before the boundary goes unjudged, and the window
/// ends one interval later at most.
pub fn window_start(config: &AnalysisConfig, ms: i64) -> i64 {
    let down = align_down(config, ms);
    if down == ms {
        ms
    } else {
        down + config.interval.as_millis().max(1) as i64
    }
}

/// Blue's baseline: requests and 5xx summed, latencies averaged over the periods that
/// have them; `None` without traffic.
pub(crate) fn baseline_of(periods: &[&Sample]) -> Option<Sample> {
    let requests: f64 = periods.iter().filter_map(|s| s.requests).sum();
    if requests <= 0.0 {
        return None;
    }
    let mut baseline = Sample {
        requests: Some(requests),
        // `+ 0.0`: an empty float sum is -0.0, which would print as "-0.00%".
        errors_5xx: Some(periods.iter().filter_map(|s| s.errors_5xx).sum::<f64>() + 0.0),
        ..Sample::default()
    };
    let mut stats: Vec<_> = periods
        .iter()
        .flat_map(|s| s.latency_ms.keys().copied())
        .collect();
    stats.sort();
    stats.dedup();
    for stat in stats {
        let values: Vec<f64> = periods
            .iter()
            .filter_map(|s| s.latency_ms.get(&stat).copied())
            .collect();
        baseline
            .latency_ms
            .insert(stat, values.iter().sum::<f64>() / values.len() as f64);
    }
    Some(baseline)
}

/// Judges the intervals `starts_ms` from fetched periods (keyed by period start in
/// epoch seconds). Blue's baseline is its own window just before `from_ms`; smoke
/// requests Greenlight sent are discounted from the interval they fell in.
pub fn judge_window(
    config: &AnalysisConfig,
    periods: &BTreeMap<i64, PeriodSamples>,
    from_ms: i64,
    starts_ms: &[i64],
    smoke: &[(i64, f64)],
) -> RunResult {
    let from_s = from_ms.div_euclid(1000);
    let window_s = config.window.as_secs() as i64;
    let before: Vec<&Sample> = periods
        .range(from_s - window_s..from_s)
        .map(|(_, s)| &s.blue)
        .collect();
    let baseline = baseline_of(&before);
    let step = config.interval.as_millis().max(1) as i64;
    let intervals = starts_ms
        .iter()
        .map(|&start_ms| {
            let period = periods
                .get(&start_ms.div_euclid(1000))
                .cloned()
                .unwrap_or_default();
            let smoke_requests = smoke
                .iter()
                .filter(|(at, _)| *at >= start_ms && *at < start_ms + step)
                .map(|(_, n)| n)
                .sum();
            judge_interval(
                config,
                &IntervalInput {
                    start_ms,
                    green: period.green,
                    blue: period.blue,
                    smoke_requests,
                },
                baseline.as_ref(),
            )
        })
        .collect();
    judge_run(config, intervals)
}

/// One line per metric of a failed or passed run, for people: the first failed
/// interval's figures (or the last interval's), green against blue.
pub fn summary(result: &RunResult) -> String {
    let shown = result
        .intervals
        .iter()
        .find(|i| i.verdict == Verdict::Fail)
        .or_else(|| result.intervals.last());
    let mut lines = vec![format!("analysis {:?}: {}", result.verdict, result.reason)];
    if let Some(interval) = shown {
        for m in &interval.metrics {
            let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
            lines.push(format!(
                "{}: green {} / blue {} ({:?}: {})",
                m.metric,
                show(m.green),
                show(m.blue),
                m.verdict,
                m.reason
            ));
        }
    }
    lines.join("\n")
}
