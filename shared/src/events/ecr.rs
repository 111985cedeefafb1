//! An image pushed to (or deleted from) ECR: EventBridge "ECR Image Action".

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::parse::{eventbridge_kind, foreign, typed, EventError, ECR_IMAGE_ACTION, ECR_SOURCE};

/// An image pushed to (or deleted from) ECR: EventBridge "ECR Image Action".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcrImageAction {
    pub event_id: Option<String>,
    pub account: String,
    pub region: String,
    pub action: String,
    pub result: String,
    pub repository: String,
    pub digest: Option<String>,
    pub tag: Option<String>,
    /// When the push happened (the event's `time`, whole seconds), milliseconds since the epoch.
    pub time: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
struct EcrImageActionDetail {
    action_type: String,
    result: String,
    repository_name: String,
    #[serde(default)]
    image_digest: Option<String>,
    #[serde(default)]
    image_tag: Option<String>,
}

/// The registry host of an account's ECR in a region, with the region's partition DNS
/// suffix (`amazonaws.com.cn` in China, not `amazonaws.com`: AWS's partitions table).
pub fn ecr_registry(account: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region.starts_with("us-isob-") {
        "sc2s.sgov.gov"
    } else if region.starts_with("us-isof-") {
        "csp.hci.ic.gov"
    } else if region.starts_with("us-iso-") {
        "c2s.ic.gov"
    } else if region.starts_with("eu-isoe-") {
        "cloud.adc-e.uk"
    } else {
        "amazonaws.com"
    };
    format!("{account}.dkr.ecr.{region}.{suffix}")
}

impl EcrImageAction {
    const KIND: &'static str = "ECR Image Action event";

    pub(crate) fn is_successful_push(&self) -> bool {
        self.action == "PUSH" && self.result == "SUCCESS"
    }

    /// `<account>.dkr.ecr.<region>.<dns suffix>/<repository>@<digest>`: the pushed image
    /// pinned by digest, so a later push of the same tag cannot change what is deployed.
    pub fn pinned_image(&self) -> Option<String> {
        let digest = self.digest.as_ref()?;
        Some(format!(
            "{}/{}@{}",
            ecr_registry(&self.account, &self.region),
            self.repository,
            digest
        ))
    }

    pub fn parse(value: &Value) -> Result<Self, EventError> {
        match eventbridge_kind(value) {
            Some((ECR_SOURCE, ECR_IMAGE_ACTION)) => {}
            _ => return Err(foreign(value, "ECR Image Action events (source aws.ecr)")),
        }
        let event: EventBridgeEvent<EcrImageActionDetail> = typed(Self::KIND, value)?;
        let time = event.time;
        let account = event
            .account
            .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                EventError::malformed(
                    Self::KIND,
                    "account",
                    "missing or not a 12-digit AWS account id",
                )
            })?;
        let region = event
            .region
            .filter(|r| {
                !r.is_empty()
                    && r.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
            .ok_or_else(|| {
                EventError::malformed(Self::KIND, "region", "missing or not an AWS region name")
            })?;
        let detail = event.detail;
        if !valid_repository_name(&detail.repository_name) {
            return Err(EventError::malformed(
                Self::KIND,
                "detail.repository-name",
                format!("{:?} is not an ECR repository name", detail.repository_name),
            ));
        }
        if let Some(digest) = &detail.image_digest {
            if !valid_digest(digest) {
                return Err(EventError::malformed(
                    Self::KIND,
                    "detail.image-digest",
                    format!("{digest:?} is not a sha256:<64 hex> digest"),
                ));
            }
        }
        if let Some(tag) = &detail.image_tag {
            if !valid_tag(tag) {
                return Err(EventError::malformed(
                    Self::KIND,
                    "detail.image-tag",
                    format!("{tag:?} is not an image tag"),
                ));
            }
        }
        let action = EcrImageAction {
            event_id: event.id,
            account,
            region,
            action: detail.action_type,
            result: detail.result,
            repository: detail.repository_name,
            digest: detail.image_digest,
            tag: detail.image_tag,
            time: time.map(|t| t.timestamp_millis()),
        };
        if action.is_successful_push() && action.digest.is_none() {
            return Err(EventError::malformed(
                Self::KIND,
                "detail.image-digest",
                "missing on a successful push",
            ));
        }
        Ok(action)
    }
}

fn valid_repository_name(name: &str) -> bool {
    // ECR: (?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*, 2-256 chars.
    (2..=256).contains(&name.len())
        && name.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && part.as_bytes()[0].is_ascii_alphanumeric()
                && part.as_bytes()[part.len() - 1].is_ascii_alphanumeric()
        })
}

pub(crate) fn valid_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn valid_tag(tag: &str) -> bool {
    // Docker tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    !tag.is_empty()
        && tag.len() <= 128
        && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.as_bytes()[0] == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}
