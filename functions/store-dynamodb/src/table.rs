//! Creating the table for local runs and tests, from the deployment template's own
//! definition ([`crate::definition`]).

use crate::definition::{self, DefinitionError, TableDefinition};
use crate::errors::describe;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, LocalSecondaryIndex, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use std::time::Duration;

/// How long [`create_table`] waits for the table to become ACTIVE.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);
const POLL_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("creating table {table}: {message}")]
    Create { table: String, message: String },
    #[error("describing table {table}: {message}")]
    Describe { table: String, message: String },
    #[error("table {table} is not ACTIVE after {waited:?}")]
    NotActive { table: String, waited: Duration },
    #[error("invalid table definition: {0}")]
    Definition(#[from] BuildError),
    #[error(transparent)]
    Template(#[from] DefinitionError),
}

/// Creates `table` as the deployment template defines it ([`TableDefinition`]: billing,
/// keys, indexes) unless it exists, waits until it is ACTIVE, and enables expiry on the
/// template's TTL attribute where the server supports it. The stream is left out: local
/// runs poke in process, and a stream would make every local write keep a record.
pub async fn create_table(client: &Client, table: &str) -> Result<(), TableError> {
    let definition = TableDefinition::from_template()?;
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::from(definition.billing_mode.as_str()));
    for a in &definition.attribute_definitions {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                .build()?,
        );
    }
    for k in &definition.key_schema {
        request = request.key_schema(key(k)?);
    }
    for index in &definition.local_secondary_indexes {
        let mut lsi = LocalSecondaryIndex::builder().index_name(&index.index_name);
        for k in &index.key_schema {
            lsi = lsi.key_schema(key(k)?);
        }
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(
                index.projection.projection_type.as_str(),
            ))
            .build();
        request = request.local_secondary_indexes(lsi.projection(projection).build()?);
    }
    let result = request.send().await;
    match result {
        Ok(_) => tracing::info!(table, "table created"),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            tracing::debug!(table, "table exists");
        }
        Err(err) => {
            return Err(TableError::Create {
                table: table.to_owned(),
                message: describe("CreateTable", &err),
            });
        }
    }
    wait_until_active(client, table).await?;
    if let Some(ttl) = definition.time_to_live_specification.filter(|t| t.enabled) {
        enable_ttl(client, table, &ttl.attribute_name).await;
    }
    Ok(())
}

async fn wait_until_active(client: &Client, table: &str) -> Result<(), TableError> {
    let started = tokio::time::Instant::now();
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|err| TableError::Describe {
                table: table.to_owned(),
                message: describe("DescribeTable", &err),
            })?;
        let status = described.table().and_then(|t| t.table_status());
        if status == Some(&TableStatus::Active) {
            return Ok(());
        }
        if started.elapsed() >= ACTIVE_TIMEOUT {
            return Err(TableError::NotActive {
                table: table.to_owned(),
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Expiry only cleans up items that carry the TTL attribute; a table without it still
/// works, so a server that lacks the feature is logged, not fatal.
async fn enable_ttl(client: &Client, table: &str, attribute: &str) {
    let current = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await;
    if let Ok(out) = &current {
        let described = out.time_to_live_description();
        let on = matches!(
            described.and_then(|d| d.time_to_live_status()),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        );
        if on && described.and_then(|d| d.attribute_name()) == Some(attribute) {
            return;
        }
    }
    let spec = match TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(attribute)
        .build()
    {
        Ok(spec) => spec,
        Err(err) => {
            tracing::warn!(table, error = %err, "time to live not enabled");
            return;
        }
    };
    match client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
    {
        Ok(_) => tracing::debug!(table, attribute, "time to live enabled"),
        Err(err) => tracing::warn!(table, error = %describe("UpdateTimeToLive", &err),
            "time to live not enabled (unsupported by this server?)"),
    }
}

fn key(k: &definition::KeyElement) -> Result<KeySchemaElement, BuildError> {
    KeySchemaElement::builder()
        .attribute_name(&k.attribute_name)
        .key_type(KeyType::from(k.key_type.as_str()))
        .build()
}
