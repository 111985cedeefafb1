//! From what happened to what people are told: one notification per outcome, built
//! here, purely, after the handler has decided and acted (so a branch of the handler
//! never notifies on its own, and every outcome is told the same way on both paths).

use greenlight::config::ServiceConfig;
use greenlight::notify::{Notification, NotificationEvent, Severity};

use crate::plan::short_digest;
use crate::{PushedImage, ServiceOutcome, ServiceReport};

/// The notification for one outcome; `None` for outcomes nobody needs to hear about
/// (a duplicate delivery, an image already running, nothing queued).
pub fn notification(report: &ServiceReport, service: &ServiceConfig) -> Option<Notification> {
    let region = report
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok());
    let name = service.name.as_str();
    let image = report.image.as_ref();
    match &report.outcome {
        ServiceOutcome::Started {
            deployment_id,
            target,
            ..
        } => {
            let image = image?;
            let mut n = started(name, image, target)
                .deployment(deployment_id, region.as_deref())
                .fact("target", target.clone())
                .fact("path", service.path().label());
            if let Some(due) = &report.promotion {
                n = n
                    .fact("promoted_from", format!("{}/{}", due.from, due.source_deployment))
                    .description(format!(
                        "{} ({}) proved itself in {} (deployment {}) and is promoted through {target}; smoke tests gate production traffic.",
                        image.tag,
                        short_digest(&image.digest),
                        due.from,
                        due.source_deployment
                    ));
                if let Some(forced) = &due.forced {
                    n = n
                        .fact("forced_by", forced.by.clone())
                        .fact("forced_reason", forced.reason.clone())
                        .next_step(format!(
                            "Forced by {} past the promotion's checks: {}",
                            forced.by, forced.reason
                        ));
                }
            }
            Some(n)
        }
        ServiceOutcome::PromotionScheduled {
            digest,
            from,
            at_seconds,
            schedule,
        } => Some(
            Notification::new(
                NotificationEvent::PromotionScheduled,
                Severity::Info,
                name,
                format!("{} soaks in {from} before {name}", short_digest(digest)),
            )
            .description(format!(
                "{} completed in {from} with every gate passed. If none of {from}'s alarms fires before {}, it is promoted to {name} (one-time schedule {schedule}).",
                short_digest(digest),
                utc(*at_seconds)
            ))
            .fact("image_digest", digest.clone())
            .fact("promote_at", *at_seconds)
            .fact("source_service", from.clone()),
        ),
        ServiceOutcome::PromotionPending { digest, tag, from } => Some(
            Notification::new(
                NotificationEvent::PromotionPending,
                Severity::Warning,
                name,
                format!(
                    "Promotion of {} to {name} awaits approval",
                    tag.as_deref().unwrap_or(short_digest(digest))
                ),
            )
            .description(format!(
                "{} proved itself in {from} and soaked without an alarm. {name} promotes with approval: manual, so it waits for a person.",
                short_digest(digest)
            ))
            .next_step(format!("Promote: greenlight promote {name} --digest {digest}"))
            .fact("image_digest", digest.clone())
            .fact("source_service", from.clone()),
        ),
        ServiceOutcome::PromotionRefused { digest, reason } => Some(
            Notification::new(
                NotificationEvent::PromotionRefused,
                Severity::Warning,
                name,
                format!("{} is not promoted to {name}", short_digest(digest)),
            )
            .description(reason.clone())
            .next_step(format!(
                "If it must go anyway: greenlight promote {name} --digest {digest} --force --reason \"why\""
            ))
            .fact("image_digest", digest.clone()),
        ),
        ServiceOutcome::PipelineStarted {
            execution_id,
            pipeline,
        } => {
            let target = format!("pipeline {pipeline}");
            Some(
                started(name, image?, &target)
                    .fact("pipeline_execution_id", execution_id.clone())
                    .fact("target", target),
            )
        }
        ServiceOutcome::Stale {
            newer_deployment_id,
        } => Some(skipped(
            name,
            image?,
            &format!("deployment {newer_deployment_id} started after this image was pushed, so it is not deployed over it"),
        )),
        ServiceOutcome::Skipped { in_flight_id } => Some(skipped(
            name,
            image?,
            &format!("deployment {in_flight_id} is in flight and on_busy is skip"),
        )),
        ServiceOutcome::QueueSkipped {
            newer_tag,
            ended_deployment_id,
        } => Some(skipped(
            name,
            image?,
            &format!("a newer image ({newer_tag}) was pushed while deployment {ended_deployment_id} ran; only the newest queued image deploys"),
        )),
        ServiceOutcome::Queued { in_flight_id } => {
            let image = image?;
            Some(
                with_image(
                    Notification::new(
                        NotificationEvent::DeploymentQueued,
                        Severity::Info,
                        name,
                        format!("{}:{} queued", image.repository, image.tag),
                    ),
                    image,
                )
                .description(format!(
                    "Deployment {in_flight_id} is in flight. When it ends, the newest matching image pushed meanwhile is deployed; older queued images are skipped."
                ))
                .fact("in_flight_deployment", in_flight_id.clone()),
            )
        }
        ServiceOutcome::Superseded { stopped_id } => {
            let image = image?;
            Some(
                with_image(
                    Notification::new(
                        NotificationEvent::DeploymentQueued,
                        Severity::Warning,
                        name,
                        format!("{}:{} supersedes {stopped_id}", image.repository, image.tag),
                    ),
                    image,
                )
                .deployment(stopped_id, region.as_deref())
                .description(format!("on_busy is supersede: deployment {stopped_id} was stopped with rollback; this image deploys when the stop completes.")),
            )
        }
        ServiceOutcome::FailedToStart { reason, code } => {
            let image = image?;
            let mut n = with_image(
                Notification::new(
                    NotificationEvent::DeploymentStartFailed,
                    Severity::Error,
                    name,
                    format!("{}:{} could not start", image.repository, image.tag),
                ),
                image,
            )
            .description(reason.clone())
            .next_step("Fix the cause above, then push the image again under a new tag.");
            if let Some(code) = code {
                n = n.fact("error_code", code.clone());
            }
            Some(n)
        }
        ServiceOutcome::Finished {
            deployment_id,
            state,
            image_tag,
            image_digest,
            evidence,
        } => {
            let (severity, what) = match state.as_str() {
                "SUCCESS" => (
                    Severity::Info,
                    "succeeded: production serves the new version",
                ),
                "FAILURE" => (
                    Severity::Error,
                    "failed: rolled back, production serves the previous version",
                ),
                _ => (
                    Severity::Warning,
                    "was stopped: rolled back, production serves the previous version",
                ),
            };
            let tag = image_tag
                .clone()
                .or_else(|| image_digest.as_deref().map(|d| short_digest(d).to_string()))
                .unwrap_or_else(|| "?".into());
            let mut n = Notification::new(
                NotificationEvent::DeploymentFinished,
                severity,
                name,
                format!(
                    "Deployment of {tag} {}",
                    what.split(':').next().unwrap_or(what)
                ),
            )
            .deployment(deployment_id, region.as_deref())
            .description(format!("Deployment {deployment_id} {what}."))
            .fact("state", state.clone())
            .fact("image_tag", tag);
            if let Some(digest) = image_digest {
                n = n.fact("image_digest", digest.clone());
            }
            if let Some(evidence) = evidence {
                n = n.evidence(evidence);
            }
            Some(n)
        }
        ServiceOutcome::Duplicate { .. }
        | ServiceOutcome::AlreadyServing { .. }
        | ServiceOutcome::NothingQueued => None,
    }
}

