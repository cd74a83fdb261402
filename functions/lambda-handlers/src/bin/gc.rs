//! Garbage collection: an EventBridge schedule invokes this function; each run removes
//! old deletes and idle clients of every space (`sync_core::gc`) and answers its report.

use lambda_handlers::functions;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::main(functions::start_gc).await
}
