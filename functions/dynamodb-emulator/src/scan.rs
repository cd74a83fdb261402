//! `Scan`: every item of a table, or of one of its local secondary indexes, a page at a
//! time, with what it shares with `Query` (filter, projection, `Select`, `Limit`, 1 MB
//! pages, `ExclusiveStartKey`/`LastEvaluatedKey`, consumed capacity:
//! [`ops::parse_read`], [`ops::Page`], [`ops::answer_page`]) and parallel scans
//! (`Segment`, `TotalSegments`).
//!
//! Order: partitions by [`scan_hash`] of their key (then the key), a partition's items
//! together, in the order of its sort key (of the index's sort key, on an index). The
//! order is the same for every page, so `ExclusiveStartKey` resumes right after the item
//! it names, even if that item has since been deleted.
//!
//! Segments: DynamoDB divides a parallel scan by its partitions' hash ranges; here segment
//! `s` of `n` holds the partition keys whose hash `h` has `⌊h·n / 2⁶⁴⌋ = s`. The segments
//! are thus disjoint contiguous ranges of the scan order, together the whole table, and a
//! partition's items are all in one segment.

use crate::error::ApiError;
use crate::ops::{self, Page, ReadReq, StartKey, context, invalid, refuse_legacy};
use crate::state::State;
use crate::table::{Edge, Lsi, Partition, Table, scan_hash};
use crate::value::{KeyValue, item_size};
use serde_json::Value as Json;
use std::ops::Bound;
use std::time::Instant;

/// The limits of the API's `Segment` and `TotalSegments` members.
pub const MAX_TOTAL_SEGMENTS: i64 = 1_000_000;
const MAX_SEGMENT: i64 = MAX_TOTAL_SEGMENTS - 1;

#[derive(Debug)]
pub struct ScanReq {
    read: ReadReq,
    segment: Option<Segment>,
}

/// One segment of a parallel scan: `segment` < `total`, both validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    segment: u64,
    total: u64,
}

impl Segment {
    /// Whether the partitions of hash `h` are in this segment.
    fn holds(&self, h: u64) -> bool {
        (u128::from(h) * u128::from(self.total)) >> 64 == u128::from(self.segment)
    }

    /// The least hash in this segment: ⌈segment·2⁶⁴ / total⌉, below 2⁶⁴ as segment < total.
    fn first_hash(&self) -> u64 {
        let low = (u128::from(self.segment) << 64).div_ceil(u128::from(self.total));
        u64::try_from(low).unwrap_or(u64::MAX)
    }
}

fn int_param(body: &Json, field: &str) -> Result<Option<i64>, ApiError> {
    match body.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError::serialization(format!("{field} must be an integer"))),
    }
}

/// `Segment` and `TotalSegments`: both or neither, with DynamoDB's checks and messages
/// (the members' ranges first, as the service validates its input's shape first).
fn parse_segment(body: &Json) -> Result<Option<Segment>, ApiError> {
    let segment = int_param(body, "Segment")?;
    let total = int_param(body, "TotalSegments")?;
    let mut errors = Vec::new();
    let mut range = |value: Option<i64>, member: &str, min: i64, max: i64| {
        let constraint = match value {
            Some(v) if v < min => format!("greater than or equal to {min}"),
            Some(v) if v > max => format!("less than or equal to {max}"),
            _ => return,
        };
        if let Some(v) = value {
            errors.push(format!(
                "Value '{v}' at '{member}' failed to satisfy constraint: Member must have value {constraint}"
            ));
        }
    };
    range(segment, "segment", 0, MAX_SEGMENT);
    range(total, "totalSegments", 1, MAX_TOTAL_SEGMENTS);
    if !errors.is_empty() {
        let plural = if errors.len() == 1 { "" } else { "s" };
        return Err(invalid(format!(
            "{} validation error{plural} detected: {}",
            errors.len(),
            errors.join("; ")
        )));
    }
    match (segment, total) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(invalid(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
        )),
        (None, Some(_)) => Err(invalid(
            "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
        )),
        (Some(s), Some(t)) if s >= t => Err(invalid(format!(
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {t}"
        ))),
        // Both within their ranges, so neither is negative.
        (Some(s), Some(t)) => Ok(Some(Segment {
            segment: s.unsigned_abs(),
            total: t.unsigned_abs(),
        })),
    }
}

