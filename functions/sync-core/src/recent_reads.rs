//! The entries recent pushes to a space read, per process: the next push to that space
//! reads them with its snapshot (one DynamoDB round trip instead of two), which also
//! narrows the window in which another instance's commit can make it conflict.

use crate::ids::SpaceId;
use std::collections::HashMap;
use std::sync::Mutex;

/// Spaces remembered at most; past it the memory starts over (a miss costs one round
/// trip, never correctness).
const MAX_SPACES: usize = 4_096;

#[derive(Default)]
pub struct RecentReads {
    spaces: Mutex<HashMap<SpaceId, Vec<String>>>,
}

impl RecentReads {
    /// The entries the space's last push read.
    pub fn of(&self, space: &SpaceId) -> Vec<String> {
        let spaces = self.spaces.lock().unwrap_or_else(|e| e.into_inner());
        spaces.get(space).cloned().unwrap_or_default()
    }

    /// Remembers what a push to `space` read.
    pub fn remember(&self, space: &SpaceId, keys: Vec<String>) {
        let mut spaces = self.spaces.lock().unwrap_or_else(|e| e.into_inner());
        if keys.is_empty() {
            spaces.remove(space);
            return;
        }
        if spaces.len() >= MAX_SPACES && !spaces.contains_key(space) {
            spaces.clear();
        }
        spaces.insert(space.clone(), keys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_per_space_and_stays_bounded() {
        let reads = RecentReads::default();
        let a = SpaceId::parse("a").unwrap();
        assert!(reads.of(&a).is_empty());
        reads.remember(&a, vec!["count".into()]);
        assert_eq!(reads.of(&a), ["count"]);
        reads.remember(&a, Vec::new());
        assert!(reads.of(&a).is_empty());
        for i in 0..MAX_SPACES + 10 {
            reads.remember(&SpaceId::parse(&format!("s{i}")).unwrap(), vec!["k".into()]);
        }
        assert!(reads.spaces.lock().unwrap().len() <= MAX_SPACES);
    }
}
