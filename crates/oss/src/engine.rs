//! The replicated storage engine.
//!
//! Every object is written whole to each of three replica directories (three failure domains:
//! configure them on three disks; by default they are three folders of the data directory, which
//! share one). Layout per replica: `<dir>/objects/<id[0..2]>/<id>`.
//!
//! - **Durable before acknowledged**: each replica is written to a temporary file, fsync'd, renamed
//!   into place and its directory fsync'd; [`Engine::put`] returns only when all three are durable.
//!   A crash before that leaves only temporary files, which [`Engine::open`] removes: a partial
//!   upload is never visible.
//! - **Verified on every read**: the object is cut into blocks whose SHA-256 are kept in its
//!   [`StoredObject`] (the metadata the caller stores). A block that is missing or does not match in
//!   one replica is read from another, and the bad replica is repaired in place.
//! - **Scrubbed**: [`Engine::fsck`] checks every block of every replica and heals what it can; an
//!   object with no good copy of some block is reported lost.
//!
//! One file per object per replica (rather than per block) keeps small objects cheap; repairs
//! rewrite just the damaged range.

use crate::CRC64;
use md5::Md5;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const REPLICAS: usize = 3;
/// Checksum granularity: a read verifies (and a repair rewrites) whole blocks.
pub const BLOCK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("storage I/O on {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("object {0}: block {1} has no intact replica left (data lost)")]
    Lost(String, usize),
    #[error("the engine needs {REPLICAS} replica directories, got {0}")]
    Replicas(usize),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Io { path: path.display().to_string(), source }
}

/// What the caller keeps about a stored object (in the metadata store).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// Storage id (random): names the replica files. Not the object key.
    pub id: String,
    pub size: u64,
    /// SHA-256 of each block, hex.
    pub blocks: Vec<String>,
    /// CRC-64/XZ of the whole object (OSS's `x-oss-hash-crc64ecma`).
    pub crc64: u64,
    /// MD5 of the whole object, hex (the ETag of a simple upload).
    pub md5: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    pub objects: usize,
    pub blocks_checked: usize,
    /// Replica blocks rewritten from a good copy (rot, or a replica file missing).
    pub repaired: usize,
    /// Object ids with a block no replica holds intact.
    pub lost: Vec<String>,
    /// Replica files no metadata points at (left by a crash between writing data and committing
    /// its metadata, or between dropping metadata and freeing the data), removed.
    pub orphans_removed: usize,
}

pub struct Engine {
    replicas: Vec<PathBuf>,
}

fn sync_dir(dir: &Path) -> Result<(), EngineError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

fn device_of(p: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| m.dev())
}

impl Engine {
    /// Opens (creating) the replica directories and removes temporary files left by a crash.
    pub fn open(replicas: Vec<PathBuf>) -> Result<Engine, EngineError> {
        if replicas.len() != REPLICAS {
            return Err(EngineError::Replicas(replicas.len()));
        }
        for r in &replicas {
            let objects = r.join("objects");
            std::fs::create_dir_all(&objects).map_err(io(&objects))?;
            for shard in std::fs::read_dir(&objects).map_err(io(&objects))?.flatten() {
                for f in std::fs::read_dir(shard.path()).into_iter().flatten().flatten() {
                    if f.file_name().to_string_lossy().ends_with(".tmp") {
                        let _ = std::fs::remove_file(f.path());
                    }
                }
            }
        }
        let devices: Vec<Option<u64>> = replicas.iter().map(|r| device_of(r)).collect();
        if devices.windows(2).any(|w| w[0].is_some() && w[0] == w[1]) {
            tracing::warn!("OSS replica directories share a disk: three copies, but one failure domain");
        }
        Ok(Engine { replicas })
    }

    fn path(&self, replica: usize, id: &str) -> PathBuf {
        self.replicas[replica].join("objects").join(&id[..2]).join(id)
    }

    /// Stores `data` as three durable replicas, reading it a block at a time (memory stays at one
    /// block whatever the size); returns what to keep in the metadata. If `data` fails (a client
    /// that hangs up, a checksum that does not match), the partial replicas are removed.
    pub fn put(&self, data: impl Read) -> Result<StoredObject, EngineError> {
        let mut temps = vec![];
        let r = self.put_inner(data, &mut temps);
        if r.is_err() {
            for t in &temps {
                let _ = std::fs::remove_file(t);
            }
        }
        r
    }

