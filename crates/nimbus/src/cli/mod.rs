//! The `nimbus` command line: profiles, generic signed calls, operator commands.

pub mod admin;
pub mod call;
pub mod configure;
pub mod oss;
pub mod output;
