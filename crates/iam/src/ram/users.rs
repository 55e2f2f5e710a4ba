//! Users and their AccessKeys.

use super::{Call, conflict, not_exist, now, page, paging, remove};
use crate::accounts::access_key_record;
use crate::names::{self, PrincipalKind, USER};
use nimbus_api::ApiError;
use nimbus_core::ids;
use nimbus_store::{Resource, StoreError};
use serde_json::{Value, json};

const MAX_KEYS_PER_USER: usize = 2;

fn name_of<'a>(c: &'a Call<'_>) -> Result<&'a str, ApiError> {
    let n = c.p.require("UserName")?;
    names::check("UserName", n, 64, names::user_name_char, "letters, digits, '.', '_' and '-'")?;
    Ok(n)
}

/// The user named in `UserName`, or `EntityNotExist.User`.
pub(crate) async fn user(c: &Call<'_>, name: &str) -> Result<Resource, ApiError> {
    c.dir().get(&names::user_id(c.account, name)).await?.ok_or_else(|| not_exist("User", name))
}

pub async fn create(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    for (f, max) in [("DisplayName", 128), ("Comments", 128), ("MobilePhone", 32), ("Email", 128)] {
        names::check_text(f, c.p.get(f), max)?;
    }
    let now = now();
    let spec = json!({
        "UserId": names::numeric_id(16),
        "UserName": name,
        "DisplayName": c.p.get("DisplayName").unwrap_or(name),
        "MobilePhone": c.p.get("MobilePhone").unwrap_or_default(),
        "Email": c.p.get("Email").unwrap_or_default(),
        "Comments": c.p.get("Comments").unwrap_or_default(),
        "CreateDate": now,
        "UpdateDate": now,
    });
    let r = super::insert(c, Resource::new(&names::user_id(c.account, name), c.account, USER, "", spec), "User", name)
        .await?;
    Ok(json!({"User": r.spec}))
}

pub async fn get(c: &Call<'_>) -> Result<Value, ApiError> {
    Ok(json!({"User": user(c, name_of(c)?).await?.spec}))
}

pub async fn update(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    let mut u = user(c, name).await?;
    if let Some(new) = c.p.get("NewUserName").filter(|n| !n.eq_ignore_ascii_case(name)) {
        return Err(ApiError::new(
            400,
            "InvalidParameter.NewUserName",
            format!("Renaming a user ({name} to {new}) is not supported yet: create a new user instead."),
        ));
    }
    for (param, field, max) in [
        ("NewDisplayName", "DisplayName", 128),
        ("NewMobilePhone", "MobilePhone", 32),
        ("NewEmail", "Email", 128),
        ("NewComments", "Comments", 128),
    ] {
        names::check_text(param, c.p.get(param), max)?;
        if let Some(v) = c.p.get(param) {
            u.spec[field] = Value::from(v);
        }
    }
    u.spec["UpdateDate"] = Value::from(now());
    let u = c.store.update_resource(&u).await?;
    Ok(json!({"User": u.spec}))
}

pub async fn delete(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    let u = user(c, name).await?;
    let key = name.to_ascii_lowercase();
    if !c.store.list_access_keys(c.account, "user", &key).await?.is_empty() {
        return Err(conflict("User.AccessKey", format!("The user {name} still has AccessKeys; delete them first.")));
    }
    if !c
        .dir()
        .prefixed(names::ATTACHMENT, &names::attachments_of(c.account, PrincipalKind::User, name))
        .await?
        .is_empty()
    {
        return Err(conflict(
            "User.Policy",
            format!("The user {name} still has policies attached; detach them first."),
        ));
    }
    if super::login::profile(c, name).await?.is_some() {
        return Err(conflict(
            "User.LoginProfile",
            format!("The user {name} still has a login profile; delete it first."),
        ));
    }
    if super::login::bound_device(c, name).await?.is_some() {
        return Err(conflict(
            "User.MFADevice",
            format!("The user {name} still has an MFA device bound; unbind it first."),
        ));
    }
    if !c.dir().groups_of(name).await?.is_empty() {
        return Err(conflict("User.Group", format!("The user {name} is still in groups; remove it first.")));
    }
    remove(c, &u).await?;
    Ok(json!({}))
}

pub async fn list(c: &Call<'_>) -> Result<Value, ApiError> {
    let (marker, max) = paging(c.p)?;
    let rows = c.store.list_resources(c.account, USER, marker, max + 1).await?;
    Ok(page(rows, max, "Users", "User"))
}

fn key_json(k: &nimbus_store::AccessKeyRecord) -> Value {
    json!({"AccessKeyId": k.id, "Status": k.status, "CreateDate": nimbus_core::clock::iso8601(k.created_at)})
}

pub async fn create_key(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    user(c, name).await?;
    let principal = name.to_ascii_lowercase();
    if c.store.list_access_keys(c.account, "user", &principal).await?.len() >= MAX_KEYS_PER_USER {
        return Err(ApiError::new(
            409,
            "LimitExceeded.User.AccessKey",
            format!("A user may have at most {MAX_KEYS_PER_USER} AccessKeys."),
        ));
    }
    let (id, secret) = (ids::access_key_id(), ids::access_key_secret());
    let rec = access_key_record(c.keys, c.account, "user", &principal, &id, &secret);
    c.store.insert_access_key(&rec).await?;
    let mut v = key_json(&rec);
    v["AccessKeySecret"] = Value::from(secret);
    Ok(json!({"AccessKey": v}))
}

/// The user's key named in `UserAccessKeyId`, or `EntityNotExist.User.AccessKey`.
async fn key_of(c: &Call<'_>) -> Result<(String, String), ApiError> {
    let name = name_of(c)?;
    user(c, name).await?;
    let id = c.p.require("UserAccessKeyId")?;
    let keys = c.store.list_access_keys(c.account, "user", &name.to_ascii_lowercase()).await?;
    keys.iter()
        .find(|k| k.id == id)
        .map(|k| (name.to_string(), k.id.clone()))
        .ok_or_else(|| not_exist("User.AccessKey", id))
}

pub async fn update_key(c: &Call<'_>) -> Result<Value, ApiError> {
    let status = c.p.require("Status")?;
    if status != "Active" && status != "Inactive" {
        return Err(ApiError::invalid("Status", "Active or Inactive"));
    }
    let (_, id) = key_of(c).await?;
    c.store.set_access_key_status(c.account, &id, status).await?;
    c.credentials.forget(&id);
    Ok(json!({}))
}

pub async fn delete_key(c: &Call<'_>) -> Result<Value, ApiError> {
    let (_, id) = key_of(c).await?;
    match c.store.delete_access_key(c.account, &id).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    c.credentials.forget(&id);
    Ok(json!({}))
}

pub async fn list_keys(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    user(c, name).await?;
    let keys = c.store.list_access_keys(c.account, "user", &name.to_ascii_lowercase()).await?;
    Ok(json!({"AccessKeys": {"AccessKey": keys.iter().map(key_json).collect::<Vec<_>>()}}))
}
