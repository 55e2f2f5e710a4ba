//! OSS: object storage with three durable replicas, spoken to in OSS's and S3's REST dialects.
//!
//! - [`engine`]: the replicated, checksummed storage engine.
//! - `data`: object data as segments over the engine, sealed per chunk for server-side encryption.
//! - [`Oss`] (`service`): routing, resource-based access facts, and the operations in `bucket`,
//!   `object`, `multipart`, `listing`, `lifecycle`.
//! - `access`: bucket policies and ACLs.
//! - [`bundle`]: the object service and its timers (lifecycle, scrub), as `nimbus up` runs them.
//!
//! The gateway (`nimbus-gateway`) owns HTTP, addressing and signatures; this crate sees
//! [`nimbus_api::ObjectRequest`]s.

mod access;
mod bucket;
pub mod bundle;
mod cors;
pub mod crc64;
mod data;
pub mod engine;
mod internal;
pub mod lifecycle;
mod listing;
mod model;
mod multipart;
pub mod names;
mod object;
pub mod scrub;
mod service;
mod website;
mod xml;

pub use bundle::OssBundle;
pub use engine::{Engine, EngineError, FsckReport, StoredObject};
pub use service::Oss;

/// CRC-64/XZ, the checksum OSS reports in `x-oss-hash-crc64ecma`. Slice-by-16 tables: several
/// times faster than the byte-wise default, and every byte of every upload passes through it.
pub const CRC64: crc::Crc<u64, crc::Table<16>> = crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_XZ);