pub fn parse_scan(body: &Json) -> Result<ScanReq, ApiError> {
    refuse_legacy(
        body,
        &["ScanFilter", "AttributesToGet", "ConditionalOperator"],
    )?;
    let segment = parse_segment(body)?;
    let read = ops::parse_read(body, context(body)?)?;
    Ok(ScanReq { read, segment })
}

/// Reads a partition's items (its index entries, on an index) in order, after `after` when
/// the scan resumes inside it; false once the page is full.
fn read_partition<'a>(
    table: &'a Table,
    index: Option<(usize, &'a Lsi)>,
    pk: &KeyValue,
    partition: &'a Partition,
    after: Option<&StartKey>,
    page: &mut Page<'a>,
) -> bool {
    match index {
        None => {
            let from = match after {
                Some(start) => Bound::Excluded(start.key.sk.clone()),
                None => Bound::Unbounded,
            };
            for (_, item) in partition.items.range((from, Bound::Unbounded)) {
                if !page.read(pk, item, item_size(item)) {
                    return false;
                }
            }
        }
        Some((i, lsi)) => {
            let from = match after {
                Some(StartKey {
                    key,
                    index_value: Some(v),
                }) => Bound::Excluded((v.clone(), Edge::At(key.sk.clone()))),
                _ => Bound::Unbounded,
            };
            let Some(entries) = partition.indexes.get(i) else {
                return true;
            };
            for (_, edge) in entries.range((from, Bound::Unbounded)) {
                let Edge::At(sk) = edge else { continue };
                let Some(item) = partition.items.get(sk) else {
                    continue;
                };
                // An index is charged on the size of its entries, as a `Query` on it is.
                let size = table.index_entry_size(lsi, item).unwrap_or(0);
                if !page.read(pk, item, size) {
                    return false;
                }
            }
        }
    }
    true
}

