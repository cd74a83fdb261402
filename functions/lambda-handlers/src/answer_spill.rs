//! The pull function's answers over Lambda's buffered response limit: put in the answer
//! bucket (`ANSWER_BUCKET`) and redirected to ([`sync_core::spill`]).

use crate::config;
use lambda_http::{Body, Response, http::header};
use std::sync::Arc;
use sync_core::api::ApiResponse;
use sync_core::spill::{Delivery, Oversize};

/// Answers larger than this, encoded as Lambda sends them ([`encoded_len`]), are
/// redirected (see [`sync_core::spill::DEFAULT_LIMIT`] for the margin).
pub const DEFAULT_LIMIT: usize = sync_core::spill::DEFAULT_LIMIT;
/// The API Gateway response envelope around the body (status, headers, flags), rounded
/// up generously: its few headers take about 200 bytes.
const ENVELOPE_BYTES: usize = 1024;

/// The size of `response` as the runtime sends it: the body base64-encoded when gzipped,
/// JSON-escaped as a string otherwise, inside the envelope.
pub fn encoded_len(response: &ApiResponse) -> usize {
    let body = if response.gzipped {
        response.body.len().div_ceil(3) * 4
    } else {
        response.body.iter().map(|b| json_escaped_len(*b)).sum()
    };
    body + ENVELOPE_BYTES
}

/// Bytes that one byte of a UTF-8 string takes inside a JSON string (serde_json's escapes).
fn json_escaped_len(byte: u8) -> usize {
    match byte {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
        0..=0x1f => 6,
        _ => 1,
    }
}

/// The pull function's spill: the bucket `ANSWER_BUCKET` (through `S3_ENDPOINT` for
/// local runs) with [`DEFAULT_LIMIT`]; `None`, with a warning, when no bucket is set
/// (answers are then always direct, and those over the limit fail).
pub async fn from_env() -> Option<Oversize> {
    let Some(bucket) = config::optional(config::ANSWER_BUCKET) else {
        tracing::warn!(
            "ANSWER_BUCKET is not set: pull answers over Lambda's response limit cannot be sent"
        );
        return None;
    };
    let endpoint = config::optional(config::S3_ENDPOINT);
    let client = spill_s3::client_for(endpoint.as_deref()).await;
    Some(Oversize::new(
        Arc::new(spill_s3::S3Spill::new(client, bucket)),
        DEFAULT_LIMIT,
    ))
}

/// The Lambda response of a delivery: a redirect carries its `Location`.
pub fn to_lambda(delivery: Delivery) -> Response<Body> {
    match delivery {
        Delivery::Direct(response) => crate::http_adapter::to_lambda_response(response),
        Delivery::Redirect { location, response } => {
            let mut lambda = crate::http_adapter::to_lambda_response(response);
            match header::HeaderValue::from_str(&location) {
                Ok(value) => {
                    lambda.headers_mut().insert(header::LOCATION, value);
                    lambda.headers_mut().insert(
                        header::CACHE_CONTROL,
                        header::HeaderValue::from_static("no-store"),
                    );
                    lambda
                }
                Err(_) => {
                    tracing::warn!("a stored answer's URL is no header value");
                    crate::http_adapter::to_lambda_response(ApiResponse {
                        status: 503,
                        body: br#"{"error":"AnswerUnavailable","message":"retry"}"#.to_vec(),
                        gzipped: false,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_sizes() {
        let text = ApiResponse {
            status: 200,
            body: br#"{"a":"b\\c"}"#.to_vec(),
            gzipped: false,
        };
        let escaped = serde_json::to_string(std::str::from_utf8(&text.body).unwrap()).unwrap();
        // Less the two quotes around the string.
        assert_eq!(encoded_len(&text), escaped.len() - 2 + ENVELOPE_BYTES);
        let binary = ApiResponse {
            status: 200,
            body: vec![0; 10],
            gzipped: true,
        };
        assert_eq!(encoded_len(&binary), 16 + ENVELOPE_BYTES);
    }
}
