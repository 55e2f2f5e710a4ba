//! Login profiles (console passwords) and virtual MFA devices.
//!
//! Passwords are kept only as Argon2id hashes, with the last few for `PasswordReusePrevention`;
//! they must satisfy the account's password policy when set. TOTP seeds are wrapped by the region
//! root key and shown once, at creation.

use super::users::user;
use super::{Call, already_exists, conflict, insert, not_exist, now, remove};
use crate::names::{self, LOGIN, MFA};
use crate::secrets::{hash_password, new_totp_seed, totp_step, verify_password};
use nimbus_api::ApiError;
use nimbus_core::clock::now_millis;
use nimbus_store::Resource;
use serde_json::{Value, json};

const HISTORY_KEPT: usize = 24;

pub(crate) async fn profile(c: &Call<'_>, user_name: &str) -> Result<Option<Resource>, ApiError> {
    c.dir().get(&names::login_id(c.account, user_name)).await
}

/// Checks `password` against the account's password policy.
pub(crate) fn check_password(policy: &Value, password: &str) -> Result<(), ApiError> {
    let min = policy["MinimumPasswordLength"].as_u64().unwrap_or(8) as usize;
    let bad = |why: String| {
        Err(ApiError::new(
            400,
            "InvalidParameter.Password",
            format!("The password does not meet the password policy: {why}."),
        ))
    };
    let n = password.chars().count();
    if n < min || n > 32 {
        return bad(format!("it must be {min} to 32 characters"));
    }
    let classes = [
        ("RequireLowercaseCharacters", password.chars().any(|c| c.is_ascii_lowercase()), "a lowercase letter"),
        ("RequireUppercaseCharacters", password.chars().any(|c| c.is_ascii_uppercase()), "an uppercase letter"),
        ("RequireNumbers", password.chars().any(|c| c.is_ascii_digit()), "a digit"),
        ("RequireSymbols", password.chars().any(|c| c.is_ascii_punctuation()), "a symbol"),
    ];
    for (rule, has, what) in classes {
        if policy[rule].as_bool().unwrap_or(false) && !has {
            return bad(format!("it needs {what}"));
        }
    }
    Ok(())
}

/// Hashes on a blocking thread: Argon2id is meant to be slow.
async fn hash(password: &str) -> Result<String, ApiError> {
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&pw)).await.map_err(|_| ApiError::internal())
}

async fn reused(history: &[Value], password: &str, keep: usize) -> Result<bool, ApiError> {
    let hashes: Vec<String> = history.iter().rev().take(keep).filter_map(|h| h.as_str().map(str::to_string)).collect();
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || hashes.iter().any(|h| verify_password(&pw, h)))
        .await
        .map_err(|_| ApiError::internal())
}

fn view(spec: &Value) -> Value {
    json!({"UserName": spec["UserName"], "PasswordResetRequired": spec["PasswordResetRequired"],
           "MFABindRequired": spec["MFABindRequired"], "CreateDate": spec["CreateDate"]})
}

pub async fn create(c: &Call<'_>) -> Result<Value, ApiError> {
    let u = user(c, c.p.require("UserName")?).await?;
    let name = u.spec["UserName"].as_str().unwrap_or_default().to_string();
    let password = c.p.require("Password")?;
    check_password(&super::account::password_policy(c).await?, password)?;
    let h = hash(password).await?;
    let spec = json!({
        "UserName": name, "PasswordHash": h, "PasswordHistory": [h], "PasswordChangedAt": now_millis(),
        "PasswordResetRequired": c.p.bool("PasswordResetRequired")?.unwrap_or(false),
        "MFABindRequired": c.p.bool("MFABindRequired")?.unwrap_or(false),
        "FailedAttempts": 0, "LockedUntil": 0, "CreateDate": now(),
    });
    let r = insert(
        c,
        Resource::new(&names::login_id(c.account, &name), c.account, LOGIN, "", spec),
        "User.LoginProfile",
        &name,
    )
    .await?;
    Ok(json!({"LoginProfile": view(&r.spec)}))
}

