//! Which failed requests are worth another try, and the bounded, jittered backoff between
//! tries.
//!
//! The adapter owns retries (the clients built by this crate have the SDK's own retries
//! turned off) so that one policy applies to every call, a commit keeps one idempotency
//! token across its tries, and a store that stays throttled surfaces as
//! [`StoreError::Throttled`] instead of a long hang.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use std::future::Future;
use std::time::Duration;
use sync_core::store::StoreError;

/// Error codes DynamoDB uses when it sheds load.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
];

/// Error codes of passing faults on DynamoDB's side.
const TRANSIENT_CODES: &[&str] = &[
    "InternalServerError",
    "ServiceUnavailable",
    // An earlier try of the same idempotent transaction is still running.
    "TransactionInProgressException",
    // A single-item write met a transaction in flight on that item.
    "TransactionConflictException",
];

/// Bounds on the tries of one storage call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub max_attempts: u32,
    /// Ceiling of the first backoff; doubles per try (full jitter).
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(25),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed try number `attempt` (1-based).
    fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        ceiling.mul_f64(rand::random::<f64>())
    }
}

/// Why one try failed, as far as retrying is concerned. The texts carry error codes and
/// messages from DynamoDB or the SDK, never stored values.
#[derive(Debug)]
pub(crate) enum Failure {
    /// DynamoDB shed load: retry, then [`StoreError::Throttled`].
    Throttled(String),
    /// A passing fault (5xx, timeout, dropped connection): retry, then
    /// [`StoreError::Unavailable`].
    Transient(String),
    /// Retrying cannot help.
    Permanent(StoreError),
}

impl Failure {
    /// Classifies an SDK error of operation `op`.
    pub fn from_sdk<E>(op: &str, err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let text = describe(op, err);
        match err {
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Failure::Transient(text),
            SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => Failure::Transient(text),
            SdkError::ServiceError(service) => {
                let code = err.code().unwrap_or_default();
                if THROTTLING_CODES.contains(&code) {
                    Failure::Throttled(text)
                } else if TRANSIENT_CODES.contains(&code)
                    || service.raw().status().is_server_error()
                {
                    Failure::Transient(text)
                } else {
                    // A 4xx other than throttling (validation, a limit): deterministic.
                    Failure::Permanent(StoreError::Rejected(text))
                }
            }
            _ => Failure::Permanent(StoreError::Unavailable(text)),
        }
    }

    fn is_retryable(&self) -> bool {
        !matches!(self, Failure::Permanent(_))
    }

    fn describe(&self) -> String {
        match self {
            Failure::Throttled(t) | Failure::Transient(t) => t.clone(),
            Failure::Permanent(e) => e.to_string(),
        }
    }

    fn into_store_error(self) -> StoreError {
        match self {
            Failure::Throttled(t) => StoreError::Throttled(t),
            Failure::Transient(t) => StoreError::Unavailable(t),
            Failure::Permanent(e) => e,
        }
    }
}

/// A one-line account of an SDK error: the service's error code and message, or the
/// chain of causes of a transport failure. (The SDK's own `DisplayErrorContext` appends
/// the whole raw response, which is long and could echo request content.)
pub(crate) fn describe<E>(op: &str, err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(service) = err {
        return format!(
            "{op}: {} (HTTP {}): {}",
            err.code().unwrap_or("unknown error"),
            service.raw().status().as_u16(),
            err.message().unwrap_or("no message"),
        );
    }
    let mut text = format!("{op}: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Runs `attempt` until it succeeds, fails permanently, or `policy` runs out of tries.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    op: &'static str,
    mut attempt: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        let failure = match attempt().await {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        if !failure.is_retryable() {
            tracing::warn!(operation = op, error = %failure.describe(), "storage call failed");
            return Err(failure.into_store_error());
        }
        if tries >= policy.max_attempts.max(1) {
            tracing::warn!(operation = op, tries, error = %failure.describe(),
                "storage call failed after retries");
            return Err(failure.into_store_error());
        }
        tracing::debug!(operation = op, tries, error = %failure.describe(), "retrying storage call");
        tokio::time::sleep(policy.delay(tries)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[test]
    fn delays_stay_under_the_ceiling() {
        let p = RetryPolicy::default();
        for attempt in 1..40 {
            assert!(p.delay(attempt) <= p.max_delay);
        }
        assert!(p.delay(1) <= p.base_delay);
    }

    #[tokio::test]
    async fn retries_transient_failures_then_succeeds() {
        let calls = AtomicU32::new(0);
        let result = with_retries(&fast(), "Test", || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(Failure::Transient("503".into()))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn gives_up_on_throttling_after_the_bound() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(&fast(), "Test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Failure::Throttled("slow down".into()))
        })
        .await;
        assert!(matches!(result, Err(StoreError::Throttled(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(&fast(), "Test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Failure::Permanent(StoreError::Corrupt("bad".into())))
        })
        .await;
        assert!(matches!(result, Err(StoreError::Corrupt(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
