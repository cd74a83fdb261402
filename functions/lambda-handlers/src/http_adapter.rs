//! API Gateway HTTP API (payload format 2.0) events in, `sync_core` API calls out.

use crate::auth::{AuthMode, MissingUser, user_of_subject};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response, http::header};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use sync_core::SyncService;
use sync_core::api::{ApiRequest, ApiResponse, Route};
use sync_core::auth::ANONYMOUS;
use sync_core::error::ApiError;
use sync_core::spill::Oversize;

/// Time kept back from the invocation's deadline. Lambda ends an invocation at its deadline
/// (the function's `Timeout`) without a response: the work in flight is cut wherever it
/// is, and API Gateway answers a bare error of its own instead of the service's JSON 503
/// `DeadlineExceeded`, which says "retry". The service is therefore
/// asked to answer this much earlier, which leaves room for what happens after it
/// returns: turning the answer into the API Gateway response (a copy of up to 6 MB, and
/// base64 for gzip bodies), posting it to the Runtime API, and the skew between the
/// deadline Lambda computed and this process's clock. Half a second covers that many
/// times over, and is small beside the functions' timeouts (10 to 29 s). A push keeps its
/// own reserve on top (it starts no commit in its last seconds; see `sync_core::api`).
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// Lambda's longest function timeout. The deadline of a real invocation is never further
/// than this from the moment its event is handled.
const MAX_LAMBDA_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// When the service must have answered the invocation `event`: its Lambda deadline less
/// [`DEADLINE_MARGIN`]. `None` when the event carries no Lambda context, as in tests that
/// build events by hand, or a deadline no invocation can have (more than
/// [`MAX_LAMBDA_TIMEOUT`] away): emulators send placeholders, such as `cargo lambda
/// watch`, whose deadline is always 600000 ms after the epoch (1970). The service's own
/// bound applies then.
pub fn answer_by(event: &Request) -> Option<Instant> {
    let context = event.lambda_context_ref()?;
    // The deadline is wall-clock time (ms since the epoch); timers run on the monotonic
    // clock: convert once, here.
    let now = SystemTime::now();
    let remaining = match context.deadline().duration_since(now) {
        Ok(ahead) if ahead <= MAX_LAMBDA_TIMEOUT => ahead,
        Err(past) if past.duration() <= MAX_LAMBDA_TIMEOUT => Duration::ZERO,
        _ => {
            tracing::debug!(
                deadline_ms = context.deadline,
                "no plausible invocation deadline: the service's own bound applies"
            );
            return None;
        }
    };
    Some(Instant::now() + remaining.saturating_sub(DEADLINE_MARGIN))
}

/// The user of `event` in `mode`: in `jwt` mode the subject (`sub`) of the claims that the
/// HTTP API's JWT authorizer verified (`requestContext.authorizer.jwt.claims`); in `none`
/// mode nobody ([`ANONYMOUS`]).
pub fn user_of(event: &Request, mode: AuthMode) -> Result<String, MissingUser> {
    match mode {
        AuthMode::None => Ok(ANONYMOUS.to_owned()),
        AuthMode::Jwt => {
            let claims = match event.request_context_ref() {
                Some(RequestContext::ApiGatewayV2(context)) => context
                    .authorizer
                    .as_ref()
                    .and_then(|a| a.jwt.as_ref())
                    .map(|jwt| &jwt.claims),
                _ => None,
            };
            let claims = claims.ok_or(MissingUser::NoClaims)?;
            user_of_subject(claims.get("sub").map(String::as_str)).map(str::to_owned)
        }
    }
}

/// One HTTP function: the service, the routes this function is deployed for, and how its
/// requests are authenticated. A route outside the set is answered 404, so a mis-wired
/// integration is visible at once.
#[derive(Clone)]
pub struct HttpFunction {
    service: Arc<SyncService>,
    routes: &'static [Route],
    auth: AuthMode,
    /// Where answers too large for Lambda's response go ([`crate::answer_spill`]).
    oversize: Option<Oversize>,
}

