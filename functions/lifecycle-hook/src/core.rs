//! The hook's core, the same for both engines: the configuration or a closed
//! failure, the guard that turns a panic or an overrun into a Failed verdict, one
//! smoke run (aim, secrets, checks) and one step of the analysis. The adapters
//! ([`crate::codedeploy`], [`crate::ecs`]) say where to aim and what an engine's
//! invocation and answer look like; IO happens there and in the gate.

use std::sync::Arc;
use std::time::Duration;

use greenlight::analysis::{self, AnalysisConfig, RunResult, Verdict as AnalysisVerdict};
use greenlight::aws::cloudwatch::Metrics;
use greenlight::aws::secrets::Secrets;
use greenlight::aws::{retry, AwsError};
use greenlight::config::{CheckSpec, Config, ConfigError, ServiceConfig};
use greenlight::config_source::SharedConfig;
use greenlight::gate::{self, Targets};
use greenlight::lifecycle::TrafficRoute;
use greenlight::smoke::{self, HttpClients, Placeholders, RunOptions, SmokeReport};
use greenlight::LifecycleEvent;
use tokio::time::Instant;
use tracing::Instrument;

use crate::verdict::Verdict;

/// One invocation as the core sees it, whichever engine sent it.
pub(crate) struct Context<'a> {
    pub service: &'a ServiceConfig,
    pub stage: LifecycleEvent,
    /// The stage in the engine's own words (`AfterAllowTestTraffic`,
    /// `POST_TEST_TRAFFIC_SHIFT`).
    pub at: &'static str,
    /// The deployment as the engine names it (`d-…`, the service deployment ARN).
    pub deployment_id: String,
    pub image_tag: Option<String>,
    pub image_digest: Option<String>,
}

impl Context<'_> {
    pub fn placeholders(&self) -> Placeholders {
        Placeholders {
            image_tag: self.image_tag.clone(),
            image_digest: self.image_digest.clone(),
            deployment_id: Some(self.deployment_id.clone()),
            ..Default::default()
        }
    }

    /// The URL the configuration sets for this stage's route, if any. Never from the
    /// event, so a crafted event cannot aim requests elsewhere.
    pub fn configured_url(&self) -> Option<&String> {
        match self.stage.route() {
            TrafficRoute::Test => self.service.smoke.base_url.as_ref(),
            TrafficRoute::Production => self.service.smoke.production_url.as_ref(),
        }
    }
}

/// Why the checks have nowhere to aim: the verdict's reason, fail closed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AimError {
    #[error("cannot read {what}: {source}")]
    Read { what: String, source: AwsError },
    #[error("cannot resolve {what}: {source}")]
    Resolve { what: String, source: AwsError },
    #[error("{owner} has no {missing} and {key} is not set: nowhere to run smoke checks")]
    Nowhere {
        owner: String,
        missing: String,
        key: &'static str,
    },
}

