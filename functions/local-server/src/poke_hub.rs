//! The in-process [`Poker`]: a registry of the open poke sockets of each space.
//!
//! Each socket task holds a [`Subscription`] with a bounded channel of one slot. A poke
//! carries no data, so a poke that finds the slot full is already covered by the one
//! waiting there; `try_send` therefore never blocks a push, however slow a socket is.
//! A subscription removes itself when dropped, and a poke that finds a channel closed
//! removes it too.

use crate::metrics::PrometheusMetrics;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use sync_core::SpaceId;
use sync_core::poke::Poker;
use tokio::sync::{mpsc, watch};

type Connections = HashMap<SpaceId, HashMap<u64, mpsc::Sender<()>>>;

#[derive(Debug)]
pub struct PokeHub {
    connections: Mutex<Connections>,
    next_id: AtomicU64,
    closing: watch::Sender<bool>,
    /// The server's metrics: the hub counts its pokes there, the routes their requests.
    metrics: Arc<PrometheusMetrics>,
}

impl PokeHub {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            closing: watch::Sender::new(false),
            metrics: Arc::new(PrometheusMetrics::new()),
        })
    }

    /// The server's metrics registry.
    pub fn metrics(&self) -> Arc<PrometheusMetrics> {
        Arc::clone(&self.metrics)
    }

    /// Registers a connection of `space`; it receives pokes until the subscription drops.
    pub fn subscribe(self: &Arc<Self>, space: SpaceId) -> Subscription {
        self.try_subscribe(space, usize::MAX)
            .unwrap_or_else(|| unreachable!("no limit"))
    }

    /// [`PokeHub::subscribe`], unless `space` has `limit` connections already: `None`.
    pub fn try_subscribe(self: &Arc<Self>, space: SpaceId, limit: usize) -> Option<Subscription> {
        let (tx, rx) = mpsc::channel(1);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut connections = self.lock();
            let of_space = connections.entry(space.clone()).or_default();
            if of_space.len() >= limit {
                if of_space.is_empty() {
                    connections.remove(&space);
                }
                return None;
            }
            of_space.insert(id, tx);
        }
        Some(Subscription {
            hub: Arc::clone(self),
            space,
            id,
            rx,
            closing: self.closing.subscribe(),
        })
    }

    /// Open connections of `space`.
    pub fn connection_count(&self, space: &SpaceId) -> usize {
        self.lock().get(space).map_or(0, HashMap::len)
    }

    /// Tells every subscription to end (server shutdown); later ones end at once.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// The map stays consistent whatever panicked while holding the lock (every change
    /// is a single insert or remove), so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Connections> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn remove(&self, space: &SpaceId, id: u64) {
        let mut connections = self.lock();
        if let Some(of_space) = connections.get_mut(space) {
            of_space.remove(&id);
            if of_space.is_empty() {
                connections.remove(space);
            }
        }
    }
}

#[async_trait::async_trait]
impl Poker for PokeHub {
    async fn poke(&self, space: &SpaceId) {
        let mut connections = self.lock();
        let Some(of_space) = connections.get_mut(space) else {
            return;
        };
        let before = of_space.len();
        of_space.retain(|_, tx| match tx.try_send(()) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(())) => true,
            Err(mpsc::error::TrySendError::Closed(())) => false,
        });
        let live = of_space.len();
        self.metrics.record_pokes(live, before - live);
        if live == 0 {
            connections.remove(space);
        }
        tracing::debug!(space_id = %space, connections = live, dropped = before - live, "poked");
    }
}

/// The push's [`Poker`]: the fan-out to the space's sockets runs in a task of its own,
/// started after the commit, and the push answers without waiting for it, as on Lambda,
/// where the poke function fans out from the table's stream while the push has already
/// answered.
#[derive(Debug)]
pub struct AfterCommit(Arc<PokeHub>);

impl PokeHub {
    /// This hub as the push's poker (see [`AfterCommit`]).
    pub fn after_commit(self: &Arc<Self>) -> Arc<AfterCommit> {
        Arc::new(AfterCommit(Arc::clone(self)))
    }
}

#[async_trait::async_trait]
impl Poker for AfterCommit {
    async fn poke(&self, space: &SpaceId) {
        let hub = Arc::clone(&self.0);
        let space = space.clone();
        tokio::spawn(async move { hub.poke(&space).await });
    }
}

/// One connection's end of the hub.
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<PokeHub>,
    space: SpaceId,
    id: u64,
    rx: mpsc::Receiver<()>,
    closing: watch::Receiver<bool>,
}

