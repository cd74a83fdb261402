//! The capacity units the store's requests consume, as DynamoDB reports them.
//!
//! An SDK interceptor on the store's client asks for `ReturnConsumedCapacity: TOTAL` on
//! every data-plane request and adds up the `ConsumedCapacity` of every answer, retries
//! included. DynamoDB reports capacity only with a successful answer: the errors a
//! refused request gets (`TransactionCanceledException`, `ConditionalCheckFailedException`,
//! throttling) carry none, so what they consumed is not counted here.

use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::operation::delete_item::{DeleteItemInput, DeleteItemOutput};
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::transact_get_items::{
    TransactGetItemsInput, TransactGetItemsOutput,
};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsInput, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Units are kept in thousandths, so that atomics can add them (eventually consistent
/// reads cost half units).
const MILLI: f64 = 1000.0;

/// Units consumed and requests sent so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CapacityStats {
    /// Read units DynamoDB reported.
    pub read_units: f64,
    /// Write units DynamoDB reported.
    pub write_units: f64,
    /// HTTP requests sent (every try of every call).
    pub requests: u64,
}

/// The counter of a store and its clones; see [`crate::DynamoStore::capacity_stats`].
#[derive(Debug, Clone, Default)]
pub struct CapacityCounter {
    inner: Arc<Tally>,
}

#[derive(Debug, Default)]
struct Tally {
    read_milli: AtomicU64,
    write_milli: AtomicU64,
    requests: AtomicU64,
}

impl CapacityCounter {
    pub fn stats(&self) -> CapacityStats {
        CapacityStats {
            read_units: self.inner.read_milli.load(Ordering::Relaxed) as f64 / MILLI,
            write_units: self.inner.write_milli.load(Ordering::Relaxed) as f64 / MILLI,
            requests: self.inner.requests.load(Ordering::Relaxed),
        }
    }

    /// A copy of `client` whose requests this counter sees.
    pub(crate) fn attach(&self, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            client
                .config()
                .to_builder()
                .interceptor(self.clone())
                .build(),
        )
    }

    fn add(&self, kind: Kind, reports: &[&ConsumedCapacity]) {
        let (mut read, mut write) = (0.0, 0.0);
        for c in reports {
            // Transactional answers split reads from writes; the others give one total,
            // which is of the operation's kind.
            match (c.read_capacity_units, c.write_capacity_units) {
                (None, None) => match kind {
                    Kind::Read => read += c.capacity_units.unwrap_or(0.0),
                    Kind::Write => write += c.capacity_units.unwrap_or(0.0),
                },
                (r, w) => {
                    read += r.unwrap_or(0.0);
                    write += w.unwrap_or(0.0);
                }
            }
        }
        let milli = |units: f64| (units * MILLI).round().max(0.0) as u64;
        self.inner
            .read_milli
            .fetch_add(milli(read), Ordering::Relaxed);
        self.inner
            .write_milli
            .fetch_add(milli(write), Ordering::Relaxed);
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Read,
    Write,
}

/// Sets `return_consumed_capacity` to `TOTAL` on the inputs that take it, when unset.
macro_rules! ask {
    ($input:expr, $($ty:ty),+) => {
        $(
            if let Some(input) = $input.downcast_mut::<$ty>() {
                input.return_consumed_capacity.get_or_insert(ReturnConsumedCapacity::Total);
                return;
            }
        )+
    };
}

fn ask_for_capacity(input: &mut aws_smithy_runtime_api::client::interceptors::context::Input) {
    ask!(
        input,
        GetItemInput,
        PutItemInput,
        UpdateItemInput,
        DeleteItemInput,
        QueryInput,
        BatchGetItemInput,
        BatchWriteItemInput,
        TransactGetItemsInput,
        TransactWriteItemsInput
    );
}

impl Intercept for CapacityCounter {
    fn name(&self) -> &'static str {
        "CapacityCounter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        ask_for_capacity(context.input_mut());
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        if let Some(o) = output.downcast_ref::<GetItemOutput>() {
            self.add(Kind::Read, &o.consumed_capacity.iter().collect::<Vec<_>>());
        } else if let Some(o) = output.downcast_ref::<QueryOutput>() {
            self.add(Kind::Read, &o.consumed_capacity.iter().collect::<Vec<_>>());
        } else if let Some(o) = output.downcast_ref::<BatchGetItemOutput>() {
            self.add(
                Kind::Read,
                &o.consumed_capacity.iter().flatten().collect::<Vec<_>>(),
            );
        } else if let Some(o) = output.downcast_ref::<TransactGetItemsOutput>() {
            self.add(
                Kind::Read,
                &o.consumed_capacity.iter().flatten().collect::<Vec<_>>(),
            );
        } else if let Some(o) = output.downcast_ref::<PutItemOutput>() {
            self.add(Kind::Write, &o.consumed_capacity.iter().collect::<Vec<_>>());
        } else if let Some(o) = output.downcast_ref::<UpdateItemOutput>() {
            self.add(Kind::Write, &o.consumed_capacity.iter().collect::<Vec<_>>());
        } else if let Some(o) = output.downcast_ref::<DeleteItemOutput>() {
            self.add(Kind::Write, &o.consumed_capacity.iter().collect::<Vec<_>>());
        } else if let Some(o) = output.downcast_ref::<BatchWriteItemOutput>() {
            self.add(
                Kind::Write,
                &o.consumed_capacity.iter().flatten().collect::<Vec<_>>(),
            );
        } else if let Some(o) = output.downcast_ref::<TransactWriteItemsOutput>() {
            self.add(
                Kind::Write,
                &o.consumed_capacity.iter().flatten().collect::<Vec<_>>(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(total: f64, read: Option<f64>, write: Option<f64>) -> ConsumedCapacity {
        ConsumedCapacity::builder()
            .table_name("t")
            .capacity_units(total)
            .set_read_capacity_units(read)
            .set_write_capacity_units(write)
            .build()
    }

    #[test]
    fn totals_go_by_kind_and_splits_by_their_parts() {
        let c = CapacityCounter::default();
        c.add(Kind::Read, &[&report(0.5, None, None)]);
        c.add(Kind::Write, &[&report(3.0, None, None)]);
        // A replayed transaction: a write call that reports reads.
        c.add(Kind::Write, &[&report(4.0, Some(4.0), Some(0.0))]);
        c.add(Kind::Read, &[&report(4.0, Some(1.5), Some(2.5))]);
        let s = c.stats();
        assert_eq!((s.read_units, s.write_units), (6.0, 5.5));
    }

    #[test]
    fn asks_for_totals_without_overriding_a_choice() {
        let mut input = aws_smithy_runtime_api::client::interceptors::context::Input::erase(
            GetItemInput::builder()
                .table_name("t")
                .build()
                .expect("input"),
        );
        ask_for_capacity(&mut input);
        let got = input
            .downcast_ref::<GetItemInput>()
            .expect("a GetItemInput");
        assert_eq!(
            got.return_consumed_capacity,
            Some(ReturnConsumedCapacity::Total)
        );
        let mut input = aws_smithy_runtime_api::client::interceptors::context::Input::erase(
            QueryInput::builder()
                .table_name("t")
                .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
                .build()
                .expect("input"),
        );
        ask_for_capacity(&mut input);
        let got = input.downcast_ref::<QueryInput>().expect("a QueryInput");
        assert_eq!(
            got.return_consumed_capacity,
            Some(ReturnConsumedCapacity::Indexes)
        );
    }
}
