//! Secrets: a string that never prints itself, and the region root key that wraps secrets at rest.
//!
//! The root key is the region's root of trust. Today it lives in a 0600 key file (the embedded
//! default); the KMS issue adds passphrase-sealed and PKCS#11 providers behind [`KeyProvider`].
//! Every stored secret (AccessKey secrets, TLS private keys) is wrapped with AES-256-GCM under it,
//! with the secret's purpose and owner as associated data so a wrapped value cannot be moved to
//! another row and still unwrap.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::RngCore;
use std::fmt;
use std::path::Path;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A secret string. `Debug` and `Display` print `<redacted>`; memory is zeroed on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret's text. Call only where the value is used (HMAC keys, the one-time display).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("root key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("root key file {0} is not 32 bytes of hex")]
    Malformed(String),
    #[error("root key file {0} is readable by group or others (mode must be 0600)")]
    Permissions(String),
    #[error("wrapped secret is corrupt or was wrapped for another purpose")]
    Unwrap,
}

/// Where the region root key comes from. One implementation today (a key file); the KMS issue adds
/// a passphrase-sealed key and a PKCS#11 token behind the same trait.
pub trait KeyProvider: Send + Sync {
    fn root_key(&self) -> &RootKey;
    fn describe(&self) -> String;
}

/// AES-256-GCM done by a device that keeps the key (a PKCS#11 token): the key never enters memory.
pub trait ExternalCipher: Send + Sync {
    fn encrypt(&self, nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String>;
    fn decrypt(&self, nonce: &[u8; 12], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, String>;
}

enum Cipher {
    Memory(Aes256Gcm),
    External(Box<dyn ExternalCipher>),
}

/// The 256-bit region root key: in memory (key file, passphrase) or held by a token (PKCS#11).
/// Both produce the same wrapped format.
pub struct RootKey {
    cipher: Cipher,
}

const WRAP_VERSION: u8 = 1;

impl RootKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        RootKey { cipher: Cipher::Memory(Aes256Gcm::new(&Key::<Aes256Gcm>::from(*bytes))) }
    }

    /// A root key held by a device; wrapping and unwrapping happen there.
    pub fn external(cipher: Box<dyn ExternalCipher>) -> Self {
        RootKey { cipher: Cipher::External(cipher) }
    }

    /// Wraps `plaintext` for `purpose` (associated data, e.g. `accesskey:LTAI…`).
    /// Output: version byte ‖ 12-byte nonce ‖ ciphertext+tag, hex-encoded for TEXT columns.
    pub fn wrap(&self, purpose: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = match &self.cipher {
            Cipher::Memory(c) => c
                .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: purpose.as_bytes() })
                .expect("AES-GCM encryption of an in-memory buffer cannot fail"),
            // A token that cannot encrypt is a broken root of trust: there is nothing sound to
            // return. Inside a request this becomes an InternalError; at start-up it stops the region.
            Cipher::External(c) => c
                .encrypt(&nonce, purpose.as_bytes(), plaintext)
                .unwrap_or_else(|e| panic!("the root key's token failed to encrypt: {e}")),
        };
        let mut out = Vec::with_capacity(1 + 12 + ct.len());
        out.push(WRAP_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        hex::encode(out)
    }

    pub fn unwrap(&self, purpose: &str, wrapped: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let raw = hex::decode(wrapped).map_err(|_| KeyError::Unwrap)?;
        if raw.len() < 1 + 12 + 16 || raw[0] != WRAP_VERSION {
            return Err(KeyError::Unwrap);
        }
        let nonce: [u8; 12] = raw[1..13].try_into().map_err(|_| KeyError::Unwrap)?;
        let pt = match &self.cipher {
            Cipher::Memory(c) => c
                .decrypt(&Nonce::from(nonce), Payload { msg: &raw[13..], aad: purpose.as_bytes() })
                .map_err(|_| KeyError::Unwrap)?,
            Cipher::External(c) => c.decrypt(&nonce, purpose.as_bytes(), &raw[13..]).map_err(|_| KeyError::Unwrap)?,
        };
        Ok(Zeroizing::new(pt))
    }

    pub fn unwrap_string(&self, purpose: &str, wrapped: &str) -> Result<Secret, KeyError> {
        let bytes = self.unwrap(purpose, wrapped)?;
        let s = std::str::from_utf8(&bytes).map_err(|_| KeyError::Unwrap)?;
        Ok(Secret::new(s))
    }
}

/// The embedded default provider: 32 random bytes, hex, in a 0600 file created on first start.
pub struct FileKeyProvider {
    key: RootKey,
    path: String,
}

impl FileKeyProvider {
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let io = |source| KeyError::Io { path: shown.clone(), source };
        if !path.exists() {
            let mut bytes = Zeroizing::new([0u8; 32]);
            rand::rng().fill_bytes(bytes.as_mut());
            write_private_file(path, hex::encode(bytes.as_ref()).as_bytes()).map_err(io)?;
        }
        check_private(path).map_err(|e| match e {
            Some(e) => io(e),
            None => KeyError::Permissions(shown.clone()),
        })?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| KeyError::Malformed(shown.clone()))?);
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Malformed(shown.clone()))?;
        Ok(FileKeyProvider { key: RootKey::from_bytes(&arr), path: shown })
    }
}

impl KeyProvider for FileKeyProvider {
    fn root_key(&self) -> &RootKey {
        &self.key
    }
    fn describe(&self) -> String {
        format!("key file {}", self.path)
    }
}

