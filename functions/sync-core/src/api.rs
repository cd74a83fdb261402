//! The HTTP API, independent of the transport: a handler turns its event into an
//! [`ApiRequest`] and sends back the [`ApiResponse`].
//!
//! Routes (all `POST`, JSON bodies):
//! - `/api/replicache/createSpace`, `/api/replicache/spaceExists`,
//!   `/api/replicache/spaceAccess?spaceID=...`: see [`crate::space_routes`];
//! - `/api/replicache/push?spaceID=...` and `/api/replicache/pull?spaceID=...`: the
//!   Replicache protocol, version 1.
//!
//! The transport authenticates and passes the user ([`ApiRequest::user`]); every route is
//! authorized by the service's [`AccessPolicy`].

use crate::auth::{AccessPolicy, Action};
use crate::cookie::CookieKeys;
use crate::engine::{self, PushConfig};
use crate::error::ApiError;
use crate::ids::SpaceId;
use crate::metrics::{MetricsSink, NoMetrics, PushFigures, RequestMetrics};
use crate::mutators::Registry;
use crate::poke::Poker;
use crate::protocol::{self, ClientError, Parsed};
use crate::recent_reads::RecentReads;
use crate::space_locks::SpaceLocks;
use crate::space_routes;
use crate::store::Store;
use serde_json::{Value, json};
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lambda's request payload limit is 6 MB; nothing larger reaches a function.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
/// Responses smaller than this are not worth compressing.
const GZIP_MIN_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    CreateSpace,
    SpaceExists,
    SpaceAccess,
    Push,
    Pull,
}

impl Route {
    /// Matches on the path's end so the routes work behind any prefix (an API Gateway
    /// stage, `cargo lambda watch`'s `/lambda-url/<function>`).
    pub fn from_path(path: &str) -> Option<Route> {
        let path = path.trim_end_matches('/');
        [
            ("/replicache/createSpace", Route::CreateSpace),
            ("/replicache/spaceExists", Route::SpaceExists),
            ("/replicache/spaceAccess", Route::SpaceAccess),
            ("/replicache/push", Route::Push),
            ("/replicache/pull", Route::Pull),
        ]
        .into_iter()
        .find(|(suffix, _)| path.ends_with(suffix))
        .map(|(_, route)| route)
    }

    pub fn name(self) -> &'static str {
        match self {
            Route::CreateSpace => "createSpace",
            Route::SpaceExists => "spaceExists",
            Route::SpaceAccess => "spaceAccess",
            Route::Push => "push",
            Route::Pull => "pull",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The `spaceID` query parameter, decoded.
    pub space_id: Option<&'a str>,
    pub body: &'a [u8],
    /// The client sent `Accept-Encoding` with gzip.
    pub accepts_gzip: bool,
    /// The authenticated user; [`crate::auth::ANONYMOUS`] without sign-in.
    pub user: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Vec<u8>,
    /// The body is gzip-compressed (`Content-Encoding: gzip`).
    pub gzipped: bool,
}

impl ApiResponse {
    pub(crate) fn json(status: u16, value: &impl serde::Serialize) -> Self {
        Self {
            status,
            body: serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()),
            gzipped: false,
        }
    }

    pub fn from_error(e: &ApiError) -> Self {
        Self::json(e.status(), &e.body())
    }

    /// The body as JSON (decompressed); for tests and tools.
    pub fn json_body(&self) -> Option<Value> {
        if self.gzipped {
            let mut out = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(self.body.as_slice()),
                &mut out,
            )
            .ok()?;
            serde_json::from_slice(&out).ok()
        } else {
            serde_json::from_slice(&self.body).ok()
        }
    }

    fn maybe_gzip(mut self, accepts_gzip: bool) -> Self {
        if accepts_gzip && self.body.len() >= GZIP_MIN_BYTES {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            if enc.write_all(&self.body).is_ok()
                && let Ok(compressed) = enc.finish()
            {
                self.body = compressed;
                self.gzipped = true;
            }
        }
        self
    }
}

/// How long a request may take when its transport sets no deadline of its own: under API
/// Gateway's 30 s integration timeout, so that a stuck request is answered (503, retry)
/// rather than cut.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(25);
/// Time a push keeps in hand at its deadline: it starts no retry or further commit with
/// less left, so that it can still finish the commit under way and answer.
const PUSH_RESERVE_MAX: Duration = Duration::from_secs(2);

