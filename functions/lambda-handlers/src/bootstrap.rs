//! Cold-start wiring: SDK clients and the sync service, built once per execution
//! environment and reused by every invocation.

use crate::auth::AuthMode;
use crate::config;
use crate::emf::{EmfMetrics, EmfWriter};
use crate::gc::GcFunction;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::RegionProviderChain;
use aws_config::timeout::TimeoutConfig;
use std::sync::Arc;
use std::time::Duration;
use sync_core::cookie::{CookieKeyError, CookieKeys};
use sync_core::gc::GcPolicy;
use sync_core::mutators::app;
use sync_core::poke::{NoPoker, Poker};
use sync_core::{Registry, SyncService};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The table name and a DynamoDB client (honouring `DYNAMODB_ENDPOINT` for local runs).
pub async fn dynamo() -> Result<(aws_sdk_dynamodb::Client, String), BoxError> {
    let table =
        config::table_name().inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let endpoint = config::optional(config::DYNAMODB_ENDPOINT);
    Ok((store_dynamodb::client_for(endpoint.as_deref()).await, table))
}

/// The API Gateway Management API client of the poke function: the WebSocket stage's
/// endpoint, `WEBSOCKET_ENDPOINT` (required: without it the function has nothing to do).
pub async fn management_client() -> Result<aws_sdk_apigatewaymanagement::Client, BoxError> {
    let endpoint = config::required(config::WEBSOCKET_ENDPOINT)
        .inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let management = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
        .endpoint_url(endpoint)
        .build();
    Ok(aws_sdk_apigatewaymanagement::Client::from_conf(management))
}

/// The auth mode of this function (`AUTH_MODE`), announced in the log (loudly when it
/// is `none`). An unknown mode fails the cold start.
pub fn auth_mode() -> Result<AuthMode, config::InvalidValue> {
    let mode = config::auth_mode().inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    mode.announce();
    Ok(mode)
}

/// The service of a function that hands out no cookies (push, spaces, `$connect`):
/// nothing it answers is signed, so it needs no cookie keys. It decides access with the
/// policy of `auth`. On Lambda every `poker` is [`NoPoker`]: pokes leave through the
/// table's stream and the poke function ([`crate::poke_stream`]).
pub fn sync_service(
    client: aws_sdk_dynamodb::Client,
    table: String,
    poker: Arc<dyn Poker>,
    auth: AuthMode,
) -> Arc<SyncService> {
    Arc::new(service(client, table, poker, auth, app::registry()))
}

/// The push function's service: it pokes nobody (its poker is [`NoPoker`]), so the push
/// answers right after its commit and no connection is ever on its path; the commit's
/// change of the space item reaches the poke function through the table's stream.
pub fn push_service(
    client: aws_sdk_dynamodb::Client,
    table: String,
    auth: AuthMode,
) -> Arc<SyncService> {
    // The app's JavaScript mutators (`increment` among them) and the Rust ones, loaded
    // once per execution environment.
    let mutators = js_mutators::app::registry_or_panic();
    Arc::new(service(client, table, Arc::new(NoPoker), auth, mutators))
}

/// The pull function's service: its cookies are signed with `keys`, the deployment's
/// (see [`cookie_keys`]), so that every instance honours every other's cookies.
pub fn pull_service(
    client: aws_sdk_dynamodb::Client,
    table: String,
    keys: CookieKeys,
    auth: AuthMode,
) -> Arc<SyncService> {
    Arc::new(
        service(client, table, Arc::new(NoPoker), auth, app::registry()).with_cookie_keys(keys),
    )
}

fn service(
    client: aws_sdk_dynamodb::Client,
    table: String,
    poker: Arc<dyn Poker>,
    auth: AuthMode,
    mutators: Registry,
) -> SyncService {
    let store = store_dynamodb::DynamoStore::new(client, table);
    let service = SyncService::new(Arc::new(store.clone()), Arc::new(mutators), poker)
        .with_access_policy(auth.access_policy());
    if config::on_lambda() {
        service.with_metrics(Arc::new(
            EmfMetrics::new(EmfWriter::stdout()).with_capacity_of(store),
        ))
    } else {
        // Tests and tools that build a function's service keep their output clean.
        service
    }
}

/// The garbage collector's function on the table: its runs' figures become EMF lines on
/// Lambda (elsewhere, tests and tools keep their output clean).
pub fn gc_function(
    client: aws_sdk_dynamodb::Client,
    table: String,
    policy: GcPolicy,
) -> Arc<GcFunction> {
    let store = store_dynamodb::DynamoStore::new(client, table);
    let function = GcFunction::new(Arc::new(store), policy);
    Arc::new(if config::on_lambda() {
        function.with_emf(EmfWriter::stdout())
    } else {
        function
    })
}

