//! What can go wrong in the SQLite adapter, and how each failure reaches the engine.

use std::path::PathBuf;
use sync_core::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("cannot open the database file {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the database cannot use write-ahead logging (journal mode is {0})")]
    JournalMode(String),
    #[error("the database file has schema version {found}; this build supports up to {supported}")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("the database file has schema version {found}, which no build ever wrote")]
    SchemaUnknown { found: i64 },
    #[error("cannot migrate the database from schema version {from} to {to}: {source}")]
    Migrate {
        from: i64,
        to: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("a stored value is not valid JSON: {0}")]
    DecodeValue(#[source] serde_json::Error),
    #[error("a value cannot be encoded as JSON: {0}")]
    EncodeValue(#[source] serde_json::Error),
    #[error("a live entry has no value")]
    MissingValue,
    #[error("a space has the unknown link access {0:?}")]
    UnknownLink(String),
    #[error("{what} is out of the range SQLite stores")]
    OutOfRange { what: &'static str },
    #[error("the database task did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl SqliteError {
    /// Another connection held the lock for longer than the busy timeout.
    fn is_busy(&self) -> bool {
        match self {
            SqliteError::Sqlite(e)
            | SqliteError::Open { source: e, .. }
            | SqliteError::Migrate { source: e, .. } => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }
}

impl From<SqliteError> for StoreError {
    fn from(e: SqliteError) -> Self {
        match e {
            e @ (SqliteError::DecodeValue(_)
            | SqliteError::MissingValue
            | SqliteError::UnknownLink(_)
            | SqliteError::OutOfRange { .. }
            | SqliteError::SchemaTooNew { .. }
            | SqliteError::SchemaUnknown { .. }) => StoreError::Corrupt(e.to_string()),
            e if e.is_busy() => StoreError::Throttled(e.to_string()),
            e => StoreError::Unavailable(e.to_string()),
        }
    }
}
