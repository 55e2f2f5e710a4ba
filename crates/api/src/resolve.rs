//! "Authorize exactly what you execute": every identifier a call sends is resolved to the canonical
//! resource it means *before* authorization, and the handler sees only the resolved identifiers.
//!
//! A service declares, per action, the parameters that name resources ([`ResourceParam`]: the
//! parameter, the kind of resource, and the form — one value, a JSON list, or a `.N` repeat list).
//! Its resolver ([`crate::Service::resolve`]) turns each raw identifier into a [`Canonical`] (names
//! case-folded the way the service compares them, aliases followed to their key, ARNs reduced to
//! ids) with [`resolve_declared`]. The gateway authorizes every ARN of every [`Check`]; the handler
//! then receives [`Resolved::params`], in which each declared parameter holds exactly the canonical
//! identifiers that were authorized — so it cannot act on anything the authorizer did not see.
//! Declarations are data, so a registry-wide test walks them (crates/nimbus/tests/authz_matrix.rs).

use crate::{ActionSpec, ApiError, CallContext, Params, Service};

/// How a parameter carries identifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `InstanceId=i-1`.
    One,
    /// `InstanceIds=["i-1","i-2"]` (a JSON array of strings).
    JsonList,
    /// `InstanceId.1=i-1&InstanceId.2=i-2` (contiguous from 1; a gap is refused, never skipped).
    Repeat,
    /// `ImageId=m-1,m-2` (comma-separated, as DescribeImages takes it).
    Comma,
}

/// A `&'static [ResourceParam]` from const expressions: `resource_params![ResourceParam::one("KeyId", "key")]`.
#[macro_export]
macro_rules! resource_params {
    ($($e:expr),* $(,)?) => {{
        const P: &[$crate::ResourceParam] = &[$($e),*];
        P
    }};
}

/// A parameter that names resources of one kind.
#[derive(Clone, Copy, Debug)]
pub struct ResourceParam {
    pub param: &'static str,
    /// The service's own kind label, e.g. `instance`, `keypair`, `user`, `key`.
    pub kind: &'static str,
    pub form: Form,
    /// The RAM action checked on these resources when it is not the action's own: `ram:PassRole`
    /// for a role handed to something (an instance, a service).
    pub ram_action: Option<&'static str>,
    /// Absent, it names the calling RAM user (RAM's AccessKey actions without `UserName`): resolved
    /// and authorized as if the caller had sent their own name.
    pub defaults_to_caller: bool,
}

impl ResourceParam {
    pub const fn one(param: &'static str, kind: &'static str) -> Self {
        ResourceParam { param, kind, form: Form::One, ram_action: None, defaults_to_caller: false }
    }
    pub const fn json(param: &'static str, kind: &'static str) -> Self {
        ResourceParam { param, kind, form: Form::JsonList, ram_action: None, defaults_to_caller: false }
    }
    pub const fn repeat(param: &'static str, kind: &'static str) -> Self {
        ResourceParam { param, kind, form: Form::Repeat, ram_action: None, defaults_to_caller: false }
    }
    pub const fn comma(param: &'static str, kind: &'static str) -> Self {
        ResourceParam { param, kind, form: Form::Comma, ram_action: None, defaults_to_caller: false }
    }
    /// A RAM role handed to something: the caller needs `ram:PassRole` on it, besides the action.
    pub const fn passed_role(param: &'static str) -> Self {
        ResourceParam {
            param,
            kind: "role",
            form: Form::One,
            ram_action: Some("ram:PassRole"),
            defaults_to_caller: false,
        }
    }
    /// See [`ResourceParam::defaults_to_caller`].
    pub const fn or_calling_user(self) -> Self {
        ResourceParam { defaults_to_caller: true, ..self }
    }
}

/// What one raw identifier resolves to.
#[derive(Clone, Debug, PartialEq)]
pub struct Canonical {
    /// The identifier the handler will see in place of the raw one (e.g. the key id for an alias,
    /// the folded name for a RAM user).
    pub value: String,
    /// Every ARN this identifier must be authorized on (an alias: the alias *and* its key).
    pub arns: Vec<String>,
}

