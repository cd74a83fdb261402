//! WebSocket `$connect` route.

use lambda_handlers::logging;
use lambda_handlers::websocket::{self, StatefulRoute};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init();
    websocket::serve(StatefulRoute::Connect).await
}
