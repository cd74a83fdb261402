//! The emulator's state: tables, the items that transactions in flight hold, idempotency
//! tokens, throughput buckets and counters. One mutex guards it; requests take it only
//! to apply themselves (never while they wait their latency), so every write, conditional
//! write and transaction is applied atomically and in one total order.

use crate::capacity::{Consumed, Throttle};
use crate::error::ApiError;
use crate::table::{PrimaryKey, Table};
use crate::txn::{PendingTxn, Token};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, HashMap};

/// One item of one table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemRef {
    pub table: String,
    pub key: PrimaryKey,
}

/// What the emulator has seen since it started (or since the last reset).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Requests by operation (`GetItem`, ...), answered or not.
    pub requests: BTreeMap<String, u64>,
    /// Read and write units consumed by the requests that succeeded (and by failed
    /// conditional writes, which DynamoDB charges too).
    pub read_units: f64,
    pub write_units: f64,
    /// The most requests in flight at once (received and not yet answered).
    pub max_in_flight: usize,
    pub transactions_committed: u64,
    /// `TransactWriteItems` cancelled because another transaction held one of its items.
    pub transaction_conflicts: u64,
    /// `TransactGetItems` cancelled because a transaction in flight held one of its items.
    pub read_conflicts: u64,
    /// `PutItem`, `UpdateItem`, `DeleteItem` refused with `TransactionConflictException`.
    pub write_conflicts: u64,
    /// Conditions that failed (single writes and transactions).
    pub condition_failures: u64,
    /// Requests (or transactions, or batch members) refused for a partition's throughput.
    pub throttled: u64,
    /// `TransactWriteItems` answered from an earlier call with the same token.
    pub idempotent_replays: u64,
}

impl Stats {
    pub fn to_json(&self) -> Json {
        json!({
            "requests": self.requests,
            "readUnits": self.read_units,
            "writeUnits": self.write_units,
            "maxInFlight": self.max_in_flight,
            "transactionsCommitted": self.transactions_committed,
            "transactionConflicts": self.transaction_conflicts,
            "readConflicts": self.read_conflicts,
            "writeConflicts": self.write_conflicts,
            "conditionFailures": self.condition_failures,
            "throttled": self.throttled,
            "idempotentReplays": self.idempotent_replays,
        })
    }
}

#[derive(Debug)]
pub struct State {
    pub tables: BTreeMap<String, Table>,
    /// Items held by a transaction in flight, and which.
    pub holds: HashMap<ItemRef, u64>,
    pub pending: HashMap<u64, PendingTxn>,
    pub tokens: HashMap<String, Token>,
    pub throttle: Throttle,
    pub next_txn: u64,
    pub stats: Stats,
}

impl State {
    pub fn new(throttle: Throttle) -> State {
        State {
            tables: BTreeMap::new(),
            holds: HashMap::new(),
            pending: HashMap::new(),
            tokens: HashMap::new(),
            throttle,
            next_txn: 1,
            stats: Stats::default(),
        }
    }

    pub fn table(&self, name: &str) -> Result<&Table, ApiError> {
        self.tables.get(name).ok_or_else(ApiError::table_not_found)
    }

    pub fn tally(&mut self, consumed: &Consumed) {
        let units = consumed.totals();
        self.stats.read_units += units.read;
        self.stats.write_units += units.write;
    }

    pub fn held(&self, table: &str, key: &PrimaryKey) -> Option<u64> {
        self.holds
            .get(&ItemRef {
                table: table.to_owned(),
                key: key.clone(),
            })
            .copied()
    }
}
