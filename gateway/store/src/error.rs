//! Errors of the job store.

use std::sync::Arc;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No job has this name.
    #[error("job {name:?} not found")]
    NotFound {
        /// The job name.
        name: String,
    },
    /// A compare-and-swap failed: the job changed since the caller read it.
    #[error("job {name:?} changed: expected revision {expected}, current revision {current}")]
    Conflict {
        /// The job name.
        name: String,
        /// The revision the caller expected.
        expected: u64,
        /// The job's current revision.
        current: u64,
    },
    /// A job with this name exists (and was not created under the same idempotency key).
    #[error("job {name:?} already exists")]
    AlreadyExists {
        /// The job name.
        name: String,
    },
    /// A watch asked for events that were already discarded.
    #[error("revision {requested} is compacted: the oldest retained event is revision {oldest}")]
    Compacted {
        /// The revision the watch had to resume after.
        requested: u64,
        /// The oldest retained event; watching from `oldest - 1` or later works.
        oldest: u64,
    },
    /// The request itself is wrong (missing name, bad page token, bad options).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A job could not be converted to or from its stored JSON.
    #[error("job {name:?} cannot be encoded or decoded")]
    Codec {
        /// The job name.
        name: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The database holds something this build cannot read.
    #[error("job store is corrupt: {0}")]
    Corrupt(String),
    /// A filesystem operation failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed. The error is shared because one failed group commit fails every write in
    /// the batch.
    #[error("sqlite {context} failed")]
    Sqlite {
        /// What was being done.
        context: &'static str,
        /// The SQLite error.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// The store is closed (or its writer thread stopped).
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    /// Whether retrying the same call later may succeed without changing it.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }

    pub(crate) fn sqlite(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite {
            context,
            source: Arc::new(source),
        }
    }

    pub(crate) fn codec(name: &str) -> impl FnOnce(serde_json::Error) -> StoreError + '_ {
        move |source| StoreError::Codec {
            name: name.to_owned(),
            source,
        }
    }
}
