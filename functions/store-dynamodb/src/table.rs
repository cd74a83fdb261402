//! Creating the table for local runs and tests. Deployments create it from the template,
//! with the same names (see [`crate::schema`]).

use crate::errors::describe;
use crate::schema;
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
}

/// Creates `table` (on-demand billing, the version index) unless it exists, waits until it
/// is ACTIVE, and enables expiry on [`schema::TTL_ATTRIBUTE`] where the server supports it.
pub async fn create_table(client: &Client, table: &str) -> Result<(), TableError> {
    let result = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(schema::PK, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(schema::SK, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(schema::VERSION, ScalarAttributeType::N)?)
        .key_schema(key(schema::PK, KeyType::Hash)?)
        .key_schema(key(schema::SK, KeyType::Range)?)
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(schema::VERSION_INDEX)
                .key_schema(key(schema::PK, KeyType::Hash)?)
                .key_schema(key(schema::VERSION, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()?,
        )
        .send()
        .await;
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
    enable_ttl(client, table).await;
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
async fn enable_ttl(client: &Client, table: &str) {
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
        if on && described.and_then(|d| d.attribute_name()) == Some(schema::TTL_ATTRIBUTE) {
            return;
        }
    }
    let spec = match TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(schema::TTL_ATTRIBUTE)
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
        Ok(_) => tracing::debug!(
            table,
            attribute = schema::TTL_ATTRIBUTE,
            "time to live enabled"
        ),
        Err(err) => tracing::warn!(table, error = %describe("UpdateTimeToLive", &err),
            "time to live not enabled (unsupported by this server?)"),
    }
}

fn attribute(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, BuildError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, BuildError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
}
