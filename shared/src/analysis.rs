//! The analysis engine: judges green against blue under production traffic, interval
//! by interval, from the load balancer's own CloudWatch metrics. Pure: the caller
//! fetches the numbers (GetMetricData, raw MetricStat queries) and hands them in, so
//! every rule here is unit-tested without AWS.
//!
//! What the data means, from the ELB documentation (CloudWatch metrics for your
//! Application Load Balancer):
//! - ELB publishes a metric only when there is data. A minute with requests but no
//!   `HTTPCode_Target_5XX_Count` datapoint had zero 5xx; a minute without
//!   `RequestCount` had no traffic at all: no data, never a pass.
//! - Datapoints land a minute or two late: an interval is judged only once it ended
//!   [`AnalysisConfig::settle`] ago ([`intervals_to_judge`]).
//! - Smoke checks on the test listener also reach green's target group: the caller
//!   says how many requests were Greenlight's own, and they do not count.
//! - Once all production traffic is on green, blue serves nothing: blue's figures come
//!   from its own window just before the deployment (the baseline).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// A latency statistic of `TargetResponseTime` (seconds in CloudWatch; ms here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum LatencyStat {
    P50,
    P90,
    P99,
    Average,
}

impl LatencyStat {
    /// CloudWatch's name of the statistic.
    pub fn cloudwatch(self) -> &'static str {
        match self {
            LatencyStat::P50 => "p50",
            LatencyStat::P90 => "p90",
            LatencyStat::P99 => "p99",
            LatencyStat::Average => "Average",
        }
    }
}

/// What a metric rule measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Measure {
    /// 5xx / requests on the target group, in percent.
    ErrorRate,
    /// `TargetResponseTime` of the target group, in milliseconds.
    Latency(LatencyStat),
    /// Any CloudWatch metric (not per target group): compared with `max` only.
    Custom {
        namespace: String,
        metric_name: String,
        dimensions: BTreeMap<String, String>,
        stat: String,
    },
}

/// One metric and its limits; a limit left out is not checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricRule {
    pub name: String,
    pub measure: Measure,
    /// Absolute ceiling.
    pub max: Option<f64>,
    /// Percentage points above blue (error rate).
    pub max_over_blue: Option<f64>,
    /// Ratio to blue (latency).
    pub max_ratio_to_blue: Option<f64>,
}

/// What an inconclusive run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OnInconclusive {
    Fail,
    Pass,
}

/// `analysis:` of a service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalysisConfig {
    /// How long green is watched under production traffic.
    pub window: Duration,
    /// One evaluation per interval.
    pub interval: Duration,
    /// Fewer production requests on green in an interval: inconclusive.
    pub min_requests: u64,
    /// Failed intervals tolerated.
    pub failure_limit: u32,
    pub on_inconclusive: OnInconclusive,
    /// Judge and notify, never stop.
    pub dry_run: bool,
    pub metrics: Vec<MetricRule>,
    /// How long after an interval ends its datapoints are taken as complete.
    pub settle: Duration,
}

/// One target group's figures for one interval, as CloudWatch returned them (`None`:
/// no datapoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sample {
    pub requests: Option<f64>,
    pub errors_5xx: Option<f64>,
    /// Milliseconds.
    pub latency_ms: BTreeMap<LatencyStat, f64>,
    /// Custom metrics by rule name.
    pub custom: BTreeMap<String, f64>,
}

/// One interval to judge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalInput {
    /// Start, milliseconds since the epoch.
    pub start_ms: i64,
    pub green: Sample,
    pub blue: Sample,
    /// Requests Greenlight's own smoke checks sent to green in this interval.
    pub smoke_requests: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricResult {
    pub metric: String,
    pub green: Option<f64>,
    pub blue: Option<f64>,
    pub verdict: Verdict,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalResult {
    pub start_ms: i64,
    pub verdict: Verdict,
    pub reason: String,
    /// Green's production requests (smoke requests taken out).
    pub green_requests: Option<f64>,
    pub metrics: Vec<MetricResult>,
}

/// What the run decides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunResult {
    pub verdict: Verdict,
    /// Whether the deployment should be stopped: a failed verdict (or an inconclusive
    /// one with `on_inconclusive: fail`), and not a dry run.
    pub stop: bool,
    pub reason: String,
    pub failed_intervals: usize,
    pub conclusive_intervals: usize,
    pub intervals: Vec<IntervalResult>,
}

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
pub fn judge_interval(
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

/// Green's and blue's figures for one period, as fetched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeriodSamples {
    pub green: Sample,
    pub blue: Sample,
}

