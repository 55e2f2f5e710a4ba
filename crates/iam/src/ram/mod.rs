//! The RAM API, version 2015-05-01.

mod account;
mod groups;
pub(crate) mod login;
mod policies;
mod roles;
mod users;

pub(crate) use policies::identity_document as identity_policy;

use crate::StoreCredentials;
use crate::names::{self, PrincipalKind};
use crate::system_policies;
use nimbus_api::{ActionSpec, ApiError, BoxFut, CallContext, Canonical, Params, ResourceParam, Service};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_core::secret::KeyProvider;
use nimbus_store::{Resource, Store, StoreError};
use serde_json::{Value, json};
use std::sync::Arc;

pub struct Ram {
    keys: Arc<dyn KeyProvider>,
    credentials: Arc<StoreCredentials>,
}

impl Ram {
    /// `credentials` is the gateway's credential source: disabling or deleting a key here makes it
    /// forget the key at once instead of after its cache interval.
    pub fn new(keys: Arc<dyn KeyProvider>, credentials: Arc<StoreCredentials>) -> Self {
        Ram { keys, credentials }
    }
}

const ACTIONS: &[ActionSpec] = nimbus_api::actions!["ram:";
    "CreateUser" => Write, "GetUser" => Read, "UpdateUser" => Write, "DeleteUser" => Write, "ListUsers" => Read,
    "CreateAccessKey" => Write, "UpdateAccessKey" => Write, "DeleteAccessKey" => Write, "ListAccessKeys" => Read,
    "CreatePolicy" => Write, "GetPolicy" => Read, "DeletePolicy" => Write, "ListPolicies" => Read,
    "CreatePolicyVersion" => Write, "GetPolicyVersion" => Read, "ListPolicyVersions" => Read,
    "SetDefaultPolicyVersion" => Write, "DeletePolicyVersion" => Write,
    "AttachPolicyToUser" => Write, "DetachPolicyFromUser" => Write, "ListPoliciesForUser" => Read,
    "AttachPolicyToGroup" => Write, "DetachPolicyFromGroup" => Write, "ListPoliciesForGroup" => Read,
    "AttachPolicyToRole" => Write, "DetachPolicyFromRole" => Write, "ListPoliciesForRole" => Read,
    "ListEntitiesForPolicy" => Read,
    "CreateGroup" => Write, "GetGroup" => Read, "UpdateGroup" => Write, "DeleteGroup" => Write, "ListGroups" => Read,
    "AddUserToGroup" => Write, "RemoveUserFromGroup" => Write, "ListGroupsForUser" => Read, "ListUsersForGroup" => Read,
    "CreateRole" => Write, "GetRole" => Read, "UpdateRole" => Write, "DeleteRole" => Write, "ListRoles" => Read,
    "GetAccountAlias" => Read, "SetAccountAlias" => Write, "GetPasswordPolicy" => Read, "SetPasswordPolicy" => Write,
    "CreateLoginProfile" => Write, "GetLoginProfile" => Read, "UpdateLoginProfile" => Write, "DeleteLoginProfile" => Write,
    "CreateVirtualMFADevice" => Write, "ListVirtualMFADevices" => Read, "DeleteVirtualMFADevice" => Write,
    "BindMFADevice" => Write, "UnbindMFADevice" => Write, "GetUserMFAInfo" => Read,
];

