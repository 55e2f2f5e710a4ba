//! KMS action handlers (2016-01-20).

use crate::blob;
use crate::keystore::{self, check_usable, key_not_found, load};
use crate::model::{Alias, AliasSpec, Key, KeyRecord, KeyState, KeyVersion, Toggle};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use nimbus_api::{ActionSpec, ApiError, BoxFut, CallContext, Canonical, Params, Resolved, ResourceParam, Service};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_core::secret::KeyProvider;
use nimbus_store::{Page, Record, StoreError};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub struct Kms {
    keys: Arc<dyn KeyProvider>,
}

impl Kms {
    pub fn new(keys: Arc<dyn KeyProvider>) -> Self {
        Kms { keys }
    }
}

const ACTIONS: &[ActionSpec] = nimbus_api::actions!["kms:";
    "CreateKey" => Write, "DescribeKey" => Read, "ListKeys" => Read, "UpdateKeyDescription" => Write,
    "EnableKey" => Write, "DisableKey" => Write, "ScheduleKeyDeletion" => Write, "CancelKeyDeletion" => Write,
    "SetDeletionProtection" => Write, "UpdateRotationPolicy" => Write,
    "CreateKeyVersion" => Write, "ListKeyVersions" => Read, "DescribeKeyVersion" => Read,
    "CreateAlias" => Write, "UpdateAlias" => Write, "DeleteAlias" => Write, "ListAliases" => Read, "ListAliasesByKeyId" => Read,
    "TagResource" => Write, "UntagResource" => Write, "ListResourceTags" => Read,
    "Encrypt" => Read, "Decrypt" => Read, "GenerateDataKey" => Read, "GenerateDataKeyWithoutPlaintext" => Read, "ReEncrypt" => Read,
];

const MAX_PLAINTEXT: usize = 6144;

pub(crate) fn alias_id(account: &str, name: &str) -> String {
    format!("kms-alias:{account}:{name}")
}