pub struct SyncService {
    store: Arc<dyn Store>,
    mutators: Arc<Registry>,
    poker: Arc<dyn Poker>,
    push_config: PushConfig,
    push_turns: SpaceLocks,
    recent_reads: RecentReads,
    cookie_keys: CookieKeys,
    request_timeout: Duration,
    access: AccessPolicy,
    metrics: Arc<dyn MetricsSink>,
}

/// A route's answer and what the metrics and the request's log line need to know of it
/// beyond the response.
struct Handled {
    response: ApiResponse,
    /// A protocol error answered with status 200.
    refusal: Option<&'static str>,
    push: Option<PushFigures>,
    log: LogFigures,
}

impl Handled {
    fn refused(error: &ApiError) -> Self {
        Handled {
            refusal: Some(error.code()),
            ..ApiResponse::from_error(error).into()
        }
    }
}

/// What the request's log line adds to the metrics record: IDs and protocol positions,
/// which are no metric dimension (never user data: no mutation arguments, no entries).
#[derive(Default)]
struct LogFigures {
    /// A validated client group ID (`validate_client_id`), set once the body parsed.
    client_group: Option<String>,
    /// Mutations in the push.
    mutations: Option<usize>,
    /// Whether the push left mutations for the client's next push (at its deadline or
    /// its cap).
    truncated: Option<bool>,
    /// The order of the pull's cookie (`None` for a null cookie or an unusable number).
    cookie_in: Option<u64>,
    /// The order of the cookie answered.
    cookie_out: Option<u64>,
    patch_ops: Option<usize>,
}

impl From<ApiResponse> for Handled {
    fn from(response: ApiResponse) -> Self {
        Self {
            response,
            refusal: None,
            push: None,
            log: LogFigures::default(),
        }
    }
}

