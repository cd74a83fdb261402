//! WebSocket `$disconnect` route.

use lambda_handlers::{logging, websocket};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init();
    websocket::serve_disconnect().await
}
