//! What a benchmark run reports: per function, the smoke engine and the analysis.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

pub(super) fn stat(mut values: Vec<f64>) -> Stat {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return Stat {
            median: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
        };
    }
    Stat {
        median: values[values.len() / 2],
        min: values[0],
        max: values[values.len() - 1],
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FunctionResult {
    pub function: String,
    pub init_ms: Stat,
    pub first_ms: Stat,
    pub cold_total_ms: Stat,
    pub warm_ms: Stat,
    pub peak_rss_mb: Stat,
    pub zip_bytes: Option<u64>,
    pub binary_bytes: Option<u64>,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SmokeBench {
    pub checks: usize,
    pub concurrency: usize,
    pub seconds: f64,
    pub checks_per_second: f64,
    pub mean_check_ms: f64,
    pub server_mean_ms: f64,
    pub overhead_per_check_ms: f64,
    pub passed: usize,
}

#[derive(Debug, Serialize)]
pub struct AnalysisBench {
    pub window_intervals: usize,
    pub metrics: usize,
    /// GetMetricData calls per evaluation (one evaluation per interval during a deployment).
    pub get_metric_data_calls_per_evaluation: f64,
    /// The pure engine's time per interval judged (judge_window over a fetched window).
    pub engine_ms_per_interval: f64,
    /// One whole evaluation: the GetMetricData round trip to a local stand-in + judging.
    pub evaluation_ms: f64,
    pub verdict: String,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub runs: usize,
    pub functions: Vec<FunctionResult>,
    pub smoke: SmokeBench,
    pub analysis: AnalysisBench,
    pub ledger: super::ledger::LedgerBench,
}
