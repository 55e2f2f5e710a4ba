//! The PKCS#11 root key provider: the region root key is an AES-256 key generated inside a token
//! (tested with Debian's SoftHSM2), sensitive and not extractable. Wrapping and unwrapping are
//! AES-GCM operations the token performs; the key never enters this process's memory.

use anyhow::{Context, Result, bail};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use nimbus_core::secret::{ExternalCipher, KeyProvider, RootKey};
use std::path::Path;
use std::sync::Mutex;

const KEY_LABEL: &[u8] = b"nimbus-root-key";

struct TokenCipher {
    // The session serialises token operations; the context must outlive it.
    session: Mutex<Session>,
    key: ObjectHandle,
    _ctx: Pkcs11,
}

impl TokenCipher {
    fn run(&self, encrypt: bool, nonce: &[u8; 12], aad: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
        let mut iv = *nonce;
        let params = GcmParams::new(&mut iv, aad, 128.into()).map_err(|e| e.to_string())?;
        let mech = Mechanism::AesGcm(params);
        let session = self.session.lock().map_err(|_| "token session poisoned".to_string())?;
        let out = if encrypt { session.encrypt(&mech, self.key, data) } else { session.decrypt(&mech, self.key, data) };
        out.map_err(|e| e.to_string())
    }
}

impl ExternalCipher for TokenCipher {
    fn encrypt(&self, nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String> {
        self.run(true, nonce, aad, plaintext)
    }
    fn decrypt(&self, nonce: &[u8; 12], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, String> {
        self.run(false, nonce, aad, ciphertext)
    }
}

pub struct Pkcs11Provider {
    key: RootKey,
    describe: String,
}

impl KeyProvider for Pkcs11Provider {
    fn root_key(&self) -> &RootKey {
        &self.key
    }
    fn describe(&self) -> String {
        self.describe.clone()
    }
}

impl Pkcs11Provider {
    /// Opens token `label` through `module`, logs in with `pin`, and finds (or, the first time,
    /// generates) the root key.
    pub fn open(module: &Path, label: &str, pin: &str) -> Result<Pkcs11Provider> {
        let ctx = Pkcs11::new(module).with_context(|| format!("loading the PKCS#11 module {}", module.display()))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .context("initialising the PKCS#11 module")?;
        let slot = ctx
            .get_slots_with_token()?
            .into_iter()
            .find(|s| ctx.get_token_info(*s).is_ok_and(|t| t.label().trim() == label))
            .with_context(|| format!("no PKCS#11 token labelled {label:?}"))?;
        let session = ctx.open_rw_session(slot).context("opening a token session")?;
        session
            .login(UserType::User, Some(&AuthPin::from(pin.to_string())))
            .context("logging in to the token (wrong PIN?)")?;
        let find = [Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(KEY_LABEL.to_vec())];
        let key = match session.find_objects(&find)?.as_slice() {
            [k] => *k,
            [] => session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Token(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Encrypt(true),
                        Attribute::Decrypt(true),
                        Attribute::ValueLen(32.into()),
                        Attribute::KeyType(KeyType::AES),
                        Attribute::Label(KEY_LABEL.to_vec()),
                    ],
                )
                .context("generating the root key in the token")?,
            more => bail!("the token holds {} keys labelled nimbus-root-key; expected one", more.len()),
        };
        let cipher = TokenCipher { session: Mutex::new(session), key, _ctx: ctx };
        Ok(Pkcs11Provider {
            key: RootKey::external(Box::new(cipher)),
            describe: format!("PKCS#11 token {label:?} ({})", module.display()),
        })
    }
}
