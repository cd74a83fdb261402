//! Shared pieces of the benchmark binaries (see `run.sh` and BENCHMARKS.md): request
//! bodies of both protocol versions, a keep-alive HTTP client, latency statistics,
//! markdown tables, a DynamoDB request timeline, the description of the machine, and the
//! price model of COST.md.

pub mod http;
pub mod price;
pub mod report;
pub mod servers;
pub mod stats;
pub mod timeline;
pub mod wire;
