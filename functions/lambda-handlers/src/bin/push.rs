//! Push: applies a client group's mutations, then pokes the space.

use lambda_handlers::{HttpFunction, bootstrap, logging, serve_http};
use sync_core::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let auth = bootstrap::auth_mode()?;
    let (client, table) = bootstrap::dynamo().await?;
    let poker = bootstrap::poker(&client, &table).await;
    let service = bootstrap::sync_service(client, table, poker, auth);
    serve_http(HttpFunction::new(service, &[Route::Push]).with_auth(auth)).await
}
