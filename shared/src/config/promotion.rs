//! `promote:`: a service that takes only what proved itself in another, the same
//! digest, after a soak (`from`, `soak_minutes`, `approval`), and the checks that
//! span the two services (a known source, no cycle, the same container and
//! repository).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::model::{Approval, Config, Promotion};
use super::walker::{join, Walker};

/// Longest soak: a week (EventBridge Scheduler takes any date; a longer soak is a
/// release train, not a soak).
const MAX_SOAK_MINUTES: u64 = 7 * 24 * 60;

impl Walker {
    pub(super) fn promotion(&mut self, value: &Value, path: &str) -> Option<Promotion> {
        let map = self.mapping(value, path, &["from", "soak_minutes", "approval"])?;
        let from = self.required_str(map, path, "from");
        let soak_minutes = self.number(map, path, "soak_minutes", 0..=MAX_SOAK_MINUTES, 30);
        let approval = match self.optional_str(map, path, "approval").as_deref() {
            None | Some("auto") => Approval::Auto,
            Some("manual") => Approval::Manual,
            Some(other) => {
                self.problem(
                    join(path, "approval"),
                    format!("{other:?} is not one of auto, manual"),
                );
                Approval::Auto
            }
        };
        Some(Promotion {
            from,
            soak: Duration::from_secs(soak_minutes * 60),
            approval,
        })
    }

    /// Each `promote.from` names another service of the document, with the same
    /// container name and repository, and following `from` never comes back.
    pub(super) fn promotion_checks(&mut self, config: &Config) {
        let index: HashMap<&str, usize> = config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        for (i, target) in config.services.iter().enumerate() {
            let Some(promote) = &target.promote else {
                continue;
            };
            let key = format!("services[{i}].promote.from");
            let Some(&source_index) = index.get(promote.from.as_str()) else {
                let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
                self.problem(
                    key,
                    format!(
                        "no service {:?} to promote from (services: {})",
                        promote.from,
                        names.join(", ")
                    ),
                );
                continue;
            };
            let source = &config.services[source_index];
            if source.container != target.container {
                self.problem(
                    key,
                    format!(
                        "{} runs container {:?} and {} container {:?}: a promotion puts the image in the container of the same name, so they must match",
                        source.name, source.container, target.name, target.container
                    ),
                );
                continue;
            }
            if source.repository != target.repository {
                self.problem(
                    key,
                    format!(
                        "{} deploys from repository {:?} and {} from {:?}: a promoted digest must be in the target's repository",
                        source.name, source.repository, target.name, target.repository
                    ),
                );
                continue;
            }
            // Follow `from` until a service without `promote`; meeting this one again is a cycle.
            let mut chain = vec![target.name.as_str()];
            let mut at = source;
            while let Some(next) = &at.promote {
                chain.push(at.name.as_str());
                if next.from == target.name {
                    chain.push(target.name.as_str());
                    self.problem(
                        key.clone(),
                        format!(
                            "promotions form a cycle ({}): one service must take its images from pushes",
                            chain.join(" promotes from ")
                        ),
                    );
                    break;
                }
                match index.get(next.from.as_str()) {
                    Some(&j) if chain.len() <= config.services.len() => at = &config.services[j],
                    _ => break,
                }
            }
        }
    }
}
