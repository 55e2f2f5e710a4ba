//! Console sign-in for RAM users: password (Argon2id), password age, lockout after
//! `MaxLoginAttemps` failures, and a TOTP code when the user has an MFA device. Success yields a
//! short-lived user session (sealed token, like STS) whose `acs:MFAPresent` is true when a code was
//! checked, so policies can demand MFA.

use crate::credentials::{TokenClaims, seal};
use crate::names;
use crate::ram::Directory;
use crate::secrets::{totp_step, verify_password};
use nimbus_api::{ApiError, BoxFut, SignIn, SignInRequest, SignedIn};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_core::ids;
use nimbus_core::secret::KeyProvider;
use nimbus_store::{Store, StoreError};
use serde_json::{Value, json};
use std::sync::Arc;

/// How long a lockout lasts (Alibaba: one hour).
const LOCKOUT_MS: i64 = 3_600_000;
const SESSION_SECS: i64 = 3600;

pub struct ConsoleSignIn {
    store: Store,
    keys: Arc<dyn KeyProvider>,
}

impl ConsoleSignIn {
    pub fn new(store: Store, keys: Arc<dyn KeyProvider>) -> Self {
        ConsoleSignIn { store, keys }
    }
}

/// One answer for every wrong account, user or password: nothing to learn from it.
fn failed() -> ApiError {
    ApiError::new(403, "Login.Failed", "The account, user name or password is wrong.")
}

fn locked(until: i64) -> ApiError {
    ApiError::new(
        403,
        "Login.Locked",
        format!("Too many failed sign-in attempts; sign-in is locked until {}.", iso8601(until)),
    )
}