impl Service for Kms {
    fn product(&self) -> &'static str {
        "Kms"
    }
    fn code(&self) -> &'static str {
        "kms"
    }
    fn version(&self) -> &'static str {
        "2016-01-20"
    }
    fn actions(&self) -> &'static [ActionSpec] {
        ACTIONS
    }
    fn deny_code(&self) -> &'static str {
        "Forbidden.NoPermission"
    }

    fn resource_params(&self, action: &ActionSpec) -> &'static [ResourceParam] {
        const KEY: ResourceParam = ResourceParam::one("KeyId", "key");
        match action.name {
            "CreateKey" | "ListKeys" | "ListAliases" => nimbus_api::resource_params![],
            "CreateAlias" | "UpdateAlias" => {
                nimbus_api::resource_params![ResourceParam::one("AliasName", "alias"), KEY]
            }
            "DeleteAlias" => nimbus_api::resource_params![ResourceParam::one("AliasName", "alias")],
            "ReEncrypt" => nimbus_api::resource_params![ResourceParam::one("DestinationKeyId", "key")],
            _ => nimbus_api::resource_params![KEY],
        }
    }

    /// A key named by id, ARN or alias is authorized as the key *and*, for an alias, as the alias;
    /// the handler then sees the key id. An alias named for itself (DeleteAlias) is authorized with
    /// the key it points at, so a Deny on a key also guards the names that reach it.
    fn canonical<'a>(
        &'a self,
        ctx: &'a CallContext,
        kind: &'static str,
        raw: String,
    ) -> BoxFut<'a, Result<Canonical, ApiError>> {
        Box::pin(async move {
            let account = &ctx.caller.account_id;
            let key_arn = |id: &str| ctx.arn("kms", &format!("key/{id}"));
            let own_arn = format!("acs:kms:{}:{account}:", ctx.region.id);
            let name = raw.strip_prefix(&own_arn).map(str::to_string).unwrap_or_else(|| raw.clone());
            if let Some(id) = name.strip_prefix("key/") {
                return Ok(Canonical::new(id, key_arn(id)));
            }
            if name.starts_with("alias/") {
                let alias_arn = ctx.arn("kms", &name);
                return match ctx.store.repo::<Alias>().get(account, &alias_id(account, &name)).await {
                    Ok(a) => {
                        let key = a.spec.key_id;
                        let value = if kind == "alias" { name } else { key.clone() };
                        Ok(Canonical { value, arns: vec![alias_arn, key_arn(&key)] })
                    }
                    Err(StoreError::NotFound) => Ok(Canonical::new(name, alias_arn)),
                    Err(e) => Err(e.into()),
                };
            }
            if kind == "alias" {
                // Not an alias name: the handler refuses it; authorize it as written.
                return Ok(Canonical::new(raw.clone(), ctx.arn("kms", &raw)));
            }
            Ok(Canonical::new(name.clone(), key_arn(&name)))
        })
    }

    /// Decrypt and ReEncrypt also use the key a ciphertext names in its header (no decryption
    /// needed to know it); the handler decrypts that same blob with that same key.
    fn resolve<'a>(
        &'a self,
        ctx: &'a CallContext,
        action: &'a ActionSpec,
        p: &'a Params,
    ) -> BoxFut<'a, Result<Resolved, ApiError>> {
        Box::pin(async move {
            let mut r = nimbus_api::resolve::resolve_declared(self, ctx, action, p).await?;
            if matches!(action.name, "Decrypt" | "ReEncrypt")
                && let Some(h) = p.get("CiphertextBlob").and_then(blob::header)
            {
                let arn = ctx.arn("kms", &format!("key/{}", h.0.key_id));
                // The blob's header names its key in the clear, so a refusal may name it too.
                let check = &mut r.checks[0];
                if check.resources == [self.account_arn(ctx)] {
                    check.resources.clear();
                    check.named.clear();
                }
                check.resources.push(arn.clone());
                check.named.push(arn);
            }
            Ok(r)
        })
    }

    fn account_arn(&self, ctx: &CallContext) -> String {
        ctx.arn("kms", "key/*")
    }

    fn handle<'a>(
        &'a self,
        ctx: &'a CallContext,
        action: &'a ActionSpec,
        p: &'a Params,
    ) -> BoxFut<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            let c = Call { ctx, keys: self.keys.as_ref(), p };
            match action.name {
                "CreateKey" => c.create_key().await,
                "DescribeKey" => Ok(json!({"KeyMetadata": metadata(&c.key().await?)})),
                "ListKeys" => c.list_keys().await,
                "UpdateKeyDescription" => {
                    c.update_empty(|k, p| {
                        k.spec.description = p.require("Description")?.to_string();
                        Ok(())
                    })
                    .await
                }
                "EnableKey" => c.set_state(KeyState::Enabled, &[KeyState::Disabled]).await,
                "DisableKey" => c.set_state(KeyState::Disabled, &[KeyState::Enabled]).await,
                "ScheduleKeyDeletion" => c.schedule_deletion().await,
                "CancelKeyDeletion" => c.set_state(KeyState::Enabled, &[KeyState::PendingDeletion]).await,
                "SetDeletionProtection" => {
                    c.update_empty(|k, p| {
                        let on = p
                            .bool("EnableDeletionProtection")?
                            .ok_or_else(|| ApiError::missing("EnableDeletionProtection"))?;
                        k.spec.deletion_protection = Toggle::from(on);
                        Ok(())
                    })
                    .await
                }
                "UpdateRotationPolicy" => c.update_empty(rotation_policy).await,
                "CreateKeyVersion" => c.create_version().await,
                "ListKeyVersions" => c.list_versions().await,
                "DescribeKeyVersion" => c.describe_version().await,
                "CreateAlias" => c.create_alias().await,
                "UpdateAlias" => c.update_alias().await,
                "DeleteAlias" => c.delete_alias().await,
                "ListAliases" => c.list_aliases(None).await,
                "ListAliasesByKeyId" => {
                    let k = c.key().await?;
                    c.list_aliases(Some(&k.id)).await
                }
                "TagResource" => c.tag().await,
                "UntagResource" => c.untag().await,
                "ListResourceTags" => c.list_tags().await,
                "Encrypt" => c.encrypt().await,
                "Decrypt" => c.decrypt().await,
                "GenerateDataKey" => c.generate_data_key(true).await,
                "GenerateDataKeyWithoutPlaintext" => c.generate_data_key(false).await,
                "ReEncrypt" => c.re_encrypt().await,
                other => Err(ApiError::new(404, "InvalidAction.NotFound", format!("KMS has no action {other}."))),
            }
        })
    }
}

