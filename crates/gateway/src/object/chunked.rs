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

/// A running checksum of the decoded body, for one trailer name.
enum Sum {
    Crc32(crc::Digest<'static, u32>),
    Crc32c(crc::Digest<'static, u32>),
    Crc64(crc::Digest<'static, u64>),
    Sha256(Sha256),
}

static CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
static CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
static CRC64NVME: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_NVME);

impl Sum {
    fn for_trailer(name: &str) -> Option<Sum> {
        Some(match name {
            "x-amz-checksum-crc32" => Sum::Crc32(CRC32.digest()),
            "x-amz-checksum-crc32c" => Sum::Crc32c(CRC32C.digest()),
            "x-amz-checksum-crc64nvme" => Sum::Crc64(CRC64NVME.digest()),
            "x-amz-checksum-sha256" => Sum::Sha256(Sha256::new()),
            _ => return None,
        })
    }
    fn update(&mut self, data: &[u8]) {
        match self {
            Sum::Crc32(d) | Sum::Crc32c(d) => d.update(data),
            Sum::Crc64(d) => d.update(data),
            Sum::Sha256(d) => d.update(data),
        }
    }
    fn finish(self) -> Vec<u8> {
        match self {
            Sum::Crc32(d) | Sum::Crc32c(d) => d.finalize().to_be_bytes().to_vec(),
            Sum::Crc64(d) => d.finalize().to_be_bytes().to_vec(),
            Sum::Sha256(d) => d.finalize().to_vec(),
        }
    }
}

enum State {
    /// Waiting for a `size[;chunk-signature=…]` line.
    Header,
    /// Inside a chunk's data: bytes left, and its signature to check at the end.
    Data {
        left: usize,
        signature: Option<String>,
        hash: Sha256,
    },
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the zero-size chunk: trailer lines until a blank line.
    Trailers,
    Done,
}

/// Decodes an `aws-chunked` body as it arrives ([`Decoder::push`] pieces, then
/// [`Decoder::finish`]): chunk signatures are checked at the end of each chunk and the trailing
/// checksum at the end, so memory stays at one chunk header however large the body. Decoded data
/// is handed on before its chunk's signature is checked; a failure later ends the body with an
/// error, so nothing it fed is ever committed.
pub struct Decoder {
    signing: Option<ChunkSigning>,
    prev: String,
    pending: Vec<u8>,
    state: State,
    /// The checksums trailers may name: the one `x-amz-trailer` declared, or all of them.
    sums: Vec<(String, Sum)>,
    decoded: u64,
}

const TRAILERS: [&str; 4] =
    ["x-amz-checksum-crc32", "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme", "x-amz-checksum-sha256"];
/// Longest chunk header or trailer line accepted.
const MAX_LINE: usize = 4096;

impl Decoder {
    /// `trailer`: the `x-amz-trailer` header, when sent (only that checksum is then computed).
    pub fn new(signing: Option<ChunkSigning>, trailer: Option<&str>) -> Self {
        let names: Vec<&str> = match trailer.map(|t| t.trim().to_ascii_lowercase()) {
            Some(t) => TRAILERS.iter().copied().filter(|n| *n == t).collect(),
            None => TRAILERS.to_vec(),
        };
        Decoder {
            prev: signing.as_ref().map(|s| s.seed.clone()).unwrap_or_default(),
            signing,
            pending: vec![],
            state: State::Header,
            sums: names.into_iter().filter_map(|n| Sum::for_trailer(n).map(|s| (n.to_string(), s))).collect(),
            decoded: 0,
        }
    }

    /// Bytes of decoded data so far.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    fn take_line(&mut self) -> Result<Option<String>, ApiError> {
        match self.pending.windows(2).position(|w| w == b"\r\n") {
            Some(end) => {
                let l = std::str::from_utf8(&self.pending[..end])
                    .map_err(|_| bad("a chunk header is not text"))?
                    .to_string();
                self.pending.drain(..end + 2);
                Ok(Some(l))
            }
            None if self.pending.len() > MAX_LINE => Err(bad("a line is not terminated")),
            None => Ok(None),
        }
    }

    /// Feeds `input`; appends decoded data to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ApiError> {
        self.pending.extend_from_slice(input);
        loop {
            match &mut self.state {
                State::Header => {
                    let Some(header) = self.take_line()? else { return Ok(()) };
                    let (size_hex, ext) = header.split_once(';').unwrap_or((header.as_str(), ""));
                    let size =
                        usize::from_str_radix(size_hex.trim(), 16).map_err(|_| bad("a chunk size is not hex"))?;
                    let signature = match &self.signing {
                        Some(_) => Some(
                            ext.trim()
                                .strip_prefix("chunk-signature=")
                                .ok_or_else(|| bad("a chunk has no signature"))?
                                .to_string(),
                        ),
                        None => None,
                    };
                    self.state = State::Data { left: size, signature, hash: Sha256::new() };
                    if size == 0 {
                        self.end_chunk()?;
                    }
                }
                State::Data { left, hash, .. } => {
                    let n = (*left).min(self.pending.len());
                    if n == 0 {
                        return Ok(());
                    }
                    let data: Vec<u8> = self.pending.drain(..n).collect();
                    hash.update(&data);
                    *left -= n;
                    for (_, s) in &mut self.sums {
                        s.update(&data);
                    }
                    self.decoded += n as u64;
                    out.extend_from_slice(&data);
                    if *left == 0 {
                        self.end_chunk()?;
                    }
                }
                State::DataEnd => {
                    if self.pending.len() < 2 {
                        return Ok(());
                    }
                    if &self.pending[..2] != b"\r\n" {
                        return Err(bad("a chunk is not followed by CRLF"));
                    }
                    self.pending.drain(..2);
                    self.state = State::Header;
                }
                State::Trailers => {
                    let Some(l) = self.take_line()? else { return Ok(()) };
                    if l.is_empty() {
                        self.state = State::Done;
                        continue;
                    }
                    let Some((name, value)) = l.split_once(':') else { return Err(bad("a trailer is not name:value")) };
                    let name = name.trim().to_ascii_lowercase();
                    let value = value.trim().to_string();
                    if let Some(i) = self.sums.iter().position(|(n, _)| *n == name) {
                        let (_, sum) = self.sums.swap_remove(i);
                        if base64::engine::general_purpose::STANDARD.encode(sum.finish()) != value {
                            return Err(ApiError::new(
                                400,
                                "BadDigest",
                                format!("The {name} you specified did not match the calculated checksum."),
                            ));
                        }
                    }
                }
                State::Done => {
                    self.pending.clear();
                    return Ok(());
                }
            }
        }
    }