/// The parameters of each RAM action that name entities. Login profiles and MFA bindings are
/// the user's: a Deny on a user guards its console access too.
fn resource_params(action: &str) -> &'static [ResourceParam] {
    const USER: ResourceParam = ResourceParam::one("UserName", "user");
    const GROUP: ResourceParam = ResourceParam::one("GroupName", "group");
    const ROLE: ResourceParam = ResourceParam::one("RoleName", "role");
    const POLICY: ResourceParam = ResourceParam::one("PolicyName", "policy");
    const DEVICE: ResourceParam = ResourceParam::one("SerialNumber", "mfa");
    match action {
        // Without `UserName` a RAM user manages their own AccessKeys, as in Alibaba's RAM.
        "CreateAccessKey" | "UpdateAccessKey" | "DeleteAccessKey" | "ListAccessKeys" => {
            nimbus_api::resource_params![USER.or_calling_user()]
        }
        "CreateUser"
        | "GetUser"
        | "UpdateUser"
        | "DeleteUser"
        | "ListPoliciesForUser"
        | "ListGroupsForUser"
        | "CreateLoginProfile"
        | "GetLoginProfile"
        | "UpdateLoginProfile"
        | "DeleteLoginProfile"
        | "UnbindMFADevice"
        | "GetUserMFAInfo" => {
            nimbus_api::resource_params![USER]
        }
        "BindMFADevice" => nimbus_api::resource_params![USER, DEVICE],
        "CreateVirtualMFADevice" => nimbus_api::resource_params![ResourceParam::one("VirtualMFADeviceName", "mfa")],
        "DeleteVirtualMFADevice" => nimbus_api::resource_params![DEVICE],
        "CreateGroup" | "GetGroup" | "UpdateGroup" | "DeleteGroup" | "ListPoliciesForGroup" | "ListUsersForGroup" => {
            nimbus_api::resource_params![GROUP]
        }
        "CreateRole" | "GetRole" | "UpdateRole" | "DeleteRole" | "ListPoliciesForRole" => {
            nimbus_api::resource_params![ROLE]
        }
        "CreatePolicy"
        | "GetPolicy"
        | "DeletePolicy"
        | "CreatePolicyVersion"
        | "GetPolicyVersion"
        | "ListPolicyVersions"
        | "SetDefaultPolicyVersion"
        | "DeletePolicyVersion"
        | "ListEntitiesForPolicy" => {
            nimbus_api::resource_params![POLICY]
        }
        "AttachPolicyToUser" | "DetachPolicyFromUser" => nimbus_api::resource_params![POLICY, USER],
        "AttachPolicyToGroup" | "DetachPolicyFromGroup" => nimbus_api::resource_params![POLICY, GROUP],
        "AttachPolicyToRole" | "DetachPolicyFromRole" => nimbus_api::resource_params![POLICY, ROLE],
        "AddUserToGroup" | "RemoveUserFromGroup" => nimbus_api::resource_params![USER, GROUP],
        _ => nimbus_api::resource_params![],
    }
}

