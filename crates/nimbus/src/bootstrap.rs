//! First start and every later start of a data directory.
//!
//! First start makes: the root key (`root.key`, 0600), the region's root account and its AccessKey
//! (secret wrapped in the store, shown once and written to `root-credentials`, 0600), and the node id.
//! Later starts reuse all of it. The credentials file is written *before* the store row, so a crash
//! between the two is repaired on the next start instead of leaving a key nobody knows.

use anyhow::{Context, Result, bail};
use nimbus_core::ids;
use nimbus_core::secret::{KeyProvider, write_private_file};
use nimbus_store::{AccessKeyRecord, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const ROOT_ACCOUNT_NAME: &str = "root";

/// `DIR/root-credentials`: `{"AccountId": …, "AccessKeyId": …, "AccessKeySecret": …}`.
#[derive(Serialize, Deserialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct RootCredentials {
    pub account_id: String,
    pub access_key_id: String,
    pub access_key_secret: String,
}

impl std::fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCredentials")
            .field("account_id", &self.account_id)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .finish()
    }
}

pub enum RootOutcome {
    /// Made now; the secret is to be shown once.
    Created(RootCredentials),
    Reused(RootCredentials),
    /// The store has a root account but the credentials file is gone.
    FileMissing,
}

/// The purpose string an AccessKey secret is wrapped under (binds the wrapped value to its key id).
pub fn access_key_purpose(access_key_id: &str) -> String {
    format!("accesskey:{access_key_id}")
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
    match store.create_account(&creds.account_id, ROOT_ACCOUNT_NAME).await {
        Ok(_) | Err(StoreError::AlreadyExists) => {}
        Err(e) => return Err(e.into()),
    }
    let account = store.get_account(&creds.account_id).await.context("root account")?;
    if account.name != ROOT_ACCOUNT_NAME {
        bail!("root-credentials names account {} but the store knows it as {:?}", account.id, account.name);
    }
    let record = AccessKeyRecord {
        id: creds.access_key_id.clone(),
        account_id: creds.account_id.clone(),
        principal_type: "root".into(),
        principal_id: creds.account_id.clone(),
        secret_wrapped: keys
            .root_key()
            .wrap(&access_key_purpose(&creds.access_key_id), creds.access_key_secret.as_bytes()),
        status: "Active".into(),
        created_at: nimbus_core::clock::now_millis(),
    };
    match store.insert_access_key(&record).await {
        Ok(()) | Err(StoreError::AlreadyExists) => Ok(()),
        Err(e) => Err(e.into()),
    }
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
