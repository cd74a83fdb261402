//! The DynamoDB adapter of [`sync_core::Store`]: one table per deployment, one partition
//! per space, a local secondary index on the version for pulls (see [`schema`]).
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = store_dynamodb::client_from_env().await;
//! let store = store_dynamodb::DynamoStore::new(client, store_dynamodb::table_name_from_env()?);
//! # let _ = store; Ok(()) }
//! ```

mod access;
pub mod capacity;
mod client;
mod commit;
mod counter;
pub mod definition;
mod errors;
mod gc;
mod item;
mod pull;
mod reads;
pub mod retries;
pub mod schema;
mod store;
mod table;

pub use capacity::{CapacityCounter, CapacityStats};
pub use client::{
    ConfigError, DEFAULT_LOCAL_REGION, ENDPOINT_ENV, TABLE_NAME_ENV, client_for, client_from_env,
    local_client, local_client_with_counter, table_name_from_env, with_counter,
};
pub use counter::RequestCounter;
pub use definition::TableDefinition;
pub use errors::describe;
pub use pull::PullStats;
pub use store::DynamoStore;
pub use table::{TableError, create_table};