impl Service for Ram {
    fn product(&self) -> &'static str {
        "Ram"
    }
    fn code(&self) -> &'static str {
        "ram"
    }
    fn version(&self) -> &'static str {
        "2015-05-01"
    }
    fn actions(&self) -> &'static [ActionSpec] {
        ACTIONS
    }
    fn deny_code(&self) -> &'static str {
        "NoPermission"
    }

    fn resource_params(&self, action: &ActionSpec) -> &'static [ResourceParam] {
        resource_params(action.name)
    }

    /// RAM names compare case-insensitively, so their ARNs are folded to lower case (and RAM
    /// resource patterns in policies match case-insensitively, see `nimbus-policy`): `Admin` and
    /// `admin` are one user to the authorizer as they are to the handlers.
    fn canonical<'a>(
        &'a self,
        ctx: &'a CallContext,
        kind: &'static str,
        raw: String,
    ) -> BoxFut<'a, Result<Canonical, ApiError>> {
        let acct = &ctx.caller.account_id;
        let folded = raw.to_ascii_lowercase();
        let arn = match kind {
            // A device's serial number is its ARN (`acs:ram::<account>:mfa/<name>`).
            "mfa" => {
                names::arn(acct, &format!("mfa/{}", folded.rsplit_once(":mfa/").map_or(folded.as_str(), |(_, n)| n)))
            }
            other => names::arn(acct, &format!("{other}/{folded}")),
        };
        Box::pin(async move { Ok(Canonical::new(raw, arn)) })
    }

    fn account_arn(&self, ctx: &CallContext) -> String {
        names::arn(&ctx.caller.account_id, "*")
    }
    fn handle<'a>(
        &'a self,
        ctx: &'a CallContext,
        action: &'a ActionSpec,
        p: &'a Params,
    ) -> BoxFut<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            let c = Call {
                store: &ctx.store,
                account: &ctx.caller.account_id,
                keys: self.keys.as_ref(),
                credentials: &self.credentials,
                p,
            };
            match action.name {
                "CreateUser" => users::create(&c).await,
                "GetUser" => users::get(&c).await,
                "UpdateUser" => users::update(&c).await,
                "DeleteUser" => users::delete(&c).await,
                "ListUsers" => users::list(&c).await,
                "CreateAccessKey" => users::create_key(&c).await,
                "UpdateAccessKey" => users::update_key(&c).await,
                "DeleteAccessKey" => users::delete_key(&c).await,
                "ListAccessKeys" => users::list_keys(&c).await,
                "CreatePolicy" => policies::create(&c).await,
                "GetPolicy" => policies::get(&c).await,
                "DeletePolicy" => policies::delete(&c).await,
                "ListPolicies" => policies::list(&c).await,
                "CreatePolicyVersion" => policies::create_version(&c).await,
                "GetPolicyVersion" => policies::get_version(&c).await,
                "ListPolicyVersions" => policies::list_versions(&c).await,
                "SetDefaultPolicyVersion" => policies::set_default_version(&c).await,
                "DeletePolicyVersion" => policies::delete_version(&c).await,
                "AttachPolicyToUser" => policies::attach(&c, PrincipalKind::User).await,
                "AttachPolicyToGroup" => policies::attach(&c, PrincipalKind::Group).await,
                "AttachPolicyToRole" => policies::attach(&c, PrincipalKind::Role).await,
                "DetachPolicyFromUser" => policies::detach(&c, PrincipalKind::User).await,
                "DetachPolicyFromGroup" => policies::detach(&c, PrincipalKind::Group).await,
                "DetachPolicyFromRole" => policies::detach(&c, PrincipalKind::Role).await,
                "ListPoliciesForUser" => policies::list_for(&c, PrincipalKind::User).await,
                "ListPoliciesForGroup" => policies::list_for(&c, PrincipalKind::Group).await,
                "ListPoliciesForRole" => policies::list_for(&c, PrincipalKind::Role).await,
                "ListEntitiesForPolicy" => policies::list_entities(&c).await,
                "CreateGroup" => groups::create(&c).await,
                "GetGroup" => groups::get(&c).await,
                "UpdateGroup" => groups::update(&c).await,
                "DeleteGroup" => groups::delete(&c).await,
                "ListGroups" => groups::list(&c).await,
                "AddUserToGroup" => groups::add_user(&c).await,
                "RemoveUserFromGroup" => groups::remove_user(&c).await,
                "ListGroupsForUser" => groups::groups_for_user(&c).await,
                "ListUsersForGroup" => groups::users_for_group(&c).await,
                "CreateRole" => roles::create(&c).await,
                "GetRole" => roles::get(&c).await,
                "UpdateRole" => roles::update(&c).await,
                "DeleteRole" => roles::delete(&c).await,
                "ListRoles" => roles::list(&c).await,
                "GetAccountAlias" => account::get_alias(&c).await,
                "SetAccountAlias" => account::set_alias(&c).await,
                "GetPasswordPolicy" => account::get_password_policy(&c).await,
                "SetPasswordPolicy" => account::set_password_policy(&c).await,
                "CreateLoginProfile" => login::create(&c).await,
                "GetLoginProfile" => login::get(&c).await,
                "UpdateLoginProfile" => login::update(&c).await,
                "DeleteLoginProfile" => login::delete(&c).await,
                "CreateVirtualMFADevice" => login::create_device(&c).await,
                "ListVirtualMFADevices" => login::list_devices(&c).await,
                "DeleteVirtualMFADevice" => login::delete_device(&c).await,
                "BindMFADevice" => login::bind(&c).await,
                "UnbindMFADevice" => login::unbind(&c).await,
                "GetUserMFAInfo" => login::get_user_mfa(&c).await,
                other => Err(ApiError::new(404, "InvalidAction.NotFound", format!("RAM has no action {other}."))),
            }
        })
    }
}

/// One RAM call: the caller's account, the store, the root key, the parameters.
pub(crate) struct Call<'a> {
    pub store: &'a Store,
    pub account: &'a str,
    pub keys: &'a dyn KeyProvider,
    pub credentials: &'a StoreCredentials,
    pub p: &'a Params,
}

impl Call<'_> {
    pub fn dir(&self) -> Directory<'_> {
        Directory { store: self.store, account: self.account }
    }
}

pub(crate) fn now() -> String {
    iso8601(now_millis())
}

/// `EntityNotExist.<what>`, 404. The same answer whether the entity never existed or belongs to
/// another account.
pub fn not_exist(what: &str, name: &str) -> ApiError {
    ApiError::new(
        404,
        format!("EntityNotExist.{what}"),
        format!("The {} does not exist: {name}.", what.to_lowercase().replace('.', " ")),
    )
}

pub(crate) fn already_exists(what: &str, name: &str) -> ApiError {
    ApiError::new(
        409,
        format!("EntityAlreadyExists.{what}"),
        format!("The {} already exists: {name}.", what.to_lowercase().replace('.', " ")),
    )
}

pub(crate) fn conflict(what: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(409, format!("DeleteConflict.{what}"), message)
}

/// `Marker` / `MaxItems` (1–1000, default 100).
pub(crate) fn paging(p: &Params) -> Result<(Option<&str>, i64), ApiError> {
    let max = p.int("MaxItems", 1, 1000)?.unwrap_or(100);
    Ok((p.get("Marker").filter(|m| !m.is_empty()), max))
}

