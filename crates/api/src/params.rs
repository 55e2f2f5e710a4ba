//! Request parameters, merged from the query string and a form body.

use crate::ApiError;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    /// Later pairs win over earlier ones with the same name.
    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Params(pairs.into_iter().collect())
    }

    pub fn insert(&mut self, k: impl Into<String>, v: impl Into<String>) {
        self.0.insert(k.into(), v.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value of `name`, or `Missing<Name>` when absent or empty.
    pub fn require(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::missing(name)),
        }
    }

    /// Booleans as SDKs send them: `true`/`True`/`TRUE`/`false`/….
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::invalid(name, "expected true or false")),
        }
    }

    /// An integer within `min..=max`.
    pub fn int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(ApiError::invalid(name, format!("expected an integer from {min} to {max}"))),
            },
        }
    }

    /// A repeat list `Name.1`, `Name.2`, … in index order (gaps end the list, as in Alibaba's SDKs).
    pub fn list(&self, name: &str) -> Vec<&str> {
        (1..).map_while(|i| self.get(&format!("{name}.{i}"))).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        let p = Params::from_pairs(
            [("A", "True"), ("N", "5"), ("L.1", "x"), ("L.2", "y"), ("L.4", "z"), ("E", "")]
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        assert_eq!(p.bool("A"), Ok(Some(true)));
        assert_eq!(p.int("N", 1, 10), Ok(Some(5)));
        assert!(p.int("N", 6, 10).is_err());
        assert_eq!(p.list("L"), vec!["x", "y"]);
        assert_eq!(p.require("E").map_err(|e| e.code), Err("MissingE".into()));
        assert_eq!(p.bool("Missing"), Ok(None));
    }
}
