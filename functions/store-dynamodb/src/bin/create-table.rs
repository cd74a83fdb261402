//! Creates the sync table on a local DynamoDB-compatible server (moto, the stand-in) as
//! the deployment template defines it, for `cargo lambda watch` and the smoke test:
//!
//!   create-table http://127.0.0.1:5000 replicache
//!
//! Only loopback endpoints: a deployment's table comes from the template itself.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, table] = args.as_slice() else {
        eprintln!("usage: create-table ENDPOINT TABLE_NAME");
        return ExitCode::from(2);
    };
    if !is_loopback(endpoint) {
        eprintln!("refusing a non-local endpoint: {endpoint}");
        return ExitCode::from(2);
    }
    let client = store_dynamodb::local_client(endpoint).await;
    match store_dynamodb::create_table(&client, table).await {
        Ok(()) => {
            println!("table {table} created at {endpoint}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn is_loopback(endpoint: &str) -> bool {
    let host = endpoint
        .strip_prefix("http://")
        .unwrap_or(endpoint)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}
