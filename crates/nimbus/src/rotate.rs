//! Root key rotation, while the region runs: a new root-key generation becomes current, then every
//! value wrapped under an older generation is re-wrapped under it — AccessKey secrets, KMS key
//! material, TOTP seeds, the CA key and the trail signing key. Older generations stay readable (STS
//! tokens sealed before the rotation live until they expire), and a running region picks up the new
//! generation the first time it meets it, or at its periodic refresh.

use anyhow::{Context, Result};
use nimbus_core::secret::{KeyProvider, RootKey};
use nimbus_store::{Store, StoreError};
use serde_json::Value;
use std::path::Path;

#[derive(Debug, Default)]
pub struct Rotation {
    pub generation: u32,
    pub access_keys: usize,
    pub key_versions: usize,
    pub mfa_seeds: usize,
    pub files: usize,
}

fn rewrap(keys: &dyn KeyProvider, purpose: &str, wrapped: &str, to: u32) -> Result<Option<String>> {
    if RootKey::generation_of(wrapped) == Some(to) {
        return Ok(None);
    }
    let plain = keys.root_key().unwrap(purpose, wrapped).with_context(|| format!("unwrapping {purpose}"))?;
    Ok(Some(keys.root_key().wrap(purpose, &plain)))
}

/// Rotates (unless `rewrap_only`) and re-wraps everything under the current generation.
pub async fn rotate(dir: &Path, store: &Store, keys: &dyn KeyProvider, rewrap_only: bool) -> Result<Rotation> {
    let generation = if rewrap_only {
        keys.root_key().current_generation()
    } else {
        keys.rotate().context("adding a root key generation")?
    };
    let mut r = Rotation { generation, ..Default::default() };
    for k in store.all_access_keys().await? {
        if let Some(w) = rewrap(keys, &nimbus_iam::accounts::access_key_purpose(&k.id), &k.secret_wrapped, generation)?
        {
            store.set_access_key_wrapped(&k.id, &w).await?;
            r.access_keys += 1;
        }
    }
    for (kind, field) in [("kms.key", "MaterialWrapped"), ("ram.mfa", "SeedWrapped")] {
        let mut after: Option<String> = None;
        loop {
            let page = store.list_resources_all_accounts(kind, after.as_deref(), 200).await?;
            after = page.last().map(|x| x.id.clone());
            for mut res in page.iter().cloned() {
                // Re-read and retry on a concurrent change: the region keeps serving meanwhile.
                for _attempt in 0..5 {
                    let mut changed = 0;
                    if kind == "kms.key" {
                        let id = res.id.clone();
                        for v in res.spec["Versions"].as_array_mut().into_iter().flatten() {
                            let purpose = nimbus_kms::keystore::material_purpose(
                                &id,
                                v["KeyVersionId"].as_str().unwrap_or_default(),
                            );
                            if let Some(w) = rewrap(keys, &purpose, v[field].as_str().unwrap_or_default(), generation)?
                            {
                                v[field] = Value::from(w);
                                changed += 1;
                            }
                        }
                    } else {
                        let purpose = format!("totp:{}", res.spec["SerialNumber"].as_str().unwrap_or_default());
                        if let Some(w) =
                            rewrap(keys, &purpose, res.spec[field].as_str().unwrap_or_default(), generation)?
                        {
                            res.spec[field] = Value::from(w);
                            changed += 1;
                        }
                    }
                    if changed == 0 {
                        break;
                    }
                    match store.update_resource(&res).await {
                        Ok(_) => {
                            if kind == "kms.key" {
                                r.key_versions += changed
                            } else {
                                r.mfa_seeds += changed
                            }
                            break;
                        }
                        Err(StoreError::Conflict) => res = store.get_resource(&res.account_id, &res.id).await?,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            if page.len() < 200 {
                break;
            }
        }
    }
    for (file, purpose) in [("ca-key.sealed", "tls:ca-key"), ("trail-signing.key.sealed", "trail:ed25519-seed")] {
        let path = dir.join(file);
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Some(w) = rewrap(keys, purpose, text.trim(), generation)?
        {
            nimbus_core::secret::write_private_file(&path, w.as_bytes())?;
            r.files += 1;
        }
    }
    Ok(r)
}
