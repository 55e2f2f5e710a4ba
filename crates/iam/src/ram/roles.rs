//! Roles: an identity others may assume (through STS), if the role's trust policy lets them.

use super::{Call, conflict, not_exist, now, page, paging, remove};
use crate::names::{self, PrincipalKind, ROLE};
use nimbus_api::ApiError;
use nimbus_policy::Policy;
use nimbus_store::Resource;
use serde_json::{Value, json};

fn name_of<'a>(c: &'a Call<'_>) -> Result<&'a str, ApiError> {
    let n = c.p.require("RoleName")?;
    names::check("RoleName", n, 64, names::role_name_char, "letters, digits, '.' and '-'")?;
    Ok(n)
}

pub(crate) async fn role(c: &Call<'_>, name: &str) -> Result<Resource, ApiError> {
    c.dir().get(&names::role_id(c.account, name)).await?.ok_or_else(|| not_exist("Role", name))
}

/// A trust policy: valid, and every statement names a `Principal`.
fn trust_document(doc: &str) -> Result<(), ApiError> {
    let p = Policy::parse(doc)
        .map_err(|e| ApiError::new(400, "MalformedPolicyDocument", format!("The trust policy is malformed: {e}")))?;
    if !p.is_trust_policy() {
        return Err(ApiError::new(
            400,
            "MalformedPolicyDocument",
            "The trust policy is malformed: every statement must name a Principal.",
        ));
    }
    Ok(())
}

fn session_duration(c: &Call<'_>, param: &str) -> Result<Option<i64>, ApiError> {
    c.p.int(param, 3600, 43200).map_err(|_| {
        ApiError::new(400, format!("InvalidParameter.{param}"), format!("{param} must be 3600 to 43200 seconds."))
    })
}

pub async fn create(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    let doc = c.p.require("AssumeRolePolicyDocument")?;
    trust_document(doc)?;
    names::check_text("Description", c.p.get("Description"), 1024)?;
    let now = now();
    let spec = json!({
        "RoleId": names::numeric_id(19), "RoleName": name, "Arn": names::arn(c.account, &format!("role/{name}")),
        "Description": c.p.get("Description").unwrap_or_default(), "AssumeRolePolicyDocument": doc,
        "MaxSessionDuration": session_duration(c, "MaxSessionDuration")?.unwrap_or(3600), "CreateDate": now, "UpdateDate": now,
    });
    let r = super::insert(c, Resource::new(&names::role_id(c.account, name), c.account, ROLE, "", spec), "Role", name)
        .await?;
    Ok(json!({"Role": r.spec}))
}

pub async fn get(c: &Call<'_>) -> Result<Value, ApiError> {
    Ok(json!({"Role": role(c, name_of(c)?).await?.spec}))
}

pub async fn update(c: &Call<'_>) -> Result<Value, ApiError> {
    let mut r = role(c, name_of(c)?).await?;
    if let Some(doc) = c.p.get("NewAssumeRolePolicyDocument") {
        trust_document(doc)?;
        r.spec["AssumeRolePolicyDocument"] = Value::from(doc);
    }
    if let Some(d) = session_duration(c, "NewMaxSessionDuration")? {
        r.spec["MaxSessionDuration"] = Value::from(d);
    }
    names::check_text("NewDescription", c.p.get("NewDescription"), 1024)?;
    if let Some(d) = c.p.get("NewDescription") {
        r.spec["Description"] = Value::from(d);
    }
    r.spec["UpdateDate"] = Value::from(now());
    Ok(json!({"Role": c.store.update_resource(&r).await?.spec}))
}

pub async fn delete(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    let r = role(c, name).await?;
    if !c
        .dir()
        .prefixed(names::ATTACHMENT, &names::attachments_of(c.account, PrincipalKind::Role, name))
        .await?
        .is_empty()
    {
        return Err(conflict(
            "Role.Policy",
            format!("The role {name} still has policies attached; detach them first."),
        ));
    }
    remove(c, &r).await?;
    Ok(json!({}))
}

pub async fn list(c: &Call<'_>) -> Result<Value, ApiError> {
    let (marker, max) = paging(c.p)?;
    Ok(page(c.store.list_resources(c.account, ROLE, marker, max + 1).await?, max, "Roles", "Role"))
}