pub fn scan(st: &mut State, now: Instant, req: &ScanReq) -> Result<Json, ApiError> {
    let read = &req.read;
    let State {
        tables,
        throttle,
        stats,
        ..
    } = st;
    let table = tables
        .get(&read.table)
        .ok_or_else(ApiError::table_not_found)?;
    let index = ops::read_index(table, read.index.as_deref())?;
    let start = read
        .start
        .as_ref()
        .map(|s| ops::start_key(table, index, s))
        .transpose()?;
    let start_hash = start.as_ref().map(|s| scan_hash(&s.key.pk));
    if let (Some(segment), Some(h)) = (req.segment, start_hash)
        && !segment.holds(h)
    {
        return Err(invalid(
            "The provided Exclusive start key does not map to the provided Segment and TotalSegments values.",
        ));
    }
    let mut page = Page::new(read.limit, None);
    // The rest of the start key's partition (if it still has items), then the partitions
    // after it in scan order, within the segment.
    let mut more = true;
    if let Some(start) = &start
        && let Some(partition) = table.partitions.get(&start.key.pk)
    {
        more = read_partition(
            table,
            index,
            &start.key.pk,
            partition,
            Some(start),
            &mut page,
        );
    }
    if more {
        let from = match (&start, start_hash) {
            (Some(start), Some(h)) => Bound::Excluded((h, Some(start.key.pk.clone()))),
            _ => Bound::Included((req.segment.map_or(0, |s| s.first_hash()), None)),
        };
        for (h, pk) in table.scan_order.range((from, Bound::Unbounded)) {
            if req.segment.is_some_and(|s| !s.holds(*h)) {
                break;
            }
            let Some(pk) = pk else { continue };
            let Some(partition) = table.partitions.get(pk) else {
                continue;
            };
            if !read_partition(table, index, pk, partition, None, &mut page) {
                break;
            }
        }
    }
    let (out, consumed) = ops::answer_page(throttle, stats, now, table, index, read, page)?;
    st.tally(&consumed);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::Throttle;
    use serde_json::json;
    use std::collections::BTreeSet;

    const T: &str = "things";

    fn state() -> State {
        State::new(Throttle::new(0.0, 0.0))
    }

    /// A table keyed by `pk` (S) and `sk` (N), with a KEYS_ONLY local index on `rank` (N).
    fn with_table() -> State {
        let mut st = state();
        let body = json!({
            "TableName": T,
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"},
                {"AttributeName": "rank", "AttributeType": "N"},
            ],
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "LocalSecondaryIndexes": [{
                "IndexName": "by-rank",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "rank", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }],
            "BillingMode": "PAY_PER_REQUEST",
        });
        ops::create_table(&mut st, &body, 0.0).expect("create");
        st
    }

    fn put(st: &mut State, item: Json) {
        let req = ops::parse_put(&json!({"TableName": T, "Item": item})).expect("parse put");
        ops::write_item(st, Instant::now(), &req).expect("put");
    }

    fn delete(st: &mut State, key: Json) {
        let req = ops::parse_delete(&json!({"TableName": T, "Key": key})).expect("parse delete");
        ops::write_item(st, Instant::now(), &req).expect("delete");
    }

    /// Partitions p0..p6, three items each (sk 1..=3), with a name and a score.
    fn populated() -> State {
        let mut st = with_table();
        for p in 0..7 {
            for sk in 1..=3 {
                put(
                    &mut st,
                    json!({
                        "pk": {"S": format!("p{p}")}, "sk": {"N": sk.to_string()},
                        "name": {"S": if sk == 2 { format!("beta-{p}") } else { format!("alpha-{p}-{sk}") }},
                        "score": {"N": (p * 10 + sk).to_string()},
                    }),
                );
            }
        }
        st
    }

    /// An item `{pk, sk: 1, data}` of exactly `bytes` bytes, by DynamoDB's rules of size.
    fn sized(pk: &str, bytes: usize) -> Json {
        let mut item = json!({"pk": {"S": pk}, "sk": {"N": "1"}, "data": {"S": ""}});
        let bare = crate::value::item_size(&crate::value::item_from_json(&item).expect("an item"));
        item["data"]["S"] = json!("x".repeat(bytes - bare));
        item
    }

    fn scan_json(st: &mut State, body: Json) -> Result<Json, ApiError> {
        let req = parse_scan(&body)?;
        scan(st, Instant::now(), &req)
    }

    fn key_of(item: &Json) -> (String, String) {
        (
            item["pk"]["S"].as_str().unwrap_or("").to_owned(),
            item["sk"]["N"].as_str().unwrap_or("").to_owned(),
        )
    }

    /// Every page of a scan from `body` (which may carry its own start key).
    fn pages(st: &mut State, body: Json) -> Vec<Json> {
        let mut out = Vec::new();
        let mut body = body;
        loop {
            let page = scan_json(st, body.clone()).expect("scan");
            let next = page.get("LastEvaluatedKey").cloned();
            out.push(page);
            match next {
                Some(key) => body["ExclusiveStartKey"] = key,
                None => return out,
            }
            assert!(out.len() < 1000, "the scan does not end");
        }
    }

    fn keys(pages: &[Json]) -> Vec<(String, String)> {
        pages
            .iter()
            .flat_map(|p| p["Items"].as_array().cloned().unwrap_or_default())
            .map(|i| key_of(&i))
            .collect()
    }

    #[test]
    fn every_item_once_across_pages_with_a_small_limit() {
        let mut st = populated();
        let pages = pages(&mut st, json!({"TableName": T, "Limit": 4}));
        let seen = keys(&pages);
        assert_eq!(seen.len(), 21, "{seen:?}");
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 21, "{seen:?}");
        // 21 items, 4 a page: five full pages and a last one of 1, with no key after it.
        assert_eq!(pages.len(), 6);
        for page in &pages[..5] {
            assert_eq!(page["ScannedCount"], 4);
            let items = page["Items"].as_array().expect("items");
            let last = items.last().expect("an item");
            // The key of the last item read, and nothing more.
            assert_eq!(
                page["LastEvaluatedKey"],
                json!({"pk": last["pk"], "sk": last["sk"]})
            );
        }
        assert!(pages[5].get("LastEvaluatedKey").is_none());
        // A partition's items together, in sort key order.
        let mut partitions: Vec<&str> = Vec::new();
        for (pk, _) in &seen {
            if partitions.last() != Some(&pk.as_str()) {
                assert!(!partitions.contains(&pk.as_str()), "{seen:?}");
                partitions.push(pk);
            }
        }
        for w in seen.windows(2) {
            if w[0].0 == w[1].0 {
                assert!(w[0].1 < w[1].1, "{seen:?}");
            }
        }
        // The same order in one page as across pages.
        let whole = scan_json(&mut st, json!({"TableName": T})).expect("scan");
        assert_eq!(keys(&[whole]), seen);
    }

    #[test]
    fn a_filter_and_a_projection() {
        let mut st = populated();
        let out = scan_json(
            &mut st,
            json!({
                "TableName": T,
                "FilterExpression": "begins_with(#n, :a) AND score > :min",
                "ProjectionExpression": "pk, #n",
                "ExpressionAttributeNames": {"#n": "name"},
                "ExpressionAttributeValues": {":a": {"S": "alpha"}, ":min": {"N": "40"}},
            }),
        )
        .expect("scan");
        let items = out["Items"].as_array().expect("items");
        // alpha: sk 1 and 3 of each partition; score > 40: p4..p6 (41..63).
        let mut names: Vec<&str> = items
            .iter()
            .filter_map(|i| i["name"]["S"].as_str())
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "alpha-4-1",
                "alpha-4-3",
                "alpha-5-1",
                "alpha-5-3",
                "alpha-6-1",
                "alpha-6-3"
            ]
        );
        for item in items {
            let attrs: BTreeSet<&str> = item
                .as_object()
                .expect("an item")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(attrs, BTreeSet::from(["pk", "name"]));
        }
        assert_eq!(out["Count"], 6);
        assert_eq!(out["ScannedCount"], 21);
    }

    #[test]
    fn count_and_scanned_count_with_a_filter_and_a_limit() {
        let mut st = populated();
        let body = json!({
            "TableName": T,
            "Select": "COUNT",
            "FilterExpression": "begins_with(#n, :b)",
            "ExpressionAttributeNames": {"#n": "name"},
            "ExpressionAttributeValues": {":b": {"S": "beta"}},
        });
        let out = scan_json(&mut st, body.clone()).expect("scan");
        assert!(out.get("Items").is_none(), "{out}");
        assert_eq!(out["Count"], 7);
        assert_eq!(out["ScannedCount"], 21);
        // `Limit` bounds the items read, before the filter.
        let mut limited = body;
        limited["Limit"] = json!(5);
        let pages = pages(&mut st, limited);
        assert!(pages.iter().all(|p| p["ScannedCount"].as_u64() <= Some(5)));
        let total = |field: &str| {
            pages
                .iter()
                .map(|p| p[field].as_u64().unwrap_or(0))
                .sum::<u64>()
        };
        assert_eq!(total("Count"), 7);
        assert_eq!(total("ScannedCount"), 21);
    }

    #[test]
    fn an_exclusive_start_key_resumes_right_after_it() {
        let mut st = populated();
        let whole = scan_json(&mut st, json!({"TableName": T})).expect("scan");
        let order = keys(std::slice::from_ref(&whole));
        let items = whole["Items"].as_array().expect("items").clone();
        for at in [0, 2, 3, 10, 18] {
            let start = json!({"pk": items[at]["pk"], "sk": items[at]["sk"]});
            let out = scan_json(
                &mut st,
                json!({"TableName": T, "Limit": 2, "ExclusiveStartKey": start}),
            )
            .expect("scan");
            assert_eq!(keys(&[out]), order[at + 1..at + 3], "after {at}");
        }
        // From the last item: nothing left.
        let last = &items[20];
        let out = scan_json(
            &mut st,
            json!({"TableName": T, "ExclusiveStartKey": {"pk": last["pk"], "sk": last["sk"]}}),
        )
        .expect("scan");
        assert_eq!(out["Items"], json!([]));
        assert!(out.get("LastEvaluatedKey").is_none());
        // A start key whose item (even whose partition) is gone still resumes after it.
        let gone = items[5].clone();
        let partition_of_gone: Vec<Json> = items
            .iter()
            .filter(|i| i["pk"] == gone["pk"])
            .cloned()
            .collect();
        for item in &partition_of_gone {
            delete(&mut st, json!({"pk": item["pk"], "sk": item["sk"]}));
        }
        let out = scan_json(
            &mut st,
            json!({"TableName": T, "Limit": 1, "ExclusiveStartKey": {"pk": gone["pk"], "sk": gone["sk"]}}),
        )
        .expect("scan");
        let next = order[6..]
            .iter()
            .find(|(pk, _)| Some(pk.as_str()) != gone["pk"]["S"].as_str())
            .cloned();
        assert_eq!(keys(&[out]).first().cloned(), next);
    }

    #[test]
    fn segments_partition_the_table() {
        let mut st = with_table();
        for p in 0..40 {
            for sk in 0..2 {
                put(
                    &mut st,
                    json!({"pk": {"S": format!("k{p}")}, "sk": {"N": sk.to_string()}}),
                );
            }
        }
        let all: BTreeSet<(String, String)> = keys(&pages(&mut st, json!({"TableName": T})))
            .into_iter()
            .collect();
        assert_eq!(all.len(), 80);
        for total in [1, 2, 3, 4, 7] {
            let mut union = BTreeSet::new();
            let mut non_empty = 0;
            for segment in 0..total {
                let seen = keys(&pages(
                    &mut st,
                    json!({"TableName": T, "Segment": segment, "TotalSegments": total, "Limit": 3}),
                ));
                non_empty += usize::from(!seen.is_empty());
                for key in seen {
                    assert!(union.insert(key.clone()), "{key:?} in two segments");
                }
            }
            assert_eq!(union, all, "{total} segments");
            // 40 partitions spread by the hash: no segment of a few is left empty.
            assert_eq!(non_empty, total, "{total} segments");
        }
        // A start key from another segment is refused.
        let first = scan_json(
            &mut st,
            json!({"TableName": T, "Segment": 0, "TotalSegments": 2, "Limit": 1}),
        )
        .expect("scan");
        let err = scan_json(
            &mut st,
            json!({"TableName": T, "Segment": 1, "TotalSegments": 2,
                   "ExclusiveStartKey": first["LastEvaluatedKey"]}),
        )
        .expect_err("another segment's key");
        assert_eq!(
            err.message,
            "The provided Exclusive start key does not map to the provided Segment and TotalSegments values."
        );
    }

    #[test]
    fn capacity_is_the_size_read_rounded_up_to_4_kb() {
        let mut st = with_table();
        let capacity = |st: &mut State, consistent: bool| {
            let out = scan_json(
                st,
                json!({"TableName": T, "ConsistentRead": consistent, "ReturnConsumedCapacity": "TOTAL"}),
            )
            .expect("scan");
            assert_eq!(out["ConsumedCapacity"]["TableName"], T);
            out["ConsumedCapacity"]["CapacityUnits"]
                .as_f64()
                .expect("units")
        };
        // An empty table: one unit, half of it eventually consistent.
        assert_eq!(capacity(&mut st, true), 1.0);
        assert_eq!(capacity(&mut st, false), 0.5);
        // Three items of 1,500 bytes in three partitions: 4,500 bytes, two units of 4 KB.
        for p in 0..3 {
            put(&mut st, sized(&format!("c{p}"), 1500));
        }
        assert_eq!(capacity(&mut st, true), 2.0);
        assert_eq!(capacity(&mut st, false), 1.0);
        // A filter that matches nothing costs the same: the items were read.
        let out = scan_json(
            &mut st,
            json!({"TableName": T, "ConsistentRead": true, "ReturnConsumedCapacity": "TOTAL",
                   "FilterExpression": "attribute_exists(nothing)"}),
        )
        .expect("scan");
        assert_eq!(out["Count"], 0);
        assert_eq!(out["ConsumedCapacity"]["CapacityUnits"], 2.0);
        assert_eq!(st.stats.read_units, 1.0 + 0.5 + 2.0 + 1.0 + 2.0);
    }

    #[test]
    fn a_page_stops_at_1_mb_read() {
        let mut st = with_table();
        let size = 300 * 1024;
        for p in 0..5 {
            put(&mut st, sized(&format!("big{p}"), size));
        }
        let body =
            json!({"TableName": T, "ConsistentRead": true, "ReturnConsumedCapacity": "TOTAL"});
        let pages = pages(&mut st, body);
        // 0, 300, 600 and 900 KB read are under 1 MB, so four items; then the fifth.
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[0]["ScannedCount"], 4);
        assert_eq!(pages[1]["ScannedCount"], 1);
        assert_eq!(pages[0]["ConsumedCapacity"]["CapacityUnits"], 300.0);
        assert_eq!(pages[1]["ConsumedCapacity"]["CapacityUnits"], 75.0);
    }

    #[test]
    fn a_local_secondary_index_is_scanned_in_its_own_order() {
        let mut st = with_table();
        // Ranks run against the table's sort key; sk 3 has no rank, so no index entry.
        for p in 0..4 {
            for sk in 0..4 {
                let mut item = json!({"pk": {"S": format!("i{p}")}, "sk": {"N": sk.to_string()},
                                      "other": {"S": "x"}});
                if sk != 3 {
                    item["rank"] = json!({"N": (10 - sk).to_string()});
                }
                put(&mut st, item);
            }
        }
        let pages = pages(
            &mut st,
            json!({"TableName": T, "IndexName": "by-rank", "Limit": 2,
                   "ReturnConsumedCapacity": "INDEXES"}),
        );
        let items: Vec<Json> = pages
            .iter()
            .flat_map(|p| p["Items"].as_array().cloned().unwrap_or_default())
            .collect();
        assert_eq!(items.len(), 12);
        for item in &items {
            // KEYS_ONLY: the table's key and the index's.
            let attrs: BTreeSet<&str> = item
                .as_object()
                .expect("an item")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(attrs, BTreeSet::from(["pk", "sk", "rank"]));
        }
        for w in items.windows(2) {
            if w[0]["pk"] == w[1]["pk"] {
                let rank = |i: &Json| i["rank"]["N"].as_str().and_then(|n| n.parse::<u32>().ok());
                assert!(rank(&w[0]) < rank(&w[1]), "{items:?}");
            }
        }
        // The last key names the table's key and the index's.
        let last = &pages[0]["LastEvaluatedKey"];
        let attrs: BTreeSet<&str> = last
            .as_object()
            .expect("a key")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(attrs, BTreeSet::from(["pk", "sk", "rank"]));
        assert!(
            pages[0]["ConsumedCapacity"]["LocalSecondaryIndexes"]["by-rank"]["CapacityUnits"]
                .as_f64()
                .is_some(),
            "{}",
            pages[0]
        );
        // An index the table does not have.
        let err = scan_json(&mut st, json!({"TableName": T, "IndexName": "nope"}))
            .expect_err("unknown index");
        assert_eq!(err.code, "ValidationException");
        assert_eq!(
            err.message,
            "The table does not have the specified index: nope"
        );
    }

    #[test]
    fn refusals_as_dynamodb_words_them() {
        let mut st = populated();
        let err = scan_json(&mut st, json!({"TableName": "missing"})).expect_err("no table");
        assert_eq!(err.code, "ResourceNotFoundException");
        let cases = [
            (
                json!({"Segment": 0}),
                "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
            ),
            (
                json!({"TotalSegments": 4}),
                "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
            ),
            (
                json!({"Segment": 4, "TotalSegments": 4}),
                "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 4 is not less than TotalSegments: 4",
            ),
            (
                json!({"Segment": 0, "TotalSegments": 0}),
                "1 validation error detected: Value '0' at 'totalSegments' failed to satisfy constraint: Member must have value greater than or equal to 1",
            ),
            (
                json!({"Segment": 0, "TotalSegments": 1_000_001}),
                "1 validation error detected: Value '1000001' at 'totalSegments' failed to satisfy constraint: Member must have value less than or equal to 1000000",
            ),
            (
                json!({"Segment": -1, "TotalSegments": 2}),
                "1 validation error detected: Value '-1' at 'segment' failed to satisfy constraint: Member must have value greater than or equal to 0",
            ),
            (
                json!({"Limit": 0}),
                "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
            ),
            (
                json!({"Select": "COUNT", "ProjectionExpression": "pk"}),
                "Cannot specify the ProjectionExpression when choosing to get only the COUNT",
            ),
            (
                json!({"Select": "SPECIFIC_ATTRIBUTES"}),
                "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
            ),
            (
                json!({"Select": "ALL_PROJECTED_ATTRIBUTES"}),
                "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
            ),
            (
                json!({"ExclusiveStartKey": {"pk": {"S": "p1"}}}),
                "The provided starting key is invalid: The provided key element does not match the schema",
            ),
            (
                json!({"ExclusiveStartKey": {"pk": {"S": "p1"}, "sk": {"S": "1"}}}),
                "The provided starting key is invalid: The provided key element does not match the schema",
            ),
        ];
        for (extra, message) in cases {
            let mut body = json!({"TableName": T});
            for (k, v) in extra.as_object().expect("fields") {
                body[k] = v.clone();
            }
            let err = scan_json(&mut st, body.clone()).expect_err("refused");
            assert_eq!(err.code, "ValidationException", "{body}");
            assert_eq!(err.message, message, "{body}");
        }
        // Legacy parameters, and placeholders the expressions do not use.
        assert!(parse_scan(&json!({"TableName": T, "ScanFilter": {}})).is_err());
        assert!(
            parse_scan(&json!({"TableName": T, "ExpressionAttributeValues": {":x": {"S": "a"}}}))
                .is_err()
        );
        // Valid: the last segment, and a single segment.
        for (segment, total) in [(2, 3), (0, 1)] {
            scan_json(
                &mut st,
                json!({"TableName": T, "Segment": segment, "TotalSegments": total}),
            )
            .expect("a valid segment");
        }
    }

    #[test]
    fn segment_hash_ranges_are_contiguous() {
        for total in [1u64, 2, 3, 7, 1_000_000] {
            for segment in [0, total / 2, total - 1] {
                let s = Segment { segment, total };
                let first = s.first_hash();
                assert!(s.holds(first), "{s:?}");
                if first > 0 {
                    assert!(!s.holds(first - 1), "{s:?}");
                }
            }
        }
        let last = Segment {
            segment: 6,
            total: 7,
        };
        assert!(last.holds(u64::MAX));
    }

    /// Through the HTTP server, as a client sends it: `X-Amz-Target:
    /// DynamoDB_20120810.Scan`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scan_is_dispatched_over_http() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let emulator = crate::Emulator::start(crate::Config::instant())
            .await
            .expect("start");
        let call = |op: &'static str, body: Json| {
            let addr = emulator.addr();
            async move {
                let body = body.to_string();
                let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let request = format!(
                    "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: DynamoDB_20120810.{op}\r\n\
                     Content-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(request.as_bytes()).await.expect("send");
                let mut response = String::new();
                stream.read_to_string(&mut response).await.expect("read");
                let (head, body) = response.split_once("\r\n\r\n").expect("a response");
                let json: Json = serde_json::from_str(body).expect("a JSON body");
                (head.lines().next().unwrap_or("").to_owned(), json)
            }
        };
        let (status, _) = call(
            "CreateTable",
            json!({"TableName": T, "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                   "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}),
        )
        .await;
        assert!(status.contains("200"), "{status}");
        for pk in ["a", "b", "c"] {
            call(
                "PutItem",
                json!({"TableName": T, "Item": {"pk": {"S": pk}}}),
            )
            .await;
        }
        let (status, out) = call("Scan", json!({"TableName": T, "Limit": 2})).await;
        assert!(status.contains("200"), "{status} {out}");
        assert_eq!(out["Count"], 2);
        assert!(out.get("LastEvaluatedKey").is_some(), "{out}");
        let (status, out) = call("Scan", json!({"TableName": "nope"})).await;
        assert!(status.contains("400"), "{status}");
        assert_eq!(
            out["__type"],
            "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"
        );
        assert_eq!(emulator.stats().requests.get("Scan"), Some(&2));
    }
}
