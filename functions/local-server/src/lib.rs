//! The product on one port, for laptops and end-to-end tests: the sync API of
//! [`sync_core`], the poke WebSocket with an in-process fan-out, and the built web client,
//! on the SQLite store (or DynamoDB when configured).

pub mod answers;
pub mod auth;
pub mod config;
pub mod cookie_secret;
pub mod gc_task;
pub mod jwt;
pub mod logging;
pub mod metrics;
pub mod poke_hub;
pub mod routes;
pub mod server;
pub mod static_files;
pub mod store_choice;
