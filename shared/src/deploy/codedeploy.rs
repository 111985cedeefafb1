//! The CodeDeploy path: an ECS blue/green deployment group. A deployment is
//! CreateDeployment with an inline AppSpec naming Greenlight's hooks; its image is the
//! marker in its description; a stop with rollback is StopDeployment.

use std::collections::BTreeMap;

use futures::future::join_all;

use super::view::{DeploymentView, History, HookResult, Phase, Progress, StartError, StopError};
use crate::aws::cloudwatch::target_group_dimension;
use crate::aws::codedeploy::{DeploymentReader, DeploymentStopper, DeploymentTraffic};
use crate::aws::elb::{load_balancer_of, TrafficReader};
use crate::aws::{AwsError, CodeDeploy, DeploymentSummary, StopOutcome, IN_FLIGHT_STATUSES};
use crate::config::{CodeDeployTarget, Config, ServiceConfig};
use crate::gate::{Targets, TargetsError};
use crate::marker::DeploymentMarker;
use crate::LifecycleEvent;

/// One service's deployment group.
#[derive(Clone, Copy)]
pub(super) struct Group<'a> {
    pub client: &'a CodeDeploy,
    pub target: &'a CodeDeployTarget,
    pub hook_pattern: Option<&'a str>,
    pub container: &'a str,
}

