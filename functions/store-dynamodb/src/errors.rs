//! What a failed DynamoDB call means to the engine: the SDK's final error (after its own
//! retries, see [`crate::retries`]) as a [`StoreError`], and what a cancelled transaction's
//! reasons say. Texts carry error codes and messages from DynamoDB or the SDK, never
//! stored values.

use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::CancellationReason;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use sync_core::store::{CommitOutcome, StoreError};

/// Error codes DynamoDB uses when it sheds load.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
];

/// Error codes (of 4xx answers) of passing conditions on DynamoDB's side.
pub(crate) const TRANSIENT_CODES: &[&str] = &[
    // An earlier try of the same idempotent transaction is still running.
    "TransactionInProgressException",
    // A single-item write met a transaction in flight on that item.
    "TransactionConflictException",
];

/// Reasons DynamoDB gives for cancelling a transaction because it shed load.
const THROTTLING_REASONS: &[&str] = &[
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];
/// A reason of an item that took no part in the cancellation.
const NO_REASON: &str = "None";
const TRANSACTION_CONFLICT: &str = "TransactionConflict";
const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailed";

/// The SDK's final error of operation `op` as a [`StoreError`]. By then the SDK has
/// retried what was worth retrying, so this only sorts temporary from permanent:
/// throttling is [`StoreError::Throttled`]; timeouts, failures to send or to read the
/// answer, 5xx and the passing 4xx are [`StoreError::Unavailable`]; every other answer of
/// the service (validation, a missing table, a limit) is deterministic:
/// [`StoreError::Rejected`].
pub(crate) fn store_error<E>(op: &str, err: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = describe(op, err);
    let error = match err {
        SdkError::ServiceError(service) => {
            let code = err.code().unwrap_or_default();
            if THROTTLING_CODES.contains(&code) {
                StoreError::Throttled(text)
            } else if service.raw().status().is_server_error() || TRANSIENT_CODES.contains(&code) {
                StoreError::Unavailable(text)
            } else {
                StoreError::Rejected(text)
            }
        }
        // The SDK could not build the request: it cannot build it next time either.
        SdkError::ConstructionFailure(_) => StoreError::Rejected(text),
        // Timeouts, connection and credential failures, unreadable answers.
        _ => StoreError::Unavailable(text),
    };
    log(op, &error);
    error
}

/// The final error of a `TransactGetItems`. Still cancelled by a commit in flight after
/// the SDK's retries, the read is [`StoreError::Busy`]: the space is contended, and a
/// push retries it as it retries a lost commit.
pub(crate) fn transact_get_error(
    err: &SdkError<TransactGetItemsError, HttpResponse>,
) -> StoreError {
    const OP: &str = "TransactGetItems";
    let Some(TransactGetItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    else {
        return store_error(OP, err);
    };
    let text = describe(OP, err);
    let error = match read_cancellation(cancelled.cancellation_reasons()) {
        Cancellation::Conflict => StoreError::Busy(text),
        Cancellation::Throttled => StoreError::Throttled(text),
        Cancellation::Other => StoreError::Rejected(text),
    };
    log(OP, &error);
    error
}

/// What the final error of a commit's `TransactWriteItems` means: a cancellation by a
/// failed condition or a conflict is the engine's [`CommitOutcome::Conflict`] (nothing was
/// written), one by throttling is [`StoreError::Throttled`], any other is
/// [`StoreError::Rejected`].
pub(crate) fn transact_write_outcome(
    err: &SdkError<TransactWriteItemsError, HttpResponse>,
) -> Result<CommitOutcome, StoreError> {
    const OP: &str = "TransactWriteItems";
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    else {
        return Err(store_error(OP, err));
    };
    let text = describe(OP, err);
    let error = match write_cancellation(cancelled.cancellation_reasons()) {
        Cancellation::Conflict => return Ok(CommitOutcome::Conflict),
        Cancellation::Throttled => StoreError::Throttled(text),
        Cancellation::Other => StoreError::Rejected(text),
    };
    log(OP, &error);
    Err(error)
}

/// How the `TransactWriteItems` creating a space under its owner's limit (the space
/// item's `Put` first, the owner's count second) was cancelled. Nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreationCancelled {
    /// The space item exists.
    Exists,
    /// The owner's count is at the limit.
    OwnerAtLimit,
    /// Another transaction held one of the items (a creation by the same owner): try
    /// again.
    Conflict,
}

