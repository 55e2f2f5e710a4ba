//! The region this process serves and its zones.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Zone {
    pub id: String,
    pub local_name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Region {
    pub id: String,
    pub local_name: String,
    pub zones: Vec<Zone>,
    /// DNS suffix of the region's endpoints (`<product>.<region>.<domain>`).
    pub domain: String,
}

impl Region {
    /// The embedded default: region `local-1` with zones `local-1a`, `local-1b`, `local-1c`.
    pub fn local_default() -> Self {
        Self::with_id("local-1")
    }

    /// A region named `id` with three zones `<id>a`, `<id>b`, `<id>c`.
    pub fn with_id(id: &str) -> Self {
        let zones = ["a", "b", "c"]
            .iter()
            .map(|z| Zone { id: format!("{id}{z}"), local_name: format!("Nimbus {id} zone {}", z.to_uppercase()) })
            .collect();
        Region { id: id.to_string(), local_name: format!("Nimbus {id}"), zones, domain: "nimbus.internal".to_string() }
    }

    /// The endpoint host name of `product` (lowercase code, e.g. `ecs`) in this region.
    pub fn endpoint_host(&self, product: &str) -> String {
        format!("{product}.{}.{}", self.id, self.domain)
    }

    pub fn zone(&self, id: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_region_has_three_zones() {
        let r = Region::local_default();
        let ids: Vec<_> = r.zones.iter().map(|z| z.id.as_str()).collect();
        assert_eq!(ids, ["local-1a", "local-1b", "local-1c"]);
        assert_eq!(r.endpoint_host("ecs"), "ecs.local-1.nimbus.internal");
        assert!(r.zone("local-1b").is_some() && r.zone("local-2a").is_none());
    }
}
