//! The garbage collector's function: an EventBridge schedule (daily) invokes it; each run
//! collects the garbage of every space ([`sync_core::gc`]) until shortly before the
//! invocation's deadline and reports what it did in one log line, one EMF line and its
//! answer. A store error that stops the run (listing the spaces) fails the invocation, so
//! that Lambda counts an error and retries it; a space whose collection failed is counted
//! (`SpacesFailed`) and left for the next run. Every step of a run is safe to stop after
//! and to repeat, and what a run leaves the next one collects.

use crate::emf::EmfWriter;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sync_core::Store;
use sync_core::gc::{self, GcPolicy, GcReport};
use sync_core::store::{StoreError, now_ms};

/// Time kept between a run's last space and the invocation's deadline: the space under
/// way finishes, and the answer and the metrics go out, before Lambda cuts the run.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// The function after its cold start: the table's store and the policy.
pub struct GcFunction {
    store: Arc<dyn Store>,
    policy: GcPolicy,
    emf: Option<EmfWriter>,
}

impl GcFunction {
    pub fn new(store: Arc<dyn Store>, policy: GcPolicy) -> Self {
        Self {
            store,
            policy,
            emf: None,
        }
    }

    /// Also writes each run's figures as an EMF line to `writer`.
    pub fn with_emf(mut self, writer: EmfWriter) -> Self {
        self.emf = Some(writer);
        self
    }

    pub fn policy(&self) -> GcPolicy {
        self.policy
    }

    /// One invocation: `event` is the schedule's (its content is not needed: the run
    /// collects as of now), `deadline_ms` the invocation's deadline (epoch milliseconds,
    /// Lambda's `context.deadline`; 0 for none). Answers the run's report as JSON.
    pub async fn handle(&self, event: &Value, deadline_ms: u64) -> Result<Value, StoreError> {
        let now = now_ms();
        let scheduled_at = event.get("time").and_then(Value::as_str);
        tracing::debug!(scheduled_at, "garbage collection started");
        let deadline = run_deadline(deadline_ms, now, Instant::now());
        let report = run_gc(self.store.as_ref(), &self.policy, now, deadline).await?;
        if let Some(emf) = &self.emf {
            emf.gc_run(&report);
        }
        Ok(report_json(&report))
    }
}

/// When a run must stop: [`DEADLINE_MARGIN`] before `deadline_ms` (as of `now_ms`, which
/// is the instant `now`); at once when less than that is left; `None` without a
/// deadline (`deadline_ms` 0).
pub fn run_deadline(deadline_ms: u64, now_ms: u64, now: Instant) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Some(now + left.saturating_sub(DEADLINE_MARGIN))
}

/// Collects every space's garbage as of `now_ms` under `policy`, until `deadline`, and
/// logs what it did: counts only, never a key, a value or an ID.
pub async fn run_gc(
    store: &dyn Store,
    policy: &GcPolicy,
    now_ms: u64,
    deadline: Option<Instant>,
) -> Result<GcReport, StoreError> {
    let started = Instant::now();
    let report = gc::collect(store, policy, now_ms, deadline)
        .await
        .inspect_err(|e| {
            tracing::error!(error = %e, elapsed_ms = elapsed_ms(started),
                "garbage collection failed");
        })?;
    tracing::info!(
        spaces = report.spaces,
        tombstones_removed = report.tombstones_removed,
        clients_removed = report.clients_removed,
        floors_raised = report.floors_raised,
        spaces_deferred = report.spaces_deferred,
        spaces_failed = report.spaces_failed,
        incomplete = report.incomplete,
        resumed = report.resumed,
        elapsed_ms = elapsed_ms(started),
        "garbage collection run"
    );
    Ok(report)
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The answer of an invocation: the report's figures.
pub fn report_json(report: &GcReport) -> Value {
    json!({
        "spaces": report.spaces,
        "tombstonesRemoved": report.tombstones_removed,
        "clientsRemoved": report.clients_removed,
        "floorsRaised": report.floors_raised,
        "spacesDeferred": report.spaces_deferred,
        "spacesFailed": report.spaces_failed,
        "incomplete": report.incomplete,
        "resumed": report.resumed,
    })
}

/// The Lambda runtime loop of the garbage collector's function.
pub async fn run(function: Arc<GcFunction>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = function.clone();
        async move {
            function
                .handle(&event.payload, event.context.deadline)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_stops_the_margin_before_the_deadline() {
        let now = Instant::now();
        let at = 1_000_000;
        assert_eq!(run_deadline(0, at, now), None);
        assert_eq!(
            run_deadline(at + 900_000, at, now),
            Some(now + Duration::from_secs(890))
        );
        // Less than the margin left, or the deadline past: stop at once.
        assert_eq!(run_deadline(at + 5_000, at, now), Some(now));
        assert_eq!(run_deadline(at - 5_000, at, now), Some(now));
    }

    #[test]
    fn the_answer_carries_every_figure() {
        let report = GcReport {
            spaces: 5,
            tombstones_removed: 4,
            clients_removed: 3,
            floors_raised: 2,
            spaces_deferred: 1,
            spaces_failed: 6,
            incomplete: true,
            resumed: true,
        };
        assert_eq!(
            report_json(&report),
            json!({"spaces": 5, "tombstonesRemoved": 4, "clientsRemoved": 3,
                   "floorsRaised": 2, "spacesDeferred": 1, "spacesFailed": 6,
                   "incomplete": true, "resumed": true})
        );
    }
}
