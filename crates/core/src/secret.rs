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
    /// Adds a new root-key generation and makes it current (for this process and, through
    /// [`RootKey::refresh`], for a running region). Returns the new generation.
    fn rotate(&self) -> Result<u32, KeyError> {
        Err(KeyError::Malformed(format!("{}: this provider cannot rotate its root key yet", self.describe())))
    }
}

/// AES-256-GCM done by a device that keeps the key (a PKCS#11 token): the key never enters memory.
pub trait ExternalCipher: Send + Sync {
    fn encrypt(&self, nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String>;
    fn decrypt(&self, nonce: &[u8; 12], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, String>;
}

/// One root-key generation: key bytes in memory, or a key held by a device.
pub enum Cipher {
    /// Boxed: the expanded AES key schedule is large beside a device handle.
    Memory(Box<Aes256Gcm>),
    External(Box<dyn ExternalCipher>),
}

impl Cipher {
    pub fn memory(bytes: &[u8; 32]) -> Cipher {
        Cipher::Memory(Box::new(Aes256Gcm::new(&Key::<Aes256Gcm>::from(*bytes))))
    }
}

/// Where a root key can find generations added since it was loaded (by a rotation in another
/// process): the provider re-reads its file or token.
pub type GenerationSource = Box<dyn Fn() -> Result<Vec<(u32, Cipher)>, KeyError> + Send + Sync>;

struct Ring {
    current: u32,
    ciphers: std::collections::BTreeMap<u32, std::sync::Arc<Cipher>>,
}

/// The region root key: one or more *generations* (a rotation adds one and makes it current), in
/// memory (key file, passphrase) or held by a token (PKCS#11). Wrapped values name the generation
/// that wrapped them, so old values keep unwrapping after a rotation and a rotation can re-wrap
/// them at leisure while the region runs.
pub struct RootKey {
    ring: std::sync::RwLock<Ring>,
    source: Option<GenerationSource>,
}

const WRAP_V1: u8 = 1;
/// Version 2: `2 ‖ generation (u32, big-endian) ‖ nonce (12) ‖ ciphertext+tag`.
const WRAP_V2: u8 = 2;

impl RootKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self::with_generations(vec![(1, Cipher::memory(bytes))], None)
    }

    /// A root key held by a device; wrapping and unwrapping happen there.
    pub fn external(cipher: Box<dyn ExternalCipher>) -> Self {
        Self::with_generations(vec![(1, Cipher::External(cipher))], None)
    }

    /// Several generations, the highest current; `source` finds generations added later.
    pub fn with_generations(gens: Vec<(u32, Cipher)>, source: Option<GenerationSource>) -> Self {
        let current = gens.iter().map(|(g, _)| *g).max().unwrap_or(1);
        let ciphers = gens.into_iter().map(|(g, c)| (g, std::sync::Arc::new(c))).collect();
        RootKey { ring: std::sync::RwLock::new(Ring { current, ciphers }), source }
    }

    /// The generation new values are wrapped with.
    pub fn current_generation(&self) -> u32 {
        self.ring.read().unwrap_or_else(|p| p.into_inner()).current
    }

    /// Picks up generations added since loading (a rotation by another process). Returns true if
    /// the current generation changed.
    pub fn refresh(&self) -> bool {
        let Some(source) = &self.source else { return false };
        let Ok(gens) = source() else { return false };
        let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
        let before = ring.current;
        for (g, c) in gens {
            ring.ciphers.entry(g).or_insert_with(|| std::sync::Arc::new(c));
            ring.current = ring.current.max(g);
        }
        ring.current != before
    }

    fn cipher(&self, generation: u32) -> Option<std::sync::Arc<Cipher>> {
        if let Some(c) = self.ring.read().unwrap_or_else(|p| p.into_inner()).ciphers.get(&generation) {
            return Some(c.clone());
        }
        self.refresh();
        self.ring.read().unwrap_or_else(|p| p.into_inner()).ciphers.get(&generation).cloned()
    }