/// The start of the interval holding `ms`: periods are aligned to whole intervals
/// since the epoch, as CloudWatch aligns a period to a StartTime on its boundary.
pub fn align_down(config: &AnalysisConfig, ms: i64) -> i64 {
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
pub fn baseline_of(periods: &[&Sample]) -> Option<Sample> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AnalysisConfig {
        AnalysisConfig {
            window: Duration::from_secs(300),
            interval: Duration::from_secs(60),
            min_requests: 100,
            failure_limit: 0,
            on_inconclusive: OnInconclusive::Fail,
            dry_run: false,
            metrics: vec![
                MetricRule {
                    name: "error_rate".into(),
                    measure: Measure::ErrorRate,
                    max: Some(1.0),
                    max_over_blue: Some(0.5),
                    max_ratio_to_blue: None,
                },
                MetricRule {
                    name: "latency_p99".into(),
                    measure: Measure::Latency(LatencyStat::P99),
                    max: Some(800.0),
                    max_over_blue: None,
                    max_ratio_to_blue: Some(1.5),
                },
            ],
            settle: Duration::from_secs(120),
        }
    }

    fn sample(requests: Option<f64>, errors: Option<f64>, p99: Option<f64>) -> Sample {
        Sample {
            requests,
            errors_5xx: errors,
            latency_ms: p99
                .map(|v| [(LatencyStat::P99, v)].into())
                .unwrap_or_default(),
            custom: BTreeMap::new(),
        }
    }

    #[test]
    fn a_window_uses_blue_before_it_as_baseline_and_discounts_smoke_requests() {
        let c = config();
        let minute = 60_000;
        let from = 10 * minute;
        let mut periods = BTreeMap::new();
        // Blue before the deployment: 200 ms p99.
        for m in 5..10 {
            periods.insert(
                m * 60,
                PeriodSamples {
                    green: Sample::default(),
                    blue: sample(Some(1000.0), None, Some(200.0)),
                },
            );
        }
        // Green alone under production traffic: 1000 ms, 5x blue's baseline.
        periods.insert(
            600,
            PeriodSamples {
                green: sample(Some(500.0), None, Some(700.0)),
                blue: Sample::default(),
            },
        );
        // 150 requests, 60 of them Greenlight's smoke checks: under min_requests.
        periods.insert(
            660,
            PeriodSamples {
                green: sample(Some(150.0), None, Some(100.0)),
                blue: Sample::default(),
            },
        );
        let result = judge_window(
            &c,
            &periods,
            from,
            &[from, from + minute],
            &[(from + minute + 5_000, 60.0)],
        );
        assert_eq!(result.intervals[0].verdict, Verdict::Fail);
        assert!(result.intervals[0].reason.contains("3.5x"), "{result:?}");
        assert_eq!(result.intervals[1].verdict, Verdict::Inconclusive);
        assert_eq!(result.intervals[1].green_requests, Some(90.0));
        assert_eq!(result.verdict, Verdict::Fail);
        assert!(summary(&result).contains("latency_p99: green 700.00 / blue 200.00"));
        assert_eq!(align_down(&c, from + 59_999), from);
        assert_eq!(window_start(&c, from), from, "on a boundary: that interval");
        assert_eq!(
            window_start(&c, from + 1),
            from + minute,
            "inside an interval: the next one, wholly under production traffic"
        );
    }

    fn interval(green: Sample, blue: Sample) -> IntervalInput {
        IntervalInput {
            start_ms: 0,
            green,
            blue,
            smoke_requests: 0.0,
        }
    }

    fn healthy_blue() -> Sample {
        sample(Some(1000.0), Some(1.0), Some(200.0))
    }

    #[test]
    fn a_green_like_blue_passes() {
        let r = judge_interval(
            &config(),
            &interval(sample(Some(500.0), Some(1.0), Some(210.0)), healthy_blue()),
            None,
        );
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
    }

    #[test]
    fn each_failure_rule_fails_the_interval_naming_it() {
        let cases = [
            (
                sample(Some(500.0), Some(10.0), Some(210.0)),
                "error_rate: 2.00% 5xx on green, above max 1%",
            ),
            (
                sample(Some(1000.0), Some(7.0), Some(210.0)),
                "0.70% 5xx on green against 0.10% on blue",
            ),
            (
                sample(Some(500.0), Some(0.0), Some(900.0)),
                "latency_p99: p99 900 ms on green, above max 800 ms",
            ),
            (
                sample(Some(500.0), Some(0.0), Some(400.0)),
                "2.0x, above 1.5x",
            ),
        ];
        for (green, expected) in cases {
            let r = judge_interval(&config(), &interval(green, healthy_blue()), None);
            assert_eq!(r.verdict, Verdict::Fail, "{expected}: {r:?}");
            assert!(
                r.reason.contains(expected),
                "{} does not contain {expected}",
                r.reason
            );
        }
    }

    #[test]
    fn low_traffic_and_no_data_are_inconclusive_never_pass() {
        let low = judge_interval(
            &config(),
            &interval(sample(Some(40.0), None, Some(100.0)), healthy_blue()),
            None,
        );
        assert_eq!(low.verdict, Verdict::Inconclusive);
        assert!(low.reason.contains("fewer than min_requests 100"));
        let none = judge_interval(
            &config(),
            &interval(sample(None, None, None), healthy_blue()),
            None,
        );
        assert_eq!(none.verdict, Verdict::Inconclusive);
        assert!(none.reason.contains("no data"));
    }

    #[test]
    fn traffic_without_a_5xx_datapoint_is_zero_errors() {
        let r = judge_interval(
            &config(),
            &interval(sample(Some(500.0), None, Some(210.0)), healthy_blue()),
            None,
        );
        assert_eq!(r.verdict, Verdict::Pass);
        assert_eq!(r.metrics[0].green, Some(0.0));
    }

    #[test]
    fn smoke_requests_do_not_count_as_production_traffic() {
        let mut input = interval(sample(Some(120.0), None, Some(210.0)), healthy_blue());
        input.smoke_requests = 40.0;
        let r = judge_interval(&config(), &input, None);
        assert_eq!(
            r.verdict,
            Verdict::Inconclusive,
            "80 production requests < 100"
        );
        assert_eq!(r.green_requests, Some(80.0));
    }

    #[test]
    fn the_newest_minutes_wait_until_their_datapoints_landed() {
        let c = config();
        // Production traffic reached green at t=0; it is now 4 minutes later: minutes
        // 0 and 1 are settled (ended >= 2 min ago), minute 2 and 3 are not.
        assert_eq!(intervals_to_judge(&c, 0, 240_000), [0, 60_000]);
        assert!(!window_complete(&c, 0, 240_000));
        // Window of 5 minutes, all settled at 7 minutes.
        assert_eq!(intervals_to_judge(&c, 0, 420_000).len(), 5);
        assert!(window_complete(&c, 0, 420_000));
        assert_eq!(
            intervals_to_judge(&c, 0, 10_000_000).len(),
            5,
            "never past the window"
        );
    }

    #[test]
    fn a_blue_without_data_leaves_the_blue_relative_rules_unchecked() {
        // Blue missing (no baseline either): only the absolute ceilings apply.
        let r = judge_interval(
            &config(),
            &interval(
                sample(Some(500.0), Some(4.0), Some(700.0)),
                Sample::default(),
            ),
            None,
        );
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
        assert_eq!(r.metrics[0].blue, None);
    }

    #[test]
    fn after_the_full_shift_blue_is_its_baseline() {
        let baseline = sample(Some(3000.0), Some(3.0), Some(100.0));
        let r = judge_interval(
            &config(),
            &interval(
                sample(Some(500.0), Some(0.0), Some(300.0)),
                Sample::default(),
            ),
            Some(&baseline),
        );
        assert_eq!(
            r.verdict,
            Verdict::Fail,
            "300 ms against a 100 ms baseline: {r:?}"
        );
        assert_eq!(r.metrics[1].blue, Some(100.0));
    }

    fn judged(verdicts: &[Verdict]) -> Vec<IntervalResult> {
        verdicts
            .iter()
            .enumerate()
            .map(|(i, v)| IntervalResult {
                start_ms: i as i64 * 60_000,
                verdict: *v,
                reason: format!("{v:?}"),
                green_requests: Some(500.0),
                metrics: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn failure_limit_on_inconclusive_and_dry_run_decide_the_run() {
        use Verdict::*;
        let c = config();
        let run = judge_run(&c, judged(&[Pass, Fail, Pass]));
        assert_eq!((run.verdict, run.stop), (Fail, true));
        let tolerant = AnalysisConfig {
            failure_limit: 1,
            ..config()
        };
        let run = judge_run(&tolerant, judged(&[Pass, Fail, Pass]));
        assert_eq!((run.verdict, run.stop), (Pass, false));
        let run = judge_run(&c, judged(&[Inconclusive, Inconclusive]));
        assert_eq!(
            (run.verdict, run.stop),
            (Inconclusive, true),
            "on_inconclusive: fail"
        );
        let lenient = AnalysisConfig {
            on_inconclusive: OnInconclusive::Pass,
            ..config()
        };
        let run = judge_run(&lenient, judged(&[Inconclusive]));
        assert_eq!((run.verdict, run.stop), (Inconclusive, false));
        let dry = AnalysisConfig {
            dry_run: true,
            ..config()
        };
        let run = judge_run(&dry, judged(&[Fail, Fail]));
        assert_eq!(
            (run.verdict, run.stop),
            (Fail, false),
            "dry run judges, never stops"
        );
        assert_eq!(run.failed_intervals, 2);
    }

    #[test]
    fn a_custom_sum_without_datapoints_counted_nothing() {
        let mut c = config();
        c.metrics = vec![MetricRule {
            name: "checkout-errors".into(),
            measure: Measure::Custom {
                namespace: "Shop".into(),
                metric_name: "CheckoutErrors".into(),
                dimensions: BTreeMap::new(),
                stat: "Sum".into(),
            },
            max: Some(5.0),
            max_over_blue: None,
            max_ratio_to_blue: None,
        }];
        let mut input = interval(sample(Some(500.0), None, None), healthy_blue());
        assert_eq!(judge_interval(&c, &input, None).verdict, Verdict::Pass);
        input.green.custom.insert("checkout-errors".into(), 9.0);
        let r = judge_interval(&c, &input, None);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.reason.contains("9 above max 5"), "{}", r.reason);
    }
}
