//! The analysis gate during a deployment: the verdict so far for the target groups
//! the seam names ([`crate::deploy::Backend::analysis_targets`]), from one
//! `GetMetricData` call. The rules live in [`crate::analysis`] (pure).

use std::time::Duration;

use crate::analysis::{self, AnalysisConfig, RunResult};
use crate::aws::cloudwatch::{load_balancer_dimension, Metrics};
use crate::aws::AwsError;

/// Why the target groups to compare could not be told.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TargetsError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The deployment or the service does not name them (set-up to fix).
    #[error("{0}")]
    Unresolved(String),
}

/// What the analysis compares: CloudWatch dimension values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub load_balancer: String,
    pub green_target_group: String,
    pub blue_target_group: String,
}

/// The verdict at `now_ms` for a window that began at `from_ms` (aligned to an
/// interval): every settled interval judged, from one GetMetricData call that also
/// covers blue's baseline window before `from_ms`. `None`: nothing settled yet.
pub async fn evaluate(
    metrics: &Metrics,
    config: &AnalysisConfig,
    targets: &Targets,
    from_ms: i64,
    now_ms: i64,
    smoke: &[(i64, f64)],
) -> Result<Option<RunResult>, AwsError> {
    let starts = analysis::intervals_to_judge(config, from_ms, now_ms);
    let Some(last) = starts.last() else {
        return Ok(None);
    };
    let interval_s = config.interval.as_secs().max(1) as i64;
    let from_s = from_ms.div_euclid(1000);
    let periods = metrics
        .target_group_samples(
            &load_balancer_dimension(&targets.load_balancer),
            &targets.green_target_group,
            &targets.blue_target_group,
            &config.metrics,
            from_s - config.window.as_secs() as i64,
            last.div_euclid(1000) + interval_s,
            interval_s as i32,
        )
        .await?;
    Ok(Some(analysis::judge_window(
        config, &periods, from_ms, &starts, smoke,
    )))
}

/// How long until the next interval has settled and can be judged.
pub fn until_next_interval(config: &AnalysisConfig, from_ms: i64, now_ms: i64) -> Duration {
    let judged = analysis::intervals_to_judge(config, from_ms, now_ms).len() as i64;
    let step = config.interval.as_millis() as i64;
    let next_ready = from_ms + (judged + 1) * step + config.settle.as_millis() as i64;
    Duration::from_millis((next_ready - now_ms).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_judgement_waits_for_the_next_interval_to_settle() {
        let config = AnalysisConfig {
            window: Duration::from_secs(300),
            interval: Duration::from_secs(60),
            min_requests: 1,
            failure_limit: 0,
            on_inconclusive: analysis::OnInconclusive::Fail,
            dry_run: false,
            metrics: Vec::new(),
            settle: Duration::from_secs(120),
        };
        // From 0: the first interval [0, 60 s) is judged at 180 s.
        assert_eq!(
            until_next_interval(&config, 0, 100_000),
            Duration::from_secs(80)
        );
        assert_eq!(
            until_next_interval(&config, 0, 180_000),
            Duration::from_secs(60)
        );
    }
}