    /// Wraps `plaintext` for `purpose` (associated data, e.g. `accesskey:LTAI…`) with the current
    /// generation; hex-encoded for TEXT columns.
    pub fn wrap(&self, purpose: &str, plaintext: &[u8]) -> String {
        let (generation, cipher) = {
            let ring = self.ring.read().unwrap_or_else(|p| p.into_inner());
            (ring.current, ring.ciphers.get(&ring.current).cloned().expect("the current generation is in the ring"))
        };
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = match cipher.as_ref() {
            Cipher::Memory(c) => c
                .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: purpose.as_bytes() })
                .expect("AES-GCM encryption of an in-memory buffer cannot fail"),
            // A token that cannot encrypt is a broken root of trust: there is nothing sound to
            // return. Inside a request this becomes an InternalError; at start-up it stops the region.
            Cipher::External(c) => c
                .encrypt(&nonce, purpose.as_bytes(), plaintext)
                .unwrap_or_else(|e| panic!("the root key's token failed to encrypt: {e}")),
        };
        let mut out = Vec::with_capacity(1 + 4 + 12 + ct.len());
        out.push(WRAP_V2);
        out.extend_from_slice(&generation.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        hex::encode(out)
    }

    /// The generation that wrapped `wrapped`, if it is well-formed.
    pub fn generation_of(wrapped: &str) -> Option<u32> {
        let raw = hex::decode(wrapped).ok()?;
        match *raw.first()? {
            WRAP_V1 => Some(1),
            WRAP_V2 => Some(u32::from_be_bytes(raw.get(1..5)?.try_into().ok()?)),
            _ => None,
        }
    }

    pub fn unwrap(&self, purpose: &str, wrapped: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let raw = hex::decode(wrapped).map_err(|_| KeyError::Unwrap)?;
        let (generation, rest) = match raw.first() {
            Some(&WRAP_V1) => (1, &raw[1..]),
            Some(&WRAP_V2) if raw.len() > 5 => {
                (u32::from_be_bytes(raw[1..5].try_into().map_err(|_| KeyError::Unwrap)?), &raw[5..])
            }
            _ => return Err(KeyError::Unwrap),
        };
        if rest.len() < 12 + 16 {
            return Err(KeyError::Unwrap);
        }
        let cipher = self.cipher(generation).ok_or(KeyError::Unwrap)?;
        let nonce: [u8; 12] = rest[..12].try_into().map_err(|_| KeyError::Unwrap)?;
        let pt = match cipher.as_ref() {
            Cipher::Memory(c) => c
                .decrypt(&Nonce::from(nonce), Payload { msg: &rest[12..], aad: purpose.as_bytes() })
                .map_err(|_| KeyError::Unwrap)?,
            Cipher::External(c) => c.decrypt(&nonce, purpose.as_bytes(), &rest[12..]).map_err(|_| KeyError::Unwrap)?,
        };
        Ok(Zeroizing::new(pt))
    }

    pub fn unwrap_string(&self, purpose: &str, wrapped: &str) -> Result<Secret, KeyError> {
        let bytes = self.unwrap(purpose, wrapped)?;
        let s = std::str::from_utf8(&bytes).map_err(|_| KeyError::Unwrap)?;
        Ok(Secret::new(s))
    }
}

/// The embedded default provider: a 0600 file created on first start, one line per root-key
/// generation, `<generation> <64 hex>` (a single bare hex line, the first format, is generation 1).
pub struct FileKeyProvider {
    key: RootKey,
    path: std::path::PathBuf,
}

fn read_key_file(path: &Path) -> Result<Vec<(u32, [u8; 32])>, KeyError> {
    let shown = path.display().to_string();
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|source| KeyError::Io { path: shown.clone(), source })?);
    let mut out = vec![];
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (generation, hexkey) = match line.split_once(' ') {
            Some((g, k)) => (g.parse::<u32>().map_err(|_| KeyError::Malformed(shown.clone()))?, k),
            None => (1, line),
        };
        let bytes = Zeroizing::new(hex::decode(hexkey).map_err(|_| KeyError::Malformed(shown.clone()))?);
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Malformed(shown.clone()))?;
        out.push((generation, arr));
    }
    if out.is_empty() {
        return Err(KeyError::Malformed(shown));
    }
    Ok(out)
}

fn write_key_file(path: &Path, gens: &[(u32, [u8; 32])]) -> std::io::Result<()> {
    let text = Zeroizing::new(gens.iter().map(|(g, k)| format!("{g} {}\n", hex::encode(k))).collect::<String>());
    write_private_file(path, text.as_bytes())
}

impl FileKeyProvider {
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let io = |source| KeyError::Io { path: shown.clone(), source };
        if !path.exists() {
            let mut bytes = Zeroizing::new([0u8; 32]);
            rand::rng().fill_bytes(bytes.as_mut());
            write_key_file(path, &[(1, *bytes)]).map_err(io)?;
        }
        check_private(path).map_err(|e| match e {
            Some(e) => io(e),
            None => KeyError::Permissions(shown.clone()),
        })?;
        let gens = read_key_file(path)?.into_iter().map(|(g, k)| (g, Cipher::memory(&k))).collect();
        let source_path = path.to_path_buf();
        let source: GenerationSource = Box::new(move || {
            Ok(read_key_file(&source_path)?.into_iter().map(|(g, k)| (g, Cipher::memory(&k))).collect())
        });
        Ok(FileKeyProvider { key: RootKey::with_generations(gens, Some(source)), path: path.to_path_buf() })
    }
}

impl KeyProvider for FileKeyProvider {
    fn root_key(&self) -> &RootKey {
        &self.key
    }
    fn describe(&self) -> String {
        format!("key file {}", self.path.display())
    }
    fn rotate(&self) -> Result<u32, KeyError> {
        let mut gens = read_key_file(&self.path)?;
        let next = gens.iter().map(|(g, _)| *g).max().unwrap_or(0) + 1;
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        gens.push((next, *bytes));
        write_key_file(&self.path, &gens)
            .map_err(|source| KeyError::Io { path: self.path.display().to_string(), source })?;
        self.key.refresh();
        Ok(next)
    }
}

