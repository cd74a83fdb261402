//! Starting the servers under test as child processes, each on a free loopback port; a
//! child is killed when its handle drops.

use crate::http::{Error, wait_for_port};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How long a server may take to start answering.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);

pub struct Server {
    pub addr: SocketAddr,
    pub child: Child,
    /// From spawn to the port accepting connections.
    pub started_in: Duration,
    /// Keeps the data directory of a local server alive as long as it runs.
    _data_dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Reads and drops the server's log lines, so that a full pipe never blocks it.
    pub fn drain_stderr(&mut self) {
        if let Some(mut stderr) = self.child.stderr.take() {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
            });
        }
    }
}

pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], test_support::free_port()))
}

/// The local server binary (`target/release/local-server` by default) on its default
/// store, SQLite in a fresh directory (under `parent`, else the system's temporary
/// directory), logging JSON lines to stderr (piped: the caller reads or drains it).
pub async fn local_server(bin: &Path, parent: Option<&Path>) -> Result<Server, Error> {
    local_server_with(bin, parent, &[]).await
}

/// [`local_server`] with extra environment variables.
pub async fn local_server_with(
    bin: &Path,
    parent: Option<&Path>,
    extra_env: &[(&str, &str)],
) -> Result<Server, Error> {
    let addr = free_addr();
    let data_dir = match parent {
        Some(parent) => tempfile::tempdir_in(parent)?,
        None => tempfile::tempdir()?,
    };
    let mut command = Command::new(bin);
    command
        .env("PORT", addr.port().to_string())
        .env("HOST", "127.0.0.1")
        .env("DATA_DIR", data_dir.path())
        .env("LOG_FORMAT", "json")
        // No web client: only the API is measured.
        .env("CLIENT_DIR", data_dir.path().join("no-client"))
        .env_remove("DYNAMODB_ENDPOINT");
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    wait_for_port(addr, STARTUP_LIMIT).await?;
    Ok(Server {
        addr,
        child,
        started_in: started.elapsed(),
        _data_dir: Some(data_dir),
    })
}

/// The reference server (`reference/server.mjs`, replicache-express with pg-mem) under
/// Node. Its own per-request console logging goes to /dev/null.
pub async fn reference_server(dir: &Path) -> Result<Server, Error> {
    let addr = free_addr();
    let started = Instant::now();
    let child = Command::new("node")
        .arg("server.mjs")
        .current_dir(dir)
        .env("PORT", addr.port().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start node server.mjs in {}: {e}", dir.display()))?;
    wait_for_port(addr, STARTUP_LIMIT).await?;
    Ok(Server {
        addr,
        child,
        started_in: started.elapsed(),
        _data_dir: None,
    })
}
