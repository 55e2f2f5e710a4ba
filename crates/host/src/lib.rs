//! Host drivers: the only code in Nimbus that changes the machine it runs on. Services decide what
//! should exist (in the store); drivers make the host match, idempotently, so a reconciliation that
//! was interrupted (`kill -9`) can simply run again.
//!
//! - [`net`]: VPC data plane from Linux network namespaces and bridges.
//! - [`image`]: the system image built from the host's Debian packages.
//! - [`vm`]: QEMU virtual machines supervised over QMP, and the accelerator probe.
//! - [`cgroup`]: per-instance vCPU and memory limits through cgroup v1 or v2.

pub mod cgroup;
pub mod image;
pub mod net;
pub mod vm;
