//! `aws-chunked` request bodies (S3 streaming uploads): `hex-size[;chunk-signature=sig]\r\n`
//! data `\r\n` … a zero-size chunk, then trailer lines (`x-amz-checksum-crc32:…`) and a blank
//! line. Signed chunks chain their signatures from the request's seed signature.

use crate::signature::s3;
use base64::Engine as _;
use nimbus_api::ApiError;
use sha2::{Digest, Sha256};

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What verifying chunk signatures needs: the signing key, the request's date and scope, and
/// the seed (the request signature).
pub struct ChunkSigning {
    pub key: Vec<u8>,
    pub amz_date: String,
    pub scope: String,
    pub seed: String,
}

fn bad(msg: &str) -> ApiError {
    ApiError::new(400, "InvalidRequest", format!("The aws-chunked body is malformed: {msg}."))
}

fn line(body: &[u8], at: &mut usize) -> Result<String, ApiError> {
    let rest = &body[*at..];
    let end = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(|| bad("a line is not terminated"))?;
    let s = std::str::from_utf8(&rest[..end]).map_err(|_| bad("a chunk header is not text"))?.to_string();
    *at += end + 2;
    Ok(s)
}

/// Decodes the body, verifying chunk signatures when `signing` is given and a trailing checksum
/// when one is sent.
pub fn decode(body: &[u8], signing: Option<&ChunkSigning>) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    let mut prev = signing.map(|s| s.seed.clone()).unwrap_or_default();
    loop {
        let header = line(body, &mut at)?;
        let (size_hex, ext) = header.split_once(';').unwrap_or((header.as_str(), ""));
        let size = usize::from_str_radix(size_hex.trim(), 16).map_err(|_| bad("a chunk size is not hex"))?;
        if at + size > body.len() {
            return Err(ApiError::new(400, "IncompleteBody", "The request body is shorter than its chunks declare."));
        }
        let data = &body[at..at + size];
        at += size;
        if let Some(s) = signing {
            let given = ext.trim().strip_prefix("chunk-signature=").ok_or_else(|| bad("a chunk has no signature"))?;
            let sts = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{prev}\n{EMPTY_SHA256}\n{}",
                s.amz_date,
                s.scope,
                hex::encode(Sha256::digest(data))
            );
            let expected = s3::sign(&s.key, &sts);
            if !crate::signature::oss::same(&expected, given) {
                return Err(ApiError::new(403, "SignatureDoesNotMatch", "A chunk signature does not match."));
            }
            prev = expected;
        }
        out.extend_from_slice(data);
        if size == 0 {
            break;
        }
        if body.get(at..at + 2) != Some(b"\r\n") {
            return Err(bad("a chunk is not followed by CRLF"));
        }
        at += 2;
    }
    // Trailers, then a blank line (or the end of the body).
    while at < body.len() {
        let l = line(body, &mut at)?;
        if l.is_empty() {
            break;
        }
        let Some((name, value)) = l.split_once(':') else { return Err(bad("a trailer is not name:value")) };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        let expected = match name.as_str() {
            "x-amz-checksum-crc32" => {
                Some(crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&out).to_be_bytes().to_vec())
            }
            "x-amz-checksum-crc32c" => {
                Some(crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&out).to_be_bytes().to_vec())
            }
            "x-amz-checksum-crc64nvme" => {
                Some(crc::Crc::<u64>::new(&crc::CRC_64_NVME).checksum(&out).to_be_bytes().to_vec())
            }
            "x-amz-checksum-sha256" => Some(Sha256::digest(&out).to_vec()),
            _ => None,
        };
        if let Some(e) = expected
            && base64::engine::general_purpose::STANDARD.encode(e) != value
        {
            return Err(ApiError::new(
                400,
                "BadDigest",
                format!("The {name} you specified did not match the calculated checksum."),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_with_trailer() {
        let crc = base64::engine::general_purpose::STANDARD
            .encode(crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(b"hello world").to_be_bytes());
        let body = format!("6\r\nhello \r\n5\r\nworld\r\n0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n");
        assert_eq!(decode(body.as_bytes(), None).expect("decodes"), b"hello world");
        let wrong = "6\r\nhello \r\n5\r\nworlD\r\n0\r\nx-amz-checksum-crc32:".to_string() + &crc + "\r\n\r\n";
        assert_eq!(decode(wrong.as_bytes(), None).expect_err("checksum").code, "BadDigest");
        assert_eq!(decode(b"6\r\nhel", None).expect_err("short").code, "IncompleteBody");
    }

    /// AWS's documented streaming example (SigV4 "Transferring Payload in Multiple Chunks"):
    /// three chained chunk signatures.
    #[test]
    fn signed_chunks_chain() {
        let key = s3::signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3");
        let signing = ChunkSigning {
            key,
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
        };
        let mut body =
            b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n".to_vec();
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(
            b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n",
        );
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(
            b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n",
        );
        assert_eq!(decode(&body, Some(&signing)).expect("AWS's example verifies").len(), 66560);
        let mut tampered = body.clone();
        tampered[100] = b'b';
        assert_eq!(decode(&tampered, Some(&signing)).expect_err("tampered").code, "SignatureDoesNotMatch");
    }
}