    fn put_inner(&self, mut data: impl Read, temps_out: &mut Vec<PathBuf>) -> Result<StoredObject, EngineError> {
        let id: String = {
            let mut r = rand::rng();
            (0..32).map(|_| char::from(b"0123456789abcdef"[r.random_range(0..16)])).collect()
        };
        let finals: Vec<PathBuf> = (0..REPLICAS).map(|i| self.path(i, &id)).collect();
        let temps: Vec<PathBuf> = finals.iter().map(|p| p.with_extension("tmp")).collect();
        let mut files = Vec::with_capacity(REPLICAS);
        for t in &temps {
            let dir = t.parent().expect("object paths have a parent");
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            files.push(OpenOptions::new().write(true).create_new(true).open(t).map_err(io(t))?);
            temps_out.push(t.clone());
        }
        let (mut size, mut blocks, mut crc, mut md5) = (0u64, vec![], CRC64.digest(), Md5::new());
        let mut buf = vec![0u8; BLOCK];
        loop {
            let n = read_full(&mut data, &mut buf).map_err(io(&temps[0]))?;
            if n == 0 {
                break;
            }
            let block = &buf[..n];
            for (f, t) in files.iter_mut().zip(&temps) {
                f.write_all(block).map_err(io(t))?;
            }
            blocks.push(hex::encode(Sha256::digest(block)));
            crc.update(block);
            md5.update(block);
            size += n as u64;
            if n < BLOCK {
                break;
            }
        }
        for ((f, t), fin) in files.into_iter().zip(&temps).zip(&finals) {
            f.sync_all().map_err(io(t))?;
            std::fs::rename(t, fin).map_err(io(fin))?;
            sync_dir(fin.parent().expect("parent"))?;
        }
        Ok(StoredObject { id, size, blocks, crc64: crc.finalize(), md5: hex::encode(md5.finalize()) })
    }

    /// Like [`Engine::put`] for bytes already in memory: the MD5 and CRC-64 passes run on a second
    /// thread while this one hashes blocks and writes the replicas, so a large PUT costs about the
    /// slower of the two rather than their sum.
    pub fn put_bytes(&self, data: &[u8]) -> Result<StoredObject, EngineError> {
        let (stored, (crc64, md5)) = std::thread::scope(|s| {
            let sums = s.spawn(|| (CRC64.checksum(data), hex::encode(Md5::digest(data))));
            let stored = self.put_blocks(data);
            (stored, sums.join().expect("checksum thread does not panic"))
        });
        Ok(StoredObject { crc64, md5, ..stored? })
    }

