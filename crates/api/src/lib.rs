//! The seam between the gateway (which knows HTTP and signatures) and the services (which know
//! resources). Nothing here knows about HTTP.
//!
//! A service registers [`Service`]s with [`ActionSpec`]s; the gateway authenticates a request into a
//! [`Caller`], asks the [`Authorizer`] whether the caller may perform the action's RAM action on the
//! resources the service names, calls the handler with a [`CallContext`] and [`Params`], and hands an
//! [`AuditEvent`] to the [`Auditor`] whatever the outcome.

mod audit;
mod authz;
mod bundle;
mod caller;
pub mod conventions;
mod error;
mod job;
mod object;
mod params;
pub mod resolve;
mod service;

pub use audit::{AuditEvent, Auditor, LogAuditor, contains_secret, redact_params};
pub use authz::{Authorizer, Decision, RootOnly};
pub use bundle::{ApiBundle, Background, Bundle, HostAgent, Shutdown, registry_of};
pub use caller::{Caller, Credential, CredentialSource, PrincipalType, Session, SignIn, SignInRequest, SignedIn};
pub use error::{ApiError, ErrorExtra};
pub use job::{JobControl, JobError, JobHandler, LEASE_MS};
pub use object::{
    BodyStream, Dialect, ObjectOp, ObjectRequest, ObjectResponse, ObjectService, Requester, ResourceAccess, Upload,
    Verdict,
};
pub use params::Params;
pub use resolve::{Canonical, Check, Form, Resolved, ResourceParam};
pub use service::{Access, ActionSpec, BoxFut, CallContext, Registry, Service};
