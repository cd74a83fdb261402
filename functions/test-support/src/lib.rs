//! Shared pieces of the integration tests.
//!
//! DynamoDB tests run against a real DynamoDB-compatible server: `moto` in server mode.
//! When `DYNAMODB_ENDPOINT` is set (the test command starts one moto for the whole run)
//! it is used; otherwise each [`LocalDynamo`] spawns its own `moto_server` on a free
//! loopback port and stops it when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct LocalDynamo {
    endpoint: String,
    child: Option<Child>,
}

impl LocalDynamo {
    pub async fn start() -> LocalDynamo {
        if let Ok(endpoint) = std::env::var("DYNAMODB_ENDPOINT")
            && !endpoint.is_empty()
        {
            return LocalDynamo {
                endpoint,
                child: None,
            };
        }
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server must be installed (pip install 'moto[server]==5.2.1'); ./tests/run.sh installs it");
        let dynamo = LocalDynamo {
            endpoint: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        };
        wait_for_port(port, Duration::from_secs(30)).await;
        dynamo
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub async fn client(&self) -> aws_sdk_dynamodb::Client {
        store_dynamodb::local_client(&self.endpoint).await
    }

    /// A new table with the product's schema and a name no other test uses.
    pub async fn fresh_table(&self, client: &aws_sdk_dynamodb::Client, tag: &str) -> String {
        let table = format!("{tag}-{:016x}", rand::random::<u64>());
        store_dynamodb::create_table(client, &table)
            .await
            .expect("create the test table");
        table
    }
}

impl Drop for LocalDynamo {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

async fn wait_for_port(port: u16, limit: Duration) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < limit,
            "moto_server did not start on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
