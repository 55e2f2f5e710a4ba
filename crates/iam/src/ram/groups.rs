//! Groups and membership.

use super::users::user;
use super::{Call, conflict, not_exist, now, page, paging, remove};
use crate::names::{self, GROUP, MEMBERSHIP, PrincipalKind};
use nimbus_api::ApiError;
use nimbus_store::Resource;
use serde_json::{Value, json};

fn name_of<'a>(c: &'a Call<'_>) -> Result<&'a str, ApiError> {
    let n = c.p.require("GroupName")?;
    names::check("GroupName", n, 64, names::group_or_policy_char, "letters, digits and '-'")?;
    Ok(n)
}

pub(crate) async fn group(c: &Call<'_>, name: &str) -> Result<Resource, ApiError> {
    c.dir().get(&names::group_id(c.account, name)).await?.ok_or_else(|| not_exist("Group", name))
}

pub async fn create(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    names::check_text("Comments", c.p.get("Comments"), 128)?;
    let now = now();
    let spec = json!({"GroupId": format!("g-{}", names::numeric_id(12)), "GroupName": name,
                      "Comments": c.p.get("Comments").unwrap_or_default(), "CreateDate": now, "UpdateDate": now});
    let r =
        super::insert(c, Resource::new(&names::group_id(c.account, name), c.account, GROUP, "", spec), "Group", name)
            .await?;
    Ok(json!({"Group": r.spec}))
}

pub async fn get(c: &Call<'_>) -> Result<Value, ApiError> {
    Ok(json!({"Group": group(c, name_of(c)?).await?.spec}))
}

pub async fn update(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    let mut g = group(c, name).await?;
    if let Some(new) = c.p.get("NewGroupName").filter(|n| !n.eq_ignore_ascii_case(name)) {
        return Err(ApiError::new(
            400,
            "InvalidParameter.NewGroupName",
            format!("Renaming a group ({name} to {new}) is not supported yet."),
        ));
    }
    names::check_text("NewComments", c.p.get("NewComments"), 128)?;
    if let Some(v) = c.p.get("NewComments") {
        g.spec["Comments"] = Value::from(v);
    }
    g.spec["UpdateDate"] = Value::from(now());
    Ok(json!({"Group": c.store.update_resource(&g).await?.spec}))
}

pub async fn delete(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = name_of(c)?;
    let g = group(c, name).await?;
    if !members(c, name).await?.is_empty() {
        return Err(conflict("Group.User", format!("The group {name} still has members; remove them first.")));
    }
    if !c
        .dir()
        .prefixed(names::ATTACHMENT, &names::attachments_of(c.account, PrincipalKind::Group, name))
        .await?
        .is_empty()
    {
        return Err(conflict(
            "Group.Policy",
            format!("The group {name} still has policies attached; detach them first."),
        ));
    }
    remove(c, &g).await?;
    Ok(json!({}))
}

pub async fn list(c: &Call<'_>) -> Result<Value, ApiError> {
    let (marker, max) = paging(c.p)?;
    Ok(page(c.store.list_resources(c.account, GROUP, marker, max + 1).await?, max, "Groups", "Group"))
}

pub async fn add_user(c: &Call<'_>) -> Result<Value, ApiError> {
    let u = user(c, c.p.require("UserName")?).await?;
    let g = group(c, name_of(c)?).await?;
    let (un, gn) = (u.spec["UserName"].as_str().unwrap_or_default(), g.spec["GroupName"].as_str().unwrap_or_default());
    let spec = json!({"UserName": un, "GroupName": gn, "JoinDate": now()});
    match c
        .store
        .create_resource(&Resource::new(&names::membership_id(c.account, un, gn), c.account, MEMBERSHIP, "", spec))
        .await
    {
        Ok(_) => Ok(json!({})),
        Err(nimbus_store::StoreError::AlreadyExists) => {
            Err(super::already_exists("User.Group", &format!("{un} in {gn}")))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn remove_user(c: &Call<'_>) -> Result<Value, ApiError> {
    let un = c.p.require("UserName")?;
    let gn = name_of(c)?;
    user(c, un).await?;
    group(c, gn).await?;
    let m = c
        .dir()
        .get(&names::membership_id(c.account, un, gn))
        .await?
        .ok_or_else(|| not_exist("User.Group", &format!("{un} in {gn}")))?;
    remove(c, &m).await?;
    Ok(json!({}))
}

async fn members(c: &Call<'_>, group: &str) -> Result<Vec<Resource>, ApiError> {
    Ok(c.dir()
        .prefixed(MEMBERSHIP, &names::all_memberships(c.account))
        .await?
        .into_iter()
        .filter(|m| m.spec["GroupName"].as_str().is_some_and(|g| g.eq_ignore_ascii_case(group)))
        .collect())
}

pub async fn groups_for_user(c: &Call<'_>) -> Result<Value, ApiError> {
    let un = c.p.require("UserName")?;
    user(c, un).await?;
    let mut out = vec![];
    for m in c.dir().prefixed(MEMBERSHIP, &names::memberships_of(c.account, un)).await? {
        let gn = m.spec["GroupName"].as_str().unwrap_or_default();
        if let Some(g) = c.dir().get(&names::group_id(c.account, gn)).await? {
            out.push(json!({"GroupName": gn, "Comments": g.spec["Comments"], "JoinDate": m.spec["JoinDate"]}));
        }
    }
    Ok(json!({"Groups": {"Group": out}}))
}

pub async fn users_for_group(c: &Call<'_>) -> Result<Value, ApiError> {
    let gn = name_of(c)?;
    group(c, gn).await?;
    let mut out = vec![];
    for m in members(c, gn).await? {
        let un = m.spec["UserName"].as_str().unwrap_or_default();
        if let Some(u) = c.dir().get(&names::user_id(c.account, un)).await? {
            out.push(json!({"UserName": un, "DisplayName": u.spec["DisplayName"], "JoinDate": m.spec["JoinDate"]}));
        }
    }
    Ok(json!({"Users": {"User": out}}))
}
