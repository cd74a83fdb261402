//! Every Lambda function of the deployment, by the binary that serves it: its cold start
//! (everything it builds from the environment before the first invocation) and its
//! runtime loop. Each binary's `main` is one call, [`main`], so what a binary does is
//! library code that tests run: `tests/template.rs` cold-starts every function and holds
//! what it read and built against the template.

use crate::auth::{AuthMode, AuthorizerRequest, JwtVerifier, authorize_connect};
use crate::bootstrap::{self, BoxError};
use crate::connections::ConnectionTable;
use crate::gc::GcFunction;
use crate::permissions::{self, FunctionNeeds};
use crate::poker::ApiGatewayPoker;
use crate::websocket::WebSocketRoutes;
use crate::{HttpFunction, config, logging, poke_stream, serve_http, websocket};
use lambda_runtime::{LambdaEvent, service_fn};
use std::future::Future;
use std::sync::Arc;
use sync_core::Route;
use sync_core::poke::NoPoker;
use tracing_subscriber::EnvFilter;

/// One Lambda function: one binary of `src/bin/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    Spaces,
    Push,
    Pull,
    Poke,
    WsConnect,
    WsDisconnect,
    WsAuthorizer,
    Gc,
}

/// What invokes a function, and with what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// HTTP API routes (payload format 2.0).
    Http(&'static [Route]),
    /// Batches of the table's stream records (the event source mapping).
    StreamBatches,
    /// The WebSocket API's `$connect` route.
    WebSocketConnect,
    /// The WebSocket API's `$disconnect` route.
    WebSocketDisconnect,
    /// The WebSocket API's `$connect` REQUEST authorizer.
    ConnectAuthorizer,
    /// An EventBridge schedule (`AWS::Serverless::Function` event of type `Schedule`).
    Schedule,
}

const SPACES_ROUTES: &[Route] = &[Route::CreateSpace, Route::SpaceExists, Route::SpaceAccess];
const PUSH_ROUTES: &[Route] = &[Route::Push];
const PULL_ROUTES: &[Route] = &[Route::Pull];

impl Function {
    pub const ALL: [Function; 8] = [
        Function::Spaces,
        Function::Push,
        Function::Pull,
        Function::Poke,
        Function::WsConnect,
        Function::WsDisconnect,
        Function::WsAuthorizer,
        Function::Gc,
    ];

    /// Its needs from the deployment (environment, IAM).
    pub fn needs(self) -> &'static FunctionNeeds {
        match self {
            Function::Spaces => &permissions::SPACES,
            Function::Push => &permissions::PUSH,
            Function::Pull => &permissions::PULL,
            Function::Poke => &permissions::POKE,
            Function::WsConnect => &permissions::WS_CONNECT,
            Function::WsDisconnect => &permissions::WS_DISCONNECT,
            Function::WsAuthorizer => &permissions::WS_AUTHORIZER,
            Function::Gc => &permissions::GC,
        }
    }

    /// The binary's name: the template's `BuildProperties.Binary`.
    pub fn binary(self) -> &'static str {
        self.needs().binary
    }

    pub fn of_binary(binary: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.binary() == binary)
    }

    /// What invokes it.
    pub fn entry(self) -> Entry {
        match self {
            Function::Spaces => Entry::Http(SPACES_ROUTES),
            Function::Push => Entry::Http(PUSH_ROUTES),
            Function::Pull => Entry::Http(PULL_ROUTES),
            Function::Poke => Entry::StreamBatches,
            Function::WsConnect => Entry::WebSocketConnect,
            Function::WsDisconnect => Entry::WebSocketDisconnect,
            Function::WsAuthorizer => Entry::ConnectAuthorizer,
            Function::Gc => Entry::Schedule,
        }
    }
}

/// A function after its cold start, ready for invocations.
pub enum Ready {
    Http(HttpFunction),
    Poke(Arc<ApiGatewayPoker>),
    Connect(Arc<WebSocketRoutes>),
    Disconnect(Arc<ConnectionTable>),
    Authorizer(Arc<JwtVerifier>),
    Gc(Arc<GcFunction>),
}

impl Ready {
    /// What it answers, as built.
    pub fn entry(&self) -> Entry {
        match self {
            Ready::Http(f) => Entry::Http(f.routes()),
            Ready::Poke(_) => Entry::StreamBatches,
            Ready::Connect(_) => Entry::WebSocketConnect,
            Ready::Disconnect(_) => Entry::WebSocketDisconnect,
            Ready::Authorizer(_) => Entry::ConnectAuthorizer,
            Ready::Gc(_) => Entry::Schedule,
        }
    }

    /// The auth mode it authenticates requests in, for the functions that have one.
    pub fn auth(&self) -> Option<AuthMode> {
        match self {
            Ready::Http(f) => Some(f.auth()),
            Ready::Connect(routes) => Some(routes.auth()),
            _ => None,
        }
    }

