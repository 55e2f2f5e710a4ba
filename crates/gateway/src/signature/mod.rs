//! Alibaba Cloud RPC request signatures, server and client side.
//!
//! - [`v1`]: HMAC-SHA1 over the sorted, doubly percent-encoded parameters (`Signature=` in the query).
//! - [`v3`]: ACS3-HMAC-SHA256 over a canonical request (`Authorization: ACS3-HMAC-SHA256 …`).
//! - [`oss`]: OSS v1 (HMAC-SHA1) and v4 (`OSS4-HMAC-SHA256`), header and presigned.
//! - [`s3`]: AWS SigV4 for S3 clients, header and presigned.
//!
//! Written here rather than taken from a crate: no maintained Rust crate implements Alibaba's
//! server-side verification, and these few functions are the heart of wire compatibility.

pub mod oss;
pub mod s3;
pub mod v1;
pub mod v3;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// RFC 3986 unreserved characters stay; every other byte becomes `%XX` (uppercase hex).
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// HMAC-SHA256 of `data` under `key` (the step every SHA-256 key derivation repeats).
pub(crate) fn hmac256(key: &[u8], data: &str) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Percent-encodes as both signature versions require: space → `%20`, `*` → `%2A`, `~` kept.
pub fn pct(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

#[cfg(test)]
mod tests {
    use super::pct;

    #[test]
    fn encodes_like_the_sdks() {
        assert_eq!(pct("a b*c~d-e_f.g"), "a%20b%2Ac~d-e_f.g");
        assert_eq!(pct("2016-02-23T12:46:24Z"), "2016-02-23T12%3A46%3A24Z");
        assert_eq!(pct("é/+="), "%C3%A9%2F%2B%3D");
    }
}
