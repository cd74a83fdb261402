//! Every way a request can fail, and the HTTP answer each one gets. Refusals carry a JSON
//! body `{"error": ..., "message": ...}` (a 413 also `"maxBytes"`, the body limit); what
//! the client must act on travels as a status-200 protocol body instead (see
//! `protocol::ClientError`).

use crate::auth::Refusal;
use crate::engine::pull::PullError;
use crate::engine::push::PushError;
use crate::ids::IdError;
use crate::protocol::ProtocolError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no such route: {method} {path}")]
    NotFound { method: String, path: String },
    #[error("method {0} is not allowed; use POST")]
    MethodNotAllowed(String),
    #[error("request body of {size} bytes exceeds the {max}-byte limit")]
    PayloadTooLarge { size: usize, max: usize },
    #[error("query parameter `spaceID` is missing")]
    MissingSpaceId,
    #[error("field `spaceID` of the request body is missing")]
    MissingSpaceIdField,
    #[error("invalid spaceID: {0}")]
    InvalidSpaceId(IdError),
    #[error("space not found")]
    SpaceNotFound,
    #[error("a space with this spaceID exists already")]
    SpaceExists,
    #[error("{0}")]
    BadRequest(#[from] ProtocolError),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    InvalidCookie(String),
    #[error("the space is busy; retry")]
    Contended,
    #[error("the request ran out of time; retry")]
    DeadlineExceeded,
    #[error("storage is unavailable; retry")]
    Unavailable(#[source] StoreError),
    /// Retrying will not help: stored data that cannot be read, or a request the store
    /// refuses. Logged; the body says only what kind of failure it was.
    #[error("the server cannot complete this request: {0}")]
    Internal(#[source] StoreError),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } | ApiError::SpaceNotFound => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::MissingSpaceId
            | ApiError::MissingSpaceIdField
            | ApiError::InvalidSpaceId(_)
            | ApiError::BadRequest(_)
            | ApiError::InvalidCookie(_) => 400,
            ApiError::SpaceExists => 409,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) | ApiError::QuotaExceeded(_) => 403,
            ApiError::TooManyRequests(_) => 429,
            ApiError::Contended | ApiError::DeadlineExceeded | ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// A stable, machine-readable code for the `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } => "NotFound",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::PayloadTooLarge { .. } => "PayloadTooLarge",
            ApiError::MissingSpaceId
            | ApiError::MissingSpaceIdField
            | ApiError::InvalidSpaceId(_) => "InvalidSpaceID",
            ApiError::SpaceNotFound => "SpaceNotFound",
            ApiError::SpaceExists => "SpaceExists",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::QuotaExceeded(_) => "QuotaExceeded",
            ApiError::TooManyRequests(_) => "TooManyRequests",
            ApiError::InvalidCookie(_) => "InvalidCookie",
            ApiError::Contended => "Contended",
            ApiError::DeadlineExceeded => "DeadlineExceeded",
            ApiError::Unavailable(_) => "Unavailable",
            ApiError::Internal(_) => "Internal",
        }
    }

    pub fn body(&self) -> serde_json::Value {
        let message = match self {
            // The store's own words may name stored data; the log has them.
            ApiError::Internal(StoreError::Corrupt(_)) => {
                "the server cannot complete this request: stored data is corrupt".to_owned()
            }
            ApiError::Internal(_) => {
                "the server cannot complete this request: storage refused it".to_owned()
            }
            other => other.to_string(),
        };
        let mut body = serde_json::json!({ "error": self.code(), "message": message });
        // A client that batches (e.g. a splitting pusher) learns the limit from the answer.
        if let ApiError::PayloadTooLarge { max, .. } = self {
            body["maxBytes"] = serde_json::json!(max);
        }
        body
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if matches!(e, StoreError::Busy(_)) {
            ApiError::Contended
        } else if e.is_temporary() {
            ApiError::Unavailable(e)
        } else {
            ApiError::Internal(e)
        }
    }
}

impl From<PushError> for ApiError {
    fn from(e: PushError) -> Self {
        match e {
            PushError::SpaceNotFound => ApiError::SpaceNotFound,
            e @ (PushError::ClientInOtherGroup { .. } | PushError::GroupOwnedByOtherUser) => {
                ApiError::Forbidden(e.to_string())
            }
            PushError::Refused(refusal) => refusal.into(),
            PushError::Contended { .. } => ApiError::Contended,
            PushError::DeadlineExceeded => ApiError::DeadlineExceeded,
            PushError::Store(e) => e.into(),
        }
    }
}

impl From<PullError> for ApiError {
    fn from(e: PullError) -> Self {
        match e {
            PullError::SpaceNotFound => ApiError::SpaceNotFound,
            e @ PullError::GroupOwnedByOtherUser => ApiError::Forbidden(e.to_string()),
            PullError::Refused(refusal) => refusal.into(),
            PullError::Contended => ApiError::Contended,
            e @ PullError::CookieFromTheFuture { .. } => ApiError::InvalidCookie(e.to_string()),
            PullError::Store(e) => e.into(),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Forbidden(why) => ApiError::Forbidden(why),
            // Indistinguishable from a space that does not exist.
            Refusal::Hidden => ApiError::SpaceNotFound,
        }
    }
}
