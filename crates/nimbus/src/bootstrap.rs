//! First start and every later start of a data directory.
//!
//! First start makes: the root key (`root.key`, 0600), the region's root account and its AccessKey
//! (secret wrapped in the store, shown once and written to `root-credentials`, 0600), and the node id.
//! Later starts reuse all of it. The credentials file is written *before* the store row, so a crash
//! between the two is repaired on the next start instead of leaving a key nobody knows.

use anyhow::{Context, Result};
use nimbus_core::ids;
use nimbus_core::secret::{KeyProvider, write_private_file};
use nimbus_store::Store;
use std::path::Path;

pub const ROOT_ACCOUNT_NAME: &str = "root";

pub use nimbus_iam::accounts::RootCredentials;

pub enum RootOutcome {
    /// Made now; the secret is to be shown once.
    Created(RootCredentials),
    Reused(RootCredentials),
    /// The store has a root account but the credentials file is gone.
    FileMissing,
}

pub async fn ensure_root(store: &Store, keys: &dyn KeyProvider, dir: &Path) -> Result<RootOutcome> {
    let path = dir.join("root-credentials");
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let creds: RootCredentials =
            serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
        register(store, keys, &creds).await?;
        return Ok(RootOutcome::Reused(creds));
    }
    if store.list_accounts().await?.iter().any(|a| a.name == ROOT_ACCOUNT_NAME) {
        return Ok(RootOutcome::FileMissing);
    }
    let creds = RootCredentials {
        account_id: ids::account_id(),
        access_key_id: ids::access_key_id(),
        access_key_secret: ids::access_key_secret(),
    };
    let json = serde_json::to_vec_pretty(&creds)?;
    write_private_file(&path, &json).with_context(|| format!("writing {}", path.display()))?;
    register(store, keys, &creds).await?;
    Ok(RootOutcome::Created(creds))
}

/// Makes sure the account and key of `creds` are in the store (idempotent).
async fn register(store: &Store, keys: &dyn KeyProvider, creds: &RootCredentials) -> Result<()> {
    nimbus_iam::accounts::register_root(store, keys, ROOT_ACCOUNT_NAME, creds)
        .await
        .with_context(|| format!("registering the root account {} from root-credentials", creds.account_id))
}

/// This node's stable id (`DIR/node-id`): the owner name of its job leases.
pub fn node_id(dir: &Path) -> Result<String> {
    let path = dir.join("node-id");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim().to_string();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let id = ids::resource_id("node-");
    std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}
