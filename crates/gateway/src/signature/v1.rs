//! Signature v1: `HMAC-SHA1`, `SignatureVersion=1.0`.
//!
//! StringToSign = METHOD `&` pct("/") `&` pct(canonicalized query), where the canonicalized query is
//! every parameter but `Signature` (empty values included), each name and value percent-encoded,
//! sorted by encoded name and joined `name=value` with `&`. The key is `secret + "&"`.

use super::pct;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// The string to sign for `method` over `params` (the `Signature` pair, if present, is skipped).
pub fn string_to_sign<'a, I>(method: &str, params: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut pairs: Vec<(String, String)> =
        params.into_iter().filter(|(k, _)| *k != "Signature").map(|(k, v)| (pct(k), pct(v))).collect();
    pairs.sort();
    let canonical = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    format!("{method}&{}&{}", pct("/"), pct(&canonical))
}

fn mac(secret: &str, string_to_sign: &str) -> HmacSha1 {
    let mut m = HmacSha1::new_from_slice(format!("{secret}&").as_bytes()).expect("HMAC accepts any key length");
    m.update(string_to_sign.as_bytes());
    m
}

/// The base64 signature of `string_to_sign` with `secret`.
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    B64.encode(mac(secret, string_to_sign).finalize().into_bytes())
}

/// Constant-time check of a client's base64 `signature`.
pub fn verify(secret: &str, string_to_sign: &str, signature: &str) -> bool {
    match B64.decode(signature.trim()) {
        Ok(raw) => mac(secret, string_to_sign).verify_slice(&raw).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two vectors of the wire reference §1.4.
    #[test]
    fn reference_vectors() {
        let classic = [
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ];
        let sts = string_to_sign("GET", classic);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(sign("testsecret", &sts), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");

        // Produced by aliyunsdkcore: note the empty SignatureType, signed all the same.
        let sdk = [
            ("Version", "2014-05-26"),
            ("Action", "DescribeInstances"),
            ("Format", "JSON"),
            ("InstanceIds", "[\"i-abc\",\"i-def\"]"),
            ("PageSize", "10"),
            ("RegionId", "cn-hangzhou"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureType", ""),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2024-01-01T12:00:00Z"),
            ("AccessKeyId", "testid"),
            ("Signature", "ignored"),
        ];
        let sts = string_to_sign("GET", sdk);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeInstances%26Format%3DJSON%26InstanceIds%3D%255B%2522i-abc%2522%252C%2522i-def%2522%255D%26PageSize%3D10%26RegionId%3Dcn-hangzhou%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureType%3D%26SignatureVersion%3D1.0%26Timestamp%3D2024-01-01T12%253A00%253A00Z%26Version%3D2014-05-26"
        );
        assert_eq!(sign("testsecret", &sts), "isbBx6fQPcJXqjM1V/5x6+gfJSs=");
        assert!(verify("testsecret", &sts, "isbBx6fQPcJXqjM1V/5x6+gfJSs="));
        assert!(!verify("wrongsecret", &sts, "isbBx6fQPcJXqjM1V/5x6+gfJSs="));
        assert!(!verify("testsecret", &sts, "not base64!"));
    }
}
