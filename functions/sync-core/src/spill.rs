//! Answers too large for their transport: the body goes to a place the client can fetch
//! it from (an [`AnswerSpill`]), and the client is sent there with `303 See Other`.
//!
//! A space's first pull holds the whole space. Lambda buffers a response of at most
//! 6 MB, so past that size a pull could never be answered directly, and every new client
//! of the space would fail its first pull for good. A `303` after a `POST` is followed
//! by `fetch` with a `GET` without a body, which is what the `replicache` client's puller
//! does unmodified; the body it reads there is the pull response itself.
//!
//! The transport decides what "too large" means (it knows its own encoding: base64,
//! envelopes); this module decides what to answer.

use crate::api::ApiResponse;
use async_trait::async_trait;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where an oversized answer was put: a URL that anyone holding it may `GET` until it
/// expires (the URL is the capability: unguessable, short-lived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpilledAt {
    pub url: String,
    pub expires_in: Duration,
}

/// The answer could not be put anywhere. The message names the failure, never the body.
#[derive(Debug, thiserror::Error)]
#[error("the answer could not be stored: {0}")]
pub struct SpillError(pub String);

/// A place to put an answer too large to send directly.
#[async_trait]
pub trait AnswerSpill: Send + Sync {
    /// Stores `body` under a new unguessable name, to be served with `content_type` (and
    /// `content_encoding` when the body is compressed, so that the client's `fetch`
    /// decodes it as it would the direct answer).
    async fn put(
        &self,
        body: Vec<u8>,
        content_type: &'static str,
        content_encoding: Option<&'static str>,
    ) -> Result<SpilledAt, SpillError>;
}

/// How a response goes back.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// As it is.
    Direct(ApiResponse),
    /// `303 See Other` to `location`, with `response` (a short JSON note) as its body.
    Redirect {
        location: String,
        response: ApiResponse,
    },
}

/// Lambda's documented limit of a buffered (synchronous) response: 6 MB, of the whole
/// JSON document a function returns to the runtime (the API Gateway envelope, with a
/// binary body in base64).
pub const LAMBDA_RESPONSE_LIMIT: usize = 6 * 1024 * 1024;
/// The default limit of an answer's encoded size: [`LAMBDA_RESPONSE_LIMIT`] less 256 KiB
/// (4 %), which covers the envelope's headers many times over and leaves room should the
/// runtime count differently.
pub const DEFAULT_LIMIT: usize = LAMBDA_RESPONSE_LIMIT - 256 * 1024;

/// The HTTP status of a redirected answer.
pub const SEE_OTHER: u16 = 303;
/// The error code of an answer that was too large and could not be stored (503: the
/// client retries; nothing was changed).
pub const SPILL_FAILED: &str = "AnswerUnavailable";

/// Answers over `limit` encoded bytes go to `spill`.
#[derive(Clone)]
pub struct Oversize {
    spill: Arc<dyn AnswerSpill>,
    limit: usize,
}

