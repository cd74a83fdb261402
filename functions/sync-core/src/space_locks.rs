//! One push at a time per space within a process. Pushes to one space all condition their
//! commit on the same version, so concurrent ones mostly conflict and retry with backoff;
//! queueing them here instead turns those retries into a short wait. Across processes
//! (several Lambda instances) the store's conditional commit still decides.

use crate::ids::SpaceId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

#[derive(Default)]
pub struct SpaceLocks {
    locks: Mutex<HashMap<SpaceId, Arc<tokio::sync::Mutex<()>>>>,
}

impl SpaceLocks {
    /// Waits for the space's turn; the turn ends when the guard drops.
    pub async fn lock(&self, space: &SpaceId) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            // Forget spaces nobody holds or waits for, so the map stays as small as the
            // number of spaces being pushed to right now.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            locks.entry(space.clone()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_turn_per_space_and_spaces_are_independent() {
        let locks = Arc::new(SpaceLocks::default());
        let a = SpaceId::parse("a").unwrap();
        let b = SpaceId::parse("b").unwrap();
        let held = locks.lock(&a).await;
        // Another space is not held up.
        let other = tokio::time::timeout(Duration::from_millis(100), locks.lock(&b)).await;
        assert!(other.is_ok());
        drop(other);
        // The same space waits until the guard drops.
        let waiting = {
            let locks = locks.clone();
            let a = a.clone();
            tokio::spawn(async move { drop(locks.lock(&a).await) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(held);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        // Nothing held: the next lock call forgets both spaces.
        let c = SpaceId::parse("c").unwrap();
        let _c = locks.lock(&c).await;
        assert_eq!(locks.locks.lock().unwrap().len(), 1);
    }
}
