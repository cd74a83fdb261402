//! WebSocket `$default` route: keep-alive messages from clients.

use lambda_handlers::{logging, websocket};
use lambda_http::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<_, Error>(websocket::keep_alive(&event.payload))
        },
    ))
    .await
}
