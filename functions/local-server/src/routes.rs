//! The HTTP surface: the sync API mounted onto [`SyncService`], the poke WebSocket, CORS,
//! and the web client behind them.

use crate::auth::{self, Auth, DEV_SIGN_IN_PATH};
use crate::config::AllowedOrigins;
use crate::metrics::{self, PrometheusMetrics};
use crate::poke_hub::{PokeHub, Subscription};
use crate::static_files;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE,
    LOCATION, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use sync_core::api::MAX_BODY_BYTES;
use sync_core::cookie::CookieKeys;
use sync_core::error::ApiError;
use sync_core::spill::{Delivery, Oversize};
use sync_core::{ApiRequest, ApiResponse, Route, SpaceId, Store, SyncService};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Bodies up to this size reach sync-core, which refuses those above
/// [`MAX_BODY_BYTES`] with its own JSON 413; larger ones are refused here, unread.
pub const READ_LIMIT_BYTES: usize = MAX_BODY_BYTES + 1024 * 1024;

/// A socket that cannot take a frame within this time is treated as dead.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub const API_PREFIX: &str = "/api/replicache/";
pub const POKE_PATH: &str = "/api/replicache/poke";
/// Prometheus scrapes the request figures here.
pub const METRICS_PATH: &str = "/metrics";

#[derive(Debug, Clone)]
pub struct AppOptions {
    pub allowed_origins: AllowedOrigins,
    pub client_dir: PathBuf,
    /// What pull cookies are signed with.
    pub cookie_keys: CookieKeys,
    /// A request not answered by then gets a 503.
    pub request_timeout: Duration,
    /// Who is asking: nobody in particular, or a bearer JWT's subject.
    pub auth: Auth,
    /// Poke sockets one space may have open; more are refused with a 429.
    pub max_sockets_per_space: usize,
    /// Where answers over its limit go (303 to their stored copy); `None`: all direct.
    pub oversize: Option<Oversize>,
}

impl AppOptions {
    /// The defaults of the configuration: no auth, 1,000 sockets per space.
    pub fn new(
        allowed_origins: AllowedOrigins,
        client_dir: PathBuf,
        cookie_keys: CookieKeys,
    ) -> Self {
        Self {
            allowed_origins,
            client_dir,
            cookie_keys,
            request_timeout: crate::config::DEFAULT_REQUEST_TIMEOUT,
            auth: Auth::None,
            max_sockets_per_space: crate::config::DEFAULT_MAX_SOCKETS_PER_SPACE,
            oversize: None,
        }
    }
}

#[derive(Clone)]
struct AppState {
    service: Arc<SyncService>,
    hub: Arc<PokeHub>,
    allowed_origins: AllowedOrigins,
    auth: Auth,
    max_sockets_per_space: usize,
    metrics: Arc<PrometheusMetrics>,
    oversize: Option<Oversize>,
}

/// The whole app on one router. `hub` receives the pokes of committed pushes and serves
/// the poke sockets.
pub fn app(store: Arc<dyn Store>, hub: Arc<PokeHub>, options: &AppOptions) -> Router {
    // The app's JavaScript mutators (`increment` among them) and the Rust ones.
    let mutators = Arc::new(js_mutators::app::registry_or_panic());
    let metrics = hub.metrics();
    let service = Arc::new(
        // The push answers right after its commit; its pokes go out in a task of their own.
        SyncService::new(store, mutators, hub.after_commit())
            .with_cookie_keys(options.cookie_keys.clone())
            .with_request_timeout(options.request_timeout)
            .with_access_policy(options.auth.policy())
            .with_metrics(metrics.clone()),
    );
    let state = AppState {
        service,
        hub,
        allowed_origins: options.allowed_origins.clone(),
        auth: options.auth.clone(),
        max_sockets_per_space: options.max_sockets_per_space,
        metrics,
        oversize: options.oversize.clone(),
    };
    let mut api = Router::new()
        // Other methods on the poke path get sync-core's JSON answer like any API path.
        .route(POKE_PATH, get(poke_socket).fallback(api))
        .route("/api/{*rest}", any(api))
        .route(METRICS_PATH, get(metrics_text));
    // Only with the development secret; elsewhere the path is an unknown route (404).
    if options.auth.jwt().is_some_and(|jwt| jwt.dev.is_some()) {
        api = api.route(DEV_SIGN_IN_PATH, post(dev_sign_in).fallback(not_post));
    }
    let api = api
        .layer(DefaultBodyLimit::max(READ_LIMIT_BYTES))
        .with_state(state);
    api.merge(static_files::router(&options.client_dir))
        .layer(cors(&options.allowed_origins))
}

