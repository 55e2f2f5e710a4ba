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

/// An STS role session: who assumed which role, until when, narrowed by which policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub role_id: String,
    pub role_name: String,
    pub session_name: String,
    /// The session policy passed to AssumeRole (a JSON document), if any.
    pub policy: Option<String>,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub account_id: String,
    pub principal_type: PrincipalType,
    /// Root: the account id; user: the user id; assumed role: `<role id>:<session name>`.
    pub principal_id: String,
    /// Root: the account id; user: the user name; assumed role: the role name.
    pub principal_name: String,
    pub session: Option<Session>,
    pub mfa_present: bool,
    pub access_key_id: String,
    pub source_ip: IpAddr,
    /// The request came over TLS (`acs:SecureTransport`).
    pub secure_transport: bool,
    pub user_agent: Option<String>,
}

impl Caller {
    /// The caller's ARN as RAM and STS print it.
    pub fn arn(&self) -> String {
        match (&self.principal_type, &self.session) {
            (PrincipalType::AssumedRole, Some(s)) => {
                format!("acs:ram::{}:assumed-role/{}/{}", self.account_id, s.role_name, s.session_name)
            }
            (PrincipalType::User, _) => format!("acs:ram::{}:user/{}", self.account_id, self.principal_name),
            _ => format!("acs:ram::{}:root", self.account_id),
        }
    }
}

/// What the gateway needs to verify a signature and name the caller.
#[derive(Clone, Debug)]
pub struct Credential {
    pub access_key_id: String,
    pub secret: Secret,
    pub account_id: String,
    pub principal_type: PrincipalType,
    pub principal_id: String,
    pub principal_name: String,
    pub session: Option<Session>,
    pub mfa_present: bool,
    pub active: bool,
}

/// Looks up AccessKeys. The RAM/STS service implements it for users and temporary credentials.
pub trait CredentialSource: Send + Sync {
    /// `Ok(None)` when no such key exists. `security_token` is the STS token sent with the request
    /// (`SecurityToken` parameter or `x-acs-security-token` header); problems with it are errors
    /// (`InvalidSecurityToken.*`, `MissingSecurityToken`).
    fn lookup<'a>(
        &'a self,
        access_key_id: &'a str,
        security_token: Option<&'a str>,
    ) -> BoxFut<'a, Result<Option<Credential>, ApiError>>;
}

/// A console sign-in attempt: account, user name, password, and the MFA code if the user has a device.
#[derive(Debug)]
pub struct SignInRequest {
    pub account_id: String,
    pub user_name: String,
    pub password: Secret,
    pub mfa_code: Option<String>,
    pub source_ip: IpAddr,
}

/// A successful sign-in: the response body (with temporary credentials) and who signed in.
pub struct SignedIn {
    pub body: serde_json::Value,
    pub account_id: String,
    pub user_name: String,
}

/// Password (and MFA) authentication for the console. RAM implements it.
pub trait SignIn: Send + Sync {
    fn sign_in<'a>(&'a self, req: &'a SignInRequest) -> BoxFut<'a, Result<SignedIn, ApiError>>;
}