impl Subscription {
    /// Waits for the next poke; `None` once the hub is closing.
    pub async fn next_poke(&mut self) -> Option<()> {
        tokio::select! {
            // Shutdown wins over a pending poke: the client reconnects and pulls anyway.
            biased;
            _ = self.closing.wait_for(|closing| *closing) => None,
            poke = self.rx.recv() => poke,
        }
    }

    pub fn space(&self) -> &SpaceId {
        &self.space
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(&self.space, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn space(name: &str) -> SpaceId {
        SpaceId::parse(name).unwrap()
    }

    async fn pending(sub: &mut Subscription) -> bool {
        tokio::time::timeout(Duration::from_millis(20), sub.next_poke())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn after_commit_pokes_in_a_task_of_its_own() {
        let hub = PokeHub::new();
        let mut a = hub.subscribe(space("a"));
        let poker = hub.after_commit();
        // A current-thread runtime: the fan-out cannot run before the push goes on.
        poker.poke(&space("a")).await;
        assert!(a.rx.try_recv().is_err(), "poked before the push went on");
        assert_eq!(a.next_poke().await, Some(()));
        // Sockets of other spaces stay quiet.
        let mut b = hub.subscribe(space("b"));
        poker.poke(&space("a")).await;
        assert_eq!(a.next_poke().await, Some(()));
        assert!(!pending(&mut b).await);
    }

    #[tokio::test]
    async fn pokes_reach_every_connection_of_the_space_only() {
        let hub = PokeHub::new();
        let mut a1 = hub.subscribe(space("a"));
        let mut a2 = hub.subscribe(space("a"));
        let mut b = hub.subscribe(space("b"));
        hub.poke(&space("a")).await;
        assert_eq!(a1.next_poke().await, Some(()));
        assert_eq!(a2.next_poke().await, Some(()));
        assert!(!pending(&mut b).await);
    }

    #[tokio::test]
    async fn pokes_to_a_slow_connection_coalesce_without_blocking() {
        let hub = PokeHub::new();
        let mut slow = hub.subscribe(space("a"));
        for _ in 0..1000 {
            hub.poke(&space("a")).await;
        }
        assert_eq!(hub.connection_count(&space("a")), 1);
        assert!(pending(&mut slow).await);
        assert!(!pending(&mut slow).await, "many pokes fold into one");
    }

    #[tokio::test]
    async fn dropped_subscriptions_leave_the_registry() {
        let hub = PokeHub::new();
        let a1 = hub.subscribe(space("a"));
        let a2 = hub.subscribe(space("a"));
        assert_eq!(hub.connection_count(&space("a")), 2);
        drop(a1);
        assert_eq!(hub.connection_count(&space("a")), 1);
        drop(a2);
        assert_eq!(hub.connection_count(&space("a")), 0);
        assert!(hub.lock().is_empty());
        // Poking a space without connections is a no-op.
        hub.poke(&space("a")).await;
    }

    #[tokio::test]
    async fn a_closed_channel_is_removed_on_the_next_poke() {
        let hub = PokeHub::new();
        let mut sub = hub.subscribe(space("a"));
        // The socket task ended without dropping its subscription yet.
        sub.rx.close();
        hub.poke(&space("a")).await;
        assert_eq!(hub.connection_count(&space("a")), 0);
    }

    #[tokio::test]
    async fn a_space_holds_at_most_the_limit() {
        let hub = PokeHub::new();
        let first = hub.try_subscribe(space("a"), 2).unwrap();
        let _second = hub.try_subscribe(space("a"), 2).unwrap();
        assert!(hub.try_subscribe(space("a"), 2).is_none());
        assert!(hub.try_subscribe(space("b"), 2).is_some(), "per space");
        drop(first);
        assert!(
            hub.try_subscribe(space("a"), 2).is_some(),
            "a freed place is free"
        );
        assert!(hub.try_subscribe(space("c"), 0).is_none());
        assert_eq!(hub.connection_count(&space("c")), 0);
        assert!(!hub.lock().contains_key(&space("c")));
    }

    #[tokio::test]
    async fn close_all_ends_current_and_later_subscriptions() {
        let hub = PokeHub::new();
        let mut before = hub.subscribe(space("a"));
        hub.poke(&space("a")).await;
        hub.close_all();
        assert_eq!(before.next_poke().await, None);
        let mut after = hub.subscribe(space("a"));
        assert_eq!(after.next_poke().await, None);
    }
}
