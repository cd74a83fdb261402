//! Request bodies for the load generator, in the protocol each server speaks.
//!
//! Our server speaks push/pull version 1 (the protocol of `replicache@15`). The reference
//! server, `replicache-express@0.1.5`, predates it and parses only version 0 bodies: a
//! top-level `clientID` (no client groups), and a pull answer with one `lastMutationID`
//! instead of `lastMutationIDChanges`. The workload is the same on both: one `increment`
//! per push, then a pull from the last cookie.

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V1,
    V0,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V1 => "v1",
            Protocol::V0 => "v0",
        }
    }
}

/// A push of one `increment` by `client_id`, mutation `id`.
pub fn push_increment(protocol: Protocol, client_id: &str, id: u64) -> Vec<u8> {
    let body = match protocol {
        Protocol::V1 => json!({
            "pushVersion": 1,
            "clientGroupID": format!("g-{client_id}"),
            "profileID": "bench",
            "schemaVersion": "",
            "mutations": [{"clientID": client_id, "id": id, "name": "increment", "args": 1,
                           "timestamp": id as f64}],
        }),
        Protocol::V0 => json!({
            "pushVersion": 0,
            "clientID": client_id,
            "profileID": "bench",
            "schemaVersion": "",
            "mutations": [{"id": id, "name": "increment", "args": 1, "timestamp": id as f64}],
        }),
    };
    body.to_string().into_bytes()
}

/// A pull by `client_id` from `cookie` (`Value::Null` first).
pub fn pull(protocol: Protocol, client_id: &str, cookie: &Value) -> Vec<u8> {
    let body = match protocol {
        Protocol::V1 => json!({
            "pullVersion": 1,
            "clientGroupID": format!("g-{client_id}"),
            "profileID": "bench",
            "schemaVersion": "",
            "cookie": cookie,
        }),
        Protocol::V0 => json!({
            "pullVersion": 0,
            "clientID": client_id,
            "schemaVersion": "",
            "cookie": cookie,
            "lastMutationID": 0,
        }),
    };
    body.to_string().into_bytes()
}

/// `setItem` mutations `first..first+count` of one client, for seeding big spaces:
/// keys `item/k0000001`..., values of about 60 bytes of JSON.
pub fn set_items(client_id: &str, first: u64, count: u64) -> Vec<Value> {
    (first..first + count)
        .map(|i| {
            json!({"clientID": client_id, "id": i, "name": "setItem", "timestamp": i as f64,
                   "args": {"key": format!("k{i:07}"), "value": item_value(i)}})
        })
        .collect()
}

/// The value stored by `set_items` for mutation `i`: a small todo-like object.
pub fn item_value(i: u64) -> Value {
    json!({"title": format!("item number {i}"), "done": i.is_multiple_of(2), "n": i})
}

/// A v1 push of `mutations` for group `g-<client_id>`.
pub fn push_v1(client_id: &str, mutations: Vec<Value>) -> Vec<u8> {
    json!({"pushVersion": 1, "clientGroupID": format!("g-{client_id}"), "profileID": "bench",
           "schemaVersion": "", "mutations": mutations})
    .to_string()
    .into_bytes()
}

/// `n` increments of one client, ids `first..first+n`.
pub fn increments(client_id: &str, first: u64, n: u64) -> Vec<Value> {
    (first..first + n)
        .map(|i| {
            json!({"clientID": client_id, "id": i, "name": "increment", "args": 1,
                   "timestamp": i as f64})
        })
        .collect()
}
