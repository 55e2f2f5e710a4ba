#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store configuration: {0}")]
    Config(String),
    /// An optimistic write lost: the row's version moved on since it was read.
    #[error("the resource was changed by another request; read it again and retry")]
    Conflict,
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
