//! What can go wrong in the database layer.

/// A storage failure. Every variant means "not stored": the caller answers
/// 503 and the platform retries.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database URL: {0}")]
    Url(String),
    #[error("cannot reach the database: {0}")]
    Unavailable(#[from] diesel::r2d2::PoolError),
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("cannot create {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the ingest writer has stopped")]
    WriterGone,
    /// Writing this request panicked (a bug); nothing of it was stored.
    #[error("storing this request failed unexpectedly: {0}")]
    Panicked(String),
}
