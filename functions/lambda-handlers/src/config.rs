//! Configuration read from the environment once per cold start.

use std::env;

/// Environment variable naming the DynamoDB table.
pub const TABLE_NAME: &str = "TABLE_NAME";
/// Optional: a DynamoDB-compatible endpoint for local runs (read by `store_dynamodb`).
pub const DYNAMODB_ENDPOINT: &str = "DYNAMODB_ENDPOINT";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
}

pub fn required(name: &'static str) -> Result<String, ConfigError> {
    optional(name).ok_or(ConfigError::Missing(name))
}

pub fn table_name() -> Result<String, ConfigError> {
    required(TABLE_NAME)
}

/// The WebSocket API's management endpoint, `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`.
pub const WEBSOCKET_ENDPOINT: &str = "WEBSOCKET_ENDPOINT";

pub fn optional(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}
