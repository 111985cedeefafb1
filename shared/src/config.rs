//! The Greenlight configuration document.
//!
//! One YAML or JSON document, inline in `GREENLIGHT_CONFIG` or as a path in
//! `GREENLIGHT_CONFIG_FILE` (relative paths resolve against `LAMBDA_TASK_ROOT`).
//! It is loaded once at init and validated fully: every problem is reported with
//! the key path that holds it (`services[1].codedeploy.deployment_group: missing`),
//! not just the first one serde would stop at. That is why the document is read
//! into a `serde_json::Value` and walked by hand instead of derived.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::lifecycle::LifecycleEvent;

pub const ENV_CONFIG: &str = "GREENLIGHT_CONFIG";
pub const ENV_CONFIG_FILE: &str = "GREENLIGHT_CONFIG_FILE";
pub const ENV_TOPIC_ARN: &str = "GREENLIGHT_TOPIC_ARN";

/// Placeholders a smoke expectation may use; replaced per deployment.
pub const PLACEHOLDERS: [&str; 3] = ["image_tag", "image_digest", "deployment_id"];

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
    pub fn is_ecs_service(&self, cluster: &str, service: &str) -> bool {
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

pub const DEFAULT_CHECK_EVENTS: [LifecycleEvent; 2] = [
    LifecycleEvent::AfterAllowTestTraffic,
    LifecycleEvent::AfterAllowTraffic,
];
pub const DEFAULT_HOOKS: [LifecycleEvent; 2] = DEFAULT_CHECK_EVENTS;
/// POST_TEST_TRAFFIC_SHIFT and POST_PRODUCTION_TRAFFIC_SHIFT.
pub const DEFAULT_ECS_STAGES: [LifecycleEvent; 2] = DEFAULT_CHECK_EVENTS;

impl Config {
    /// Loads from the process environment (what the functions call at init).
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Loads using `lookup` for environment variables (testable without touching the
    /// process env). Local sources only (inline or file); the functions load remote
    /// ones with [`crate::config_source::LiveConfig`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        use crate::config_source::ConfigSource;
        let source = ConfigSource::from_lookup(&lookup)?;
        let text = match &source {
            ConfigSource::Inline(text) => text.clone(),
            ConfigSource::File(path) => {
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?
            }
            remote => {
                return Err(ConfigError::Fetch(format!(
                    "{remote} is read with AWS credentials: use LiveConfig::load"
                )))
            }
        };
        crate::config_source::parse_document(&text, lookup(ENV_TOPIC_ARN).as_deref())
    }

    /// Reads a document from a file (the CLI's `config check`).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text)
    }

    /// Parses and validates a YAML or JSON document.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let document: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?
        };
        let mut walker = Walker::default();
        let config = walker.config(&document);
        if walker.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(walker.problems))
        }
    }

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
            .filter(move |s| s.repository == repository && s.tags.matches(tag))
    }
}

/// Walks a document, collecting every problem with its key path.
#[derive(Default)]
struct Walker {
    problems: Vec<ConfigProblem>,
}

