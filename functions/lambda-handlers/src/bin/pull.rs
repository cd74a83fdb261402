//! Pull: what changed in a space since the client's cookie.

use lambda_handlers::{HttpFunction, bootstrap, logging, serve_http};
use std::sync::Arc;
use sync_core::Route;
use sync_core::poke::NoPoker;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let (client, table) = bootstrap::dynamo().await?;
    let poker = Arc::new(NoPoker);
    let service = bootstrap::sync_service(client, table, poker);
    serve_http(HttpFunction::new(service, &[Route::Pull])).await
}
