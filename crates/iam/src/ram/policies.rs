//! Policies, their versions, and their attachment to users, groups and roles.

use super::groups::group;
use super::roles::role;
use super::users::user;
use super::{Call, already_exists, conflict, not_exist, now, remove};
use crate::names::{self, ATTACHMENT, POLICY, PrincipalKind};
use crate::system_policies::{self, SYSTEM_POLICIES};
use nimbus_api::ApiError;
use nimbus_policy::Policy;
use nimbus_store::Resource;
use serde_json::{Value, json};

const MAX_VERSIONS: usize = 5;

fn name_of<'a>(c: &'a Call<'_>) -> Result<&'a str, ApiError> {
    let n = c.p.require("PolicyName")?;
    names::check("PolicyName", n, 128, names::group_or_policy_char, "letters, digits and '-'")?;
    Ok(n)
}

/// `PolicyType`: `System` or `Custom` (required where the API requires it).
fn policy_type<'a>(c: &'a Call<'_>) -> Result<&'a str, ApiError> {
    match c.p.require("PolicyType")? {
        t @ ("System" | "Custom") => Ok(t),
        _ => Err(ApiError::new(400, "InvalidParameter.PolicyType", "PolicyType must be System or Custom.")),
    }
}

/// Validates an identity-policy document (`MalformedPolicyDocument` with the reason).
pub(crate) fn identity_document(doc: &str) -> Result<(), ApiError> {
    let p = Policy::parse(doc)
        .map_err(|e| ApiError::new(400, "MalformedPolicyDocument", format!("The policy document is malformed: {e}")))?;
    if p.is_trust_policy() {
        return Err(ApiError::new(
            400,
            "MalformedPolicyDocument",
            "The policy document is malformed: an identity policy does not name a Principal.",
        ));
    }
    Ok(())
}

async fn custom(c: &Call<'_>, name: &str) -> Result<Resource, ApiError> {
    c.dir().get(&names::policy_id(c.account, name)).await?.ok_or_else(|| not_exist("Policy", name))
}

fn version_json(spec: &Value, v: &Value) -> Value {
    json!({
        "VersionId": v["VersionId"],
        "IsDefaultVersion": v["VersionId"] == spec["DefaultVersion"],
        "PolicyDocument": v["PolicyDocument"],
        "CreateDate": v["CreateDate"],
    })
}

async fn attachment_count(c: &Call<'_>, policy_type: &str, name: &str) -> Result<usize, ApiError> {
    Ok(entities(c, policy_type, name).await?.len())
}

fn summary(spec: &Value, attachments: usize) -> Value {
    json!({
        "PolicyName": spec["PolicyName"], "PolicyType": "Custom", "Description": spec["Description"],
        "DefaultVersion": spec["DefaultVersion"], "CreateDate": spec["CreateDate"], "UpdateDate": spec["UpdateDate"],
        "AttachmentCount": attachments,
    })
}

fn system_summary(name: &str, description: &str, attachments: usize) -> Value {
    json!({"PolicyName": name, "PolicyType": "System", "Description": description, "DefaultVersion": "v1",
           "CreateDate": "2025-01-01T00:00:00Z", "UpdateDate": "2025-01-01T00:00:00Z", "AttachmentCount": attachments})
}

pub async fn create(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    if system_policies::find(name).is_some() {
        return Err(already_exists("Policy", name));
    }
    let doc = c.p.require("PolicyDocument")?;
    identity_document(doc)?;
    names::check_text("Description", c.p.get("Description"), 1024)?;
    let now = now();
    let spec = json!({
        "PolicyName": name, "PolicyType": "Custom", "Description": c.p.get("Description").unwrap_or_default(),
        "DefaultVersion": "v1", "CreateDate": now, "UpdateDate": now, "NextVersion": 2,
        "Versions": [{"VersionId": "v1", "PolicyDocument": doc, "CreateDate": now}],
    });
    let r = super::insert(
        c,
        Resource::new(&names::policy_id(c.account, name), c.account, POLICY, "", spec),
        "Policy",
        name,
    )
    .await?;
    let mut p = summary(&r.spec, 0);
    p.as_object_mut().map(|m| m.remove("AttachmentCount"));
    Ok(json!({"Policy": p}))
}

