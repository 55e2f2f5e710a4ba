//! Parsing and validation of policy documents.

use crate::condition::Condition;
use crate::glob::Pattern;
use crate::{Effect, Policy, Principals, Statement};
use serde_json::{Map, Value};

/// Alibaba's limit on a policy document.
pub const MAX_DOCUMENT_CHARS: usize = 6144;
const MAX_STATEMENTS: usize = 100;
const MAX_PATTERN_CHARS: usize = 512;
/// More wildcards than this in one pattern is abuse, not intent.
const MAX_WILDCARDS: usize = 16;

/// Why a document is not a valid policy (the message of `MalformedPolicyDocument`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError(m.into()))
}

impl Policy {
    pub fn parse(doc: &str) -> Result<Policy, PolicyError> {
        let n = doc.chars().count();
        if n == 0 || n > MAX_DOCUMENT_CHARS {
            return err(format!("the policy document must be 1 to {MAX_DOCUMENT_CHARS} characters (it has {n})"));
        }
        let v: Value = serde_json::from_str(doc)
            .map_err(|e| PolicyError(format!("the policy document is not valid JSON: {e}")))?;
        let top = v.as_object().ok_or_else(|| PolicyError("the policy document must be a JSON object".into()))?;
        only(top, &["Version", "Statement", "Id"], "the policy document")?;
        if top.get("Version").and_then(Value::as_str) != Some("1") {
            return err("Version must be \"1\"");
        }
        let raw = match top.get("Statement") {
            Some(Value::Array(a)) => a.iter().collect::<Vec<_>>(),
            Some(o @ Value::Object(_)) => vec![o],
            _ => return err("Statement must be an array of statements"),
        };
        if raw.is_empty() || raw.len() > MAX_STATEMENTS {
            return err(format!("Statement must hold 1 to {MAX_STATEMENTS} statements"));
        }
        let statements = raw.into_iter().enumerate().map(|(i, s)| statement(i, s)).collect::<Result<_, _>>()?;
        Ok(Policy { statements })
    }

    /// True when every statement names a `Principal` (a trust policy).
    pub fn is_trust_policy(&self) -> bool {
        self.statements.iter().all(|s| s.principals.is_some())
    }
}

fn only(m: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), PolicyError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => err(format!("{what} has an unknown element {k:?}")),
        None => Ok(()),
    }
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    let list: Vec<String> = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| PolicyError(format!("{what} must be a string or an array of strings")))?,
        _ => return err(format!("{what} must be a string or an array of strings")),
    };
    if list.is_empty() {
        return err(format!("{what} must not be empty"));
    }
    Ok(list)
}

fn patterns(v: &Value, what: &str, lowercase: bool) -> Result<Vec<Pattern>, PolicyError> {
    strings(v, what)?
        .into_iter()
        .map(|s| {
            if s.is_empty() || s.chars().count() > MAX_PATTERN_CHARS {
                return err(format!("each {what} must be 1 to {MAX_PATTERN_CHARS} characters"));
            }
            if s.matches(['*', '?']).count() > MAX_WILDCARDS {
                return err(format!("{what} {s:?} has more than {MAX_WILDCARDS} wildcards"));
            }
            if what.ends_with("Action") && s != "*" && !s.contains(':') {
                return err(format!("{what} {s:?} must be \"*\" or <service>:<Action>"));
            }
            Ok(Pattern::new(&if lowercase { s.to_ascii_lowercase() } else { s }))
        })
        .collect()
}

fn either(
    m: &Map<String, Value>,
    a: &str,
    b: &str,
    i: usize,
    lowercase: bool,
) -> Result<Option<(bool, Vec<Pattern>)>, PolicyError> {
    match (m.get(a), m.get(b)) {
        (Some(_), Some(_)) => err(format!("statement {i} has both {a} and {b}")),
        (Some(v), None) => Ok(Some((false, patterns(v, a, lowercase)?))),
        (None, Some(v)) => Ok(Some((true, patterns(v, b, lowercase)?))),
        (None, None) => Ok(None),
    }
}

fn statement(i: usize, v: &Value) -> Result<Statement, PolicyError> {
    let m = v.as_object().ok_or_else(|| PolicyError(format!("statement {i} must be an object")))?;
    only(
        m,
        &["Effect", "Action", "NotAction", "Resource", "NotResource", "Condition", "Principal", "Sid"],
        &format!("statement {i}"),
    )?;
    let effect = match m.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return err(format!("statement {i}: Effect must be \"Allow\" or \"Deny\"")),
    };
    let actions = either(m, "Action", "NotAction", i, true)?
        .ok_or_else(|| PolicyError(format!("statement {i} needs Action or NotAction")))?;
    let principals = m.get("Principal").map(|p| principal(i, p)).transpose()?;
    let resources = either(m, "Resource", "NotResource", i, false)?;
    if resources.is_none() && principals.is_none() {
        return err(format!("statement {i} needs Resource or NotResource"));
    }
    let conditions = match m.get("Condition") {
        Some(c) => Condition::parse_block(c).map_err(|e| PolicyError(format!("statement {i}: {e}")))?,
        None => vec![],
    };
    Ok(Statement { effect, actions, resources, principals, conditions })
}

fn principal(i: usize, v: &Value) -> Result<Principals, PolicyError> {
    if v.as_str() == Some("*") {
        return Ok(Principals { any: true, ..Default::default() });
    }
    let m = v.as_object().ok_or_else(|| PolicyError(format!("statement {i}: Principal must be \"*\" or an object")))?;
    only(m, &["RAM", "Service", "Federated"], &format!("statement {i} Principal"))?;
    let mut p = Principals::default();
    if let Some(r) = m.get("RAM") {
        p.ram = strings(r, "Principal RAM")?;
        p.any = p.ram.iter().any(|r| r == "*");
    }
    if let Some(s) = m.get("Service") {
        p.service = strings(s, "Principal Service")?;
    }
    Ok(p)
}
