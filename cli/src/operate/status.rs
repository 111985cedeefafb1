//! `greenlight status`: each service's production image, what is in flight (stage,
//! traffic split, hooks, the analysis so far) and the last finished deployment,
//! read through the seam; what cannot be read is said, never fatal.

use std::process::ExitCode;
use std::time::Duration;

use greenlight::analysis::{self, AnalysisConfig, RunResult};
use greenlight::aws::cloudwatch::Metrics;
use greenlight::aws::LoadBalancers;
use greenlight::config::ServiceConfig;
use greenlight::deploy::{Backends, DeploymentView, Phase, Progress};
use greenlight::evidence::{Capture, Evidence};
use greenlight::gate;
use serde::Serialize;
use serde_json::Value;

use super::{backends, finish, service, StatusOptions};

/// One service's state, on either path.
#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    pub path: &'static str,
    /// What production runs: the service's task definition's image (while ECS
    /// deploys, the source revision's).
    pub production_image: Option<String>,
    pub production_tag: Option<String>,
    pub production_digest: Option<String>,
    pub in_flight: Vec<InFlight>,
    pub last_finished: Option<DeploymentView>,
    /// Why the last finished deployment failed, in green's own words (read only
    /// when it failed or was stopped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<Evidence>,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct InFlight {
    #[serde(flatten)]
    pub deployment: DeploymentView,
    /// Event or stage, traffic split, hooks and their results.
    #[serde(flatten)]
    pub progress: Progress,
    pub seconds_in_flight: Option<f64>,
    /// The analysis gate's verdicts so far (services with `analysis:`, once
    /// production traffic reached green).
    pub analysis: Option<AnalysisSoFar>,
}

/// The analysis as it stands: the same engine, settings and CloudWatch data the
/// hook judges with. The hook's own verdict is the one that gates.
#[derive(Debug, Serialize)]
pub struct AnalysisSoFar {
    /// Start of the judged window, milliseconds since the epoch.
    pub from_ms: i64,
    /// Whether the start is the engine's (CodeDeploy: AllowTraffic began) or, where
    /// the engine reports no stage start (ECS), the last window-length.
    pub from_engine: bool,
    /// What is compared (CloudWatch `TargetGroup` dimension values).
    pub green_target_group: String,
    pub blue_target_group: String,
    /// `None`: no interval has settled yet.
    pub result: Option<RunResult>,
    pub summary: String,
}

/// What `greenlight status` reads with: the deployment seam, plus load balancers
/// and CloudWatch for the analysis so far.
pub struct StatusReader {
    pub backends: Backends,
    pub elb: LoadBalancers,
    pub metrics: Metrics,
    /// Green's evidence for a last deployment that failed.
    pub capture: Capture,
    /// The document's `redact:` patterns.
    pub redact: Vec<String>,
}

impl StatusReader {
    pub fn from_conf(sdk: &greenlight::aws::SdkConfig) -> StatusReader {
        StatusReader {
            backends: backends(sdk, None),
            elb: LoadBalancers::from_conf(sdk),
            metrics: Metrics::from_conf(sdk),
            capture: Capture::from_conf(sdk),
            redact: Vec::new(),
        }
    }

    /// One service's status; what cannot be read is said in `errors`, never fatal.
    pub async fn status_of(&self, svc: &ServiceConfig) -> ServiceStatus {
        let mut status = ServiceStatus {
            service: svc.name.clone(),
            path: svc.path().label(),
            production_image: None,
            production_tag: None,
            production_digest: None,
            in_flight: Vec::new(),
            last_finished: None,
            why: None,
            errors: Vec::new(),
        };
        if let Err(e) = self.production_of(svc, &mut status).await {
            status
                .errors
                .push(format!("service {}/{}: {e}", svc.cluster, svc.service));
        }
        let backend = self.backends.for_service(svc);
        let now = now_ms();
        let history = match backend.history(now - 7 * 24 * 3600 * 1000).await {
            Ok(history) => history,
            Err(e) => {
                status
                    .errors
                    .push(format!("deployments of {}: {e}", backend.target()));
                return status;
            }
        };
        for mut deployment in history.in_flight {
            let (progress, analysis) = match self.snapshot(&backend, svc, &deployment.id, now).await
            {
                Ok(snapshot) => snapshot,
                Err(e) => {
                    status
                        .errors
                        .push(format!("deployment {}: {e}", deployment.id));
                    (Progress::default(), None)
                }
            };
            if progress.production_digest.is_some() {
                status.production_image = None;
                status.production_tag = progress.production_tag.clone();
                status.production_digest = progress.production_digest.clone();
            }
            deployment.image_tag = deployment.image_tag.or(progress.target_tag.clone());
            status.in_flight.push(InFlight {
                seconds_in_flight: deployment.created_at.map(|c| (now - c) as f64 / 1000.0),
                deployment,
                progress,
                analysis,
            });
        }
        status.last_finished = history
            .since
            .into_iter()
            .filter(|d| d.phase != Phase::InFlight)
            .max_by_key(|d| d.created_at);
        if let Some(last) = &status.last_finished {
            if let (Phase::Failed | Phase::Stopped, Some(digest)) = (last.phase, &last.image_digest)
            {
                status.why = Some(
                    self.capture
                        .for_service(svc, digest, now, &self.redact)
                        .await,
                );
            }
        }
        status
    }

