//! Pull: what changed in a space since the client's cookie. Its cookies are signed with
//! the deployment's keys (the secret named by `COOKIE_SECRET_ARN`), read at cold start.

use lambda_handlers::{HttpFunction, bootstrap, logging, serve_http};
use sync_core::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let auth = bootstrap::auth_mode()?;
    let keys = bootstrap::cookie_keys().await?;
    let (client, table) = bootstrap::dynamo().await?;
    let service = bootstrap::pull_service(client, table, keys, auth);
    serve_http(HttpFunction::new(service, &[Route::Pull]).with_auth(auth)).await
}
