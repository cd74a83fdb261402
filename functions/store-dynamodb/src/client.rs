//! Building DynamoDB clients: from the environment (Lambda, or a local endpoint), or for
//! an explicit local endpoint such as moto. Every client built here retries as
//! [`crate::retries`] says, whoever uses it: the store, the connection table, tools.

use crate::counter::RequestCounter;
use crate::retries::{TransactionClassifier, retry_config};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use std::time::Duration;

/// A DynamoDB-compatible endpoint to use instead of AWS (e.g. `http://127.0.0.1:5000`).
pub const ENDPOINT_ENV: &str = "DYNAMODB_ENDPOINT";
/// The table the store uses.
pub const TABLE_NAME_ENV: &str = "TABLE_NAME";
/// The region of a local endpoint when `AWS_REGION` is unset.
pub const DEFAULT_LOCAL_REGION: &str = "us-east-1";

/// A stuck connection must not eat the whole request deadline: cut one try short and
/// let the SDK retry (see [`crate::retries::MAX_ATTEMPTS`]).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Local servers are slow with large pages on small machines, and no gateway deadline
/// applies.
const LOCAL_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
}

/// The client the store should use in this environment: AWS's default configuration
/// chain, or the endpoint in `DYNAMODB_ENDPOINT` when set (then with region `AWS_REGION`
/// or us-east-1, and dummy credentials when none are in the environment).
///
/// Its retries are this crate's (see [`crate::retries`]), whatever `AWS_MAX_ATTEMPTS` or
/// `AWS_RETRY_MODE` say: the classification of DynamoDB's answers and the bounds on a
/// call's time are part of the store's contract.
pub async fn client_from_env() -> Client {
    let endpoint = std::env::var(ENDPOINT_ENV).ok();
    client_for(endpoint.as_deref()).await
}

/// The client of [`client_from_env`] with the endpoint given (`None` or blank: AWS's),
/// for callers that read their configuration themselves.
pub async fn client_for(endpoint: Option<&str>) -> Client {
    let endpoint = endpoint.filter(|e| !e.trim().is_empty());
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = &endpoint {
        loader = loader.endpoint_url(*endpoint).region(local_region());
        if !credentials_in_env() {
            loader = loader.credentials_provider(dummy_credentials());
        }
    }
    let shared = loader.load().await;
    let attempt_timeout = if endpoint.is_some() {
        LOCAL_ATTEMPT_TIMEOUT
    } else {
        ATTEMPT_TIMEOUT
    };
    let config = resilience(
        aws_sdk_dynamodb::config::Builder::from(&shared),
        attempt_timeout,
    )
    .build();
    tracing::debug!(local = endpoint.is_some(), "DynamoDB client configured");
    Client::from_conf(config)
}

/// `TABLE_NAME`, for callers that build a [`crate::DynamoStore`] from the environment.
pub fn table_name_from_env() -> Result<String, ConfigError> {
    std::env::var(TABLE_NAME_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or(ConfigError::Missing(TABLE_NAME_ENV))
}

/// A client for a local DynamoDB-compatible server at `endpoint`, with dummy credentials.
/// Reads nothing from the environment but `AWS_REGION`.
pub async fn local_client(endpoint: &str) -> Client {
    Client::from_conf(local_config(endpoint).build())
}

/// Like [`local_client`], with `counter` counting its requests.
pub async fn local_client_with_counter(endpoint: &str, counter: &RequestCounter) -> Client {
    Client::from_conf(local_config(endpoint).interceptor(counter.clone()).build())
}

/// A copy of `client` (same configuration, retries included) whose requests `counter`
/// counts, every try of a call on its own.
pub fn with_counter(client: &Client, counter: &RequestCounter) -> Client {
    Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(counter.clone())
            .build(),
    )
}

fn local_config(endpoint: &str) -> aws_sdk_dynamodb::config::Builder {
    let builder = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(local_region())
        .credentials_provider(dummy_credentials());
    resilience(builder, LOCAL_ATTEMPT_TIMEOUT)
}

/// Retries, with the classifier of DynamoDB's transaction errors, and timeouts.
fn resilience(
    builder: aws_sdk_dynamodb::config::Builder,
    attempt_timeout: Duration,
) -> aws_sdk_dynamodb::config::Builder {
    builder
        .retry_config(retry_config())
        .retry_classifier(TransactionClassifier)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
}

fn local_region() -> Region {
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|r| !r.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_LOCAL_REGION.to_owned());
    Region::new(region)
}

/// Whether the environment names credentials or a profile to take them from.
fn credentials_in_env() -> bool {
    ["AWS_ACCESS_KEY_ID", "AWS_PROFILE"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.is_empty()))
}

fn dummy_credentials() -> Credentials {
    Credentials::new("local", "local", None, None, "store-dynamodb-local")
}