impl ConsoleSignIn {
    /// Counts a failed attempt (locking when the policy's limit is reached); re-reads on a conflict.
    async fn record_failure(&self, account: &str, user: &str, max_attempts: i64) -> Result<Option<i64>, ApiError> {
        let dir = Directory { store: &self.store, account };
        for _ in 0..5 {
            let Some(mut p) = dir.get(&names::login_id(account, user)).await? else { return Ok(None) };
            let n = p.spec["FailedAttempts"].as_i64().unwrap_or(0) + 1;
            p.spec["FailedAttempts"] = Value::from(n);
            let lock = (max_attempts > 0 && n >= max_attempts).then(|| now_millis() + LOCKOUT_MS);
            if let Some(until) = lock {
                p.spec["LockedUntil"] = Value::from(until);
                p.spec["FailedAttempts"] = Value::from(0);
            }
            match self.store.update_resource(&p).await {
                Ok(_) => return Ok(lock),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    async fn attempt(&self, req: &SignInRequest) -> Result<SignedIn, ApiError> {
        let account = req.account_id.as_str();
        match self.store.get_account(account).await {
            Ok(a) if a.status == "Enabled" => {}
            Ok(_) | Err(StoreError::NotFound) => return Err(failed()),
            Err(e) => return Err(e.into()),
        }
        let dir = Directory { store: &self.store, account };
        let Some(mut profile) = dir.get(&names::login_id(account, &req.user_name)).await? else { return Err(failed()) };
        let now = now_millis();
        let locked_until = profile.spec["LockedUntil"].as_i64().unwrap_or(0);
        if locked_until > now {
            return Err(locked(locked_until));
        }
        let policy = dir.password_policy().await?;
        let max_attempts = policy["MaxLoginAttemps"].as_i64().unwrap_or(5);
        let (pw, hash) =
            (req.password.expose().to_string(), profile.spec["PasswordHash"].as_str().unwrap_or_default().to_string());
        let good =
            tokio::task::spawn_blocking(move || verify_password(&pw, &hash)).await.map_err(|_| ApiError::internal())?;
        if !good {
            return Err(match self.record_failure(account, &req.user_name, max_attempts).await? {
                Some(until) => locked(until),
                None => failed(),
            });
        }
        // MFA, when the user has a device.
        let mut mfa_present = false;
        let devices = dir.prefixed(names::MFA, &names::mfa_id(account, "")).await?;
        if let Some(mut d) = devices
            .into_iter()
            .find(|d| d.spec["UserName"].as_str().is_some_and(|u| u.eq_ignore_ascii_case(&req.user_name)))
        {
            let Some(code) = &req.mfa_code else {
                return Err(ApiError::new(400, "MissingMFACode", "This user signs in with an MFA code: send MFACode."));
            };
            let serial = d.spec["SerialNumber"].as_str().unwrap_or_default().to_string();
            let seed = self
                .keys
                .root_key()
                .unwrap_string(
                    &crate::ram::login::seed_purpose(&serial),
                    d.spec["SeedWrapped"].as_str().unwrap_or_default(),
                )
                .map_err(|_| ApiError::internal())?;
            let step = totp_step(seed.expose(), code, (now / 1000) as u64);
            // Each code works once: a step at or before the last one used is a replay.
            match step.filter(|s| *s as i64 > d.spec["LastStep"].as_i64().unwrap_or(0)) {
                Some(s) => {
                    d.spec["LastStep"] = Value::from(s);
                    self.store.update_resource(&d).await?;
                    mfa_present = true;
                }
                None => {
                    self.record_failure(account, &req.user_name, max_attempts).await?;
                    return Err(ApiError::new(
                        403,
                        "Login.InvalidMFACode",
                        "The MFA code is wrong or was already used.",
                    ));
                }
            }
        }
        let max_age_days = policy["MaxPasswordAge"].as_i64().unwrap_or(0);
        let expired = max_age_days > 0
            && profile.spec["PasswordChangedAt"].as_i64().unwrap_or(now) + max_age_days * 86_400_000 < now;
        if expired && policy["HardExpiry"].as_bool().unwrap_or(false) {
            return Err(ApiError::new(
                403,
                "Login.PasswordExpired",
                "The password has expired; an administrator must reset it.",
            ));
        }
        if profile.spec["FailedAttempts"].as_i64().unwrap_or(0) != 0 {
            profile.spec["FailedAttempts"] = Value::from(0);
            self.store.update_resource(&profile).await?;
        }
        let user_name = profile.spec["UserName"].as_str().unwrap_or(&req.user_name).to_string();
        if let Ok(mut u) = self.store.get_resource(account, &names::user_id(account, &user_name)).await {
            u.spec["LastLoginDate"] = Value::from(iso8601(now));
            let _ = self.store.update_resource(&u).await;
        }
        let expires_at = now + SESSION_SECS * 1000;
        let claims = TokenClaims {
            kind: "user".into(),
            access_key_id: format!("STS.{}", &ids::access_key_id()[4..]),
            secret: ids::access_key_secret(),
            account_id: account.to_string(),
            role_id: String::new(),
            role_name: user_name.clone(),
            session_name: "console".into(),
            policy: None,
            expires_at,
            mfa_present,
            source: names::arn(account, &format!("user/{user_name}")),
        };
        let token = seal(self.keys.as_ref(), &claims);
        let mfa_bound = mfa_present;
        Ok(SignedIn {
            body: json!({
                "AccountId": account,
                "UserName": user_name,
                "MFAPresent": mfa_present,
                "PasswordResetRequired": profile.spec["PasswordResetRequired"].as_bool().unwrap_or(false) || expired,
                "MFABindRequired": profile.spec["MFABindRequired"].as_bool().unwrap_or(false) && !mfa_bound,
                "Credentials": {"AccessKeyId": claims.access_key_id, "AccessKeySecret": claims.secret, "SecurityToken": token, "Expiration": iso8601(expires_at)},
            }),
            account_id: account.to_string(),
            user_name,
        })
    }
}

impl SignIn for ConsoleSignIn {
    fn sign_in<'a>(&'a self, req: &'a SignInRequest) -> BoxFut<'a, Result<SignedIn, ApiError>> {
        Box::pin(self.attempt(req))
    }
}
