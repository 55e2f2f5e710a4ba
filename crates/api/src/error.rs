//! Errors in Alibaba's shape: an HTTP status, a dotted `Code`, a human `Message`.

use serde_json::Value;
use std::borrow::Cow;

#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: Cow<'static, str>,
    pub message: String,
    /// `AccessDeniedDetail` on authorization failures (boxed: rare, and it would make every
    /// `Result<_, ApiError>` large).
    pub access_denied_detail: Option<Box<Value>>,
    /// Milliseconds a throttled client should wait (`x-acs-retry-after`).
    pub retry_after_ms: Option<u64>,
    /// REST errors (OSS): extra elements of the error document and extra response headers.
    pub extra: Option<Box<ErrorExtra>>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorExtra {
    /// `<Name>value</Name>` elements after `<Message>` (e.g. `Key`, `StringToSign`).
    pub fields: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(status: u16, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            access_denied_detail: None,
            retry_after_ms: None,
            extra: None,
        }
    }

    /// Adds an element to the error document.
    pub fn with_field(mut self, name: &str, value: impl Into<String>) -> Self {
        self.extra.get_or_insert_default().fields.push((name.to_string(), value.into()));
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.extra.get_or_insert_default().headers.push((name.to_string(), value.into()));
        self
    }

    /// A required parameter is absent: `Missing<Name>` (dots dropped), 400.
    pub fn missing(name: &str) -> Self {
        Self::new(
            400,
            format!("Missing{}", name.replace('.', "")),
            format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
        )
    }

    /// A parameter has a bad value: `Invalid<Name>.Malformed`, 400.
    pub fn invalid(name: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            400,
            format!("Invalid{}.Malformed", name.replace('.', "")),
            format!("The specified parameter \"{name}\" is not valid: {why}"),
        )
    }

    pub fn internal() -> Self {
        Self::new(
            500,
            "InternalError",
            "The request processing has failed due to some unknown error, exception or failure.",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
    }
}

impl From<nimbus_store::StoreError> for ApiError {
    fn from(e: nimbus_store::StoreError) -> Self {
        use nimbus_store::StoreError as S;
        match e {
            S::Conflict => ApiError::new(
                409,
                "OperationConflict",
                "The resource was changed by another request at the same time. Retry the request.",
            ),
            other => {
                // Store failures are ours, not the caller's: log the cause, answer a generic 500.
                tracing::error!(error = %other, "store error while handling a request");
                ApiError::internal()
            }
        }
    }
}
