//! The poke function: pokes off the push's critical path.
//!
//! Every commit updates its space's item (`pk=space#<id>`, `sk=meta`: `headVersion`). The
//! table's stream carries that change (keys only: a poke carries no data) to this function
//! through Lambda's event source mapping, which lets through only changes of space items
//! ([`FILTER_PATTERN`]) and hands them over in batches. The function pokes for the
//! modifications among them ([`POKED_EVENT`]), each space of a batch once however many of
//! its records name it, the spaces concurrently ([`SPACE_CONCURRENCY`]), through
//! [`ApiGatewayPoker`] (410: the connection is gone and deleted). The records of a space it
//! could not poke completely (its connections could not be listed, or a post failed
//! otherwise than 410) are reported as failed (`ReportBatchItemFailures`): Lambda resumes
//! from the lowest sequence number reported. A retry pokes that space's connections again,
//! which costs a client one more pull at most.
//!
//! So the push answers right after its commit, and a committed push is never left
//! without its poke: the stream keeps every change of the space item for 24 hours and the
//! mapping delivers each at least once, even when the push function was cut right after
//! committing (a fan-out still failing after the mapping's retries is given up: the
//! clients' periodic pull then brings the change). Other changes of the space item (an
//! access change; a pull moving the version past a cookie from the future) poke as well:
//! a harmless extra pull.

use crate::poker::ApiGatewayPoker;
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::StreamExt as _;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use store_dynamodb::schema;
use sync_core::SpaceId;

/// The stream's view type: the keys name the space, which is all a poke needs (no item
/// data, such as a space's members, ever enters the stream).
pub const STREAM_VIEW_TYPE: &str = "KEYS_ONLY";

/// The event source mapping's filter, in Lambda's filter rule syntax: changes of space
/// items (`pk` starting `space#`, `sk` = `meta`). It names the `dynamodb` key only, the one
/// key Lambda's documentation promises filtering on for DynamoDB event sources; the
/// function itself keeps the modifications ([`POKED_EVENT`]). The template's
/// `FilterCriteria` holds exactly this pattern (tests/template.rs).
pub const FILTER_PATTERN: &str =
    r#"{"dynamodb":{"Keys":{"pk":{"S":[{"prefix":"space#"}]},"sk":{"S":["meta"]}}}}"#;

/// The records that poke: modifications of a space item (every commit is one). Creating
/// a space (`INSERT`) pokes nobody: nobody can be connected to it yet.
pub const POKED_EVENT: &str = "MODIFY";

/// Spaces poked at once, each with up to [`crate::poker::DEFAULT_CONCURRENCY`] posts in
/// flight.
pub const SPACE_CONCURRENCY: usize = 8;

/// Whether `event` (a stream record as JSON) matches `pattern`, for the part of Lambda's
/// filter rule syntax that [`FILTER_PATTERN`] uses: nested objects of fields, each ending
/// in a list of accepted values (exact strings, numbers or booleans, or
/// `{"prefix": "..."}`). Any other rule (`anything-but`, `numeric`, `exists`...) matches
/// nothing here.
pub fn matches_filter(pattern: &Value, event: &Value) -> bool {
    let Some(fields) = pattern.as_object() else {
        return false;
    };
    fields.iter().all(|(name, rule)| {
        let value = &event[name.as_str()];
        match rule {
            Value::Object(_) => value.is_object() && matches_filter(rule, value),
            Value::Array(accepted) => accepted.iter().any(|a| matches_value(a, value)),
            _ => false,
        }
    })
}

fn matches_value(accepted: &Value, value: &Value) -> bool {
    match accepted {
        Value::Object(rule) => match (rule.len(), rule.get("prefix"), value.as_str()) {
            (1, Some(Value::String(prefix)), Some(value)) => value.starts_with(prefix.as_str()),
            _ => false,
        },
        Value::Null => false,
        scalar => scalar == value,
    }
}

fn filter() -> &'static Value {
    static PATTERN: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| serde_json::from_str(FILTER_PATTERN).expect("a JSON pattern"))
}

/// The space of a record that pokes: one that [`FILTER_PATTERN`] lets through and that
/// is a [`POKED_EVENT`]; `None` for any other record (the function skips those).
pub fn space_of(record: &EventRecord) -> Option<SpaceId> {
    if record.event_name != POKED_EVENT {
        return None;
    }
    let json = serde_json::to_value(record).ok()?;
    if !matches_filter(filter(), &json) {
        return None;
    }
    let pk = json["dynamodb"]["Keys"][schema::PK]["S"].as_str()?;
    let id = pk.strip_prefix(schema::space_pk("").as_str())?;
    SpaceId::parse(id).ok()
}

