//! Alibaba's RPC conventions, in one place, so every service answers them the same way:
//! `PageNumber`/`PageSize` and `NextToken`/`MaxResults` paging, tags (`Tag.N.Key`/`Tag.N.Value`,
//! `TagKey.N`, `ResourceId.N` as TagResources/UntagResources/ListTagResources take them), and
//! per-service error catalogues ([`error_catalog!`]) instead of literal codes in handlers.

use crate::{ApiError, Params};
use base64::Engine as _;
use serde_json::{Map, Value, json};

/// `PageNumber` (from 1) and `PageSize` of a Describe* call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub number: usize,
    pub size: usize,
}

impl Page {
    /// Reads the page, refusing values out of range (`InvalidPageNumber.Malformed`, …).
    pub fn from_params(p: &Params, default_size: usize, max_size: usize) -> Result<Page, ApiError> {
        let number = p.int("PageNumber", 1, 1_000_000)?.unwrap_or(1) as usize;
        let size = p.int("PageSize", 1, max_size as i64)?.map_or(default_size, |n| n as usize);
        Ok(Page { number, size })
    }

    /// The items of this page.
    pub fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = (self.number - 1).saturating_mul(self.size).min(items.len());
        &items[start..(start + self.size).min(items.len())]
    }

    /// `TotalCount`, `PageNumber`, `PageSize` beside `list_name: {item_name: [...]}`.
    pub fn answer<T: Clone + Into<Value>>(&self, items: &[T], list_name: &str, item_name: &str) -> Value {
        let shown: Vec<Value> = self.slice(items).iter().cloned().map(Into::into).collect();
        json!({list_name: {item_name: shown}, "TotalCount": items.len(), "PageNumber": self.number, "PageSize": self.size})
    }
}

/// `NextToken`/`MaxResults` paging. The token is opaque to callers (the offset, encoded); a token
/// that was not ours is refused rather than read as "from the start".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub start: usize,
    pub max: usize,
}

impl Cursor {
    pub fn from_params(p: &Params, default_max: usize, limit: usize) -> Result<Cursor, ApiError> {
        let max = p.int("MaxResults", 1, limit as i64)?.map_or(default_max, |n| n as usize);
        let start = match p.get("NextToken").filter(|t| !t.is_empty()) {
            None => 0,
            Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.strip_prefix("nimbus:").and_then(|n| n.parse().ok()))
                .ok_or_else(|| ApiError::new(400, "InvalidNextToken.Malformed", "The NextToken is not valid."))?,
        };
        Ok(Cursor { start, max })
    }

    /// This page of `items` and the token of the next one (`None` at the end).
    pub fn page<'a, T>(&self, items: &'a [T]) -> (&'a [T], Option<String>) {
        let start = self.start.min(items.len());
        let end = (start + self.max).min(items.len());
        let next = (end < items.len())
            .then(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("nimbus:{end}")));
        (&items[start..end], next)
    }
}

/// The most tags a resource may have (Alibaba's limit).
pub const MAX_TAGS: usize = 20;

