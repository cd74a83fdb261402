//! Push: applies a client group's mutations and answers right after the commit. Its
//! pokes leave through the table's stream: the commit changes the space item, and the poke
//! function fans that change out (see `poke_stream`).

use lambda_handlers::functions;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::main(functions::start_push).await
}
