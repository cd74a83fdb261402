//! The app's mutators: edit this module to add your own (see the README). Each must do
//! what the client mutator of the same name does; the server's result wins.

use super::{MutationError, Mutator, Registry};
use crate::tx::Tx;
use serde_json::{Value, json};

/// Every mutator the server knows, by the name the client uses.
pub fn registry() -> Registry {
    Registry::new()
        .with("increment", Increment)
        .with("setItem", SetItem)
        .with("deleteItem", DeleteItem)
}

/// The sync tutorial's counter: `count = (count ?? 0) + delta`.
pub struct Increment;

pub const COUNT_KEY: &str = "count";

#[async_trait::async_trait]
impl Mutator for Increment {
    async fn run(&self, tx: &mut Tx<'_>, args: &Value) -> Result<(), MutationError> {
        let delta = args
            .as_f64()
            .filter(|d| d.is_finite())
            .ok_or_else(|| MutationError::InvalidArgs("delta must be a finite number".into()))?;
        let current = match tx.get(COUNT_KEY).await? {
            None => 0.0,
            Some(v) => v.as_f64().ok_or_else(|| {
                MutationError::Rejected("the stored count is not a number".into())
            })?,
        };
        let next = current + delta;
        if !next.is_finite() {
            return Err(MutationError::Rejected("the count would overflow".into()));
        }
        tx.put(COUNT_KEY, number(next))
    }
}

/// `setItem({key, value})`: stores any JSON value under a key of the `item/` namespace.
pub struct SetItem;

#[async_trait::async_trait]
impl Mutator for SetItem {
    async fn run(&self, tx: &mut Tx<'_>, args: &Value) -> Result<(), MutationError> {
        let key = item_key(args)?;
        let value = args
            .get("value")
            .cloned()
            .ok_or_else(|| MutationError::InvalidArgs("`value` is missing".into()))?;
        tx.put(&key, value)
    }
}

/// `deleteItem({key})`: removes a key of the `item/` namespace.
pub struct DeleteItem;

#[async_trait::async_trait]
impl Mutator for DeleteItem {
    async fn run(&self, tx: &mut Tx<'_>, args: &Value) -> Result<(), MutationError> {
        let key = item_key(args)?;
        tx.del(&key).await?;
        Ok(())
    }
}

fn item_key(args: &Value) -> Result<String, MutationError> {
    match args.get("key") {
        Some(Value::String(k)) if !k.is_empty() => Ok(format!("item/{k}")),
        _ => Err(MutationError::InvalidArgs(
            "`key` must be a non-empty string".into(),
        )),
    }
}

/// Integral results stay integers on the wire (`3`, not `3.0`), as JavaScript prints them.
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() <= crate::protocol::MAX_SAFE_INTEGER as f64 {
        json!(n as i64)
    } else {
        json!(n)
    }
}