/// What the final error of a space creation's `TransactWriteItems` means (see
/// [`CreationCancelled`]); throttling is [`StoreError::Throttled`], anything else
/// [`StoreError::Rejected`].
pub(crate) fn creation_cancelled(
    err: &SdkError<TransactWriteItemsError, HttpResponse>,
) -> Result<CreationCancelled, StoreError> {
    const OP: &str = "TransactWriteItems";
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    else {
        return Err(store_error(OP, err));
    };
    let reasons = cancelled.cancellation_reasons();
    let failed = |at: usize| {
        reasons.get(at).and_then(CancellationReason::code) == Some(CONDITIONAL_CHECK_FAILED)
    };
    if failed(0) {
        return Ok(CreationCancelled::Exists);
    }
    if failed(1) {
        return Ok(CreationCancelled::OwnerAtLimit);
    }
    let text = describe(OP, err);
    let error = match write_cancellation(reasons) {
        Cancellation::Conflict => return Ok(CreationCancelled::Conflict),
        Cancellation::Throttled => StoreError::Throttled(text),
        Cancellation::Other => StoreError::Rejected(text),
    };
    log(OP, &error);
    Err(error)
}

/// Logs a failure the engine is about to see.
pub(crate) fn log(op: &str, error: &StoreError) {
    tracing::warn!(operation = op, temporary = error.is_temporary(), %error,
        "storage call failed");
}

/// A one-line account of an SDK error: the service's error code and message, or the
/// chain of causes of a transport failure. (The SDK's own `DisplayErrorContext` appends
/// the whole raw response, which is long and could echo request content.)
pub fn describe<E>(op: &str, err: &SdkError<E, HttpResponse>) -> String
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

/// A request the SDK refused to build: it would be refused the same way every time.
pub(crate) fn invalid_request(err: BuildError) -> StoreError {
    StoreError::Rejected(format!("invalid DynamoDB request: {err}"))
}

/// What the reasons of a cancelled transaction say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancellation {
    /// Someone else got there first: a condition failed, or another transaction held an
    /// item. Nothing was written.
    Conflict,
    /// DynamoDB shed load.
    Throttled,
    /// Anything else (validation, an item collection full): retrying cannot help.
    Other,
}

/// A cancelled `TransactWriteItems`. A failed condition or a transaction in flight on an
/// item is the engine's version conflict, whatever the other items say: the commit was
/// built on a version that moved (or is moving), and only the engine can rebuild it.
pub(crate) fn write_cancellation(reasons: &[CancellationReason]) -> Cancellation {
    let codes = codes(reasons);
    if codes
        .iter()
        .any(|c| matches!(*c, CONDITIONAL_CHECK_FAILED | TRANSACTION_CONFLICT))
    {
        Cancellation::Conflict
    } else if codes.iter().any(|c| THROTTLING_REASONS.contains(c)) {
        Cancellation::Throttled
    } else {
        Cancellation::Other
    }
}

/// A cancelled `TransactGetItems`. Reads have no conditions: a conflict means a commit is
/// being applied to one of the items, which passes within milliseconds. It is one only
/// when every reason given is a conflict (or none).
pub(crate) fn read_cancellation(reasons: &[CancellationReason]) -> Cancellation {
    let codes = codes(reasons);
    if codes.iter().any(|c| THROTTLING_REASONS.contains(c)) {
        Cancellation::Throttled
    } else if !codes.is_empty() && codes.iter().all(|c| *c == TRANSACTION_CONFLICT) {
        Cancellation::Conflict
    } else {
        Cancellation::Other
    }
}

