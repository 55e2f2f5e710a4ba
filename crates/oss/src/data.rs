//! Object data as stored: one or more segments (a simple upload is one; a multipart object is its
//! parts; an appendable object grows by one per append), each an engine object, optionally sealed
//! with the object's data key (server-side encryption).
//!
//! Sealing is per 64 KiB chunk (`nonce ‖ ciphertext ‖ tag`, AES-256-GCM), so a range read opens
//! only the chunks it touches; each chunk's AAD binds the segment's salt, the chunk's index and
//! the chunk count, so chunks cannot be reordered, moved between objects or truncated unnoticed.

use crate::CRC64;
use crate::engine::{Engine, EngineError, StoredObject};
use md5::{Digest as _, Md5};
use nimbus_api::{ApiError, BodyStream, Upload};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Plaintext bytes per sealed chunk.
pub const SEAL_CHUNK: usize = 64 << 10;
/// nonce (12) + tag (16).
const SEAL_OVERHEAD: usize = 28;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub stored: StoredObject,
    /// Bytes of plaintext this segment holds.
    pub size: u64,
    /// Random per-segment salt (hex) when sealed; `None` for plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
}

/// What writing a segment produced, over the plaintext.
pub struct Written {
    pub segment: Segment,
    pub crc64: u64,
    pub md5: [u8; 16],
}

fn aad(salt: &str, index: u64, count: u64) -> Vec<u8> {
    let mut a = b"nimbus-oss-sse\0".to_vec();
    a.extend_from_slice(salt.as_bytes());
    a.extend_from_slice(&index.to_be_bytes());
    a.extend_from_slice(&count.to_be_bytes());
    a
}

fn chunk_count(size: u64) -> u64 {
    size.div_ceil(SEAL_CHUNK as u64).max(1)
}

fn engine_err(e: EngineError) -> ApiError {
    tracing::error!(error = %e, "OSS storage engine failure");
    ApiError::new(500, "InternalError", "The storage backend failed; the request was not completed.")
}

/// Writes `data` (sealed under `key` when given) as three durable replicas.
pub async fn write(engine: &Arc<Engine>, data: bytes::Bytes, key: Option<[u8; 32]>) -> Result<Written, ApiError> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || {
        let size = data.len() as u64;
        let (stored, salt, crc64, md5) = match key {
            // The engine's checksums are over these very bytes: no second pass.
            None => {
                let stored = engine.put_bytes(&data).map_err(engine_err)?;
                let md5: [u8; 16] =
                    hex::decode(&stored.md5).ok().and_then(|m| m.try_into().ok()).ok_or_else(ApiError::internal)?;
                let crc64 = stored.crc64;
                (stored, None, crc64, md5)
            }
            Some(k) => {
                let crc64 = CRC64.checksum(&data);
                let md5: [u8; 16] = Md5::digest(&data).into();
                let mut s = [0u8; 16];
                rand::rng().fill_bytes(&mut s);
                let salt = hex::encode(s);
                let count = chunk_count(size);
                let mut sealed = Vec::with_capacity(data.len() + count as usize * SEAL_OVERHEAD);
                let mut chunks = data.chunks(SEAL_CHUNK).peekable();
                if chunks.peek().is_none() {
                    sealed.extend(nimbus_kms::envelope::seal(&k, &aad(&salt, 0, 1), &[]));
                }
                for (i, c) in chunks.enumerate() {
                    sealed.extend(nimbus_kms::envelope::seal(&k, &aad(&salt, i as u64, count), c));
                }
                (engine.put_bytes(&sealed).map_err(engine_err)?, Some(salt), crc64, md5)
            }
        };
        Ok(Written { segment: Segment { stored, size, salt }, crc64, md5 })
    })
    .await
    .map_err(|_| ApiError::internal())?
}

/// Reads an [`Upload`]'s stream as a blocking `Read` (on a blocking thread): exactly `len` bytes,
/// or an error naming why not.
struct StreamReader {
    stream: BodyStream,
    upload: Upload,
    piece: bytes::Bytes,
    got: u64,
}

impl std::io::Read for StreamReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use futures::StreamExt;
        while self.piece.is_empty() {
            match futures::executor::block_on(self.stream.next()) {
                Some(Ok(b)) => {
                    self.got += b.len() as u64;
                    if self.got > self.upload.len {
                        return Err(self.upload.fail(ApiError::new(
                            400,
                            "InvalidRequest",
                            "The request body is longer than its declared length.",
                        )));
                    }
                    self.piece = b;
                }
                Some(Err(e)) => {
                    return Err(self.upload.fail(ApiError::new(
                        400,
                        "IncompleteBody",
                        format!("The request body could not be read: {e}"),
                    )));
                }
                None if self.got < self.upload.len => {
                    return Err(self.upload.fail(ApiError::new(
                        400,
                        "IncompleteBody",
                        "The request body is shorter than its declared length.",
                    )));
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.piece.len());
        out[..n].copy_from_slice(&self.piece.split_to(n));
        Ok(n)
    }
}