pub async fn get(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    match policy_type(c)? {
        "System" => {
            let (n, d, doc) = system_policies::find(name).ok_or_else(|| not_exist("Policy", name))?;
            let count = attachment_count(c, "System", n).await?;
            Ok(json!({"Policy": system_summary(n, d, count),
                      "DefaultPolicyVersion": {"VersionId": "v1", "IsDefaultVersion": true, "PolicyDocument": doc, "CreateDate": "2025-01-01T00:00:00Z"}}))
        }
        _ => {
            let p = custom(c, name).await?;
            let count = attachment_count(c, "Custom", name).await?;
            let default = p.spec["Versions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["VersionId"] == p.spec["DefaultVersion"])
                .cloned()
                .unwrap_or_default();
            Ok(json!({"Policy": summary(&p.spec, count), "DefaultPolicyVersion": version_json(&p.spec, &default)}))
        }
    }
}

pub async fn delete(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    if system_policies::find(name).is_some() && c.dir().get(&names::policy_id(c.account, name)).await?.is_none() {
        return Err(ApiError::new(400, "InvalidParameter.PolicyType", "System policies cannot be deleted."));
    }
    let p = custom(c, name).await?;
    if let Some((kind, _, _)) = entities(c, "Custom", name).await?.first() {
        return Err(conflict(
            &format!("Policy.{}", kind.as_str()),
            format!("The policy {name} is still attached; detach it first."),
        ));
    }
    if p.spec["Versions"].as_array().is_some_and(|v| v.len() > 1) {
        return Err(conflict(
            "Policy.Version",
            format!("The policy {name} has versions besides the default; delete them first."),
        ));
    }
    remove(c, &p).await?;
    Ok(json!({}))
}

pub async fn list(c: &Call<'_>) -> Result<Value, ApiError> {
    let (marker, max) = super::paging(c.p)?;
    let filter = c.p.get("PolicyType").filter(|t| !t.is_empty());
    let mut items = vec![];
    if filter.is_none_or(|t| t == "System") && marker.is_none() {
        for (n, d, _) in SYSTEM_POLICIES {
            items.push(system_summary(n, d, attachment_count(c, "System", n).await?));
        }
    }
    let mut truncated = false;
    let mut next = None;
    if filter.is_none_or(|t| t == "Custom") {
        let mut rows = c.store.list_resources(c.account, POLICY, marker, max + 1).await?;
        truncated = rows.len() as i64 > max;
        rows.truncate(max as usize);
        next = if truncated { rows.last().map(|r| r.id.clone()) } else { None };
        for r in rows {
            let n = r.spec["PolicyName"].as_str().unwrap_or_default().to_string();
            items.push(summary(&r.spec, attachment_count(c, "Custom", &n).await?));
        }
    }
    let mut v = json!({"Policies": {"Policy": items}, "IsTruncated": truncated});
    if let Some(m) = next {
        v["Marker"] = Value::from(m);
    }
    Ok(v)
}

pub async fn create_version(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    let doc = c.p.require("PolicyDocument")?;
    identity_document(doc)?;
    let set_default = c.p.bool("SetAsDefault")?.unwrap_or(false);
    let rotate = match c.p.get("RotateStrategy").unwrap_or("None") {
        "None" | "" => false,
        "DeleteOldestNonDefaultVersionWhenLimitExceeded" => true,
        _ => return Err(ApiError::invalid("RotateStrategy", "None or DeleteOldestNonDefaultVersionWhenLimitExceeded")),
    };
    let mut p = custom(c, name).await?;
    let mut versions = p.spec["Versions"].as_array().cloned().unwrap_or_default();
    if versions.len() >= MAX_VERSIONS {
        if !rotate {
            return Err(ApiError::new(
                409,
                "LimitExceeded.Policy.Version",
                format!("A policy may have at most {MAX_VERSIONS} versions."),
            ));
        }
        let default = p.spec["DefaultVersion"].clone();
        if let Some(i) = versions.iter().position(|v| v["VersionId"] != default) {
            versions.remove(i);
        }
    }
    let n = p.spec["NextVersion"].as_i64().unwrap_or(versions.len() as i64 + 1);
    let id = format!("v{n}");
    let now = now();
    let v = json!({"VersionId": id, "PolicyDocument": doc, "CreateDate": now});
    versions.push(v.clone());
    p.spec["Versions"] = Value::from(versions);
    p.spec["NextVersion"] = Value::from(n + 1);
    p.spec["UpdateDate"] = Value::from(now);
    if set_default {
        p.spec["DefaultVersion"] = Value::from(id);
    }
    let p = c.store.update_resource(&p).await?;
    Ok(json!({"PolicyVersion": version_json(&p.spec, &v)}))
}

fn find_version<'v>(spec: &'v Value, id: &str) -> Result<&'v Value, ApiError> {
    spec["Versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["VersionId"] == id)
        .ok_or_else(|| not_exist("Policy.Version", id))
}

