//! WebSocket `$disconnect` route.

use lambda_handlers::functions;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::main(functions::start_ws_disconnect).await
}
