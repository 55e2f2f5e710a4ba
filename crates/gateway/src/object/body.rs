//! Request bodies of the object door, read only after the request is authenticated and
//! authorized: small ones whole, object uploads as a stream written to the replicas as it
//! arrives. What the signature promised about the body (a SHA-256, signed `aws-chunked` framing, a
//! trailing checksum) is a [`BodyRule`], checked while the body is read, either way.

use super::chunked::{ChunkSigning, Decoder};
use bytes::Bytes;
use futures::StreamExt;
use nimbus_api::{ApiError, BodyStream, Upload};
use sha2::{Digest, Sha256};

/// What authentication established about the body.
pub(crate) enum BodyRule {
    /// Nothing: unsigned payload, or a signature that does not cover it.
    Plain,
    /// The body's SHA-256 must be this (lower-case hex); `code` names the mismatch.
    Sha256 { hex: String, code: &'static str },
    /// `aws-chunked` framing, with chunk signatures when `signing` is given.
    Chunked { signing: Option<ChunkSigning>, trailer: Option<String>, decoded_len: Option<u64> },
}

impl BodyRule {
    /// A declared payload hash: checked when it is a real hash (`UNSIGNED-PAYLOAD` is not).
    pub(crate) fn sha256(declared: &str, code: &'static str) -> BodyRule {
        if declared.len() == 64 && declared.bytes().all(|b| b.is_ascii_hexdigit()) {
            BodyRule::Sha256 { hex: declared.to_ascii_lowercase(), code }
        } else {
            BodyRule::Plain
        }
    }

    /// The length the stored object will have, if the request says so before its body arrives.
    pub(crate) fn decoded_len(&self, content_length: Option<u64>) -> Option<u64> {
        match self {
            BodyRule::Chunked { decoded_len, .. } => *decoded_len,
            _ => content_length,
        }
    }

    /// Applies the rule to a body read whole.
    pub(crate) fn apply(self, body: Bytes) -> Result<Bytes, ApiError> {
        match self {
            BodyRule::Plain => Ok(body),
            BodyRule::Sha256 { hex, code } => {
                if hex::encode(Sha256::digest(&body)) != hex {
                    return Err(mismatch(code));
                }
                Ok(body)
            }
            BodyRule::Chunked { signing, trailer, decoded_len } => {
                let mut d = Decoder::new(signing, trailer.as_deref());
                let mut out = Vec::with_capacity(body.len());
                d.push(&body, &mut out)?;
                d.finish()?;
                if decoded_len.is_some_and(|l| l != out.len() as u64) {
                    return Err(length_mismatch());
                }
                Ok(out.into())
            }
        }
    }

