//! Instance RAM roles: the role an ECS instance carries, and the STS credentials the metadata
//! service hands to the instance (`/latest/meta-data/ram/security-credentials/<role>`).
//!
//! As on Alibaba Cloud, a role may be given to instances only if its trust policy admits the ECS
//! service (`"Principal": {"Service": ["ecs.aliyuncs.com"]}`). The credentials are an ordinary
//! STS session, sealed exactly like AssumeRole's, so the gateway checks them with no new code and
//! the role's current policies (narrowed by the instance's optional policy) decide what they may do.

use crate::credentials::{TokenClaims, seal};
use crate::names;
use nimbus_api::ApiError;
use nimbus_core::clock::now_millis;
use nimbus_core::ids;
use nimbus_core::secret::KeyProvider;
use nimbus_policy::{Context, Policy};
use nimbus_store::{Resource, Store, StoreError};
use std::net::{IpAddr, Ipv4Addr};

/// The service principal an instance role must trust.
pub const ECS_SERVICE: &str = "ecs.aliyuncs.com";

/// The role `name` of `account`, if it exists and trusts ECS; what RunInstances and
/// AttachInstanceRamRole check before giving it to an instance.
pub async fn ecs_role(store: &Store, account: &str, name: &str) -> Result<Resource, ApiError> {
    let role = match store.get_resource(account, &names::role_id(account, name)).await {
        Ok(r) => r,
        Err(StoreError::NotFound) => return Err(crate::ram::not_exist("Role", name)),
        Err(e) => return Err(e.into()),
    };
    let ctx = Context::standard(IpAddr::V4(Ipv4Addr::UNSPECIFIED), true, false, nimbus_core::clock::now());
    let trusted = Policy::parse(role.spec["AssumeRolePolicyDocument"].as_str().unwrap_or_default())
        .is_ok_and(|t| t.trusts(&[], Some(ECS_SERVICE), "sts:AssumeRole", &ctx));
    if !trusted {
        return Err(ApiError::new(
            403,
            "InvalidRamRole.NotEcsRole",
            format!(
                "The RAM role {name} is not authorized for ECS: its trust policy must admit the service {ECS_SERVICE}."
            ),
        ));
    }
    Ok(role)
}

/// A session of an instance's role.
pub struct InstanceSession {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: String,
    pub expires_at: i64,
    /// The role's ARN, for the audit record of the issue.
    pub role_arn: String,
}

/// Issues STS credentials of `role_name` to instance `instance_id` (the session name), narrowed by
/// `policy` when the role was attached with one. The role is checked again on every issue, so
/// deleting it or removing ECS from its trust stops new credentials at once.
pub async fn issue(
    keys: &dyn KeyProvider,
    store: &Store,
    account: &str,
    role_name: &str,
    instance_arn: &str,
    instance_id: &str,
    policy: Option<String>,
) -> Result<InstanceSession, ApiError> {
    let role = ecs_role(store, account, role_name).await?;
    let duration = role.spec["MaxSessionDuration"].as_i64().unwrap_or(3600).clamp(900, 43_200);
    let role_name = role.spec["RoleName"].as_str().unwrap_or(role_name).to_string();
    let claims = TokenClaims {
        kind: "role".into(),
        access_key_id: format!("STS.{}", &ids::access_key_id()[4..]),
        secret: ids::access_key_secret(),
        account_id: account.to_string(),
        role_id: role.spec["RoleId"].as_str().unwrap_or_default().to_string(),
        role_name: role_name.clone(),
        session_name: instance_id.to_string(),
        policy,
        expires_at: now_millis() + duration * 1000,
        mfa_present: false,
        source: instance_arn.to_string(),
    };
    let security_token = seal(keys, &claims);
    Ok(InstanceSession {
        access_key_id: claims.access_key_id,
        access_key_secret: claims.secret,
        security_token,
        expires_at: claims.expires_at,
        role_arn: names::arn(account, &format!("role/{role_name}")),
    })
}

/// Validates the extra policy AttachInstanceRamRole may carry (`MalformedPolicyDocument`).
pub fn check_session_policy(doc: &str) -> Result<(), ApiError> {
    if doc.len() > 1024 {
        return Err(ApiError::invalid("Policy", "at most 1024 characters"));
    }
    crate::ram::identity_policy(doc)
}