    /// Writes the replicas of `data` with block checksums (whole-object sums left empty).
    fn put_blocks(&self, data: &[u8]) -> Result<StoredObject, EngineError> {
        let id: String = {
            let mut r = rand::rng();
            (0..32).map(|_| char::from(b"0123456789abcdef"[r.random_range(0..16)])).collect()
        };
        let finals: Vec<PathBuf> = (0..REPLICAS).map(|i| self.path(i, &id)).collect();
        let temps: Vec<PathBuf> = finals.iter().map(|p| p.with_extension("tmp")).collect();
        let mut files = Vec::with_capacity(REPLICAS);
        for t in &temps {
            let dir = t.parent().expect("object paths have a parent");
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            files.push(OpenOptions::new().write(true).create_new(true).open(t).map_err(io(t))?);
        }
        let mut blocks = Vec::with_capacity(data.len().div_ceil(BLOCK));
        for block in data.chunks(BLOCK) {
            for (f, t) in files.iter_mut().zip(&temps) {
                f.write_all(block).map_err(io(t))?;
            }
            blocks.push(hex::encode(Sha256::digest(block)));
        }
        // The three replicas are made durable concurrently: on a shared disk the file system
        // can fold their flushes into fewer journal commits; on three disks they overlap.
        std::thread::scope(|s| {
            let handles: Vec<_> = files
                .into_iter()
                .zip(&temps)
                .zip(&finals)
                .map(|((f, t), fin)| {
                    s.spawn(move || -> Result<(), EngineError> {
                        f.sync_all().map_err(io(t))?;
                        std::fs::rename(t, fin).map_err(io(fin))?;
                        sync_dir(fin.parent().expect("parent"))
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|h| h.join().expect("sync thread does not panic"))
        })?;
        Ok(StoredObject { id, size: data.len() as u64, blocks, crc64: 0, md5: String::new() })
    }

    /// Appends block `b` of `replica` to `out` if it is intact; leaves `out` as it was otherwise.
    fn read_block_into(&self, replica: usize, obj: &StoredObject, b: usize, out: &mut Vec<u8>) -> bool {
        let len = block_len(obj, b);
        let at = out.len();
        let ok = (|| {
            let mut f = File::open(self.path(replica, &obj.id)).ok()?;
            f.seek(SeekFrom::Start((b * BLOCK) as u64)).ok()?;
            out.resize(at + len, 0);
            f.read_exact(&mut out[at..]).ok()?;
            (hex::encode(Sha256::digest(&out[at..])) == obj.blocks[b]).then_some(())
        })()
        .is_some();
        if !ok {
            out.truncate(at);
        }
        ok
    }

    /// Appends verified block `b` to `out` (no intermediate buffer); repairs bad replicas.
    fn block_into(&self, obj: &StoredObject, b: usize, out: &mut Vec<u8>) -> Result<(), EngineError> {
        let at = out.len();
        let mut bad = vec![];
        for r in 0..REPLICAS {
            if self.read_block_into(r, obj, b, out) {
                for &x in &bad {
                    if let Err(e) = self.repair_block(x, obj, b, &out[at..]) {
                        tracing::error!(error = %e, "repair failed");
                    }
                }
                return Ok(());
            }
            bad.push(r);
        }
        Err(EngineError::Lost(obj.id.clone(), b))
    }

    /// Reads block `b` from `replica`; `None` if missing, short or not matching its checksum.
    fn read_block(&self, replica: usize, obj: &StoredObject, b: usize) -> Option<Vec<u8>> {
        let len = block_len(obj, b);
        let mut f = File::open(self.path(replica, &obj.id)).ok()?;
        f.seek(SeekFrom::Start((b * BLOCK) as u64)).ok()?;
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf).ok()?;
        (hex::encode(Sha256::digest(&buf)) == obj.blocks[b]).then_some(buf)
    }

    /// Rewrites block `b` of `replica` with `good` (recreating the file if it is gone).
    fn repair_block(&self, replica: usize, obj: &StoredObject, b: usize, good: &[u8]) -> Result<(), EngineError> {
        let p = self.path(replica, &obj.id);
        let dir = p.parent().expect("parent").to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut f = OpenOptions::new().write(true).create(true).truncate(false).open(&p).map_err(io(&p))?;
        f.set_len(obj.size).map_err(io(&p))?;
        f.seek(SeekFrom::Start((b * BLOCK) as u64)).map_err(io(&p))?;
        f.write_all(good).map_err(io(&p))?;
        f.sync_all().map_err(io(&p))?;
        sync_dir(&dir)?;
        tracing::warn!(object = obj.id, replica, block = b, "repaired a damaged or missing replica block");
        Ok(())
    }

    /// Block `b`, verified; repairs replicas found bad on the way.
    fn block(&self, obj: &StoredObject, b: usize) -> Result<Vec<u8>, EngineError> {
        let mut bad = vec![];
        for r in 0..REPLICAS {
            if let Some(data) = self.read_block(r, obj, b) {
                for &x in &bad {
                    // Serve the read even if a repair fails; fsck will try again.
                    if let Err(e) = self.repair_block(x, obj, b, &data) {
                        tracing::error!(error = %e, "repair failed");
                    }
                }
                return Ok(data);
            }
            bad.push(r);
        }
        Err(EngineError::Lost(obj.id.clone(), b))
    }

    /// Bytes `start..end` of the object (the whole object for `None`), verified.
    pub fn read(&self, obj: &StoredObject, range: Option<(u64, u64)>) -> Result<Vec<u8>, EngineError> {
        let (start, end) = range.unwrap_or((0, obj.size));
        let end = end.min(obj.size);
        let mut out = Vec::with_capacity(end.saturating_sub(start) as usize);
        if start >= end {
            return Ok(out);
        }
        for b in (start as usize / BLOCK)..=((end as usize - 1) / BLOCK) {
            let block_start = (b * BLOCK) as u64;
            if start <= block_start && end >= block_start + block_len(obj, b) as u64 {
                // A whole block: read straight into the answer.
                self.block_into(obj, b, &mut out)?;
                continue;
            }
            let data = self.block(obj, b)?;
            let from = start.saturating_sub(block_start) as usize;
            let to = ((end - block_start) as usize).min(data.len());
            out.extend_from_slice(&data[from..to]);
        }
        Ok(out)
    }

    /// Removes every replica of the object (absent ones are fine: delete is idempotent).
    pub fn delete(&self, obj: &StoredObject) -> Result<(), EngineError> {
        for r in 0..REPLICAS {
            let p = self.path(r, &obj.id);
            match std::fs::remove_file(&p) {
                Ok(()) => sync_dir(p.parent().expect("parent"))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&p)(e)),
            }
        }
        Ok(())
    }