impl Walker {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// The value as a mapping with only `allowed` keys; reports unknown keys.
    fn mapping<'a>(
        &mut self,
        value: &'a Value,
        path: &str,
        allowed: &[&str],
    ) -> Option<&'a Map<String, Value>> {
        let Some(map) = value.as_object() else {
            self.problem(path, format!("expected a mapping, got {}", kind(value)));
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.problem(
                    join(path, key),
                    format!("unknown key (allowed here: {})", allowed.join(", ")),
                );
            }
        }
        Some(map)
    }

    fn required_str(&mut self, map: &Map<String, Value>, path: &str, key: &str) -> String {
        match map.get(key) {
            None | Some(Value::Null) => {
                self.problem(join(path, key), "missing");
                String::new()
            }
            Some(value) => self.string(value, &join(path, key)).unwrap_or_default(),
        }
    }

    fn optional_str(&mut self, map: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => self.string(value, &join(path, key)),
        }
    }

    fn string(&mut self, value: &Value, path: &str) -> Option<String> {
        match value {
            Value::String(s) if s.trim().is_empty() => {
                self.problem(path, "must not be empty");
                None
            }
            Value::String(s) => Some(s.clone()),
            // YAML turns `v: 1` into a number; accept scalars where a string is meant.
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.problem(path, format!("expected a string, got {}", kind(other)));
                None
            }
        }
    }

    fn string_list(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<Vec<String>> {
        let value = map.get(key).filter(|v| !v.is_null())?;
        let path = join(path, key);
        let Some(items) = value.as_array() else {
            self.problem(&path, format!("expected a list, got {}", kind(value)));
            return None;
        };
        Some(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.string(item, &format!("{path}[{i}]")))
                .collect(),
        )
    }

    fn string_map(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> BTreeMap<String, String> {
        let Some(value) = map.get(key).filter(|v| !v.is_null()) else {
            return BTreeMap::new();
        };
        let path = join(path, key);
        let Some(entries) = value.as_object() else {
            self.problem(&path, format!("expected a mapping, got {}", kind(value)));
            return BTreeMap::new();
        };
        entries
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), self.string(v, &join(&path, k))?)))
            .collect()
    }

    fn bool(&mut self, map: &Map<String, Value>, path: &str, key: &str, default: bool) -> bool {
        match map.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.problem(
                    join(path, key),
                    format!("expected true or false, got {}", kind(other)),
                );
                default
            }
        }
    }

    /// A whole number in `range`, or `default` when absent.
    fn number(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
        default: u64,
    ) -> u64 {
        match map.get(key) {
            None | Some(Value::Null) => default,
            Some(value) => match value.as_u64() {
                Some(n) if range.contains(&n) => n,
                _ => {
                    self.problem(
                        join(path, key),
                        format!(
                            "expected a whole number from {} to {}, got {}",
                            range.start(),
                            range.end(),
                            value
                        ),
                    );
                    default
                }
            },
        }
    }

    fn events(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        default: &[LifecycleEvent],
    ) -> Vec<LifecycleEvent> {
        let Some(names) = self.string_list(map, path, key) else {
            return default.to_vec();
        };
        let mut events = Vec::new();
        for (i, name) in names.iter().enumerate() {
            match name.parse::<LifecycleEvent>() {
                Ok(event) if !events.contains(&event) => events.push(event),
                Ok(_) => self.problem(
                    format!("{}[{i}]", join(path, key)),
                    format!("{name} is listed twice"),
                ),
                Err(e) => self.problem(format!("{}[{i}]", join(path, key)), e.to_string()),
            }
        }
        events
    }

    fn config(&mut self, document: &Value) -> Config {
        let mut config = Config {
            notifications: Notifications::default(),
            services: Vec::new(),
        };
        let Some(root) = self.mapping(document, "", &["notifications", "services"]) else {
            return config;
        };
        if let Some(value) = root.get("notifications").filter(|v| !v.is_null()) {
            if let Some(map) =
                self.mapping(value, "notifications", &["topic_arn", "notify_idle_alarms"])
            {
                config.notifications.topic_arn =
                    self.optional_str(map, "notifications", "topic_arn");
                if let Some(arn) = &config.notifications.topic_arn {
                    if !arn.starts_with("arn:") || arn.split(':').count() != 6 {
                        self.problem(
                            "notifications.topic_arn",
                            format!(
                                "{arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
                            ),
                        );
                    }
                }
                config.notifications.notify_idle_alarms =
                    self.bool(map, "notifications", "notify_idle_alarms", false);
            }
        }
        match root.get("services") {
            None | Some(Value::Null) => self.problem("services", "missing"),
            Some(Value::Array(items)) if items.is_empty() => {
                self.problem("services", "must list at least one service")
            }
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(service) = self.service(item, &format!("services[{i}]")) {
                        config.services.push(service);
                    }
                }
            }
            Some(other) => {
                self.problem("services", format!("expected a list, got {}", kind(other)))
            }
        }
        self.cross_checks(root, &config);
        config
    }

    /// Problems that span services: duplicate names and shared deployment groups.
    fn cross_checks(&mut self, root: &Map<String, Value>, config: &Config) {
        let Some(Value::Array(items)) = root.get("services") else {
            return;
        };
        let mut names = HashSet::new();
        let mut groups = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(name) = item.get("name").and_then(Value::as_str) {
                if !names.insert(name) {
                    self.problem(
                        format!("services[{i}].name"),
                        format!("duplicate service name {name:?}: names must be unique"),
                    );
                }
            }
        }
        let mut ecs_services = HashSet::new();
        for (i, service) in config.services.iter().enumerate() {
            if service.ecs_native().is_some() {
                let name = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
                if !ecs_services.insert((name(&service.cluster), name(&service.service))) {
                    self.problem(
                        format!("services[{i}].service"),
                        format!(
                            "{}/{} is already used by another ecs_native service: an ECS service belongs to one Greenlight service",
                            service.cluster, service.service
                        ),
                    );
                }
            }
            if let Some(cd) = service.codedeploy() {
                if !groups.insert((cd.application.clone(), cd.deployment_group.clone())) {
                    self.problem(
                        format!("services[{i}].codedeploy.deployment_group"),
                        format!(
                            "{}/{} is already used by another service: a deployment group belongs to one service",
                            cd.application, cd.deployment_group
                        ),
                    );
                }
            }
        }
    }

    fn service(&mut self, value: &Value, path: &str) -> Option<ServiceConfig> {
        let map = self.mapping(
            value,
            path,
            &[
                "name",
                "repository",
                "tags",
                "cluster",
                "service",
                "container",
                "container_port",
                "codedeploy",
                "pipeline",
                "ecs_native",
                "on_busy",
                "alarms",
                "smoke",
                "analysis",
            ],
        )?;
        let name = self.required_str(map, path, "name");
        let repository = self.required_str(map, path, "repository");
        let tags = match self.string_list(map, path, "tags") {
            None => TagFilter::AnyButLatest,
            Some(patterns) if patterns.is_empty() => {
                self.problem(
                    join(path, "tags"),
                    "an empty list would deploy nothing: remove the key or list a pattern",
                );
                TagFilter::AnyButLatest
            }
            Some(patterns) => TagFilter::Patterns(
                patterns
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| match glob::Pattern::new(p) {
                        Ok(pattern) => Some(pattern),
                        Err(e) => {
                            self.problem(
                                format!("{path}.tags[{i}]"),
                                format!("bad glob pattern {p:?}: {e}"),
                            );
                            None
                        }
                    })
                    .collect(),
            ),
        };
        let cluster = self.required_str(map, path, "cluster");
        let service = self.required_str(map, path, "service");
        let container = self.required_str(map, path, "container");
        let container_port = map
            .get("container_port")
            .filter(|v| !v.is_null())
            .map(|_| self.number(map, path, "container_port", 1..=65535, 80) as u16);
        let target = self.target(map, path);
        let on_busy = match self.optional_str(map, path, "on_busy").as_deref() {
            None | Some("queue") => OnBusy::Queue,
            Some("supersede") => OnBusy::Supersede,
            Some("skip") => OnBusy::Skip,
            Some(other) => {
                self.problem(
                    join(path, "on_busy"),
                    format!("{other:?} is not one of queue, supersede, skip"),
                );
                OnBusy::Queue
            }
        };
        let alarms = self.string_list(map, path, "alarms").unwrap_or_default();
        if matches!(target, Some(DeployTarget::Pipeline(_))) && !alarms.is_empty() {
            // alarm-rollback stops CodeDeploy and ECS deployments; it cannot know which
            // deployment a pipeline's deploy action started.
            self.problem(
                join(path, "alarms"),
                "a pipeline service's deployments are run by its pipeline, so Greenlight cannot stop them on an alarm: put the alarm in the alarm configuration of the CodeDeploy deployment group (or the ECS service) the pipeline deploys to, which stops it natively",
            );
        }
        let analysis = map
            .get("analysis")
            .filter(|v| !v.is_null())
            .and_then(|value| self.analysis(value, &join(path, "analysis")));
        let smoke = match map.get("smoke").filter(|v| !v.is_null()) {
            Some(value) => self.smoke(value, &join(path, "smoke")),
            None => SmokeConfig::default(),
        };
        Some(ServiceConfig {
            name,
            repository,
            tags,
            cluster,
            service,
            container,
            container_port,
            target: target?,
            on_busy,
            alarms,
            smoke,
            analysis,
        })
    }

    fn target(&mut self, map: &Map<String, Value>, path: &str) -> Option<DeployTarget> {
        const PATHS: [&str; 3] = ["codedeploy", "pipeline", "ecs_native"];
        let set: Vec<(&str, &Value)> = PATHS
            .iter()
            .filter_map(|key| Some((*key, map.get(*key).filter(|v| !v.is_null())?)))
            .collect();
        let (key, value) = match set.as_slice() {
            [] => {
                self.problem(
                    join(path, "codedeploy"),
                    "missing: set exactly one of codedeploy, pipeline, ecs_native",
                );
                return None;
            }
            [one] => *one,
            many => {
                let names: Vec<&str> = many.iter().map(|(k, _)| *k).collect();
                self.problem(
                    path,
                    format!(
                        "set exactly one of codedeploy, pipeline, ecs_native (found {})",
                        names.join(" and ")
                    ),
                );
                return None;
            }
        };
        let path = join(path, key);
        match key {
            "codedeploy" => {
                let cd = self.mapping(
                    value,
                    &path,
                    &[
                        "application",
                        "deployment_group",
                        "deployment_config",
                        "hooks",
                    ],
                )?;
                let hooks = self.events(cd, &path, "hooks", &DEFAULT_HOOKS);
                for (i, hook) in hooks.iter().enumerate() {
                    if hook.codedeploy_name().is_none() {
                        self.problem(
                            format!("{path}.hooks[{i}]"),
                            format!(
                                "{} is an ECS-native stage: CodeDeploy has no such lifecycle event",
                                hook.ecs_name()
                            ),
                        );
                    }
                }
                Some(DeployTarget::CodeDeploy(CodeDeployTarget {
                    application: self.required_str(cd, &path, "application"),
                    deployment_group: self.required_str(cd, &path, "deployment_group"),
                    deployment_config: self.optional_str(cd, &path, "deployment_config"),
                    hooks,
                }))
            }
            "pipeline" => {
                let p = self.mapping(value, &path, &["name", "image_variable"])?;
                Some(DeployTarget::Pipeline(PipelineTarget {
                    name: self.required_str(p, &path, "name"),
                    image_variable: self.optional_str(p, &path, "image_variable"),
                }))
            }
            _ => {
                let e = self.mapping(value, &path, &["stages"])?;
                Some(DeployTarget::EcsNative(EcsNativeTarget {
                    stages: self.events(e, &path, "stages", &DEFAULT_ECS_STAGES),
                }))
            }
        }
    }

    fn analysis(&mut self, value: &Value, path: &str) -> Option<crate::analysis::AnalysisConfig> {
        use crate::analysis::{AnalysisConfig, LatencyStat, Measure, MetricRule, OnInconclusive};
        let map = self.mapping(
            value,
            path,
            &[
                "window_minutes",
                "window_seconds",
                "interval_seconds",
                "min_requests",
                "failure_limit",
                "on_inconclusive",
                "dry_run",
                "settle_seconds",
                "metrics",
            ],
        )?;
        // window_seconds: for high-resolution metrics and the local rehearsal, whose
        // minutes are compressed; window_minutes is what ALB metrics call for.
        let window_seconds = match (map.get("window_minutes"), map.get("window_seconds")) {
            (Some(_), Some(_)) => {
                self.problem(
                    join(path, "window_seconds"),
                    "set window_minutes or window_seconds, not both",
                );
                300
            }
            (None, Some(_)) => self.number(map, path, "window_seconds", 1..=7200, 300),
            _ => self.number(map, path, "window_minutes", 1..=120, 5) * 60,
        };
        let interval = self.number(map, path, "interval_seconds", 1..=3600, 60);
        // GetMetricData periods: 1, 5, 10, 20, 30 (high-resolution metrics) or a
        // multiple of 60 [CloudWatch API reference, MetricStat.Period].
        if interval % 60 != 0 && ![1, 5, 10, 20, 30].contains(&interval) {
            self.problem(
                join(path, "interval_seconds"),
                format!("{interval} is not a CloudWatch period: use a whole number of minutes (load balancer metrics have 1-minute resolution), or 1, 5, 10, 20 or 30 for high-resolution metrics"),
            );
        }
        if interval > window_seconds {
            self.problem(
                join(path, "interval_seconds"),
                format!("{interval} s is longer than the window ({window_seconds} s)"),
            );
        }
        let on_inconclusive = match self.optional_str(map, path, "on_inconclusive").as_deref() {
            None | Some("fail") => OnInconclusive::Fail,
            Some("pass") => OnInconclusive::Pass,
            Some(other) => {
                self.problem(
                    join(path, "on_inconclusive"),
                    format!("{other:?} is not fail or pass"),
                );
                OnInconclusive::Fail
            }
        };
        let mut metrics = Vec::new();
        match map.get("metrics").filter(|v| !v.is_null()) {
            None => self.problem(
                join(path, "metrics"),
                "missing: list what to compare (e.g. { metric: error_rate, max: 1 })",
            ),
            Some(Value::Array(items)) if items.is_empty() => {
                self.problem(join(path, "metrics"), "must list at least one metric")
            }
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{path}.metrics[{i}]");
                    let Some(m) = self.mapping(
                        item,
                        &at,
                        &[
                            "metric",
                            "name",
                            "cloudwatch",
                            "max",
                            "max_over_blue",
                            "max_ratio_to_blue",
                        ],
                    ) else {
                        continue;
                    };
                    let limit = |w: &mut Walker, key: &str| match m.get(key) {
                        None | Some(Value::Null) => None,
                        Some(v) => match v.as_f64() {
                            Some(n) if n >= 0.0 => Some(n),
                            _ => {
                                w.problem(
                                    join(&at, key),
                                    format!("expected a number of at least 0, got {v}"),
                                );
                                None
                            }
                        },
                    };
                    let (max, over, ratio) = (
                        limit(self, "max"),
                        limit(self, "max_over_blue"),
                        limit(self, "max_ratio_to_blue"),
                    );
                    let measure = match (self.optional_str(m, &at, "metric"), m.get("cloudwatch")) {
                        (Some(metric), None) => match metric.as_str() {
                            "error_rate" => Some(Measure::ErrorRate),
                            "latency_p50" => Some(Measure::Latency(LatencyStat::P50)),
                            "latency_p90" => Some(Measure::Latency(LatencyStat::P90)),
                            "latency_p99" => Some(Measure::Latency(LatencyStat::P99)),
                            "latency_avg" => Some(Measure::Latency(LatencyStat::Average)),
                            other => {
                                self.problem(join(&at, "metric"), format!("{other:?} is not one of error_rate, latency_p50, latency_p90, latency_p99, latency_avg (or use name + cloudwatch for any metric)"));
                                None
                            }
                        },
                        (None, Some(cw)) => {
                            let cw_path = join(&at, "cloudwatch");
                            self.mapping(
                                cw,
                                &cw_path,
                                &["namespace", "metric_name", "dimensions", "stat"],
                            )
                            .map(|c| Measure::Custom {
                                namespace: self.required_str(c, &cw_path, "namespace"),
                                metric_name: self.required_str(c, &cw_path, "metric_name"),
                                dimensions: self.string_map(c, &cw_path, "dimensions"),
                                stat: self
                                    .optional_str(c, &cw_path, "stat")
                                    .unwrap_or_else(|| "Sum".into()),
                            })
                        }
                        (Some(_), Some(_)) => {
                            self.problem(&at, "set either metric or cloudwatch, not both");
                            None
                        }
                        (None, None) => {
                            self.problem(
                                join(&at, "metric"),
                                "missing (or set name and cloudwatch for any metric)",
                            );
                            None
                        }
                    };
                    let Some(measure) = measure else { continue };
                    match &measure {
                        Measure::ErrorRate if ratio.is_some() => self.problem(
                            join(&at, "max_ratio_to_blue"),
                            "applies to latency; for error_rate use max_over_blue",
                        ),
                        Measure::Latency(_) if over.is_some() => self.problem(
                            join(&at, "max_over_blue"),
                            "applies to error_rate; for latency use max_ratio_to_blue",
                        ),
                        Measure::Custom { .. } if over.is_some() || ratio.is_some() => {
                            self.problem(&at, "a cloudwatch metric is compared with max only")
                        }
                        _ => {}
                    }
                    if max.is_none() && over.is_none() && ratio.is_none() {
                        self.problem(
                            &at,
                            "no limit: set max (or max_over_blue / max_ratio_to_blue)",
                        );
                    }
                    let name = match (&measure, self.optional_str(m, &at, "name")) {
                        (_, Some(name)) => name,
                        (Measure::Custom { .. }, None) => {
                            self.problem(
                                join(&at, "name"),
                                "missing: a cloudwatch metric needs a name",
                            );
                            String::new()
                        }
                        (_, None) => self.optional_str(m, &at, "metric").unwrap_or_default(),
                    };
                    metrics.push(MetricRule {
                        name,
                        measure,
                        max,
                        max_over_blue: over,
                        max_ratio_to_blue: ratio,
                    });
                }
            }
            Some(other) => self.problem(
                join(path, "metrics"),
                format!("expected a list, got {}", kind(other)),
            ),
        }
        Some(AnalysisConfig {
            window: Duration::from_secs(window_seconds),
            interval: Duration::from_secs(interval),
            min_requests: self.number(map, path, "min_requests", 0..=1_000_000_000, 100),
            failure_limit: self.number(map, path, "failure_limit", 0..=1000, 0) as u32,
            on_inconclusive,
            dry_run: self.bool(map, path, "dry_run", false),
            metrics,
            settle: Duration::from_secs(self.number(map, path, "settle_seconds", 0..=900, 120)),
        })
    }

    fn smoke(&mut self, value: &Value, path: &str) -> SmokeConfig {
        let mut smoke = SmokeConfig::default();
        let Some(map) = self.mapping(
            value,
            path,
            &[
                "base_url",
                "production_url",
                "warmup_seconds",
                "deadline_seconds",
                "concurrency",
                "checks",
            ],
        ) else {
            return smoke;
        };
        smoke.base_url = self.url(map, path, "base_url");
        smoke.production_url = self.url(map, path, "production_url");
        smoke.warmup = Duration::from_secs(self.number(map, path, "warmup_seconds", 0..=600, 0));
        smoke.deadline =
            Duration::from_secs(self.number(map, path, "deadline_seconds", 1..=3300, 300));
        smoke.concurrency = self.number(map, path, "concurrency", 1..=256, 4) as usize;
        match map.get("checks").filter(|v| !v.is_null()) {
            None => {}
            Some(Value::Array(items)) => {
                let mut names = HashSet::new();
                for (i, item) in items.iter().enumerate() {
                    let check_path = format!("{path}.checks[{i}]");
                    if let Some(check) = self.check(item, &check_path) {
                        if !names.insert(check.name.clone()) {
                            self.problem(
                                join(&check_path, "name"),
                                format!("duplicate check name {:?}", check.name),
                            );
                        }
                        smoke.checks.push(check);
                    }
                }
            }
            Some(other) => self.problem(
                join(path, "checks"),
                format!("expected a list, got {}", kind(other)),
            ),
        }
        smoke
    }

    fn url(&mut self, map: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
        let url = self.optional_str(map, path, key)?;
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() && !host.starts_with('/') => {
                Some(url.trim_end_matches('/').to_string())
            }
            _ => {
                self.problem(
                    join(path, key),
                    format!("{url:?} is not an http:// or https:// URL with a host"),
                );
                None
            }
        }
    }

    fn check(&mut self, value: &Value, path: &str) -> Option<CheckSpec> {
        let map = self.mapping(
            value,
            path,
            &[
                "name",
                "method",
                "path",
                "headers",
                "body",
                "expect_status",
                "body_contains",
                "json_equals",
                "header_present",
                "header_equals",
                "max_latency_ms",
                "timeout_ms",
                "attempts",
                "backoff_ms",
                "events",
            ],
        )?;
        let name = self.required_str(map, path, "name");
        let method = self
            .optional_str(map, path, "method")
            .unwrap_or_else(|| "GET".into())
            .to_ascii_uppercase();
        if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&method.as_str())
        {
            self.problem(
                join(path, "method"),
                format!("{method:?} is not an HTTP method Greenlight sends"),
            );
        }
        let url_path = self.required_str(map, path, "path");
        if !url_path.is_empty() && !url_path.starts_with('/') {
            self.problem(
                join(path, "path"),
                format!("{url_path:?} must start with '/'"),
            );
        }
        let expect_status = match map.get("expect_status") {
            None | Some(Value::Null) => StatusExpectation::Class(2),
            Some(value) => match parse_status(value) {
                Some(status) => status,
                None => {
                    self.problem(
                        join(path, "expect_status"),
                        format!("{value} is not a status code (100-599) or class (1xx-5xx)"),
                    );
                    StatusExpectation::Class(2)
                }
            },
        };
        let json_equals: BTreeMap<String, Value> =
            match map.get("json_equals").filter(|v| !v.is_null()) {
                None => BTreeMap::new(),
                Some(Value::Object(entries)) => {
                    for pointer in entries.keys() {
                        if !pointer.is_empty() && !pointer.starts_with('/') {
                            self.problem(
                                join(&join(path, "json_equals"), pointer),
                                "a JSON pointer must be empty or start with '/' (e.g. /version)",
                            );
                        }
                    }
                    entries
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                }
                Some(other) => {
                    self.problem(
                        join(path, "json_equals"),
                        format!(
                            "expected a mapping of JSON pointer to value, got {}",
                            kind(other)
                        ),
                    );
                    BTreeMap::new()
                }
            };
        let check = CheckSpec {
            name,
            method,
            path: url_path,
            headers: self.string_map(map, path, "headers"),
            body: self.optional_str(map, path, "body"),
            expect_status,
            body_contains: self.optional_str(map, path, "body_contains"),
            json_equals,
            header_present: self
                .string_list(map, path, "header_present")
                .unwrap_or_default(),
            header_equals: self.string_map(map, path, "header_equals"),
            max_latency: map.get("max_latency_ms").filter(|v| !v.is_null()).map(|_| {
                Duration::from_millis(self.number(map, path, "max_latency_ms", 1..=600_000, 1000))
            }),
            timeout: Duration::from_millis(self.number(map, path, "timeout_ms", 1..=600_000, 5000)),
            attempts: self.number(map, path, "attempts", 1..=100, 3) as u32,
            backoff: Duration::from_millis(self.number(map, path, "backoff_ms", 0..=600_000, 1000)),
            events: self.events(map, path, "events", &DEFAULT_CHECK_EVENTS),
        };
        self.placeholders(&check, path);
        Some(check)
    }

    /// Unknown `${name}` placeholders would never match: report them now, not at deploy
    /// time. Secret references (`${secret:NAME}`, `${secret:NAME#key}`, `${ssm:NAME}`)
    /// belong in headers and the body only: anywhere else they could reach a URL, an
    /// expectation or a report.
    fn placeholders(&mut self, check: &CheckSpec, path: &str) {
        // (key path, text, may hold secrets)
        let mut texts: Vec<(String, String, bool)> =
            vec![(join(path, "path"), check.path.clone(), false)];
        if let Some(body) = &check.body {
            texts.push((join(path, "body"), body.clone(), true));
        }
        if let Some(contains) = &check.body_contains {
            texts.push((join(path, "body_contains"), contains.clone(), false));
        }
        for (k, v) in &check.headers {
            texts.push((format!("{path}.headers.{k}"), v.clone(), true));
        }
        for (k, v) in &check.header_equals {
            texts.push((format!("{path}.header_equals.{k}"), v.clone(), false));
        }
        for (k, v) in &check.json_equals {
            if let Some(text) = v.as_str() {
                texts.push((join(&join(path, "json_equals"), k), text.to_string(), false));
            }
        }
        for (p, text, secrets_allowed) in texts {
            for name in placeholder_names(&text) {
                if crate::smoke::is_secret_reference(&name) {
                    if !secrets_allowed {
                        self.problem(
                            p.clone(),
                            format!("${{{name}}}: secrets may be used in headers and body only (never in paths or expectations, which reach reports)"),
                        );
                    } else if let Some(why) = secret_reference_problem(&name) {
                        self.problem(p.clone(), format!("${{{name}}}: {why}"));
                    }
                } else if !PLACEHOLDERS.contains(&name.as_str()) {
                    self.problem(
                        p.clone(),
                        format!(
                            "unknown placeholder ${{{name}}} (known: {}, and ${{secret:NAME}}, ${{secret:NAME#json-key}}, ${{ssm:NAME}} in headers and body)",
                            PLACEHOLDERS.map(|p| format!("${{{p}}}")).join(", ")
                        ),
                    );
                }
            }
        }
    }
}