/// A batch the function cannot answer with a list of failed records.
#[derive(Debug, thiserror::Error)]
#[error("a record of space {space} failed and has no sequence number to report")]
pub struct UnreportableFailure {
    pub space: SpaceId,
}

/// What one batch did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchSummary {
    pub records: usize,
    /// Records that name no space item's change (skipped).
    pub skipped: usize,
    /// Distinct spaces poked.
    pub spaces: usize,
    pub delivered: usize,
    pub gone: usize,
    pub failed_posts: usize,
    /// Spaces whose connections could not be listed.
    pub unlisted_spaces: usize,
}

/// Handles one batch of stream records: each distinct space poked once, the records of
/// incompletely poked spaces reported by their sequence numbers (the item identifiers
/// of a DynamoDB stream). An error (the whole batch retried, or bisected) only for a
/// failed record without a sequence number.
pub async fn handle(
    poker: &ApiGatewayPoker,
    event: &Event,
) -> Result<DynamoDbEventResponse, UnreportableFailure> {
    handle_with_summary(poker, event)
        .await
        .map(|(response, _)| response)
}

/// [`handle`], with what it did.
pub async fn handle_with_summary(
    poker: &ApiGatewayPoker,
    event: &Event,
) -> Result<(DynamoDbEventResponse, BatchSummary), UnreportableFailure> {
    let mut summary = BatchSummary {
        records: event.records.len(),
        ..BatchSummary::default()
    };
    // The spaces in the order of their first record, with the indexes of their records.
    let mut spaces: Vec<SpaceId> = Vec::new();
    let mut records_of: HashMap<SpaceId, Vec<usize>> = HashMap::new();
    for (i, record) in event.records.iter().enumerate() {
        match space_of(record) {
            Some(space) => {
                let records = records_of.entry(space.clone()).or_default();
                if records.is_empty() {
                    spaces.push(space);
                }
                records.push(i);
            }
            None => {
                // A new space's item (the filter lets it through): nobody to poke yet.
                summary.skipped += 1;
                tracing::debug!(event_name = %record.event_name,
                    "skipped a stream record that is no modification of a space item");
            }
        }
    }
    summary.spaces = spaces.len();
    let outcomes: Vec<(SpaceId, bool)> = futures::stream::iter(spaces)
        .map(|space| async move {
            let outcome = poker.fan_out(&space).await;
            (space, outcome)
        })
        .buffer_unordered(SPACE_CONCURRENCY)
        .map(|(space, outcome)| {
            let complete = match outcome {
                Ok(fan_out) => {
                    summary.delivered += fan_out.delivered;
                    summary.gone += fan_out.gone;
                    summary.failed_posts += fan_out.failed;
                    fan_out.complete()
                }
                Err(_) => {
                    summary.unlisted_spaces += 1;
                    false
                }
            };
            (space, complete)
        })
        .collect()
        .await;
    // Every record of an incompletely poked space, in batch (stream) order: Lambda
    // checkpoints at the lowest sequence number reported and delivers everything from
    // there again, so reporting later ones too loses nothing and is what AWS documents.
    let mut failed: Vec<(usize, SpaceId)> = Vec::new();
    for (space, complete) in outcomes {
        if !complete {
            failed.extend(records_of[&space].iter().map(|&i| (i, space.clone())));
        }
    }
    failed.sort_unstable_by_key(|(i, _)| *i);
    let mut response = DynamoDbEventResponse::default();
    for (i, space) in failed {
        let Some(sequence) = event.records[i].change.sequence_number.clone() else {
            tracing::error!(space_id = %space, "a failed record has no sequence number");
            return Err(UnreportableFailure { space });
        };
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence);
        response.batch_item_failures.push(failure);
    }
    tracing::info!(
        records = summary.records,
        skipped = summary.skipped,
        spaces = summary.spaces,
        delivered = summary.delivered,
        gone = summary.gone,
        failed_posts = summary.failed_posts,
        unlisted_spaces = summary.unlisted_spaces,
        failed_records = response.batch_item_failures.len(),
        "poke batch"
    );
    Ok((response, summary))
}

