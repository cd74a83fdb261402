//! Push: applies a client group's mutations and answers right after the commit. Its
//! pokes leave through the table's stream: the commit changes the space item, and the poke
//! function fans that change out (see `poke_stream`).

use lambda_handlers::{HttpFunction, bootstrap, logging, serve_http};
use sync_core::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let auth = bootstrap::auth_mode()?;
    let (client, table) = bootstrap::dynamo().await?;
    let service = bootstrap::push_service(client, table, auth);
    serve_http(HttpFunction::new(service, &[Route::Push]).with_auth(auth)).await
}
