//! What an event asks of deploy-on-push: a push to deploy (which services, which
//! image, pinned by digest), a push to ignore (and why), or a deployment of a
//! configured service that changed state. Pure: no AWS call.

use greenlight::deploy::pin::PinnedImage;
use greenlight::events::{
    DeploymentStateChange, EcrImageAction, EcsDeploymentStateChange, EventError, PromotionDue,
};
use greenlight::Config;
use serde::Serialize;
use serde_json::Value;

/// A pushed image, from an ECR event or from ECR itself (queued images).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushedImage {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    /// `<registry>/<repository>@<digest>`.
    pub uri: String,
    /// When it was pushed, milliseconds since the epoch.
    pub pushed_at: Option<i64>,
    pub region: Option<String>,
}

/// What the handler decided about one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Intake {
    /// Not a push that deploys anything; logged with the reason, no AWS write.
    Ignored { reason: String },
    /// These services deploy the pushed image.
    Deploy {
        services: Vec<String>,
        image: PushedImage,
    },
    /// A deployment of a configured service changed state (drives `on_busy: queue`
    /// and finish notifications).
    DeploymentChanged(DeploymentChange),
    /// A promotion is due (its soak ended, or a person sent it).
    Promote(PromotionDue),
}

/// A deployment changed state, on either path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentChange {
    pub service: String,
    /// CodeDeploy's deployment id; ECS's events name none the APIs take.
    pub deployment_id: Option<String>,
    /// START, SUCCESS, FAILURE, STOP, READY, ...
    pub state: String,
    pub terminal: bool,
    pub region: Option<String>,
}

/// Classifies an event: a push to deploy, a push to ignore, or a deployment state change.
pub fn intake(config: &Config, event: &Value) -> Result<Intake, EventError> {
    match event.get("source").and_then(Value::as_str) {
        Some(greenlight::events::CODEDEPLOY_SOURCE) => {
            let change = DeploymentStateChange::parse(event)?;
            let Some(service) =
                config.service_for_group(&change.application, &change.deployment_group)
            else {
                return Ok(ignored(format!(
                    "state change of {}/{}, a deployment group Greenlight does not manage",
                    change.application, change.deployment_group
                )));
            };
            return Ok(Intake::DeploymentChanged(DeploymentChange {
                service: service.name.clone(),
                terminal: change.is_terminal(),
                deployment_id: Some(change.deployment_id),
                state: change.state,
                region: change.region,
            }));
        }
        Some(greenlight::events::ECS_SOURCE) => {
            let change = EcsDeploymentStateChange::parse(event)?;
            let Some(service) = config.service_for_ecs_arn(&change.service_arn) else {
                return Ok(ignored(format!(
                    "deployment state change of {}, a service Greenlight does not manage",
                    change.service_arn
                )));
            };
            return Ok(Intake::DeploymentChanged(DeploymentChange {
                service: service.name.clone(),
                terminal: change.is_terminal(),
                deployment_id: None,
                state: change.state().to_string(),
                region: change.region,
            }));
        }
        Some(greenlight::events::PROMOTION_SOURCE) => {
            let due = PromotionDue::parse(event)?;
            if config.service_by_name(&due.service).is_none() {
                return Ok(ignored(format!(
                    "promotion to {}, a service the configuration no longer has",
                    due.service
                )));
            }
            return Ok(Intake::Promote(due));
        }
        _ => {}
    }
    let push = EcrImageAction::parse(event)?;
    if push.action != "PUSH" {
        return Ok(ignored(format!(
            "{} of {} is not a push",
            push.action, push.repository
        )));
    }
    if push.result != "SUCCESS" {
        return Ok(ignored(format!(
            "push to {} did not succeed ({})",
            push.repository, push.result
        )));
    }
    let Some(tag) = push.tag.as_deref() else {
        return Ok(ignored(format!(
            "untagged push to {}: only tagged images deploy",
            push.repository
        )));
    };
    let services: Vec<String> = config
        .services_for_push(&push.repository, tag)
        .map(|s| s.name.clone())
        .collect();
    if services.is_empty() {
        let known = config
            .services
            .iter()
            .any(|s| s.repository == push.repository);
        let promoted: Vec<String> = config
            .services
            .iter()
            .filter(|s| s.repository == push.repository && s.tags.matches(tag))
            .filter_map(|s| {
                Some(format!(
                    "{} takes digests promoted from {}",
                    s.name,
                    s.promote.as_ref()?.from
                ))
            })
            .collect();
        let reason = if !promoted.is_empty() {
            format!(
                "{}: pushes do not deploy it (greenlight promote does)",
                promoted.join("; ")
            )
        } else if known {
            format!(
                "tag {tag:?} of {} matches no service's tag patterns",
                push.repository
            )
        } else {
            format!("no service deploys from repository {}", push.repository)
        };
        return Ok(ignored(reason));
    }
    // A successful push always has a digest (checked when parsing).
    let image = PushedImage::from_event(&push, tag).ok_or_else(|| EventError::Malformed {
        kind: "ECR Image Action event",
        path: "detail.image-digest".into(),
        message: "missing".into(),
    })?;
    Ok(Intake::Deploy { services, image })
}

fn ignored(reason: String) -> Intake {
    Intake::Ignored { reason }
}

impl PushedImage {
    pub(crate) fn from_event(push: &EcrImageAction, tag: &str) -> Option<PushedImage> {
        Some(PushedImage {
            repository: push.repository.clone(),
            tag: tag.to_string(),
            digest: push.digest.clone()?,
            uri: push.pinned_image()?,
            pushed_at: push.time,
            region: Some(push.region.clone()),
        })
    }

    pub(crate) fn pinned(&self) -> PinnedImage<'_> {
        PinnedImage {
            repository: &self.repository,
            tag: &self.tag,
            digest: &self.digest,
            uri: &self.uri,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
services:
  - { name: web, repository: web-app, tags: ["v*"], cluster: prod, service: web, container: web,
      codedeploy: { application: web-app, deployment_group: web-dg } }
"#;

    fn sample(name: &str) -> Value {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn a_matching_push_deploys_the_service_with_a_pinned_image() {
        let config = Config::parse(CONFIG).unwrap();
        match intake(&config, &sample("ecr-push.json")).unwrap() {
            Intake::Deploy { services, image } => {
                assert_eq!(services, ["web"]);
                assert!(image.uri.contains("/web-app@sha256:"), "{}", image.uri);
                assert_eq!(image.tag, "v1.4.0");
                assert!(image.pushed_at.is_some());
            }
            other => panic!("expected a deploy, got {other:?}"),
        }
    }

    #[test]
    fn failed_pushes_deletes_and_unmatched_tags_are_ignored_with_a_reason() {
        let config = Config::parse(CONFIG).unwrap();
        for (name, reason) in [
            ("ecr-push-failed.json", "did not succeed"),
            ("ecr-delete.json", "is not a push"),
            ("ecr-push-latest.json", "matches no service's tag patterns"),
        ] {
            match intake(&config, &sample(name)).unwrap() {
                Intake::Ignored { reason: got } => assert!(got.contains(reason), "{name}: {got}"),
                other => panic!("{name}: expected ignored, got {other:?}"),
            }
        }
    }

    #[test]
    fn foreign_events_are_errors_not_panics() {
        let config = Config::parse(CONFIG).unwrap();
        let err = intake(&config, &sample("alarm-sns.json")).unwrap_err();
        assert!(matches!(err, EventError::Foreign { .. }), "{err}");
    }
}
