//! Errors as DynamoDB answers them: HTTP 400 (500 for internal failures) with a JSON body
//! naming the error in `__type` (`com.amazonaws.dynamodb.v20120810#Code`) and a
//! `message`. `TransactionCanceledException` spells it `Message` and adds
//! `CancellationReasons`, one per action, as DynamoDB does.

use serde_json::{Map, Value as Json, json};

const TYPE_PREFIX: &str = "com.amazonaws.dynamodb.v20120810#";

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
    pub status: u16,
    /// Members added to the body (`CancellationReasons`, `Item`).
    pub extra: Map<String, Json>,
}

/// Why one action of a transaction took part in its cancellation.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    pub code: &'static str,
    pub message: Option<String>,
    /// The item as it was, for a failed condition with
    /// `ReturnValuesOnConditionCheckFailure: ALL_OLD`.
    pub item: Option<Json>,
}

impl Reason {
    pub const NONE: &'static str = "None";
    pub const CONDITIONAL_CHECK_FAILED: &'static str = "ConditionalCheckFailed";
    pub const TRANSACTION_CONFLICT: &'static str = "TransactionConflict";
    pub const VALIDATION_ERROR: &'static str = "ValidationError";
    pub const THROTTLING_ERROR: &'static str = "ThrottlingError";

    pub fn none() -> Reason {
        Reason {
            code: Reason::NONE,
            message: None,
            item: None,
        }
    }

    pub fn new(code: &'static str, message: impl Into<String>) -> Reason {
        Reason {
            code,
            message: Some(message.into()),
            item: None,
        }
    }

    pub fn conflict() -> Reason {
        Reason::new(
            Reason::TRANSACTION_CONFLICT,
            "Transaction is ongoing for the item",
        )
    }

    pub fn is_none(&self) -> bool {
        self.code == Reason::NONE
    }

    fn to_json(&self) -> Json {
        let mut out = Map::new();
        out.insert("Code".into(), json!(self.code));
        if let Some(message) = &self.message {
            out.insert("Message".into(), json!(message));
        }
        if let Some(item) = &self.item {
            out.insert("Item".into(), item.clone());
        }
        Json::Object(out)
    }
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            status: 400,
            extra: Map::new(),
        }
    }

    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new("ValidationException", message)
    }

    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::new("SerializationException", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new("ResourceNotFoundException", message)
    }

    pub fn table_not_found() -> ApiError {
        ApiError::not_found("Requested resource not found")
    }

    pub fn conditional_check_failed(item: Option<Json>) -> ApiError {
        let mut error = ApiError::new(
            "ConditionalCheckFailedException",
            "The conditional request failed",
        );
        if let Some(item) = item {
            error.extra.insert("Item".into(), item);
        }
        error
    }

    /// A single-item write that met a transaction in flight on its item.
    pub fn transaction_conflict() -> ApiError {
        ApiError::new(
            "TransactionConflictException",
            "Transaction is ongoing for the item",
        )
    }

    /// A partition over its throughput.
    pub fn throughput_exceeded() -> ApiError {
        ApiError::new(
            "ProvisionedThroughputExceededException",
            "Throughput exceeds the current capacity for one or more partitions of your table. \
             Reduce the request rate for the partition keys named in the request.",
        )
    }

    pub fn cancelled(reasons: Vec<Reason>) -> ApiError {
        let codes: Vec<&str> = reasons.iter().map(|r| r.code).collect();
        let mut error = ApiError::new(
            "TransactionCanceledException",
            format!(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                codes.join(", ")
            ),
        );
        error.extra.insert(
            "CancellationReasons".into(),
            Json::Array(reasons.iter().map(Reason::to_json).collect()),
        );
        error
    }

    /// The reasons of a `TransactionCanceledException`.
    pub fn reasons(&self) -> Vec<String> {
        self.extra
            .get("CancellationReasons")
            .and_then(Json::as_array)
            .map(|reasons| {
                reasons
                    .iter()
                    .filter_map(|r| r["Code"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn body(&self) -> Json {
        let mut out = Map::new();
        out.insert(
            "__type".into(),
            json!(format!("{TYPE_PREFIX}{}", self.code)),
        );
        let message_key = if self.code == "TransactionCanceledException" {
            "Message"
        } else {
            "message"
        };
        out.insert(message_key.into(), json!(self.message));
        for (k, v) in &self.extra {
            out.insert(k.clone(), v.clone());
        }
        Json::Object(out)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}