impl Canonical {
    pub fn new(value: impl Into<String>, arn: String) -> Self {
        Canonical { value: value.into(), arns: vec![arn] }
    }
}

/// One permission a call needs: a RAM action on every one of its resources.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub ram_action: String,
    pub resources: Vec<String>,
    /// The resources as the caller named them (an alias, not the key behind it): what a refusal's
    /// message may show without telling the caller more than they sent.
    pub named: Vec<String>,
}

/// A resolved call: the checks the gateway makes and the parameters the handler reads.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub checks: Vec<Check>,
    pub params: Params,
}

impl Resolved {
    /// Every ARN of every check, for the audit record.
    pub fn all_resources(&self) -> Vec<String> {
        self.checks.iter().flat_map(|c| c.resources.iter().cloned()).collect()
    }
}

/// The raw identifiers a parameter carries in its declared form. A repeat list must be
/// contiguous from `.1`; a JSON list must be an array of strings; anything else is refused
/// (`Invalid<Param>.Malformed`), never read partly.
pub fn raw_ids(params: &Params, rp: &ResourceParam) -> Result<Vec<String>, ApiError> {
    match rp.form {
        Form::One => {
            Ok(params.get(rp.param).filter(|v| !v.is_empty()).map(|v| vec![v.to_string()]).unwrap_or_default())
        }
        Form::JsonList => match params.get(rp.param).filter(|v| !v.is_empty()) {
            None => Ok(vec![]),
            Some(v) => {
                let ids: Vec<String> = serde_json::from_str(v)
                    .map_err(|_| ApiError::invalid(rp.param, "expected a JSON array of strings"))?;
                if ids.len() > 100 {
                    return Err(ApiError::invalid(rp.param, "at most 100 items"));
                }
                if ids.iter().any(String::is_empty) {
                    return Err(ApiError::invalid(rp.param, "items must not be empty"));
                }
                Ok(ids)
            }
        },
        Form::Comma => {
            let ids: Vec<String> = match params.get(rp.param).filter(|v| !v.is_empty()) {
                None => return Ok(vec![]),
                Some(v) => v.split(',').map(|s| s.trim().to_string()).collect(),
            };
            if ids.len() > 100 || ids.iter().any(String::is_empty) {
                return Err(ApiError::invalid(rp.param, "1 to 100 comma-separated identifiers"));
            }
            Ok(ids)
        }
        Form::Repeat => {
            let prefix = format!("{}.", rp.param);
            let mut found: Vec<(usize, String)> = vec![];
            for (k, v) in params.iter() {
                if let Some(n) = k.strip_prefix(&prefix) {
                    let i: usize = n.parse().map_err(|_| ApiError::invalid(k, "expected <name>.<number>"))?;
                    found.push((i, v.to_string()));
                }
            }
            found.sort();
            if found.len() > 100 {
                return Err(ApiError::invalid(rp.param, "at most 100 items"));
            }
            if found.iter().enumerate().any(|(i, (n, v))| *n != i + 1 || v.is_empty()) {
                return Err(ApiError::invalid(
                    &format!("{}.N", rp.param),
                    "the list must be numbered 1, 2, 3, … without gaps or empty items",
                ));
            }
            Ok(found.into_iter().map(|(_, v)| v).collect())
        }
    }
}

/// Writes canonical identifiers back in the declared form, replacing what the caller sent.
fn write_ids(params: &mut Params, rp: &ResourceParam, ids: &[String]) {
    match rp.form {
        Form::One => {
            if let Some(v) = ids.first() {
                params.insert(rp.param, v.clone());
            }
        }
        Form::JsonList => {
            if params.get(rp.param).is_some_and(|v| !v.is_empty()) {
                params.insert(rp.param, serde_json::Value::from(ids.to_vec()).to_string());
            }
        }
        Form::Comma => {
            if !ids.is_empty() {
                params.insert(rp.param, ids.join(","));
            }
        }
        Form::Repeat => {
            for (i, v) in ids.iter().enumerate() {
                params.insert(format!("{}.{}", rp.param, i + 1), v.clone());
            }
        }
    }
}

