//! Tenant accounts. Each has a root identity with its own AccessKey; every resource and every
//! query belongs to exactly one account.

use nimbus_core::clock::now_millis;
use nimbus_core::ids;
use nimbus_core::secret::KeyProvider;
use nimbus_store::{AccessKeyRecord, Store, StoreError};
use serde::{Deserialize, Serialize};

/// A root identity's credentials, as shown once to the operator.
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

/// The purpose a long-term AccessKey secret is wrapped under: binds the wrapped value to its key id.
pub fn access_key_purpose(access_key_id: &str) -> String {
    format!("accesskey:{access_key_id}")
}

/// A stored AccessKey record for `principal` with `secret` wrapped by the root key.
pub fn access_key_record(
    keys: &dyn KeyProvider,
    account_id: &str,
    principal_type: &str,
    principal_id: &str,
    access_key_id: &str,
    secret: &str,
) -> AccessKeyRecord {
    AccessKeyRecord {
        id: access_key_id.to_string(),
        account_id: account_id.to_string(),
        principal_type: principal_type.to_string(),
        principal_id: principal_id.to_string(),
        secret_wrapped: keys.root_key().wrap(&access_key_purpose(access_key_id), secret.as_bytes()),
        status: "Active".into(),
        created_at: now_millis(),
    }
}

/// Creates a tenant account named `name` with a root AccessKey; returns the credentials (the only
/// time the secret is seen).
pub async fn create_tenant(store: &Store, keys: &dyn KeyProvider, name: &str) -> Result<RootCredentials, StoreError> {
    let creds = RootCredentials {
        account_id: ids::account_id(),
        access_key_id: ids::access_key_id(),
        access_key_secret: ids::access_key_secret(),
    };
    register_root(store, keys, name, &creds).await?;
    Ok(creds)
}

/// Makes sure the account and root key of `creds` exist (idempotent).
pub async fn register_root(
    store: &Store,
    keys: &dyn KeyProvider,
    name: &str,
    creds: &RootCredentials,
) -> Result<(), StoreError> {
    match store.create_account(&creds.account_id, name).await {
        Ok(_) => {}
        Err(StoreError::AlreadyExists) if store.get_account(&creds.account_id).await.is_ok_and(|a| a.name == name) => {}
        Err(e) => return Err(e),
    }
    let record = access_key_record(
        keys,
        &creds.account_id,
        "root",
        &creds.account_id,
        &creds.access_key_id,
        &creds.access_key_secret,
    );
    match store.insert_access_key(&record).await {
        Ok(()) | Err(StoreError::AlreadyExists) => Ok(()),
        Err(e) => Err(e),
    }
}