    /// The chunk in `State::Data` is complete: check its signature; the zero-size chunk ends the data.
    fn end_chunk(&mut self) -> Result<(), ApiError> {
        let State::Data { signature, hash, .. } = std::mem::replace(&mut self.state, State::DataEnd) else {
            return Ok(());
        };
        let hash = hex::encode(hash.finalize());
        if let (Some(s), Some(given)) = (&self.signing, signature) {
            let sts =
                format!("AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{hash}", s.amz_date, s.scope, self.prev);
            let expected = s3::sign(&s.key, &sts);
            if !crate::signature::oss::same(&expected, &given) {
                return Err(ApiError::new(403, "SignatureDoesNotMatch", "A chunk signature does not match."));
            }
            self.prev = expected;
        }
        if hash == EMPTY_SHA256 {
            // The final, zero-size chunk: trailers follow (or the body ends).
            self.state = State::Trailers;
        }
        Ok(())
    }

    /// The body ended: it must have reached its final chunk.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.state {
            State::Trailers | State::Done => Ok(()),
            _ => Err(ApiError::new(400, "IncompleteBody", "The request body is shorter than its chunks declare.")),
        }
    }
}

/// Decodes a whole body, verifying chunk signatures when `signing` is given and a trailing
/// checksum when one is sent.
#[cfg(test)]
pub fn decode(body: &[u8], signing: Option<&ChunkSigning>) -> Result<Vec<u8>, ApiError> {
    let signing = signing.map(|s| ChunkSigning {
        key: s.key.clone(),
        amz_date: s.amz_date.clone(),
        scope: s.scope.clone(),
        seed: s.seed.clone(),
    });
    let mut d = Decoder::new(signing, None);
    let mut out = Vec::with_capacity(body.len());
    d.push(body, &mut out)?;
    d.finish()?;
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
        // Fed a byte at a time, the same body decodes the same.
        let mut d = Decoder::new(None, Some("x-amz-checksum-crc32"));
        let mut out = vec![];
        for b in body.as_bytes() {
            d.push(std::slice::from_ref(b), &mut out).expect("piece");
        }
        d.finish().expect("complete");
        assert_eq!(out, b"hello world");
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
        let mut d = Decoder::new(
            Some(ChunkSigning {
                key: signing.key.clone(),
                amz_date: signing.amz_date.clone(),
                scope: signing.scope.clone(),
                seed: signing.seed.clone(),
            }),
            None,
        );
        let mut out = vec![];
        for piece in body.chunks(1000) {
            d.push(piece, &mut out).expect("piece");
        }
        d.finish().expect("complete");
        assert_eq!(out.len(), 66560);
        let mut tampered = body.clone();
        tampered[100] = b'b';
        assert_eq!(decode(&tampered, Some(&signing)).expect_err("tampered").code, "SignatureDoesNotMatch");
    }
}
