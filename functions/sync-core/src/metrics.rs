//! Per-request figures for metrics. The service produces one [`RequestMetrics`] per request
//! and hands it to its [`MetricsSink`]; each transport decides where the figures go
//! (CloudWatch Embedded Metric Format on Lambda, a Prometheus registry locally).
//!
//! The record carries no space, user or client ID and no user data: only the route, the
//! outcome and counts, so that no sink can turn an ID into a metric dimension.

use crate::api::Route;
use std::time::Duration;

/// What one push did, from the engine's [`crate::engine::PushOutcome`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushFigures {
    /// Mutations applied (processed without a permanent failure).
    pub applied: usize,
    /// Mutations that failed permanently (processed with no effect).
    pub failed: usize,
    /// Version conflicts, each followed by a retry from a fresh snapshot.
    pub conflicts: u32,
    /// Commits made.
    pub commits: usize,
}

/// The figures of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMetrics {
    /// `None` for a path that is no route (answered 404).
    pub route: Option<Route>,
    /// The HTTP status answered.
    pub status: u16,
    /// Why the request was refused: an [`crate::error::ApiError::code`], or the protocol
    /// error answered with status 200 (`VersionNotSupported`, `ClientStateNotFound`).
    pub refusal: Option<&'static str>,
    pub duration: Duration,
    pub request_bytes: usize,
    /// Bytes of the body as sent (after gzip, when the response is compressed).
    pub response_bytes: usize,
    /// Set for a push that ran the engine to the end.
    pub push: Option<PushFigures>,
}

impl RequestMetrics {
    /// The route's name, `"none"` for a path that is no route.
    pub fn route_name(&self) -> &'static str {
        self.route.map(Route::name).unwrap_or("none")
    }
}

/// Where a service's request figures go. Called once per request, after the response is
/// ready; it must not block for long.
pub trait MetricsSink: Send + Sync {
    fn record(&self, metrics: &RequestMetrics);
}

/// Records nothing: the default of [`crate::SyncService`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl MetricsSink for NoMetrics {
    fn record(&self, _: &RequestMetrics) {}
}