/// Why the cookie keys could not be had. No variant carries any of the secret's text.
#[derive(Debug, thiserror::Error)]
pub enum CookieSecretError {
    #[error(
        "both {} and {} are set: set {} in AWS, {} (or neither) for local runs",
        config::COOKIE_SECRET_ARN,
        config::COOKIE_SECRET,
        config::COOKIE_SECRET_ARN,
        config::COOKIE_SECRET
    )]
    Ambiguous,
    #[error("cannot read the cookie secret {arn}: {reason}")]
    Read { arn: String, reason: String },
    #[error("the cookie secret {arn} has no SecretString (a binary secret is not supported)")]
    NotText { arn: String },
    #[error("the cookie keys of {origin} are not usable: {error}")]
    Invalid {
        /// The secret's ARN, or the variable the keys came from.
        origin: String,
        #[source]
        error: CookieKeyError,
    },
}

/// The keys the pull function signs and verifies cookies with, read once per cold start:
///
/// 1. `COOKIE_SECRET_ARN` set (every deployment): the Secrets Manager secret it names.
/// 2. else `COOKIE_SECRET` set (local runs only): the keys in the variable itself.
/// 3. neither: a random key of this process, with a warning. Cookies then verify only in
///    this process, so after a restore other processes answer cookies from the future
///    with 400 `InvalidCookie` instead of moving the version past them.
///
/// Both set is an error, as is a secret that is missing, unreadable or holds no valid
/// key: the cold start fails (the error is logged; the secret's text never is).
pub async fn cookie_keys() -> Result<CookieKeys, CookieSecretError> {
    let arn = config::optional(config::COOKIE_SECRET_ARN);
    let local = config::optional(config::COOKIE_SECRET);
    let keys = match (arn, local) {
        (Some(_), Some(_)) => Err(CookieSecretError::Ambiguous),
        (Some(arn), None) => cookie_keys_from_secret(&secrets_client().await, &arn).await,
        (None, Some(text)) => {
            CookieKeys::from_secret_text(&text).map_err(|error| CookieSecretError::Invalid {
                origin: config::COOKIE_SECRET.to_owned(),
                error,
            })
        }
        (None, None) => {
            tracing::warn!(
                "neither COOKIE_SECRET_ARN nor COOKIE_SECRET is set: pull cookies are signed \
                 with a random key of this process, which no other process accepts"
            );
            Ok(CookieKeys::random())
        }
    };
    keys.inspect_err(|e| tracing::error!(error = %e, "cannot load the cookie keys"))
}

/// The keys in the Secrets Manager secret `arn` (its current version's `SecretString`).
pub async fn cookie_keys_from_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<CookieKeys, CookieSecretError> {
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| CookieSecretError::Read {
            arn: arn.to_owned(),
            reason: describe_secret_error(&e),
        })?;
    let text = output
        .secret_string()
        .ok_or_else(|| CookieSecretError::NotText {
            arn: arn.to_owned(),
        })?;
    let keys = CookieKeys::from_secret_text(text).map_err(|error| CookieSecretError::Invalid {
        origin: arn.to_owned(),
        error,
    })?;
    tracing::info!(secret = arn, keys = ?keys, "cookie keys loaded");
    Ok(keys)
}

/// A failed GetSecretValue in a few words: the service's error code and message, or what
/// went wrong on the way. Never the raw response, which might hold the secret (a response
/// that could not be parsed).
fn describe_secret_error(
    e: &aws_sdk_secretsmanager::error::SdkError<
        aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError,
    >,
) -> String {
    use aws_sdk_secretsmanager::error::{ProvideErrorMetadata as _, SdkError};
    match e {
        SdkError::ServiceError(service) => {
            let error = service.err();
            format!(
                "{} (HTTP {}): {}",
                error.code().unwrap_or("unknown error"),
                service.raw().status().as_u16(),
                error.message().unwrap_or("no message")
            )
        }
        SdkError::ResponseError(_) => "the response could not be read".to_owned(),
        // Construction, dispatch (connection) and timeout failures: the error and its
        // causes, none of which holds response data.
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

/// Bounds on reading the secret: a cold start (Lambda's init phase) has 10 seconds.
const SECRET_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
const SECRET_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A Secrets Manager client: AWS's default configuration chain, or the endpoint in
/// `SECRETS_MANAGER_ENDPOINT` when set (local runs: then with region `AWS_REGION` or
/// us-east-1, and the environment's credentials or dummy ones).
pub async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(SECRET_CONNECT_TIMEOUT)
            .operation_attempt_timeout(SECRET_ATTEMPT_TIMEOUT)
            .build(),
    );
    if let Some(endpoint) = config::optional(config::SECRETS_MANAGER_ENDPOINT) {
        let local_credentials = aws_sdk_secretsmanager::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "lambda-handlers-local",
        );
        loader = loader
            .endpoint_url(endpoint)
            .region(
                RegionProviderChain::default_provider()
                    .or_else(store_dynamodb::DEFAULT_LOCAL_REGION),
            )
            .credentials_provider(
                CredentialsProviderChain::first_try(
                    "Environment",
                    aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
                )
                .or_else("Local", local_credentials),
            );
    }
    aws_sdk_secretsmanager::Client::new(&loader.load().await)
}
