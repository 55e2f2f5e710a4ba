//! AccessKey lookup for the gateway.
//!
//! Long-term keys (`LTAI…`) are store rows; their secret is unwrapped with the root key and cached
//! for [`CACHE_TTL`] so a busy key costs one unwrap per interval, and a disabled key stops working
//! within it.
//!
//! STS keys (`STS.…`) are not stored at all: the SecurityToken *is* the session, its claims sealed
//! with AES-256-GCM under the root key. Any node can check one, nobody can forge or alter one, and
//! an expired one is refused. The role's current policies still decide what the session may do, so
//! deleting the role or its policies takes effect at once.

use crate::accounts::access_key_purpose;
use nimbus_api::{ApiError, BoxFut, Credential, CredentialSource, PrincipalType, Session};
use nimbus_core::clock::now_millis;
use nimbus_core::secret::{KeyProvider, Secret};
use nimbus_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const CACHE_TTL: Duration = Duration::from_secs(10);
const TOKEN_PURPOSE: &str = "sts:security-token";
const TOKEN_PREFIX: &str = "NMB1.";

/// What a SecurityToken carries.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TokenClaims {
    /// `role` (an STS AssumeRole session) or `user` (a console sign-in session of a RAM user, whose
    /// `role_name` field then holds the user name).
    #[serde(default = "role_kind")]
    pub kind: String,
    pub access_key_id: String,
    pub secret: String,
    pub account_id: String,
    pub role_id: String,
    pub role_name: String,
    pub session_name: String,
    pub policy: Option<String>,
    pub expires_at: i64,
    pub mfa_present: bool,
    /// Who assumed the role (their ARN), for the audit trail.
    pub source: String,
}

fn role_kind() -> String {
    "role".into()
}

pub fn seal(keys: &dyn KeyProvider, claims: &TokenClaims) -> String {
    let json = serde_json::to_vec(claims).expect("claims serialize");
    format!("{TOKEN_PREFIX}{}", keys.root_key().wrap(TOKEN_PURPOSE, &json))
}

fn sts_error(code: &'static str, message: &str) -> ApiError {
    ApiError::new(400, code, message)
}

/// The claims of `token` for `access_key_id`, or the reason it is refused.
pub fn unseal(keys: &dyn KeyProvider, access_key_id: &str, token: &str, now_ms: i64) -> Result<TokenClaims, ApiError> {
    let malformed = || sts_error("InvalidSecurityToken.Malformed", "The security token is malformed.");
    let sealed = token.strip_prefix(TOKEN_PREFIX).ok_or_else(malformed)?;
    let bytes = keys.root_key().unwrap(TOKEN_PURPOSE, sealed).map_err(|_| malformed())?;
    let claims: TokenClaims = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    if claims.access_key_id != access_key_id {
        return Err(sts_error(
            "InvalidSecurityToken.MismatchWithAccessKey",
            "The security token does not belong to this AccessKey.",
        ));
    }
    if claims.expires_at <= now_ms {
        return Err(sts_error("InvalidSecurityToken.Expired", "The security token has expired."));
    }
    Ok(claims)
}

pub struct StoreCredentials {
    store: Store,
    keys: Arc<dyn KeyProvider>,
    /// Unwrapped credentials and when they were loaded (region clock, ms).
    cache: Mutex<HashMap<String, (Credential, i64)>>,
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
        let principal_type = if rec.principal_type == "root" { PrincipalType::Root } else { PrincipalType::User };
        Ok(Some(Credential {
            access_key_id: rec.id,
            secret,
            account_id: rec.account_id,
            principal_type,
            principal_name: rec.principal_id.clone(),
            principal_id: rec.principal_id,
            session: None,
            mfa_present: false,
            active: rec.status == "Active",
        }))
    }

    async fn session(&self, access_key_id: &str, token: Option<&str>) -> Result<Option<Credential>, ApiError> {
        let Some(token) = token else {
            return Err(sts_error("MissingSecurityToken", "An STS AccessKey must be sent with its SecurityToken."));
        };
        let c = unseal(self.keys.as_ref(), access_key_id, token, now_millis())?;
        let active = match self.store.get_account(&c.account_id).await {
            Ok(a) => a.status == "Enabled",
            Err(StoreError::NotFound) => false,
            Err(e) => return Err(e.into()),
        };
        if c.kind != "user" {
            // A session belongs to the role it was issued for, not to its name: once that role is
            // deleted, a new role of the same name does not revive the old sessions.
            let current =
                match self.store.get_resource(&c.account_id, &crate::names::role_id(&c.account_id, &c.role_name)).await
                {
                    Ok(r) => r.spec["RoleId"].as_str().map(str::to_string),
                    Err(StoreError::NotFound) => None,
                    Err(e) => return Err(e.into()),
                };
            if current.as_deref() != Some(c.role_id.as_str()) {
                return Err(ApiError::new(
                    403,
                    "InvalidSecurityToken.RoleNotExist",
                    "The role this security token was issued for no longer exists.",
                ));
            }
        }
        if c.kind == "user" {
            return Ok(Some(Credential {
                access_key_id: c.access_key_id,
                secret: Secret::new(c.secret),
                account_id: c.account_id,
                principal_type: PrincipalType::User,
                principal_id: c.role_name.to_ascii_lowercase(),
                principal_name: c.role_name.to_ascii_lowercase(),
                session: None,
                mfa_present: c.mfa_present,
                active,
            }));
        }
        Ok(Some(Credential {
            access_key_id: c.access_key_id,
            secret: Secret::new(c.secret),
            account_id: c.account_id,
            principal_type: PrincipalType::AssumedRole,
            principal_id: format!("{}:{}", c.role_id, c.session_name),
            principal_name: c.role_name.clone(),
            session: Some(Session {
                role_id: c.role_id,
                role_name: c.role_name,
                session_name: c.session_name,
                policy: c.policy,
                expires_at: c.expires_at,
            }),
            mfa_present: c.mfa_present,
            active,
        }))
    }
}

