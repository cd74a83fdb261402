//! The WebSocket API's routes: `$connect` subscribes a connection to one space's pokes,
//! `$disconnect` forgets it, `$default` answers keep-alives.

use crate::connections::ConnectionTable;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use lambda_http::aws_lambda_events::encodings::Body;
use std::sync::Arc;
use sync_core::error::ApiError;
use sync_core::{SpaceId, Store};

pub struct WebSocketRoutes {
    store: Arc<dyn Store>,
    connections: ConnectionTable,
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

impl WebSocketRoutes {
    pub fn new(store: Arc<dyn Store>, connections: ConnectionTable) -> Self {
        Self { store, connections }
    }

    /// `$connect`: `?spaceID=` must name an existing space; any non-2xx answer makes API
    /// Gateway refuse the connection.
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
        let space = match event.query_string_parameters.first("spaceID") {
            None => return refuse(&ApiError::MissingSpaceId),
            Some(raw) => match SpaceId::parse(raw) {
                Ok(space) => space,
                Err(e) => return refuse(&ApiError::InvalidSpaceId(e)),
            },
        };
        match self.store.space_version(&space).await {
            Ok(Some(_)) => {}
            Ok(None) => return refuse(&ApiError::SpaceNotFound),
            Err(e) => return refuse(&ApiError::Unavailable(e)),
        }
        if let Err(e) = self.connections.add(&space, connection_id).await {
            tracing::warn!(space_id = %space, error = %e, "could not store a connection");
            return respond(
                503,
                serde_json::json!({"error": "Unavailable", "message": "retry"}),
            );
        }
        tracing::info!(space_id = %space, "connected");
        respond(200, serde_json::json!({}))
    }

    /// `$disconnect`: best effort (the TTL cleans up what this misses).
    pub async fn disconnect(
        &self,
        event: &ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        if let Some(id) = event.request_context.connection_id.as_deref() {
            match self.connections.remove(id).await {
                Ok(space) => tracing::info!(
                    space_id = space.as_ref().map(SpaceId::as_str).unwrap_or(""),
                    "disconnected"
                ),
                Err(e) => tracing::warn!(error = %e, "could not remove a connection"),
            }
        }
        respond(200, serde_json::json!({}))
    }
}

/// `$default`: a client's keep-alive message. Receiving it is what resets API Gateway's
/// 10-minute idle timer; no answer is needed.
pub fn keep_alive(_event: &ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    respond(200, serde_json::json!({}))
}

/// The WebSocket routes that need the table: `$connect` and `$disconnect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatefulRoute {
    Connect,
    Disconnect,
}

/// Runs the Lambda runtime loop of one stateful WebSocket route, with the table named by
/// `TABLE_NAME`.
pub async fn serve(route: StatefulRoute) -> Result<(), lambda_runtime::Error> {
    let (client, table) = crate::bootstrap::dynamo().await?;
    let store = Arc::new(store_dynamodb::DynamoStore::new(
        client.clone(),
        table.clone(),
    ));
    let routes = Arc::new(WebSocketRoutes::new(
        store,
        ConnectionTable::new(client, table),
    ));
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let routes = routes.clone();
            async move {
                let response = match route {
                    StatefulRoute::Connect => routes.connect(&event.payload).await,
                    StatefulRoute::Disconnect => routes.disconnect(&event.payload).await,
                };
                Ok::<_, lambda_runtime::Error>(response)
            }
        },
    ))
    .await
}
