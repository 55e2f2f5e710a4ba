//! The region's Ed25519 trail key. Its seed is stored only wrapped by the root key
//! (`DIR/trail-signing.key.sealed`); the public key is written to `DIR/trail-public.key` (hex) so
//! anyone can verify digests.

use nimbus_core::secret::{KeyProvider, write_private_file};
use rand::RngCore;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use std::path::Path;

const PURPOSE: &str = "trail:ed25519-seed";

pub struct TrailKey {
    pair: Ed25519KeyPair,
}

impl TrailKey {
    pub fn load_or_create(dir: &Path, keys: &dyn KeyProvider) -> std::io::Result<TrailKey> {
        let sealed = dir.join("trail-signing.key.sealed");
        let seed: Vec<u8> = if sealed.exists() {
            let text = std::fs::read_to_string(&sealed)?;
            keys.root_key()
                .unwrap(PURPOSE, text.trim())
                .map_err(|e| std::io::Error::other(format!("unwrapping the trail key: {e}")))?
                .to_vec()
        } else {
            let mut seed = [0u8; 32];
            rand::rng().fill_bytes(&mut seed);
            write_private_file(&sealed, keys.root_key().wrap(PURPOSE, &seed).as_bytes())?;
            seed.to_vec()
        };
        let pair =
            Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| std::io::Error::other("bad trail key seed"))?;
        let key = TrailKey { pair };
        std::fs::write(dir.join("trail-public.key"), key.public_hex())?;
        Ok(key)
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.pair.public_key().as_ref())
    }

    pub fn sign(&self, msg: &[u8]) -> String {
        hex::encode(self.pair.sign(msg).as_ref())
    }
}

/// Checks a hex signature over `msg` with a hex public key.
pub fn verify_signature(public_hex: &str, msg: &[u8], sig_hex: &str) -> bool {
    match (hex::decode(public_hex), hex::decode(sig_hex)) {
        (Ok(pk), Ok(sig)) => UnparsedPublicKey::new(&ED25519, pk).verify(msg, &sig).is_ok(),
        _ => false,
    }
}
