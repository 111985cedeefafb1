//! Deploy on push: an ECR image push (EventBridge "ECR Image Action") starts a
//! CodeDeploy blue/green deployment of every service configured for that
//! repository and tag.
//!
//! Status: the event intake (parsing, matching pushes to services, ignoring what
//! does not deploy) is in place; registering the digest-pinned task definition and
//! creating the deployment are the next step (issue "Deploy on push") and answer
//! with a typed `NotImplemented` error until then, so nothing is silently dropped.

use greenlight::events::{DeploymentStateChange, EcrImageAction, EventError};
use greenlight::Config;
use serde::Serialize;
use serde_json::Value;

/// IAM actions this function calls today.
pub const IAM_ACTIONS: &[&str] = &["sns:Publish"];

/// What the handler decided about one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Intake {
    /// Not a push that deploys anything; logged with the reason, no AWS write.
    Ignored { reason: String },
    /// These services deploy the pushed image.
    Deploy {
        services: Vec<String>,
        image: String,
    },
    /// A deployment ended (drives `on_busy: queue` and finish notifications).
    DeploymentEnded {
        application: String,
        group: String,
        state: String,
    },
}

/// Classifies an event: a push to deploy, a push to ignore, or a deployment state change.
pub fn intake(config: &Config, event: &Value) -> Result<Intake, EventError> {
    if event.get("source").and_then(Value::as_str) == Some(greenlight::events::CODEDEPLOY_SOURCE) {
        let change = DeploymentStateChange::parse(event)?;
        return Ok(Intake::DeploymentEnded {
            application: change.application,
            group: change.deployment_group,
            state: change.state,
        });
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
        let reason = if known {
            format!(
                "tag {tag:?} of {} matches no service's tag patterns",
                push.repository
            )
        } else {
            format!("no service deploys from repository {}", push.repository)
        };
        return Ok(ignored(reason));
    }
    Ok(Intake::Deploy {
        services,
        image: push.pinned_image().unwrap_or_default(),
    })
}

fn ignored(reason: String) -> Intake {
    Intake::Ignored { reason }
}

/// Handles one event.
pub async fn handle(config: &Config, event: Value) -> Result<Value, greenlight::Error> {
    let decision = intake(config, &event)?;
    match &decision {
        Intake::Ignored { reason } => tracing::info!(%reason, "push ignored"),
        Intake::Deploy { services, image } => {
            tracing::info!(?services, %image, "push matches services");
            return Err(greenlight::Error::NotImplemented(
                "starting deployments from pushes is not implemented yet (issue: Deploy on push)",
            ));
        }
        Intake::DeploymentEnded {
            application,
            group,
            state,
        } => {
            tracing::info!(%application, %group, %state, "deployment state change")
        }
    }
    Ok(serde_json::to_value(&decision).unwrap_or(Value::Null))
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
                assert!(image.contains("/web-app@sha256:"), "{image}");
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