/// Runs the Lambda runtime loop of the poke function with `poker` (built by
/// [`crate::functions::start`]: the connections in the table named by `TABLE_NAME`,
/// PostToConnection through `WEBSOCKET_ENDPOINT`).
pub async fn run(poker: Arc<ApiGatewayPoker>) -> Result<(), lambda_runtime::Error> {
    let emf = crate::emf::EmfWriter::stdout();
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Event>| {
            let poker = poker.clone();
            let emf = emf.clone();
            async move {
                let (response, summary) = handle_with_summary(&poker, &event.payload).await?;
                emf.poke_batch(&summary);
                Ok::<_, lambda_runtime::Error>(response)
            }
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A record of the shape of the AWS documentation's example event, with `keys`.
    fn record(event_name: &str, pk: &str, sk: &str, sequence: &str) -> Value {
        json!({
            "eventID": "c4ca4238a0b923820dcc509a6f75849b",
            "eventName": event_name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "Keys": {"pk": {"S": pk}, "sk": {"S": sk}},
                "ApproximateCreationDateTime": 1428537600,
                "SequenceNumber": sequence,
                "SizeBytes": 26,
                "StreamViewType": "KEYS_ONLY"
            },
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/sync/stream/2015-06-27T00:48:05.899"
        })
    }

    fn parsed(json: &Value) -> EventRecord {
        serde_json::from_value(json.clone()).expect("a stream record")
    }

    #[test]
    fn the_filter_lets_through_modifications_of_space_items_only() {
        let pattern = filter();
        // (record, passes the mapping's filter, the space the function pokes for)
        let cases = [
            (
                record("MODIFY", "space#abc", "meta", "1"),
                true,
                Some("abc"),
            ),
            // Changes of a space item other than modifications: through the filter,
            // skipped by the function.
            (record("INSERT", "space#abc", "meta", "2"), true, None),
            (record("REMOVE", "space#abc", "meta", "3"), true, None),
            // Entries, clients, connection records, a connection's reverse record, and a
            // user's count of spaces.
            (record("MODIFY", "space#abc", "e#count", "4"), false, None),
            (record("MODIFY", "space#abc", "c#client", "5"), false, None),
            (record("MODIFY", "space#abc", "ws#conn=", "6"), false, None),
            (record("MODIFY", "conn#conn=", "meta", "7"), false, None),
            (record("MODIFY", "user#alice", "spaces", "8"), false, None),
            (record("INSERT", "user#alice", "spaces", "8"), false, None),
            // Not a valid space ID: through the filter, skipped by the function.
            (record("MODIFY", "space#../x", "meta", "9"), true, None),
        ];
        for (json, passes, space) in cases {
            assert_eq!(matches_filter(pattern, &json), passes, "{json}");
            let named = space_of(&parsed(&json));
            assert_eq!(named.as_ref().map(SpaceId::as_str), space, "{json}");
        }
        // A serialized record matches as its JSON does (the function filters what it
        // parsed; the emulated mapping the JSON it read).
        let json = record("MODIFY", "space#abc", "meta", "1");
        assert!(matches_filter(
            pattern,
            &serde_json::to_value(parsed(&json)).unwrap()
        ));
    }

    #[test]
    fn the_pattern_names_the_store_schema() {
        let pattern = filter();
        let keys = &pattern["dynamodb"]["Keys"];
        assert_eq!(
            keys[schema::PK]["S"],
            json!([{"prefix": schema::space_pk("")}])
        );
        assert_eq!(keys[schema::SK]["S"], json!([schema::META_SK]));
        // Only the `dynamodb` key, as Lambda filters DynamoDB stream records.
        assert_eq!(pattern.as_object().map(|o| o.len()), Some(1));
    }

    #[test]
    fn matcher_rules() {
        let pattern = json!({"a": {"b": ["x", 1, true, {"prefix": "p"}]}});
        for (event, matches) in [
            (json!({"a": {"b": "x"}}), true),
            (json!({"a": {"b": 1}}), true),
            (json!({"a": {"b": true}}), true),
            (json!({"a": {"b": "pq"}}), true),
            (json!({"a": {"b": "y"}}), false),
            (json!({"a": {"c": "x"}}), false),
            (json!({"a": "x"}), false),
            (json!({}), false),
        ] {
            assert_eq!(matches_filter(&pattern, &event), matches, "{event}");
        }
        // Rules this matcher does not know match nothing.
        let unknown = json!({"a": [{"anything-but": "x"}]});
        assert!(!matches_filter(&unknown, &json!({"a": "y"})));
    }
}