/// The root key sealed under a passphrase: `DIR/root.key.sealed` holds the root key encrypted with
/// AES-256-GCM under a key-encryption key derived from the passphrase with Argon2id (64 MiB, 3
/// passes). Without the passphrase the data directory holds no usable key material.
pub struct PassphraseKeyProvider {
    key: RootKey,
    path: String,
}

const KEK_MEMORY_KIB: u32 = 64 * 1024;
const KEK_PASSES: u32 = 3;

fn derive_kek(passphrase: &str, salt: &[u8], memory_kib: u32, passes: u32) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let params = argon2::Params::new(memory_kib, passes, 1, Some(32)).map_err(|_| KeyError::Unwrap)?;
    let mut kek = Zeroizing::new([0u8; 32]);
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, kek.as_mut())
        .map_err(|_| KeyError::Unwrap)?;
    Ok(kek)
}

impl PassphraseKeyProvider {
    /// Unseals `path`, or on first start creates a new root key sealed under `passphrase`.
    /// A wrong passphrase is `KeyError::Unwrap`.
    pub fn load_or_create(path: &Path, passphrase: &str) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let io = |source| KeyError::Io { path: shown.clone(), source };
        if passphrase.chars().count() < 12 {
            return Err(KeyError::Malformed(format!("{shown}: the passphrase must be at least 12 characters")));
        }
        if !path.exists() {
            let mut root = Zeroizing::new([0u8; 32]);
            rand::rng().fill_bytes(root.as_mut());
            let mut salt = [0u8; 16];
            rand::rng().fill_bytes(&mut salt);
            let kek = derive_kek(passphrase, &salt, KEK_MEMORY_KIB, KEK_PASSES)?;
            let sealed = RootKey::from_bytes(&kek).wrap("root-key", root.as_ref());
            let doc = serde_json::json!({"kdf": "argon2id", "memory_kib": KEK_MEMORY_KIB, "passes": KEK_PASSES, "salt": hex::encode(salt), "sealed": sealed});
            write_private_file(path, doc.to_string().as_bytes()).map_err(io)?;
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|_| KeyError::Malformed(shown.clone()))?;
        let salt =
            hex::decode(doc["salt"].as_str().unwrap_or_default()).map_err(|_| KeyError::Malformed(shown.clone()))?;
        let memory = doc["memory_kib"].as_u64().unwrap_or(KEK_MEMORY_KIB as u64) as u32;
        let passes = doc["passes"].as_u64().unwrap_or(KEK_PASSES as u64) as u32;
        let kek = derive_kek(passphrase, &salt, memory, passes)?;
        let root = RootKey::from_bytes(&kek).unwrap("root-key", doc["sealed"].as_str().unwrap_or_default())?;
        let arr: [u8; 32] = root.as_slice().try_into().map_err(|_| KeyError::Malformed(shown.clone()))?;
        Ok(PassphraseKeyProvider { key: RootKey::from_bytes(&arr), path: shown })
    }
}

impl KeyProvider for PassphraseKeyProvider {
    fn root_key(&self) -> &RootKey {
        &self.key
    }
    fn describe(&self) -> String {
        format!("passphrase-sealed key {}", self.path)
    }
}

/// Writes `contents` to a new file readable only by its owner (0600), atomically (temp file + rename),
/// so a crash never leaves a half-written secret behind.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `Ok(())` when the file is private to its owner; `Err(None)` when it is group/other readable.
fn check_private(path: &Path) -> Result<(), Option<std::io::Error>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(Some)?.permissions().mode();
    if mode & 0o077 != 0 { Err(None) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn wrap_round_trips_and_binds_purpose() {
        let k = RootKey::from_bytes(&[7u8; 32]);
        let w = k.wrap("accesskey:LTAI1", b"s3cret");
        assert!(!w.contains("s3cret"));
        assert_eq!(k.unwrap("accesskey:LTAI1", &w).expect("unwraps").as_slice(), b"s3cret");
        assert!(k.unwrap("accesskey:LTAI2", &w).is_err(), "moved to another row must fail");
        let other = RootKey::from_bytes(&[8u8; 32]);
        assert!(other.unwrap("accesskey:LTAI1", &w).is_err(), "another root key must fail");
        let mut tampered = w.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        assert!(k.unwrap("accesskey:LTAI1", std::str::from_utf8(&tampered).expect("hex")).is_err());
    }

    #[test]
    fn passphrase_sealed_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("root.key.sealed");
        assert!(matches!(PassphraseKeyProvider::load_or_create(&p, "short"), Err(KeyError::Malformed(_))));
        let a = PassphraseKeyProvider::load_or_create(&p, "correct horse battery").expect("create");
        let w = a.root_key().wrap("x", b"y");
        let b = PassphraseKeyProvider::load_or_create(&p, "correct horse battery").expect("unseal");
        assert_eq!(b.root_key().unwrap("x", &w).expect("same key").as_slice(), b"y");
        assert!(matches!(PassphraseKeyProvider::load_or_create(&p, "wrong horse battery"), Err(KeyError::Unwrap)));
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(text.contains("argon2id") && !text.contains("correct horse"));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("root.key");
        let a = FileKeyProvider::load_or_create(&p).expect("create");
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let w = a.root_key().wrap("x", b"y");
        let b = FileKeyProvider::load_or_create(&p).expect("reload");
        assert_eq!(b.root_key().unwrap("x", &w).expect("same key").as_slice(), b"y");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(FileKeyProvider::load_or_create(&p), Err(KeyError::Permissions(_))));
    }
}
