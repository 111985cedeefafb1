//! `${…}` placeholders: the per-deployment values and the checks' secrets, applied
//! to a check, and masked wherever a report shows them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::config::CheckSpec;

pub use crate::placeholder::is_secret_reference;

/// Values for `${…}` placeholders.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Placeholders {
    pub image_tag: Option<String>,
    pub image_digest: Option<String>,
    pub deployment_id: Option<String>,
    /// `secret:NAME[#key]` / `ssm:NAME` → value, resolved for this run only.
    pub secrets: BTreeMap<String, String>,
    /// References that could not be resolved → why: their checks fail unsent.
    pub secret_errors: BTreeMap<String, String>,
}

/// The secret references (`secret:NAME`, `secret:NAME#key`, `ssm:NAME`) in a check's
/// headers and body: the only places configuration allows them.
pub fn secret_references(check: &CheckSpec) -> Vec<String> {
    let mut refs: Vec<String> = check
        .headers
        .values()
        .chain(check.body.iter())
        .flat_map(|text| crate::config::placeholder_names(text))
        .filter(|name| is_secret_reference(name))
        .collect();
    refs.sort();
    refs.dedup();
    refs
}

/// What stands in a report where a secret's value was.
pub const MASK: &str = "****";

impl Placeholders {
    /// Replaces known placeholders that have a value; others stay as written, so the
    /// mismatch shows which value was missing.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, value) in [
            ("image_tag", &self.image_tag),
            ("image_digest", &self.image_digest),
            ("deployment_id", &self.deployment_id),
        ] {
            if let Some(value) = value {
                out = out.replace(&format!("${{{name}}}"), value);
            }
        }
        for (reference, value) in &self.secrets {
            out = out.replace(&format!("${{{reference}}}"), value);
        }
        out
    }

    pub(super) fn apply_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.apply(s)),
            other => other.clone(),
        }
    }
}
