//! Pokes: the empty hint, sent after a push commits, that tells a space's clients to pull.

use crate::ids::SpaceId;

/// Fans a poke out to every connection of a space. Implementations never fail the push
/// (it has already committed): they log delivery problems and clean up dead connections.
#[async_trait::async_trait]
pub trait Poker: Send + Sync {
    async fn poke(&self, space: &SpaceId);
}

/// For deployments and tests without a poke channel.
pub struct NoPoker;

#[async_trait::async_trait]
impl Poker for NoPoker {
    async fn poke(&self, _space: &SpaceId) {}
}
