//! Pull: what changed in a space since the client's cookie. Its cookies are signed with
//! the deployment's keys (the secret named by `COOKIE_SECRET_ARN`), read at cold start.

use lambda_handlers::functions;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::main(functions::start_pull).await
}
