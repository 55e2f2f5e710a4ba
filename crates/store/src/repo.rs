//! Typed state: a resource kind's schema as Rust types, and [`Repo`], a typed repository over the
//! `resources` table.
//!
//! A service describes each kind it keeps once, as a [`Kind`]: its kind string, a `Spec` and a
//! `Status` struct with serde attributes that name the stored JSON fields, and the prefix of fresh
//! ids. Handlers then read and write [`Record<K>`]s through [`Repo<K>`] (`store.repo::<K>()`) and
//! never index JSON by string; (de)serialisation is the only place field names appear.
//!
//! Why here and not in `nimbus-api`: a repository is storage, not the gateway/service seam. It
//! speaks [`StoreError`] and needs only a [`Store`], so jobs, reconcilers, start-up passes and the
//! binary's admin tools (which have no `CallContext`) use it as the handlers do, and its tests run
//! on both backends beside the rest of the store's. `nimbus-api` keeps mapping `StoreError` to
//! Alibaba errors, so handlers still write `?`.
//!
//! Compatibility: a `Record` is stored in the same row and JSON shape as a [`Resource`], so a
//! kind's structs must keep today's field names (`#[serde(rename_all = "PascalCase")]`, explicit
//! `rename` where PascalCase differs, `#[serde(default)]` for fields older rows may lack).
//! Fields a struct does not name are dropped on the next write: a kind's structs must name every
//! field any code writes into its rows.

use crate::{Resource, Store, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::marker::PhantomData;

/// One kind of resource row (`vpc.vpc`, `kms.key`, …) and the shape of its state.
pub trait Kind: Send + Sync + 'static {
    /// The stored `kind` column.
    const KIND: &'static str;
    /// Prefix of generated ids (`vpc-`, `key-`); kinds whose ids are derived from names
    /// (aliases, trails) leave it empty and never call [`Kind::new_id`].
    const ID_PREFIX: &'static str = "";
    /// Desired state, as the API last wrote it (the row's `spec`).
    type Spec: Serialize + DeserializeOwned + Clone + Debug + Send + Sync;
    /// Observed state, as a controller last saw it (the row's `status`); `{}` for kinds without.
    type Status: Serialize + DeserializeOwned + Default + Clone + Debug + Send + Sync;

    /// A fresh id: the prefix and 20 random lowercase letters and digits.
    fn new_id() -> String {
        nimbus_core::ids::resource_id(Self::ID_PREFIX)
    }
}

/// A resource's tags: key → value, in the order they were first set (as stored).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "serde_json::Map<String, serde_json::Value>", into = "serde_json::Map<String, serde_json::Value>")]
pub struct Tags(Vec<(String, String)>);

impl Tags {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    /// Sets `key` (in place if it is there already, else last).
    pub fn insert(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.into(),
            None => self.0.push((key.into(), value.into())),
        }
    }
    pub fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl TryFrom<serde_json::Map<String, serde_json::Value>> for Tags {
    type Error = String;
    fn try_from(m: serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        m.into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                other => Err(format!("tag {k:?} is {other}, not a string")),
            })
            .collect::<Result<_, _>>()
            .map(Tags)
    }
}

impl From<Tags> for serde_json::Map<String, serde_json::Value> {
    fn from(t: Tags) -> Self {
        t.0.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect()
    }
}

/// The status of kinds that keep none: stored as `{}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoStatus {}