/// What DescribeKey shows: never the versions' material.
pub fn metadata(k: &KeyRecord) -> Value {
    let s = &k.spec;
    json!({
        "KeyId": s.key_id, "Arn": s.arn, "KeyState": s.key_state, "KeySpec": s.key_spec, "KeyUsage": s.key_usage,
        "Origin": s.origin, "ProtectionLevel": s.protection_level, "Description": s.description,
        "CreationDate": s.creation_date, "Creator": s.creator, "AutomaticRotation": s.automatic_rotation,
        "RotationInterval": s.rotation_interval, "LastRotationDate": s.last_rotation_date,
        "NextRotationDate": s.next_rotation_date, "PrimaryKeyVersion": s.primary_key_version,
        "DeleteDate": s.delete_date, "DeletionProtection": s.deletion_protection, "MaterialExpireTime": "",
    })
}

/// `RotationInterval` as Alibaba writes it (`604800s` or `7d`) in seconds, 7 to 730 days.
fn interval_secs(v: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::invalid("RotationInterval", "a duration such as 7d or 604800s, from 7 to 730 days");
    let secs = if let Some(d) = v.strip_suffix('d') {
        d.parse::<i64>().map_err(|_| bad())? * 86400
    } else {
        v.strip_suffix('s').unwrap_or(v).parse::<i64>().map_err(|_| bad())?
    };
    if (7 * 86400..=730 * 86400).contains(&secs) { Ok(secs) } else { Err(bad()) }
}

fn rotation_policy(k: &mut KeyRecord, p: &Params) -> Result<(), ApiError> {
    let on = p.bool("EnableAutomaticRotation")?.ok_or_else(|| ApiError::missing("EnableAutomaticRotation"))?;
    let s = &mut k.spec;
    if on {
        let secs = interval_secs(p.get("RotationInterval").unwrap_or("365d"))?;
        let next = now_millis() + secs * 1000;
        s.automatic_rotation = Toggle::Enabled;
        s.rotation_interval = format!("{secs}s");
        s.rotation_interval_secs = Some(secs);
        s.next_rotation_millis = Some(next);
        s.next_rotation_date = iso8601(next);
    } else {
        s.automatic_rotation = Toggle::Disabled;
        s.next_rotation_date = String::new();
        s.next_rotation_millis = None;
    }
    Ok(())
}

/// One element of TagResource's `Tags`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagParam {
    #[serde(default)]
    tag_key: Option<String>,
    #[serde(default)]
    tag_value: Option<String>,
}

fn context(p: &Params, name: &str) -> Result<Map<String, Value>, ApiError> {
    match p.get(name).filter(|v| !v.is_empty()) {
        None => Ok(Map::new()),
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(m)) if m.values().all(Value::is_string) && raw.len() <= 8192 => Ok(m),
            _ => Err(ApiError::new(400, "InvalidParameter", format!("{name} must be a JSON object of strings."))),
        },
    }
}

struct Call<'a> {
    ctx: &'a CallContext,
    keys: &'a dyn KeyProvider,
    p: &'a Params,
}