pub async fn get(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = c.p.require("UserName")?;
    user(c, name).await?;
    let p = profile(c, name).await?.ok_or_else(|| not_exist("User.LoginProfile", name))?;
    Ok(json!({"LoginProfile": view(&p.spec)}))
}

pub async fn update(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = c.p.require("UserName")?;
    user(c, name).await?;
    let mut p = profile(c, name).await?.ok_or_else(|| not_exist("User.LoginProfile", name))?;
    if let Some(pw) = c.p.get("Password").filter(|s| !s.is_empty()) {
        let policy = super::account::password_policy(c).await?;
        check_password(&policy, pw)?;
        let keep = policy["PasswordReusePrevention"].as_u64().unwrap_or(0) as usize;
        let history = p.spec["PasswordHistory"].as_array().cloned().unwrap_or_default();
        if keep > 0 && reused(&history, pw, keep).await? {
            return Err(ApiError::new(
                400,
                "InvalidParameter.Password",
                format!("The password does not meet the password policy: it was one of the last {keep} passwords."),
            ));
        }
        let h = hash(pw).await?;
        let mut history = history;
        history.push(Value::from(h.clone()));
        let skip = history.len().saturating_sub(HISTORY_KEPT);
        p.spec["PasswordHistory"] = Value::from(history.into_iter().skip(skip).collect::<Vec<_>>());
        p.spec["PasswordHash"] = Value::from(h);
        p.spec["PasswordChangedAt"] = Value::from(now_millis());
        p.spec["FailedAttempts"] = Value::from(0);
        p.spec["LockedUntil"] = Value::from(0);
    }
    for field in ["PasswordResetRequired", "MFABindRequired"] {
        if let Some(b) = c.p.bool(field)? {
            p.spec[field] = Value::from(b);
        }
    }
    let p = c.store.update_resource(&p).await?;
    Ok(json!({"LoginProfile": view(&p.spec)}))
}

pub async fn delete(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = c.p.require("UserName")?;
    user(c, name).await?;
    let p = profile(c, name).await?.ok_or_else(|| not_exist("User.LoginProfile", name))?;
    remove(c, &p).await?;
    Ok(json!({}))
}

/// The purpose a TOTP seed is wrapped under.
pub(crate) fn seed_purpose(serial: &str) -> String {
    format!("totp:{serial}")
}

pub async fn create_device(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = c.p.require("VirtualMFADeviceName")?;
    names::check("VirtualMFADeviceName", name, 64, names::user_name_char, "letters, digits, '.', '_' and '-'")?;
    let serial = names::arn(c.account, &format!("mfa/{name}"));
    let seed = new_totp_seed();
    let spec = json!({
        "SerialNumber": serial, "VirtualMFADeviceName": name, "SeedWrapped": c.keys.root_key().wrap(&seed_purpose(&serial), seed.as_bytes()),
        "UserName": Value::Null, "ActivateDate": Value::Null, "LastStep": 0, "CreateDate": now(),
    });
    insert(c, Resource::new(&names::mfa_id(c.account, name), c.account, MFA, "", spec), "VirtualMFADevice", name)
        .await?;
    Ok(json!({"VirtualMFADevice": {"SerialNumber": serial, "Base32StringSeed": seed,
        "QRCodePNG": "", "OtpAuthUri": format!("otpauth://totp/Nimbus:{name}?secret={seed}&issuer=Nimbus")}}))
}

/// The device named by a serial number (`acs:ram::<account>:mfa/<name>`) in this account.
async fn device(c: &Call<'_>, serial: &str) -> Result<Resource, ApiError> {
    let name = serial.rsplit_once(":mfa/").map(|(_, n)| n).unwrap_or(serial);
    c.dir()
        .get(&names::mfa_id(c.account, name))
        .await?
        .filter(|d| d.spec["SerialNumber"] == serial)
        .ok_or_else(|| not_exist("VirtualMFADevice", serial))
}