    /// Runs the Lambda runtime loop until the runtime stops it.
    pub async fn serve(self) -> Result<(), BoxError> {
        match self {
            Ready::Http(f) => serve_http(f).await,
            Ready::Poke(poker) => poke_stream::run(poker).await,
            Ready::Connect(routes) => websocket::run_connect(routes).await,
            Ready::Disconnect(connections) => websocket::run_disconnect(connections).await,
            Ready::Authorizer(verifier) => {
                lambda_runtime::run(service_fn(|event: LambdaEvent<AuthorizerRequest>| {
                    let verifier = verifier.clone();
                    async move { authorize_connect(&verifier, &event.payload).await }
                }))
                .await
            }
            Ready::Gc(function) => crate::gc::run(function).await,
        }
    }
}

/// The cold start of `function`: the log filter (handed to `install_logging` first, so
/// that everything after it is logged), then what the function serves with: what its
/// binary runs ([`main`] with the function's own `start_*`). Errors are logged where they
/// arise; the binary exits with them, and Lambda reports a failed init.
pub async fn start(
    function: Function,
    install_logging: impl FnOnce(EnvFilter),
) -> Result<Ready, BoxError> {
    install_logging(logging::filter());
    match function {
        Function::Spaces => start_spaces().await,
        Function::Push => start_push().await,
        Function::Pull => start_pull().await,
        Function::Poke => start_poke().await,
        Function::WsConnect => start_ws_connect().await,
        Function::WsDisconnect => start_ws_disconnect().await,
        Function::WsAuthorizer => start_ws_authorizer().await,
        Function::Gc => start_gc().await,
    }
}

/// What each binary runs: JSON logs on stdout, its cold start `cold_start` (its own
/// `start_*`, so that a binary links only its own function's code: the JavaScript engine
/// goes into the push function only, the S3 client into the pull function only), then its
/// runtime loop.
pub async fn main<F, Cold>(cold_start: F) -> Result<(), BoxError>
where
    F: FnOnce() -> Cold,
    Cold: Future<Output = Result<Ready, BoxError>>,
{
    logging::install(logging::filter());
    cold_start().await?.serve().await
}

pub async fn start_spaces() -> Result<Ready, BoxError> {
    let auth = bootstrap::auth_mode()?;
    let (client, table) = bootstrap::dynamo().await?;
    let service = bootstrap::sync_service(client, table, Arc::new(NoPoker), auth);
    Ok(Ready::Http(
        HttpFunction::new(service, SPACES_ROUTES).with_auth(auth),
    ))
}

pub async fn start_push() -> Result<Ready, BoxError> {
    let auth = bootstrap::auth_mode()?;
    let (client, table) = bootstrap::dynamo().await?;
    let service = bootstrap::push_service(client, table, auth);
    Ok(Ready::Http(
        HttpFunction::new(service, PUSH_ROUTES).with_auth(auth),
    ))
}

pub async fn start_pull() -> Result<Ready, BoxError> {
    let auth = bootstrap::auth_mode()?;
    let keys = bootstrap::cookie_keys().await?;
    let (client, table) = bootstrap::dynamo().await?;
    let service = bootstrap::pull_service(client, table, keys, auth);
    let oversize = crate::answer_spill::from_env().await;
    Ok(Ready::Http(
        HttpFunction::new(service, PULL_ROUTES)
            .with_auth(auth)
            .with_oversize(oversize),
    ))
}

pub async fn start_poke() -> Result<Ready, BoxError> {
    let (client, table) = bootstrap::dynamo().await?;
    let management = bootstrap::management_client().await?;
    Ok(Ready::Poke(Arc::new(ApiGatewayPoker::new(
        ConnectionTable::new(client, table),
        management,
    ))))
}

pub async fn start_ws_connect() -> Result<Ready, BoxError> {
    let auth = bootstrap::auth_mode()?;
    let max_sockets = config::max_sockets_per_space()
        .inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let (client, table) = bootstrap::dynamo().await?;
    let service = bootstrap::sync_service(client.clone(), table.clone(), Arc::new(NoPoker), auth);
    Ok(Ready::Connect(Arc::new(
        WebSocketRoutes::new(service, ConnectionTable::new(client, table))
            .with_auth(auth)
            .with_max_sockets_per_space(max_sockets),
    )))
}

pub async fn start_ws_disconnect() -> Result<Ready, BoxError> {
    let (client, table) = bootstrap::dynamo().await?;
    Ok(Ready::Disconnect(Arc::new(ConnectionTable::new(
        client, table,
    ))))
}

pub async fn start_ws_authorizer() -> Result<Ready, BoxError> {
    let settings =
        config::jwt_settings().inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    tracing::info!(issuer = %settings.issuer, audiences = ?settings.audiences,
        jwks_url = %settings.jwks_url, "WebSocket authorizer");
    Ok(Ready::Authorizer(Arc::new(JwtVerifier::new(settings)?)))
}

pub async fn start_gc() -> Result<Ready, BoxError> {
    let policy =
        config::gc_policy().inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let (client, table) = bootstrap::dynamo().await?;
    tracing::info!(
        tombstone_retention_days = policy.tombstone_retention.as_secs() / 86_400,
        client_idle_days = policy.client_idle.as_secs() / 86_400,
        "garbage collector"
    );
    Ok(Ready::Gc(bootstrap::gc_function(client, table, policy)))
}