/// The root key sealed under a passphrase: `DIR/root.key.sealed` holds each root-key generation
/// encrypted with AES-256-GCM under a key-encryption key derived from the passphrase with Argon2id
/// (64 MiB, 3 passes). Without the passphrase the data directory holds no usable key material.
pub struct PassphraseKeyProvider {
    key: RootKey,
    path: std::path::PathBuf,
    kek: std::sync::Arc<Zeroizing<[u8; 32]>>,
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

/// The sealed file's generations, unsealed with `kek` (`sealed` is generation 1).
fn unseal_generations(path: &Path, kek: &[u8; 32]) -> Result<Vec<(u32, Cipher)>, KeyError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io { path: shown.clone(), source })?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|_| KeyError::Malformed(shown.clone()))?;
    let wrapping = RootKey::from_bytes(kek);
    let mut out = vec![];
    let mut entries = vec![(1u32, doc["sealed"].as_str().unwrap_or_default().to_string())];
    for g in doc["generations"].as_array().into_iter().flatten() {
        entries.push((g["gen"].as_u64().unwrap_or(0) as u32, g["sealed"].as_str().unwrap_or_default().to_string()));
    }
    for (generation, sealed) in entries {
        let root = wrapping.unwrap("root-key", &sealed)?;
        let arr: [u8; 32] = root.as_slice().try_into().map_err(|_| KeyError::Malformed(shown.clone()))?;
        out.push((generation, Cipher::memory(&arr)));
    }
    Ok(out)
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
        // The KEK stays in memory (as the root key does) so generations added by a rotation can be
        // read without asking for the passphrase again.
        let kek = std::sync::Arc::new(derive_kek(passphrase, &salt, memory, passes)?);
        let gens = unseal_generations(path, &kek)?;
        let (source_path, source_kek) = (path.to_path_buf(), kek.clone());
        let source: GenerationSource = Box::new(move || unseal_generations(&source_path, &source_kek));
        Ok(PassphraseKeyProvider { key: RootKey::with_generations(gens, Some(source)), path: path.to_path_buf(), kek })
    }
}

impl KeyProvider for PassphraseKeyProvider {
    fn root_key(&self) -> &RootKey {
        &self.key
    }
    fn describe(&self) -> String {
        format!("passphrase-sealed key {}", self.path.display())
    }
    fn rotate(&self) -> Result<u32, KeyError> {
        let shown = self.path.display().to_string();
        let text =
            std::fs::read_to_string(&self.path).map_err(|source| KeyError::Io { path: shown.clone(), source })?;
        let mut doc: serde_json::Value = serde_json::from_str(&text).map_err(|_| KeyError::Malformed(shown.clone()))?;
        let existing = unseal_generations(&self.path, &self.kek)?;
        let next = existing.iter().map(|(g, _)| *g).max().unwrap_or(0) + 1;
        let mut root = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(root.as_mut());
        let sealed = RootKey::from_bytes(&self.kek).wrap("root-key", root.as_ref());
        if !doc["generations"].is_array() {
            doc["generations"] = serde_json::json!([]);
        }
        if let Some(list) = doc["generations"].as_array_mut() {
            list.push(serde_json::json!({"gen": next, "sealed": sealed}));
        }
        write_private_file(&self.path, doc.to_string().as_bytes())
            .map_err(|source| KeyError::Io { path: shown, source })?;
        self.key.refresh();
        Ok(next)
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
    fn rotation_adds_a_generation_that_running_instances_pick_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("root.key");
        // The first file format: a single hex line is generation 1.
        write_private_file(&p, hex::encode([5u8; 32]).as_bytes()).expect("legacy");
        let admin = FileKeyProvider::load_or_create(&p).expect("load");
        let region = FileKeyProvider::load_or_create(&p).expect("load");
        let old = region.root_key().wrap("x", b"before");
        assert_eq!(RootKey::generation_of(&old), Some(1));
        assert_eq!(admin.rotate().expect("rotate"), 2);
        let new = admin.root_key().wrap("x", b"after");
        assert_eq!(RootKey::generation_of(&new), Some(2));
        assert_eq!(admin.root_key().unwrap("x", &old).expect("old still opens").as_slice(), b"before");
        // The region has never seen generation 2: it loads it on first sight.
        assert_eq!(region.root_key().unwrap("x", &new).expect("picked up").as_slice(), b"after");
        assert_eq!(region.root_key().current_generation(), 2);
        assert_eq!(FileKeyProvider::load_or_create(&p).expect("reload").root_key().current_generation(), 2);

        let sp = dir.path().join("root.key.sealed");
        let a = PassphraseKeyProvider::load_or_create(&sp, "correct horse battery").expect("create");
        let w1 = a.root_key().wrap("y", b"one");
        assert_eq!(a.rotate().expect("rotate"), 2);
        let b = PassphraseKeyProvider::load_or_create(&sp, "correct horse battery").expect("unseal both");
        assert_eq!(b.root_key().current_generation(), 2);
        assert_eq!(b.root_key().unwrap("y", &w1).expect("gen 1").as_slice(), b"one");
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
