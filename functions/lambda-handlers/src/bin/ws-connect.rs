//! WebSocket `$connect` route.

use lambda_handlers::connections::ConnectionTable;
use lambda_handlers::websocket::WebSocketRoutes;
use lambda_handlers::{bootstrap, logging};
use lambda_http::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let (client, table) = bootstrap::dynamo().await?;
    let store = Arc::new(store_dynamodb::DynamoStore::new(
        client.clone(),
        table.clone(),
    ));
    let routes = Arc::new(WebSocketRoutes::new(
        store,
        ConnectionTable::new(client, table),
    ));
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let routes = routes.clone();
            async move { Ok::<_, Error>(routes.connect(&event.payload).await) }
        },
    ))
    .await
}