/// `GET /metrics`: the request figures for Prometheus.
async fn metrics_text(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(text) => ([(CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "could not encode the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn cors(origins: &AllowedOrigins) -> CorsLayer {
    let allow_origin = match origins {
        AllowedOrigins::Any => AllowOrigin::any(),
        AllowedOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([
            CONTENT_TYPE,
            AUTHORIZATION,
            HeaderName::from_static("x-replicache-requestid"),
        ])
        .max_age(Duration::from_secs(3600))
}

#[derive(Debug, Deserialize)]
struct SpaceQuery {
    #[serde(rename = "spaceID")]
    space_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PokeQuery {
    #[serde(rename = "spaceID")]
    space_id: Option<String>,
    /// The bearer token in `jwt` mode: browsers cannot set headers on a WebSocket.
    token: Option<String>,
}

/// Whether `path` is one of the sync API's routes, which are authenticated in `jwt` mode
/// (sync-core matches routes by their path's end, so any path it would route counts).
fn is_sync_route(path: &str) -> bool {
    path.starts_with(API_PREFIX) || Route::from_path(path).is_some()
}

async fn dev_sign_in(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(jwt) = state.auth.jwt() else {
        return error_response(&ApiError::NotFound {
            method: "POST".into(),
            path: DEV_SIGN_IN_PATH.into(),
        });
    };
    match body {
        Ok(body) => auth::dev_sign_in(jwt, &body),
        Err(_) => json_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the request body could not be read",
        ),
    }
}

async fn not_post(method: Method) -> Response {
    error_response(&ApiError::MethodNotAllowed(method.to_string()))
}

async fn api(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<SpaceQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Authentication comes first: a stranger learns nothing, not even what was malformed.
    let user = if is_sync_route(uri.path()) {
        match state.auth.user(&headers) {
            Ok(user) => user,
            Err(e) => return auth::unauthorized(&e),
        }
    } else {
        sync_core::auth::ANONYMOUS.to_owned()
    };
    let query = match query {
        Ok(Query(q)) => q,
        Err(rejection) => return bad_query(&rejection),
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return too_large(&headers);
        }
        Err(rejection) => {
            tracing::info!(error = %rejection, "request body could not be read");
            return json_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "the request body could not be read",
            );
        }
    };
    let request = ApiRequest {
        method: method.as_str(),
        path: uri.path(),
        space_id: query.space_id.as_deref(),
        body: &body,
        accepts_gzip: accepts_gzip(&headers),
        user: &user,
    };
    let response = state.service.handle(request).await;
    match &state.oversize {
        Some(oversize) => {
            let encoded_len = response.body.len();
            delivery_response(oversize.deliver(response, encoded_len).await)
        }
        None => api_response(response),
    }
}

/// A delivery as HTTP: a redirect carries its `Location`.
fn delivery_response(delivery: Delivery) -> Response {
    match delivery {
        Delivery::Direct(r) => api_response(r),
        Delivery::Redirect { location, response } => match HeaderValue::from_str(&location) {
            Ok(location) => {
                let mut r = api_response(response);
                r.headers_mut().insert(LOCATION, location);
                r
            }
            Err(_) => json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                sync_core::spill::SPILL_FAILED,
                "the stored answer's URL is no header value; retry",
            ),
        },
    }
}

fn api_response(r: ApiResponse) -> Response {
    let mut response = Response::new(Body::from(r.body));
    *response.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    if r.gzipped {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

fn error_response(e: &ApiError) -> Response {
    api_response(ApiResponse::from_error(e))
}

/// Same shape as sync-core's errors, for the failures that happen before it is reached.
fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": code, "message": message });
    (status, axum::Json(body)).into_response()
}

fn bad_query(rejection: &QueryRejection) -> Response {
    json_error(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        &format!("invalid query string: {}", rejection.body_text()),
    )
}

fn too_large(headers: &HeaderMap) -> Response {
    let size = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match size {
        Some(size) => error_response(&ApiError::PayloadTooLarge {
            size,
            max: MAX_BODY_BYTES,
        }),
        // A chunked body has no declared size; the answer has sync-core's shape all the same.
        None => {
            let body = serde_json::json!({
                "error": "PayloadTooLarge",
                "message": format!("request body exceeds the {MAX_BODY_BYTES}-byte limit"),
                "maxBytes": MAX_BODY_BYTES,
            });
            (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
        }
    }
}

/// Whether `Accept-Encoding` allows gzip (`gzip;q=0` refuses it).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// `GET /api/replicache/poke?spaceID=...[&token=...]`: authenticates (in `jwt` mode),
/// checks that the user may use the space, then upgrades. The socket is registered before
/// the upgrade answer, so no poke after the client sees the socket open can be missed.
async fn poke_socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PokeQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // Browsers do not apply CORS to WebSockets, so the allowed origins are checked here.
    // Clients that are not browsers send no Origin and are let through, as with CORS.
    if let (AllowedOrigins::List(list), Some(origin)) =
        (&state.allowed_origins, headers.get(ORIGIN))
        && !list.contains(origin)
    {
        return json_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "this origin may not open poke sockets",
        );
    }
    let query = match query {
        Ok(Query(q)) => q,
        Err(rejection) => return bad_query(&rejection),
    };
    let user = match state.auth.socket_user(query.token.as_deref(), &headers) {
        Ok(user) => user,
        Err(e) => return auth::unauthorized(&e),
    };
    let space = match query.space_id.as_deref().map(SpaceId::parse) {
        None => return error_response(&ApiError::MissingSpaceId),
        Some(Err(e)) => return error_response(&ApiError::InvalidSpaceId(e)),
        Some(Ok(space)) => space,
    };
    // 404 for a space that does not exist and for one the user may not learn exists.
    if let Err(e) = state.service.authorize_subscribe(&user, &space).await {
        if e.status() >= 500 {
            tracing::warn!(space_id = %space, error = %e, "poke socket: store unavailable");
        }
        return error_response(&e);
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return json_error(
                rejection.status(),
                "UpgradeRequired",
                "this endpoint speaks WebSocket only",
            );
        }
    };
    let Some(subscription) = state
        .hub
        .try_subscribe(space.clone(), state.max_sockets_per_space)
    else {
        tracing::warn!(space_id = %space, limit = state.max_sockets_per_space,
            "poke socket refused: the space has the most sockets allowed");
        return error_response(&ApiError::TooManyRequests(format!(
            "this space has {} poke sockets open, the most allowed",
            state.max_sockets_per_space
        )));
    };
    upgrade.on_upgrade(move |socket| serve_socket(socket, subscription))
}