impl HttpFunction {
    /// A function of the `none` auth mode: every request is anonymous.
    pub fn new(service: Arc<SyncService>, routes: &'static [Route]) -> Self {
        Self {
            service,
            routes,
            auth: AuthMode::None,
            oversize: None,
        }
    }

    /// The same function, redirecting answers over `oversize`'s limit to their stored
    /// copy (`None`: every answer direct).
    pub fn with_oversize(mut self, oversize: Option<Oversize>) -> Self {
        self.oversize = oversize;
        self
    }

    /// The same function in auth mode `auth`. The service should decide with the
    /// mode's policy ([`AuthMode::access_policy`]).
    pub fn with_auth(mut self, auth: AuthMode) -> Self {
        self.auth = auth;
        self
    }

    /// The routes it answers.
    pub fn routes(&self) -> &'static [Route] {
        self.routes
    }

    /// The auth mode it authenticates requests in.
    pub fn auth(&self) -> AuthMode {
        self.auth
    }

    /// Answers `event` before its Lambda deadline ([`answer_by`]); without one, within
    /// the service's own request timeout.
    pub async fn handle(&self, event: Request) -> Response<Body> {
        let deadline = answer_by(&event);
        let path = event.raw_http_path().to_owned();
        let query = event.query_string_parameters();
        let space_id = query.first("spaceID");
        let accepts_gzip = event
            .headers()
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("gzip"));
        let body: &[u8] = event.body().as_ref();
        let method = event.method().as_str();
        let mut request = ApiRequest {
            method,
            path: &path,
            space_id,
            body,
            accepts_gzip,
            user: ANONYMOUS,
        };
        let response = match Route::from_path(&path) {
            Some(route) if self.routes.contains(&route) => {
                // Defence in depth: in `jwt` mode API Gateway's authorizer has already
                // refused requests without a valid token.
                let user = match user_of(&event, self.auth) {
                    Ok(user) => user,
                    Err(e) => {
                        tracing::warn!(reason = %e, "request without a verified user");
                        let refused = ApiError::Unauthorized(e.to_string());
                        return to_lambda_response(self.service.refuse(request, &refused));
                    }
                };
                request.user = &user;
                match deadline {
                    Some(deadline) => self.service.handle_until(request, deadline).await,
                    None => self.service.handle(request).await,
                }
            }
            _ => {
                let refused = ApiError::NotFound {
                    method: method.to_owned(),
                    path: path.clone(),
                };
                self.service.refuse(request, &refused)
            }
        };
        match &self.oversize {
            Some(oversize) => {
                let encoded_len = crate::answer_spill::encoded_len(&response);
                let delivery = oversize.deliver_by(response, encoded_len, deadline).await;
                crate::answer_spill::to_lambda(delivery)
            }
            None => to_lambda_response(response),
        }
    }
}

pub(crate) fn to_lambda_response(response: ApiResponse) -> Response<Body> {
    let mut builder = Response::builder()
        .status(response.status)
        .header(header::CONTENT_TYPE, "application/json");
    let body = if response.gzipped {
        builder = builder.header(header::CONTENT_ENCODING, "gzip");
        // Binary bodies go back base64-encoded, as API Gateway requires.
        Body::Binary(response.body)
    } else {
        Body::Text(String::from_utf8_lossy(&response.body).into_owned())
    };
    builder.body(body).unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::Text(r#"{"error":"Internal"}"#.into()));
        *fallback.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// Runs the Lambda runtime loop for `function`.
pub async fn serve_http(function: HttpFunction) -> Result<(), Error> {
    lambda_http::run(lambda_http::service_fn(move |event: Request| {
        let function = function.clone();
        async move { Ok::<_, Error>(function.handle(event).await) }
    }))
    .await
}