impl SyncService {
    /// A service whose cookies are signed with a random key: give it the deployment's key
    /// ([`SyncService::with_cookie_keys`]) so that every process honours every other's
    /// cookies after a restore.
    pub fn new(store: Arc<dyn Store>, mutators: Arc<Registry>, poker: Arc<dyn Poker>) -> Self {
        Self {
            store,
            mutators,
            poker,
            push_config: PushConfig::default(),
            push_turns: SpaceLocks::default(),
            recent_reads: RecentReads::default(),
            cookie_keys: CookieKeys::random(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            access: AccessPolicy::anonymous(),
            metrics: Arc::new(NoMetrics),
        }
    }

    /// Where the figures of each request go ([`NoMetrics`] by default).
    pub fn with_metrics(mut self, sink: Arc<dyn MetricsSink>) -> Self {
        self.metrics = sink;
        self
    }

    /// Who may sync what ([`AccessPolicy::anonymous`] by default: without sign-in, every
    /// space is open to anyone with its link).
    pub fn with_access_policy(mut self, policy: AccessPolicy) -> Self {
        self.access = policy;
        self
    }

    pub fn access_policy(&self) -> &AccessPolicy {
        &self.access
    }

    /// Whether `user` may open a poke socket on `space`: `Ok`, or the refusal to answer
    /// (404 for a space that does not exist or that the user may not learn exists).
    pub async fn authorize_subscribe(&self, user: &str, space: &SpaceId) -> Result<(), ApiError> {
        let access = self
            .store
            .space_access(space)
            .await?
            .ok_or(ApiError::SpaceNotFound)?;
        self.access
            .caller(user)
            .authorize(space, Some(&access), Action::Subscribe)
            .map_err(ApiError::from)
    }

    pub fn with_push_config(mut self, config: PushConfig) -> Self {
        self.push_config = config;
        self
    }

    pub fn with_cookie_keys(mut self, keys: CookieKeys) -> Self {
        self.cookie_keys = keys;
        self
    }

    /// The bound of [`SyncService::handle`] (transports with their own deadline use
    /// [`SyncService::handle_until`]).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Routes by path and answers within the service's request timeout; never fails:
    /// every error becomes a response.
    pub async fn handle(&self, req: ApiRequest<'_>) -> ApiResponse {
        self.handle_until(req, Instant::now() + self.request_timeout)
            .await
    }

    /// [`SyncService::handle`], answering by `deadline` (503 `DeadlineExceeded` when the
    /// work is not done by then).
    pub async fn handle_until(&self, req: ApiRequest<'_>, deadline: Instant) -> ApiResponse {
        let started = Instant::now();
        let route = Route::from_path(req.path);
        let work = async {
            match route {
                Some(route) => self.handle_route(route, req, deadline).await,
                None => Err(ApiError::NotFound {
                    method: req.method.to_owned(),
                    path: req.path.to_owned(),
                }),
            }
        };
        let result = tokio::time::timeout_at(deadline.into(), work)
            .await
            .unwrap_or(Err(ApiError::DeadlineExceeded));
        let handled = match (route, result) {
            (_, Ok(handled)) => handled,
            (None, Err(e)) => Handled::refused(&e),
            (Some(route), Err(e)) => {
                if e.status() >= 500 {
                    tracing::warn!(route = route.name(), error = %e, "request failed");
                }
                Handled::refused(&e)
            }
        };
        self.finish(&req, route, started, handled)
    }

    /// Answers `req` with `error`, refused by the transport before the service handled it
    /// (no verified user, a route this deployment does not serve), and counts and logs it
    /// as every request is.
    pub fn refuse(&self, req: ApiRequest<'_>, error: &ApiError) -> ApiResponse {
        self.finish(
            &req,
            Route::from_path(req.path),
            Instant::now(),
            Handled::refused(error),
        )
    }

    /// The request's metrics record and log line, then its response.
    fn finish(
        &self,
        req: &ApiRequest<'_>,
        route: Option<Route>,
        started: Instant,
        handled: Handled,
    ) -> ApiResponse {
        let response = handled.response;
        let duration = started.elapsed();
        self.metrics.record(&RequestMetrics {
            route,
            status: response.status,
            refusal: handled.refusal,
            duration,
            request_bytes: req.body.len(),
            response_bytes: response.body.len(),
            push: handled.push,
        });
        // The one line per request (warnings and errors are logged where they arise). On
        // Lambda it runs inside the runtime's invocation span, which carries the request ID.
        let push = handled.push.unwrap_or_default();
        let pushed = handled.push.is_some();
        let log = &handled.log;
        tracing::info!(
            route = route.map(Route::name).unwrap_or("none"),
            // Only a valid ID is logged: the raw query value is whatever the client sent.
            space_id = req.space_id.filter(|s| SpaceId::parse(s).is_ok()),
            client_group_id = log.client_group.as_deref(),
            status = response.status,
            refusal = handled.refusal,
            duration_ms = duration.as_secs_f64() * 1000.0,
            request_bytes = req.body.len(),
            response_bytes = response.body.len(),
            mutations = log.mutations,
            processed = pushed.then_some(push.applied + push.failed),
            failed = pushed.then_some(push.failed),
            conflicts = pushed.then_some(push.conflicts),
            commits = pushed.then_some(push.commits),
            truncated = log.truncated,
            cookie_order_in = log.cookie_in,
            cookie_order_out = log.cookie_out,
            patch_ops = log.patch_ops,
            "request"
        );
        response
    }

    async fn handle_route(
        &self,
        route: Route,
        req: ApiRequest<'_>,
        deadline: Instant,
    ) -> Result<Handled, ApiError> {
        if !req.method.eq_ignore_ascii_case("POST") {
            return Err(ApiError::MethodNotAllowed(req.method.to_owned()));
        }
        if req.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                size: req.body.len(),
                max: MAX_BODY_BYTES,
            });
        }
        match route {
            Route::CreateSpace => {
                space_routes::create_space(self.store.as_ref(), &self.access, req.user, req.body)
                    .await
                    .map(Handled::from)
            }
            Route::SpaceExists => {
                space_routes::space_exists(self.store.as_ref(), &self.access, req.user, req.body)
                    .await
                    .map(Handled::from)
            }
            Route::SpaceAccess => {
                let space = query_space(req.space_id)?;
                space_routes::space_access(
                    self.store.as_ref(),
                    &self.access,
                    req.user,
                    &space,
                    req.body,
                )
                .await
                .map(Handled::from)
            }
            Route::Push => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                let soft = deadline - (remaining / 4).min(PUSH_RESERVE_MAX);
                self.push(&query_space(req.space_id)?, req, soft).await
            }
            Route::Pull => self.pull(&query_space(req.space_id)?, req).await,
        }
    }

    async fn push(
        &self,
        space: &SpaceId,
        req: ApiRequest<'_>,
        deadline: Instant,
    ) -> Result<Handled, ApiError> {
        let push = match protocol::parse_push(req.body)? {
            Parsed::Supported(push) => push,
            Parsed::VersionNotSupported(version_type) => {
                return Ok(Handled {
                    refusal: Some("VersionNotSupported"),
                    ..ApiResponse::json(200, &ClientError::VersionNotSupported { version_type })
                        .into()
                });
            }
        };
        let turn = self.push_turns.lock(space).await;
        let result = engine::push_until(
            self.store.as_ref(),
            &self.mutators,
            &self.push_config,
            space,
            self.access.caller(req.user),
            &push,
            Some(deadline),
            &self.recent_reads.of(space),
        )
        .await;
        // A failed push forgets the space's reads: the next one reads without them.
        let read_keys = result
            .as_ref()
            .map(|outcome| outcome.read_keys.clone())
            .unwrap_or_default();
        self.recent_reads.remember(space, read_keys);
        drop(turn);
        let committed = match &result {
            Ok(outcome) => outcome.commits,
            Err(failure) => failure.committed,
        };
        if committed > 0 {
            // After the commit, never before; and also when a later commit of the same
            // push failed: what was committed stands.
            self.poker.poke(space).await;
        }
        let outcome = result.map_err(|failure| ApiError::from(failure.error))?;
        let figures = Some(PushFigures {
            applied: outcome.processed.saturating_sub(outcome.failed),
            failed: outcome.failed,
            conflicts: outcome.conflicts,
            commits: outcome.commits,
        });
        let log = LogFigures {
            client_group: Some(push.client_group_id),
            mutations: Some(push.mutations.len()),
            truncated: Some(outcome.truncated),
            ..LogFigures::default()
        };
        if outcome.client_state_not_found {
            return Ok(Handled {
                response: ApiResponse::json(200, &ClientError::ClientStateNotFound),
                refusal: Some("ClientStateNotFound"),
                push: figures,
                log,
            });
        }
        Ok(Handled {
            response: ApiResponse::json(200, &json!({})),
            refusal: None,
            push: figures,
            log,
        })
    }

    async fn pull(&self, space: &SpaceId, req: ApiRequest<'_>) -> Result<Handled, ApiError> {
        let pull = match protocol::parse_pull(req.body)? {
            Parsed::Supported(pull) => pull,
            Parsed::VersionNotSupported(version_type) => {
                return Ok(Handled {
                    refusal: Some("VersionNotSupported"),
                    ..ApiResponse::json(200, &ClientError::VersionNotSupported { version_type })
                        .into()
                });
            }
        };
        let response = engine::pull(
            self.store.as_ref(),
            &self.cookie_keys,
            space,
            self.access.caller(req.user),
            &pull,
        )
        .await?;
        let log = LogFigures {
            cookie_in: match pull.cookie {
                protocol::Cookie::Version(order) | protocol::Cookie::Signed { order, .. } => {
                    Some(order)
                }
                protocol::Cookie::Null | protocol::Cookie::Unusable(_) => None,
            },
            cookie_out: Some(response.cookie.order),
            patch_ops: Some(response.patch.len()),
            client_group: Some(pull.client_group_id),
            ..LogFigures::default()
        };
        // Written by hand: the same bytes as `ApiResponse::json` (whose fallback it keeps:
        // writing strings and integers into memory does not fail), at a fraction of the
        // cost for a large patch (see `PullResponse::to_json`).
        let body = response.to_json().unwrap_or_else(|_| b"{}".to_vec());
        Ok(Handled {
            log,
            ..ApiResponse {
                status: 200,
                body,
                gzipped: false,
            }
            .maybe_gzip(req.accepts_gzip)
            .into()
        })
    }
}

fn query_space(raw: Option<&str>) -> Result<SpaceId, ApiError> {
    SpaceId::parse(raw.ok_or(ApiError::MissingSpaceId)?).map_err(ApiError::InvalidSpaceId)
}
