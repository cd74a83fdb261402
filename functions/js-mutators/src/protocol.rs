//! The messages between an engine thread and the async side running the mutation's `Tx`.

use crate::Failure;
use std::sync::mpsc::SyncSender;
use tokio::sync::mpsc::UnboundedSender;

/// A `tx` operation; keys and values as the JavaScript side has them (values as JSON).
#[derive(Debug)]
pub(crate) enum Op {
    Get(String),
    Has(String),
    Put(String, String),
    Del(String),
    /// `limit: None` = every entry with the prefix.
    Scan {
        prefix: String,
        limit: Option<usize>,
    },
}

/// The answer to an [`Op`].
#[derive(Debug)]
pub(crate) enum Answer {
    /// A JSON text (a value, or the `[key, value]` pairs of a scan), or nothing.
    Value(Option<String>),
    Bool(bool),
    Done,
    /// The operation failed: the JavaScript side throws this message.
    Failed(String),
}

/// From the engine thread to the async side.
#[derive(Debug)]
pub(crate) enum Msg {
    Op(Op, SyncSender<Answer>),
    Done(Result<(), Failure>),
}

/// The engine thread's end of one mutation.
#[derive(Clone)]
pub(crate) struct Link {
    pub to_async: UnboundedSender<Msg>,
}

/// A mutation for an engine thread.
pub(crate) struct Job {
    pub name: String,
    pub args_json: String,
    /// The client's ID and the mutation's ID (`tx.clientID`, `tx.mutationID`), when the
    /// mutation runs for a push.
    pub identity: Option<(String, u64)>,
    pub link: Link,
}
