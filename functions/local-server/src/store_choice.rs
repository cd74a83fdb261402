//! Opens the store the configuration asks for: the SQLite file by default, DynamoDB when
//! an endpoint is set.

use crate::config::StorageConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store_sqlite::{SqliteError, SqliteStore};
use sync_core::Store;

/// The database file inside `DATA_DIR`.
pub const SQLITE_FILE_NAME: &str = "replicache.sqlite3";

pub struct OpenedStore {
    pub store: Arc<dyn Store>,
    /// What the store is, for the startup banner (never credentials).
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreChoiceError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Sqlite(#[from] SqliteError),
    #[error("DynamoDB at {endpoint}: {message}")]
    DynamoDb { endpoint: String, message: String },
}

pub async fn open_store(storage: &StorageConfig) -> Result<OpenedStore, StoreChoiceError> {
    match storage {
        StorageConfig::Sqlite { data_dir } => open_sqlite(data_dir),
        StorageConfig::DynamoDb { endpoint, table } => {
            let store = open_dynamodb(endpoint, table).await?;
            Ok(OpenedStore {
                store,
                description: format!("DynamoDB table {table} at {endpoint}"),
            })
        }
    }
}

fn open_sqlite(data_dir: &Path) -> Result<OpenedStore, StoreChoiceError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StoreChoiceError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    // An absolute path in the banner tells where the data is whatever the working directory.
    let data_dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    let path = data_dir.join(SQLITE_FILE_NAME);
    let store = SqliteStore::open(&path)?;
    Ok(OpenedStore {
        store: Arc::new(store),
        description: format!("SQLite file {}", path.display()),
    })
}

/// The DynamoDB adapter; the table is created when missing, so a fresh local endpoint
/// (such as moto) works with no setup.
async fn open_dynamodb(endpoint: &str, table: &str) -> Result<Arc<dyn Store>, StoreChoiceError> {
    // Reads DYNAMODB_ENDPOINT itself (the same variable the config read), plus the usual
    // AWS region and credential variables.
    let client = store_dynamodb::client_from_env().await;
    store_dynamodb::create_table(&client, table)
        .await
        .map_err(|e| StoreChoiceError::DynamoDb {
            endpoint: endpoint.to_owned(),
            message: e.to_string(),
        })?;
    Ok(Arc::new(store_dynamodb::DynamoStore::new(client, table)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_creates_its_directory_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("nested").join("data");
        let opened = open_store(&StorageConfig::Sqlite {
            data_dir: data_dir.clone(),
        })
        .await
        .unwrap();
        assert!(data_dir.join(SQLITE_FILE_NAME).is_file());
        assert!(opened.description.starts_with("SQLite file "));
        let space = sync_core::SpaceId::parse("s").unwrap();
        assert!(opened.store.create_space(&space).await.unwrap());
    }

    #[tokio::test]
    async fn a_data_dir_that_is_a_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("taken");
        std::fs::write(&file, b"x").unwrap();
        let err = open_store(&StorageConfig::Sqlite { data_dir: file })
            .await
            .err()
            .unwrap();
        assert!(matches!(err, StoreChoiceError::DataDir { .. }), "{err}");
    }
}
