//! Pure decisions of deploy-on-push: the rendered task definition, the AppSpec, the
//! hook function names, and the exactly-once rule. No AWS calls here.

use aws_sdk_ecs::types::{ContainerDefinition, Tag, TaskDefinition};
use greenlight::aws::{DeploymentSummary, IN_FLIGHT_STATUSES};
use greenlight::marker::DeploymentMarker;
use greenlight::LifecycleEvent;
use serde_json::{json, Value};

/// Tag keys Greenlight writes on the task definitions it registers.
pub const TAG_IMAGE_TAG: &str = "greenlight:image-tag";
pub const TAG_IMAGE_DIGEST: &str = "greenlight:image-digest";
pub const TAG_SERVICE: &str = "greenlight:service";

/// Why a task definition could not be rendered. Retrying cannot help: config or
/// task definition must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("task definition {family} has no container named {container:?} (it has: {available}); fix services[].container")]
    NoSuchContainer {
        family: String,
        container: String,
        available: String,
    },
    #[error("container {container:?} of task definition {family} has no port mapping; set services[].container_port")]
    NoPort { family: String, container: String },
}

/// The current task definition with `container`'s image replaced by `image`
/// (digest-pinned); every other field as it was. Also returns the container port
/// (config override, else the container's first port mapping).
pub fn render_task_definition(
    current: &TaskDefinition,
    container: &str,
    image: &str,
    port_override: Option<u16>,
) -> Result<(TaskDefinition, u16), RenderError> {
    let family = current.family().unwrap_or("?").to_string();
    let containers = current.container_definitions();
    let Some(index) = containers.iter().position(|c| c.name() == Some(container)) else {
        return Err(RenderError::NoSuchContainer {
            family,
            container: container.to_string(),
            available: containers
                .iter()
                .filter_map(|c| c.name())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let port = match port_override {
        Some(port) => port,
        None => containers[index]
            .port_mappings()
            .iter()
            .find_map(|m| m.container_port())
            .and_then(|p| u16::try_from(p).ok())
            .ok_or(RenderError::NoPort {
                family: family.clone(),
                container: container.to_string(),
            })?,
    };
    let mut rendered = current.clone();
    let mut definitions: Vec<ContainerDefinition> = containers.to_vec();
    definitions[index].image = Some(image.to_string());
    rendered.container_definitions = Some(definitions);
    Ok((rendered, port))
}

/// The existing tags, minus Greenlight's previous ones, plus this push's.
pub fn render_tags(existing: &[Tag], service: &str, image_tag: &str, digest: &str) -> Vec<Tag> {
    let ours = [TAG_IMAGE_TAG, TAG_IMAGE_DIGEST, TAG_SERVICE];
    let mut tags: Vec<Tag> = existing
        .iter()
        .filter(|t| !t.key().is_some_and(|k| ours.contains(&k)))
        .cloned()
        .collect();
    for (key, value) in [
        (TAG_SERVICE, service),
        (TAG_IMAGE_TAG, image_tag),
        (TAG_IMAGE_DIGEST, digest),
    ] {
        tags.push(Tag::builder().key(key).value(value).build());
    }
    tags
}

/// Hook function name for `event`: `GREENLIGHT_HOOK_FUNCTION` with `{event}` replaced.
pub fn hook_function(pattern: &str, event: LifecycleEvent) -> String {
    pattern.replace("{event}", event.as_str())
}

/// The ECS AppSpec (JSON), per the CodeDeploy user guide's "AppSpec file example for an
/// Amazon ECS deployment": version 0.0, one TargetService, hooks as a list of one-key maps.
pub fn render_appspec(
    task_definition_arn: &str,
    container: &str,
    port: u16,
    hooks: &[LifecycleEvent],
    hook_pattern: &str,
) -> String {
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

/// The deployment description: readable, with the marker the hook reads back.
pub fn description(service: &str, repository: &str, tag: &str, digest: &str) -> String {
    let marker = DeploymentMarker {
        service: Some(service.to_string()),
        image_tag: Some(tag.to_string()),
        image_digest: Some(digest.to_string()),
    };
    format!(
        "Greenlight: {repository}:{tag} ({}) {}",
        short_digest(digest),
        marker.render()
    )
}

pub fn short_digest(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// What to do with a push, given the group's recent deployments (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushDecision {
    /// This image is already deployed or deploying: a redelivery, or a second tag for one digest.
    Duplicate {
        deployment_id: String,
    },
    /// A deployment started after this push happened: the push is stale (delivered late or out of order).
    Stale {
        newer_deployment_id: String,
    },
    /// Another image is in flight; `on_busy` decides.
    Busy {
        in_flight_id: String,
    },
    Deploy,
}

pub fn is_in_flight(status: &str) -> bool {
    IN_FLIGHT_STATUSES.contains(&status)
}

fn digest_of(deployment: &DeploymentSummary) -> Option<String> {
    deployment
        .description
        .as_deref()
        .and_then(DeploymentMarker::parse)
        .and_then(|m| m.image_digest)
}

/// The push time's granularity: a deployment created within this of a push is not
/// proof the push is older (then the push is handled as busy, and the queue keeps
/// the newest image anyway).
pub const CLOCK_SLACK_MS: i64 = 1000;

/// The exactly-once rule. ECR and CodeDeploy hold all the state: the digest in each
/// deployment's marker, and its creation time against the push's event time.
/// 1. An in-flight deployment of this digest: duplicate.
/// 2. The newest deployment is of this digest: duplicate, unless it failed or was
///    stopped and the push came after it (a deliberate retry).
/// 3. The newest deployment was created after the push happened: stale. EventBridge
///    times have whole seconds, so "after" means more than [`CLOCK_SLACK_MS`] after.
/// 4. Another deployment in flight: busy.
/// 5. Otherwise: deploy.
pub fn decide_push(
    digest: &str,
    push_time: Option<i64>,
    recent: &[DeploymentSummary],
) -> PushDecision {
    if let Some(d) = recent
        .iter()
        .find(|d| is_in_flight(&d.status) && digest_of(d).as_deref() == Some(digest))
    {
        return PushDecision::Duplicate {
            deployment_id: d.deployment_id.clone(),
        };
    }
    if let Some(newest) = recent.first() {
        let pushed_after = match (push_time, newest.created_at) {
            (Some(push), Some(created)) => push > created,
            _ => false,
        };
        if digest_of(newest).as_deref() == Some(digest) {
            let ended_badly = matches!(newest.status.as_str(), "Failed" | "Stopped");
            if !(ended_badly && pushed_after) {
                return PushDecision::Duplicate {
                    deployment_id: newest.deployment_id.clone(),
                };
            }
        } else if let (Some(push), Some(created)) = (push_time, newest.created_at) {
            if created > push + CLOCK_SLACK_MS {
                return PushDecision::Stale {
                    newer_deployment_id: newest.deployment_id.clone(),
                };
            }
        }
    }
    if let Some(d) = recent.iter().find(|d| is_in_flight(&d.status)) {
        return PushDecision::Busy {
            in_flight_id: d.deployment_id.clone(),
        };
    }
    PushDecision::Deploy
}

/// CodePipeline's idempotency token for a push: one execution per service and digest.
pub fn pipeline_token(service: &str, digest: &str) -> String {
    let clean: String = service
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("greenlight-{clean}-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{NetworkMode, PortMapping};

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn task_definition() -> TaskDefinition {
        TaskDefinition::builder()
            .family("web")
            .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web:7")
            .revision(7)
            .network_mode(NetworkMode::Awsvpc)
            .cpu("256")
            .memory("512")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("sidecar")
                    .image("public.ecr.aws/envoy:1")
                    .build(),
            )
            .container_definitions(
                ContainerDefinition::builder()
                    .name("web")
                    .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app:v1")
                    .port_mappings(PortMapping::builder().container_port(8080).build())
                    .build(),
            )
            .build()
    }

    fn deployment(id: &str, status: &str, digest: Option<&str>, created: i64) -> DeploymentSummary {
        DeploymentSummary {
            deployment_id: id.into(),
            application: "web-app".into(),
            deployment_group: "web-dg".into(),
            status: status.into(),
            description: digest.map(|d| description("web", "web-app", "v1", d)),
            created_at: Some(created * 1000),
        }
    }

    #[test]
    fn only_the_named_containers_image_changes() {
        let current = task_definition();
        let (rendered, port) =
            render_task_definition(&current, "web", "repo@sha256:ab", None).unwrap();
        assert_eq!(port, 8080);
        assert_eq!(
            rendered.container_definitions()[1].image(),
            Some("repo@sha256:ab")
        );
        assert_eq!(
            rendered.container_definitions()[0],
            current.container_definitions()[0]
        );
        let mut expected = current.clone();
        expected.container_definitions = rendered.container_definitions.clone();
        assert_eq!(rendered, expected, "nothing else changed");
    }

    #[test]
    fn a_missing_container_or_port_names_both_sides() {
        let err = render_task_definition(&task_definition(), "api", "x", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "task definition web has no container named \"api\" (it has: sidecar, web); fix services[].container"
        );
        let err = render_task_definition(&task_definition(), "sidecar", "x", None).unwrap_err();
        assert!(matches!(err, RenderError::NoPort { .. }));
        let (_, port) =
            render_task_definition(&task_definition(), "sidecar", "x", Some(9000)).unwrap();
        assert_eq!(port, 9000);
    }

    #[test]
    fn tags_keep_the_users_and_replace_greenlights() {
        let existing = [
            Tag::builder().key("team").value("platform").build(),
            Tag::builder().key(TAG_IMAGE_TAG).value("v0").build(),
        ];
        let tags = render_tags(&existing, "web", "v1", DIGEST);
        let pairs: Vec<_> = tags
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("team", "platform"),
                (TAG_SERVICE, "web"),
                (TAG_IMAGE_TAG, "v1"),
                (TAG_IMAGE_DIGEST, DIGEST)
            ]
        );
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
        let v: Value = serde_json::from_str(&appspec).unwrap();
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
    }

    #[test]
    fn first_push_deploys_and_redelivery_is_a_duplicate() {
        assert_eq!(
            decide_push(DIGEST, Some(100_000), &[]),
            PushDecision::Deploy
        );
        let after_first = [deployment("d-1", "InProgress", Some(DIGEST), 105)];
        assert_eq!(
            decide_push(DIGEST, Some(100_000), &after_first),
            PushDecision::Duplicate {
                deployment_id: "d-1".into()
            }
        );
        let succeeded = [deployment("d-1", "Succeeded", Some(DIGEST), 105)];
        assert_eq!(
            decide_push(DIGEST, Some(100_000), &succeeded),
            PushDecision::Duplicate {
                deployment_id: "d-1".into()
            }
        );
    }

    #[test]
    fn a_second_tag_for_the_same_digest_is_a_duplicate() {
        // The second tag was pushed after the first deployment started.
        let recent = [deployment("d-1", "InProgress", Some(DIGEST), 105)];
        assert_eq!(
            decide_push(DIGEST, Some(200_000), &recent),
            PushDecision::Duplicate {
                deployment_id: "d-1".into()
            }
        );
        let done = [deployment("d-1", "Succeeded", Some(DIGEST), 105)];
        assert_eq!(
            decide_push(DIGEST, Some(200_000), &done),
            PushDecision::Duplicate {
                deployment_id: "d-1".into()
            }
        );
    }

    #[test]
    fn a_late_push_older_than_the_newest_deployment_is_stale() {
        let recent = [
            deployment("d-2", "Succeeded", Some(OTHER), 300),
            deployment("d-1", "Succeeded", Some(DIGEST), 105),
        ];
        assert_eq!(
            decide_push(DIGEST, Some(100_000), &recent),
            PushDecision::Stale {
                newer_deployment_id: "d-2".into()
            }
        );
    }

    #[test]
    fn a_new_image_while_another_is_in_flight_is_busy() {
        let recent = [deployment("d-1", "InProgress", Some(OTHER), 100)];
        assert_eq!(
            decide_push(DIGEST, Some(200_000), &recent),
            PushDecision::Busy {
                in_flight_id: "d-1".into()
            }
        );
    }

    #[test]
    fn re_pushing_a_failed_image_later_is_a_deliberate_retry() {
        let recent = [deployment("d-1", "Failed", Some(DIGEST), 105)];
        assert_eq!(
            decide_push(DIGEST, Some(500_000), &recent),
            PushDecision::Deploy
        );
        assert_eq!(
            decide_push(DIGEST, Some(100_000), &recent),
            PushDecision::Duplicate {
                deployment_id: "d-1".into()
            }
        );
    }

    #[test]
    fn pipeline_tokens_are_per_service_and_digest_and_valid() {
        let token = pipeline_token("web app!", DIGEST);
        assert!(
            token.len() <= 128 && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{token}"
        );
        assert_eq!(token, pipeline_token("web app!", DIGEST));
        assert_ne!(token, pipeline_token("web app!", OTHER));
    }
}
