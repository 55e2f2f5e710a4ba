//! The ciphertext blob: self-describing, so `Decrypt` needs no KeyId and old key versions keep
//! decrypting after rotation.
//!
//! ```text
//! "NK1" ‖ len(key id) ‖ key id ‖ len(version id) ‖ version id ‖ nonce (12) ‖ AES-256-GCM(ciphertext ‖ tag)
//! ```
//! base64 on the wire. The AAD binds the key id, the version and the canonical EncryptionContext,
//! so a blob decrypts only under the context it was made with, and a header edited to point at
//! another key or version fails authentication.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use serde_json::{Map, Value};

const MAGIC: &[u8; 3] = b"NK1";

/// What a blob's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key_id: String,
    pub version_id: String,
}

/// The EncryptionContext as canonical bytes: a JSON object with keys sorted.
pub fn canonical_context(ctx: &Map<String, Value>) -> Vec<u8> {
    let sorted: std::collections::BTreeMap<&String, &Value> = ctx.iter().collect();
    serde_json::to_vec(&sorted).expect("a map of JSON values serializes")
}

fn aad(h: &Header, context: &[u8]) -> Vec<u8> {
    let mut a = b"nimbus-kms-v1\0".to_vec();
    a.extend_from_slice(h.key_id.as_bytes());
    a.push(0);
    a.extend_from_slice(h.version_id.as_bytes());
    a.push(0);
    a.extend_from_slice(context);
    a
}

pub fn seal(material: &[u8; 32], h: &Header, context: &[u8], plaintext: &[u8]) -> String {
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*material));
    let ct = cipher
        .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: &aad(h, context) })
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    let mut out = Vec::with_capacity(3 + 2 + h.key_id.len() + h.version_id.len() + 12 + ct.len());
    out.extend_from_slice(MAGIC);
    out.push(h.key_id.len() as u8);
    out.extend_from_slice(h.key_id.as_bytes());
    out.push(h.version_id.len() as u8);
    out.extend_from_slice(h.version_id.as_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    B64.encode(out)
}

/// The header of a base64 blob, without decrypting it.
pub fn header(blob: &str) -> Option<(Header, Vec<u8>)> {
    let raw = B64.decode(blob.trim()).ok()?;
    let rest = raw.strip_prefix(MAGIC.as_slice())?;
    let (&klen, rest) = rest.split_first()?;
    let (key_id, rest) = rest.split_at_checked(klen as usize)?;
    let (&vlen, rest) = rest.split_first()?;
    let (version_id, rest) = rest.split_at_checked(vlen as usize)?;
    if rest.len() < 12 + 16 {
        return None;
    }
    let h = Header {
        key_id: String::from_utf8(key_id.to_vec()).ok()?,
        version_id: String::from_utf8(version_id.to_vec()).ok()?,
    };
    Some((h, rest.to_vec()))
}

/// Decrypts the body of a blob (`nonce ‖ ciphertext ‖ tag`) under `h` and `context`.
pub fn open(material: &[u8; 32], h: &Header, context: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let (nonce, ct) = body.split_at_checked(12)?;
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*material))
        .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad: &aad(h, context) })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_and_binding() {
        let m = [9u8; 32];
        let h = Header { key_id: "key-abc".into(), version_id: "v-1".into() };
        let ctx = |v: Value| canonical_context(v.as_object().expect("object"));
        let c = ctx(json!({"b": "2", "a": "1"}));
        assert_eq!(c, ctx(json!({"a": "1", "b": "2"})), "order does not matter");
        let blob = seal(&m, &h, &c, b"hello");
        let (h2, body) = header(&blob).expect("header");
        assert_eq!(h2, h);
        assert_eq!(open(&m, &h, &c, &body).as_deref(), Some(&b"hello"[..]));
        assert!(open(&m, &h, &ctx(json!({"a": "1"})), &body).is_none(), "wrong context");
        let other = Header { key_id: "key-abc".into(), version_id: "v-2".into() };
        assert!(open(&m, &other, &c, &body).is_none(), "header edited to another version");
        assert!(open(&[8u8; 32], &h, &c, &body).is_none(), "other key material");
        assert!(header("not base64!").is_none() && header(&B64.encode(b"NK1")).is_none());
    }
}
