//! Pure decisions of deploy-on-push: the exactly-once rule, the same for every
//! deployment path. No AWS calls here; pinning the image into the task definition
//! is the seam's ([`greenlight::deploy::pin`]).

use greenlight::deploy::{DeploymentView, History, Phase};

pub use greenlight::deploy::pin::{description, short_digest};

/// What to do with a push, given what the group is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushDecision {
    /// This image is already deployed or deploying: a redelivery, or a second tag for one digest.
    Duplicate { deployment_id: String },
    /// A deployment started after this push happened: the push is stale (delivered late or out of order).
    Stale { newer_deployment_id: String },
    /// Another image is in flight; `on_busy` decides.
    Busy { in_flight_id: String },
    /// Nothing in the group's history stands in the way. Before starting, the
    /// service's running image is compared with the push ([`greenlight::deploy::pin::serving_digest`]).
    Deploy,
}

fn digest_of(deployment: &DeploymentView) -> Option<&str> {
    deployment.image_digest.as_deref()
}

/// The push time's granularity: a deployment created within this of a push is not
/// proof the push is older (then the push is handled as busy, and the queue keeps
/// the newest image anyway).
pub const CLOCK_SLACK_MS: i64 = 1000;

/// How far back the history is read when a push carries no time: EventBridge
/// retries an event for at most 24 hours.
pub const UNDATED_LOOKBACK_MS: i64 = 24 * 60 * 60 * 1000;

/// From when the group's history is read for a push: its deployments created since
/// the push (less the clock slack). That slice's length depends on how late the
/// event is, never on how long the group's history is.
pub fn history_since(push_time: Option<i64>, now_ms: i64) -> i64 {
    match push_time {
        Some(push) => push - CLOCK_SLACK_MS,
        None => now_ms - UNDATED_LOOKBACK_MS,
    }
}

/// The exactly-once rule. CodeDeploy, ECS and ECR hold all the state: the digest in
/// each deployment's marker, its creation time against the push's event time, and
/// the image the service runs. `history` holds the deployments in flight and those
/// created since [`history_since`], in any order (AWS documents none).
/// 1. An in-flight deployment of this digest: duplicate.
/// 2. The newest deployment created since the push is of this digest: duplicate,
///    unless it failed or was stopped and the push came after it (a deliberate
///    retry). Of another digest and created more than [`CLOCK_SLACK_MS`] after the
///    push: stale (EventBridge times have whole seconds).
/// 3. Another deployment in flight: busy.
/// 4. Otherwise: deploy, unless the service already runs this digest (checked by
///    the caller with [`greenlight::deploy::pin::serving_digest`], from the task definition it reads anyway).
pub fn decide_push(digest: &str, push_time: Option<i64>, history: &History) -> PushDecision {
    if let Some(d) = history
        .in_flight
        .iter()
        .find(|d| digest_of(d) == Some(digest))
    {
        return PushDecision::Duplicate {
            deployment_id: d.id.clone(),
        };
    }
    if let Some(newest) = newest(&history.since) {
        let pushed_after = match (push_time, newest.created_at) {
            (Some(push), Some(created)) => push > created,
            _ => false,
        };
        if digest_of(newest) == Some(digest) {
            let ended_badly = matches!(newest.phase, Phase::Failed | Phase::Stopped);
            if !(ended_badly && pushed_after) {
                return PushDecision::Duplicate {
                    deployment_id: newest.id.clone(),
                };
            }
        } else if let (Some(push), Some(created)) = (push_time, newest.created_at) {
            if created > push + CLOCK_SLACK_MS {
                return PushDecision::Stale {
                    newer_deployment_id: newest.id.clone(),
                };
            }
        }
    }
    if let Some(d) = newest(&history.in_flight) {
        return PushDecision::Busy {
            in_flight_id: d.id.clone(),
        };
    }
    PushDecision::Deploy
}