/// The reasons of the items that took part in the cancellation.
fn codes(reasons: &[CancellationReason]) -> Vec<&str> {
    reasons
        .iter()
        .filter_map(CancellationReason::code)
        .filter(|c| *c != NO_REASON)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes
            .iter()
            .map(|c| CancellationReason::builder().code(*c).build())
            .collect()
    }

    #[test]
    fn write_cancellations_are_classified() {
        use Cancellation::*;
        let cases: &[(&[&str], Cancellation)] = &[
            (&["ConditionalCheckFailed", "None"], Conflict),
            (&["None", "TransactionConflict"], Conflict),
            (&["ThrottlingError", "ConditionalCheckFailed"], Conflict),
            (&["ThrottlingError", "None"], Throttled),
            (&["ProvisionedThroughputExceeded"], Throttled),
            (&["ValidationError"], Other),
            (&["None"], Other),
            (&[], Other),
        ];
        for (codes, expected) in cases {
            assert_eq!(write_cancellation(&reasons(codes)), *expected, "{codes:?}");
        }
    }

    fn cancelled_write(codes: &[&str]) -> SdkError<TransactWriteItemsError, HttpResponse> {
        use aws_sdk_dynamodb::types::error::TransactionCanceledException;
        let cancelled = TransactionCanceledException::builder()
            .set_cancellation_reasons(Some(reasons(codes)))
            .meta(
                ErrorMetadata::builder()
                    .code("TransactionCanceledException")
                    .build(),
            )
            .build();
        let raw = HttpResponse::new(400.try_into().unwrap(), SdkBody::from("{}"));
        SdkError::service_error(
            TransactWriteItemsError::TransactionCanceledException(cancelled),
            raw,
        )
    }

    #[test]
    fn creation_cancellations_say_what_stood_in_the_way() {
        use CreationCancelled::*;
        let cases: &[(&[&str], CreationCancelled)] = &[
            (&["ConditionalCheckFailed", "None"], Exists),
            // Both: the space exists, as the memory store says first.
            (
                &["ConditionalCheckFailed", "ConditionalCheckFailed"],
                Exists,
            ),
            (&["None", "ConditionalCheckFailed"], OwnerAtLimit),
            (&["None", "TransactionConflict"], Conflict),
            (&["TransactionConflict", "None"], Conflict),
        ];
        for (codes, expected) in cases {
            assert_eq!(
                creation_cancelled(&cancelled_write(codes)).unwrap(),
                *expected,
                "{codes:?}"
            );
        }
        assert!(matches!(
            creation_cancelled(&cancelled_write(&["None", "ThrottlingError"])),
            Err(StoreError::Throttled(_))
        ));
        assert!(matches!(
            creation_cancelled(&cancelled_write(&["ValidationError", "None"])),
            Err(StoreError::Rejected(_))
        ));
    }

    #[test]
    fn read_cancellations_are_classified() {
        use Cancellation::*;
        let cases: &[(&[&str], Cancellation)] = &[
            (&["None", "TransactionConflict"], Conflict),
            (&["TransactionConflict", "TransactionConflict"], Conflict),
            (&["TransactionConflict", "ThrottlingError"], Throttled),
            (&["RequestLimitExceeded"], Throttled),
            (&["TransactionConflict", "ValidationError"], Other),
            (&["None"], Other),
            (&[], Other),
        ];
        for (codes, expected) in cases {
            assert_eq!(read_cancellation(&reasons(codes)), *expected, "{codes:?}");
        }
    }

    fn service_error(status: u16, code: &str) -> SdkError<GetItemError, HttpResponse> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("the message")
            .build();
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::from("{\"v\":1}"));
        SdkError::service_error(GetItemError::generic(meta), raw)
    }

    #[test]
    fn final_errors_are_temporary_or_permanent() {
        let throttled = store_error("GetItem", &service_error(400, "ThrottlingException"));
        assert!(matches!(throttled, StoreError::Throttled(_)), "{throttled}");
        let failing = store_error("GetItem", &service_error(500, "InternalServerError"));
        assert!(matches!(failing, StoreError::Unavailable(_)), "{failing}");
        let busy = store_error(
            "GetItem",
            &service_error(400, "TransactionConflictException"),
        );
        assert!(matches!(busy, StoreError::Unavailable(_)), "{busy}");
        for code in ["ValidationException", "ResourceNotFoundException"] {
            let refused = store_error("GetItem", &service_error(400, code));
            assert!(matches!(refused, StoreError::Rejected(_)), "{refused}");
            assert!(!refused.is_temporary());
        }
        let timeout: SdkError<GetItemError, HttpResponse> =
            SdkError::timeout_error("attempt timed out");
        assert!(matches!(
            store_error("GetItem", &timeout),
            StoreError::Unavailable(_)
        ));
        let io: SdkError<GetItemError, HttpResponse> = SdkError::dispatch_failure(
            ConnectorError::io(std::io::Error::other("connection reset").into()),
        );
        assert!(matches!(
            store_error("GetItem", &io),
            StoreError::Unavailable(_)
        ));
    }

    #[test]
    fn descriptions_are_one_line_without_the_body() {
        let text = describe("GetItem", &service_error(400, "ValidationException"));
        assert_eq!(text, "GetItem: ValidationException (HTTP 400): the message");
    }
}
