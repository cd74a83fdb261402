//! Shared pieces of the integration tests.
//!
//! DynamoDB tests run against a real DynamoDB-compatible server: moto in server mode.
//! When `DYNAMODB_ENDPOINT` is set (the test command starts one server for the whole run)
//! it is used; otherwise the first [`LocalDynamo`] of a test binary starts one on a free
//! loopback port (`serial_moto.py`: moto's server with one request at a time, because
//! plain `moto_server` runs requests on several threads without locking its DynamoDB
//! backend, so two racing conditional writes could both pass) and the last one to drop
//! stops it.

pub mod http_api;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The launcher of the serialized moto server (`python3 serial_moto.py HOST PORT`).
pub const SERIAL_MOTO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/serial_moto.py");

struct Server {
    endpoint: String,
    child: Option<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A handle on the test binary's DynamoDB-compatible server.
#[derive(Clone)]
pub struct LocalDynamo {
    server: Arc<Server>,
}

impl LocalDynamo {
    pub async fn start() -> LocalDynamo {
        static SHARED: Mutex<Weak<Server>> = Mutex::new(Weak::new());
        let existing = SHARED.lock().unwrap_or_else(|e| e.into_inner()).upgrade();
        if let Some(server) = existing {
            return LocalDynamo { server };
        }
        let server = Arc::new(start_server().await);
        *SHARED.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(&server);
        LocalDynamo { server }
    }

    pub fn endpoint(&self) -> &str {
        &self.server.endpoint
    }

    pub async fn client(&self) -> aws_sdk_dynamodb::Client {
        store_dynamodb::local_client(self.endpoint()).await
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

async fn start_server() -> Server {
    if let Ok(endpoint) = std::env::var("DYNAMODB_ENDPOINT")
        && !endpoint.trim().is_empty()
    {
        return Server {
            endpoint,
            child: None,
        };
    }
    let port = free_port();
    let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".into());
    let child = Command::new(python)
        .args([SERIAL_MOTO, "127.0.0.1", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 with moto[server] at infra/versions.env's MOTO_VERSION must be installed; ./tests/run.sh installs it");
    let mut server = Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        child: Some(child),
    };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!("moto exited during startup (is moto[server] installed?): {status}");
        }
        assert!(
            started.elapsed() < STARTUP_TIMEOUT,
            "moto did not answer within {STARTUP_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