/// Seals plaintext read from `inner` chunk by chunk (as [`write`] does in memory), keeping the
/// plaintext's CRC-64 and MD5.
struct SealingReader<R> {
    inner: R,
    key: [u8; 32],
    salt: String,
    count: u64,
    index: u64,
    out: Vec<u8>,
    at: usize,
    crc: crc::Digest<'static, u64, crc::Table<16>>,
    md5: Md5,
}

impl<R: std::io::Read> std::io::Read for SealingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.out.len() {
            if self.index == self.count {
                return Ok(0);
            }
            let mut plain = vec![0u8; SEAL_CHUNK];
            let mut n = 0;
            while n < SEAL_CHUNK {
                match self.inner.read(&mut plain[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            plain.truncate(n);
            self.crc.update(&plain);
            self.md5.update(&plain);
            self.out = nimbus_kms::envelope::seal(&self.key, &aad(&self.salt, self.index, self.count), &plain);
            self.at = 0;
            self.index += 1;
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Writes a streamed body (sealed under `key` when given) as three durable replicas while it
/// arrives: memory per request is a block or two, whatever the object's size. A body that fails
/// its checks part-way leaves nothing behind and answers why.
pub async fn write_stream(engine: &Arc<Engine>, upload: &Upload, key: Option<[u8; 32]>) -> Result<Written, ApiError> {
    let stream = upload.take().ok_or_else(ApiError::internal)?;
    let (engine, up) = (engine.clone(), upload.clone());
    let size = upload.len;
    let done = tokio::task::spawn_blocking(move || -> Result<Written, EngineError> {
        let reader = StreamReader { stream, upload: up, piece: bytes::Bytes::new(), got: 0 };
        match key {
            None => {
                let stored = engine.put(reader)?;
                let md5: [u8; 16] = hex::decode(&stored.md5).ok().and_then(|m| m.try_into().ok()).unwrap_or_default();
                let crc64 = stored.crc64;
                Ok(Written { segment: Segment { stored, size, salt: None }, crc64, md5 })
            }
            Some(k) => {
                let mut s = [0u8; 16];
                rand::rng().fill_bytes(&mut s);
                let salt = hex::encode(s);
                let mut sealing = SealingReader {
                    inner: reader,
                    key: k,
                    salt: salt.clone(),
                    count: chunk_count(size),
                    index: 0,
                    out: vec![],
                    at: 0,
                    crc: CRC64.digest(),
                    md5: Md5::new(),
                };
                let stored = engine.put(&mut sealing)?;
                let (crc64, md5) = (sealing.crc.finalize(), sealing.md5.finalize().into());
                Ok(Written { segment: Segment { stored, size, salt: Some(salt) }, crc64, md5 })
            }
        }
    })
    .await
    .map_err(|_| ApiError::internal())?;
    // A body that failed recorded why; any other failure is the engine's.
    done.map_err(|e| upload.failure().unwrap_or_else(|| engine_err(e)))
}

/// Plaintext bytes `start..end` of the object made of `segments`.
pub async fn read(
    engine: &Arc<Engine>,
    segments: &[Segment],
    key: Option<[u8; 32]>,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, ApiError> {
    let (engine, segments) = (engine.clone(), segments.to_vec());
    tokio::task::spawn_blocking(move || read_sync(&engine, &segments, key, start, end))
        .await
        .map_err(|_| ApiError::internal())?
}

/// Bytes per piece of a streamed read: whole engine blocks and whole sealed chunks.
const STREAM_PIECE: u64 = 2 << 20;

/// `start..end` as a stream of verified pieces, read while earlier pieces are being sent. A
/// failure mid-way ends the stream with an error (the client sees a short body, never bad bytes).
pub fn stream(engine: &Arc<Engine>, segments: &[Segment], key: Option<[u8; 32]>, start: u64, end: u64) -> BodyStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let (engine, segments) = (engine.clone(), segments.to_vec());
    tokio::task::spawn_blocking(move || {
        let mut at = start;
        while at < end {
            let next = ((at / STREAM_PIECE + 1) * STREAM_PIECE).min(end);
            let piece = read_sync(&engine, &segments, key, at, next)
                .map(bytes::Bytes::from)
                .map_err(|e| std::io::Error::other(e.message));
            let failed = piece.is_err();
            if tx.blocking_send(piece).is_err() || failed {
                return;
            }
            at = next;
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|piece| (piece, rx)) }))
}

fn read_sync(
    engine: &Engine,
    segments: &[Segment],
    key: Option<[u8; 32]>,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(end.saturating_sub(start) as usize);
    let mut offset = 0u64;
    for seg in segments {
        let (seg_start, seg_end) = (offset, offset + seg.size);
        offset = seg_end;
        if seg_end <= start || seg_start >= end {
            continue;
        }
        let (from, to) = (start.max(seg_start) - seg_start, end.min(seg_end) - seg_start);
        match (&seg.salt, key) {
            (None, _) => out.extend(engine.read(&seg.stored, Some((from, to))).map_err(engine_err)?),
            (Some(salt), Some(k)) => {
                let count = chunk_count(seg.size);
                let (first, last) = (from / SEAL_CHUNK as u64, (to - 1) / SEAL_CHUNK as u64);
                let sealed_chunk = (SEAL_CHUNK + SEAL_OVERHEAD) as u64;
                let raw = engine
                    .read(&seg.stored, Some((first * sealed_chunk, (last + 1) * sealed_chunk)))
                    .map_err(engine_err)?;
                for (i, c) in raw.chunks(sealed_chunk as usize).enumerate() {
                    let index = first + i as u64;
                    let plain = nimbus_kms::envelope::open(&k, &aad(salt, index, count), c).ok_or_else(|| {
                        tracing::error!(object = seg.stored.id, index, "sealed chunk failed authentication");
                        ApiError::new(500, "InternalError", "The stored object failed its integrity check.")
                    })?;
                    let chunk_start = index * SEAL_CHUNK as u64;
                    let a = from.saturating_sub(chunk_start) as usize;
                    let b = ((to - chunk_start) as usize).min(plain.len());
                    out.extend_from_slice(&plain[a..b]);
                }
            }
            (Some(_), None) => return Err(ApiError::internal()),
        }
    }
    Ok(out)
}

/// Frees the replicas of `segments` (after the metadata no longer points at them).
pub async fn free(engine: &Arc<Engine>, segments: Vec<Segment>) {
    let engine = engine.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for s in segments {
            if let Err(e) = engine.delete(&s.stored) {
                tracing::warn!(error = %e, object = s.stored.id, "could not free replicas; fsck will report them");
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> (tempfile::TempDir, Arc<Engine>) {
        let d = tempfile::tempdir().expect("tmp");
        let e = Engine::open((0..3).map(|i| d.path().join(format!("r{i}"))).collect()).expect("engine");
        (d, Arc::new(e))
    }

    #[tokio::test]
    async fn sealed_segments_round_trip_every_range() {
        let (_d, e) = engine();
        let data: Vec<u8> = (0..(SEAL_CHUNK * 2 + 777)).map(|i| (i * 7 % 251) as u8).collect();
        let key = [9u8; 32];
        let w = write(&e, data.clone().into(), Some(key)).await.expect("write");
        assert_eq!(w.crc64, CRC64.checksum(&data));
        let raw = e.read(&w.segment.stored, None).expect("raw");
        assert!(!raw.windows(64).any(|win| win == &data[1000..1064]), "stored bytes are ciphertext");
        let segs = [w.segment.clone()];
        for (a, b) in [(0, data.len()), (5, 70_000), (SEAL_CHUNK, SEAL_CHUNK + 1), (data.len() - 3, data.len())] {
            let got = read(&e, &segs, Some(key), a as u64, b as u64).await.expect("read");
            assert_eq!(got, &data[a..b], "range {a}..{b}");
        }
        assert!(read(&e, &segs, Some([8u8; 32]), 0, 10).await.is_err(), "wrong key fails");
    }

    #[tokio::test]
    async fn streamed_reads_equal_whole_reads() {
        use futures::StreamExt;
        let (_d, e) = engine();
        let data: Vec<u8> = (0..(5 << 20) + 123).map(|i| (i * 13 % 251) as u8).collect();
        for key in [None, Some([4u8; 32])] {
            let w = write(&e, data.clone().into(), key).await.expect("write");
            let segs = [w.segment];
            for (a, b) in [(0u64, data.len() as u64), (1_000_000, 4_500_000)] {
                let pieces: Vec<_> = stream(&e, &segs, key, a, b).collect().await;
                let got: Vec<u8> = pieces.into_iter().flat_map(|p| p.expect("piece").to_vec()).collect();
                assert!(got == data[a as usize..b as usize], "stream {a}..{b} with key {}", key.is_some());
            }
        }
    }

    #[tokio::test]
    async fn several_segments_read_as_one() {
        let (_d, e) = engine();
        let a = write(&e, bytes::Bytes::from_static(b"hello "), None).await.expect("a");
        let b = write(&e, bytes::Bytes::from_static(b"world"), Some([1u8; 32])).await.expect("b");
        let segs = [a.segment, b.segment];
        assert_eq!(read(&e, &segs, Some([1u8; 32]), 0, 11).await.expect("all"), b"hello world");
        assert_eq!(read(&e, &segs, Some([1u8; 32]), 4, 8).await.expect("mid"), b"o wo");
        let empty = write(&e, bytes::Bytes::new(), Some([1u8; 32])).await.expect("empty");
        assert_eq!(read(&e, &[empty.segment], Some([1u8; 32]), 0, 0).await.expect("empty"), b"");
    }
}
