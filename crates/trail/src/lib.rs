//! ActionTrail: the tamper-evident record of every call.
//!
//! - [`Trail`] is the gateway's [`Auditor`](nimbus_api::Auditor): every event is appended to a
//!   SHA-256 hash chain (each event's hash covers its sequence number, its canonical JSON and the
//!   previous hash). Events are committed in groups: a request's answer waits for the commit of the
//!   group its event is in, so no acknowledged call lacks its record, at one fsync per group.
//! - Every `digest_interval` a digest is written: the range of events it covers, the last event's
//!   hash and the previous digest's signature, signed with the region's Ed25519 trail key (whose
//!   seed is wrapped by the root key; the public key is `DIR/trail-public.key`). Digests chain to one
//!   another as CloudTrail's digest files do.
//! - [`verify`] walks chain and digests and names the first bad record.
//! - [`service::ActionTrail`] answers `LookupEvents` and manages trails, scoped to the caller's account.
//! - [`model`]: the trail configuration row as typed state (`nimbus_store::Repo`).
//! - [`deliver`] writes each logging trail's events and signed digest files (`DIR/trails` until OSS).

mod chain;
pub mod deliver;
pub mod model;
pub mod service;
mod signer;
mod verify;
mod writer;

pub use chain::{event_body, event_hash};
pub use deliver::verify_delivered;
pub use signer::TrailKey;
pub use verify::{Problem, Report, verify};
pub use writer::{Trail, TrailConfig};
