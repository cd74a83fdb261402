//! The app's JavaScript mutators, run by the server with authority.
//!
//! An app writes each mutator once, in JavaScript (`client/src/mutators.js`): the browser
//! runs it speculatively through Replicache, and the server runs the same code here, in
//! QuickJS, as a [`sync_core::mutators::Mutator`]. [`JsMutators::load`] takes one
//! self-contained ES module exporting `makeMutators()`; every function of the object it
//! returns becomes a mutator of that name ([`JsMutators::registry`]). [`app::registry`] is
//! the product's registry: `client/src/mutators.js` (compiled into the binary) with the
//! Rust mutators of [`sync_core::mutators::app`] on top, a Rust mutator winning a name both
//! define.
//!
//! # Why QuickJS (through `rquickjs`)
//! Small (well under a megabyte of code), embeddable in a Lambda binary, built from C with
//! the system's compiler (no prebuilt library, no V8 toolchain), no JIT to warm up or to
//! harden, and it has what bounding untrusted-ish code needs: an interrupt handler (the
//! time limit) and a memory limit per runtime. It starts in about a millisecond. It has no
//! file, network or process access unless the embedder adds its `std`/`os` modules, which
//! this crate does not; the only thing a mutator reaches is its `tx`.
//!
//! # How a mutation runs
//! A `&mut Tx` cannot be captured by JavaScript closures, so each engine lives on an OS
//! thread of its own ([`pool`]: a small pool, each thread reusing one runtime and context
//! across mutations and requests). A mutation is a message to an engine thread; the `tx`
//! methods call a synchronous host function that sends the operation (get, has, put, del,
//! scan) back to the async side, which runs it on the real `Tx` and answers; the
//! JavaScript side wraps answers in resolved promises. No tokio thread ever waits for
//! JavaScript, and no engine thread ever runs async Rust.
//!
//! The `tx` is Replicache's `WriteTransaction`: `get`, `has`, `set` and `put`, `del`,
//! `scan()` / `scan({prefix, start, limit})` (iterable with `for await`, with `keys()`,
//! `values()`, `entries()` and `toArray()`), `reason` = `"authoritative"`, `location` =
//! `"server"`, `clientID` and `mutationID` (the mutation's own, from `Tx`). Reads see the
//! mutation's own writes (that is what `Tx` does). A scan returns keys in UTF-8 byte order, the order of the stores and of
//! Replicache itself (`start` is compared in that order too); scans of an index
//! (`indexName`) are not supported.
//!
//! Values cross as JSON text, parsed on the Rust side with `float_roundtrip`, so every
//! number comes back as JavaScript printed it. A value JSON cannot carry exactly (`NaN`,
//! `Infinity`, `undefined`, a function) fails the mutation instead of being changed.
//!
//! # Bounds
//! Each mutation has a time limit ([`Limits::time`]: JavaScript running time, not the
//! time spent waiting for the store) enforced by the interrupt handler, and the runtime a
//! memory limit ([`Limits::memory_bytes`]). An endless loop, an endless allocation, a
//! thrown error or a rejected promise fails that mutation permanently
//! ([`MutationError::Rejected`](sync_core::mutators::MutationError::Rejected): its LMID
//! advances, none of its writes are kept) and the push goes on. After any failure the
//! thread replaces its engine with a fresh one. A storage error during a read fails the
//! mutation with that error even if the mutator caught it, so a temporary one aborts the
//! push exactly as it does for a Rust mutator.
//!
//! Mutators must be deterministic given what they read, as Rust ones must: the engine may
//! run a mutator again when a commit is split or retried. `Date.now()` and
//! `Math.random()` are not blocked; a mutator must not let them decide what it writes.

pub mod app;
mod engine;
mod mutator;
mod pool;
mod protocol;

pub use mutator::JsMutator;

use pool::Pool;
use std::sync::Arc;
use std::time::Duration;
use sync_core::Registry;

/// The bounds of one mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// JavaScript running time per mutation (waits for the store excluded).
    pub time: Duration,
    /// The memory of one engine: the module and the running mutation.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            time: Duration::from_millis(50),
            memory_bytes: 32 * 1024 * 1024,
        }
    }
}

/// How the mutators are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub limits: Limits,
    /// Engine threads: how many JavaScript mutations run at the same time.
    pub threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            threads: 2,
        }
    }
}

/// Why a mutation failed in JavaScript (it fails permanently, as `Rejected`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    #[error("the mutator ran past its time limit of {0:?}")]
    TimeLimit(Duration),
    #[error("the mutator ran out of memory")]
    MemoryLimit,
    #[error("the mutator threw {0}")]
    Threw(String),
    #[error("the mutator's promise never settled")]
    NeverSettled,
    #[error("no JavaScript engine is available")]
    Unavailable,
}

/// Why the mutators could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot load the JavaScript mutators: {0}")]
    Module(String),
    #[error("cannot start a JavaScript engine thread: {0}")]
    Thread(String),
}

/// A loaded JavaScript module of mutators and the engine threads that run them.
pub struct JsMutators {
    pool: Arc<Pool>,
    names: Vec<String>,
}

impl JsMutators {
    /// Loads `source`, a self-contained ES module exporting `makeMutators()`, into
    /// `config.threads` engines. Fails if the module does not evaluate or lacks
    /// `makeMutators`.
    pub fn load(source: &str, config: Config) -> Result<Self, LoadError> {
        let (pool, mut names) = Pool::start(Arc::from(source), config.limits, config.threads)?;
        names.sort();
        Ok(Self {
            pool: Arc::new(pool),
            names,
        })
    }

    /// The names of the mutators, sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// One mutator by name.
    pub fn mutator(&self, name: &str) -> Option<JsMutator> {
        self.names.iter().any(|n| n == name).then(|| JsMutator {
            name: name.to_owned(),
            pool: self.pool.clone(),
        })
    }

    /// A registry of every mutator of the module.
    pub fn registry(&self) -> Registry {
        self.names.iter().fold(Registry::new(), |registry, name| {
            registry.with(
                name,
                JsMutator {
                    name: name.clone(),
                    pool: self.pool.clone(),
                },
            )
        })
    }
}