impl std::fmt::Debug for Oversize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oversize")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Oversize {
    pub fn new(spill: Arc<dyn AnswerSpill>, limit: usize) -> Self {
        Self { spill, limit }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// `response` as it is when its encoded size (`encoded_len`, as the transport sends
    /// it) is within the limit; otherwise stored and redirected to, or, when it cannot
    /// be stored, a JSON 503.
    pub async fn deliver(&self, response: ApiResponse, encoded_len: usize) -> Delivery {
        self.deliver_by(response, encoded_len, None).await
    }

    /// [`Oversize::deliver`], storing the answer by `deadline` when there is one (a store
    /// that takes longer is a failure to store: 503, retry), so that the transport still
    /// answers before it is cut off.
    pub async fn deliver_by(
        &self,
        response: ApiResponse,
        encoded_len: usize,
        deadline: Option<Instant>,
    ) -> Delivery {
        if encoded_len <= self.limit {
            return Delivery::Direct(response);
        }
        let bytes = response.body.len();
        let encoding = response.gzipped.then_some("gzip");
        let put = self.spill.put(response.body, "application/json", encoding);
        let stored = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline.into(), put)
                .await
                .unwrap_or_else(|_| Err(SpillError("not stored by the deadline".into()))),
            None => put.await,
        };
        match stored {
            Ok(at) => {
                tracing::info!(
                    bytes,
                    encoded_len,
                    limit = self.limit,
                    expires_in_s = at.expires_in.as_secs(),
                    "answer too large to send directly: redirected to its stored copy"
                );
                let note = json!({
                    "redirect": "SeeOther",
                    "message": format!(
                        "The answer ({bytes} bytes) is larger than this endpoint sends \
                         directly ({} bytes); GET it at the Location URL within {} seconds.",
                        self.limit,
                        at.expires_in.as_secs()
                    ),
                });
                Delivery::Redirect {
                    location: at.url,
                    response: ApiResponse::json(SEE_OTHER, &note),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, bytes, "answer too large to send and not stored");
                Delivery::Direct(ApiResponse::json(
                    503,
                    &json!({
                        "error": SPILL_FAILED,
                        "message": "the answer is too large to send directly and could not \
                                    be stored for fetching; retry",
                    }),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recording {
        put: Mutex<Vec<(Vec<u8>, Option<&'static str>)>>,
        fail: bool,
    }

    #[async_trait]
    impl AnswerSpill for Recording {
        async fn put(
            &self,
            body: Vec<u8>,
            content_type: &'static str,
            content_encoding: Option<&'static str>,
        ) -> Result<SpilledAt, SpillError> {
            assert_eq!(content_type, "application/json");
            if self.fail {
                return Err(SpillError("refused".into()));
            }
            self.put.lock().unwrap().push((body, content_encoding));
            Ok(SpilledAt {
                url: "https://example.test/a".into(),
                expires_in: Duration::from_secs(300),
            })
        }
    }

    fn response(len: usize, gzipped: bool) -> ApiResponse {
        ApiResponse {
            status: 200,
            body: vec![b' '; len],
            gzipped,
        }
    }

    #[tokio::test]
    async fn within_the_limit_is_direct_over_it_is_stored() {
        let spill = Arc::new(Recording::default());
        let oversize = Oversize::new(spill.clone(), 100);
        let small = response(10, false);
        assert_eq!(
            oversize.deliver(small.clone(), 100).await,
            Delivery::Direct(small)
        );
        assert!(spill.put.lock().unwrap().is_empty());
        let Delivery::Redirect { location, response } =
            oversize.deliver(self::response(90, true), 101).await
        else {
            panic!("not redirected");
        };
        assert_eq!(location, "https://example.test/a");
        assert_eq!(response.status, 303);
        assert_eq!(response.json_body().unwrap()["redirect"], "SeeOther");
        assert_eq!(*spill.put.lock().unwrap(), [(vec![b' '; 90], Some("gzip"))]);
    }

    struct Stuck;

    #[async_trait]
    impl AnswerSpill for Stuck {
        async fn put(
            &self,
            _: Vec<u8>,
            _: &'static str,
            _: Option<&'static str>,
        ) -> Result<SpilledAt, SpillError> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_store_past_the_deadline_is_a_503() {
        let oversize = Oversize::new(Arc::new(Stuck), 1);
        let deadline = Instant::now() + Duration::from_millis(50);
        let Delivery::Direct(r) = oversize
            .deliver_by(response(10, false), 10, Some(deadline))
            .await
        else {
            panic!("redirected");
        };
        assert_eq!(r.status, 503);
    }

    #[tokio::test]
    async fn a_failed_store_is_a_503() {
        let oversize = Oversize::new(
            Arc::new(Recording {
                fail: true,
                ..Recording::default()
            }),
            1,
        );
        let Delivery::Direct(r) = oversize.deliver(response(10, false), 10).await else {
            panic!("redirected");
        };
        assert_eq!(r.status, 503);
        assert_eq!(r.json_body().unwrap()["error"], SPILL_FAILED);
    }
}
