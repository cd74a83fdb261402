//! A DynamoDB stand-in for benchmarks: the part of DynamoDB's JSON 1.0 API that this
//! product uses, served so that requests overlap in time as they do against the service,
//! each taking a configurable latency, while every write, conditional write and
//! transaction is applied atomically and in one total order, with DynamoDB's transaction
//! conflicts, consumed capacity and per-partition throughput.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! let emulator = dynamodb_emulator::Emulator::start(Default::default()).await?;
//! let client = store_dynamodb::local_client(emulator.endpoint()).await;
//! # let _ = client; Ok(()) }
//! ```
//!
//! What it implements, and how its behaviour relates to DynamoDB's documentation:
//! - operations: `CreateTable`, `DescribeTable`, `DeleteTable`, `ListTables`,
//!   `UpdateTimeToLive`, `DescribeTimeToLive` (recorded; items do not expire), `GetItem`,
//!   `PutItem`, `UpdateItem`, `DeleteItem`, `Query` (on the table or a local secondary
//!   index, with key conditions `=`, `<`, `<=`, `>`, `>=`, `BETWEEN`, `begins_with`,
//!   filters, `Limit`, 1 MB pages, `ExclusiveStartKey`/`LastEvaluatedKey`,
//!   `ScanIndexForward`, `Select`), `Scan` (of the table or a local secondary index, with
//!   the same filters, projections, `Select`, `Limit`, pages and capacity as `Query`, and
//!   parallel scans by `Segment`/`TotalSegments`; see [`scan`]), `BatchGetItem`,
//!   `BatchWriteItem`, `TransactGetItems`, `TransactWriteItems` (`Put`, `Update`,
//!   `Delete`, `ConditionCheck`, `ClientRequestToken`); expressions in [`expr`];
//! - concurrency and conflicts in [`server`] and [`txn`];
//! - consumed capacity and throughput in [`capacity`];
//! - limits (400 KB items, 2,048-byte partition keys, 1,024-byte sort keys, 100 actions
//!   per transaction, 25 writes per batch, 100 keys per batch read) in [`table`], [`ops`]
//!   and [`txn`].
//!
//! A cancelled transaction consumes no units here: DynamoDB's cancellation carries no
//! consumed capacity, and its documentation does not say what one costs.
//!
//! Not modelled: eventual consistency (an eventually consistent read returns the last
//! committed value, at half the read units), expiry of items by time to live, global
//! secondary indexes, streams, and the reserved words of expressions (bare attribute names
//! are accepted whatever they are).

pub mod capacity;
pub mod error;
pub mod expr;
pub mod number;
pub mod ops;
pub mod scan;
pub mod server;
pub mod state;
pub mod table;
pub mod txn;
pub mod value;

pub use state::Stats;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use server::Inner;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// DynamoDB's documentation describes its latency as "single-digit millisecond
/// performance at any scale" ("What is Amazon DynamoDB?", Developer Guide,
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Introduction.html>):
/// a round trip from a client in the same Region. The default is 5 ms plus a jitter of up
/// to 2 ms, inside that range.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(5);
pub const DEFAULT_JITTER: Duration = Duration::from_millis(2);
/// A partition's throughput: 1,000 write units and 3,000 read units per second, whatever
/// the table's capacity mode ("Understanding DynamoDB warm throughput in different
/// scenarios",
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html>).
pub const DEFAULT_PARTITION_WCU: f64 = 1000.0;
pub const DEFAULT_PARTITION_RCU: f64 = 3000.0;

#[derive(Debug, Clone)]
pub struct Config {
    /// Each request's round trip, before jitter.
    pub latency: Duration,
    /// Up to this much more, drawn uniformly per request.
    pub jitter: Duration,
    /// Write units per second one partition key serves; 0 turns the limit off.
    pub partition_wcu: f64,
    /// Read units per second one partition key serves; 0 turns the limit off.
    pub partition_rcu: f64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            latency: DEFAULT_LATENCY,
            jitter: DEFAULT_JITTER,
            partition_wcu: DEFAULT_PARTITION_WCU,
            partition_rcu: DEFAULT_PARTITION_RCU,
        }
    }
}

impl Config {
    /// No latency and no throughput limits: for tests of behaviour alone.
    pub fn instant() -> Config {
        Config {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            partition_wcu: 0.0,
            partition_rcu: 0.0,
        }
    }
}

/// A running emulator. Dropping it stops it.
pub struct Emulator {
    addr: SocketAddr,
    endpoint: String,
    inner: Arc<Inner>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Emulator {
    /// An emulator on a free port of 127.0.0.1.
    pub async fn start(config: Config) -> std::io::Result<Emulator> {
        Emulator::bind(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn bind(config: Config, addr: SocketAddr) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let throttle = capacity::Throttle::new(config.partition_rcu, config.partition_wcu);
        let inner = Arc::new(Inner::new(config, state::State::new(throttle)));
        let (shutdown, watcher) = watch::channel(false);
        let task = tokio::spawn(serve(listener, inner.clone(), watcher));
        Ok(Emulator {
            addr,
            endpoint: format!("http://{addr}"),
            inner,
            shutdown,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`, for `store_dynamodb::local_client`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// What it has seen so far.
    pub fn stats(&self) -> Stats {
        let mut stats = self.inner.lock().stats.clone();
        stats.max_in_flight = self.inner.max_in_flight();
        stats
    }

    pub fn reset_stats(&self) {
        self.inner.lock().stats = Stats::default();
        self.inner.reset_max_in_flight();
    }

    /// Serves until the process is asked to stop (Ctrl-C or SIGTERM).
    pub async fn run_until_signal(self) {
        let terminate = async {
            #[cfg(unix)]
            {
                if let Ok(mut sigterm) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                {
                    sigterm.recv().await;
                    return;
                }
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate => {}
        }
        drop(self);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors, or the like: let it pass.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let inner = inner.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request| server::handle(inner.clone(), request));
            let connection = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = stop.changed() => {}
            }
        });
    }
}
