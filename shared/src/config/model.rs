//! The configuration's model: what a loaded, validated document says, and the
//! lookups the handlers make in it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::lifecycle::LifecycleEvent;

pub const ENV_CONFIG: &str = "GREENLIGHT_CONFIG";
pub const ENV_CONFIG_FILE: &str = "GREENLIGHT_CONFIG_FILE";
pub(crate) const ENV_TOPIC_ARN: &str = "GREENLIGHT_TOPIC_ARN";

/// One problem in a configuration document, at a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no configuration: set one of {ENV_CONFIG} (the document inline), {ENV_CONFIG_FILE} (a path to it), GREENLIGHT_CONFIG_SSM (a Parameter Store parameter) or GREENLIGHT_CONFIG_S3 (s3://bucket/key)")]
    NotSet,
    #[error("{} are all set: set only one, so it is clear which document is in force", .0.join(", "))]
    SeveralSet(Vec<String>),
    #[error("cannot read the document: {0}")]
    Fetch(String),
    /// A problem with the document from a named source.
    #[error("{origin}: {error}")]
    In {
        origin: String,
        error: Box<ConfigError>,
    },
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration is not valid YAML or JSON: {0}")]
    Syntax(String),
    #[error("configuration has {} problem(s):\n  {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Invalid(Vec<ConfigProblem>),
}

impl ConfigError {
    /// Every problem, one per line, for the CLI and for init errors.
    pub fn problems(&self) -> Vec<ConfigProblem> {
        match self {
            ConfigError::Invalid(problems) => problems.clone(),
            ConfigError::In { error, .. } => error.problems(),
            other => vec![ConfigProblem {
                path: String::new(),
                message: other.to_string(),
            }],
        }
    }
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub notifications: Notifications,
    pub services: Vec<ServiceConfig>,
    /// `redact:`: patterns masked out of green's log lines, beyond the defaults
    /// ([`crate::evidence::redact::DEFAULT_PATTERNS`]); each one compiles.
    pub redact: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Notifications {
    /// SNS topic for notifications; `None` disables publishing (logged once at init).
    pub topic_arn: Option<String>,
    /// Also notify when an alarm fired but no deployment was in flight.
    pub notify_idle_alarms: bool,
}

/// Which image tags deploy a service.
#[derive(Debug, Clone)]
pub enum TagFilter {
    /// No `tags` key: every tag except `latest` (a moving tag is never a release).
    AnyButLatest,
    Patterns(Vec<glob::Pattern>),
}

impl TagFilter {
    pub fn matches(&self, tag: &str) -> bool {
        match self {
            TagFilter::AnyButLatest => tag != "latest",
            TagFilter::Patterns(patterns) => patterns.iter().any(|p| p.matches(tag)),
        }
    }
}

/// What to do when a push arrives while the group already has a deployment in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBusy {
    /// Deploy the newest matching image when the in-flight deployment ends.
    Queue,
    /// Stop the in-flight deployment (with rollback), then start the new one.
    Supersede,
    /// Notify and drop the push.
    Skip,
}