    /// The deployment's progress and, with `analysis:`, the verdicts so far, read
    /// consistently: which target group is green is read apart from the progress
    /// (a rollback may move the test rule in between), so the progress is read again
    /// after the analysis and the pair is kept only if the deployment did not move.
    async fn snapshot(
        &self,
        backend: &greenlight::deploy::Backend<'_>,
        svc: &ServiceConfig,
        id: &str,
        now: i64,
    ) -> Result<(Progress, Option<AnalysisSoFar>), String> {
        let mut progress = backend.progress(id).await.map_err(|e| e.to_string())?;
        let Some(settings) = &svc.analysis else {
            return Ok((progress, None));
        };
        let same = |a: &Progress, b: &Progress| {
            a.at == b.at
                && a.green_production_percent == b.green_production_percent
                && a.green_test_percent == b.green_test_percent
        };
        for _ in 0..3 {
            let analysis = self
                .analysis_so_far(backend, id, settings, &progress, now)
                .await
                .map_err(|e| format!("analysis: {e}"))?;
            if analysis.is_none() {
                return Ok((progress, None));
            }
            let again = backend.progress(id).await.map_err(|e| e.to_string())?;
            if same(&progress, &again) {
                return Ok((again, analysis));
            }
            progress = again;
        }
        Ok((progress, None))
    }

    /// The image of the service's task definition, and the tag Greenlight tagged it with.
    async fn production_of(
        &self,
        svc: &ServiceConfig,
        status: &mut ServiceStatus,
    ) -> Result<(), greenlight::aws::AwsError> {
        let ecs = &self.backends.ecs;
        let service = ecs.service(&svc.cluster, &svc.service).await?;
        let Some(td) = service.task_definition() else {
            return Ok(());
        };
        let current = ecs.task_definition(td).await?;
        status.production_image = current
            .task_definition
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(svc.container.as_str()))
            .and_then(|c| c.image().map(str::to_string));
        status.production_digest = status
            .production_image
            .as_deref()
            .and_then(|i| i.rsplit_once('@'))
            .map(|(_, d)| d.to_string());
        status.production_tag = current
            .tags
            .iter()
            .find(|t| t.key() == Some(greenlight::deploy::pin::TAG_IMAGE_TAG))
            .and_then(|t| t.value().map(str::to_string));
        Ok(())
    }

    /// The verdicts so far once production traffic reached green; `None` before.
    async fn analysis_so_far(
        &self,
        backend: &greenlight::deploy::Backend<'_>,
        id: &str,
        settings: &AnalysisConfig,
        progress: &Progress,
        now: i64,
    ) -> Result<Option<AnalysisSoFar>, String> {
        let (from, from_engine) = match progress.production_since_ms {
            Some(since) => (since, true),
            None if progress.green_production_percent.unwrap_or_default() > 0.0 => {
                let window_start = now - settings.window.as_millis() as i64;
                (
                    progress
                        .started_ms
                        .unwrap_or(window_start)
                        .max(window_start),
                    false,
                )
            }
            None => return Ok(None),
        };
        let from = analysis::window_start(settings, from);
        let targets = backend
            .analysis_targets(id, &self.elb)
            .await
            .map_err(|e| e.to_string())?;
        let result = gate::evaluate(&self.metrics, settings, &targets, from, now, &[])
            .await
            .map_err(|e| e.to_string())?;
        let summary = match &result {
            Some(result) => analysis::summary(result),
            None => "no interval has settled yet".into(),
        };
        Ok(Some(AnalysisSoFar {
            from_ms: from,
            from_engine,
            green_target_group: targets.green_target_group,
            blue_target_group: targets.blue_target_group,
            result,
            summary,
        }))
    }
}

/// Services read at once by `greenlight status`.
const STATUS_CONCURRENCY: usize = 8;

pub fn status(options: StatusOptions) -> ExitCode {
    let Some(runtime) = crate::runtime() else {
        return ExitCode::FAILURE;
    };
    loop {
        let result = runtime.block_on(statuses(&options));
        if let Some(seconds) = options.watch {
            // Clear the screen and home the cursor: refreshed in place.
            print!("\x1b[2J\x1b[H");
            let code = finish(result, options.json, print_status);
            if code != ExitCode::SUCCESS {
                return code;
            }
            std::thread::sleep(Duration::from_secs(seconds.max(1)));
        } else {
            return finish(result, options.json, print_status);
        }
    }
}

