//! Spaces: createSpace, spaceExists and spaceAccess (who may use a space).

use lambda_handlers::functions::{self, Function};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::main(Function::Spaces).await
}