impl OnBusy {
    pub fn as_str(self) -> &'static str {
        match self {
            OnBusy::Queue => "queue",
            OnBusy::Supersede => "supersede",
            OnBusy::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CodeDeployTarget {
    pub application: String,
    pub deployment_group: String,
    pub deployment_config: Option<String>,
    /// Lifecycle events whose hook points at Greenlight in the AppSpec.
    pub hooks: Vec<LifecycleEvent>,
}

#[derive(Debug, Clone)]
pub struct PipelineTarget {
    pub name: String,
    /// Pipeline variable that receives the digest-pinned image URI, when the pipeline declares one.
    pub image_variable: Option<String>,
}

/// A service on ECS-native blue/green (deployment controller ECS, strategy
/// BLUE_GREEN, CANARY or LINEAR): ECS runs the deployment; Greenlight starts it with
/// UpdateService and answers the service's Lambda lifecycle hooks.
#[derive(Debug, Clone)]
pub struct EcsNativeTarget {
    /// The stages at which Greenlight's hook runs smoke checks (the service's
    /// `lifecycleHooks` must name Greenlight's function for them); other stages the
    /// hook is invoked for are answered SUCCEEDED.
    pub stages: Vec<LifecycleEvent>,
}

#[derive(Debug, Clone)]
pub enum DeployTarget {
    CodeDeploy(CodeDeployTarget),
    Pipeline(PipelineTarget),
    EcsNative(EcsNativeTarget),
}

/// Which engine runs a service's deployments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum DeploymentPath {
    CodeDeploy,
    Pipeline,
    EcsNative,
}

impl DeploymentPath {
    /// The path's key in the configuration document.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentPath::CodeDeploy => "codedeploy",
            DeploymentPath::Pipeline => "pipeline",
            DeploymentPath::EcsNative => "ecs_native",
        }
    }

    /// The path's name for people.
    pub fn label(self) -> &'static str {
        match self {
            DeploymentPath::CodeDeploy => "CodeDeploy",
            DeploymentPath::Pipeline => "pipeline",
            DeploymentPath::EcsNative => "ECS-native",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub name: String,
    pub repository: String,
    pub tags: TagFilter,
    pub cluster: String,
    pub service: String,
    pub container: String,
    /// Overrides the container port read from the task definition's port mappings.
    pub container_port: Option<u16>,
    pub target: DeployTarget,
    pub on_busy: OnBusy,
    pub alarms: Vec<String>,
    pub smoke: SmokeConfig,
    /// `analysis:`: green judged against blue under production traffic.
    pub analysis: Option<crate::analysis::AnalysisConfig>,
    /// `promote:`: deploys only digests that proved themselves in another service
    /// (pushes do not deploy it).
    pub promote: Option<Promotion>,
}

/// `promote: { from, soak_minutes, approval }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// The service whose successful deployments are promoted.
    pub from: String,
    /// How long a digest runs in `from`, with none of its alarms firing, first.
    pub soak: std::time::Duration,
    pub approval: Approval,
}

/// Who lets a verified digest through once its soak ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// Greenlight deploys it.
    Auto,
    /// A person, with `greenlight promote` (notified with the command to run).
    Manual,
}

impl ServiceConfig {
    pub fn codedeploy(&self) -> Option<&CodeDeployTarget> {
        match &self.target {
            DeployTarget::CodeDeploy(t) => Some(t),
            _ => None,
        }
    }

    pub fn ecs_native(&self) -> Option<&EcsNativeTarget> {
        match &self.target {
            DeployTarget::EcsNative(t) => Some(t),
            _ => None,
        }
    }

    pub fn path(&self) -> DeploymentPath {
        match &self.target {
            DeployTarget::CodeDeploy(_) => DeploymentPath::CodeDeploy,
            DeployTarget::Pipeline(_) => DeploymentPath::Pipeline,
            DeployTarget::EcsNative(_) => DeploymentPath::EcsNative,
        }
    }

    /// The lifecycle events (CodeDeploy hooks) or stages (ECS-native) at which
    /// Greenlight's hook runs this service's smoke checks.
    pub fn hook_stages(&self) -> &[LifecycleEvent] {
        match &self.target {
            DeployTarget::CodeDeploy(t) => &t.hooks,
            DeployTarget::EcsNative(t) => &t.stages,
            DeployTarget::Pipeline(_) => &[],
        }
    }