/// `Tag.N.Key`/`Tag.N.Value` pairs, numbered from 1 without gaps: keys 1–128 characters, values at
/// most 128, neither starting with `aliyun` or `acs:` (reserved), keys unique.
pub fn tags(p: &Params) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = vec![];
    for n in 1.. {
        let (k, v) = (p.get(&format!("Tag.{n}.Key")), p.get(&format!("Tag.{n}.Value")));
        let Some(k) = k else {
            if v.is_some() {
                return Err(ApiError::missing(&format!("Tag.{n}.Key")));
            }
            break;
        };
        let v = v.unwrap_or_default();
        let reserved = |s: &str| s.to_ascii_lowercase().starts_with("aliyun") || s.starts_with("acs:");
        if k.is_empty() || k.chars().count() > 128 || reserved(k) {
            return Err(ApiError::new(400, "InvalidTagKey.Malformed", format!("Tag.{n}.Key is not a valid tag key.")));
        }
        if v.chars().count() > 128 || reserved(v) {
            return Err(ApiError::new(
                400,
                "InvalidTagValue.Malformed",
                format!("Tag.{n}.Value is not a valid tag value."),
            ));
        }
        if out.iter().any(|(ok, _)| ok == k) {
            return Err(ApiError::new(400, "InvalidTagKey.Duplicated", format!("The tag key {k:?} is given twice.")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    if out.len() > MAX_TAGS {
        return Err(ApiError::new(400, "InvalidTags.Quota", format!("At most {MAX_TAGS} tags are allowed.")));
    }
    // Stray numbers (`Tag.3.Key` with no `Tag.2.Key`) are refused, never ignored.
    let stray = p.iter().any(|(k, _)| {
        k.strip_prefix("Tag.")
            .and_then(|r| r.split_once('.'))
            .and_then(|(n, _)| n.parse::<usize>().ok())
            .is_some_and(|n| n == 0 || n > out.len())
    });
    if stray {
        return Err(ApiError::invalid("Tag.N", "tags must be numbered 1, 2, 3, … without gaps"));
    }
    Ok(out)
}

/// Tags as answered: `{"Tag": [{"TagKey", "TagValue"}]}` (Alibaba's Describe* shape).
pub fn tags_answer(tags: &[(String, String)]) -> Value {
    let list: Vec<Value> = tags.iter().map(|(k, v)| json!({"TagKey": k, "TagValue": v})).collect();
    let mut m = Map::new();
    m.insert("Tag".into(), Value::from(list));
    Value::Object(m)
}

/// Declares a service's error catalogue once: each entry a constructor with its status, code and
/// message template, so handlers name errors rather than spell codes.
///
/// ```ignore
/// nimbus_api::error_catalog! { pub KmsError;
///     key_not_found(id: &str) => 404, "Forbidden.KeyNotFound", "The specified Key {id} is not found.";
/// }
/// ```
#[macro_export]
macro_rules! error_catalog {
    ($vis:vis $name:ident; $($f:ident($($arg:ident: $ty:ty),*) => $status:literal, $code:literal, $msg:literal;)*) => {
        $vis struct $name;
        impl $name {
            $(
                #[allow(dead_code)]
                $vis fn $f($($arg: $ty),*) -> $crate::ApiError {
                    $crate::ApiError::new($status, $code, format!($msg))
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn pages_and_cursors() {
        let items: Vec<u32> = (0..25).collect();
        let page = Page::from_params(&p(&[("PageNumber", "3"), ("PageSize", "10")]), 10, 100).expect("page");
        assert_eq!(page.slice(&items), &items[20..25]);
        assert!(Page::from_params(&p(&[("PageSize", "101")]), 10, 100).is_err());
        let a = page.answer(&items, "Things", "Thing");
        assert_eq!((a["TotalCount"].as_u64(), a["Things"]["Thing"].as_array().map(Vec::len)), (Some(25), Some(5)));
        let c = Cursor::from_params(&p(&[("MaxResults", "10")]), 20, 100).expect("cursor");
        let (first, next) = c.page(&items);
        assert_eq!(first, &items[..10]);
        let c2 =
            Cursor::from_params(&p(&[("MaxResults", "20"), ("NextToken", &next.expect("more"))]), 20, 100).expect("c");
        assert_eq!(c2.page(&items), (&items[10..25], None));
        assert!(Cursor::from_params(&p(&[("NextToken", "garbage")]), 20, 100).is_err());
    }

    #[test]
    fn tags_are_read_whole_or_refused() {
        let t = tags(&p(&[("Tag.1.Key", "env"), ("Tag.1.Value", "prod"), ("Tag.2.Key", "team")])).expect("tags");
        assert_eq!(t, [("env".into(), "prod".into()), ("team".into(), String::new())]);
        assert!(tags(&p(&[("Tag.1.Key", "a"), ("Tag.3.Key", "b")])).is_err(), "a gap");
        assert!(tags(&p(&[("Tag.1.Key", "acs:x")])).is_err(), "reserved");
        assert!(tags(&p(&[("Tag.1.Key", "a"), ("Tag.2.Key", "a")])).is_err(), "duplicate");
        assert!(tags(&p(&[("Tag.1.Value", "v")])).is_err(), "value without key");
    }

    error_catalog! { Example;
        not_found(id: &str) => 404, "Example.NotFound", "No {id}.";
    }

    #[test]
    fn catalogues_build_errors() {
        let e = Example::not_found("x");
        assert_eq!((e.status, e.code.as_ref(), e.message.as_str()), (404, "Example.NotFound", "No x."));
    }
}
