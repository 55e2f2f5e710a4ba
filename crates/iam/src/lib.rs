//! Identity and least privilege.
//!
//! - [`accounts`]: tenant accounts and their root AccessKeys (the operator's `nimbus admin account`).
//! - [`credentials`]: AccessKey lookup for the gateway: long-term keys unwrapped with the root key,
//!   STS keys recovered from their sealed SecurityToken.
//! - [`authorizer`]: the RAM policy evaluator on every call.
//! - [`ram`]: the RAM API (users, groups, roles, policies and versions, attachments, AccessKeys,
//!   account alias and password policy).
//! - [`sts`]: `AssumeRole` and `GetCallerIdentity`.
//! - [`signin`]: console password sign-in: password policy, lockout, MFA; a short user session.
//! - [`secrets`]: Argon2id password hashes and TOTP codes.
//!
//! RAM entities are resource rows (`ram.user`, `ram.group`, …) whose ids embed the account and the
//! lowercased name (`ram-user:<account>:<name>`): names are unique per account, case-insensitively,
//! and lookups by name are key lookups.

pub mod accounts;
pub mod authorizer;
pub mod credentials;
pub mod instance_roles;
pub mod names;
pub mod ram;
pub mod secrets;
pub mod signin;
pub mod sts;
mod system_policies;

pub use authorizer::RamAuthorizer;
pub use credentials::StoreCredentials;
pub use ram::Ram;
pub use signin::ConsoleSignIn;
pub use sts::{Sts, StsConfig};
