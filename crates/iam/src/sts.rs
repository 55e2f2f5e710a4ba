//! STS, version 2015-04-01: `AssumeRole` and `GetCallerIdentity`.

use crate::credentials::{TokenClaims, seal};
use crate::names;
use nimbus_api::{
    Access, ActionSpec, ApiError, BoxFut, CallContext, Canonical, Params, PrincipalType, ResourceParam, Service,
};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_core::ids;
use nimbus_core::secret::KeyProvider;
use nimbus_policy::{Context, Policy};
use nimbus_store::StoreError;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
pub struct StsConfig {
    /// Shortest session AssumeRole grants (Alibaba: 900 s). Lower only for labs and tests.
    pub min_duration_secs: i64,
}

impl Default for StsConfig {
    fn default() -> Self {
        StsConfig { min_duration_secs: 900 }
    }
}

pub struct Sts {
    keys: Arc<dyn KeyProvider>,
    cfg: StsConfig,
}

impl Sts {
    pub fn new(keys: Arc<dyn KeyProvider>, cfg: StsConfig) -> Self {
        Sts { keys, cfg }
    }
}

const ACTIONS: &[ActionSpec] = &[
    ActionSpec { name: "AssumeRole", ram_action: "sts:AssumeRole", access: Access::Write },
    ActionSpec { name: "GetCallerIdentity", ram_action: "sts:GetCallerIdentity", access: Access::Read },
];

fn no_permission(role_arn: &str) -> ApiError {
    ApiError::new(
        403,
        "NoPermission",
        format!(
            "You are not authorized to do this action. You should be authorized by RAM. Resource: {role_arn} Action: sts:AssumeRole"
        ),
    )
}

/// `acs:ram::<account>:role/<name>` → (account, name).
fn parse_role_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("acs:ram::")?;
    let (account, rel) = rest.split_once(':')?;
    let name = rel.strip_prefix("role/")?;
    (!account.is_empty() && account.chars().all(|c| c.is_ascii_digit()) && !name.is_empty()).then_some((account, name))
}

impl Service for Sts {
    fn product(&self) -> &'static str {
        "Sts"
    }
    fn code(&self) -> &'static str {
        "sts"
    }
    fn version(&self) -> &'static str {
        "2015-04-01"
    }
    fn actions(&self) -> &'static [ActionSpec] {
        ACTIONS
    }
    fn deny_code(&self) -> &'static str {
        "NoPermission"
    }
    fn resource_params(&self, action: &ActionSpec) -> &'static [ResourceParam] {
        const ROLE: &[ResourceParam] = &[ResourceParam::one("RoleArn", "role")];
        if action.name == "AssumeRole" { ROLE } else { &[] }
    }

    /// A role ARN as RAM compares it: role names are case-insensitive, so the ARN is folded.
    fn canonical<'a>(
        &'a self,
        _ctx: &'a CallContext,
        _kind: &'static str,
        raw: String,
    ) -> BoxFut<'a, Result<Canonical, ApiError>> {
        let arn = raw.to_ascii_lowercase();
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
            match action.name {
                "AssumeRole" => self.assume_role(ctx, p).await,
                _ => caller_identity(ctx).await,
            }
        })
    }
}

