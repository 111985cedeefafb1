//! Promotion, decided: whether a digest that completed in one service may go to
//! the service that promotes from it, from what the release ledger holds. Pure: the
//! handler reads the two services' attempts, asks here, then acts.
//!
//! Never promoted (unless a person forces it, with a reason that is recorded):
//! - a digest whose source deployment is unknown, failed or rolled back;
//! - a digest revoked: an alarm of the source fired during its soak, or a later
//!   deployment of the same digest in the source rolled back;
//! - a digest older (pushed earlier) than what the target last deployed;
//! - the same promotion twice (the push path's exactly-once rule sees the target
//!   already deploying or running it).

use greenlight::config::{Approval, ServiceConfig};
use greenlight::events::PromotionDue;
use greenlight::ledger::{Entry, Outcome};

use crate::PushedImage;

/// What to do with a due promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromotionDecision {
    /// Deploy this image to the target, by the target's own path.
    Promote(Box<PushedImage>),
    /// Verified; `approval: manual` waits for `greenlight promote`.
    AwaitApproval {
        tag: Option<String>,
    },
    Refuse {
        reason: String,
    },
}

/// Decides a due promotion from the source's recent attempts (newest first) and the
/// target's.
pub fn decide(
    due: &PromotionDue,
    target: &ServiceConfig,
    source_entries: &[Entry],
    target_entries: &[Entry],
    region: &str,
) -> PromotionDecision {
    let refuse = |reason: String| PromotionDecision::Refuse { reason };
    let source = source_entries
        .iter()
        .find(|e| e.deployment_id == due.source_deployment);
    if due.forced.is_none() {
        if let Some(reason) = why_not(due, source, source_entries, target_entries) {
            return refuse(reason);
        }
        let waits = target
            .promote
            .as_ref()
            .is_some_and(|p| p.approval == Approval::Manual);
        if waits && due.approved_by.is_none() {
            return PromotionDecision::AwaitApproval {
                tag: source.and_then(|s| s.image_tag.clone()),
            };
        }
    }
    let tag = source
        .and_then(|s| s.image_tag.clone())
        .unwrap_or_else(|| short(&due.digest).to_string());
    let Some(uri) = source.and_then(|s| s.image.clone()) else {
        return refuse(format!(
            "the ledger has no image URI for {} in {}: deploy it with greenlight deploy {} --digest {}",
            short(&due.digest),
            due.from,
            target.name,
            due.digest
        ));
    };
    PromotionDecision::Promote(Box::new(PushedImage {
        repository: target.repository.clone(),
        tag,
        digest: due.digest.clone(),
        uri,
        // Lead time runs from the original push.
        pushed_at: source.and_then(|s| s.pushed_at),
        region: Some(region.to_string()),
    }))
}

/// Why the digest may not be promoted, in words a person can act on; `None` when
/// it proved itself in the source and is newer than what the target runs.
fn why_not(
    due: &PromotionDue,
    source: Option<&Entry>,
    source_entries: &[Entry],
    target_entries: &[Entry],
) -> Option<String> {
    let digest = short(&due.digest);
    let Some(source) = source else {
        return Some(format!(
            "{digest} is unverified: the ledger has no deployment {} of {}",
            due.source_deployment, due.from
        ));
    };
    if source.image_digest.as_deref() != Some(due.digest.as_str()) {
        return Some(format!(
            "{digest} is unverified: deployment {} of {} deployed {}",
            source.deployment_id,
            due.from,
            source
                .image_digest
                .as_deref()
                .map_or("another image", short)
        ));
    }
    match source.outcome {
        Some(Outcome::Succeeded) => {}
        Some(other) => {
            return Some(format!(
                "{digest} is unverified: its deployment {} in {} {}",
                source.deployment_id,
                due.from,
                other.as_str().replace('_', " ")
            ))
        }
        None => {
            return Some(format!(
                "{digest} is unverified: its deployment {} in {} has not completed",
                source.deployment_id, due.from
            ))
        }
    }
    if let Some(by) = &source.revoked_by {
        return Some(format!(
            "{digest} is revoked: {by} fired during its soak in {}",
            due.from
        ));
    }
    let later_failure = source_entries.iter().find(|e| {
        e.image_digest == source.image_digest
            && e.outcome == Some(Outcome::RolledBack)
            && e.started_at > source.started_at
    });
    if let Some(failed) = later_failure {
        return Some(format!(
            "{digest} is revoked: a later deployment of it in {} ({}) rolled back",
            due.from, failed.deployment_id
        ));
    }
    let running = target_entries
        .iter()
        .find(|e| e.outcome == Some(Outcome::Succeeded));
    if let Some(running) = running {
        let newer = match (running.pushed_at, source.pushed_at) {
            (Some(theirs), Some(ours)) => theirs > ours,
            _ => false,
        };
        if newer && running.image_digest != source.image_digest {
            return Some(format!(
                "{digest} is older than what {} runs ({}, pushed later)",
                due.service,
                running.image_tag.as_deref().unwrap_or("?")
            ));
        }
    }
    None
}