async fn statuses(options: &StatusOptions) -> Result<Value, String> {
    let sdk = greenlight::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    let config = options.source.load(&sdk).await?;
    let services: Vec<&ServiceConfig> = match &options.service {
        Some(name) => vec![service(&config, name)?],
        None => config.services.iter().collect(),
    };
    let reader = StatusReader {
        redact: config.redact.clone(),
        ..StatusReader::from_conf(&sdk)
    };
    // Bounded: an account of hundreds of services must not become thousands of
    // concurrent calls (and throttling); the order stays the configuration's.
    use futures::StreamExt;
    let all: Vec<ServiceStatus> = futures::stream::iter(services)
        .map(|s| reader.status_of(s))
        .buffered(STATUS_CONCURRENCY)
        .collect()
        .await;
    serde_json::to_value(all).map_err(|e| e.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

pub fn print_status(value: &Value) -> String {
    let mut lines = Vec::new();
    for s in value.as_array().into_iter().flatten() {
        let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
        lines.push(format!(
            "{} ({}): production {}{}",
            text(&s["service"]),
            text(&s["path"]),
            s["production_image"]
                .as_str()
                .or(s["production_digest"].as_str())
                .unwrap_or("-"),
            s["production_tag"]
                .as_str()
                .map(|t| format!(" [{t}]"))
                .unwrap_or_default()
        ));
        for d in s["in_flight"].as_array().into_iter().flatten() {
            lines.push(format!(
                "  in flight: {} {} at {}, {:.0} s, image {}",
                text(&d["id"]),
                text(&d["status"]),
                text(&d["at"]),
                d["seconds_in_flight"].as_f64().unwrap_or_default(),
                d["image_tag"]
                    .as_str()
                    .or(d["image_digest"].as_str())
                    .unwrap_or("-")
            ));
            let percent = |v: &Value| v.as_f64().map(|p| format!("{p:.0}%"));
            let traffic: Vec<String> = [
                ("production", &d["green_production_percent"]),
                ("test", &d["green_test_percent"]),
            ]
            .into_iter()
            .filter_map(|(what, v)| percent(v).map(|p| format!("{p} of {what}")))
            .collect();
            if !traffic.is_empty() {
                lines.push(format!("    traffic: green serves {}", traffic.join(", ")));
            }
            let hooks: Vec<String> = d["hooks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| format!("{} {}", text(&h["hook"]), text(&h["status"])))
                .collect();
            if !hooks.is_empty() {
                lines.push(format!("    hooks: {}", hooks.join(", ")));
            }
            if let Some(a) = d["analysis"].as_object() {
                let verdict = a["result"]["verdict"].as_str().unwrap_or("waiting");
                lines.push(format!(
                    "    analysis so far: {verdict}: {}",
                    a["summary"]
                        .as_str()
                        .unwrap_or_default()
                        .replace('\n', "\n      ")
                ));
            }
        }
        if s["in_flight"].as_array().is_none_or(|a| a.is_empty()) {
            lines.push("  nothing in flight".into());
        }
        if let Some(last) = s["last_finished"].as_object() {
            lines.push(format!(
                "  last finished: {} {} ({}), image {}",
                text(&last["id"]),
                text(&last["status"]),
                text(&last["phase"]),
                last["image_tag"]
                    .as_str()
                    .or(last["image_digest"].as_str())
                    .unwrap_or("-")
            ));
        }
        if let Some(why) = s.get("why").filter(|w| !w.is_null()) {
            lines.extend(why_lines(why));
        }
        for e in s["errors"].as_array().into_iter().flatten() {
            lines.push(format!("  error: {}", text(e)));
        }
    }
    lines.join("\n")
}

/// Why the last deployment failed: the likely cause, the exits, green's lines.
fn why_lines(why: &Value) -> Vec<String> {
    let Ok(evidence) = serde_json::from_value::<Evidence>(why.clone()) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    if let Some(cause) = evidence.likely_cause() {
        lines.push(format!("  why it failed: {cause}"));
    }
    lines.extend(evidence.exits().map(|e| format!("    {e}")));
    if !evidence.logs.is_empty() {
        lines.push(format!(
            "    green's last lines ({}):",
            evidence.log_group.as_deref().unwrap_or("CloudWatch Logs")
        ));
        lines.extend(
            evidence
                .excerpt_text()
                .lines()
                .map(|l| format!("      {l}")),
        );
    }
    lines.extend(evidence.gaps.iter().map(|g| format!("    ({g})")));
    lines
}
