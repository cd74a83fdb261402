//! WebSocket `$connect` route: subscribes a connection to a space's pokes, for a user who
//! may use the space, while the space has room for another socket.

use lambda_handlers::functions;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::main(functions::start_ws_connect).await
}