/// The promotions a completed deployment of `source` makes due: one per service
/// that promotes from it.
pub fn due_after<'a>(
    services: &'a [ServiceConfig],
    source: &str,
    digest: &str,
    deployment_id: &str,
) -> Vec<(&'a ServiceConfig, PromotionDue)> {
    services
        .iter()
        .filter(|s| s.promote.as_ref().is_some_and(|p| p.from == source))
        .map(|target| {
            (
                target,
                PromotionDue {
                    service: target.name.clone(),
                    from: source.to_string(),
                    digest: digest.to_string(),
                    source_deployment: deployment_id.to_string(),
                    approved_by: None,
                    forced: None,
                },
            )
        })
        .collect()
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use greenlight::events::Forced;
    use greenlight::Config;

    const D: &str = "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
    const E: &str = "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

    fn config(approval: &str) -> Config {
        Config::parse(&format!(
            r#"
services:
  - {{ name: web-staging, repository: web-app, cluster: staging, service: web, container: web, codedeploy: {{ application: web, deployment_group: staging }} }}
  - {{ name: web-prod, repository: web-app, cluster: prod, service: web, container: web, ecs_native: {{}}, promote: {{ from: web-staging, approval: {approval} }} }}
"#
        ))
        .unwrap()
    }

    fn due() -> PromotionDue {
        PromotionDue {
            service: "web-prod".into(),
            from: "web-staging".into(),
            digest: D.into(),
            source_deployment: "d-1".into(),
            approved_by: None,
            forced: None,
        }
    }

    fn attempt(id: &str, digest: &str, outcome: Option<Outcome>, started: i64) -> Entry {
        Entry {
            service: "web-staging".into(),
            deployment_id: id.into(),
            image_digest: Some(digest.into()),
            image_tag: Some("v2".into()),
            image: Some(format!(
                "123.dkr.ecr.us-east-1.amazonaws.com/web-app@{digest}"
            )),
            outcome,
            started_at: Some(started),
            pushed_at: Some(started - 10),
            ..Entry::default()
        }
    }

    fn decided(
        due: &PromotionDue,
        source: &[Entry],
        target: &[Entry],
        approval: &str,
    ) -> PromotionDecision {
        let config = config(approval);
        decide(due, &config.services[1], source, target, "us-east-1")
    }

    fn reason(decision: PromotionDecision) -> String {
        match decision {
            PromotionDecision::Refuse { reason } => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_verified_digest_is_promoted_pinned_with_its_push_time() {
        let source = [attempt("d-1", D, Some(Outcome::Succeeded), 100)];
        let PromotionDecision::Promote(image) = decided(&due(), &source, &[], "auto") else {
            panic!("expected a promotion")
        };
        assert_eq!(image.digest, D);
        assert_eq!(image.repository, "web-app");
        assert!(image.uri.ends_with(D), "{}", image.uri);
        assert_eq!(image.pushed_at, Some(90));
        assert_eq!(image.tag, "v2");
    }

    #[test]
    fn unknown_failed_or_unfinished_sources_are_unverified() {
        assert!(reason(decided(&due(), &[], &[], "auto"))
            .contains("unverified: the ledger has no deployment d-1 of web-staging"));
        let failed = [attempt("d-1", D, Some(Outcome::RolledBack), 100)];
        assert!(reason(decided(&due(), &failed, &[], "auto"))
            .contains("its deployment d-1 in web-staging rolled back"));
        let running = [attempt("d-1", D, None, 100)];
        assert!(reason(decided(&due(), &running, &[], "auto")).contains("has not completed"));
        let other = [attempt("d-1", E, Some(Outcome::Succeeded), 100)];
        assert!(reason(decided(&due(), &other, &[], "auto")).contains("deployed eeeeeeeeeeee"));
    }

    #[test]
    fn a_revoked_digest_is_never_promoted() {
        let mut alarmed = attempt("d-1", D, Some(Outcome::Succeeded), 100);
        alarmed.revoked_by = Some("alarm web-5xx".into());
        assert_eq!(
            reason(decided(&due(), &[alarmed], &[], "auto")),
            "dddddddddddd is revoked: alarm web-5xx fired during its soak in web-staging"
        );
        // Newest first: a later run of the same digest in the source rolled back.
        let source = [
            attempt("d-2", D, Some(Outcome::RolledBack), 200),
            attempt("d-1", D, Some(Outcome::Succeeded), 100),
        ];
        assert!(reason(decided(&due(), &source, &[], "auto"))
            .contains("a later deployment of it in web-staging (d-2) rolled back"));
        // An earlier failure of it does not revoke a later success.
        let source = [
            attempt("d-1", D, Some(Outcome::Succeeded), 200),
            attempt("d-0", D, Some(Outcome::RolledBack), 100),
        ];
        assert!(matches!(
            decided(&due(), &source, &[], "auto"),
            PromotionDecision::Promote(_)
        ));
    }

    #[test]
    fn a_digest_older_than_what_the_target_runs_is_refused() {
        let source = [attempt("d-1", D, Some(Outcome::Succeeded), 100)];
        let mut running = attempt("prod-1", E, Some(Outcome::Succeeded), 500);
        running.image_tag = Some("v3".into());
        assert_eq!(
            reason(decided(&due(), &source, &[running.clone()], "auto")),
            "dddddddddddd is older than what web-prod runs (v3, pushed later)"
        );
        // A rolled-back newer attempt in the target is not what it runs.
        running.outcome = Some(Outcome::RolledBack);
        assert!(matches!(
            decided(&due(), &source, &[running], "auto"),
            PromotionDecision::Promote(_)
        ));
    }

    #[test]
    fn manual_approval_waits_for_a_person_and_forcing_skips_the_checks() {
        let source = [attempt("d-1", D, Some(Outcome::Succeeded), 100)];
        assert_eq!(
            decided(&due(), &source, &[], "manual"),
            PromotionDecision::AwaitApproval {
                tag: Some("v2".into())
            }
        );
        let approved = PromotionDue {
            approved_by: Some("ana".into()),
            ..due()
        };
        assert!(matches!(
            decided(&approved, &source, &[], "manual"),
            PromotionDecision::Promote(_)
        ));
        let failed = [attempt("d-1", D, Some(Outcome::RolledBack), 100)];
        let forced = PromotionDue {
            forced: Some(Forced {
                by: "ana".into(),
                reason: "hotfix".into(),
            }),
            ..due()
        };
        assert!(matches!(
            decided(&forced, &failed, &[], "manual"),
            PromotionDecision::Promote(_)
        ));
    }

    #[test]
    fn a_completion_makes_due_only_the_services_promoting_from_it() {
        let config = config("auto");
        let due = due_after(&config.services, "web-staging", D, "d-1");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0.name, "web-prod");
        assert_eq!(due[0].1.source_deployment, "d-1");
        assert!(due_after(&config.services, "web-prod", D, "x").is_empty());
    }
}
