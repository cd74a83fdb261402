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

/// The ARN of the Secrets Manager secret holding the pull cookies' keys (pull only).
pub const COOKIE_SECRET_ARN: &str = "COOKIE_SECRET_ARN";
/// Optional, local runs only: a Secrets Manager-compatible endpoint (moto) for
/// [`COOKIE_SECRET_ARN`].
pub const SECRETS_MANAGER_ENDPOINT: &str = "SECRETS_MANAGER_ENDPOINT";
/// Optional, local runs only: the cookie keys themselves, in the secret's format
/// (whitespace-separated keys of at least 32 bytes, the signing key first), for a pull
/// run without [`COOKIE_SECRET_ARN`]. Never set in AWS: a deployment reads the secret.
pub const COOKIE_SECRET: &str = "COOKIE_SECRET";

pub fn optional(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}
