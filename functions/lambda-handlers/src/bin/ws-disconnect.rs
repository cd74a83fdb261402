//! WebSocket `$disconnect` route.

use lambda_handlers::functions::{self, Function};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::main(Function::WsDisconnect).await
}
