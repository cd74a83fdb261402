//! The mutator registry. A mutator is a Rust function over a [`Tx`], registered under the
//! name the client's mutator has. The app's own mutators live in [`app`].

pub mod app;

use crate::store::StoreError;
use crate::tx::Tx;
use serde_json::Value;
use std::collections::HashMap;

/// Why a mutation had no effect. Every variant but a temporary `Store` error is permanent: the mutation is
/// marked processed (its LMID advances) with none of its writes kept, or the client would
/// resend it forever and block everything behind it.
#[derive(Debug, thiserror::Error)]
pub enum MutationError {
    #[error("no mutator is registered under this name")]
    UnknownMutator,
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    #[error("rejected: {0}")]
    Rejected(String),
    #[error("entry of {bytes} bytes exceeds the {max}-byte limit")]
    EntryTooLarge { bytes: usize, max: usize },
    #[error("key of {bytes} bytes exceeds the {max}-byte limit")]
    KeyTooLong { bytes: usize, max: usize },
    #[error("value nested deeper than {max} levels")]
    ValueTooDeep { max: usize },
    #[error("the mutation writes more than one commit can hold")]
    CommitTooLarge,
    /// A temporary storage failure aborts the push without advancing anything (the client
    /// retries); a permanent one (the store refuses the read, or what it holds is corrupt)
    /// fails the mutation like any other permanent error.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MutationError {
    pub fn is_permanent(&self) -> bool {
        match self {
            MutationError::Store(e) => !e.is_temporary(),
            _ => true,
        }
    }
}

/// The server side of a client mutator. It must be deterministic given what it reads:
/// the engine may run it again when a commit has to be split or retried.
#[async_trait::async_trait]
pub trait Mutator: Send + Sync {
    async fn run(&self, tx: &mut Tx<'_>, args: &Value) -> Result<(), MutationError>;
}

#[derive(Default)]
pub struct Registry {
    mutators: HashMap<String, Box<dyn Mutator>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, name: &str, mutator: impl Mutator + 'static) -> Self {
        self.mutators.insert(name.to_owned(), Box::new(mutator));
        self
    }

    /// This registry with every mutator of `fallback` whose name it lacks: a mutator of
    /// `self` wins over one of `fallback` under the same name.
    pub fn or_else(mut self, fallback: Registry) -> Self {
        for (name, mutator) in fallback.mutators {
            self.mutators.entry(name).or_insert(mutator);
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&dyn Mutator> {
        self.mutators.get(name).map(|m| m.as_ref())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.mutators.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str);

    #[async_trait::async_trait]
    impl Mutator for Named {
        async fn run(&self, _tx: &mut Tx<'_>, _args: &Value) -> Result<(), MutationError> {
            Err(MutationError::Rejected(self.0.to_owned()))
        }
    }

    /// What `name` does in `registry`: the test mutators say who they are.
    async fn which(registry: &Registry, name: &str) -> Option<String> {
        let store = crate::memory_store::MemoryStore::new();
        let space = crate::SpaceId::parse("s").expect("a space id");
        let mut overlay = crate::tx::Overlay::default();
        let mut tx = Tx::new(&store, &space, crate::Store::limits(&store), &mut overlay);
        match registry.get(name)?.run(&mut tx, &Value::Null).await {
            Err(MutationError::Rejected(who)) => Some(who),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn or_else_keeps_own_mutators_and_adds_the_others() {
        let own = Registry::new().with("a", Named("own a"));
        let fallback = Registry::new()
            .with("a", Named("fallback a"))
            .with("b", Named("fallback b"));
        let merged = own.or_else(fallback);
        let mut names: Vec<_> = merged.names().collect();
        names.sort();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(which(&merged, "a").await.as_deref(), Some("own a"));
        assert_eq!(which(&merged, "b").await.as_deref(), Some("fallback b"));
        assert!(merged.get("c").is_none());
    }
}