impl Call<'_> {
    fn account(&self) -> &str {
        &self.ctx.caller.account_id
    }

    /// The key named by `param`: a key id, `alias/<name>`, or an ARN of this region and account.
    async fn key_named(&self, param: &str) -> Result<KeyRecord, ApiError> {
        let id = self.p.require(param)?;
        let id = if let Some(rest) = id.strip_prefix("acs:kms:") {
            let prefix = format!("{}:{}:key/", self.ctx.region.id, self.account());
            rest.strip_prefix(&prefix).ok_or_else(|| key_not_found(id))?
        } else {
            id
        };
        if id.starts_with("alias/") {
            let Some(a) = self.ctx.store.repo::<Alias>().find(self.account(), &alias_id(self.account(), id)).await?
            else {
                return Err(ApiError::new(404, "Forbidden.AliasNotFound", format!("The alias {id} does not exist.")));
            };
            return load(&self.ctx.store, self.account(), &a.spec.key_id).await;
        }
        load(&self.ctx.store, self.account(), id).await
    }

    async fn key(&self) -> Result<KeyRecord, ApiError> {
        self.key_named("KeyId").await
    }

    /// Changes the key named by `KeyId` with `f`, re-read and re-run when a concurrent write wins.
    async fn update<T>(
        &self,
        f: impl Fn(&mut KeyRecord, &Params) -> Result<T, ApiError>,
    ) -> Result<(KeyRecord, T), ApiError> {
        let k = self.key().await?;
        self.ctx
            .store
            .repo::<Key>()
            .update_with(self.account(), &k.id, |k| {
                if k.spec.is_deleted(now_millis()) {
                    return Err(key_not_found(&k.id));
                }
                f(k, self.p)
            })
            .await
    }

    async fn update_empty(
        &self,
        f: impl Fn(&mut KeyRecord, &Params) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        self.update(f).await?;
        Ok(json!({}))
    }

    async fn create_key(&self) -> Result<Value, ApiError> {
        let spec = self.p.get("KeySpec").filter(|s| !s.is_empty()).unwrap_or("Aliyun_AES_256");
        if spec != "Aliyun_AES_256" {
            return Err(ApiError::new(
                400,
                "Rejected.UnsupportedOperation",
                format!("KeySpec {spec} is not offered here; use Aliyun_AES_256."),
            ));
        }
        if let Some(u) = self.p.get("KeyUsage").filter(|u| !u.is_empty() && *u != "ENCRYPT/DECRYPT") {
            return Err(ApiError::new(
                400,
                "Rejected.UnsupportedOperation",
                format!("KeyUsage {u} is not offered here; use ENCRYPT/DECRYPT."),
            ));
        }
        let mut r = keystore::new_key(
            self.keys,
            self.account(),
            &self.ctx.region.id,
            self.p.get("Description").unwrap_or_default(),
        );
        if self.p.bool("EnableAutomaticRotation")? == Some(true) {
            rotation_policy(&mut r, self.p)?;
        }
        let r = self.ctx.store.repo::<Key>().create(&r).await?;
        Ok(json!({"KeyMetadata": metadata(&r)}))
    }

    fn page_args(&self) -> Result<(i64, i64), ApiError> {
        Ok((self.p.int("PageNumber", 1, 1_000_000)?.unwrap_or(1), self.p.int("PageSize", 1, 100)?.unwrap_or(10)))
    }

    fn page(&self) -> Result<Page, ApiError> {
        let (n, size) = self.page_args()?;
        Ok(Page { number: n as usize, size: size as usize })
    }

    async fn list_keys(&self) -> Result<Value, ApiError> {
        let (n, size) = self.page_args()?;
        let now = now_millis();
        let listed =
            self.ctx.store.repo::<Key>().list(self.account(), |k| !k.spec.is_deleted(now), self.page()?).await?;
        let page: Vec<Value> = listed.items.iter().map(|k| json!({"KeyId": k.id, "KeyArn": k.spec.arn})).collect();
        Ok(json!({"Keys": {"Key": page}, "TotalCount": listed.total, "PageNumber": n, "PageSize": size}))
    }

    async fn set_state(&self, to: KeyState, from: &[KeyState]) -> Result<Value, ApiError> {
        self.update_empty(|k, _| {
            let state = k.spec.key_state;
            if state == to {
                return Ok(());
            }
            if !from.contains(&state) {
                let code = if state == KeyState::PendingDeletion {
                    "Rejected.PendingDeletion"
                } else {
                    "Rejected.StateModifiedFailed"
                };
                return Err(ApiError::new(
                    409,
                    code,
                    format!("The key is {}; it cannot become {}.", state.as_str(), to.as_str()),
                ));
            }
            k.spec.key_state = to;
            if to == KeyState::Enabled {
                k.spec.delete_date = String::new();
                k.spec.delete_date_millis = None;
            }
            Ok(())
        })
        .await
    }

    async fn schedule_deletion(&self) -> Result<Value, ApiError> {
        let days =
            self.p.int("PendingWindowInDays", 7, 366)?.ok_or_else(|| ApiError::missing("PendingWindowInDays"))?;
        let when = now_millis() + days * 86_400_000;
        self.update_empty(|k, _| {
            if k.spec.deletion_protection == Toggle::Enabled {
                return Err(ApiError::new(
                    403,
                    "Forbidden.ResourceProtected",
                    "The key has deletion protection; turn it off first.",
                ));
            }
            k.spec.key_state = KeyState::PendingDeletion;
            k.spec.delete_date = iso8601(when);
            k.spec.delete_date_millis = Some(when);
            Ok(())
        })
        .await
    }

    fn version_json(k: &KeyRecord, v: &KeyVersion) -> Value {
        json!({"KeyId": k.id, "KeyVersionId": v.key_version_id, "CreationDate": v.creation_date})
    }

    async fn create_version(&self) -> Result<Value, ApiError> {
        let (k, ()) = self
            .update(|k, _| {
                check_usable(k)?;
                keystore::add_version(self.keys, k);
                Ok(())
            })
            .await?;
        let v = k.spec.versions.last().ok_or_else(ApiError::internal)?;
        Ok(json!({"KeyVersion": Self::version_json(&k, v)}))
    }

    async fn list_versions(&self) -> Result<Value, ApiError> {
        let k = self.key().await?;
        let (n, size) = self.page_args()?;
        let all: Vec<Value> = k.spec.versions.iter().map(|v| Self::version_json(&k, v)).collect();
        let page: Vec<Value> = all.iter().skip(((n - 1) * size) as usize).take(size as usize).cloned().collect();
        Ok(json!({"KeyVersions": {"KeyVersion": page}, "TotalCount": all.len(), "PageNumber": n, "PageSize": size}))
    }

    async fn describe_version(&self) -> Result<Value, ApiError> {
        let k = self.key().await?;
        let vid = self.p.require("KeyVersionId")?;
        let v = k.spec.version(vid).ok_or_else(|| {
            ApiError::new(404, "Forbidden.KeyVersionNotFound", format!("The key version {vid} does not exist."))
        })?;
        Ok(json!({"KeyVersion": Self::version_json(&k, v)}))
    }

    fn alias_name(&self) -> Result<&str, ApiError> {
        let a = self.p.require("AliasName")?;
        let ok = a.starts_with("alias/")
            && !a.starts_with("alias/acs")
            && (7..=255).contains(&a.len())
            && a[6..].chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/'));
        if ok {
            Ok(a)
        } else {
            Err(ApiError::invalid(
                "AliasName",
                "alias/<name>: 1 to 249 letters, digits, '_', '-' or '/', not starting with acs",
            ))
        }
    }

    async fn create_alias(&self) -> Result<Value, ApiError> {
        let name = self.alias_name()?;
        let k = self.key().await?;
        let spec = AliasSpec { alias_name: name.into(), alias_arn: self.ctx.arn("kms", name), key_id: k.id };
        let alias = Record::new(alias_id(self.account(), name), self.account(), &self.ctx.region.id, spec);
        match self.ctx.store.repo::<Alias>().create(&alias).await {
            Ok(_) => Ok(json!({})),
            Err(StoreError::AlreadyExists) => {
                Err(ApiError::new(400, "AliasAlreadyExists", format!("The alias {name} already exists.")))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn alias_missing(name: &str) -> ApiError {
        ApiError::new(404, "Forbidden.AliasNotFound", format!("The alias {name} does not exist."))
    }

    async fn update_alias(&self) -> Result<Value, ApiError> {
        let name = self.alias_name()?;
        let id = alias_id(self.account(), name);
        let aliases = self.ctx.store.repo::<Alias>();
        if aliases.find(self.account(), &id).await?.is_none() {
            return Err(Self::alias_missing(name));
        }
        let k = self.key().await?;
        match aliases
            .update_with(self.account(), &id, |a| {
                a.spec.key_id = k.id.clone();
                Ok::<_, StoreError>(())
            })
            .await
        {
            Ok(_) => Ok(json!({})),
            Err(StoreError::NotFound) => Err(Self::alias_missing(name)),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_alias(&self) -> Result<Value, ApiError> {
        let name = self.alias_name()?;
        match self.ctx.store.repo::<Alias>().delete(self.account(), &alias_id(self.account(), name)).await {
            Ok(_) => Ok(json!({})),
            Err(StoreError::NotFound) => Err(Self::alias_missing(name)),
            Err(e) => Err(e.into()),
        }
    }

    async fn list_aliases(&self, key: Option<&str>) -> Result<Value, ApiError> {
        let (n, size) = self.page_args()?;
        let listed = self
            .ctx
            .store
            .repo::<Alias>()
            .list(self.account(), |a| key.is_none_or(|k| a.spec.key_id == k), self.page()?)
            .await?;
        let page: Vec<&AliasSpec> = listed.items.iter().map(|a| &a.spec).collect();
        Ok(json!({"Aliases": {"Alias": page}, "TotalCount": listed.total, "PageNumber": n, "PageSize": size}))
    }

    async fn usable_key(&self, param: &str) -> Result<KeyRecord, ApiError> {
        let k = self.key_named(param).await?;
        check_usable(&k)?;
        keystore::rotate_if_due(&self.ctx.store, self.keys, k).await
    }

    /// `Tags` = `[{"TagKey":"k","TagValue":"v"}, …]`: at most 20 per key, keys 1–128 characters not
    /// starting with `acs:` or `aliyun`, values up to 256.
    async fn tag(&self) -> Result<Value, ApiError> {
        let bad = |why: &str| ApiError::new(400, "InvalidParameter.Tags", format!("Tags {why}."));
        let raw = self.p.require("Tags")?;
        let list: Vec<TagParam> =
            serde_json::from_str(raw).map_err(|_| bad("must be a JSON array of {\"TagKey\",\"TagValue\"}"))?;
        self.update_empty(|k, _| {
            for t in &list {
                let key = t.tag_key.as_deref().ok_or_else(|| bad("need a TagKey each"))?;
                let value = t.tag_value.as_deref().unwrap_or_default();
                if key.is_empty()
                    || key.len() > 128
                    || key.starts_with("acs:")
                    || key.starts_with("aliyun")
                    || value.len() > 256
                {
                    return Err(bad(
                        "keys must be 1 to 128 characters, not starting with acs: or aliyun; values at most 256",
                    ));
                }
                k.tags.insert(key, value);
            }
            if k.tags.len() > 20 {
                return Err(bad("are at most 20 per key"));
            }
            Ok(())
        })
        .await
    }

    async fn untag(&self) -> Result<Value, ApiError> {
        let keys: Vec<String> = serde_json::from_str(self.p.require("TagKeys")?)
            .map_err(|_| ApiError::new(400, "InvalidParameter.TagKeys", "TagKeys must be a JSON array of strings."))?;
        self.update_empty(|k, _| {
            for key in &keys {
                k.tags.remove(key);
            }
            Ok(())
        })
        .await
    }

    async fn list_tags(&self) -> Result<Value, ApiError> {
        let k = self.key().await?;
        let tags: Vec<Value> =
            k.tags.iter().map(|(key, v)| json!({"KeyId": k.id, "TagKey": key, "TagValue": v})).collect();
        Ok(json!({"Tags": {"Tag": tags}}))
    }

    async fn encrypt(&self) -> Result<Value, ApiError> {
        let k = self.usable_key("KeyId").await?;
        let pt = self.p.require("Plaintext")?;
        if pt.len() > MAX_PLAINTEXT {
            return Err(ApiError::invalid(
                "Plaintext",
                format!("at most {MAX_PLAINTEXT} bytes; encrypt larger data with GenerateDataKey"),
            ));
        }
        let (blob, vid) = keystore::encrypt(self.keys, &k, &context(self.p, "EncryptionContext")?, pt.as_bytes())?;
        Ok(json!({"KeyId": k.id, "KeyVersionId": vid, "CiphertextBlob": blob}))
    }

    async fn decrypt(&self) -> Result<Value, ApiError> {
        let blob = self.p.require("CiphertextBlob")?;
        let (k, vid, pt) =
            keystore::decrypt(&self.ctx.store, self.keys, self.account(), blob, &context(self.p, "EncryptionContext")?)
                .await?;
        let text = String::from_utf8(pt.to_vec()).map_err(|_| ApiError::internal())?;
        Ok(json!({"KeyId": k.id, "KeyVersionId": vid, "Plaintext": text}))
    }

    async fn generate_data_key(&self, with_plaintext: bool) -> Result<Value, ApiError> {
        let k = self.usable_key("KeyId").await?;
        let n = match (self.p.int("NumberOfBytes", 1, 1024)?, self.p.get("KeySpec").filter(|s| !s.is_empty())) {
            (Some(n), _) => n as usize,
            (None, None | Some("AES_256")) => 32,
            (None, Some("AES_128")) => 16,
            (None, Some(other)) => {
                return Err(ApiError::invalid("KeySpec", format!("{other}: use AES_256 or AES_128")));
            }
        };
        let mut dk = zeroize::Zeroizing::new(vec![0u8; n]);
        rand::rng().fill_bytes(&mut dk);
        // As in Alibaba KMS: the blob holds the base64 of the data key, which Decrypt returns.
        let b64 = zeroize::Zeroizing::new(B64.encode(dk.as_slice()));
        let (blob, vid) = keystore::encrypt(self.keys, &k, &context(self.p, "EncryptionContext")?, b64.as_bytes())?;
        let mut v = json!({"KeyId": k.id, "KeyVersionId": vid, "CiphertextBlob": blob});
        if with_plaintext {
            v["Plaintext"] = Value::from(b64.as_str());
        }
        Ok(v)
    }

    async fn re_encrypt(&self) -> Result<Value, ApiError> {
        let blob = self.p.require("CiphertextBlob")?;
        let (_, _, pt) = keystore::decrypt(
            &self.ctx.store,
            self.keys,
            self.account(),
            blob,
            &context(self.p, "SourceEncryptionContext")?,
        )
        .await?;
        let dest = self.usable_key("DestinationKeyId").await?;
        let (blob, vid) = keystore::encrypt(self.keys, &dest, &context(self.p, "DestinationEncryptionContext")?, &pt)?;
        Ok(json!({"KeyId": dest.id, "KeyVersionId": vid, "CiphertextBlob": blob}))
    }
}