    /// Applies the rule to a body as it streams: decoded pieces pass on at once; a failed check
    /// ends the stream with an error (its reason recorded in `upload`) *instead of* its end, so
    /// the reader never takes a bad body for a complete one.
    pub(crate) fn apply_stream(self, raw: BodyStream, upload: Upload) -> BodyStream {
        enum Check {
            Plain,
            Sha256(Sha256, String, &'static str),
            Chunked(Box<Decoder>, Option<u64>),
        }
        let check = match self {
            BodyRule::Plain => Check::Plain,
            BodyRule::Sha256 { hex, code } => Check::Sha256(Sha256::new(), hex, code),
            BodyRule::Chunked { signing, trailer, decoded_len } => {
                Check::Chunked(Box::new(Decoder::new(signing, trailer.as_deref())), decoded_len)
            }
        };
        let state = (raw, Some(check), upload);
        Box::pin(futures::stream::unfold(state, |(mut raw, check, upload)| async move {
            let mut check = check?;
            loop {
                match raw.next().await {
                    Some(Ok(piece)) => {
                        let out = match &mut check {
                            Check::Plain => piece,
                            Check::Sha256(h, _, _) => {
                                h.update(&piece);
                                piece
                            }
                            Check::Chunked(d, _) => {
                                let mut out = Vec::with_capacity(piece.len());
                                if let Err(e) = d.push(&piece, &mut out) {
                                    return Some((Err(upload.fail(e)), (raw, None, upload)));
                                }
                                if out.is_empty() {
                                    continue;
                                }
                                Bytes::from(out)
                            }
                        };
                        return Some((Ok(out), (raw, Some(check), upload)));
                    }
                    Some(Err(e)) => {
                        let e = upload.fail(ApiError::new(
                            400,
                            "IncompleteBody",
                            format!("The request body could not be read: {e}"),
                        ));
                        return Some((Err(e), (raw, None, upload)));
                    }
                    None => {
                        let verdict = match check {
                            Check::Plain => Ok(()),
                            Check::Sha256(h, hex, code) => {
                                if hex::encode(h.finalize()) == hex {
                                    Ok(())
                                } else {
                                    Err(mismatch(code))
                                }
                            }
                            Check::Chunked(d, decoded_len) => {
                                let got = d.decoded_len();
                                d.finish().and_then(|()| {
                                    if decoded_len.is_some_and(|l| l != got) { Err(length_mismatch()) } else { Ok(()) }
                                })
                            }
                        };
                        return match verdict {
                            Ok(()) => None,
                            Err(e) => Some((Err(upload.fail(e)), (raw, None, upload))),
                        };
                    }
                }
            }
        }))
    }
}

fn mismatch(code: &'static str) -> ApiError {
    ApiError::new(400, code, "The provided content SHA-256 does not match what was computed.")
}

fn length_mismatch() -> ApiError {
    ApiError::new(400, "IncompleteBody", "The decoded body length does not match x-amz-decoded-content-length.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_of(pieces: &[&'static [u8]]) -> BodyStream {
        let v: Vec<Result<Bytes, std::io::Error>> = pieces.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures::stream::iter(v))
    }

    async fn drain(s: BodyStream) -> Result<Vec<u8>, std::io::Error> {
        let mut out = vec![];
        let mut s = s;
        while let Some(p) = s.next().await {
            out.extend_from_slice(&p?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_bad_hash_ends_the_stream_with_an_error_not_an_end() {
        let good = hex::encode(Sha256::digest(b"hello world"));
        let up = Upload::new(11, stream_of(&[]));
        let s = BodyRule::sha256(&good, "X").apply_stream(stream_of(&[b"hello ", b"world"]), up.clone());
        assert_eq!(drain(s).await.expect("good"), b"hello world");
        assert!(up.failure().is_none());
        let up = Upload::new(11, stream_of(&[]));
        let s = BodyRule::sha256(&good, "XAmzContentSHA256Mismatch")
            .apply_stream(stream_of(&[b"hello ", b"worlD"]), up.clone());
        assert!(drain(s).await.is_err());
        assert_eq!(up.failure().map(|e| e.code), Some("XAmzContentSHA256Mismatch".into()));
    }

    #[tokio::test]
    async fn chunked_bodies_decode_across_piece_boundaries() {
        let up = Upload::new(11, stream_of(&[]));
        let rule = BodyRule::Chunked { signing: None, trailer: None, decoded_len: Some(11) };
        let s = rule.apply_stream(stream_of(&[b"6\r\nhel", b"lo \r\n5\r\nwo", b"rld\r\n0\r\n\r\n"]), up.clone());
        assert_eq!(drain(s).await.expect("decodes"), b"hello world");
        let up = Upload::new(11, stream_of(&[]));
        let rule = BodyRule::Chunked { signing: None, trailer: None, decoded_len: Some(11) };
        let s = rule.apply_stream(stream_of(&[b"6\r\nhel", b"lo \r\n5\r\nwo"]), up.clone());
        assert!(drain(s).await.is_err(), "a truncated body is an error, not an end");
        assert_eq!(up.failure().map(|e| e.code), Some("IncompleteBody".into()));
    }
}
