//! The Nimbus binary's library half: everything `main.rs` wires together, public so integration
//! tests can drive the same code (the signing client above all).
//!
//! - [`config`]: `nimbus up` settings from flags, environment and a TOML file.
//! - [`keys`]: the region root key provider (key file or passphrase-sealed).
//! - [`pki`]: the region's private CA and the TLS certificates it signs.
//! - [`bootstrap`]: first start (data directory, root account and AccessKey) and every later start.
//! - [`worker`]: the job runner; [`backup`]: the store-backup job.
//! - [`rotate`]: root key rotation while the region runs.
//! - [`up`]: brings the region up and down: every service is a `nimbus_api::Bundle`
//!   ([`up::bundles`]); the ECS host agent and metadata service are `nimbus-ecs-agent`'s.
//! - [`client`]: a signed RPC client (v1 HMAC-SHA1), used by the CLI and the tests.
//! - [`cli`]: `nimbus configure`, `nimbus <product> <Action>`, `nimbus admin …`.

pub mod backup;
pub mod bootstrap;
pub mod cli;
pub mod client;
pub mod config;
pub mod keys;
pub mod oss_client;
pub mod pkcs11;
pub mod pki;
pub mod rotate;
pub mod test_clock;
pub mod up;
pub mod worker;

/// Installs the one rustls crypto provider of the process (ring). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
