//! `TransactGetItems` and `TransactWriteItems`, with DynamoDB's conflict handling
//! ("Transaction conflict handling in DynamoDB", Developer Guide):
//!
//! - a `TransactWriteItems` holds its items while it is in flight: from its arrival, when
//!   its conditions are checked and its writes computed, through its latency, at the end
//!   of which it commits (every write at once) and answers;
//! - another `TransactWriteItems` touching a held item is cancelled with
//!   `TransactionConflict` for that item;
//! - a `PutItem`, `UpdateItem` or `DeleteItem` on a held item is refused with
//!   `TransactionConflictException` (see [`crate::ops::write_item`]), and a
//!   `BatchWriteItem` leaves it unprocessed;
//! - a `TransactGetItems` naming a held item is cancelled with `TransactionConflict`;
//! - `GetItem`, `BatchGetItem` and `Query` read the last committed value.
//!
//! A `ClientRequestToken` makes a `TransactWriteItems` idempotent for 10 minutes after it
//! finishes: a repeat succeeds without writing (and reports the read units of reading its
//! items), a repeat while it is in flight gets `TransactionInProgressException`, a repeat
//! with other parameters `IdempotentParameterMismatchException`.

use crate::capacity::{Consumed, Demand, Mode};
use crate::error::{ApiError, Reason};
use crate::expr::{self, Cond, Path};
use crate::ops::{self, WriteKind, context, old_on_failure};
use crate::state::{ItemRef, State};
use crate::table::{kb_units, read_units};
use crate::value::{Item, item_from_json, item_size, item_to_json};
use serde_json::{Map, Value as Json, json};
use std::time::{Duration, Instant};

/// Actions in one transaction.
const MAX_ACTIONS: usize = 100;
/// Bytes of items one transaction may carry.
const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// How long a client token is remembered after its transaction finished.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(600);

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::validation(message)
}

fn multiple_operations() -> ApiError {
    invalid("Transaction request cannot include multiple operations on one item")
}

fn too_many(field: &str) -> ApiError {
    invalid(format!(
        "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to {MAX_ACTIONS}{field}"
    ))
}

// ------------------------------------------------------------------------------ TransactGetItems

#[derive(Debug)]
pub struct TransactGetReq {
    gets: Vec<(String, Item, Option<Vec<Path>>)>,
    mode: Mode,
}

