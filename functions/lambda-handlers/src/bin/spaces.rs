//! Spaces: createSpace, spaceExists and spaceAccess (who may use a space).

use lambda_handlers::functions;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::main(functions::start_spaces).await
}