/// A resource row of kind `K`, typed.
pub struct Record<K: Kind> {
    pub id: String,
    pub account_id: String,
    pub region: String,
    pub spec: K::Spec,
    pub status: K::Status,
    /// The row's `tags`, a JSON object of strings.
    pub tags: Tags,
    /// The version this record was read at; [`Repo::update`] writes only if it is still current.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl<K: Kind> Debug for Record<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("kind", &K::KIND)
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("spec", &self.spec)
            .field("status", &self.status)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl<K: Kind> Clone for Record<K> {
    fn clone(&self) -> Self {
        Record {
            id: self.id.clone(),
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            spec: self.spec.clone(),
            status: self.status.clone(),
            tags: self.tags.clone(),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl<K: Kind> Record<K> {
    /// A record not stored yet, with a default status and no tags.
    pub fn new(id: impl Into<String>, account_id: &str, region: &str, spec: K::Spec) -> Self {
        Record {
            id: id.into(),
            account_id: account_id.into(),
            region: region.into(),
            spec,
            status: K::Status::default(),
            tags: Tags::default(),
            version: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    pub fn with_status(self, status: K::Status) -> Self {
        Record { status, ..self }
    }

    /// Reads a row. `NotFound` if it is of another kind (callers answer as for a missing one),
    /// `Corrupt` if its JSON does not fit `K`'s structs.
    pub fn from_resource(r: Resource) -> Result<Self, StoreError> {
        if r.kind != K::KIND {
            return Err(StoreError::NotFound);
        }
        let corrupt =
            |what: &str, e: serde_json::Error| StoreError::Corrupt(format!("{} {} {what}: {e}", K::KIND, r.id));
        let spec = serde_json::from_value(r.spec.clone()).map_err(|e| corrupt("spec", e))?;
        let status = serde_json::from_value(r.status.clone()).map_err(|e| corrupt("status", e))?;
        let tags = serde_json::from_value(r.tags.clone()).map_err(|e| corrupt("tags", e))?;
        Ok(Record {
            id: r.id,
            account_id: r.account_id,
            region: r.region,
            spec,
            status,
            tags,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }

    /// The untyped row this record is stored as.
    pub fn to_resource(&self) -> Result<Resource, StoreError> {
        Ok(Resource {
            id: self.id.clone(),
            account_id: self.account_id.clone(),
            kind: K::KIND.into(),
            region: self.region.clone(),
            spec: serde_json::to_value(&self.spec)?,
            status: serde_json::to_value(&self.status)?,
            tags: serde_json::to_value(&self.tags)?,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A page of a filtered listing: 1-based `number` of `size` rows (the APIs' PageNumber/PageSize).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub number: usize,
    pub size: usize,
}

impl Page {
    /// Every row on one page.
    pub const ALL: Page = Page { number: 1, size: usize::MAX };
}

/// What [`Repo::list`] returns: the page's rows and how many matched in all (`TotalCount`).
pub struct Listed<K: Kind> {
    pub items: Vec<Record<K>>,
    pub total: usize,
}

/// How many times [`Repo::update_with`] and [`Repo::delete`] re-read and retry after losing an
/// optimistic write before answering `Conflict`.
pub const MAX_ATTEMPTS: usize = 5;

/// Typed access to the rows of kind `K`. Every call is scoped by account, like the `Store`
/// functions it is made of, except [`Repo::all_accounts`] (background work only).
pub struct Repo<'s, K: Kind> {
    store: &'s Store,
    kind: PhantomData<fn() -> K>,
}

impl Store {
    /// The typed repository of kind `K`.
    pub fn repo<K: Kind>(&self) -> Repo<'_, K> {
        Repo { store: self, kind: PhantomData }
    }
}

impl<K: Kind> Repo<'_, K> {
    /// The row `id` of `account`; `NotFound` if it is missing or of another kind.
    pub async fn get(&self, account: &str, id: &str) -> Result<Record<K>, StoreError> {
        Record::from_resource(self.store.get_resource(account, id).await?)
    }

    /// Like [`Repo::get`], with a missing row as `None`.
    pub async fn find(&self, account: &str, id: &str) -> Result<Option<Record<K>>, StoreError> {
        match self.get(account, id).await {
            Ok(r) => Ok(Some(r)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One keyset page: rows of `account` in id order after `after` (exclusive), at most `limit`.
    pub async fn page_after(
        &self,
        account: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Record<K>>, StoreError> {
        self.store
            .list_resources(account, K::KIND, after, limit)
            .await?
            .into_iter()
            .map(Record::from_resource)
            .collect()
    }

    /// Every row of `account`, in id order (read 500 at a time).
    pub async fn all(&self, account: &str) -> Result<Vec<Record<K>>, StoreError> {
        self.store.all_resources(account, K::KIND).await?.into_iter().map(Record::from_resource).collect()
    }

    /// The rows of `account` that `filter` keeps, in id order, cut to `page`; `total` counts every
    /// row kept.
    pub async fn list(
        &self,
        account: &str,
        filter: impl Fn(&Record<K>) -> bool,
        page: Page,
    ) -> Result<Listed<K>, StoreError> {
        let kept: Vec<Record<K>> = self.all(account).await?.into_iter().filter(|r| filter(r)).collect();
        let total = kept.len();
        let skip = page.number.saturating_sub(1).saturating_mul(page.size);
        Ok(Listed { items: kept.into_iter().skip(skip).take(page.size).collect(), total })
    }

    /// Every row of every account, in id order: for controllers and background work, never for
    /// answering a tenant's request.
    pub async fn all_accounts(&self) -> Result<Vec<Record<K>>, StoreError> {
        self.store.all_resources_all_accounts(K::KIND).await?.into_iter().map(Record::from_resource).collect()
    }

    /// Stores a new row at version 1; `AlreadyExists` if the id is taken.
    pub async fn create(&self, r: &Record<K>) -> Result<Record<K>, StoreError> {
        let stored = self.store.create_resource(&r.to_resource()?).await?;
        Ok(Record {
            version: stored.version,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
            ..r.clone()
        })
    }

    /// Writes `r` if its version is still the stored one (one attempt); `Conflict` otherwise.
    /// Prefer [`Repo::update_with`], which re-reads and retries.
    pub async fn update(&self, r: &Record<K>) -> Result<Record<K>, StoreError> {
        let stored = self.store.update_resource(&r.to_resource()?).await?;
        Ok(Record { version: stored.version, updated_at: stored.updated_at, ..r.clone() })
    }

    /// Reads row `id`, lets `change` edit it, and writes it at the version read; when another
    /// write got there first, reads again and re-runs `change` (at most [`MAX_ATTEMPTS`] times,
    /// then `Conflict`). `change` may refuse (its error is returned, nothing is written); if it
    /// leaves the record as it was, nothing is written either. Returns the stored record and
    /// what `change` returned.
    pub async fn update_with<T, E>(
        &self,
        account: &str,
        id: &str,
        mut change: impl FnMut(&mut Record<K>) -> Result<T, E>,
    ) -> Result<(Record<K>, T), E>
    where
        E: From<StoreError>,
    {
        for _ in 0..MAX_ATTEMPTS {
            let read = self.get(account, id).await?;
            let before = read.to_resource()?;
            let mut r = read;
            let out = change(&mut r)?;
            let after = r.to_resource()?;
            if (&after.spec, &after.status, &after.tags) == (&before.spec, &before.status, &before.tags) {
                return Ok((r, out));
            }
            match self.update(&r).await {
                Ok(stored) => return Ok((stored, out)),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// Deletes row `id` at whatever version it has now (a controller marking it Available is no
    /// reason to fail the delete), retrying lost races like [`Repo::update_with`]. Returns the
    /// row as it was. `NotFound` if it is missing or of another kind.
    pub async fn delete(&self, account: &str, id: &str) -> Result<Record<K>, StoreError> {
        self.delete_if(account, id, |_| Ok::<(), StoreError>(())).await
    }

    /// Like [`Repo::delete`], if `check` accepts the current row (re-checked on every attempt).
    pub async fn delete_if<E>(
        &self,
        account: &str,
        id: &str,
        check: impl Fn(&Record<K>) -> Result<(), E>,
    ) -> Result<Record<K>, E>
    where
        E: From<StoreError>,
    {
        for _ in 0..MAX_ATTEMPTS {
            let r = self.get(account, id).await?;
            check(&r)?;
            match self.store.delete_resource(account, id, r.version).await {
                Ok(()) => return Ok(r),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Spec {
        name: String,
        #[serde(rename = "EventRW")]
        event_rw: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_millis: Option<i64>,
        #[serde(default)]
        routes: Vec<String>,
    }

    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Status {
        #[serde(default)]
        status: String,
    }

    struct Thing;
    impl Kind for Thing {
        const KIND: &'static str = "test.thing";
        const ID_PREFIX: &'static str = "th-";
        type Spec = Spec;
        type Status = Status;
    }

    fn row(spec: serde_json::Value, status: serde_json::Value) -> Resource {
        let mut r = Resource::new("th-1", "1000", "test.thing", "local-1", spec);
        r.status = status;
        r.tags = json!({"k": "v"});
        r.version = 3;
        r
    }

    #[test]
    fn a_row_written_as_json_reads_and_writes_back_the_same() {
        let r = row(json!({"Name": "a", "EventRW": "All", "Routes": []}), json!({}));
        let t = Record::<Thing>::from_resource(r.clone()).expect("fits");
        assert_eq!(t.spec, Spec { name: "a".into(), event_rw: "All".into(), next_millis: None, routes: vec![] });
        assert_eq!(t.status, Status::default());
        assert_eq!(t.tags.get("k"), Some("v"));
        assert_eq!(t.version, 3);
        let back = t.to_resource().expect("serialises");
        assert_eq!(back.spec, r.spec);
        assert_eq!(back.kind, "test.thing");
    }

    #[test]
    fn optional_fields_may_be_missing_and_other_kinds_are_not_found() {
        let t = Record::<Thing>::from_resource(row(json!({"Name": "a", "EventRW": "Read"}), json!({}))).expect("fits");
        assert!(t.spec.routes.is_empty());
        let mut other = row(json!({}), json!({}));
        other.kind = "test.other".into();
        assert!(matches!(Record::<Thing>::from_resource(other), Err(StoreError::NotFound)));
        assert!(matches!(
            Record::<Thing>::from_resource(row(json!({"Name": 1}), json!({}))),
            Err(StoreError::Corrupt(_))
        ));
        assert!(Thing::new_id().starts_with("th-"));
    }
}
