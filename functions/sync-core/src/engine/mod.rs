//! The per-space version strategy: push commits batches of mutations under an optimistic
//! version check; pull answers the space as of one version, relative to the client's
//! cookie.

pub mod pull;
pub mod push;

pub use pull::pull;
pub use push::{PushConfig, PushFailure, PushOutcome, push, push_until};
