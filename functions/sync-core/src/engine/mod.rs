//! The per-space version strategy: push commits batches of mutations under an optimistic
//! version check; pull returns what changed between the client's cookie and the version
//! it read first.

pub mod pull;
pub mod push;

pub use pull::pull;
pub use push::{PushConfig, PushFailure, PushOutcome, push};