    /// Where deployments run, for people: `CodeDeploy app/group`, `CodePipeline
    /// name`, `ECS-native blue/green (hook at STAGE, …)`.
    pub fn route(&self) -> String {
        match &self.target {
            DeployTarget::CodeDeploy(cd) => {
                format!("CodeDeploy {}/{}", cd.application, cd.deployment_group)
            }
            DeployTarget::Pipeline(p) => format!("CodePipeline {}", p.name),
            DeployTarget::EcsNative(e) => format!(
                "ECS-native blue/green (hook at {})",
                e.stages
                    .iter()
                    .map(|s| s.ecs_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Whether `cluster` (a name or an ARN) and `service` (a name or an ARN) name this
    /// service: how ECS-native hooks and events, which carry ARNs, find their service.
    pub(crate) fn is_ecs_service(&self, cluster: &str, service: &str) -> bool {
        let name = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
        name(cluster) == name(&self.cluster) && name(service) == name(&self.service)
    }
}

#[derive(Debug, Clone)]
pub struct SmokeConfig {
    /// Test-traffic URL; default: resolved from the deployment group's test listener.
    pub base_url: Option<String>,
    /// Production URL for production-traffic events; default: the group's production listener.
    pub production_url: Option<String>,
    /// Wait before the first request (green may still be registering targets).
    pub warmup: Duration,
    /// Overall budget for one smoke run; the hook also keeps within the Lambda deadline.
    pub deadline: Duration,
    /// Checks in flight at once.
    pub concurrency: usize,
    pub checks: Vec<CheckSpec>,
}

impl Default for SmokeConfig {
    fn default() -> Self {
        SmokeConfig {
            base_url: None,
            production_url: None,
            warmup: Duration::ZERO,
            deadline: Duration::from_secs(300),
            concurrency: 4,
            checks: Vec::new(),
        }
    }
}

/// Expected status: one code, or a class such as `2xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusExpectation {
    Exact(u16),
    Class(u16),
}

impl StatusExpectation {
    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusExpectation::Exact(code) => code == status,
            StatusExpectation::Class(class) => status / 100 == class,
        }
    }
}

impl fmt::Display for StatusExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusExpectation::Exact(code) => write!(f, "{code}"),
            StatusExpectation::Class(class) => write!(f, "{class}xx"),
        }
    }
}

/// One smoke check as configured. Strings may hold `${placeholder}`s.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub name: String,
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub expect_status: StatusExpectation,
    pub body_contains: Option<String>,
    /// JSON pointer → expected value (compared as JSON; a string also matches its text).
    pub json_equals: BTreeMap<String, Value>,
    pub header_present: Vec<String>,
    pub header_equals: BTreeMap<String, String>,
    pub max_latency: Option<Duration>,
    pub timeout: Duration,
    pub attempts: u32,
    pub backoff: Duration,
    /// Lifecycle events at which this check runs.
    pub events: Vec<LifecycleEvent>,
}

pub(crate) const DEFAULT_CHECK_EVENTS: [LifecycleEvent; 2] = [
    LifecycleEvent::AfterAllowTestTraffic,
    LifecycleEvent::AfterAllowTraffic,
];
pub(crate) const DEFAULT_HOOKS: [LifecycleEvent; 2] = DEFAULT_CHECK_EVENTS;
/// POST_TEST_TRAFFIC_SHIFT and POST_PRODUCTION_TRAFFIC_SHIFT.
pub(crate) const DEFAULT_ECS_STAGES: [LifecycleEvent; 2] = DEFAULT_CHECK_EVENTS;

impl Config {
    pub fn service_by_name(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The service deployed through this CodeDeploy application and group.
    pub fn service_for_group(&self, application: &str, group: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| {
            s.codedeploy()
                .is_some_and(|cd| cd.application == application && cd.deployment_group == group)
        })
    }

    /// The ECS-native service that `service_arn` names (`arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME`).
    pub fn service_for_ecs_arn(&self, service_arn: &str) -> Option<&ServiceConfig> {
        let mut parts = service_arn.rsplit('/');
        let (service, cluster) = (parts.next()?, parts.next()?);
        self.services
            .iter()
            .find(|s| s.ecs_native().is_some() && s.is_ecs_service(cluster, service))
    }

    /// Services whose pushes this repository + tag deploy.
    pub fn services_for_push<'a>(
        &'a self,
        repository: &'a str,
        tag: &'a str,
    ) -> impl Iterator<Item = &'a ServiceConfig> + 'a {
        self.services
            .iter()
            // A promoted service takes digests from its source, never from a push.
            .filter(move |s| s.repository == repository && s.tags.matches(tag))
            .filter(|s| s.promote.is_none())
    }
}