pub fn parse_transact_get(body: &Json) -> Result<TransactGetReq, ApiError> {
    let items = body["TransactItems"]
        .as_array()
        .ok_or_else(|| invalid("1 validation error detected: Value null at 'transactItems' failed to satisfy constraint: Member must not be null"))?;
    if items.is_empty() {
        return Err(invalid(
            "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    if items.len() > MAX_ACTIONS {
        return Err(too_many(""));
    }
    let mut gets = Vec::new();
    for item in items {
        let get = item
            .get("Get")
            .filter(|g| !g.is_null())
            .ok_or_else(|| invalid("A TransactGetItem must hold a Get"))?;
        let mut cx = context(get)?;
        let projection = get["ProjectionExpression"]
            .as_str()
            .map(|p| cx.projection(p))
            .transpose()?;
        cx.finish()?;
        gets.push((
            ops::table_name(get)?,
            item_from_json(&get["Key"])?,
            projection,
        ));
    }
    Ok(TransactGetReq {
        gets,
        mode: Mode::parse(body)?,
    })
}

pub fn transact_get(st: &mut State, now: Instant, req: &TransactGetReq) -> Result<Json, ApiError> {
    let mut keys: Vec<ItemRef> = Vec::new();
    for (table, key, _) in &req.gets {
        let key = st.table(table)?.primary_key(key, true)?;
        let item = ItemRef {
            table: table.clone(),
            key,
        };
        if keys.contains(&item) {
            return Err(multiple_operations());
        }
        keys.push(item);
    }
    let reasons: Vec<Reason> = keys
        .iter()
        .map(|k| match st.holds.contains_key(k) {
            true => Reason::conflict(),
            false => Reason::none(),
        })
        .collect();
    if reasons.iter().any(|r| !r.is_none()) {
        st.stats.read_conflicts += 1;
        return Err(ApiError::cancelled(reasons));
    }
    // Two read units per 4 KB of each item, a missing one included (prepare and commit).
    let mut consumed = Consumed::default();
    let mut demands = Vec::new();
    let mut responses = Vec::new();
    for (k, (_, _, projection)) in keys.iter().zip(&req.gets) {
        let item = st.table(&k.table)?.get(&k.key);
        let units = 2.0 * item.map_or(1.0, |i| read_units(item_size(i)));
        consumed.table_read(&k.table, units);
        demands.push(Demand {
            table: k.table.clone(),
            pk: k.key.pk.clone(),
            read: units,
            write: 0.0,
        });
        responses.push(match item {
            Some(item) => {
                let shown = match projection {
                    Some(paths) => expr::project(item, paths),
                    None => item.clone(),
                };
                json!({"Item": item_to_json(&shown)})
            }
            None => json!({}),
        });
    }
    if let Err(throttled) = st.throttle.take(now, &demands) {
        st.stats.throttled += 1;
        let reasons = (0..keys.len())
            .map(|i| match throttled.contains(&i) {
                true => Reason::new(
                    Reason::THROTTLING_ERROR,
                    "Throughput exceeds the current capacity for one or more partitions of your table.",
                ),
                false => Reason::none(),
            })
            .collect();
        return Err(ApiError::cancelled(reasons));
    }
    st.tally(&consumed);
    let mut out = Map::new();
    out.insert("Responses".into(), Json::Array(responses));
    if req.mode != Mode::None {
        out.insert(
            "ConsumedCapacity".into(),
            Json::Array(consumed.to_json(req.mode, true)),
        );
    }
    Ok(Json::Object(out))
}

// ------------------------------------------------------------------------------ TransactWriteItems

#[derive(Debug)]
enum ActionKind {
    Write(WriteKind),
    Check,
}

#[derive(Debug)]
struct Action {
    table: String,
    key_or_item: Item,
    kind: ActionKind,
    condition: Option<Cond>,
    old_on_failure: bool,
}

#[derive(Debug)]
pub struct TransactWriteReq {
    actions: Vec<Action>,
    token: Option<String>,
    /// What a repeat with the same token must match.
    fingerprint: String,
    mode: Mode,
}

pub fn parse_transact_write(body: &Json) -> Result<TransactWriteReq, ApiError> {
    let items = body["TransactItems"]
        .as_array()
        .ok_or_else(|| invalid("1 validation error detected: Value null at 'transactItems' failed to satisfy constraint: Member must not be null"))?;
    if items.is_empty() {
        return Err(invalid(
            "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    if items.len() > MAX_ACTIONS {
        return Err(too_many(""));
    }
    let mut actions = Vec::new();
    let mut bytes = 0;
    for item in items {
        let object = item
            .as_object()
            .ok_or_else(|| ApiError::serialization("a TransactWriteItem must be a map"))?;
        let mut present = object.iter().filter(|(_, v)| !v.is_null());
        let (Some((verb, action)), None) = (present.next(), present.next()) else {
            return Err(invalid(
                "TransactItems can only contain one of Check, Put, Update or Delete",
            ));
        };
        let mut cx = context(action)?;
        let condition = action["ConditionExpression"]
            .as_str()
            .map(|c| cx.condition(c))
            .transpose()?;
        let (key_or_item, kind) = match verb.as_str() {
            "Put" => {
                let item = item_from_json(&action["Item"])?;
                bytes += item_size(&item);
                (item.clone(), ActionKind::Write(WriteKind::Put(item)))
            }
            "Update" => {
                let update = action["UpdateExpression"]
                    .as_str()
                    .ok_or_else(|| invalid("An Update action needs an UpdateExpression"))?;
                let update = cx.update(update)?;
                (
                    item_from_json(&action["Key"])?,
                    ActionKind::Write(WriteKind::Update(update)),
                )
            }
            "Delete" => (
                item_from_json(&action["Key"])?,
                ActionKind::Write(WriteKind::Delete),
            ),
            "ConditionCheck" => {
                if condition.is_none() {
                    return Err(invalid(
                        "1 validation error detected: Value null at 'transactItems.1.member.conditionCheck.conditionExpression' failed to satisfy constraint: Member must not be null",
                    ));
                }
                (item_from_json(&action["Key"])?, ActionKind::Check)
            }
            other => {
                return Err(invalid(format!(
                    "TransactItems can only contain one of Check, Put, Update or Delete, not {other}"
                )));
            }
        };
        cx.finish()?;
        actions.push(Action {
            table: ops::table_name(action)?,
            key_or_item,
            kind,
            condition,
            old_on_failure: old_on_failure(action)?,
        });
    }
    if bytes > MAX_TRANSACTION_BYTES {
        return Err(invalid("Transaction request cannot be larger than 4 MB"));
    }
    let token = body["ClientRequestToken"].as_str().map(str::to_owned);
    if token.as_ref().is_some_and(|t| t.is_empty() || t.len() > 36) {
        return Err(invalid(
            "1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: Member must have length less than or equal to 36",
        ));
    }
    Ok(TransactWriteReq {
        actions,
        token,
        fingerprint: serde_json::to_string(&(
            &body["TransactItems"],
            &body["ReturnItemCollectionMetrics"],
        ))
        .unwrap_or_default(),
        mode: Mode::parse(body)?,
    })
}

/// A transaction in flight: what it will write when it commits.
#[derive(Debug)]
pub struct PendingTxn {
    writes: Vec<(ItemRef, Option<Item>)>,
    held: Vec<ItemRef>,
    consumed: Consumed,
    mode: Mode,
    token: Option<String>,
    fingerprint: String,
}

#[derive(Debug)]
pub enum Token {
    InFlight {
        fingerprint: String,
    },
    Done {
        fingerprint: String,
        at: Instant,
        items: Vec<ItemRef>,
    },
}

/// What the arrival of a `TransactWriteItems` led to.
#[derive(Debug)]
pub enum Prepared {
    /// It holds its items; commit it with [`commit`] after its latency.
    Held(u64),
    /// A repeat of a finished transaction: its answer.
    Answered(Json),
}

/// The arrival of a transaction: validation, idempotency, conflicts, conditions, the
/// writes it will make and the capacity it takes. On success its items are held.
pub fn prepare(st: &mut State, now: Instant, req: &TransactWriteReq) -> Result<Prepared, ApiError> {
    st.tokens.retain(|_, t| match t {
        Token::Done { at, .. } => now.saturating_duration_since(*at) < TOKEN_LIFETIME,
        Token::InFlight { .. } => true,
    });
    if let Some(token) = &req.token {
        match st.tokens.get(token) {
            Some(Token::InFlight { fingerprint }) if *fingerprint == req.fingerprint => {
                return Err(ApiError::new(
                    "TransactionInProgressException",
                    "The transaction with the given request token is already in progress.",
                ));
            }
            Some(Token::Done {
                fingerprint, items, ..
            }) if *fingerprint == req.fingerprint => {
                let items = items.clone();
                st.stats.idempotent_replays += 1;
                return Ok(Prepared::Answered(replay(st, &items, req.mode)));
            }
            Some(_) => {
                return Err(ApiError::new(
                    "IdempotentParameterMismatchException",
                    "Request has a different payload from the one previously received with the same client request token.",
                ));
            }
            None => {}
        }
    }
    // Static checks: tables, keys, one action per item.
    let mut refs: Vec<ItemRef> = Vec::new();
    for action in &req.actions {
        let table = st.table(&action.table)?;
        let key = match &action.kind {
            ActionKind::Write(kind) => ops::write_key(table, kind, &action.key_or_item)?,
            ActionKind::Check => table.primary_key(&action.key_or_item, true)?,
        };
        let item = ItemRef {
            table: action.table.clone(),
            key,
        };
        if refs.contains(&item) {
            return Err(multiple_operations());
        }
        refs.push(item);
    }
    // Each action: a conflict, a failed condition, an invalid result, or its write.
    let mut reasons = Vec::with_capacity(refs.len());
    let mut writes = Vec::new();
    let mut consumed = Consumed::default();
    let mut demands = Vec::new();
    let empty = Item::new();
    for (action, item_ref) in req.actions.iter().zip(&refs) {
        if st.holds.contains_key(item_ref) {
            reasons.push(Reason::conflict());
            continue;
        }
        let table = st.table(&item_ref.table)?;
        let old = table.get(&item_ref.key);
        if let Some(condition) = &action.condition
            && !expr::eval(condition, old.unwrap_or(&empty))
        {
            let mut reason = Reason::new(
                Reason::CONDITIONAL_CHECK_FAILED,
                "The conditional request failed",
            );
            if action.old_on_failure {
                reason.item = old.map(item_to_json);
            }
            reasons.push(reason);
            continue;
        }
        // Two write units per 1 KB for each item written, index entries included, and
        // for each item checked (prepare and commit).
        let mut write_units = 0.0;
        match &action.kind {
            ActionKind::Write(kind) => match ops::new_image(table, &item_ref.key, kind, old) {
                Ok(new) => {
                    let (units, indexes) = table.write_units(old, new.as_ref());
                    consumed.table_write(&item_ref.table, 2.0 * units);
                    write_units += 2.0 * units;
                    for (index, u) in indexes {
                        consumed.index_write(&item_ref.table, &index, 2.0 * u);
                        write_units += 2.0 * u;
                    }
                    writes.push((item_ref.clone(), new));
                }
                Err(e) => {
                    reasons.push(Reason::new(Reason::VALIDATION_ERROR, e.message));
                    continue;
                }
            },
            ActionKind::Check => {
                let units = 2.0 * kb_units(old.map_or(0, item_size));
                consumed.table_write(&item_ref.table, units);
                write_units += units;
            }
        }
        demands.push((
            reasons.len(),
            Demand {
                table: item_ref.table.clone(),
                pk: item_ref.key.pk.clone(),
                read: 0.0,
                write: write_units,
            },
        ));
        reasons.push(Reason::none());
    }
    if reasons.iter().any(|r| !r.is_none()) {
        if reasons
            .iter()
            .any(|r| r.code == Reason::TRANSACTION_CONFLICT)
        {
            st.stats.transaction_conflicts += 1;
        }
        if reasons
            .iter()
            .any(|r| r.code == Reason::CONDITIONAL_CHECK_FAILED)
        {
            st.stats.condition_failures += 1;
        }
        return Err(ApiError::cancelled(reasons));
    }
    let only_demands: Vec<Demand> = demands.iter().map(|(_, d)| d.clone()).collect();
    if let Err(throttled) = st.throttle.take(now, &only_demands) {
        st.stats.throttled += 1;
        let throttled: Vec<usize> = throttled.iter().map(|i| demands[*i].0).collect();
        let reasons = (0..refs.len())
            .map(|i| match throttled.contains(&i) {
                true => Reason::new(
                    Reason::THROTTLING_ERROR,
                    "Throughput exceeds the current capacity for one or more partitions of your table.",
                ),
                false => Reason::none(),
            })
            .collect();
        return Err(ApiError::cancelled(reasons));
    }
    let id = st.next_txn;
    st.next_txn += 1;
    for item_ref in &refs {
        st.holds.insert(item_ref.clone(), id);
    }
    if let Some(token) = &req.token {
        st.tokens.insert(
            token.clone(),
            Token::InFlight {
                fingerprint: req.fingerprint.clone(),
            },
        );
    }
    st.pending.insert(
        id,
        PendingTxn {
            writes,
            held: refs,
            consumed,
            mode: req.mode,
            token: req.token.clone(),
            fingerprint: req.fingerprint.clone(),
        },
    );
    Ok(Prepared::Held(id))
}

/// The end of a transaction's flight: its writes land at once, its items are released.
pub fn commit(st: &mut State, now: Instant, id: u64) -> Json {
    let Some(txn) = st.pending.remove(&id) else {
        return json!({});
    };
    for (item_ref, new) in txn.writes {
        if let Some(table) = st.tables.get_mut(&item_ref.table) {
            table.write(&item_ref.key, new);
        }
    }
    for item_ref in &txn.held {
        st.holds.remove(item_ref);
    }
    if let Some(token) = txn.token {
        st.tokens.insert(
            token,
            Token::Done {
                fingerprint: txn.fingerprint,
                at: now,
                items: txn.held.clone(),
            },
        );
    }
    st.stats.transactions_committed += 1;
    st.tally(&txn.consumed);
    let mut out = Map::new();
    if txn.mode != Mode::None {
        out.insert(
            "ConsumedCapacity".into(),
            Json::Array(txn.consumed.to_json(txn.mode, true)),
        );
    }
    Json::Object(out)
}

/// The answer to a repeat of a finished transaction: nothing written, its items read
/// (two read units per 4 KB of each).
fn replay(st: &mut State, items: &[ItemRef], mode: Mode) -> Json {
    let mut consumed = Consumed::default();
    for item_ref in items {
        let size = st
            .tables
            .get(&item_ref.table)
            .and_then(|t| t.get(&item_ref.key))
            .map_or(0, item_size);
        consumed.table_read(&item_ref.table, 2.0 * read_units(size));
    }
    st.tally(&consumed);
    let mut out = Map::new();
    if mode != Mode::None {
        out.insert(
            "ConsumedCapacity".into(),
            Json::Array(consumed.to_json(mode, true)),
        );
    }
    Json::Object(out)
}
