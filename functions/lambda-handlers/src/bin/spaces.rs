//! Spaces: createSpace, spaceExists and spaceAccess (who may use a space).

use lambda_handlers::{HttpFunction, bootstrap, logging, serve_http};
use std::sync::Arc;
use sync_core::Route;
use sync_core::poke::NoPoker;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let auth = bootstrap::auth_mode()?;
    let (client, table) = bootstrap::dynamo().await?;
    let poker = Arc::new(NoPoker);
    let service = bootstrap::sync_service(client, table, poker, auth);
    serve_http(
        HttpFunction::new(
            service,
            &[Route::CreateSpace, Route::SpaceExists, Route::SpaceAccess],
        )
        .with_auth(auth),
    )
    .await
}