pub async fn get_version(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    let vid = c.p.require("VersionId")?;
    if policy_type(c)? == "System" {
        let (_, _, doc) = system_policies::find(name).ok_or_else(|| not_exist("Policy", name))?;
        if vid != "v1" {
            return Err(not_exist("Policy.Version", vid));
        }
        return Ok(
            json!({"PolicyVersion": {"VersionId": "v1", "IsDefaultVersion": true, "PolicyDocument": doc, "CreateDate": "2025-01-01T00:00:00Z"}}),
        );
    }
    let p = custom(c, name).await?;
    Ok(json!({"PolicyVersion": version_json(&p.spec, find_version(&p.spec, vid)?)}))
}

pub async fn list_versions(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    if policy_type(c)? == "System" {
        let (_, _, doc) = system_policies::find(name).ok_or_else(|| not_exist("Policy", name))?;
        return Ok(
            json!({"PolicyVersions": {"PolicyVersion": [{"VersionId": "v1", "IsDefaultVersion": true, "PolicyDocument": doc, "CreateDate": "2025-01-01T00:00:00Z"}]}}),
        );
    }
    let p = custom(c, name).await?;
    let vs: Vec<Value> =
        p.spec["Versions"].as_array().into_iter().flatten().map(|v| version_json(&p.spec, v)).collect();
    Ok(json!({"PolicyVersions": {"PolicyVersion": vs}}))
}

pub async fn set_default_version(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    let vid = c.p.require("VersionId")?;
    let mut p = custom(c, name).await?;
    find_version(&p.spec, vid)?;
    p.spec["DefaultVersion"] = Value::from(vid);
    p.spec["UpdateDate"] = Value::from(now());
    c.store.update_resource(&p).await?;
    Ok(json!({}))
}

pub async fn delete_version(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    let vid = c.p.require("VersionId")?;
    let mut p = custom(c, name).await?;
    find_version(&p.spec, vid)?;
    if p.spec["DefaultVersion"] == vid {
        return Err(conflict(
            "Policy.Version.Default",
            "The default version cannot be deleted; make another version the default first.",
        ));
    }
    let vs: Vec<Value> =
        p.spec["Versions"].as_array().into_iter().flatten().filter(|v| v["VersionId"] != vid).cloned().collect();
    p.spec["Versions"] = Value::from(vs);
    c.store.update_resource(&p).await?;
    Ok(json!({}))
}

/// The principal named by the action (`UserName`, `GroupName` or `RoleName`); it must exist.
async fn principal(c: &Call<'_>, kind: PrincipalKind) -> Result<String, ApiError> {
    Ok(match kind {
        PrincipalKind::User => {
            let n = c.p.require("UserName")?;
            user(c, n).await?.spec["UserName"].as_str().unwrap_or(n).to_string()
        }
        PrincipalKind::Group => {
            let n = c.p.require("GroupName")?;
            group(c, n).await?.spec["GroupName"].as_str().unwrap_or(n).to_string()
        }
        PrincipalKind::Role => {
            let n = c.p.require("RoleName")?;
            role(c, n).await?.spec["RoleName"].as_str().unwrap_or(n).to_string()
        }
    })
}

