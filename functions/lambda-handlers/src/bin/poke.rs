//! Poke: the table's stream, filtered to changes of space items, hands this function
//! batches of records; it pokes each space's WebSocket connections (PostToConnection) and
//! reports the records of the spaces it could not poke, which the stream delivers again.

use lambda_handlers::functions;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::main(functions::start_poke).await
}
