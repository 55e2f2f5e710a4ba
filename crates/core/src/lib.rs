//! Nimbus core: the vocabulary every other crate shares and nothing that touches the network or SQL.
//!
//! - [`ids`]: Alibaba-style identifiers (`i-…`, `LTAI…`, request ids).
//! - [`region`]: the region and its zones as configured at start-up.
//! - [`secret`]: a string type that never prints itself, and the region root key that wraps stored secrets.
//! - [`clock`]: wall-clock helpers in the formats the wire uses.

pub mod clock;
pub mod ids;
pub mod region;
pub mod secret;