/// Fetches one page (`max + 1` rows tell whether there is more) and shapes the RAM paging fields.
pub(crate) fn page(mut rows: Vec<Resource>, max: i64, list: &str, item: &str) -> Value {
    let truncated = rows.len() as i64 > max;
    rows.truncate(max as usize);
    let marker = if truncated { rows.last().map(|r| r.id.clone()) } else { None };
    let items: Vec<Value> = rows.into_iter().map(|r| r.spec).collect();
    let mut v = json!({ list: { item: items }, "IsTruncated": truncated });
    if let Some(m) = marker {
        v["Marker"] = Value::from(m);
    }
    v
}

/// Read access to an account's RAM entities, shared by the API and the authorizer.
pub struct Directory<'a> {
    pub store: &'a Store,
    pub account: &'a str,
}

impl Directory<'_> {
    pub async fn get(&self, id: &str) -> Result<Option<Resource>, ApiError> {
        match self.store.get_resource(self.account, id).await {
            Ok(r) => Ok(Some(r)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn prefixed(&self, kind: &str, prefix: &str) -> Result<Vec<Resource>, ApiError> {
        let mut out = vec![];
        let mut after: Option<String> = None;
        loop {
            let rows = self.store.list_resources_prefixed(self.account, kind, prefix, after.as_deref(), 500).await?;
            let done = rows.len() < 500;
            after = rows.last().map(|r| r.id.clone());
            out.extend(rows);
            if done {
                return Ok(out);
            }
        }
    }

    /// The default-version document of a policy (`System` or `Custom`).
    pub async fn policy_document(&self, policy_type: &str, name: &str) -> Result<Option<String>, ApiError> {
        if policy_type == "System" {
            return Ok(system_policies::find(name).map(|(_, _, d)| d.to_string()));
        }
        let Some(p) = self.get(&names::policy_id(self.account, name)).await? else { return Ok(None) };
        let default = p.spec["DefaultVersion"].as_str().unwrap_or_default().to_string();
        Ok(p.spec["Versions"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["VersionId"] == default.as_str()))
            .and_then(|v| v["PolicyDocument"].as_str())
            .map(str::to_string))
    }

    async fn documents_of(&self, kind: PrincipalKind, name: &str) -> Result<Vec<String>, ApiError> {
        let mut docs = vec![];
        for a in self.prefixed(names::ATTACHMENT, &names::attachments_of(self.account, kind, name)).await? {
            let (t, n) =
                (a.spec["PolicyType"].as_str().unwrap_or_default(), a.spec["PolicyName"].as_str().unwrap_or_default());
            if let Some(d) = self.policy_document(t, n).await? {
                docs.push(d);
            }
        }
        Ok(docs)
    }

    pub async fn groups_of(&self, user: &str) -> Result<Vec<String>, ApiError> {
        Ok(self
            .prefixed(names::MEMBERSHIP, &names::memberships_of(self.account, user))
            .await?
            .into_iter()
            .filter_map(|m| m.spec["GroupName"].as_str().map(str::to_string))
            .collect())
    }

    /// Every policy document that applies to a user: its own and its groups'.
    pub async fn user_policy_documents(&self, user: &str) -> Result<Vec<String>, ApiError> {
        let mut docs = self.documents_of(PrincipalKind::User, user).await?;
        for g in self.groups_of(user).await? {
            docs.extend(self.documents_of(PrincipalKind::Group, &g).await?);
        }
        Ok(docs)
    }

    /// The account's password policy (defaults until set).
    pub async fn password_policy(&self) -> Result<Value, ApiError> {
        Ok(match self.get(&names::account_settings_id(self.account)).await? {
            Some(r) => r.spec["PasswordPolicy"].clone(),
            None => account::default_password_policy(),
        })
    }

    pub async fn role_policy_documents(&self, role: &str) -> Result<Vec<String>, ApiError> {
        if self.get(&names::role_id(self.account, role)).await?.is_none() {
            return Ok(vec![]);
        }
        self.documents_of(PrincipalKind::Role, role).await
    }
}

/// Inserts `r`, mapping a taken id to `EntityAlreadyExists.<what>`.
pub(crate) async fn insert(c: &Call<'_>, r: Resource, what: &str, name: &str) -> Result<Resource, ApiError> {
    match c.store.create_resource(&r).await {
        Ok(r) => Ok(r),
        Err(StoreError::AlreadyExists) => Err(already_exists(what, name)),
        Err(e) => Err(e.into()),
    }
}

/// Deletes `r` at the version read, so a concurrent change makes the delete fail rather than be lost.
pub(crate) async fn remove(c: &Call<'_>, r: &Resource) -> Result<(), ApiError> {
    Ok(c.store.delete_resource(c.account, &r.id, r.version).await?)
}
