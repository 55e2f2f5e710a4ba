//! KMS: master keys and envelope encryption.
//!
//! - [`api::Kms`]: the KMS API (2016-01-20): key lifecycle, aliases, versions and rotation,
//!   Encrypt/Decrypt/GenerateDataKey(+WithoutPlaintext)/ReEncrypt with EncryptionContext as AAD.
//! - [`envelope::Envelope`]: the internal API other services use (OSS server-side encryption, disk
//!   and database encryption): data keys generated and unwrapped under a master key, every use
//!   audited, and the data itself sealed with AES-256-GCM.
//! - [`keystore`]: master keys; the only code that unwraps key material (with the root key).
//! - [`blob`]: the self-describing ciphertext format.
//! - [`model`]: the stored rows (`kms.key`, `kms.alias`) as typed state (`nimbus_store::Repo`).

pub mod api;
pub mod blob;
pub mod envelope;
pub mod keystore;
pub mod model;

pub use api::Kms;
pub use envelope::Envelope;
