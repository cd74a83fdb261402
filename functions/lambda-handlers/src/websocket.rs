//! The WebSocket API's routes: `$connect` subscribes a connection to one space's pokes,
//! `$disconnect` forgets it. `$default` (the clients' keep-alives) runs no function: API
//! Gateway answers it itself (a MOCK integration in infra/template.yaml).
//!
//! In the `jwt` auth mode, `$connect` is behind the Lambda REQUEST authorizer
//! (`ws-authorizer`, see [`crate::auth`]), which hands over the user in
//! `requestContext.authorizer.user`; `$connect` then lets the user subscribe only to a
//! space they may use ([`SyncService::authorize_subscribe`]), and only while the space
//! has fewer than its cap of sockets.

use crate::auth::{AuthMode, MissingUser, USER_CONTEXT_KEY, user_of_subject};
use crate::config;
use crate::connections::ConnectionTable;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use lambda_http::aws_lambda_events::encodings::Body;
use std::sync::Arc;
use sync_core::auth::ANONYMOUS;
use sync_core::error::ApiError;
use sync_core::{SpaceId, SyncService};

pub struct WebSocketRoutes {
    service: Arc<SyncService>,
    connections: ConnectionTable,
    auth: AuthMode,
    max_sockets_per_space: usize,
}

impl WebSocketRoutes {
    /// The auth mode `$connect` authenticates in.
    pub fn auth(&self) -> AuthMode {
        self.auth
    }
}

fn respond(status: i64, body: serde_json::Value) -> ApiGatewayProxyResponse {
    // The event types are non-exhaustive: build from the default.
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status;
    response.body = Some(Body::Text(body.to_string()));
    response
}

fn refuse(e: &ApiError) -> ApiGatewayProxyResponse {
    respond(i64::from(e.status()), e.body())
}

/// The user of a `$connect` event in `mode`: in `jwt` mode the one the authorizer put in
/// its context (`requestContext.authorizer.user`); in `none` mode nobody.
pub fn connect_user(
    event: &ApiGatewayWebsocketProxyRequest,
    mode: AuthMode,
) -> Result<String, MissingUser> {
    match mode {
        AuthMode::None => Ok(ANONYMOUS.to_owned()),
        AuthMode::Jwt => {
            let user = event
                .request_context
                .authorizer
                .fields
                .get(USER_CONTEXT_KEY)
                .ok_or(MissingUser::NoClaims)?;
            user_of_subject(user.as_str()).map(str::to_owned)
        }
    }
}

impl WebSocketRoutes {
    /// The routes in the `none` auth mode, with the default cap of sockets per space.
    /// `service` decides who may subscribe (its access policy should be the mode's).
    pub fn new(service: Arc<SyncService>, connections: ConnectionTable) -> Self {
        Self {
            service,
            connections,
            auth: AuthMode::None,
            max_sockets_per_space: config::DEFAULT_MAX_SOCKETS_PER_SPACE,
        }
    }

    pub fn with_auth(mut self, auth: AuthMode) -> Self {
        self.auth = auth;
        self
    }

    /// `$connect` refuses a space's socket past `max` (429).
    pub fn with_max_sockets_per_space(mut self, max: usize) -> Self {
        self.max_sockets_per_space = max.max(1);
        self
    }

    /// `$connect`: `?spaceID=` must name a space the user may use, with room for one more
    /// socket; any non-2xx answer makes API Gateway refuse the connection. Refusals write
    /// nothing.
    pub async fn connect(
        &self,
        event: &ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        let Some(connection_id) = event.request_context.connection_id.as_deref() else {
            return respond(
                400,
                serde_json::json!({"error": "BadRequest", "message": "no connectionId"}),
            );
        };
        // Defence in depth: in `jwt` mode the authorizer has already refused connections
        // without a valid token.
        let user = match connect_user(event, self.auth) {
            Ok(user) => user,
            Err(e) => {
                tracing::warn!(reason = %e, "connection without a verified user");
                return refuse(&ApiError::Unauthorized(e.to_string()));
            }
        };
        let space = match event.query_string_parameters.first("spaceID") {
            None => return refuse(&ApiError::MissingSpaceId),
            Some(raw) => match SpaceId::parse(raw) {
                Ok(space) => space,
                Err(e) => return refuse(&ApiError::InvalidSpaceId(e)),
            },
        };
        // Access first: a stranger learns nothing, not even how busy the space is.
        if let Err(e) = self.service.authorize_subscribe(&user, &space).await {
            tracing::info!(space_id = %space, status = e.status(), "connection refused");
            return refuse(&e);
        }
        match self
            .connections
            .count_live(&space, self.max_sockets_per_space)
            .await
        {
            Ok(open) if open >= self.max_sockets_per_space => {
                tracing::warn!(space_id = %space, open, max = self.max_sockets_per_space,
                    "too many sockets on the space");
                return refuse(&ApiError::TooManyRequests(format!(
                    "the space has its maximum of {} poke sockets open; retry later",
                    self.max_sockets_per_space
                )));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(space_id = %space, error = %e, "could not count connections");
                return unavailable();
            }
        }
        if let Err(e) = self
            .connections
            .add_for_user(&space, connection_id, &user)
            .await
        {
            tracing::warn!(space_id = %space, error = %e, "could not store a connection");
            return unavailable();
        }
        tracing::info!(space_id = %space, "connected");
        respond(200, serde_json::json!({}))
    }

    /// `$disconnect`: see [`disconnect`].
    pub async fn disconnect(
        &self,
        event: &ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        disconnect(&self.connections, event).await
    }
}

fn unavailable() -> ApiGatewayProxyResponse {
    respond(
        503,
        serde_json::json!({"error": "Unavailable", "message": "retry"}),
    )
}

/// `$disconnect`: best effort (the TTL cleans up what this misses).
pub async fn disconnect(
    connections: &ConnectionTable,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    if let Some(id) = event.request_context.connection_id.as_deref() {
        match connections.remove(id).await {
            Ok(space) => tracing::info!(
                space_id = space.as_ref().map(SpaceId::as_str).unwrap_or(""),
                "disconnected"
            ),
            Err(e) => tracing::warn!(error = %e, "could not remove a connection"),
        }
    }
    respond(200, serde_json::json!({}))
}

/// Runs the Lambda runtime loop of `$connect` (built by [`crate::functions::start`]).
pub async fn run_connect(routes: Arc<WebSocketRoutes>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let routes = routes.clone();
            async move { Ok::<_, lambda_runtime::Error>(routes.connect(&event.payload).await) }
        },
    ))
    .await
}

/// Runs the Lambda runtime loop of `$disconnect` (built by [`crate::functions::start`]).
pub async fn run_disconnect(
    connections: Arc<ConnectionTable>,
) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let connections = connections.clone();
            async move {
                Ok::<_, lambda_runtime::Error>(disconnect(&connections, &event.payload).await)
            }
        },
    ))
    .await
}
