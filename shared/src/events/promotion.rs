//! A promotion that is due: Greenlight's own event ("Greenlight Promotion Due",
//! source `greenlight.promotion`), put on the bus by the soak's one-time schedule
//! when the soak ends, or made by deploy-on-push itself (no soak) or by `greenlight
//! promote`. The same shape everywhere, so one code path decides.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::ecr::valid_digest;
use super::parse::{eventbridge_kind, foreign, non_empty, typed, EventError};

pub const PROMOTION_SOURCE: &str = "greenlight.promotion";
pub const PROMOTION_DUE: &str = "Greenlight Promotion Due";

/// A digest to promote from one service to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionDue {
    /// The service it goes to.
    pub service: String,
    /// The service it proved itself in.
    pub from: String,
    pub digest: String,
    /// The source's deployment of it that completed.
    pub source_deployment: String,
    /// Who let it through (`greenlight promote`); then no approval is awaited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Sent past the checks by a person, with their reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced: Option<Forced>,
}

/// Who forced a promotion, and why (recorded in the ledger and the notification).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forced {
    pub by: String,
    pub reason: String,
}

impl PromotionDue {
    const KIND: &'static str = "Greenlight Promotion Due";

    pub fn parse(value: &Value) -> Result<Self, EventError> {
        if eventbridge_kind(value) != Some((PROMOTION_SOURCE, PROMOTION_DUE)) {
            return Err(foreign(value, "Greenlight Promotion Due events"));
        }
        let detail = value.get("detail").cloned().unwrap_or(Value::Null);
        let due: PromotionDue = typed(Self::KIND, &detail).map_err(|e| match e {
            EventError::Malformed {
                kind,
                path,
                message,
            } => EventError::Malformed {
                kind,
                path: format!("detail.{path}"),
                message,
            },
            other => other,
        })?;
        non_empty(Self::KIND, "detail.service", due.service.clone())?;
        non_empty(Self::KIND, "detail.from", due.from.clone())?;
        non_empty(
            Self::KIND,
            "detail.source_deployment",
            due.source_deployment.clone(),
        )?;
        if !valid_digest(&due.digest) {
            return Err(EventError::malformed(
                Self::KIND,
                "detail.digest",
                format!("{:?} is not a sha256:<64 hex> digest", due.digest),
            ));
        }
        if let Some(forced) = &due.forced {
            non_empty(Self::KIND, "detail.forced.reason", forced.reason.clone())?;
        }
        Ok(due)
    }

    /// As EventBridge delivers it.
    pub fn event(&self, region: &str, time: &str) -> Value {
        json!({
            "version": "0",
            "id": format!("greenlight-promotion-{}", self.schedule_name()),
            "detail-type": PROMOTION_DUE,
            "source": PROMOTION_SOURCE,
            "account": "000000000000",
            "time": time,
            "region": region,
            "resources": [],
            "detail": self,
        })
    }

    /// The soak's schedule name: the same promotion always gets the same one
    /// (at most 64 characters of `[0-9a-zA-Z-_.]`).
    pub fn schedule_name(&self) -> String {
        let service: String = self
            .service
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(36)
            .collect();
        let hex = self.digest.strip_prefix("sha256:").unwrap_or(&self.digest);
        format!("promote-{service}-{}", &hex[..hex.len().min(19)])
    }
}