    /// Removes replica files whose id is not in `referenced` and that were last modified more
    /// than `grace` ago (younger ones may belong to an upload whose metadata is being committed).
    pub fn sweep_orphans(&self, referenced: &std::collections::HashSet<String>, grace: std::time::Duration) -> usize {
        let mut removed = 0;
        for r in &self.replicas {
            let objects = r.join("objects");
            for shard in std::fs::read_dir(&objects).into_iter().flatten().flatten() {
                for f in std::fs::read_dir(shard.path()).into_iter().flatten().flatten() {
                    let name = f.file_name().to_string_lossy().into_owned();
                    if name.ends_with(".tmp") || referenced.contains(&name) {
                        continue;
                    }
                    let old = f
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age >= grace);
                    if old && std::fs::remove_file(f.path()).is_ok() {
                        removed += 1;
                    }
                }
            }
        }
        if removed > 0 {
            tracing::warn!(removed, "removed orphaned replica files");
        }
        removed
    }

    /// Checks every block of every replica of `objects` and heals from a good copy.
    pub fn fsck<'a>(&self, objects: impl IntoIterator<Item = &'a StoredObject>) -> FsckReport {
        let mut report = FsckReport::default();
        for obj in objects {
            report.objects += 1;
            for b in 0..obj.blocks.len() {
                report.blocks_checked += 1;
                let copies: Vec<Option<Vec<u8>>> = (0..REPLICAS).map(|r| self.read_block(r, obj, b)).collect();
                let Some(good) = copies.iter().flatten().next().cloned() else {
                    if !report.lost.contains(&obj.id) {
                        report.lost.push(obj.id.clone());
                    }
                    continue;
                };
                for (r, c) in copies.iter().enumerate() {
                    if c.is_none() && self.repair_block(r, obj, b, &good).is_ok() {
                        report.repaired += 1;
                    }
                }
            }
        }
        report
    }
}

fn block_len(obj: &StoredObject, b: usize) -> usize {
    let start = (b * BLOCK) as u64;
    (obj.size - start).min(BLOCK as u64) as usize
}