pub async fn list_devices(c: &Call<'_>) -> Result<Value, ApiError> {
    let all = c.dir().prefixed(MFA, &names::mfa_id(c.account, "")).await?;
    let out: Vec<Value> = all
        .iter()
        .map(|d| {
            let mut v = json!({"SerialNumber": d.spec["SerialNumber"], "ActivateDate": d.spec["ActivateDate"]});
            if let Some(u) = d.spec["UserName"].as_str() {
                v["User"] = json!({"UserName": u});
            }
            v
        })
        .collect();
    Ok(json!({"VirtualMFADevices": {"VirtualMFADevice": out}}))
}

pub async fn delete_device(c: &Call<'_>) -> Result<Value, ApiError> {
    let d = device(c, c.p.require("SerialNumber")?).await?;
    if d.spec["UserName"].is_string() {
        return Err(conflict("VirtualMFADevice.User", "The device is still bound to a user; unbind it first."));
    }
    remove(c, &d).await?;
    Ok(json!({}))
}

/// The user's bound device, if any.
pub(crate) async fn bound_device(c: &Call<'_>, user_name: &str) -> Result<Option<Resource>, ApiError> {
    Ok(c.dir()
        .prefixed(MFA, &names::mfa_id(c.account, ""))
        .await?
        .into_iter()
        .find(|d| d.spec["UserName"].as_str().is_some_and(|u| u.eq_ignore_ascii_case(user_name))))
}

pub async fn bind(c: &Call<'_>) -> Result<Value, ApiError> {
    let u = user(c, c.p.require("UserName")?).await?;
    let uname = u.spec["UserName"].as_str().unwrap_or_default().to_string();
    let mut d = device(c, c.p.require("SerialNumber")?).await?;
    if d.spec["UserName"].is_string() {
        return Err(already_exists("VirtualMFADevice.User", d.spec["SerialNumber"].as_str().unwrap_or_default()));
    }
    if bound_device(c, &uname).await?.is_some() {
        return Err(already_exists("User.MFADevice", &uname));
    }
    let seed = c
        .keys
        .root_key()
        .unwrap_string(
            &seed_purpose(d.spec["SerialNumber"].as_str().unwrap_or_default()),
            d.spec["SeedWrapped"].as_str().unwrap_or_default(),
        )
        .map_err(|_| ApiError::internal())?;
    // Two consecutive codes prove the authenticator holds the seed and keeps time.
    let now_s = (now_millis() / 1000) as u64;
    let wrong = || {
        ApiError::new(
            400,
            "InvalidParameter.AuthenticationCode",
            "The authentication codes are not two consecutive codes of this device.",
        )
    };
    let s1 = totp_step(seed.expose(), c.p.require("AuthenticationCode1")?, now_s).ok_or_else(wrong)?;
    let s2 = totp_step(seed.expose(), c.p.require("AuthenticationCode2")?, now_s + 30).ok_or_else(wrong)?;
    if s2 != s1 + 1 {
        return Err(wrong());
    }
    d.spec["UserName"] = Value::from(uname);
    d.spec["ActivateDate"] = Value::from(now());
    d.spec["LastStep"] = Value::from(s2);
    c.store.update_resource(&d).await?;
    Ok(json!({}))
}

pub async fn unbind(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = c.p.require("UserName")?;
    user(c, name).await?;
    let mut d = bound_device(c, name).await?.ok_or_else(|| not_exist("User.MFADevice", name))?;
    let serial = d.spec["SerialNumber"].clone();
    d.spec["UserName"] = Value::Null;
    d.spec["ActivateDate"] = Value::Null;
    c.store.update_resource(&d).await?;
    Ok(json!({"MFADevice": {"SerialNumber": serial}}))
}

pub async fn get_user_mfa(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = c.p.require("UserName")?;
    user(c, name).await?;
    let d = bound_device(c, name).await?.ok_or_else(|| not_exist("User.MFADevice", name))?;
    Ok(json!({"MFADevice": {"SerialNumber": d.spec["SerialNumber"]}}))
}
