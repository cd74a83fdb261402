//! The WebSocket API's Lambda REQUEST authorizer of `$connect` (deployed in the `jwt`
//! auth mode only): verifies the JWT of the `token` query parameter against the issuer's
//! keys (`JWT_ISSUER`, `JWT_AUDIENCE`) and answers an IAM policy that allows this
//! `$connect`, with the user in the context; a missing, invalid or expired token is
//! answered `Unauthorized` (401).

use lambda_handlers::auth::{AuthorizerRequest, JwtVerifier, authorize_connect};
use lambda_handlers::{config, logging};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let settings =
        config::jwt_settings().inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    tracing::info!(issuer = %settings.issuer, audiences = ?settings.audiences,
        jwks_url = %settings.jwks_url, "WebSocket authorizer");
    let verifier = JwtVerifier::new(settings)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<AuthorizerRequest>| {
        let verifier = verifier.clone();
        async move { authorize_connect(&verifier, &event.payload).await }
    }))
    .await
}