/// The policy (`PolicyType`, `PolicyName`) with its canonical name; it must exist.
async fn existing_policy(c: &Call<'_>) -> Result<(&'static str, String), ApiError> {
    let name = name_of(c)?;
    match policy_type(c)? {
        "System" => system_policies::find(name)
            .map(|(n, _, _)| ("System", n.to_string()))
            .ok_or_else(|| not_exist("Policy", name)),
        _ => Ok(("Custom", custom(c, name).await?.spec["PolicyName"].as_str().unwrap_or(name).to_string())),
    }
}

pub async fn attach(c: &Call<'_>, kind: PrincipalKind) -> Result<Value, ApiError> {
    let (ptype, pname) = existing_policy(c).await?;
    let who = principal(c, kind).await?;
    let spec = json!({"PrincipalType": kind.as_str(), "PrincipalName": who, "PolicyType": ptype, "PolicyName": pname, "AttachDate": now()});
    let id = names::attachment_id(c.account, kind, &who, ptype, &pname);
    match c.store.create_resource(&Resource::new(&id, c.account, ATTACHMENT, "", spec)).await {
        Ok(_) => Ok(json!({})),
        Err(nimbus_store::StoreError::AlreadyExists) => {
            Err(already_exists(&format!("{}.Policy", kind.as_str()), &pname))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn detach(c: &Call<'_>, kind: PrincipalKind) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    let ptype = policy_type(c)?;
    let who = principal(c, kind).await?;
    let id = names::attachment_id(c.account, kind, &who, ptype, name);
    let a = c.dir().get(&id).await?.ok_or_else(|| not_exist(&format!("{}.Policy", kind.as_str()), name))?;
    remove(c, &a).await?;
    Ok(json!({}))
}

pub async fn list_for(c: &Call<'_>, kind: PrincipalKind) -> Result<Value, ApiError> {
    let who = principal(c, kind).await?;
    let mut out = vec![];
    for a in c.dir().prefixed(ATTACHMENT, &names::attachments_of(c.account, kind, &who)).await? {
        let (t, n) =
            (a.spec["PolicyType"].as_str().unwrap_or_default(), a.spec["PolicyName"].as_str().unwrap_or_default());
        let (description, default) = match t {
            "System" => (system_policies::find(n).map(|(_, d, _)| d.to_string()).unwrap_or_default(), "v1".to_string()),
            _ => match c.dir().get(&names::policy_id(c.account, n)).await? {
                Some(p) => (
                    p.spec["Description"].as_str().unwrap_or_default().to_string(),
                    p.spec["DefaultVersion"].as_str().unwrap_or_default().to_string(),
                ),
                None => continue,
            },
        };
        out.push(json!({"PolicyName": n, "PolicyType": t, "Description": description, "DefaultVersion": default, "AttachDate": a.spec["AttachDate"]}));
    }
    Ok(json!({"Policies": {"Policy": out}}))
}

/// Every attachment of one policy: (principal kind, principal name, attach date).
async fn entities(
    c: &Call<'_>,
    policy_type: &str,
    name: &str,
) -> Result<Vec<(PrincipalKind, String, Value)>, ApiError> {
    Ok(c.dir()
        .prefixed(ATTACHMENT, &names::all_attachments(c.account))
        .await?
        .into_iter()
        .filter(|a| {
            a.spec["PolicyType"] == policy_type
                && a.spec["PolicyName"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .filter_map(|a| {
            let kind = match a.spec["PrincipalType"].as_str()? {
                "User" => PrincipalKind::User,
                "Group" => PrincipalKind::Group,
                _ => PrincipalKind::Role,
            };
            Some((kind, a.spec["PrincipalName"].as_str()?.to_string(), a.spec["AttachDate"].clone()))
        })
        .collect())
}

pub async fn list_entities(c: &Call<'_>) -> Result<Value, ApiError> {
    let (ptype, pname) = existing_policy(c).await?;
    let all = entities(c, ptype, &pname).await?;
    let of = |k: PrincipalKind, field: &str| -> Vec<Value> {
        all.iter().filter(|(kind, _, _)| *kind == k).map(|(_, n, d)| json!({field: n, "AttachDate": d})).collect()
    };
    Ok(json!({
        "Users": {"User": of(PrincipalKind::User, "UserName")},
        "Groups": {"Group": of(PrincipalKind::Group, "GroupName")},
        "Roles": {"Role": of(PrincipalKind::Role, "RoleName")},
    }))
}
