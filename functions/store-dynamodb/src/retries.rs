//! How the SDK retries DynamoDB calls: its standard strategy with our bounds, and a
//! classifier for the answers its default classifiers do not understand.
//!
//! The standard strategy backs off exponentially with full jitter, reuses an operation's
//! serialized request (so a `TransactWriteItems` keeps the `ClientRequestToken` the SDK
//! filled in once per operation, and a retry of a commit whose answer was lost is
//! recognized as the same transaction), and draws each retry from a token bucket shared
//! by the process's DynamoDB clients: when DynamoDB fails broadly, retries stop before
//! they add to the load, and calls fail at their first error.
//!
//! The SDK's default classifiers retry 5xx, timeouts, I/O failures and throttling codes.
//! They never retry a `TransactionCanceledException` (HTTP 400), whose reasons decide:
//! - `TransactGetItems` cancelled only because a commit is being applied to an item
//!   (`TransactionConflict`) passes within milliseconds: retried as transient;
//! - `TransactWriteItems` cancelled by a failed condition or a conflict is the engine's
//!   version conflict ([`sync_core::store::CommitOutcome::Conflict`]): never retried here,
//!   the engine re-reads and rebuilds the commit;
//! - either cancelled by throttling reasons: retried as throttling.
//!
//! And a single-item write that met a transaction in flight
//! (`TransactionConflictException`), or a commit whose earlier try is still running
//! (`TransactionInProgressException`), is retried as transient.

use crate::errors::{Cancellation, TRANSIENT_CODES, read_cancellation, write_cancellation};
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemError;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::QueryError;
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_smithy_runtime_api::client::interceptors::context::{Error, InterceptorContext};
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};
use std::time::Duration;

/// Tries of one call, the first included. A DynamoDB call answers in milliseconds, so
/// the bound is for calls that do not: with the 5 s attempt timeout of a Lambda client,
/// four stuck tries and their pauses take about 20 s, under the 25 s a request may take
/// (`sync_core::api::DEFAULT_REQUEST_TIMEOUT`); the client then retries the request.
pub const MAX_ATTEMPTS: u32 = 4;
/// Ceiling of the first pause; it doubles per retry, each pause drawn uniformly below its
/// ceiling (full jitter): at most 50 + 100 + 200 = 350 ms over the three retries, about
/// half that on average. A commit lands on its items, and short throttling passes, in
/// that time; a store still throttling after it is reported as such rather than waited
/// on.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
/// Ceiling of any one pause, should [`MAX_ATTEMPTS`] grow.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The retry configuration of every client this crate builds.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Sorts DynamoDB's transaction cancellations and transaction-in-flight errors into
/// retries and refusals (see the module documentation). Registered on the client's
/// configuration, so it sees every operation's errors; it runs after the SDK's own
/// classifiers and decides where it has an opinion.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TransactionClassifier;

impl ClassifyRetry for TransactionClassifier {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(error)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        let Some(error) = error.as_operation_error() else {
            return RetryAction::NoActionIndicated;
        };
        classify(error)
    }

    fn name(&self) -> &'static str {
        "DynamoDB transactions"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

fn classify(error: &Error) -> RetryAction {
    if let Some(TransactWriteItemsError::TransactionCanceledException(e)) =
        error.downcast_ref::<TransactWriteItemsError>()
    {
        return match write_cancellation(e.cancellation_reasons()) {
            Cancellation::Throttled => RetryAction::throttling_error(),
            // The engine's conflict, or a refusal that would come back.
            Cancellation::Conflict | Cancellation::Other => RetryAction::RetryForbidden,
        };
    }
    if let Some(TransactGetItemsError::TransactionCanceledException(e)) =
        error.downcast_ref::<TransactGetItemsError>()
    {
        return match read_cancellation(e.cancellation_reasons()) {
            Cancellation::Conflict => RetryAction::transient_error(),
            Cancellation::Throttled => RetryAction::throttling_error(),
            Cancellation::Other => RetryAction::RetryForbidden,
        };
    }
    match error_code(error) {
        Some(code) if TRANSIENT_CODES.contains(&code) => RetryAction::transient_error(),
        _ => RetryAction::NoActionIndicated,
    }
}

/// The error code of an operation error of the item operations (the only ones whose
/// errors this classifier looks into).
fn error_code(error: &Error) -> Option<&str> {
    macro_rules! code_of {
        ($($operation_error:ty),+) => {
            $(
                if let Some(e) = error.downcast_ref::<$operation_error>() {
                    return e.code();
                }
            )+
        };
    }
    code_of!(
        GetItemError,
        PutItemError,
        UpdateItemError,
        DeleteItemError,
        QueryError,
        BatchGetItemError,
        BatchWriteItemError,
        TransactGetItemsError,
        TransactWriteItemsError
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::{
        TransactionCanceledException, TransactionConflictException, TransactionInProgressException,
    };
    use aws_smithy_types::error::ErrorMetadata;

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes
            .iter()
            .map(|c| CancellationReason::builder().code(*c).build())
            .collect()
    }

    fn cancelled(codes: &[&str]) -> TransactionCanceledException {
        TransactionCanceledException::builder()
            .set_cancellation_reasons(Some(reasons(codes)))
            .meta(
                ErrorMetadata::builder()
                    .code("TransactionCanceledException")
                    .build(),
            )
            .build()
    }

    fn write(codes: &[&str]) -> RetryAction {
        classify(&Error::erase(
            TransactWriteItemsError::TransactionCanceledException(cancelled(codes)),
        ))
    }

    fn read(codes: &[&str]) -> RetryAction {
        classify(&Error::erase(
            TransactGetItemsError::TransactionCanceledException(cancelled(codes)),
        ))
    }

    #[test]
    fn commits_that_conflict_are_left_to_the_engine() {
        assert_eq!(
            write(&["ConditionalCheckFailed", "None"]),
            RetryAction::RetryForbidden
        );
        assert_eq!(
            write(&["None", "TransactionConflict"]),
            RetryAction::RetryForbidden
        );
        assert_eq!(write(&["ValidationError"]), RetryAction::RetryForbidden);
        assert_eq!(
            write(&["ThrottlingError", "None"]),
            RetryAction::throttling_error()
        );
    }

    #[test]
    fn reads_cancelled_by_a_commit_in_flight_are_retried() {
        assert_eq!(
            read(&["None", "TransactionConflict"]),
            RetryAction::transient_error()
        );
        assert_eq!(
            read(&["ProvisionedThroughputExceeded"]),
            RetryAction::throttling_error()
        );
        assert_eq!(
            read(&["TransactionConflict", "ValidationError"]),
            RetryAction::RetryForbidden
        );
    }

    #[test]
    fn transactions_in_flight_are_retried() {
        let meta = |code: &str| ErrorMetadata::builder().code(code).build();
        let in_progress = TransactWriteItemsError::TransactionInProgressException(
            TransactionInProgressException::builder()
                .meta(meta("TransactionInProgressException"))
                .build(),
        );
        assert_eq!(
            classify(&Error::erase(in_progress)),
            RetryAction::transient_error()
        );
        let conflict = UpdateItemError::TransactionConflictException(
            TransactionConflictException::builder()
                .meta(meta("TransactionConflictException"))
                .build(),
        );
        assert_eq!(
            classify(&Error::erase(conflict)),
            RetryAction::transient_error()
        );
        let refused = GetItemError::generic(meta("ValidationException"));
        assert_eq!(
            classify(&Error::erase(refused)),
            RetryAction::NoActionIndicated
        );
    }
}