impl Group<'_> {
    pub fn target(&self) -> String {
        format!(
            "{}/{}",
            self.target.application, self.target.deployment_group
        )
    }

    pub async fn history(&self, since_ms: i64) -> Result<History, AwsError> {
        let history = self
            .client
            .group_history(
                &self.target.application,
                &self.target.deployment_group,
                since_ms,
            )
            .await?;
        Ok(History {
            in_flight: history.in_flight.into_iter().map(view).collect(),
            since: history.since.into_iter().map(view).collect(),
        })
    }

    pub async fn in_flight(&self) -> Result<Vec<String>, AwsError> {
        self.client
            .in_flight(&self.target.application, &self.target.deployment_group)
            .await
    }

    pub async fn stop(&self, id: &str, rollback: bool) -> Result<StopOutcome, StopError> {
        Ok(self.client.stop(id, rollback).await?)
    }

    pub async fn stop_with_rollback(&self, id: &str) -> Result<StopOutcome, AwsError> {
        self.client.stop_with_rollback(id).await
    }

    /// CodeDeploy's state-change event names the deployment.
    pub async fn ended(&self, id: Option<&str>) -> Result<Option<DeploymentView>, AwsError> {
        match id {
            Some(id) => Ok(Some(view(self.client.deployment(id).await?))),
            None => Ok(None),
        }
    }

    /// One ListDeploymentTargets + GetDeploymentTarget.
    pub async fn progress(&self, id: &str) -> Result<Progress, AwsError> {
        let traffic = self.client.traffic(id).await?;
        let at = traffic
            .lifecycle
            .iter()
            .find(|(_, status)| status == "InProgress")
            .map(|(event, _)| event.clone());
        let hooks = traffic
            .lifecycle
            .iter()
            .filter(|(event, _)| {
                event
                    .parse::<LifecycleEvent>()
                    .is_ok_and(|e| self.target.hooks.contains(&e))
            })
            .map(|(event, status)| HookResult {
                hook: event.clone(),
                status: status.clone(),
            })
            .collect();
        Ok(Progress {
            at,
            green_production_percent: traffic.green_percent,
            hooks,
            production_since_ms: traffic.allow_traffic_started_ms,
            ..Progress::default()
        })
    }

    pub async fn analysis_targets(
        &self,
        id: &str,
        elb: &impl TrafficReader,
    ) -> Result<Targets, TargetsError> {
        let (traffic, group) = futures::future::try_join(
            self.client.traffic(id),
            self.client
                .deployment_group(&self.target.application, &self.target.deployment_group),
        )
        .await?;
        analysis_targets(
            &traffic,
            group.production_listener_arns.first().map(String::as_str),
            elb,
        )
        .await
    }

    /// CreateDeployment of the registered task definition; `description` carries the
    /// marker. DeploymentLimitExceededException means another deployment is in
    /// flight: [`StartError::Busy`] with the id CodeDeploy names.
    pub async fn start(
        &self,
        task_definition_arn: &str,
        container_port: u16,
        description: &str,
    ) -> Result<String, StartError> {
        let hooks = &self.target.hooks;
        let pattern = match (self.hook_pattern, hooks.is_empty()) {
            (Some(pattern), _) => pattern,
            (None, true) => "",
            (None, false) => {
                return Err(StartError::Setup(format!(
                    "{ENV_HOOK_FUNCTION} is not set: the AppSpec cannot name the smoke-test hooks"
                )))
            }
        };
        let appspec = render_appspec(
            task_definition_arn,
            self.container,
            container_port,
            hooks,
            pattern,
        );
        match self
            .client
            .create_deployment(
                &self.target.application,
                &self.target.deployment_group,
                self.target.deployment_config.as_deref(),
                &appspec,
                description,
            )
            .await
        {
            Ok(id) => Ok(id),
            Err(e) if e.is_code("DeploymentLimitExceededException") => Err(StartError::Busy {
                in_flight: active_deployment_from(&e.message).unwrap_or_default(),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether `service`'s AppSpec must name Greenlight's hook function.
pub(super) fn needs_hook_pattern(service: &ServiceConfig) -> bool {
    service.codedeploy().is_some_and(|cd| !cd.hooks.is_empty())
}

/// Services whose deployment groups name `alarm` in their own alarm configuration:
/// one BatchGetDeploymentGroups per application. What cannot be read is returned
/// beside what could.
pub(super) async fn services_alarmed_by<'c>(
    client: &CodeDeploy,
    config: &'c Config,
    alarm: &str,
) -> (Vec<&'c ServiceConfig>, Vec<AwsError>) {
    let mut by_application: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for service in &config.services {
        if let Some(cd) = service.codedeploy() {
            let names = by_application.entry(cd.application.as_str()).or_default();
            if !names.contains(&cd.deployment_group) {
                names.push(cd.deployment_group.clone());
            }
        }
    }
    let lookups = join_all(
        by_application
            .iter()
            .map(|(application, names)| client.groups(application, names)),
    )
    .await;
    let (mut services, mut errors) = (Vec::new(), Vec::new());
    for lookup in lookups {
        match lookup {
            Ok(found) => services.extend(
                found
                    .into_iter()
                    .filter(|g| g.alarm_names.iter().any(|a| a == alarm))
                    .filter_map(|g| config.service_for_group(&g.application, &g.deployment_group)),
            ),
            Err(e) => errors.push(e),
        }
    }
    (services, errors)
}

/// The active deployment id named in a DeploymentLimitExceededException message
/// ("... already has an active Deployment 'd-…'"), when present.
fn active_deployment_from(message: &str) -> Option<String> {
    let start = message.find("d-")?;
    let id: String = message[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (id.len() > 2).then_some(id)
}

/// Green and blue from the deployment target's task sets (GetDeploymentTarget),
/// turned into ARNs with DescribeTargetGroups; the load balancer is the one of the
/// group's production listener.
pub async fn analysis_targets(
    traffic: &DeploymentTraffic,
    production_listener: Option<&str>,
    elb: &impl TrafficReader,
) -> Result<Targets, TargetsError> {
    let (Some(green), Some(blue)) = (&traffic.green_target_group, &traffic.blue_target_group)
    else {
        return Err(TargetsError::Unresolved("CodeDeploy names no Green and Blue task sets with target groups for this deployment (GetDeploymentTarget taskSetsInfo)".into()));
    };
    let load_balancer = production_listener
        .and_then(load_balancer_of)
        .ok_or_else(|| {
            TargetsError::Unresolved(
            "the deployment group has no production listener: no load balancer to read metrics of"
                .into(),
        )
        })?;
    let found = elb
        .target_groups_named(&[green.clone(), blue.clone()])
        .await?;
    let arn_of = |name: &str| {
        found
            .iter()
            .find(|t| t.name == name)
            .map(|t| target_group_dimension(&t.arn))
            .ok_or_else(|| {
                TargetsError::Unresolved(format!(
                    "target group {name} not found (DescribeTargetGroups)"
                ))
            })
    };
    Ok(Targets {
        load_balancer,
        green_target_group: arn_of(green)?,
        blue_target_group: arn_of(blue)?,
    })
}
/// Env var: hook function name or ARN for the AppSpec; `{event}` is replaced by the event name.
pub const ENV_HOOK_FUNCTION: &str = "GREENLIGHT_HOOK_FUNCTION";

/// Hook function name for `event`: `GREENLIGHT_HOOK_FUNCTION` with `{event}` replaced.
pub fn hook_function(pattern: &str, event: LifecycleEvent) -> String {
    pattern.replace("{event}", event.as_str())
}

/// The ECS AppSpec (JSON), per the CodeDeploy user guide's "AppSpec file example for an
/// Amazon ECS deployment": version 0.0, one TargetService, hooks as a list of one-key maps.
pub(crate) fn render_appspec(
    task_definition_arn: &str,
    container: &str,
    port: u16,
    hooks: &[LifecycleEvent],
    hook_pattern: &str,
) -> String {
    use serde_json::{json, Value};
    let hooks: Vec<Value> = hooks
        .iter()
        .map(|event| json!({ event.as_str(): hook_function(hook_pattern, *event) }))
        .collect();
    let mut appspec = json!({
        "version": 0.0,
        "Resources": [{
            "TargetService": {
                "Type": "AWS::ECS::Service",
                "Properties": {
                    "TaskDefinition": task_definition_arn,
                    "LoadBalancerInfo": { "ContainerName": container, "ContainerPort": port }
                }
            }
        }]
    });
    if !hooks.is_empty() {
        appspec["Hooks"] = Value::Array(hooks);
    }
    appspec.to_string()
}

fn view(summary: DeploymentSummary) -> DeploymentView {
    let marker = summary
        .description
        .as_deref()
        .and_then(DeploymentMarker::parse)
        .unwrap_or_default();
    let phase = match summary.status.as_str() {
        s if IN_FLIGHT_STATUSES.contains(&s) => Phase::InFlight,
        "Succeeded" => Phase::Succeeded,
        "Stopped" => Phase::Stopped,
        _ => Phase::Failed,
    };
    DeploymentView {
        id: summary.deployment_id,
        phase,
        status: summary.status,
        created_at: summary.created_at,
        image_digest: marker.image_digest,
        image_tag: marker.image_tag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CodeDeploy backend reads the image from the marker in each description.
    #[test]
    fn codedeploy_views_take_the_image_from_the_marker() {
        let summary = DeploymentSummary {
            deployment_id: "d-1".into(),
            application: "a".into(),
            deployment_group: "g".into(),
            status: "Stopped".into(),
            description: Some(
                "Greenlight: web-app:v2 [greenlight service=web tag=v2 digest=sha256:ab]".into(),
            ),
            created_at: Some(5),
        };
        let seen = view(summary);
        assert_eq!(seen.phase, Phase::Stopped);
        assert_eq!(seen.image_digest.as_deref(), Some("sha256:ab"));
        assert_eq!(seen.image_tag.as_deref(), Some("v2"));
        let in_flight = view(DeploymentSummary {
            status: "Ready".into(),
            description: None,
            ..DeploymentSummary {
                deployment_id: "d-2".into(),
                application: "a".into(),
                deployment_group: "g".into(),
                status: String::new(),
                description: None,
                created_at: None,
            }
        });
        assert_eq!(in_flight.phase, Phase::InFlight);
        assert_eq!(in_flight.image_digest, None);
    }

    #[test]
    fn appspec_names_the_task_definition_container_port_and_hooks() {
        let appspec = render_appspec(
            "arn:td:8",
            "web",
            8080,
            &[
                LifecycleEvent::AfterAllowTestTraffic,
                LifecycleEvent::AfterAllowTraffic,
            ],
            "CodeDeployHook_greenlight-{event}",
        );
        let v: serde_json::Value = serde_json::from_str(&appspec).unwrap();
        let props = &v["Resources"][0]["TargetService"]["Properties"];
        assert_eq!(
            v["Resources"][0]["TargetService"]["Type"],
            "AWS::ECS::Service"
        );
        assert_eq!(props["TaskDefinition"], "arn:td:8");
        assert_eq!(props["LoadBalancerInfo"]["ContainerName"], "web");
        assert_eq!(props["LoadBalancerInfo"]["ContainerPort"], 8080);
        assert_eq!(
            v["Hooks"][0]["AfterAllowTestTraffic"],
            "CodeDeployHook_greenlight-AfterAllowTestTraffic"
        );
        assert_eq!(
            v["Hooks"][1]["AfterAllowTraffic"],
            "CodeDeployHook_greenlight-AfterAllowTraffic"
        );
        let single = render_appspec(
            "a",
            "web",
            80,
            &[LifecycleEvent::AfterAllowTestTraffic],
            "arn:aws:lambda:us-east-1:1:function:hook",
        );
        assert!(single
            .contains(r#"{"AfterAllowTestTraffic":"arn:aws:lambda:us-east-1:1:function:hook"}"#));
        assert!(!render_appspec("a", "web", 80, &[], "").contains("Hooks"));
    }

    #[test]
    fn the_active_deployment_is_read_from_the_limit_message() {
        let message =
            "The Deployment Group 'web-dg' already has an active Deployment 'd-ABCD1234E'";
        assert_eq!(
            active_deployment_from(message).as_deref(),
            Some("d-ABCD1234E")
        );
        assert_eq!(active_deployment_from("busy"), None);
    }

    use crate::aws::elb::fake::Elb;

    #[tokio::test]
    async fn codedeploy_green_is_its_green_task_set() {
        let traffic = DeploymentTraffic {
            green_target_group: Some("web-b".into()),
            blue_target_group: Some("web-a".into()),
            allow_traffic_started_ms: Some(1),
            ..DeploymentTraffic::default()
        };
        let elb = Elb { forwards: vec![] };
        let targets = analysis_targets(
            &traffic,
            Some("arn:aws:elasticloadbalancing:us-east-1:1:listener/app/web/9c/80"),
            &elb,
        )
        .await
        .unwrap();
        assert_eq!(targets.green_target_group, "targetgroup/web-b/0f");
        assert_eq!(targets.load_balancer, "app/web/9c");
        assert!(analysis_targets(&DeploymentTraffic::default(), None, &elb)
            .await
            .unwrap_err()
            .to_string()
            .contains("taskSetsInfo"));
    }
}
