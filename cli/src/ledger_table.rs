//! The release ledger's table in the emulator, as the template declares it
//! (`LedgerTable`): the rehearsal, the benchmark and the tests create it with this,
//! and a test holds this schema against the template's.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, LocalSecondaryIndex, Projection,
    ProjectionType, ScalarAttributeType,
};
use greenlight::ledger::INDEX_BY_START;

/// Key attributes and their types: (name, type, role in the table, role in the index).
pub const KEYS: [(&str, &str); 3] = [
    ("service", "S"),
    ("deployment_id", "S"),
    ("started_at", "N"),
];

/// Creates the ledger table `name` (on-demand, the `by_started_at` index); an
/// existing table is left as it is.
pub async fn create(sdk: &aws_config::SdkConfig, name: &str) -> Result<(), String> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let key = |attribute: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(attribute)
            .key_type(kind)
            .build()
            .map_err(|e| e.to_string())
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(KEYS[0].0, KeyType::Hash)?)
        .key_schema(key(KEYS[1].0, KeyType::Range)?)
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(INDEX_BY_START)
                .key_schema(key(KEYS[0].0, KeyType::Hash)?)
                .key_schema(key(KEYS[2].0, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|e| e.to_string())?,
        );
    for (attribute, kind) in KEYS {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::from(kind))
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(format!(
            "cannot create the ledger table {name}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(e)
        )),
    }
}