/// What is wrong with a secret reference, if anything.
fn secret_reference_problem(reference: &str) -> Option<&'static str> {
    if let Some(rest) = reference.strip_prefix("secret:") {
        let (name, key) = match rest.split_once('#') {
            Some((name, key)) => (name, Some(key)),
            None => (rest, None),
        };
        if name.trim().is_empty() {
            return Some("names no secret (secret:NAME or secret:NAME#json-key)");
        }
        if key.is_some_and(|k| k.trim().is_empty()) {
            return Some("names no JSON key after #");
        }
        return None;
    }
    match reference.strip_prefix("ssm:") {
        Some(name) if !name.trim().is_empty() => None,
        _ => Some("names no parameter (ssm:NAME)"),
    }
}

fn parse_status(value: &Value) -> Option<StatusExpectation> {
    if let Some(code) = value.as_u64() {
        return (100..=599)
            .contains(&code)
            .then_some(StatusExpectation::Exact(code as u16));
    }
    let text = value.as_str()?.trim().to_ascii_lowercase();
    if let Some(class) = text.strip_suffix("xx") {
        let class: u16 = class.parse().ok()?;
        return (1..=5)
            .contains(&class)
            .then_some(StatusExpectation::Class(class));
    }
    let code: u16 = text.parse().ok()?;
    (100..=599)
        .contains(&code)
        .then_some(StatusExpectation::Exact(code))
}

