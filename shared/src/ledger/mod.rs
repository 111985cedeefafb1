//! The release ledger: one DynamoDB item per deployment attempt, written where the
//! functions already notify (each notification that concerns an attempt is at most
//! one UpdateItem, [`record::write_for`]), read by `greenlight history` and
//! `greenlight metrics`.
//!
//! The table (the template's `LedgerTable`): partition key `service`, sort key
//! `deployment_id`, a local secondary index `by_started_at` (sort key `started_at`,
//! a number) for newest-first history, TTL on `expires_at`. Functions find it in
//! `GREENLIGHT_LEDGER_TABLE`; unset, nothing is recorded and nothing else changes.
//!
//! A write that fails never holds up what it records: the caller (the notifier)
//! logs it, counts it and notifies it; the SDK call itself is retried like every
//! other, within the invocation's deadline.

pub mod dora;
pub mod emf;
pub mod record;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::{retry, AwsError, LazyClient, SdkConfig};
use crate::notify::{Notification, Recorder};
pub use dora::{compute as delivery_metrics, DeliveryMetrics};
use record::attr;
pub use record::{write_for, Entry, Field, GateRecord, Outcome, Trigger, Write};

/// Env var: the ledger's table name (the template sets it).
pub const ENV_LEDGER_TABLE: &str = "GREENLIGHT_LEDGER_TABLE";
/// The local secondary index that orders a service's attempts by start.
pub const INDEX_BY_START: &str = "by_started_at";

const SERVICE: &str = "DynamoDB";

/// What became of one write.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Written; the whole item when the write asked for it (a finish).
    Written(Option<Box<Entry>>),
    /// An earlier delivery of the same event wrote it already: nothing changed.
    AlreadyRecorded,
}

/// The ledger table, its client built on first use (cold start pays nothing); a
/// clone (the notifier's and the handler's) shares that one client.
#[derive(Debug, Clone)]
pub struct Ledger {
    table: String,
    client: std::sync::Arc<LazyClient<aws_sdk_dynamodb::Client>>,
}

impl Ledger {
    pub fn new(sdk: &SdkConfig, table: impl Into<String>) -> Ledger {
        Ledger {
            table: table.into(),
            client: std::sync::Arc::new(LazyClient::deferred(sdk, aws_sdk_dynamodb::Client::new)),
        }
    }

