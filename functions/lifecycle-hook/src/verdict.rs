//! What the hook decided, whichever engine asked: one [`Outcome`] and the evidence
//! behind it. The adapters turn it into the engine's answer.

use greenlight::analysis::{self, RunResult, Verdict as AnalysisVerdict};
use greenlight::aws::HookStatus;
use greenlight::smoke::SmokeReport;
use greenlight::LifecycleEvent;
use serde::Serialize;
use serde_json::Value;

/// The decision itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Outcome {
    Pass,
    Fail,
    /// Not decided yet: the engine invokes the hook again after `delay` seconds with
    /// `state` (ECS-native's IN_PROGRESS with `hookDetails`; CodeDeploy has no such
    /// answer, so its adapter never asks for one).
    Continue {
        state: Value,
        delay: u32,
    },
}

/// The decision for one hook invocation, with what it rests on.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Why, in a sentence a person can act on.
    pub reason: String,
    pub service: Option<String>,
    pub lifecycle_event: Option<LifecycleEvent>,
    pub image_tag: Option<String>,
    pub smoke: Option<SmokeReport>,
    /// The analysis so far (production traffic on green, judged against blue).
    pub analysis: Option<RunResult>,
    /// ECS-native only: the deployment will wait for a person at this PAUSE stage next.
    pub approval_at: Option<String>,
    /// Greenlight stopped the deployment with rollback itself (CodeDeploy, failed
    /// analysis): the hook's own answer may then find the event already closed.
    pub stopped: bool,
    /// Nothing worth telling people (a rollback's hook, a later canary step).
    pub quiet: bool,
}

impl Verdict {
    fn new(outcome: Outcome, reason: impl Into<String>) -> Verdict {
        Verdict {
            outcome,
            reason: reason.into(),
            service: None,
            lifecycle_event: None,
            image_tag: None,
            smoke: None,
            analysis: None,
            approval_at: None,
            stopped: false,
            quiet: false,
        }
    }

    pub fn failed(reason: impl Into<String>) -> Verdict {
        Verdict::new(Outcome::Fail, reason)
    }

    pub fn passed(reason: impl Into<String>) -> Verdict {
        Verdict::new(Outcome::Pass, reason)
    }

    pub fn continuing(state: Value, delay: u32, reason: impl Into<String>) -> Verdict {
        Verdict::new(Outcome::Continue { state, delay }, reason)
    }

    /// A final answer that passes.
    pub fn is_pass(&self) -> bool {
        self.outcome == Outcome::Pass
    }

    /// Whether the engine gets a final answer now (not a request to invoke again).
    pub fn is_final(&self) -> bool {
        !matches!(self.outcome, Outcome::Continue { .. })
    }

    /// The status an engine without "continue" reports (CodeDeploy): anything but a
    /// pass fails closed.
    pub fn status(&self) -> HookStatus {
        match self.outcome {
            Outcome::Pass => HookStatus::Succeeded,
            Outcome::Fail | Outcome::Continue { .. } => HookStatus::Failed,
        }
    }
}

/// The verdict of a finished smoke run; `at` is the stage in the engine's own words.
pub fn smoke_verdict(report: SmokeReport, base_url: &str, at: &str) -> Verdict {
    let mut verdict = if report.passed {
        Verdict::passed(format!(
            "{} smoke check(s) passed against {base_url} at {at}",
            report.checks.len()
        ))
    } else {
        Verdict::failed(format!(
            "{} of {} smoke check(s) failed against {base_url} at {at}: {}",
            report.checks.len() - report.passed_count(),
            report.checks.len(),
            report.failure_summary().join("; ")
        ))
    };
    verdict.smoke = Some(report);
    verdict
}

/// The hook's answer for an analysis result: Fail when the run wants a stop.
pub fn analysis_verdict(result: &RunResult, cut_short: bool) -> Verdict {
    let mut reason = analysis::summary(result);
    if cut_short {
        reason.push_str("\n(judged before the window ended: the hook's deadline came first; raise the AfterAllowTraffic hook's timeout above window + settle)");
    }
    if result.verdict != AnalysisVerdict::Pass && !result.stop {
        reason.push_str("\n(not stopping: dry_run or on_inconclusive: pass)");
    }
    let mut verdict = if result.stop {
        Verdict::failed(reason)
    } else {
        Verdict::passed(reason)
    };
    verdict.analysis = Some(result.clone());
    verdict
}

/// Requests a smoke run sent (every attempt of every check): the analysis counts
/// Greenlight's own traffic apart from users'.
pub fn smoke_requests(report: &SmokeReport) -> f64 {
    report
        .checks
        .iter()
        .map(|c| c.attempts.len())
        .sum::<usize>() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pass_reports_succeeded_where_the_engine_cannot_wait() {
        assert_eq!(Verdict::passed("ok").status(), HookStatus::Succeeded);
        assert_eq!(Verdict::failed("no").status(), HookStatus::Failed);
        let later = Verdict::continuing(Value::Null, 5, "more time");
        assert_eq!(later.status(), HookStatus::Failed);
        assert!(!later.is_final());
        assert!(Verdict::failed("no").is_final());
    }
}
