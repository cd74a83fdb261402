//! What the Lambda binaries share: configuration from the environment, logging, and the
//! translation between API Gateway events and `sync_core`'s transport-free API. Each
//! binary under `src/bin/` is one call of [`functions::main`].

pub mod answer_spill;
pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod connections;
pub mod emf;
pub mod functions;
pub mod gc;
pub mod http_adapter;
pub mod logging;
pub mod permissions;
pub mod poke_stream;
pub mod poker;
pub mod websocket;

pub use http_adapter::{HttpFunction, serve_http};
