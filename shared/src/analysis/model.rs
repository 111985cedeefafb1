//! What the analysis is told (the rules, the samples) and what it answers (per
//! metric, per interval, per run).

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
pub(crate) struct IntervalInput {
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
