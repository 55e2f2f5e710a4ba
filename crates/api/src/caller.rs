//! Who is calling, as established by the gateway's authentication.

use crate::{ApiError, BoxFut};
use nimbus_core::secret::Secret;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalType {
    /// An account's root identity.
    Root,
    /// A RAM user.
    User,
    /// A role session assumed through STS.
    AssumedRole,
}

impl PrincipalType {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::Root => "root-account",
            PrincipalType::User => "ram-user",
            PrincipalType::AssumedRole => "assumed-role",
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub account_id: String,
    pub principal_type: PrincipalType,
    pub principal_id: String,
    pub access_key_id: String,
    pub source_ip: IpAddr,
    /// The request came over TLS (`acs:SecureTransport`).
    pub secure_transport: bool,
    pub user_agent: Option<String>,
}

/// What the gateway needs to verify a signature and name the caller.
#[derive(Clone, Debug)]
pub struct Credential {
    pub access_key_id: String,
    pub secret: Secret,
    pub account_id: String,
    pub principal_type: PrincipalType,
    pub principal_id: String,
    pub active: bool,
}

/// Looks up AccessKeys. The RAM/STS service implements it for users and temporary credentials.
pub trait CredentialSource: Send + Sync {
    /// `Ok(None)` when no such key exists.
    fn lookup<'a>(&'a self, access_key_id: &'a str) -> BoxFut<'a, Result<Option<Credential>, ApiError>>;
}
