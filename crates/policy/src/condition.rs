//! `Condition` blocks: operators, request context, evaluation.

use crate::glob::Pattern;
use crate::parse::PolicyError;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

/// The request facts conditions test. Keys are case-insensitive (`acs:SourceIp`).
#[derive(Debug, Clone, Default)]
pub struct Context {
    values: HashMap<String, Vec<String>>,
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    /// The keys every request has: `acs:SourceIp`, `acs:SecureTransport`, `acs:MFAPresent`,
    /// `acs:CurrentTime`.
    pub fn standard(source_ip: IpAddr, secure_transport: bool, mfa_present: bool, now: DateTime<Utc>) -> Self {
        let mut c = Context::new();
        c.set("acs:SourceIp", source_ip.to_string());
        c.set("acs:SecureTransport", secure_transport.to_string());
        c.set("acs:MFAPresent", mfa_present.to_string());
        c.set("acs:CurrentTime", now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        c
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_ascii_lowercase(), vec![value.into()]);
    }

    /// A multi-valued key (e.g. `acs:TagKeys`).
    pub fn set_many(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_ascii_lowercase(), values);
    }

    fn get(&self, key_lower: &str) -> Option<&[String]> {
        self.values.get(key_lower).map(Vec::as_slice)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
}

/// Operator name → (base kind, negated).
fn operator(name: &str) -> Option<(Kind, bool)> {
    use Kind::*;
    Some(match name {
        "StringEquals" => (StringEquals, false),
        "StringNotEquals" => (StringEquals, true),
        "StringEqualsIgnoreCase" => (StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (StringEqualsIgnoreCase, true),
        "StringLike" => (StringLike, false),
        "StringNotLike" => (StringLike, true),
        "NumericEquals" => (NumericEquals, false),
        "NumericNotEquals" => (NumericEquals, true),
        "NumericLessThan" => (NumericLessThan, false),
        "NumericLessThanEquals" => (NumericLessThanEquals, false),
        "NumericGreaterThan" => (NumericGreaterThan, false),
        "NumericGreaterThanEquals" => (NumericGreaterThanEquals, false),
        "DateEquals" => (DateEquals, false),
        "DateNotEquals" => (DateEquals, true),
        "DateLessThan" => (DateLessThan, false),
        "DateLessThanEquals" => (DateLessThanEquals, false),
        "DateGreaterThan" => (DateGreaterThan, false),
        "DateGreaterThanEquals" => (DateGreaterThanEquals, false),
        "Bool" => (Bool, false),
        "IpAddress" => (IpAddress, false),
        "NotIpAddress" => (IpAddress, true),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    /// Single-valued key, or `ForAnyValue:`: some request value must satisfy.
    Any,
    /// `ForAllValues:`: every request value must satisfy (true when there are none).
    All,
}

#[derive(Debug, Clone)]
enum Values {
    Str(Vec<String>),
    Like(Vec<Pattern>),
    Num(Vec<f64>),
    Date(Vec<i64>),
    Bool(Vec<bool>),
    Ip(Vec<IpNet>),
}

#[derive(Debug, Clone)]
pub(crate) struct Condition {
    kind: Kind,
    negated: bool,
    qualifier: Qualifier,
    key: String,
    values: Values,
}

fn parse_date(s: &str) -> Option<i64> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp_millis());
    }
    s.parse::<i64>().ok().map(|secs| secs.saturating_mul(1000))
}

