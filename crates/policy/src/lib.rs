//! The RAM policy language, as used by RAM identity policies, role trust policies, STS session
//! policies and (later) KMS key policies and OSS bucket policies.
//!
//! [`Policy::parse`] validates a document once (`MalformedPolicyDocument` reasons on failure) and
//! compiles its wildcards and condition values; [`evaluate`] then decides a request:
//! an explicit `Deny` beats an `Allow`, which beats the implicit deny. Several policies (a user's
//! own and its groups') are unioned; a session policy is intersected ([`evaluate_session`]).
//!
//! Written here rather than taken from a crate: no crate implements Alibaba's dialect, and the
//! evaluator is the heart of least privilege.

mod condition;
mod glob;
mod parse;

pub use condition::Context;
pub use parse::{MAX_DOCUMENT_CHARS, PolicyError};

use condition::Condition;
use glob::Pattern;

/// A parsed, validated, compiled policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
struct Statement {
    effect: Effect,
    /// `Action` (negated: false) or `NotAction` (true). Patterns are lowercase: actions match
    /// case-insensitively.
    actions: (bool, Vec<Pattern>),
    /// `Resource` / `NotResource`; `None` in a trust policy that names only a `Principal`.
    resources: Option<(bool, Vec<Pattern>)>,
    principals: Option<Principals>,
    conditions: Vec<Condition>,
}

/// `Principal` of a resource-based policy (a role's trust policy).
#[derive(Debug, Clone, Default)]
struct Principals {
    any: bool,
    ram: Vec<String>,
    service: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ImplicitDeny,
    ExplicitDeny,
}

impl Statement {
    fn applies(&self, action_lower: &str, resource: &str, ctx: &Context) -> bool {
        let (not, pats) = &self.actions;
        if pats.iter().any(|p| p.matches(action_lower)) == *not {
            return false;
        }
        // RAM entity names are case-insensitive, so RAM ARNs match case-insensitively; every
        // other service's resources (object keys, ids) match exactly.
        let ram = resource.starts_with("acs:ram:");
        if let Some((not, pats)) = &self.resources
            && pats.iter().any(|p| if ram { p.matches_ignore_ascii_case(resource) } else { p.matches(resource) })
                == *not
        {
            return false;
        }
        self.conditions.iter().all(|c| c.holds(ctx))
    }
}

impl Policy {
    /// What this policy alone says about `action` on `resource`: `Some(Deny)` if a Deny statement
    /// applies, else `Some(Allow)` if an Allow does, else `None`.
    pub fn effect(&self, action: &str, resource: &str, ctx: &Context) -> Option<Effect> {
        self.effect_lower(&action.to_ascii_lowercase(), resource, ctx)
    }

    fn effect_lower(&self, action_lower: &str, resource: &str, ctx: &Context) -> Option<Effect> {
        let mut allowed = false;
        for s in &self.statements {
            if s.applies(action_lower, resource, ctx) {
                if s.effect == Effect::Deny {
                    return Some(Effect::Deny);
                }
                allowed = true;
            }
        }
        allowed.then_some(Effect::Allow)
    }

    /// Trust-policy check: may the principal with these ARNs (e.g. `acs:ram::123:user/alice` and
    /// its account `acs:ram::123:root`) perform `action` (`sts:AssumeRole`)? A `Principal` of
    /// `acs:ram::<account>:root` admits every identity of that account.
    pub fn trusts(&self, principal_arns: &[String], service: Option<&str>, action: &str, ctx: &Context) -> bool {
        let action = action.to_ascii_lowercase();
        let named = |s: &Statement| match &s.principals {
            None => false,
            Some(p) => {
                p.any
                    || p.ram.iter().any(|r| principal_arns.iter().any(|a| a == r))
                    || service.is_some_and(|svc| p.service.iter().any(|s| s.eq_ignore_ascii_case(svc)))
            }
        };
        let applies = |s: &Statement| {
            let (not, pats) = &s.actions;
            named(s) && pats.iter().any(|p| p.matches(&action)) != *not && s.conditions.iter().all(|c| c.holds(ctx))
        };
        let mut allowed = false;
        for s in &self.statements {
            if applies(s) {
                if s.effect == Effect::Deny {
                    return false;
                }
                allowed = true;
            }
        }
        allowed
    }
}

/// Decides `action` on every ARN in `resources` under the union of `policies`: an explicit Deny
/// on any resource denies the call; it is allowed only if every resource is allowed.
pub fn evaluate(policies: &[&Policy], action: &str, resources: &[String], ctx: &Context) -> Decision {
    if resources.is_empty() {
        return Decision::ImplicitDeny;
    }
    let action = action.to_ascii_lowercase();
    let mut all_allowed = true;
    for r in resources {
        let mut allowed = false;
        for p in policies {
            match p.effect_lower(&action, r, ctx) {
                Some(Effect::Deny) => return Decision::ExplicitDeny,
                Some(Effect::Allow) => allowed = true,
                None => {}
            }
        }
        all_allowed &= allowed;
    }
    if all_allowed { Decision::Allow } else { Decision::ImplicitDeny }
}

/// An assumed-role session: the role's policies intersected with the session policy (if any).
/// A Deny in either denies; both must allow.
pub fn evaluate_session(
    role_policies: &[&Policy],
    session_policy: Option<&Policy>,
    action: &str,
    resources: &[String],
    ctx: &Context,
) -> Decision {
    let identity = evaluate(role_policies, action, resources, ctx);
    let Some(session) = session_policy else { return identity };
    match (identity, evaluate(&[session], action, resources, ctx)) {
        (Decision::ExplicitDeny, _) | (_, Decision::ExplicitDeny) => Decision::ExplicitDeny,
        (Decision::Allow, Decision::Allow) => Decision::Allow,
        _ => Decision::ImplicitDeny,
    }
}

#[cfg(test)]
mod tests;
