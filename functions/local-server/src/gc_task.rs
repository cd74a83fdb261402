//! Garbage collection on a timer: the local stand-in of the deployment's scheduled
//! function (see [`sync_core::gc`]).

use crate::config::GcConfig;
use std::sync::Arc;
use sync_core::Store;
use sync_core::store::now_ms;
use tokio::task::JoinHandle;

/// Runs garbage collection every `config.interval` (the first run one interval after
/// start) until the handle is aborted. A failed run is logged and the next one tries again.
pub fn spawn(store: Arc<dyn Store>, config: GcConfig) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match sync_core::gc::collect(store.as_ref(), &config.policy, now_ms(), None).await {
                Ok(report) => tracing::debug!(
                    spaces = report.spaces,
                    tombstones = report.tombstones_removed,
                    clients = report.clients_removed,
                    floors = report.floors_raised,
                    deferred = report.spaces_deferred,
                    "garbage collection run"
                ),
                Err(e) => tracing::warn!(error = %e, "garbage collection run failed"),
            }
        }
    })
}
