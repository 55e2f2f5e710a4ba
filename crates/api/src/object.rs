//! The seam for object storage: REST rather than RPC, so a request is a method, a bucket, a key,
//! sub-resources, headers and a body instead of an action with parameters. The gateway parses the
//! addressing and verifies the signature (OSS v1/v4 or S3 SigV4), translates S3 header names into
//! OSS ones, and asks the service what the request is ([`ObjectService::route`]) and who may do it
//! ([`ObjectService::access`]) before [`ObjectService::handle`] runs. Nothing here knows HTTP.

use crate::{Access, ApiError, BoxFut, Caller};
use bytes::Bytes;

/// Which wire dialect the client speaks; answers keep its header names and error shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Oss,
    S3,
}

#[derive(Clone, Debug)]
pub struct ObjectRequest {
    pub request_id: String,
    pub dialect: Dialect,
    /// `GET`, `PUT`, `POST`, `DELETE`, `HEAD`.
    pub method: String,
    pub bucket: Option<String>,
    /// Decoded object key (may contain `/`).
    pub key: Option<String>,
    /// Decoded query parameters in arrival order; sub-resources such as `acl` have empty values.
    pub query: Vec<(String, String)>,
    /// Header names lowercase; S3 names already translated into their OSS equivalents
    /// (`x-amz-meta-a` → `x-oss-meta-a`).
    pub headers: Vec<(String, String)>,
    /// A small body, read whole (configuration documents, small objects).
    pub body: Bytes,
    /// An object body still arriving (large PutObject/UploadPart): read once, as it comes, by
    /// the handler, after authentication and authorization. Its integrity checks (declared
    /// payload hash, chunk signatures, length) run as it is read: a failed check ends it with
    /// an error, so what was written is discarded, never committed.
    pub upload: Option<Upload>,
    /// The host the client addressed (error documents echo it).
    pub host: String,
    pub source_ip: std::net::IpAddr,
    /// The request came over TLS.
    pub secure: bool,
}

/// A streamed request body of a known length (`Content-Length`, or `x-amz-decoded-content-length`
/// for `aws-chunked`). Cloning shares the one stream; the first [`Upload::take`] gets it.
#[derive(Clone)]
pub struct Upload {
    pub len: u64,
    stream: std::sync::Arc<std::sync::Mutex<Option<BodyStream>>>,
    /// Why the stream failed, when it did (the stream itself can carry only an `io::Error`).
    failure: std::sync::Arc<std::sync::Mutex<Option<ApiError>>>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload").field("len", &self.len).finish()
    }
}

impl Upload {
    pub fn new(len: u64, stream: BodyStream) -> Self {
        Upload { len, stream: std::sync::Arc::new(std::sync::Mutex::new(Some(stream))), failure: Default::default() }
    }

    /// An upload whose stream is set later ([`Upload::set`]): the stream's checks record their
    /// failures in the upload itself.
    pub fn pending(len: u64) -> Self {
        Upload { len, stream: Default::default(), failure: Default::default() }
    }

    pub fn set(&self, stream: BodyStream) {
        *self.stream.lock().unwrap_or_else(|p| p.into_inner()) = Some(stream);
    }

    /// The body, once.
    pub fn take(&self) -> Option<BodyStream> {
        self.stream.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Records why the body failed (the first reason wins); see [`Upload::failure`].
    pub fn fail(&self, e: ApiError) -> std::io::Error {
        let msg = e.message.clone();
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
        std::io::Error::other(msg)
    }

    /// The recorded reason the body failed, if any.
    pub fn failure(&self) -> Option<ApiError> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ObjectRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn has_query(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }
}

/// A body produced while it is sent (large GETs): pieces of bytes, or an error that aborts the
/// response (the client sees a short body, never wrong bytes).
pub type BodyStream = futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>;

#[derive(Default)]
pub struct ObjectResponse {
    pub status: u16,
    /// OSS header names; the gateway renames them for S3 clients.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// When set, the body is streamed from here instead of `body` (with `content-length` set).
    pub stream: Option<BodyStream>,
}

impl std::fmt::Debug for ObjectResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &self.body.len())
            .field("stream", &self.stream.is_some())
            .finish()
    }
}

impl ObjectResponse {
    pub fn new(status: u16) -> Self {
        ObjectResponse { status, ..Default::default() }
    }

