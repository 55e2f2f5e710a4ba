//! Account-wide RAM settings: the account alias and the password policy.
//!
//! The password policy applies when a login profile's password is set (`ram::login`) and at
//! console sign-in (`signin`): length and character classes, reuse, age, lockout.

use super::Call;
use crate::names::{self, ACCOUNT};
use nimbus_api::ApiError;
use nimbus_store::{Resource, StoreError};
use serde_json::{Value, json};

pub(crate) fn default_password_policy() -> Value {
    json!({
        "MinimumPasswordLength": 8, "RequireLowercaseCharacters": true, "RequireUppercaseCharacters": true,
        "RequireNumbers": true, "RequireSymbols": false, "HardExpiry": false, "MaxPasswordAge": 0,
        "PasswordReusePrevention": 0, "MaxLoginAttemps": 5,
    })
}

async fn settings(c: &Call<'_>) -> Result<Resource, ApiError> {
    let id = names::account_settings_id(c.account);
    if let Some(r) = c.dir().get(&id).await? {
        return Ok(r);
    }
    let fresh = Resource::new(
        &id,
        c.account,
        ACCOUNT,
        "",
        json!({"AccountAlias": c.account, "PasswordPolicy": default_password_policy()}),
    );
    match c.store.create_resource(&fresh).await {
        Ok(r) => Ok(r),
        // Another request created it first: use theirs.
        Err(StoreError::AlreadyExists) => c.dir().get(&id).await?.ok_or_else(ApiError::internal),
        Err(e) => Err(e.into()),
    }
}

/// The account's password policy (defaults until set).
pub(crate) async fn password_policy(c: &Call<'_>) -> Result<Value, ApiError> {
    Ok(settings(c).await?.spec["PasswordPolicy"].clone())
}

pub async fn get_alias(c: &Call<'_>) -> Result<Value, ApiError> {
    Ok(json!({"AccountAlias": settings(c).await?.spec["AccountAlias"]}))
}

pub async fn set_alias(c: &Call<'_>) -> Result<Value, ApiError> {
    let alias = c.p.require("AccountAlias")?;
    let ok = (3..=32).contains(&alias.len())
        && alias.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        && !alias.starts_with('-')
        && !alias.ends_with('-');
    if !ok {
        return Err(ApiError::new(
            400,
            "InvalidParameter.AccountAlias",
            "AccountAlias must be 3 to 32 lowercase letters, digits or '-', not starting or ending with '-'.",
        ));
    }
    let mut s = settings(c).await?;
    s.spec["AccountAlias"] = Value::from(alias);
    c.store.update_resource(&s).await?;
    Ok(json!({}))
}

pub async fn get_password_policy(c: &Call<'_>) -> Result<Value, ApiError> {
    Ok(json!({"PasswordPolicy": settings(c).await?.spec["PasswordPolicy"]}))
}

pub async fn set_password_policy(c: &Call<'_>) -> Result<Value, ApiError> {
    let mut s = settings(c).await?;
    let pp = &mut s.spec["PasswordPolicy"];
    for (name, min, max) in [
        ("MinimumPasswordLength", 8, 32),
        ("MaxPasswordAge", 0, 1095),
        ("PasswordReusePrevention", 0, 24),
        ("MaxLoginAttemps", 0, 32),
    ] {
        if let Some(n) = c.p.int(name, min, max)? {
            pp[name] = Value::from(n);
        }
    }
    for name in
        ["RequireLowercaseCharacters", "RequireUppercaseCharacters", "RequireNumbers", "RequireSymbols", "HardExpiry"]
    {
        if let Some(b) = c.p.bool(name)? {
            pp[name] = Value::from(b);
        }
    }
    let out = pp.clone();
    c.store.update_resource(&s).await?;
    Ok(json!({"PasswordPolicy": out}))
}