impl CredentialSource for StoreCredentials {
    fn lookup<'a>(
        &'a self,
        access_key_id: &'a str,
        token: Option<&'a str>,
    ) -> BoxFut<'a, Result<Option<Credential>, ApiError>> {
        Box::pin(async move {
            if access_key_id.len() > 128 {
                return Ok(None);
            }
            if access_key_id.starts_with("STS.") {
                return self.session(access_key_id, token).await;
            }
            {
                let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((c, at)) = cache.get(access_key_id)
                    && now_millis() - *at < CACHE_TTL.as_millis() as i64
                {
                    return Ok(Some(c.clone()));
                }
            }
            let found = self.load(access_key_id).await?;
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            match &found {
                Some(c) => {
                    if cache.len() > 10_000 {
                        cache.retain(|_, (_, at)| now_millis() - *at < CACHE_TTL.as_millis() as i64);
                    }
                    cache.insert(access_key_id.to_string(), (c.clone(), now_millis()));
                }
                None => {
                    cache.remove(access_key_id);
                }
            }
            Ok(found)
        })
    }
}

impl StoreCredentials {
    /// Forgets a key at once (after it is disabled or deleted on this node).
    pub fn forget(&self, access_key_id: &str) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).remove(access_key_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_core::secret::RootKey;

    struct K(RootKey);
    impl KeyProvider for K {
        fn root_key(&self) -> &RootKey {
            &self.0
        }
        fn describe(&self) -> String {
            "test".into()
        }
    }

    fn claims(exp: i64) -> TokenClaims {
        TokenClaims {
            kind: "role".into(),
            access_key_id: "STS.abc".into(),
            secret: "s".into(),
            account_id: "1".into(),
            role_id: "r".into(),
            role_name: "admin".into(),
            session_name: "s1".into(),
            policy: None,
            expires_at: exp,
            mfa_present: false,
            source: "acs:ram::1:root".into(),
        }
    }

    #[test]
    fn tokens_cannot_be_forged_moved_or_used_late() {
        let k = K(RootKey::from_bytes(&[3; 32]));
        let t = seal(&k, &claims(2000));
        assert_eq!(unseal(&k, "STS.abc", &t, 1000).expect("valid"), claims(2000));
        assert_eq!(unseal(&k, "STS.abc", &t, 2000).expect_err("expired").code, "InvalidSecurityToken.Expired");
        assert_eq!(
            unseal(&k, "STS.other", &t, 1000).expect_err("moved").code,
            "InvalidSecurityToken.MismatchWithAccessKey"
        );
        let other = K(RootKey::from_bytes(&[4; 32]));
        assert_eq!(
            unseal(&other, "STS.abc", &t, 1000).expect_err("other region").code,
            "InvalidSecurityToken.Malformed"
        );
        let mut forged = t.clone().into_bytes();
        let i = forged.len() - 3;
        forged[i] = if forged[i] == b'a' { b'b' } else { b'a' };
        let forged = String::from_utf8(forged).expect("ascii");
        assert_eq!(unseal(&k, "STS.abc", &forged, 1000).expect_err("tampered").code, "InvalidSecurityToken.Malformed");
        assert!(!t.contains("\"secret\""), "claims are encrypted, not just signed");
    }
}
