//! Signature V3: `ACS3-HMAC-SHA256` (the default of alibabacloud-tea-openapi).
//!
//! ```text
//! CanonicalRequest = METHOD \n URI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n PayloadHash
//! StringToSign     = "ACS3-HMAC-SHA256" \n hex(SHA256(CanonicalRequest))
//! Signature        = hex(HMAC-SHA256(secret, StringToSign))
//! ```
//! CanonicalHeaders has one `name:trimmed-value\n` line per signed header, sorted; repeated headers
//! are joined with `,`.

use super::pct;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = hmac::Hmac<Sha256>;

pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// hex SHA-256 of `body`: the `x-acs-content-sha256` value.
pub fn payload_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// A parsed `Authorization: ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…` header.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization {
    pub algorithm: String,
    pub access_key_id: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses the header; `None` when it is not a well-formed ACS3 authorization.
pub fn parse_authorization(value: &str) -> Option<Authorization> {
    let (algorithm, rest) = value.trim().split_once(' ')?;
    if !algorithm.starts_with("ACS3-") {
        return None;
    }
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k.trim() {
            "Credential" => cred = Some(v.trim().to_string()),
            "SignedHeaders" => signed = Some(v.trim().to_string()),
            "Signature" => sig = Some(v.trim().to_string()),
            _ => {}
        }
    }
    let signed_headers: Vec<String> =
        signed?.split(';').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect();
    let access_key_id = cred.filter(|c| !c.is_empty())?;
    let signature = sig.filter(|s| !s.is_empty())?;
    if signed_headers.is_empty() {
        return None;
    }
    Some(Authorization { algorithm: algorithm.to_string(), access_key_id, signed_headers, signature })
}

/// The canonical query: `pct(name)=pct(value)` sorted, joined by `&` (empty values keep their `=`).
pub fn canonical_query<'a, I: IntoIterator<Item = (&'a str, &'a str)>>(query: I) -> String {
    let mut pairs: Vec<(String, String)> = query.into_iter().map(|(k, v)| (pct(k), pct(v))).collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// The canonical request. `header_value(name)` returns every value of a (lowercase) header.
pub fn canonical_request<'a, F>(
    method: &str,
    uri: &str,
    canonical_query: &str,
    signed_headers: &[String],
    mut header_values: F,
    payload_hash: &str,
) -> String
where
    F: FnMut(&str) -> Vec<&'a str>,
{
    let mut names: Vec<&String> = signed_headers.iter().collect();
    names.sort();
    names.dedup();
    let mut headers = String::new();
    for n in &names {
        let vals: Vec<&str> = header_values(n).into_iter().map(str::trim).collect();
        headers.push_str(n);
        headers.push(':');
        headers.push_str(&vals.join(","));
        headers.push('\n');
    }
    let signed = names.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(";");
    format!("{method}\n{uri}\n{canonical_query}\n{headers}\n{signed}\n{payload_hash}")
}

pub fn string_to_sign(algorithm: &str, canonical_request: &str) -> String {
    format!("{algorithm}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())))
}

fn mac(secret: &str, string_to_sign: &str) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    m.update(string_to_sign.as_bytes());
    m
}

pub fn sign(secret: &str, string_to_sign: &str) -> String {
    hex::encode(mac(secret, string_to_sign).finalize().into_bytes())
}

/// Constant-time check of a client's hex `signature`.
pub fn verify(secret: &str, string_to_sign: &str, signature: &str) -> bool {
    match hex::decode(signature.trim()) {
        Ok(raw) => mac(secret, string_to_sign).verify_slice(&raw).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector of the wire reference §1.5.
    #[test]
    fn reference_vector() {
        let q = canonical_query([("InstanceIds", "[\"i-abc\"]"), ("RegionId", "cn-hangzhou"), ("PageSize", "10")]);
        assert_eq!(q, "InstanceIds=%5B%22i-abc%22%5D&PageSize=10&RegionId=cn-hangzhou");
        let headers = [
            ("host", "ecs.cn-hangzhou.aliyuncs.com"),
            ("x-acs-action", "DescribeInstances"),
            ("x-acs-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("x-acs-date", "2024-01-01T12:00:00Z"),
            ("x-acs-signature-nonce", "3ee8c1b883d344afa94f4e0ad82fd6cf"),
            ("x-acs-version", "2014-05-26"),
        ];
        let signed: Vec<String> = headers.iter().rev().map(|(k, _)| k.to_string()).collect();
        let cr = canonical_request(
            "POST",
            "/",
            &q,
            &signed,
            |n| headers.iter().filter(|(k, _)| *k == n).map(|(_, v)| *v).collect(),
            &payload_hash(b""),
        );
        assert_eq!(
            cr,
            "POST\n/\nInstanceIds=%5B%22i-abc%22%5D&PageSize=10&RegionId=cn-hangzhou\nhost:ecs.cn-hangzhou.aliyuncs.com\nx-acs-action:DescribeInstances\nx-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-acs-date:2024-01-01T12:00:00Z\nx-acs-signature-nonce:3ee8c1b883d344afa94f4e0ad82fd6cf\nx-acs-version:2014-05-26\n\nhost;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sts = string_to_sign(ALGORITHM, &cr);
        let sig = "b37266efa75abaa092cab4074c76f4856b2017a89b7e1b092c463a6ad9204ef6";
        assert_eq!(sign("testsecret", &sts), sig);
        assert!(verify("testsecret", &sts, sig));
        assert!(!verify("other", &sts, sig));
    }

    #[test]
    fn parses_authorization() {
        let a =
            parse_authorization("ACS3-HMAC-SHA256 Credential=LTAIabc,SignedHeaders=host;x-acs-action,Signature=00ff")
                .expect("parses");
        assert_eq!(a.access_key_id, "LTAIabc");
        assert_eq!(a.signed_headers, ["host", "x-acs-action"]);
        assert!(parse_authorization("Bearer x").is_none());
        assert!(parse_authorization("ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=1").is_none());
        assert!(parse_authorization("ACS3-HMAC-SHA256 garbage").is_none());
    }
}