    /// The ledger `GREENLIGHT_LEDGER_TABLE` names, or `None` when it is unset.
    pub fn from_env(sdk: &SdkConfig) -> Option<Ledger> {
        match std::env::var(ENV_LEDGER_TABLE) {
            Ok(table) if !table.trim().is_empty() => Some(Ledger::new(sdk, table.trim())),
            _ => {
                tracing::info!(
                    "{ENV_LEDGER_TABLE} is not set: deployments are not recorded in a ledger"
                );
                None
            }
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Records what `notification` says about an attempt: at most one UpdateItem;
    /// `None` when it concerns no attempt. A finish also logs its delivery metrics
    /// as one embedded-metric-format line.
    pub async fn record(&self, notification: &Notification) -> Result<Option<Applied>, AwsError> {
        let now = now_ms();
        let Some(write) = write_for(notification, now) else {
            return Ok(None);
        };
        let applied = self.apply(&write).await?;
        if let Applied::Written(Some(entry)) = &applied {
            if let Some(document) = emf::document(entry, now) {
                // Straight to stdout, one line: CloudWatch Logs extracts the metrics.
                println!("{document}");
            }
        }
        Ok(Some(applied))
    }

    /// One conditional UpdateItem.
    pub async fn apply(&self, write: &Write) -> Result<Applied, AwsError> {
        let update = expression(write);
        let result = retry::send(SERVICE, "UpdateItem", || {
            let mut request = self
                .client
                .get()
                .update_item()
                .table_name(&self.table)
                .key(attr::SERVICE, s(&write.service))
                .key(attr::DEPLOYMENT, s(&write.deployment_id))
                .update_expression(&update.expression)
                .condition_expression("attribute_not_exists(#once)")
                .set_expression_attribute_names(Some(update.names.clone()))
                .set_expression_attribute_values(Some(update.values.clone()));
            if write.returns_item {
                request = request.return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
            }
            request.send()
        })
        .await;
        match result {
            Ok(output) => Ok(Applied::Written(
                output.attributes.map(|item| Box::new(entry_from(&item))),
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(Applied::AlreadyRecorded)
            }
            Err(e) => Err(AwsError::from_sdk(SERVICE, "UpdateItem", e)),
        }
    }

    /// A service's attempts, newest first, at most `limit`; started at or after
    /// `since_ms` when given.
    pub async fn history(
        &self,
        service: &str,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Entry>, AwsError> {
        let mut entries = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        let (condition, mut values) = match since_ms {
            Some(since) => (
                "#s = :s AND #t >= :t",
                HashMap::from([(":t".to_string(), n(since))]),
            ),
            None => ("#s = :s", HashMap::new()),
        };
        values.insert(":s".into(), s(service));
        let mut names = HashMap::from([("#s".to_string(), attr::SERVICE.to_string())]);
        if since_ms.is_some() {
            names.insert("#t".into(), attr::STARTED_AT.into());
        }
        while entries.len() < limit {
            let page = retry::call(SERVICE, "Query", || {
                self.client
                    .get()
                    .query()
                    .table_name(&self.table)
                    .index_name(INDEX_BY_START)
                    .key_condition_expression(condition)
                    .set_expression_attribute_names(Some(names.clone()))
                    .set_expression_attribute_values(Some(values.clone()))
                    .scan_index_forward(false)
                    .limit(i32::try_from(limit - entries.len()).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start.clone())
                    .send()
            })
            .await?;
            entries.extend(page.items().iter().map(entry_from));
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        entries.truncate(limit);
        Ok(entries)
    }
}

impl Recorder for Ledger {
    fn record<'a>(
        &'a self,
        notification: &'a Notification,
    ) -> futures::future::BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move { Ledger::record(self, notification).await.map(|_| ()) })
    }
}

/// An UpdateItem's expression and its placeholders.
struct Update {
    expression: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

fn expression(write: &Write) -> Update {
    let mut names = HashMap::from([("#once".to_string(), write.once.clone())]);
    let mut values = HashMap::new();
    let mut clauses = Vec::new();
    let mut placeholder = |name: &str, field: AttributeValue| {
        let i = names.len();
        names.insert(format!("#a{i}"), name.to_string());
        values.insert(format!(":a{i}"), field);
        i
    };
    for (name, field) in &write.set {
        let i = placeholder(name, value(field));
        clauses.push(format!("#a{i} = :a{i}"));
    }
    if let Some((name, json)) = &write.gate {
        let i = placeholder(name, s(json));
        clauses.push(format!("#a{i} = :a{i}"));
    }
    for (name, field) in &write.set_if_absent {
        // A name set unconditionally above wins (one path per attribute).
        if write.set.iter().any(|(n, _)| n == name) {
            continue;
        }
        let i = placeholder(name, value(field));
        clauses.push(format!("#a{i} = if_not_exists(#a{i}, :a{i})"));
    }
    Update {
        expression: format!("SET {}", clauses.join(", ")),
        names,
        values,
    }
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_string())
}

fn n(number: i64) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

fn value(field: &Field) -> AttributeValue {
    match field {
        Field::S(text) => s(text),
        Field::N(number) => n(*number),
    }
}

/// An item as an [`Entry`]; attributes it does not know are ignored.
pub(crate) fn entry_from(item: &HashMap<String, AttributeValue>) -> Entry {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    Entry {
        service: text(attr::SERVICE).unwrap_or_default(),
        deployment_id: text(attr::DEPLOYMENT).unwrap_or_default(),
        started_at: number(attr::STARTED_AT),
        trigger: text(attr::TRIGGER),
        path: text(attr::PATH),
        target: text(attr::TARGET),
        image_digest: text(attr::DIGEST),
        image_tag: text(attr::TAG),
        pushed_at: number(attr::PUSHED_AT),
        outcome: text(attr::OUTCOME).as_deref().and_then(Outcome::parse),
        state: text(attr::STATE),
        reason: text(attr::REASON),
        ended_at: number(attr::ENDED_AT),
        stopped_by: text(attr::STOPPED_BY),
        stopped_at: number(attr::STOPPED_AT),
        image: text(attr::IMAGE),
        revoked_by: text(attr::REVOKED_BY),
        promoted_from: text(attr::PROMOTED_FROM),
        forced_by: text(attr::FORCED_BY),
        forced_reason: text(attr::FORCED_REASON),
        gates: item
            .iter()
            .filter_map(|(name, v)| record::gate_from(name, v.as_s().ok()?))
            .collect(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