/// Resolves the declared parameters of a call with the service's [`Service::canonical`] into
/// checks (the action's RAM action on its resources, plus e.g. `ram:PassRole` on a passed role)
/// and canonical parameters. When no declared parameter of the action's own check is present,
/// the call is authorized on [`Service::account_arn`] (the account-wide ARN of a list or create).
pub async fn resolve_declared<S: Service + ?Sized>(
    svc: &S,
    ctx: &CallContext,
    action: &ActionSpec,
    params: &Params,
) -> Result<Resolved, ApiError> {
    let mut out = params.clone();
    let mut checks = vec![Check { ram_action: action.ram_action.to_string(), resources: vec![], named: vec![] }];
    for rp in svc.resource_params(action) {
        let mut raw = raw_ids(params, rp)?;
        if raw.is_empty() && rp.defaults_to_caller && ctx.caller.principal_type == crate::PrincipalType::User {
            raw.push(ctx.caller.principal_name.clone());
        }
        let mut values = Vec::with_capacity(raw.len());
        let ram_action = rp.ram_action.unwrap_or(action.ram_action);
        for id in raw {
            let c = svc.canonical(ctx, rp.kind, id).await?;
            let i = match checks.iter().position(|c| c.ram_action == ram_action) {
                Some(i) => i,
                None => {
                    checks.push(Check { ram_action: ram_action.to_string(), resources: vec![], named: vec![] });
                    checks.len() - 1
                }
            };
            if let Some(first) = c.arns.first()
                && !checks[i].named.contains(first)
            {
                checks[i].named.push(first.clone());
            }
            for arn in c.arns {
                if !checks[i].resources.contains(&arn) {
                    checks[i].resources.push(arn);
                }
            }
            values.push(c.value);
        }
        write_ids(&mut out, rp, &values);
    }
    if checks[0].resources.is_empty() {
        let arn = svc.account_arn(ctx);
        checks[0].named.push(arn.clone());
        checks[0].resources.push(arn);
    }
    Ok(Resolved { checks, params: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn forms_are_read_whole_or_refused() {
        let rp = ResourceParam::repeat("InstanceId", "instance");
        assert_eq!(raw_ids(&p(&[("InstanceId.1", "a"), ("InstanceId.2", "b")]), &rp).expect("ok"), ["a", "b"]);
        assert!(raw_ids(&p(&[("InstanceId.1", "a"), ("InstanceId.3", "b")]), &rp).is_err(), "a gap is refused");
        assert!(raw_ids(&p(&[("InstanceId.x", "a")]), &rp).is_err());
        assert!(raw_ids(&p(&[("InstanceId.1", "")]), &rp).is_err());
        let rj = ResourceParam::json("InstanceIds", "instance");
        assert_eq!(raw_ids(&p(&[("InstanceIds", r#"["a","b"]"#)]), &rj).expect("ok"), ["a", "b"]);
        assert!(raw_ids(&p(&[("InstanceIds", "a")]), &rj).is_err());
        assert!(raw_ids(&p(&[]), &rj).expect("none").is_empty());
    }

    #[test]
    fn canonical_values_replace_raw_ones() {
        let mut q = p(&[("K.1", "A"), ("K.2", "B"), ("J", r#"["X"]"#), ("O", "Y")]);
        write_ids(&mut q, &ResourceParam::repeat("K", "k"), &["a".into(), "b".into()]);
        write_ids(&mut q, &ResourceParam::json("J", "k"), &["x".into()]);
        write_ids(&mut q, &ResourceParam::one("O", "k"), &["y".into()]);
        assert_eq!(q, p(&[("K.1", "a"), ("K.2", "b"), ("J", r#"["x"]"#), ("O", "y")]));
    }
}