/// Fills `buf` unless the reader ends first; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(dir: &Path) -> Engine {
        Engine::open((0..3).map(|i| dir.join(format!("replica-{i}"))).collect()).expect("open")
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn orphans_are_swept_only_when_unreferenced_and_old_enough() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = engine(dir.path());
        let kept = e.put(&data(1000)[..]).expect("put");
        let orphan = e.put(&data(2000)[..]).expect("put");
        let referenced: std::collections::HashSet<String> = [kept.id.clone()].into();
        assert_eq!(e.sweep_orphans(&referenced, std::time::Duration::from_secs(3600)), 0, "young files are spared");
        assert_eq!(e.sweep_orphans(&referenced, std::time::Duration::ZERO), REPLICAS, "the orphan's three replicas go");
        assert_eq!(e.read(&kept, None).expect("kept"), data(1000));
        assert!(matches!(e.read(&orphan, None), Err(EngineError::Lost(_, 0))));
    }

    #[test]
    fn crc64_is_the_xz_variant() {
        assert_eq!(CRC64.checksum(b"123456789"), 0x995D_C9BB_DF19_39FA);
    }

    #[test]
    fn round_trips_with_ranges_and_checksums() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = engine(dir.path());
        let body = data(2 * BLOCK + 12345);
        let o = e.put(&body[..]).expect("put");
        assert_eq!((o.size, o.blocks.len()), (body.len() as u64, 3));
        assert_eq!(o.crc64, CRC64.checksum(&body));
        assert_eq!(o.md5, hex::encode(Md5::digest(&body)));
        assert_eq!(e.read(&o, None).expect("read"), body);
        for (s, t) in
            [(0, 1), (BLOCK as u64 - 5, BLOCK as u64 + 5), (10, body.len() as u64), (body.len() as u64 - 1, u64::MAX)]
        {
            assert_eq!(e.read(&o, Some((s, t))).expect("range"), body[s as usize..(t.min(body.len() as u64)) as usize]);
        }
        let empty = e.put(&b""[..]).expect("empty");
        assert_eq!((empty.size, e.read(&empty, None).expect("read").len()), (0, 0));
        e.delete(&o).expect("delete");
        e.delete(&o).expect("idempotent");
        assert!(matches!(e.read(&o, None), Err(EngineError::Lost(_, 0))));
    }

    #[test]
    fn a_flipped_byte_is_detected_served_correctly_and_repaired() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = engine(dir.path());
        let body = data(BLOCK + 100);
        let o = e.put(&body[..]).expect("put");
        let p0 = e.path(0, &o.id);
        let mut bytes = std::fs::read(&p0).expect("read");
        bytes[BLOCK + 7] ^= 0x01;
        std::fs::write(&p0, &bytes).expect("rot");
        assert_eq!(e.read(&o, None).expect("read"), body, "the correct bytes are served");
        assert_eq!(std::fs::read(&p0).expect("read"), body, "and the bad replica was repaired");
    }

    #[test]
    fn a_lost_replica_directory_is_survived_and_restored_by_fsck() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = engine(dir.path());
        let objs: Vec<StoredObject> = (0..5).map(|i| e.put(&data(1000 * i + BLOCK / 3)[..]).expect("put")).collect();
        std::fs::remove_dir_all(dir.path().join("replica-1")).expect("lose a disk");
        let e = engine(dir.path());
        for o in &objs {
            let p = e.path(1, &o.id);
            assert!(!p.exists());
        }
        // fsck restores the third copy of every object (one block each here)…
        let r = e.fsck(&objs);
        assert_eq!((r.objects, r.repaired, r.lost.len()), (5, 5, 0));
        for o in &objs {
            assert_eq!(std::fs::read(e.path(1, &o.id)).expect("restored").len() as u64, o.size);
        }
        assert_eq!(e.fsck(&objs).repaired, 0, "nothing left to repair");
        // …and reads never noticed: every object is whole.
        std::fs::remove_dir_all(dir.path().join("replica-2")).expect("lose another disk");
        let e = engine(dir.path());
        for o in &objs {
            assert_eq!(e.read(o, None).expect("still readable").len() as u64, o.size);
        }
    }

    #[test]
    fn partial_uploads_are_never_visible_and_total_loss_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = engine(dir.path());
        let o = e.put(&data(5000)[..]).expect("put");
        // What a crash mid-put leaves: temporary files only.
        let tmp = e.path(0, "ab00000000000000000000000000000000").with_extension("tmp");
        std::fs::create_dir_all(tmp.parent().expect("p")).expect("mkdir");
        std::fs::write(&tmp, b"half").expect("tmp");
        let e = engine(dir.path());
        assert!(!tmp.exists(), "reopening removes crash leftovers");
        for r in 0..REPLICAS {
            let p = e.path(r, &o.id);
            let mut b = std::fs::read(&p).expect("read");
            b[0] ^= 0xff;
            std::fs::write(&p, &b).expect("rot");
        }
        assert!(matches!(e.read(&o, None), Err(EngineError::Lost(_, 0))));
        assert_eq!(e.fsck([&o]).lost, vec![o.id.clone()]);
    }
}