    pub fn xml(body: String) -> Self {
        ObjectResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: body.into(),
            stream: None,
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// What a request is, decided before it is authorized.
#[derive(Clone, Debug)]
pub struct ObjectOp {
    /// Operation name as ActionTrail records it (`PutObject`).
    pub name: &'static str,
    /// RAM action (`oss:PutObject`).
    pub ram_action: &'static str,
    pub access: Access,
}

/// What a resource-based policy (bucket policy) says about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    NotApplicable,
}

/// Who owns the target and what its own policies allow, for one caller and one operation.
#[derive(Clone, Debug)]
pub struct ResourceAccess {
    /// The account owning the bucket; `None` when the request names no bucket (ListBuckets) or a
    /// bucket still to be created (PutBucket): the caller's own account is the owner then.
    pub owner: Option<String>,
    /// The named bucket does not exist: nothing to authorize against; the handler answers
    /// `NoSuchBucket` (bucket names are public in OSS, so this reveals nothing).
    pub bucket_missing: bool,
    /// The RAM resource ARN.
    pub resource: String,
    pub bucket_policy: Verdict,
    /// The canned ACL (object's, else bucket's) grants this access to everyone.
    pub acl_allows: bool,
    /// Further resources the request acts on, each authorized on its own (every object of a
    /// batch delete); all must be permitted.
    pub objects: Vec<ResourceAccess>,
    /// The RAM action checked on this resource when it is not the operation's own (a batch
    /// delete's objects are each a `oss:DeleteObject`).
    pub ram_action: Option<&'static str>,
}

/// Who asks, as authorization of an object request sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requester {
    /// No credentials.
    Anonymous,
    /// A principal of the owning account (or of the caller's own account when the request names
    /// no existing bucket), with its RAM decision.
    Owner(crate::Decision),
    /// A principal of another account, with the decision of *its own* account's RAM policies
    /// (and session policy): another account's root is allowed by its account implicitly.
    OtherAccount(crate::Decision),
}

impl Requester {
    /// Asks the caller's own RAM about `ram_action` on `resource`, owned by `owner`.
    pub async fn of(
        authorizer: &dyn crate::Authorizer,
        caller: Option<&Caller>,
        owner: Option<&str>,
        ram_action: &str,
        resource: &str,
    ) -> Requester {
        let Some(c) = caller else { return Requester::Anonymous };
        let resources = [resource.to_string()];
        let d = authorizer.authorize(c, ram_action, &resources).await;
        match owner {
            Some(o) if o != c.account_id => Requester::OtherAccount(d),
            _ => Requester::Owner(d),
        }
    }
}

impl ResourceAccess {
    /// The decision, in OSS's order: an explicit deny in the bucket policy or in the caller's own
    /// RAM policies wins. A principal of the owning account is then admitted by its RAM policies,
    /// an allow in the bucket policy or the ACL. A principal of another account needs both sides,
    /// as in AWS: its own account's policies must allow the call *and* the owner must grant it
    /// (bucket-policy allow or ACL). Anonymous callers have only the owner's grant.
    pub fn permits(&self, who: Requester) -> bool {
        use crate::Decision::{Allow, ExplicitDeny};
        let granted = self.bucket_policy == Verdict::Allow || self.acl_allows;
        match who {
            _ if self.bucket_policy == Verdict::Deny => false,
            Requester::Owner(ExplicitDeny) | Requester::OtherAccount(ExplicitDeny) => false,
            Requester::Owner(d) => d == Allow || granted,
            Requester::OtherAccount(d) => d == Allow && granted,
            Requester::Anonymous => granted,
        }
    }
}

pub trait ObjectService: Send + Sync {
    /// Names the operation, or refuses a malformed request (bad bucket name, unknown sub-resource).
    fn route(&self, req: &ObjectRequest) -> Result<ObjectOp, ApiError>;

    /// Looks up what authorization needs: owner, bucket policy verdict, ACL grant.
    fn access<'a>(
        &'a self,
        op: &'a ObjectOp,
        req: &'a ObjectRequest,
        caller: Option<&'a Caller>,
    ) -> BoxFut<'a, Result<ResourceAccess, ApiError>>;

    /// Performs an authorized request. `caller` is `None` for anonymous requests.
    fn handle<'a>(
        &'a self,
        op: &'a ObjectOp,
        req: ObjectRequest,
        caller: Option<&'a Caller>,
    ) -> BoxFut<'a, Result<ObjectResponse, ApiError>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Decision::{Allow, ExplicitDeny, ImplicitDeny};

    fn ra(bucket_policy: Verdict, acl_allows: bool) -> ResourceAccess {
        ResourceAccess {
            owner: Some("111".into()),
            bucket_missing: false,
            resource: "acs:oss:*:111:b/k".into(),
            bucket_policy,
            acl_allows,
            objects: vec![],
            ram_action: None,
        }
    }

    #[test]
    fn cross_account_needs_both_sides() {
        use Requester::{Anonymous, OtherAccount, Owner};
        let granted = ra(Verdict::Allow, false);
        let public = ra(Verdict::NotApplicable, true);
        let nothing = ra(Verdict::NotApplicable, false);
        let denied = ra(Verdict::Deny, true);
        // The owner's principals: RAM or the owner's grant.
        assert!(nothing.permits(Owner(Allow)));
        assert!(granted.permits(Owner(ImplicitDeny)));
        assert!(!granted.permits(Owner(ExplicitDeny)));
        assert!(!denied.permits(Owner(Allow)));
        // Other accounts: their own RAM and the owner's grant.
        assert!(granted.permits(OtherAccount(Allow)));
        assert!(public.permits(OtherAccount(Allow)));
        assert!(!granted.permits(OtherAccount(ImplicitDeny)));
        assert!(!granted.permits(OtherAccount(ExplicitDeny)));
        assert!(!public.permits(OtherAccount(ExplicitDeny)));
        assert!(!nothing.permits(OtherAccount(Allow)));
        // Anonymous callers: the owner's grant alone.
        assert!(granted.permits(Anonymous) && public.permits(Anonymous));
        assert!(!nothing.permits(Anonymous) && !denied.permits(Anonymous));
    }
}
