//! Counting the DynamoDB requests a client sends, by operation: the cost of a push or a
//! pull is a number of requests, and tests pin those numbers down.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// An SDK interceptor that counts every attempt (every HTTP request sent, retries
/// included) by operation name, e.g. `GetItem`. Clones share one tally.
///
/// Attach it with `aws_sdk_dynamodb::config::Builder::interceptor(counter.clone())`, or use
/// [`crate::local_client_with_counter`] / [`crate::with_counter`].
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl RequestCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests per operation so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.lock().clone()
    }

    /// Requests of every operation so far.
    pub fn total(&self) -> u64 {
        self.lock().values().sum()
    }

    pub fn reset(&self) {
        self.lock().clear();
    }

    fn record(&self, operation: &str) {
        *self.lock().entry(operation.to_owned()).or_default() += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        // A panic while holding the lock cannot leave the map half-updated: keep counting.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    // Runs once per attempt, just before the request goes out.
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or("unknown", Metadata::name);
        self.record(operation);
        Ok(())
    }
}
