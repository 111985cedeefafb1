//! One service of the document and its deployment path (`codedeploy:`,
//! `ecs_native:` or `pipeline:`).

use serde_json::{Map, Value};

use super::model::{
    CodeDeployTarget, DeployTarget, EcsNativeTarget, OnBusy, PipelineTarget, ServiceConfig,
    SmokeConfig, TagFilter, DEFAULT_ECS_STAGES, DEFAULT_HOOKS,
};
use super::walker::{join, Walker};

impl Walker {
    pub(super) fn service(&mut self, value: &Value, path: &str) -> Option<ServiceConfig> {
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
                "promote",
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
        let promote = map
            .get("promote")
            .filter(|v| !v.is_null())
            .and_then(|value| self.promotion(value, &join(path, "promote")));
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
            promote,
        })
    }

    pub(super) fn target(&mut self, map: &Map<String, Value>, path: &str) -> Option<DeployTarget> {
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
}