async fn serve_socket(mut socket: WebSocket, mut subscription: Subscription) {
    let space = subscription.space().clone();
    tracing::info!(space_id = %space, "poke socket opened");
    let reason = loop {
        tokio::select! {
            poke = subscription.next_poke() => {
                let Some(()) = poke else {
                    let frame = CloseFrame {
                        code: close_code::AWAY,
                        reason: "server shutting down".into(),
                    };
                    // Best effort: the server is going away either way.
                    let _ = send(&mut socket, Message::Close(Some(frame))).await;
                    break "server shutting down";
                };
                if !send(&mut socket, Message::Text("poke".into())).await {
                    break "send failed";
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) if text.trim().eq_ignore_ascii_case("ping") => {
                    if !send(&mut socket, Message::Text("pong".into())).await {
                        break "send failed";
                    }
                }
                // Protocol pings are answered by the WebSocket layer; anything else the
                // client says carries no meaning here.
                Some(Ok(Message::Close(_))) => break "closed by the client",
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break "connection lost",
            },
        }
    };
    drop(subscription);
    tracing::info!(space_id = %space, reason, "poke socket closed");
}

/// Sends one frame; `false` when the socket is gone or too slow to take it.
async fn send(socket: &mut WebSocket, message: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_accept(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn gzip_acceptance() {
        assert!(accepts_gzip(&with_accept(&["gzip, deflate, br"])));
        assert!(accepts_gzip(&with_accept(&["br", "GZIP;q=0.5"])));
        assert!(!accepts_gzip(&with_accept(&[])));
        assert!(!accepts_gzip(&with_accept(&["br, deflate"])));
        assert!(!accepts_gzip(&with_accept(&["gzip;q=0"])));
        assert!(!accepts_gzip(&with_accept(&["x-gzip-not"])));
    }
}