/// Names inside `${…}` in a text.
pub fn placeholder_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                names.push(after[..end].to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    names
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
notifications: { topic_arn: arn:aws:sns:us-east-1:123456789012:greenlight }
services:
  - name: web
    repository: web-app
    tags: ["v*", "release-*"]
    cluster: prod
    service: web
    container: web
    codedeploy:
      application: web-app
      deployment_group: web-dg
      deployment_config: CodeDeployDefault.ECSCanary10Percent5Minutes
    alarms: [web-5xx, web-errors]
    smoke:
      base_url: http://internal-alb.example:8080
      checks:
        - { name: health, path: /health, expect_status: 200, body_contains: ok }
"#;

    fn problems(text: &str) -> Vec<String> {
        match Config::parse(text) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn the_documented_example_loads_with_its_values() {
        let config = Config::parse(EXAMPLE).expect("example is valid");
        assert_eq!(
            config.notifications.topic_arn.as_deref(),
            Some("arn:aws:sns:us-east-1:123456789012:greenlight")
        );
        let web = &config.services[0];
        assert_eq!(web.name, "web");
        assert!(web.tags.matches("v1.2.3") && web.tags.matches("release-7"));
        assert!(!web.tags.matches("latest") && !web.tags.matches("dev-1"));
        let cd = web.codedeploy().expect("codedeploy target");
        assert_eq!(cd.deployment_group, "web-dg");
        assert_eq!(cd.hooks, DEFAULT_HOOKS.to_vec());
        assert_eq!(web.on_busy, OnBusy::Queue);
        assert_eq!(web.alarms, vec!["web-5xx", "web-errors"]);
        let health = &web.smoke.checks[0];
        assert_eq!(health.expect_status, StatusExpectation::Exact(200));
        assert_eq!(health.body_contains.as_deref(), Some("ok"));
        assert_eq!(health.method, "GET");
        assert_eq!(health.attempts, 3);
        assert!(config.service_for_group("web-app", "web-dg").is_some());
        assert!(config.service_for_group("web-app", "other").is_none());
    }

    #[test]
    fn json_documents_load_too() {
        let json = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x",
            "pipeline":{"name":"p","image_variable":"IMAGE_URI"}}]}"#;
        let config = Config::parse(json).expect("valid JSON config");
        assert!(matches!(&config.services[0].target, DeployTarget::Pipeline(p) if p.name == "p"));
        assert!(
            config.services[0].tags.matches("v1") && !config.services[0].tags.matches("latest")
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key_path() {
        let text = r#"
services:
  - name: web
    repository: web-app
    tags: ["v[1"]
    cluster: prod
    service: web
    container: web
    codedeploy: { application: web-app, deployment_grup: web-dg }
  - name: web
    repository: api
    cluster: prod
    service: api
    container: api
    codedeploy: { application: api }
    on_busy: later
    smoke:
      checks:
        - { name: h, path: health, expect_status: 700, json_equals: { "/v": "${image_sha}" } }
"#;
        let got = problems(text);
        let expect = [
            "services[0].tags[0]: bad glob pattern",
            "services[0].codedeploy.deployment_grup: unknown key",
            "services[0].codedeploy.deployment_group: missing",
            "services[1].codedeploy.deployment_group: missing",
            "services[1].on_busy: \"later\" is not one of",
            "services[1].smoke.checks[0].path: \"health\" must start with '/'",
            "services[1].smoke.checks[0].expect_status: 700 is not a status code",
            "services[1].smoke.checks[0].json_equals./v: unknown placeholder ${image_sha}",
            "services[1].name: duplicate service name \"web\"",
        ];
        for e in expect {
            assert!(
                got.iter().any(|p| p.starts_with(e)),
                "missing problem {e:?} in {got:#?}"
            );
        }
        assert_eq!(
            got.len(),
            expect.len(),
            "unexpected extra problems: {got:#?}"
        );
    }

    #[test]
    fn unknown_top_level_keys_and_missing_services_are_named() {
        let got = problems("notification: {}\n");
        assert!(
            got.iter()
                .any(|p| p.starts_with("notification: unknown key")),
            "{got:?}"
        );
        assert!(got.iter().any(|p| p == "services: missing"), "{got:?}");
    }

    #[test]
    fn a_service_needs_exactly_one_target() {
        let both = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x",
            "pipeline":{"name":"p"},"codedeploy":{"application":"a","deployment_group":"g"}}]}"#;
        assert!(problems(both).iter().any(|p| p.contains(
            "set exactly one of codedeploy, pipeline, ecs_native (found codedeploy and pipeline)"
        )));
        let neither = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x"}]}"#;
        assert!(problems(neither)
            .iter()
            .any(|p| p.starts_with("services[0].codedeploy: missing")));
    }

    #[test]
    fn an_ecs_native_service_takes_ecs_or_codedeploy_stage_names() {
        let text = r#"
services:
  - { name: web, repository: web-app, cluster: prod, service: web, container: web,
      ecs_native: { stages: [POST_TEST_TRAFFIC_SHIFT, BeforeAllowTraffic, PRODUCTION_TRAFFIC_SHIFT] } }
  - { name: api, repository: api, cluster: arn:aws:ecs:us-east-1:123456789012:cluster/prod, service: api, container: api,
      ecs_native: {} }
"#;
        let config = Config::parse(text).unwrap();
        let web = config.service_by_name("web").unwrap();
        assert_eq!(web.path(), DeploymentPath::EcsNative);
        assert_eq!(
            web.ecs_native().unwrap().stages,
            [
                LifecycleEvent::AfterAllowTestTraffic,
                LifecycleEvent::BeforeAllowTraffic,
                LifecycleEvent::ProductionTrafficShift
            ]
        );
        assert_eq!(
            config
                .service_by_name("api")
                .unwrap()
                .ecs_native()
                .unwrap()
                .stages,
            DEFAULT_ECS_STAGES
        );
        // Services are found by their own identity, whether names or ARNs are given.
        let found = config
            .service_for_ecs_arn("arn:aws:ecs:us-east-1:123456789012:service/prod/api")
            .map(|s| s.name.as_str());
        assert_eq!(found, Some("api"));
        assert!(config
            .service_for_ecs_arn("arn:aws:ecs:us-east-1:123456789012:service/other/web")
            .is_none());

        let bad = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x",
            "ecs_native":{"stages":["SCALE_UP"]}},
            {"name":"b","repository":"r","cluster":"c","service":"t","container":"x",
            "codedeploy":{"application":"a","deployment_group":"g","hooks":["TEST_TRAFFIC_SHIFT"]}}]}"#;
        let got = problems(bad);
        assert!(
            got.iter().any(|p| p.starts_with("services[0].ecs_native.stages[0]: \"SCALE_UP\" is not a lifecycle event with a hook")),
            "{got:?}"
        );
        assert!(
            got.iter().any(|p| p.starts_with(
                "services[1].codedeploy.hooks[0]: TEST_TRAFFIC_SHIFT is an ECS-native stage"
            )),
            "{got:?}"
        );
    }

    #[test]
    fn analysis_loads_as_documented_and_every_mistake_is_named() {
        let text = r#"
services:
  - name: web
    repository: web-app
    cluster: prod
    service: web
    container: web
    ecs_native: {}
    analysis:
      window_minutes: 5
      interval_seconds: 60
      min_requests: 100
      failure_limit: 0
      on_inconclusive: fail
      dry_run: false
      metrics:
        - { metric: error_rate, max: 1, max_over_blue: 0.5 }
        - { metric: latency_p99, max: 800, max_ratio_to_blue: 1.5 }
        - name: checkout-errors
          cloudwatch: { namespace: Shop, metric_name: CheckoutErrors, dimensions: { Service: web }, stat: Sum }
          max: 5
"#;
        let config = Config::parse(text).unwrap();
        let analysis = config.services[0].analysis.clone().unwrap();
        assert_eq!(analysis.window, Duration::from_secs(300));
        assert_eq!(analysis.metrics.len(), 3);
        assert_eq!(analysis.metrics[1].name, "latency_p99");
        assert_eq!(analysis.metrics[2].name, "checkout-errors");
        assert_eq!(analysis.settle, Duration::from_secs(120));

        let bad = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x","ecs_native":{},
            "analysis":{"interval_seconds":90,"on_inconclusive":"maybe","metrics":[
              {"metric":"error_rate","max_ratio_to_blue":2},
              {"metric":"latency_p42","max":1},
              {"cloudwatch":{"namespace":"N","metric_name":"M"},"max":1},
              {"metric":"latency_p99"}]}}]}"#;
        let got = problems(bad);
        for expected in [
            "services[0].analysis.interval_seconds: 90 is not a CloudWatch period",
            "services[0].analysis.on_inconclusive: \"maybe\" is not fail or pass",
            "services[0].analysis.metrics[0].max_ratio_to_blue: applies to latency",
            "services[0].analysis.metrics[1].metric: \"latency_p42\" is not one of",
            "services[0].analysis.metrics[2].name: missing",
            "services[0].analysis.metrics[3]: no limit",
        ] {
            assert!(
                got.iter().any(|p| p.starts_with(expected)),
                "{expected}\n{got:#?}"
            );
        }

        // Sub-minute periods exist for high-resolution metrics (and the rehearsal).
        let fast = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x","ecs_native":{},
            "analysis":{"window_seconds":6,"interval_seconds":1,"settle_seconds":1,"metrics":[{"metric":"error_rate","max":1}]}}]}"#;
        let config = Config::parse(fast).unwrap();
        let analysis = config.services[0].analysis.clone().unwrap();
        assert_eq!(analysis.window, Duration::from_secs(6));
        assert_eq!(analysis.interval, Duration::from_secs(1));
        let both = fast.replace(
            r#""window_seconds":6"#,
            r#""window_seconds":6,"window_minutes":1"#,
        );
        assert!(problems(&both).iter().any(|p| p.starts_with(
            "services[0].analysis.window_seconds: set window_minutes or window_seconds, not both"
        )));
        let odd = fast.replace(r#""interval_seconds":1"#, r#""interval_seconds":7"#);
        assert!(problems(&odd).iter().any(|p| p
            .starts_with("services[0].analysis.interval_seconds: 7 is not a CloudWatch period")));
    }

    #[test]
    fn secrets_are_allowed_in_headers_and_body_only() {
        let text = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x","ecs_native":{},
            "smoke":{"checks":[
              {"name":"ok","path":"/","headers":{"Authorization":"Bearer ${secret:web/token#token}","X-Key":"${ssm:/web/key}"},"body":"${secret:web/body}"},
              {"name":"leaky","path":"/${secret:web/token}","body_contains":"${ssm:/web/key}","headers":{"X":"${secret:#k}","Y":"${ssm:}"}}]}}]}"#;
        let got = problems(text);
        for expected in [
            "services[0].smoke.checks[1].path: ${secret:web/token}: secrets may be used in headers and body only",
            "services[0].smoke.checks[1].body_contains: ${ssm:/web/key}: secrets may be used in headers and body only",
            "services[0].smoke.checks[1].headers.X: ${secret:#k}: names no secret",
            "services[0].smoke.checks[1].headers.Y: ${ssm:}: names no parameter",
        ] {
            assert!(got.iter().any(|p| p.starts_with(expected)), "{expected}\n{got:#?}");
        }
        assert!(
            !got.iter().any(|p| p.contains("checks[0]")),
            "the first check is valid: {got:#?}"
        );
    }

    #[test]
    fn a_pipeline_service_cannot_name_alarms_it_could_not_act_on() {
        let text = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x",
            "pipeline":{"name":"p"},"alarms":["a-5xx"]}]}"#;
        let got = problems(text);
        assert!(
            got.iter().any(|p| p.starts_with(
                "services[0].alarms: a pipeline service's deployments are run by its pipeline"
            )),
            "{got:?}"
        );
    }

    #[test]
    fn two_services_cannot_share_a_deployment_group() {
        let text = r#"{"services":[
            {"name":"a","repository":"r","cluster":"c","service":"s","container":"x","codedeploy":{"application":"app","deployment_group":"g"}},
            {"name":"b","repository":"r2","cluster":"c","service":"s2","container":"x","codedeploy":{"application":"app","deployment_group":"g"}}]}"#;
        let got = problems(text);
        assert!(
            got.iter()
                .any(|p| p
                    .starts_with("services[1].codedeploy.deployment_group: app/g is already used")),
            "{got:?}"
        );
    }

    #[test]
    fn syntax_errors_are_not_mistaken_for_an_empty_document() {
        assert!(matches!(
            Config::parse("services: [\n"),
            Err(ConfigError::Syntax(_))
        ));
        assert!(matches!(
            Config::parse("{\"services\": "),
            Err(ConfigError::Syntax(_))
        ));
    }

    #[test]
    fn environment_selects_the_document_and_topic_override() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(matches!(
            Config::from_lookup(env(&[])),
            Err(ConfigError::NotSet)
        ));
        assert!(matches!(
            Config::from_lookup(env(&[(ENV_CONFIG, "x"), (ENV_CONFIG_FILE, "y")])),
            Err(ConfigError::SeveralSet(_))
        ));
        let pairs: &'static [(&str, &str)] = Box::leak(Box::new([
            (ENV_CONFIG, EXAMPLE),
            (ENV_TOPIC_ARN, "arn:aws:sns:eu-west-1:111111111111:other"),
        ]));
        let config = Config::from_lookup(env(pairs)).expect("inline config loads");
        assert_eq!(
            config.notifications.topic_arn.as_deref(),
            Some("arn:aws:sns:eu-west-1:111111111111:other")
        );
    }

    #[test]
    fn config_file_paths_resolve_against_the_task_root() {
        let dir = std::env::temp_dir().join(format!("greenlight-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("greenlight.yaml"), EXAMPLE).unwrap();
        let root = dir.to_string_lossy().to_string();
        let config = Config::from_lookup(|name| match name {
            ENV_CONFIG_FILE => Some("greenlight.yaml".into()),
            "LAMBDA_TASK_ROOT" => Some(root.clone()),
            _ => None,
        })
        .expect("relative file under the task root loads");
        assert_eq!(config.services.len(), 1);
        let missing = Config::from_lookup(|name| {
            (name == ENV_CONFIG_FILE).then(|| "/nonexistent/g.yaml".into())
        });
        assert!(matches!(missing, Err(ConfigError::Read { .. })));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn status_expectations_match_codes_and_classes() {
        assert!(StatusExpectation::Class(2).matches(204));
        assert!(!StatusExpectation::Class(2).matches(301));
        assert!(StatusExpectation::Exact(404).matches(404));
        assert_eq!(
            parse_status(&Value::from("5XX")),
            Some(StatusExpectation::Class(5))
        );
        assert_eq!(
            parse_status(&Value::from("201")),
            Some(StatusExpectation::Exact(201))
        );
        assert_eq!(parse_status(&Value::from("6xx")), None);
    }
}
