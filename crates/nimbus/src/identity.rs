//! AccessKey lookup for the gateway: the store row, its secret unwrapped with the root key.
//!
//! Unwrapped credentials are cached for a short time so a busy key costs one AES-GCM unwrap and one
//! store read per [`CACHE_TTL`], not per request; a disabled key stops working within that time.

use crate::bootstrap::access_key_purpose;
use nimbus_api::{ApiError, BoxFut, Credential, CredentialSource, PrincipalType};
use nimbus_core::secret::KeyProvider;
use nimbus_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CACHE_TTL: Duration = Duration::from_secs(10);

pub struct StoreCredentials {
    store: Store,
    keys: Arc<dyn KeyProvider>,
    cache: Mutex<HashMap<String, (Credential, Instant)>>,
}

impl StoreCredentials {
    pub fn new(store: Store, keys: Arc<dyn KeyProvider>) -> Self {
        StoreCredentials { store, keys, cache: Mutex::new(HashMap::new()) }
    }

    async fn load(&self, id: &str) -> Result<Option<Credential>, ApiError> {
        let rec = match self.store.get_access_key(id).await {
            Ok(r) => r,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let secret = self.keys.root_key().unwrap_string(&access_key_purpose(id), &rec.secret_wrapped).map_err(|e| {
            tracing::error!(access_key_id = id, error = %e, "stored AccessKey secret does not unwrap");
            ApiError::internal()
        })?;
        let principal_type = match rec.principal_type.as_str() {
            "root" => PrincipalType::Root,
            "user" => PrincipalType::User,
            _ => PrincipalType::AssumedRole,
        };
        Ok(Some(Credential {
            access_key_id: rec.id,
            secret,
            account_id: rec.account_id,
            principal_type,
            principal_id: rec.principal_id,
            active: rec.status == "Active",
        }))
    }
}

impl CredentialSource for StoreCredentials {
    fn lookup<'a>(&'a self, access_key_id: &'a str) -> BoxFut<'a, Result<Option<Credential>, ApiError>> {
        Box::pin(async move {
            if access_key_id.len() > 128 {
                return Ok(None);
            }
            {
                let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((c, at)) = cache.get(access_key_id)
                    && at.elapsed() < CACHE_TTL
                {
                    return Ok(Some(c.clone()));
                }
            }
            let found = self.load(access_key_id).await?;
            if let Some(c) = &found {
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() > 10_000 {
                    cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
                }
                cache.insert(access_key_id.to_string(), (c.clone(), Instant::now()));
            }
            Ok(found)
        })
    }
}
