//! OSS. Today: the storage engine ([`engine`]) that keeps every object as three replicas on three
//! failure domains. The OSS and S3 APIs, multipart uploads and server-side encryption build on it
//! (issue #5).

pub mod engine;

pub use engine::{Engine, EngineError, FsckReport, StoredObject};

/// CRC-64/XZ, the checksum OSS reports in `x-oss-hash-crc64ecma` (decimal). Not CRC-64/ECMA-182.
pub const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_XZ);