fn utc(seconds: i64) -> String {
    aws_smithy_types::DateTime::from_secs(seconds)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| seconds.to_string())
}

fn with_image(n: Notification, image: &PushedImage) -> Notification {
    n.image(image.uri.clone())
        .fact("image_tag", image.tag.clone())
        .fact("image_digest", image.digest.clone())
}

fn started(service: &str, image: &PushedImage, target: &str) -> Notification {
    let mut n = with_image(
        Notification::new(
            NotificationEvent::DeploymentStarted,
            Severity::Info,
            service,
            format!("Deploying {}:{}", image.repository, image.tag),
        ),
        image,
    )
    .description(format!(
        "{} ({}) is being deployed through {target}; smoke tests gate production traffic.",
        image.tag,
        short_digest(&image.digest)
    ));
    // Lead time (push to production) is measured from it, in the ledger.
    if let Some(pushed_at) = image.pushed_at {
        n = n.fact("pushed_at", pushed_at);
    }
    n
}

fn skipped(service: &str, image: &PushedImage, why: &str) -> Notification {
    with_image(
        Notification::new(
            NotificationEvent::DeploymentSkipped,
            Severity::Warning,
            service,
            format!("{}:{} skipped", image.repository, image.tag),
        ),
        image,
    )
    .description(why.to_string())
    .next_step("Nothing is lost: push the image again under a new tag to deploy it.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use greenlight::Config;

    fn service() -> ServiceConfig {
        Config::parse(
            "services:\n  - { name: web, repository: web-app, cluster: prod, service: web, container: web, ecs_native: {} }\n",
        )
        .unwrap()
        .services
        .remove(0)
    }

    fn image() -> PushedImage {
        PushedImage {
            repository: "web-app".into(),
            tag: "v2".into(),
            digest: format!("sha256:{}", "c".repeat(64)),
            uri: "123.dkr.ecr.us-east-1.amazonaws.com/web-app@sha256:c".into(),
            pushed_at: None,
            region: Some("us-east-1".into()),
        }
    }

    fn report(outcome: ServiceOutcome) -> ServiceReport {
        ServiceReport {
            service: "web".into(),
            image: Some(image()),
            region: Some("us-east-1".into()),
            outcome,
            trigger: None,
            promotion: None,
        }
    }

    #[test]
    fn every_outcome_people_need_is_told_once_and_the_rest_are_not() {
        let events = |outcome: ServiceOutcome| {
            notification(&report(outcome), &service()).map(|n| n.event.as_str())
        };
        assert_eq!(
            events(ServiceOutcome::Started {
                deployment_id: "arn:aws:ecs:us-east-1:1:service-deployment/prod/web/x".into(),
                task_definition: "td".into(),
                target: "prod/web (ECS blue/green)".into()
            }),
            Some("deployment_started")
        );
        assert_eq!(
            events(ServiceOutcome::Queued {
                in_flight_id: "d-1".into()
            }),
            Some("deployment_queued")
        );
        for skipped in [
            ServiceOutcome::Skipped {
                in_flight_id: "d-1".into(),
            },
            ServiceOutcome::Stale {
                newer_deployment_id: "d-2".into(),
            },
            ServiceOutcome::QueueSkipped {
                newer_tag: "v3".into(),
                ended_deployment_id: "d-1".into(),
            },
        ] {
            assert_eq!(events(skipped), Some("deployment_skipped"));
        }
        assert_eq!(
            events(ServiceOutcome::FailedToStart {
                reason: "no container".into(),
                code: None
            }),
            Some("deployment_start_failed")
        );
        assert_eq!(
            events(ServiceOutcome::Finished {
                deployment_id: "d-1".into(),
                state: "FAILURE".into(),
                image_tag: Some("v2".into()),
                image_digest: None,
                evidence: None
            }),
            Some("deployment_finished")
        );
        for quiet in [
            ServiceOutcome::Duplicate {
                deployment_id: "d-1".into(),
            },
            ServiceOutcome::AlreadyServing {
                task_definition: "td".into(),
            },
            ServiceOutcome::NothingQueued,
        ] {
            assert_eq!(events(quiet), None);
        }
    }

    #[test]
    fn an_ecs_native_start_links_to_the_ecs_console() {
        let n = notification(
            &report(ServiceOutcome::Started {
                deployment_id: "arn:aws:ecs:us-east-1:1:service-deployment/prod/web/abc".into(),
                task_definition: "td".into(),
                target: "prod/web (ECS blue/green)".into(),
            }),
            &service(),
        )
        .unwrap();
        let url = n.console_url.unwrap();
        assert!(
            url.contains("/ecs/v2/clusters/prod/services/web/deployments/abc"),
            "{url}"
        );
        assert!(n.description.contains("prod/web (ECS blue/green)"));
    }
}
