//! Judging: which intervals have settled, green against blue per metric and
//! interval, and a run's verdict from its intervals.

use super::model::{
    AnalysisConfig, IntervalInput, IntervalResult, Measure, MetricResult, MetricRule,
    OnInconclusive, RunResult, Sample, Verdict,
};

/// The interval starts that can be judged at `now_ms`: from `from_ms` (production
/// traffic first reached green) on, whole intervals, each ended at least `settle`
/// ago, within the window.
pub fn intervals_to_judge(config: &AnalysisConfig, from_ms: i64, now_ms: i64) -> Vec<i64> {
    let step = config.interval.as_millis().max(1) as i64;
    let end_of_window = from_ms + config.window.as_millis() as i64;
    let settled_until = now_ms - config.settle.as_millis() as i64;
    let mut starts = Vec::new();
    let mut start = from_ms;
    while start + step <= end_of_window.min(settled_until) {
        starts.push(start);
        start += step;
    }
    starts
}

/// Whether every interval of the window has been judged at `now_ms`.
pub fn window_complete(config: &AnalysisConfig, from_ms: i64, now_ms: i64) -> bool {
    let step = config.interval.as_millis().max(1) as i64;
    let intervals = (config.window.as_millis() as i64 / step).max(1) as usize;
    intervals_to_judge(config, from_ms, now_ms).len() >= intervals
}

fn error_rate(sample: &Sample, discount: f64) -> Option<(f64, f64)> {
    let requests = sample.requests? - discount;
    if requests <= 0.0 {
        return None;
    }
    // No 5xx datapoint with traffic: zero errors, not missing data.
    let errors = sample.errors_5xx.unwrap_or(0.0).min(requests);
    Some((100.0 * errors / requests, requests))
}

/// Blue's figures for an interval: its own while it serves traffic, else the baseline.
fn blue_for<'a>(input: &'a IntervalInput, baseline: Option<&'a Sample>) -> Option<&'a Sample> {
    if input.blue.requests.unwrap_or(0.0) > 0.0 {
        Some(&input.blue)
    } else {
        baseline
    }
}

/// Judges one interval.
pub(crate) fn judge_interval(
    config: &AnalysisConfig,
    input: &IntervalInput,
    baseline: Option<&Sample>,
) -> IntervalResult {
    let green_requests = input
        .green
        .requests
        .map(|r| (r - input.smoke_requests).max(0.0));
    let inconclusive = |reason: String, metrics: Vec<MetricResult>| IntervalResult {
        start_ms: input.start_ms,
        verdict: Verdict::Inconclusive,
        reason,
        green_requests,
        metrics,
    };
    let Some(requests) = green_requests else {
        return inconclusive(
            "no RequestCount datapoint on green: no data".into(),
            Vec::new(),
        );
    };
    if requests < config.min_requests as f64 {
        return inconclusive(
            format!(
                "{requests:.0} production request(s) on green, fewer than min_requests {}",
                config.min_requests
            ),
            Vec::new(),
        );
    }
    let blue = blue_for(input, baseline);
    let metrics: Vec<MetricResult> = config
        .metrics
        .iter()
        .map(|rule| judge_metric(rule, input, blue))
        .collect();
    let failed: Vec<&MetricResult> = metrics
        .iter()
        .filter(|m| m.verdict == Verdict::Fail)
        .collect();
    if !failed.is_empty() {
        let reason = failed
            .iter()
            .map(|m| format!("{}: {}", m.metric, m.reason))
            .collect::<Vec<_>>()
            .join("; ");
        return IntervalResult {
            start_ms: input.start_ms,
            verdict: Verdict::Fail,
            reason,
            green_requests,
            metrics,
        };
    }
    if metrics.iter().all(|m| m.verdict == Verdict::Inconclusive) {
        return inconclusive("no metric could be judged".into(), metrics);
    }
    IntervalResult {
        start_ms: input.start_ms,
        verdict: Verdict::Pass,
        reason: format!("{} metric(s) within limits", metrics.len()),
        green_requests,
        metrics,
    }
}