/// Where the checks aim when the configuration does not say: the engine's listener
/// (CodeDeploy) or listener rule (ECS, with the headers the rule matches on).
pub(crate) struct Aim {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// A smoke run that happened: its report and where it ran.
pub(crate) struct Ran {
    pub report: SmokeReport,
    pub base_url: String,
}

/// One step of the analysis.
pub(crate) enum AnalysisStep {
    /// The window is judged, or a failure is already certain.
    Judged(RunResult),
    /// More intervals must settle; judge again after `wait`.
    Waiting {
        so_far: Option<RunResult>,
        wait: Duration,
    },
}

/// The configuration in force, or the Failed verdict of a hook that cannot read it.
fn config_or_fail(
    config: &Result<SharedConfig, Arc<ConfigError>>,
) -> Result<Arc<Config>, Box<Verdict>> {
    match config {
        Ok(config) => Ok(config.load()),
        Err(e) => Err(Box::new(Verdict::failed(format!(
            "Greenlight configuration is invalid, failing closed: {e}"
        )))),
    }
}

/// Runs the service's checks for this stage. `Err` is the verdict already
/// reached: nothing configured (passed), or nowhere to aim (failed). `aim`
/// resolves the engine's listener when the configuration names no URL.
pub(crate) async fn run_checks<F>(
    http: &HttpClients,
    secrets: &Secrets,
    context: &Context<'_>,
    options: RunOptions,
    aim: F,
) -> Result<Ran, Box<Verdict>>
where
    F: std::future::Future<Output = Result<Aim, AimError>>,
{
    let mut checks = smoke::checks_for(&context.service.smoke.checks, context.stage);
    if checks.is_empty() {
        return Err(Box::new(Verdict::passed(format!(
            "no smoke checks configured for {}",
            context.at
        ))));
    }
    let base_url = match context.configured_url() {
        Some(url) => url.clone(),
        None => {
            let aim = aim
                .await
                .map_err(|e| Box::new(Verdict::failed(e.to_string())))?;
            for check in &mut checks {
                for (name, value) in &aim.headers {
                    check
                        .headers
                        .entry(name.clone())
                        .or_insert_with(|| value.clone());
                }
            }
            aim.url
        }
    };
    tracing::info!(base_url = %base_url, checks = checks.len(), route = ?context.stage.route(), "running smoke checks");
    let client = http
        .for_url(&base_url)
        .map_err(|e| Box::new(Verdict::failed(e.to_string())))?;
    let placeholders = with_secrets(secrets, &checks, context.placeholders()).await;
    let report = smoke::run(client, &base_url, &checks, &placeholders, &options).await;
    Ok(Ran { report, base_url })
}

/// The checks' secrets, read for this run only (values never logged).
async fn with_secrets(
    secrets: &Secrets,
    checks: &[CheckSpec],
    mut placeholders: Placeholders,
) -> Placeholders {
    let mut references: Vec<String> = checks.iter().flat_map(smoke::secret_references).collect();
    references.sort();
    references.dedup();
    if !references.is_empty() {
        let resolved = secrets.resolve(&references).await;
        tracing::info!(
            secrets = resolved.values.len(),
            unreadable = resolved.errors.len(),
            "check secrets read"
        );
        placeholders.secrets = resolved.values;
        placeholders.secret_errors = resolved.errors;
    }
    placeholders
}

/// The analysis at `now` for a window that began at `from` (one GetMetricData).
pub(crate) async fn analysis_step(
    metrics: &Metrics,
    settings: &AnalysisConfig,
    targets: &Targets,
    from: i64,
    now: i64,
    smoke: &[(i64, f64)],
) -> Result<AnalysisStep, AwsError> {
    let result = gate::evaluate(metrics, settings, targets, from, now, smoke).await?;
    Ok(match result {
        Some(result)
            if result.verdict == AnalysisVerdict::Fail
                || analysis::window_complete(settings, from, now) =>
        {
            AnalysisStep::Judged(result)
        }
        so_far => AnalysisStep::Waiting {
            so_far,
            wait: gate::until_next_interval(settings, from, now),
        },
    })
}

/// The configuration in force handed to `decide`, run as [`guarded`]; a hook whose
/// configuration could not be loaded answers Failed with the reason.
pub(crate) async fn decide_guarded<F, Fut>(
    decide_by: Instant,
    config: &Result<SharedConfig, Arc<ConfigError>>,
    decide: F,
) -> Verdict
where
    F: FnOnce(Arc<Config>) -> Fut,
    Fut: std::future::Future<Output = Verdict> + Send + 'static,
{
    match config_or_fail(config) {
        Ok(config) => guarded(decide_by, decide(config)).await,
        Err(verdict) => *verdict,
    }
}

/// Runs `decide` in its own task until `decide_by`: a panic or an overrun still
/// yields a (Failed) verdict. The hook runs on one thread, so the timer fires at the
/// decision's next await; no step between two awaits is unbounded (smoke bodies are
/// capped, the analysis is arithmetic over a few hundred points).
pub(crate) async fn guarded<F>(decide_by: Instant, decide: F) -> Verdict
where
    F: std::future::Future<Output = Verdict> + Send + 'static,
{
    // AWS reads while deciding retry throttling only until `decide_by`, so the
    // answer still has its margin.
    let mut task = tokio::spawn(retry::within(decide_by, decide).in_current_span());
    match tokio::time::timeout_at(decide_by, &mut task).await {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(join_error)) if join_error.is_panic() => {
            let panic = join_error.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(panic = %message, "the hook's decision panicked; answering Failed");
            Verdict::failed(format!(
                "Greenlight hook failed internally (panic: {message}); failing closed"
            ))
        }
        Ok(Err(join_error)) => Verdict::failed(format!(
            "Greenlight hook task ended unexpectedly: {join_error}"
        )),
        Err(_) => {
            task.abort();
            tracing::error!("the hook's decision ran past its time budget; answering Failed");
            Verdict::failed("smoke tests did not finish before the hook's deadline (Lambda timeout minus the reporting margin)")
        }
    }
}

/// The time the decision has: the Lambda deadline less the reporting margin (at
/// most half of what is left).
pub(crate) fn decide_by(deadline: Instant, report_margin: Duration) -> Instant {
    deadline - report_margin.min(deadline.saturating_duration_since(Instant::now()) / 2)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
