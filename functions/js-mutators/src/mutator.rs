//! The async side of a JavaScript mutation: queues it for an engine thread and runs its
//! `tx` operations on the real [`Tx`] until the engine reports the outcome. Nothing here
//! blocks: the engine thread does the waiting.

use crate::Failure;
use crate::pool::Pool;
use crate::protocol::{Answer, Job, Link, Msg, Op};
use serde_json::Value;
use std::sync::Arc;
use sync_core::mutators::{MutationError, Mutator};
use sync_core::tx::Tx;

/// One exported JavaScript mutator.
pub struct JsMutator {
    pub(crate) name: String,
    pub(crate) pool: Arc<Pool>,
}

#[async_trait::async_trait]
impl Mutator for JsMutator {
    async fn run(&self, tx: &mut Tx<'_>, args: &Value) -> Result<(), MutationError> {
        let (to_async, mut from_engine) = tokio::sync::mpsc::unbounded_channel();
        let job = Job {
            name: self.name.clone(),
            args_json: args.to_string(),
            identity: tx
                .client_id()
                .zip(tx.mutation_id())
                .map(|(client, id)| (client.to_owned(), id)),
            link: Link { to_async },
        };
        if !self.pool.submit(job) {
            return Err(rejected(Failure::Unavailable));
        }
        // The first error of a `tx` operation: a storage error fails the mutation even if
        // the mutator caught it (a temporary one aborts the push, as for Rust mutators);
        // another (a key too long, a value too deep) is what the mutation fails with when
        // the mutator lets it through.
        let mut store_error = None;
        let mut tx_error = None;
        while let Some(msg) = from_engine.recv().await {
            match msg {
                Msg::Op(op, reply) => {
                    let answer = match apply(tx, op).await {
                        Ok(answer) => answer,
                        Err(MutationError::Store(e)) => {
                            let answer = Answer::Failed("the store failed".into());
                            store_error.get_or_insert(e);
                            answer
                        }
                        Err(e) => {
                            let answer = Answer::Failed(e.to_string());
                            tx_error.get_or_insert(e);
                            answer
                        }
                    };
                    // The engine gave up waiting only if its thread is gone.
                    let _ = reply.send(answer);
                }
                Msg::Done(outcome) => {
                    if let Some(e) = store_error {
                        return Err(MutationError::Store(e));
                    }
                    return match outcome {
                        Ok(()) => Ok(()),
                        Err(failure) => Err(tx_error.unwrap_or_else(|| rejected(failure))),
                    };
                }
            }
        }
        Err(rejected(Failure::Unavailable))
    }
}

fn rejected(failure: Failure) -> MutationError {
    MutationError::Rejected(failure.to_string())
}

async fn apply(tx: &mut Tx<'_>, op: Op) -> Result<Answer, MutationError> {
    Ok(match op {
        Op::Get(key) => Answer::Value(tx.get(&key).await?.map(|v| v.to_string())),
        Op::Has(key) => Answer::Bool(tx.has(&key).await?),
        Op::Put(key, json) => {
            let value: Value = serde_json::from_str(&json)
                .map_err(|_| MutationError::InvalidArgs("the value is not JSON".into()))?;
            tx.put(&key, value)?;
            Answer::Done
        }
        Op::Del(key) => Answer::Bool(tx.del(&key).await?),
        Op::Scan { prefix, limit } => {
            let entries = tx.scan(&prefix, limit.unwrap_or(usize::MAX)).await?;
            let pairs: Vec<Value> = entries
                .into_iter()
                .map(|(k, v)| Value::Array(vec![Value::String(k), v]))
                .collect();
            Answer::Value(Some(Value::Array(pairs).to_string()))
        }
    })
}