fn judge_metric(rule: &MetricRule, input: &IntervalInput, blue: Option<&Sample>) -> MetricResult {
    let result =
        |green: Option<f64>, blue: Option<f64>, verdict: Verdict, reason: String| MetricResult {
            metric: rule.name.clone(),
            green,
            blue,
            verdict,
            reason,
        };
    match &rule.measure {
        Measure::ErrorRate => {
            let Some((green, _)) = error_rate(&input.green, input.smoke_requests) else {
                return result(
                    None,
                    None,
                    Verdict::Inconclusive,
                    "no requests on green".into(),
                );
            };
            let blue_rate = blue.and_then(|b| error_rate(b, 0.0)).map(|(r, _)| r);
            if let Some(max) = rule.max {
                if green > max {
                    return result(
                        Some(green),
                        blue_rate,
                        Verdict::Fail,
                        format!("{green:.2}% 5xx on green, above max {max}%"),
                    );
                }
            }
            if let (Some(limit), Some(blue)) = (rule.max_over_blue, blue_rate) {
                if green - blue > limit {
                    return result(
                        Some(green),
                        Some(blue),
                        Verdict::Fail,
                        format!(
                            "{green:.2}% 5xx on green against {blue:.2}% on blue: more than {limit} point(s) above"
                        ),
                    );
                }
            }
            result(
                Some(green),
                blue_rate,
                Verdict::Pass,
                format!("{green:.2}% 5xx"),
            )
        }
        Measure::Latency(stat) => {
            let Some(green) = input.green.latency_ms.get(stat).copied() else {
                return result(
                    None,
                    None,
                    Verdict::Inconclusive,
                    format!("no {} latency datapoint on green", stat.cloudwatch()),
                );
            };
            let blue_latency = blue.and_then(|b| b.latency_ms.get(stat).copied());
            if let Some(max) = rule.max {
                if green > max {
                    return result(
                        Some(green),
                        blue_latency,
                        Verdict::Fail,
                        format!(
                            "{} {green:.0} ms on green, above max {max} ms",
                            stat.cloudwatch()
                        ),
                    );
                }
            }
            if let (Some(limit), Some(blue)) = (rule.max_ratio_to_blue, blue_latency) {
                if blue > 0.0 && green / blue > limit {
                    return result(
                        Some(green),
                        Some(blue),
                        Verdict::Fail,
                        format!(
                            "{} {green:.0} ms on green against {blue:.0} ms on blue: {:.1}x, above {limit}x",
                            stat.cloudwatch(),
                            green / blue
                        ),
                    );
                }
            }
            result(
                Some(green),
                blue_latency,
                Verdict::Pass,
                format!("{} {green:.0} ms", stat.cloudwatch()),
            )
        }
        Measure::Custom { stat, .. } => {
            // A Sum with no datapoint counted nothing; other statistics need data.
            let green = match input.green.custom.get(&rule.name) {
                Some(v) => *v,
                None if stat == "Sum" || stat == "SampleCount" => 0.0,
                None => {
                    return result(None, None, Verdict::Inconclusive, "no datapoint".into());
                }
            };
            match rule.max {
                Some(max) if green > max => result(
                    Some(green),
                    None,
                    Verdict::Fail,
                    format!("{green} above max {max}"),
                ),
                _ => result(Some(green), None, Verdict::Pass, format!("{green}")),
            }
        }
    }
}

/// Judges the run from its intervals.
pub fn judge_run(config: &AnalysisConfig, intervals: Vec<IntervalResult>) -> RunResult {
    let failed = intervals
        .iter()
        .filter(|i| i.verdict == Verdict::Fail)
        .count();
    let conclusive = intervals
        .iter()
        .filter(|i| i.verdict != Verdict::Inconclusive)
        .count();
    let (verdict, reason) = if failed > config.failure_limit as usize {
        let first = intervals
            .iter()
            .find(|i| i.verdict == Verdict::Fail)
            .map(|i| i.reason.clone())
            .unwrap_or_default();
        (
            Verdict::Fail,
            format!(
                "{failed} failed interval(s), more than failure_limit {}; first: {first}",
                config.failure_limit
            ),
        )
    } else if conclusive == 0 {
        (
            Verdict::Inconclusive,
            format!(
                "no conclusive interval in {} judged (too little production traffic, or no data)",
                intervals.len()
            ),
        )
    } else {
        (
            Verdict::Pass,
            format!(
                "{conclusive} conclusive interval(s), {failed} failed (limit {})",
                config.failure_limit
            ),
        )
    };
    let wants_stop = match verdict {
        Verdict::Fail => true,
        Verdict::Inconclusive => config.on_inconclusive == OnInconclusive::Fail,
        Verdict::Pass => false,
    };
    RunResult {
        verdict,
        stop: wants_stop && !config.dry_run,
        reason,
        failed_intervals: failed,
        conclusive_intervals: conclusive,
        intervals,
    }
}