impl Sts {
    async fn assume_role(&self, ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
        let arn = p.require("RoleArn")?;
        let (account, name) = parse_role_arn(arn).ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidParameter.RoleArn",
                "RoleArn must look like acs:ram::<account-id>:role/<role-name>.",
            )
        })?;
        let session = p.require("RoleSessionName")?;
        let session_ok = (2..=64).contains(&session.len())
            && session.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
        if !session_ok {
            return Err(ApiError::new(
                400,
                "InvalidParameter.RoleSessionName",
                "RoleSessionName must be 2 to 64 letters, digits, '.', '_', '@' or '-'.",
            ));
        }
        let own = account == ctx.caller.account_id;
        let role = match ctx.store.get_resource(account, &names::role_id(account, name)).await {
            Ok(r) => r,
            // In another account, a missing role and a role that does not trust you look the same.
            Err(StoreError::NotFound) if own => return Err(crate::ram::not_exist("Role", name)),
            Err(StoreError::NotFound) => return Err(no_permission(arn)),
            Err(e) => return Err(e.into()),
        };
        let trust = Policy::parse(role.spec["AssumeRolePolicyDocument"].as_str().unwrap_or_default()).map_err(|e| {
            tracing::error!(error = %e, role = arn, "stored trust policy does not parse");
            no_permission(arn)
        })?;
        let caller = &ctx.caller;
        let mut tctx =
            Context::standard(caller.source_ip, caller.secure_transport, caller.mfa_present, nimbus_core::clock::now());
        if let Some(x) = p.get("ExternalId") {
            tctx.set("sts:ExternalId", x);
        }
        let principals = [caller.arn(), names::arn(&caller.account_id, "root")];
        if !trust.trusts(&principals, None, "sts:AssumeRole", &tctx) {
            return Err(no_permission(arn));
        }
        let max = role.spec["MaxSessionDuration"].as_i64().unwrap_or(3600);
        let duration = p.int("DurationSeconds", i64::MIN, i64::MAX)?.unwrap_or(3600.min(max));
        if duration < self.cfg.min_duration_secs || duration > max {
            return Err(ApiError::new(
                400,
                "InvalidParameter.DurationSeconds",
                format!("DurationSeconds must be {} to {max} for this role.", self.cfg.min_duration_secs),
            ));
        }
        let policy = match p.get("Policy").filter(|d| !d.is_empty()) {
            Some(doc) => {
                crate::ram::identity_policy(doc)?;
                Some(doc.to_string())
            }
            None => None,
        };
        let expires_at = now_millis() + duration * 1000;
        let role_id = role.spec["RoleId"].as_str().unwrap_or_default().to_string();
        let role_name = role.spec["RoleName"].as_str().unwrap_or(name).to_string();
        let claims = TokenClaims {
            kind: "role".into(),
            access_key_id: format!("STS.{}", &ids::access_key_id()[4..]),
            secret: ids::access_key_secret(),
            account_id: account.to_string(),
            role_id: role_id.clone(),
            role_name: role_name.clone(),
            session_name: session.to_string(),
            policy,
            expires_at,
            mfa_present: caller.mfa_present,
            source: caller.arn(),
        };
        let token = seal(self.keys.as_ref(), &claims);
        Ok(json!({
            "Credentials": {
                "AccessKeyId": claims.access_key_id,
                "AccessKeySecret": claims.secret,
                "SecurityToken": token,
                "Expiration": iso8601(expires_at),
            },
            "AssumedRoleUser": {
                "Arn": format!("acs:ram::{account}:role/{role_name}/{session}"),
                "AssumedRoleId": format!("{role_id}:{session}"),
            },
        }))
    }
}

async fn caller_identity(ctx: &CallContext) -> Result<Value, ApiError> {
    let c = &ctx.caller;
    let mut v = json!({"AccountId": c.account_id, "Arn": c.arn(), "PrincipalId": c.principal_id});
    match c.principal_type {
        PrincipalType::Root => {
            v["IdentityType"] = "Account".into();
            v["UserId"] = c.account_id.clone().into();
        }
        PrincipalType::User => {
            v["IdentityType"] = "RAMUser".into();
            let user = ctx.store.get_resource(&c.account_id, &names::user_id(&c.account_id, &c.principal_name)).await;
            if let Ok(u) = user {
                v["UserId"] = u.spec["UserId"].clone();
                v["PrincipalId"] = u.spec["UserId"].clone();
                v["Arn"] =
                    names::arn(&c.account_id, &format!("user/{}", u.spec["UserName"].as_str().unwrap_or_default()))
                        .into();
            }
        }
        PrincipalType::AssumedRole => {
            v["IdentityType"] = "AssumedRoleUser".into();
            if let Some(s) = &c.session {
                v["RoleId"] = s.role_id.clone().into();
            }
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::parse_role_arn;

    #[test]
    fn role_arns() {
        assert_eq!(parse_role_arn("acs:ram::123:role/admin"), Some(("123", "admin")));
        assert_eq!(parse_role_arn("acs:ram::123:user/admin"), None);
        assert_eq!(parse_role_arn("acs:ram:local-1:123:role/a"), None);
        assert_eq!(parse_role_arn("acs:ram::abc:role/a"), None);
        assert_eq!(parse_role_arn("acs:ram::123:role/"), None);
    }
}
