//! Configuration read from the environment once per cold start. Every variable is read
//! here, through [`optional`] (the crate's clippy.toml forbids `std::env` elsewhere), so
//! that [`scoped`] can run a cold start against an environment of its own and tell which
//! variables it read.

use std::collections::{BTreeMap, BTreeSet};
use std::env;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// Environment variable naming the DynamoDB table.
pub const TABLE_NAME: &str = "TABLE_NAME";
/// Optional: a DynamoDB-compatible endpoint for local runs.
pub const DYNAMODB_ENDPOINT: &str = "DYNAMODB_ENDPOINT";
/// The log filter (`tracing_subscriber`'s directives): the template's `LogLevel`.
pub const RUST_LOG: &str = "RUST_LOG";

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

/// The S3 bucket where the pull function puts answers too large for Lambda's response
/// (see [`crate::answer_spill`]).
pub const ANSWER_BUCKET: &str = "ANSWER_BUCKET";
/// Optional, local runs only: an S3-compatible endpoint (moto) for [`ANSWER_BUCKET`].
pub const S3_ENDPOINT: &str = "S3_ENDPOINT";

/// The auth mode of the HTTP functions and `$connect`: `none` (the default: every request
/// anonymous) or `jwt` (API Gateway's authorizers verify a JWT; see [`crate::auth`]).
pub const AUTH_MODE: &str = "AUTH_MODE";
/// The JWT issuer the WebSocket authorizer accepts (`iss`), such as
/// `https://cognito-idp.<region>.amazonaws.com/<poolId>`. Its keys are read from
/// `<issuer>/.well-known/jwks.json`.
pub const JWT_ISSUER: &str = "JWT_ISSUER";
/// The audiences the WebSocket authorizer accepts, comma-separated (`aud`, or `client_id`
/// when a token has no `aud`, as API Gateway's JWT authorizers check them).
pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
/// Optional, local runs and tests only: where the WebSocket authorizer reads the issuer's
/// keys instead of `<issuer>/.well-known/jwks.json`.
pub const JWKS_URL: &str = "JWKS_URL";
/// Most poke sockets one space may have open (`$connect` answers 429 past it).
pub const MAX_SOCKETS_PER_SPACE: &str = "MAX_SOCKETS_PER_SPACE";

/// Set by the Lambda runtime in every function's environment (not by the template, so
/// not a `pub const` among the variables the template sets).
const LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// Whether this process is a Lambda function: only there do EMF lines on stdout become
/// metrics.
pub fn on_lambda() -> bool {
    #[allow(clippy::disallowed_methods)]
    env::var_os(LAMBDA_FUNCTION_NAME).is_some()
}

/// [`MAX_SOCKETS_PER_SPACE`] when it is not set.
pub const DEFAULT_MAX_SOCKETS_PER_SPACE: usize = 100;

