//! The WebSocket API's Lambda REQUEST authorizer of `$connect` (deployed in the `jwt`
//! auth mode only): verifies the JWT of the `token` query parameter against the issuer's
//! keys (`JWT_ISSUER`, `JWT_AUDIENCE`) and answers an IAM policy that allows this
//! `$connect`, with the user in the context; a missing, invalid or expired token is
//! answered `Unauthorized` (401).

use lambda_handlers::functions;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::main(functions::start_ws_authorizer).await
}
