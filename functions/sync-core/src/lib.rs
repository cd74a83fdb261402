//! The heart of the sync backend: the Replicache push/pull protocol (version 1), the
//! per-space version engine, the mutator registry with its `Tx` API, and the mapping of
//! all of it to HTTP responses.
//!
//! Nothing here knows about AWS Lambda or DynamoDB: storage sits behind [`store::Store`],
//! pokes behind [`poke::Poker`], and the handlers only translate their events into
//! [`api::ApiRequest`] and back.

pub mod access_rules;
pub mod api;
pub mod auth;
pub mod changed_entries;
pub mod cookie;
pub mod engine;
pub mod error;
pub mod gc;
pub mod ids;
pub mod json_text;
pub mod memory_store;
pub mod metrics;
pub mod mutators;
pub mod poke;
pub mod protocol;
pub mod recent_reads;
pub mod space_locks;
pub mod space_routes;
pub mod spill;
pub mod store;
pub mod tx;

pub use api::{ApiRequest, ApiResponse, Route, SyncService};
pub use ids::SpaceId;
pub use mutators::Registry;
pub use store::Store;
