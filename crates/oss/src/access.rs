//! Resource-based access: bucket policies and canned ACLs.
//!
//! A bucket policy is OSS's JSON document whose statements name `Principal`s as a list of account
//! or RAM user ids (`"*"` for everyone). Statements that name the caller are evaluated with the
//! RAM policy engine (actions, resources, conditions), so the two languages cannot drift apart.

use nimbus_api::{Access, ApiError, Caller, Verdict};
use nimbus_policy::{Context, Effect, Policy};
use serde_json::Value;
use std::net::IpAddr;

/// Checks a bucket policy document before it is stored.
pub fn validate_policy(doc: &str) -> Result<(), ApiError> {
    let bad = |why: String| ApiError::new(400, "MalformedPolicy", format!("The bucket policy is not valid: {why}."));
    let v: Value = serde_json::from_str(doc).map_err(|e| bad(e.to_string()))?;
    let statements = v.get("Statement").and_then(Value::as_array).ok_or_else(|| bad("no Statement list".into()))?;
    for (i, s) in statements.iter().enumerate() {
        principals(s).ok_or_else(|| bad(format!("statement {i} needs a Principal list")))?;
        statement_policy(s).map_err(|e| bad(format!("statement {i}: {e}")))?;
    }
    Ok(())
}

fn principals(statement: &Value) -> Option<Vec<String>> {
    match statement.get("Principal")? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|p| p.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

/// The statement without its Principal, as a one-statement RAM policy.
fn statement_policy(statement: &Value) -> Result<Policy, String> {
    let mut s = statement.clone();
    if let Some(m) = s.as_object_mut() {
        m.remove("Principal");
    }
    let doc = serde_json::json!({"Version": "1", "Statement": [s]});
    Policy::parse(&doc.to_string()).map_err(|e| e.0)
}

/// What the bucket policy says about `caller` (anonymous when `None`) doing `action` on `resource`.
pub fn policy_verdict(
    doc: Option<&str>,
    caller: Option<&Caller>,
    action: &str,
    resource: &str,
    source_ip: IpAddr,
    secure: bool,
) -> Verdict {
    let Some(doc) = doc else { return Verdict::NotApplicable };
    let Ok(v) = serde_json::from_str::<Value>(doc) else { return Verdict::NotApplicable };
    let ctx = Context::standard(source_ip, secure, caller.is_some_and(|c| c.mfa_present), nimbus_core::clock::now());
    let mut verdict = Verdict::NotApplicable;
    for s in v.get("Statement").and_then(Value::as_array).into_iter().flatten() {
        let names = principals(s).unwrap_or_default();
        // A principal is named by account id, principal id, or ARN (`acs:ram::<account>:user/<name>`,
        // RAM names compared case-insensitively).
        let applies = names.iter().any(|p| {
            p == "*"
                || caller
                    .is_some_and(|c| *p == c.account_id || *p == c.principal_id || p.eq_ignore_ascii_case(&c.arn()))
        });
        if !applies {
            continue;
        }
        match statement_policy(s).ok().and_then(|p| p.effect(action, resource, &ctx)) {
            Some(Effect::Deny) => return Verdict::Deny,
            Some(Effect::Allow) => verdict = Verdict::Allow,
            None => {}
        }
    }
    verdict
}

/// Does the canned ACL grant `access` to everyone? `object_acl` is the object's own (`default`
/// defers to the bucket's).
pub fn acl_allows(bucket_acl: &str, object_acl: Option<&str>, access: Access) -> bool {
    let acl = match object_acl {
        Some(a) if a != "default" && !a.is_empty() => a,
        _ => bucket_acl,
    };
    match access {
        Access::Read => acl == "public-read" || acl == "public-read-write",
        Access::Write => acl == "public-read-write",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_api::PrincipalType;

    fn caller(account: &str) -> Caller {
        Caller {
            account_id: account.into(),
            principal_type: PrincipalType::Root,
            principal_id: account.into(),
            principal_name: account.into(),
            session: None,
            mfa_present: false,
            access_key_id: "ak".into(),
            source_ip: IpAddr::from([127, 0, 0, 1]),
            secure_transport: false,
            user_agent: None,
        }
    }

    #[test]
    fn principals_and_effects() {
        let doc = r#"{"Version":"1","Statement":[
            {"Effect":"Allow","Principal":["222"],"Action":["oss:GetObject"],"Resource":["acs:oss:*:111:b/*"]},
            {"Effect":"Deny","Principal":["*"],"Action":["oss:DeleteObject"],"Resource":["acs:oss:*:111:b/keep/*"]}]}"#;
        validate_policy(doc).expect("valid");
        let ip = IpAddr::from([127, 0, 0, 1]);
        let v = |c: Option<&Caller>, a: &str, r: &str| policy_verdict(Some(doc), c, a, r, ip, false);
        assert_eq!(v(Some(&caller("222")), "oss:GetObject", "acs:oss:*:111:b/x"), Verdict::Allow);
        assert_eq!(v(Some(&caller("333")), "oss:GetObject", "acs:oss:*:111:b/x"), Verdict::NotApplicable);
        assert_eq!(v(None, "oss:GetObject", "acs:oss:*:111:b/x"), Verdict::NotApplicable);
        assert_eq!(v(Some(&caller("111")), "oss:DeleteObject", "acs:oss:*:111:b/keep/a"), Verdict::Deny);
        assert!(validate_policy(r#"{"Statement":[{"Effect":"Allow","Action":["oss:*"],"Resource":["*"]}]}"#).is_err());
        assert!(validate_policy("not json").is_err());
    }

    #[test]
    fn acl_inheritance() {
        assert!(acl_allows("public-read", None, Access::Read));
        assert!(acl_allows("public-read", Some("default"), Access::Read));
        assert!(!acl_allows("public-read", Some("private"), Access::Read));
        assert!(acl_allows("private", Some("public-read"), Access::Read));
        assert!(!acl_allows("public-read", None, Access::Write));
        assert!(acl_allows("public-read-write", None, Access::Write));
        assert!(!acl_allows("private", None, Access::Read));
    }
}
