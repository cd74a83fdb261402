//! A real DynamoDB-compatible server for the tests: the one in `DYNAMODB_ENDPOINT` when
//! set, otherwise moto's server started here (see `serial_moto.py`: it runs one request
//! at a time, as concurrent transactions need) and stopped when the last test using it is
//! done. Every test works in a table of its own.
//!
//! Needs `moto[server]==5.2.1` for `python3` (`MOTO_PYTHON` names another interpreter).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use store_dynamodb::{DynamoStore, RequestCounter};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running server; a spawned one is killed when the last handle drops.
pub struct Server {
    pub endpoint: String,
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

/// The shared server of this test binary, started on first use.
pub fn server() -> Arc<Server> {
    static SHARED: Mutex<Weak<Server>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = shared.upgrade() {
        return server;
    }
    let server = Arc::new(start());
    *shared = Arc::downgrade(&server);
    server
}

fn start() -> Server {
    if let Ok(endpoint) = std::env::var("DYNAMODB_ENDPOINT")
        && !endpoint.trim().is_empty()
    {
        return Server {
            endpoint,
            child: None,
        };
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".into());
    let launcher = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/serial_moto.py");
    let child = Command::new(python)
        .args([launcher, "127.0.0.1", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 with moto must be installed (pip install 'moto[server]==5.2.1')");
    let mut server = Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        child: Some(child),
    };
    let started = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
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
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A table name no other test uses.
pub fn table_name(tag: &str) -> String {
    format!("sync-{tag}-{:016x}", rand::random::<u64>())
}

/// A store over a fresh table, the server handle (keep it alive) and a counter of the
/// store's requests.
pub struct Fixture {
    pub server: Arc<Server>,
    pub store: DynamoStore,
    pub counter: RequestCounter,
}

pub async fn fixture(tag: &str) -> Fixture {
    let server = server();
    let counter = RequestCounter::new();
    let client = store_dynamodb::local_client_with_counter(&server.endpoint, &counter).await;
    let table = table_name(tag);
    store_dynamodb::create_table(&client, &table)
        .await
        .expect("create table");
    counter.reset();
    Fixture {
        server,
        store: DynamoStore::new(client, table),
        counter,
    }
}