fn parse_ip(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

impl Condition {
    /// Parses `{ "<Operator>": { "<key>": value | [values] } }` into conditions (ANDed).
    pub(crate) fn parse_block(v: &Value) -> Result<Vec<Condition>, PolicyError> {
        let err = |m: String| PolicyError(m);
        let ops = v.as_object().ok_or_else(|| err("Condition must be an object".into()))?;
        let mut out = vec![];
        for (op_name, keys) in ops {
            let (qualifier, bare) = match op_name.split_once(':') {
                Some(("ForAnyValue", rest)) => (Qualifier::Any, rest),
                Some(("ForAllValues", rest)) => (Qualifier::All, rest),
                Some(_) => return Err(err(format!("unknown condition qualifier in {op_name:?}"))),
                None => (Qualifier::Any, op_name.as_str()),
            };
            let (kind, negated) =
                operator(bare).ok_or_else(|| err(format!("unknown condition operator {op_name:?}")))?;
            let keys = keys.as_object().ok_or_else(|| err(format!("{op_name} must map condition keys to values")))?;
            if keys.is_empty() {
                return Err(err(format!("{op_name} names no condition key")));
            }
            for (key, raw) in keys {
                if key.is_empty() || key.len() > 128 {
                    return Err(err(format!("condition key {key:?} must be 1 to 128 characters")));
                }
                let items: Vec<String> = match raw {
                    Value::Array(a) => a.iter().map(scalar).collect::<Option<_>>(),
                    other => scalar(other).map(|s| vec![s]),
                }
                .filter(|v: &Vec<String>| !v.is_empty() && v.len() <= 64)
                .ok_or_else(|| err(format!("{op_name} {key}: values must be 1 to 64 strings, numbers or booleans")))?;
                let bad = |what: &str| err(format!("{op_name} {key}: {what}"));
                let values = match kind {
                    Kind::StringEquals => Values::Str(items),
                    Kind::StringEqualsIgnoreCase => Values::Str(items.iter().map(|s| s.to_lowercase()).collect()),
                    Kind::StringLike => Values::Like(items.iter().map(|s| Pattern::new(s)).collect()),
                    Kind::NumericEquals
                    | Kind::NumericLessThan
                    | Kind::NumericLessThanEquals
                    | Kind::NumericGreaterThan
                    | Kind::NumericGreaterThanEquals => Values::Num(
                        items
                            .iter()
                            .map(|s| s.parse::<f64>().ok().filter(|f| f.is_finite()))
                            .collect::<Option<_>>()
                            .ok_or_else(|| bad("not a number"))?,
                    ),
                    Kind::DateEquals
                    | Kind::DateLessThan
                    | Kind::DateLessThanEquals
                    | Kind::DateGreaterThan
                    | Kind::DateGreaterThanEquals => Values::Date(
                        items
                            .iter()
                            .map(|s| parse_date(s))
                            .collect::<Option<_>>()
                            .ok_or_else(|| bad("not an ISO 8601 date"))?,
                    ),
                    Kind::Bool => Values::Bool(
                        items
                            .iter()
                            .map(|s| match s.to_ascii_lowercase().as_str() {
                                "true" => Some(true),
                                "false" => Some(false),
                                _ => None,
                            })
                            .collect::<Option<_>>()
                            .ok_or_else(|| bad("not true or false"))?,
                    ),
                    Kind::IpAddress => Values::Ip(
                        items
                            .iter()
                            .map(|s| parse_ip(s))
                            .collect::<Option<_>>()
                            .ok_or_else(|| bad("not an IP address or CIDR"))?,
                    ),
                };
                out.push(Condition { kind, negated, qualifier, key: key.to_ascii_lowercase(), values });
            }
        }
        Ok(out)
    }

    /// One request value against the (ORed) policy values, before negation.
    fn base_match(&self, v: &str) -> bool {
        match &self.values {
            Values::Str(xs) if self.kind == Kind::StringEqualsIgnoreCase => {
                let v = v.to_lowercase();
                xs.contains(&v)
            }
            Values::Str(xs) => xs.iter().any(|x| x == v),
            Values::Like(ps) => ps.iter().any(|p| p.matches(v)),
            Values::Num(xs) => v.parse::<f64>().is_ok_and(|n| xs.iter().any(|x| self.compare(n.partial_cmp(x)))),
            Values::Date(xs) => parse_date(v).is_some_and(|d| xs.iter().any(|x| self.compare(Some(d.cmp(x))))),
            Values::Bool(xs) => match v.to_ascii_lowercase().as_str() {
                "true" => xs.contains(&true),
                "false" => xs.contains(&false),
                _ => false,
            },
            Values::Ip(nets) => v.parse::<IpAddr>().is_ok_and(|ip| nets.iter().any(|n| n.contains(&ip))),
        }
    }

    fn compare(&self, ord: Option<std::cmp::Ordering>) -> bool {
        use std::cmp::Ordering::*;
        let Some(o) = ord else { return false };
        match self.kind {
            Kind::NumericEquals | Kind::DateEquals => o == Equal,
            Kind::NumericLessThan | Kind::DateLessThan => o == Less,
            Kind::NumericLessThanEquals | Kind::DateLessThanEquals => o != Greater,
            Kind::NumericGreaterThan | Kind::DateGreaterThan => o == Greater,
            Kind::NumericGreaterThanEquals | Kind::DateGreaterThanEquals => o != Less,
            _ => false,
        }
    }

    /// A key the request does not have satisfies only negated operators (and `ForAllValues`).
    pub(crate) fn holds(&self, ctx: &Context) -> bool {
        let values = ctx.get(&self.key).unwrap_or(&[]);
        if values.is_empty() {
            return self.negated || self.qualifier == Qualifier::All;
        }
        let one = |v: &String| self.base_match(v) != self.negated;
        match self.qualifier {
            Qualifier::Any => values.iter().any(one),
            Qualifier::All => values.iter().all(one),
        }
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
