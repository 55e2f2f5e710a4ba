//! The region's private CA and the TLS certificates it signs.
//!
//! The CA is made on first start: `ca.pem` (public, give it to clients) and `ca-key.sealed` (its
//! private key wrapped by the region root key, never stored in plaintext). The server certificate is
//! issued afresh at every start for the names and addresses the region serves, so a changed
//! `--api-addr` never leaves a certificate that does not match.

use anyhow::{Context, Result};
use nimbus_core::secret::{KeyProvider, write_private_file};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

const CA_KEY_PURPOSE: &str = "tls:ca-key";

pub struct Pki {
    pub ca_pem: String,
    ca_key: KeyPair,
    region: String,
}

/// The CA's parameters. Rebuilt identically at every start: with the same key they give the same
/// issuer name and key identifier as the CA certificate in `ca.pem`.
fn ca_params(region: &str) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, format!("Nimbus {region} root CA"));
    p.distinguished_name.push(DnType::OrganizationName, "Nimbus");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    Ok(p)
}

impl Pki {
    /// Loads the CA from `dir`, or makes one on first start.
    pub fn load_or_create(dir: &Path, region: &str, keys: &dyn KeyProvider) -> Result<Pki> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.sealed");
        if cert_path.exists() && key_path.exists() {
            let ca_pem = std::fs::read_to_string(&cert_path).context("reading ca.pem")?;
            let sealed = std::fs::read_to_string(&key_path).context("reading ca-key.sealed")?;
            let key_pem = keys
                .root_key()
                .unwrap_string(CA_KEY_PURPOSE, sealed.trim())
                .context("unwrapping the CA key: the root key does not match this data directory")?;
            let ca_key = KeyPair::from_pem(key_pem.expose()).context("parsing the CA key")?;
            return Ok(Pki { ca_pem, ca_key, region: region.to_string() });
        }
        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let cert = ca_params(region)?.self_signed(&ca_key).context("self-signing the CA")?;
        let sealed = keys.root_key().wrap(CA_KEY_PURPOSE, ca_key.serialize_pem().as_bytes());
        write_private_file(&key_path, sealed.as_bytes()).context("writing ca-key.sealed")?;
        let ca_pem = cert.pem();
        std::fs::write(&cert_path, &ca_pem).context("writing ca.pem")?;
        Ok(Pki { ca_pem, ca_key, region: region.to_string() })
    }

    /// A server certificate for `dns_names` and `ips`, valid 397 days, and the rustls config that
    /// serves it (TLS 1.2 and 1.3, ALPN h2 and http/1.1).
    pub fn server_config(&self, dns_names: &[String], ips: &[IpAddr]) -> Result<Arc<ServerConfig>> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(dns_names.to_vec())?;
        p.subject_alt_names.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        p.distinguished_name.push(DnType::CommonName, dns_names.first().cloned().unwrap_or_else(|| "nimbus".into()));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::hours(1);
        p.not_after = now + time::Duration::days(397);
        let issuer = Issuer::new(ca_params(&self.region)?, &self.ca_key);
        let cert = p.signed_by(&key, &issuer).context("issuing the server certificate")?;
        let chain = vec![CertificateDer::from(cert.der().to_vec())];
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut cfg = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .context("building the TLS configuration")?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}
