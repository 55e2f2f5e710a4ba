//! The internal envelope API: what OSS, disks and databases use to encrypt customer data.
//!
//! A data key (256 bits) is generated under a customer's master key and kept, wrapped, beside the
//! data; the data is sealed with AES-256-GCM under the data key. Unwrapping a data key needs the
//! master key to be usable (a disabled key makes its data unreadable until re-enabled). Every data
//! key operation is an audit event, as a KMS call by the service on the customer's behalf.

use crate::keystore::{self, check_usable, load};
use crate::model::{Alias, AliasSpec};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use nimbus_api::{ApiError, AuditEvent, Auditor};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_core::ids;
use nimbus_core::region::Region;
use nimbus_core::secret::KeyProvider;
use nimbus_store::{Record, Store, StoreError};
use rand::RngCore;
use serde_json::{Map, Value};
use std::sync::Arc;
use zeroize::Zeroizing;

pub struct Envelope {
    pub store: Store,
    pub keys: Arc<dyn KeyProvider>,
    pub auditor: Arc<dyn Auditor>,
    pub region: Arc<Region>,
}

/// A data key: its plaintext (zeroed on drop) and its blob under the master key.
pub struct DataKey {
    pub plaintext: Zeroizing<[u8; 32]>,
    pub blob: String,
}

impl Envelope {
    async fn audit(&self, account: &str, service: &str, action: &str, key_id: &str, error: Option<&ApiError>) {
        let mut params = Map::new();
        params.insert("KeyId".into(), Value::from(key_id));
        self.auditor
            .record(AuditEvent {
                event_id: ids::request_id().to_lowercase(),
                event_time: iso8601(now_millis()),
                event_name: action.into(),
                event_source: self.region.endpoint_host("kms"),
                service_name: "Kms".into(),
                api_version: "2016-01-20".into(),
                event_rw: "Read".into(),
                acs_region: self.region.id.clone(),
                request_id: ids::request_id(),
                source_ip_address: format!("{service}.internal"),
                user_agent: Some(format!("nimbus-{service}")),
                account_id: Some(account.into()),
                principal_type: Some("service".into()),
                principal_id: Some(service.into()),
                principal_name: Some(service.into()),
                access_key_id: None,
                request_parameters: params,
                resources: vec![format!("acs:kms:{}:{account}:key/{key_id}", self.region.id)],
                http_status: if error.is_some() { 400 } else { 200 },
                error_code: error.map(|e| e.code.to_string()),
                error_message: error.map(|e| e.message.clone()),
            })
            .await;
    }

    /// The account's service-managed master key for `service` (alias `alias/acs/<service>`, a name
    /// customers cannot take), created on first use. Returns its key id.
    pub async fn managed_key(&self, account: &str, service: &str) -> Result<String, ApiError> {
        let name = format!("alias/acs/{service}");
        let id = crate::api::alias_id(account, &name);
        let aliases = self.store.repo::<Alias>();
        if let Some(a) = aliases.find(account, &id).await? {
            return Ok(a.spec.key_id);
        }
        let description = format!("Default master key of {service}, created and managed by the service");
        let key = self
            .store
            .repo::<crate::model::Key>()
            .create(&keystore::new_key(self.keys.as_ref(), account, &self.region.id, &description))
            .await?;
        let spec = AliasSpec {
            alias_arn: format!("acs:kms:{}:{account}:{name}", self.region.id),
            alias_name: name,
            key_id: key.id.clone(),
        };
        match aliases.create(&Record::new(id.clone(), account, &self.region.id, spec)).await {
            Ok(_) => Ok(key.id),
            // Another request made it first: use theirs (ours stays, unused and enabled).
            Err(StoreError::AlreadyExists) => Ok(aliases.get(account, &id).await?.spec.key_id),
            Err(e) => Err(e.into()),
        }
    }

    /// A new data key under `key_id` (of `account`), for `service` (e.g. `oss`).
    pub async fn generate_data_key(
        &self,
        account: &str,
        key_id: &str,
        context: &Map<String, Value>,
        service: &str,
    ) -> Result<DataKey, ApiError> {
        let r = async {
            let k = load(&self.store, account, key_id).await?;
            check_usable(&k)?;
            let k = keystore::rotate_if_due(&self.store, self.keys.as_ref(), k).await?;
            let mut dk = Zeroizing::new([0u8; 32]);
            rand::rng().fill_bytes(dk.as_mut());
            let (blob, _) = keystore::encrypt(self.keys.as_ref(), &k, context, dk.as_ref())?;
            Ok(DataKey { plaintext: dk, blob })
        }
        .await;
        self.audit(account, service, "GenerateDataKey", key_id, r.as_ref().err()).await;
        r
    }

    /// The plaintext of a data key blob (the master key must be usable).
    pub async fn decrypt_data_key(
        &self,
        account: &str,
        blob: &str,
        context: &Map<String, Value>,
        service: &str,
    ) -> Result<Zeroizing<[u8; 32]>, ApiError> {
        let key_id = crate::blob::header(blob).map(|h| h.0.key_id).unwrap_or_default();
        let r = async {
            let (_, _, pt) = keystore::decrypt(&self.store, self.keys.as_ref(), account, blob, context).await?;
            let arr: [u8; 32] =
                pt.as_slice().try_into().map_err(|_| ApiError::new(400, "InvalidCiphertext", "not a data key blob"))?;
            Ok(Zeroizing::new(arr))
        }
        .await;
        self.audit(account, service, "Decrypt", &key_id, r.as_ref().err()).await;
        r
    }
}

/// Seals `data` under a data key: `nonce (12) ‖ ciphertext ‖ tag`, with `aad` bound. Encrypts in
/// place in the output buffer: one copy of the data, no intermediate allocation.
pub fn seal(data_key: &[u8; 32], aad: &[u8], data: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::AeadInOut;
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(12 + data.len() + 16);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(data);
    let tag = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*data_key))
        .encrypt_inout_detached(&Nonce::from(nonce), aad, (&mut out[12..]).into())
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    out.extend_from_slice(&tag);
    out
}

/// Opens what [`seal`] made; `None` if it was altered or the key or `aad` differ.
pub fn open(data_key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let (nonce, ct) = sealed.split_at_checked(12)?;
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*data_key)).decrypt(&Nonce::from(nonce), Payload { msg: ct, aad }).ok()
}