/// The most recently created deployment; ties go to the greater id, so the answer
/// never depends on the order the list came in.
fn newest(deployments: &[DeploymentView]) -> Option<&DeploymentView> {
    deployments
        .iter()
        .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn deployment(id: &str, status: &str, digest: Option<&str>, created: i64) -> DeploymentView {
        DeploymentView {
            id: id.into(),
            phase: match status {
                "Succeeded" => Phase::Succeeded,
                "Failed" => Phase::Failed,
                "Stopped" => Phase::Stopped,
                _ => Phase::InFlight,
            },
            status: status.into(),
            created_at: Some(created * 1000),
            image_digest: digest.map(str::to_string),
            image_tag: Some("v1".into()),
        }
    }

    /// The history the adapter would return for a push at `push_s`: in-flight
    /// deployments, and those created since the push (less the slack), in the
    /// order given.
    fn history(push_s: i64, all: &[DeploymentView]) -> History {
        let since = history_since(Some(push_s * 1000), 0);
        History {
            in_flight: all
                .iter()
                .filter(|d| d.phase == Phase::InFlight)
                .cloned()
                .collect(),
            since: all
                .iter()
                .filter(|d| d.created_at.unwrap_or_default() >= since)
                .cloned()
                .collect(),
        }
    }

    fn decide(push_s: i64, all: &[DeploymentView]) -> PushDecision {
        decide_push(DIGEST, Some(push_s * 1000), &history(push_s, all))
    }

    #[test]
    fn first_push_deploys_and_redelivery_is_a_duplicate() {
        assert_eq!(decide(100, &[]), PushDecision::Deploy);
        let after_first = [deployment("d-1", "InProgress", Some(DIGEST), 105)];
        assert_eq!(
            decide(100, &after_first),
            PushDecision::Duplicate {
                deployment_id: "d-1".into()
            }
        );
        let succeeded = [deployment("d-1", "Succeeded", Some(DIGEST), 105)];
        assert_eq!(
            decide(100, &succeeded),
            PushDecision::Duplicate {
                deployment_id: "d-1".into()
            }
        );
    }

    #[test]
    fn a_second_tag_for_the_same_digest_is_a_duplicate_while_in_flight() {
        // The second tag was pushed after the first deployment started.
        let recent = [deployment("d-1", "InProgress", Some(DIGEST), 105)];
        assert_eq!(
            decide(200, &recent),
            PushDecision::Duplicate {
                deployment_id: "d-1".into()
            }
        );
        // Once it succeeded, the history since the push is empty: the caller compares
        // the running image (serving_digest) before starting anything.
        let done = [deployment("d-1", "Succeeded", Some(DIGEST), 105)];
        assert_eq!(decide(200, &done), PushDecision::Deploy);
    }

    #[test]
    fn a_late_push_older_than_the_newest_deployment_is_stale() {
        let recent = [
            deployment("d-2", "Succeeded", Some(OTHER), 300),
            deployment("d-1", "Succeeded", Some(DIGEST), 105),
        ];
        assert_eq!(
            decide(100, &recent),
            PushDecision::Stale {
                newer_deployment_id: "d-2".into()
            }
        );
        // Within the clock slack it is not proof: busy or deploy decide instead.
        let close = [deployment("d-2", "Succeeded", Some(OTHER), 101)];
        assert_eq!(decide(100, &close), PushDecision::Deploy);
    }

    #[test]
    fn a_new_image_while_another_is_in_flight_is_busy() {
        let recent = [deployment("d-1", "InProgress", Some(OTHER), 100)];
        assert_eq!(
            decide(200, &recent),
            PushDecision::Busy {
                in_flight_id: "d-1".into()
            }
        );
    }

    #[test]
    fn re_pushing_a_failed_image_later_is_a_deliberate_retry() {
        let recent = [deployment("d-1", "Failed", Some(DIGEST), 105)];
        assert_eq!(decide(500, &recent), PushDecision::Deploy);
        assert_eq!(
            decide(100, &recent),
            PushDecision::Duplicate {
                deployment_id: "d-1".into()
            }
        );
    }

    #[test]
    fn the_decision_does_not_depend_on_the_order_history_arrives_in() {
        // A stale push (d-4 of another image started after it), with older
        // deployments around it; every order of the same history decides the same.
        let all = [
            deployment("d-1", "Succeeded", Some(OTHER), 50),
            deployment("d-2", "Failed", Some(DIGEST), 120),
            deployment("d-4", "Stopped", Some(OTHER), 140),
            deployment("d-3", "Succeeded", Some(OTHER), 110),
        ];
        let expected = PushDecision::Stale {
            newer_deployment_id: "d-4".into(),
        };
        let mut order: Vec<usize> = (0..all.len()).collect();
        let mut seen = 0;
        loop {
            let shuffled: Vec<DeploymentView> = order.iter().map(|&i| all[i].clone()).collect();
            assert_eq!(decide(100, &shuffled), expected, "{order:?}");
            seen += 1;
            // Next permutation (lexicographic).
            let Some(i) = (0..order.len() - 1)
                .rev()
                .find(|&i| order[i] < order[i + 1])
            else {
                break;
            };
            let j = (i + 1..order.len())
                .rev()
                .find(|&j| order[j] > order[i])
                .unwrap();
            order.swap(i, j);
            order[i + 1..].reverse();
        }
        assert_eq!(seen, 24, "every order was tried");
    }

    #[test]
    fn the_history_read_starts_at_the_push_or_a_day_back() {
        assert_eq!(history_since(Some(100_000), 999_999_999), 99_000);
        assert_eq!(
            history_since(None, 999_999_999),
            999_999_999 - UNDATED_LOOKBACK_MS
        );
    }
}
