//! Counting the DynamoDB requests a client sends, by operation: the cost of a push or a
//! pull is a number of requests, and tests pin those numbers down. It also notes how many
//! requests were in flight as each one was sent, which tells the ones sent at once from
//! the ones sent after another's answer.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// An SDK interceptor that counts every attempt (every HTTP request sent, retries
/// included) by operation name, e.g. `GetItem`. Clones share one tally.
///
/// Attach it with `aws_sdk_dynamodb::config::Builder::interceptor(counter.clone())`, or use
/// [`crate::local_client_with_counter`] / [`crate::with_counter`].
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    tally: Arc<Mutex<Tally>>,
}

#[derive(Debug, Default)]
struct Tally {
    counts: BTreeMap<String, u64>,
    in_flight: usize,
    /// (operation, requests in flight as it was sent), for the first [`MAX_NOTED_SENDS`].
    sends: Vec<(String, usize)>,
}

/// Marks an attempt that was sent, in its request's config bag.
#[derive(Debug, Clone)]
struct Sent;

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

/// Sends noted since the last reset: enough for any test, bounded for long benchmarks.
const MAX_NOTED_SENDS: usize = 10_000;

impl RequestCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests per operation so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.lock().counts.clone()
    }

    /// Requests of every operation so far.
    pub fn total(&self) -> u64 {
        self.lock().counts.values().sum()
    }

    /// For each request of `operation` so far, in the order they were sent, how many
    /// other requests (of any operation) were in flight as it was sent: 0 for one sent
    /// after every earlier answer had come.
    pub fn in_flight_at_sends(&self, operation: &str) -> Vec<usize> {
        self.lock()
            .sends
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, in_flight)| *in_flight)
            .collect()
    }

    pub fn reset(&self) {
        let mut tally = self.lock();
        tally.counts.clear();
        tally.sends.clear();
    }

    fn record_send(&self, operation: &str) {
        let mut tally = self.lock();
        *tally.counts.entry(operation.to_owned()).or_default() += 1;
        if tally.sends.len() < MAX_NOTED_SENDS {
            let in_flight = tally.in_flight;
            tally.sends.push((operation.to_owned(), in_flight));
        }
        tally.in_flight += 1;
    }

    fn record_end(&self) {
        let mut tally = self.lock();
        tally.in_flight = tally.in_flight.saturating_sub(1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        // A panic while holding the lock cannot leave the tally half-updated: keep counting.
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
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
        self.record_send(operation);
        cfg.interceptor_state().store_put(Sent);
        Ok(())
    }

    // Runs once per attempt, after it ended: answered, failed or timed out; also after
    // an attempt that failed before it was sent, which was never in flight.
    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Sent>().is_some() {
            cfg.interceptor_state().unset::<Sent>();
            self.record_end();
        }
        Ok(())
    }
}