#[derive(Debug, thiserror::Error)]
#[error("environment variable {name} is {value:?}: {expected}")]
pub struct InvalidValue {
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// The auth mode ([`AUTH_MODE`]); `none` when unset.
pub fn auth_mode() -> Result<crate::auth::AuthMode, InvalidValue> {
    let raw = optional(AUTH_MODE);
    crate::auth::AuthMode::parse(raw.as_deref().unwrap_or("none")).ok_or(InvalidValue {
        name: AUTH_MODE,
        value: raw.unwrap_or_default(),
        expected: "none or jwt",
    })
}

/// [`MAX_SOCKETS_PER_SPACE`], or its default when unset.
pub fn max_sockets_per_space() -> Result<usize, InvalidValue> {
    match optional(MAX_SOCKETS_PER_SPACE) {
        None => Ok(DEFAULT_MAX_SOCKETS_PER_SPACE),
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(InvalidValue {
                name: MAX_SOCKETS_PER_SPACE,
                value: raw,
                expected: "a whole number of at least 1",
            }),
    }
}

/// Optional, the garbage collector's: days after which a deleted entry's record goes
/// (a client that has not pulled for longer gets a reset). Default: [`GcPolicy::DEFAULT`].
///
/// [`GcPolicy::DEFAULT`]: sync_core::gc::GcPolicy::DEFAULT
pub const TOMBSTONE_RETENTION_DAYS: &str = "TOMBSTONE_RETENTION_DAYS";
/// Optional, the garbage collector's: days without a push after which a client's record
/// goes (its next push is answered `ClientStateNotFound`). Default:
/// [`GcPolicy::DEFAULT`].
///
/// [`GcPolicy::DEFAULT`]: sync_core::gc::GcPolicy::DEFAULT
pub const CLIENT_IDLE_DAYS: &str = "CLIENT_IDLE_DAYS";

const SECONDS_PER_DAY: u64 = 24 * 3600;

/// The garbage collector's policy: [`TOMBSTONE_RETENTION_DAYS`] and [`CLIENT_IDLE_DAYS`],
/// each [`GcPolicy::DEFAULT`]'s when unset.
///
/// [`GcPolicy::DEFAULT`]: sync_core::gc::GcPolicy::DEFAULT
pub fn gc_policy() -> Result<sync_core::gc::GcPolicy, InvalidValue> {
    let defaults = sync_core::gc::GcPolicy::DEFAULT;
    Ok(sync_core::gc::GcPolicy {
        tombstone_retention: days(TOMBSTONE_RETENTION_DAYS, defaults.tombstone_retention)?,
        client_idle: days(CLIENT_IDLE_DAYS, defaults.client_idle)?,
    })
}

/// The variable `name` as a whole number of days (at least 1), or `default` when unset.
fn days(name: &'static str, default: Duration) -> Result<Duration, InvalidValue> {
    let Some(raw) = optional(name) else {
        return Ok(default);
    };
    raw.trim()
        .parse::<u64>()
        .ok()
        .filter(|d| *d > 0)
        .and_then(|d| d.checked_mul(SECONDS_PER_DAY))
        .map(Duration::from_secs)
        .ok_or(InvalidValue {
            name,
            value: raw,
            expected: "a whole number of days, at least 1",
        })
}

/// What the WebSocket authorizer accepts: [`JWT_ISSUER`], [`JWT_AUDIENCE`] (both
/// required) and [`JWKS_URL`] (optional).
pub fn jwt_settings() -> Result<crate::auth::JwtSettings, ConfigError> {
    let issuer = required(JWT_ISSUER)?;
    let audiences: Vec<String> = required(JWT_AUDIENCE)?
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if audiences.is_empty() {
        return Err(ConfigError::Missing(JWT_AUDIENCE));
    }
    Ok(crate::auth::JwtSettings::new(
        issuer,
        audiences,
        optional(JWKS_URL),
    ))
}

/// The variable `name`, when set and not empty.
pub fn optional(name: &str) -> Option<String> {
    let value = match SCOPED.try_with(|scope| scope.read(name)) {
        Ok(value) => value,
        // The process's environment, outside a scope: the only read of it in this crate.
        #[allow(clippy::disallowed_methods)]
        Err(_) => env::var(name).ok(),
    };
    value.filter(|v| !v.is_empty())
}

/// An environment of its own for the reads of one task.
struct ScopedEnv {
    vars: BTreeMap<String, String>,
    read: Mutex<BTreeSet<String>>,
}

impl ScopedEnv {
    fn read(&self, name: &str) -> Option<String> {
        if let Ok(mut read) = self.read.lock() {
            read.insert(name.to_owned());
        }
        self.vars.get(name).cloned()
    }
}

tokio::task_local! {
    static SCOPED: ScopedEnv;
}

/// Runs `work` with `vars` as its whole environment (the process's is not consulted by
/// [`optional`]) and answers what it returned with the names of the variables it read,
/// set or not. For tests that hold a function's cold start against its declaration.
pub async fn scoped<F: Future>(
    vars: BTreeMap<String, String>,
    work: F,
) -> (F::Output, BTreeSet<String>) {
    let scope = ScopedEnv {
        vars,
        read: Mutex::new(BTreeSet::new()),
    };
    SCOPED
        .scope(scope, async move {
            let output = work.await;
            let read = SCOPED
                .try_with(|s| s.read.lock().map(|r| r.clone()).unwrap_or_default())
                .unwrap_or_default();
            (output, read)
        })
        .await
}
