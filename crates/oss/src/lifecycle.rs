//! Lifecycle rules: expiration of objects by age (`Days`) or date (`CreatedBeforeDate`) under a
//! prefix. The region runs [`Oss::expire_once`] periodically.

use crate::service::Oss;
use crate::xml;
use nimbus_api::ApiError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub prefix: String,
    pub enabled: bool,
    /// Objects older than this many days expire.
    pub days: Option<u32>,
    /// Objects last modified before this instant (ms) expire.
    pub created_before: Option<i64>,
}

pub fn parse_rules(doc: &roxmltree::Document<'_>) -> Result<Vec<Rule>, ApiError> {
    let mut rules = vec![];
    for r in xml::children(doc.root_element(), "Rule") {
        let status = xml::child_text(r, "Status").unwrap_or("");
        if status != "Enabled" && status != "Disabled" {
            return Err(xml::malformed("Rule/Status must be Enabled or Disabled"));
        }
        let mut rule = Rule {
            id: xml::child_text(r, "ID").unwrap_or("").to_string(),
            prefix: xml::child_text(r, "Prefix").unwrap_or("").to_string(),
            enabled: status == "Enabled",
            days: None,
            created_before: None,
        };
        if let Some(e) = xml::children(r, "Expiration").next() {
            if let Some(d) = xml::child_text(e, "Days") {
                rule.days =
                    Some(d.trim().parse().map_err(|_| xml::malformed("Expiration/Days must be a whole number"))?);
            }
            if let Some(d) = xml::child_text(e, "CreatedBeforeDate").or_else(|| xml::child_text(e, "Date")) {
                let t = chrono::DateTime::parse_from_rfc3339(d.trim())
                    .map_err(|_| xml::malformed("Expiration date must be ISO 8601"))?;
                rule.created_before = Some(t.timestamp_millis());
            }
        }
        rules.push(rule);
    }
    if rules.is_empty() || rules.len() > 1000 {
        return Err(xml::malformed("between 1 and 1000 rules are required"));
    }
    Ok(rules)
}

impl Oss {
    /// Deletes the objects that enabled expiration rules say are due; returns how many.
    pub async fn expire_once(&self, now_ms: i64) -> Result<usize, ApiError> {
        let mut expired = 0;
        let mut marker = String::new();
        loop {
            let buckets = self.store.list_buckets_all(&marker, 100).await.map_err(crate::service::store_err)?;
            let Some(last) = buckets.last() else { break };
            marker = last.name.clone();
            for b in &buckets {
                let cfg = Self::config(b)?;
                let Some(text) = &cfg.lifecycle else { continue };
                let Ok(doc) = roxmltree::Document::parse(text) else { continue };
                let mode = crate::service::versioning(&cfg);
                for rule in parse_rules(&doc)?.into_iter().filter(|r| r.enabled) {
                    let cutoff = match (rule.days, rule.created_before) {
                        (Some(d), _) => now_ms - i64::from(d) * 86_400_000,
                        (None, Some(t)) => t,
                        _ => continue,
                    };
                    let mut from = String::new();
                    loop {
                        let page = self
                            .store
                            .list_objects(&b.name, &rule.prefix, &from, "", 1000)
                            .await
                            .map_err(crate::service::store_err)?;
                        // Expiring in a versioned bucket leaves a delete marker, as a DELETE would.
                        for o in page.objects.iter().filter(|o| o.last_modified < cutoff) {
                            self.delete_key(&b.name, &o.key, None, mode).await?;
                            expired += 1;
                        }
                        match page.next_marker {
                            Some(n) => from = n,
                            None => break,
                        }
                    }
                }
            }
        }
        Ok(expired)
    }
}
