//! The non-transactional operations: tables (`CreateTable`, `DescribeTable`,
//! `DeleteTable`, `ListTables`, time to live), single items (`GetItem`, `PutItem`,
//! `UpdateItem`, `DeleteItem`), `Query` (with what it shares with `Scan`, in
//! [`crate::scan`]), `BatchGetItem` and `BatchWriteItem`.
//!
//! Each operation is parsed (expressions included) before it takes the state's lock, and
//! applied under it in one step.

use crate::capacity::{Consumed, Demand, Mode, Throttle};
use crate::error::ApiError;
use crate::expr::{self, CmpOp, Cond, Context, Operand, Path, Update};
use crate::state::{State, Stats};
use crate::table::{Edge, IndexKey, Lsi, PrimaryKey, SortKey, Table, read_units};
use crate::value::{Item, KeyValue, Value, item_from_json, item_size, item_to_json};
use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::time::Instant;

/// Data one `Query` or `Scan` page reads at most.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// Data one `BatchGetItem` answers at most.
const MAX_BATCH_GET_BYTES: usize = 16 * 1024 * 1024;
const MAX_BATCH_GET_KEYS: usize = 100;
const MAX_BATCH_WRITES: usize = 25;

pub const ARN_PREFIX: &str = "arn:aws:dynamodb:us-east-1:000000000000";

// ------------------------------------------------------------------------------ parsing

pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::validation(message)
}

pub fn table_name(body: &Json) -> Result<String, ApiError> {
    let Some(name) = body["TableName"].as_str() else {
        return Err(invalid(
            "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null",
        ));
    };
    let valid = (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(invalid(format!(
            "1 validation error detected: Value '{name}' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        )));
    }
    Ok(name.to_owned())
}

fn required<'a>(body: &'a Json, field: &str) -> Result<&'a Json, ApiError> {
    match body.get(field) {
        Some(v) if !v.is_null() => Ok(v),
        _ => Err(invalid(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(field)
        ))),
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

pub(crate) fn opt_str<'a>(body: &'a Json, field: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::serialization(format!("{field} must be a string"))),
    }
}

/// The legacy parameters (`Expected`, `AttributeUpdates`, ...) are not part of the subset.
pub(crate) fn refuse_legacy(body: &Json, fields: &[&str]) -> Result<(), ApiError> {
    for field in fields {
        if body.get(*field).is_some_and(|v| !v.is_null()) {
            return Err(invalid(format!(
                "the emulator does not support the legacy parameter {field}; use expressions"
            )));
        }
    }
    Ok(())
}

/// The expression context of a request (or of a transaction's action).
pub fn context(body: &Json) -> Result<Context, ApiError> {
    let mut names = BTreeMap::new();
    if let Some(map) = body
        .get("ExpressionAttributeNames")
        .filter(|v| !v.is_null())
    {
        let map = map
            .as_object()
            .ok_or_else(|| ApiError::serialization("ExpressionAttributeNames must be a map"))?;
        if map.is_empty() {
            return Err(invalid("ExpressionAttributeNames must not be empty"));
        }
        for (k, v) in map {
            let name = v
                .as_str()
                .ok_or_else(|| ApiError::serialization("an attribute name must be a string"))?;
            names.insert(k.clone(), name.to_owned());
        }
    }
    let mut values = BTreeMap::new();
    if let Some(map) = body
        .get("ExpressionAttributeValues")
        .filter(|v| !v.is_null())
    {
        let parsed = item_from_json(map)?;
        if parsed.is_empty() {
            return Err(invalid("ExpressionAttributeValues must not be empty"));
        }
        values = parsed;
    }
    Ok(Context::new(names, values))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnValues {
    None,
    AllOld,
    UpdatedOld,
    AllNew,
    UpdatedNew,
}

fn return_values(body: &Json, allowed: &[&str]) -> Result<ReturnValues, ApiError> {
    let value = opt_str(body, "ReturnValues")?.unwrap_or("NONE");
    if !allowed.contains(&value) && value != "NONE" {
        return Err(invalid(format!(
            "Return values set to invalid value: {value}"
        )));
    }
    Ok(match value {
        "NONE" => ReturnValues::None,
        "ALL_OLD" => ReturnValues::AllOld,
        "UPDATED_OLD" => ReturnValues::UpdatedOld,
        "ALL_NEW" => ReturnValues::AllNew,
        "UPDATED_NEW" => ReturnValues::UpdatedNew,
        other => {
            return Err(invalid(format!(
                "Return values set to invalid value: {other}"
            )));
        }
    })
}

/// Whether `ReturnValuesOnConditionCheckFailure` asks for the item.
pub fn old_on_failure(body: &Json) -> Result<bool, ApiError> {
    match opt_str(body, "ReturnValuesOnConditionCheckFailure")? {
        None | Some("NONE") => Ok(false),
        Some("ALL_OLD") => Ok(true),
        Some(other) => Err(invalid(format!(
            "1 validation error detected: Value '{other}' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]"
        ))),
    }
}

fn consistent(body: &Json) -> bool {
    body["ConsistentRead"].as_bool().unwrap_or(false)
}

fn projection(cx: &mut Context, body: &Json) -> Result<Option<Vec<Path>>, ApiError> {
    opt_str(body, "ProjectionExpression")?
        .map(|p| cx.projection(p))
        .transpose()
}

/// `ReturnConsumedCapacity`'s entry for a single-item operation.
fn single_capacity(out: &mut Map<String, Json>, consumed: &Consumed, mode: Mode) {
    if let Some(entry) = consumed.to_json(mode, false).into_iter().next() {
        out.insert("ConsumedCapacity".into(), entry);
    }
}

fn list_capacity(out: &mut Map<String, Json>, consumed: &Consumed, mode: Mode, split: bool) {
    if mode != Mode::None {
        out.insert(
            "ConsumedCapacity".into(),
            Json::Array(consumed.to_json(mode, split)),
        );
    }
}

// ------------------------------------------------------------------------------ tables

pub fn create_table(st: &mut State, body: &Json, now: f64) -> Result<Json, ApiError> {
    let table = Table::create(body, now)?;
    if st.tables.contains_key(&table.name) {
        return Err(ApiError::new(
            "ResourceInUseException",
            format!("Table already exists: {}", table.name),
        ));
    }
    let description = table.describe(ARN_PREFIX);
    st.tables.insert(table.name.clone(), table);
    Ok(json!({"TableDescription": description}))
}

pub fn describe_table(st: &State, body: &Json) -> Result<Json, ApiError> {
    let name = table_name(body)?;
    let table = st.tables.get(&name).ok_or_else(|| {
        ApiError::not_found(format!(
            "Requested resource not found: Table: {name} not found"
        ))
    })?;
    Ok(json!({"Table": table.describe(ARN_PREFIX)}))
}

pub fn delete_table(st: &mut State, body: &Json) -> Result<Json, ApiError> {
    let name = table_name(body)?;
    let table = st.tables.remove(&name).ok_or_else(|| {
        ApiError::not_found(format!(
            "Requested resource not found: Table: {name} not found"
        ))
    })?;
    let mut description = table.describe(ARN_PREFIX);
    description["TableStatus"] = json!("DELETING");
    Ok(json!({"TableDescription": description}))
}

pub fn list_tables(st: &State, body: &Json) -> Result<Json, ApiError> {
    let start = opt_str(body, "ExclusiveStartTableName")?;
    let limit = body["Limit"].as_u64().unwrap_or(100).clamp(1, 100) as usize;
    let names: Vec<&String> = st
        .tables
        .keys()
        .filter(|n| start.is_none_or(|s| n.as_str() > s))
        .take(limit + 1)
        .collect();
    let mut out = json!({"TableNames": names.iter().take(limit).collect::<Vec<_>>()});
    if names.len() > limit {
        out["LastEvaluatedTableName"] = json!(names[limit - 1]);
    }
    Ok(out)
}

pub fn update_time_to_live(st: &mut State, body: &Json) -> Result<Json, ApiError> {
    let name = table_name(body)?;
    let spec = required(body, "TimeToLiveSpecification")?;
    let enabled = spec["Enabled"].as_bool().unwrap_or(false);
    let attribute = spec["AttributeName"]
        .as_str()
        .ok_or_else(|| invalid("TimeToLiveSpecification needs an AttributeName"))?
        .to_owned();
    let table = st
        .tables
        .get_mut(&name)
        .ok_or_else(ApiError::table_not_found)?;
    match (&table.ttl_attribute, enabled) {
        (Some(_), true) => return Err(invalid("TimeToLive is already enabled")),
        (None, false) => return Err(invalid("TimeToLive is already disabled")),
        _ => {}
    }
    table.ttl_attribute = enabled.then(|| attribute.clone());
    Ok(json!({"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute}}))
}

pub fn describe_time_to_live(st: &State, body: &Json) -> Result<Json, ApiError> {
    let table = st.table(&table_name(body)?)?;
    Ok(match &table.ttl_attribute {
        Some(attribute) => {
            json!({"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": attribute}})
        }
        None => json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}),
    })
}

// ------------------------------------------------------------------------------ GetItem

#[derive(Debug)]
pub struct GetReq {
    table: String,
    key: Item,
    consistent: bool,
    projection: Option<Vec<Path>>,
    mode: Mode,
}

pub fn parse_get(body: &Json) -> Result<GetReq, ApiError> {
    refuse_legacy(body, &["AttributesToGet"])?;
    let mut cx = context(body)?;
    let projection = projection(&mut cx, body)?;
    cx.finish()?;
    Ok(GetReq {
        table: table_name(body)?,
        key: item_from_json(required(body, "Key")?)?,
        consistent: consistent(body),
        projection,
        mode: Mode::parse(body)?,
    })
}

pub fn get_item(st: &mut State, now: Instant, req: &GetReq) -> Result<Json, ApiError> {
    let State {
        tables,
        throttle,
        stats,
        ..
    } = st;
    let table = tables
        .get(&req.table)
        .ok_or_else(ApiError::table_not_found)?;
    let key = table.primary_key(&req.key, true)?;
    let item = table.get(&key);
    let units = item.map_or(1.0, |i| read_units(item_size(i))) * factor(req.consistent);
    let demand = Demand {
        table: req.table.clone(),
        pk: key.pk.clone(),
        read: units,
        write: 0.0,
    };
    if throttle.take(now, &[demand]).is_err() {
        stats.throttled += 1;
        return Err(ApiError::throughput_exceeded());
    }
    let mut consumed = Consumed::default();
    consumed.table_read(&req.table, units);
    let mut out = Map::new();
    if let Some(item) = item {
        let shown = match &req.projection {
            Some(paths) => expr::project(item, paths),
            None => item.clone(),
        };
        out.insert("Item".into(), item_to_json(&shown));
    }
    single_capacity(&mut out, &consumed, req.mode);
    st.tally(&consumed);
    Ok(Json::Object(out))
}

fn factor(consistent: bool) -> f64 {
    if consistent { 1.0 } else { 0.5 }
}

// ------------------------------------------------------------------------------ single writes

#[derive(Debug)]
pub enum WriteKind {
    Put(Item),
    Update(Update),
    Delete,
}

#[derive(Debug)]
pub struct WriteReq {
    op: &'static str,
    table: String,
    /// The item of a put, the key otherwise.
    key_or_item: Item,
    kind: WriteKind,
    condition: Option<Cond>,
    return_values: ReturnValues,
    old_on_failure: bool,
    mode: Mode,
}

pub fn parse_put(body: &Json) -> Result<WriteReq, ApiError> {
    refuse_legacy(body, &["Expected", "ConditionalOperator"])?;
    let item = item_from_json(required(body, "Item")?)?;
    let mut cx = context(body)?;
    let condition = opt_str(body, "ConditionExpression")?
        .map(|c| cx.condition(c))
        .transpose()?;
    cx.finish()?;
    Ok(WriteReq {
        op: "PutItem",
        table: table_name(body)?,
        key_or_item: item.clone(),
        kind: WriteKind::Put(item),
        condition,
        return_values: return_values(body, &["ALL_OLD"])?,
        old_on_failure: old_on_failure(body)?,
        mode: Mode::parse(body)?,
    })
}

pub fn parse_update(body: &Json) -> Result<WriteReq, ApiError> {
    refuse_legacy(
        body,
        &["Expected", "AttributeUpdates", "ConditionalOperator"],
    )?;
    let mut cx = context(body)?;
    let update = match opt_str(body, "UpdateExpression")? {
        Some(u) => cx.update(u)?,
        None => Update::default(),
    };
    let condition = opt_str(body, "ConditionExpression")?
        .map(|c| cx.condition(c))
        .transpose()?;
    cx.finish()?;
    Ok(WriteReq {
        op: "UpdateItem",
        table: table_name(body)?,
        key_or_item: item_from_json(required(body, "Key")?)?,
        kind: WriteKind::Update(update),
        condition,
        return_values: return_values(body, &["ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"])?,
        old_on_failure: old_on_failure(body)?,
        mode: Mode::parse(body)?,
    })
}

pub fn parse_delete(body: &Json) -> Result<WriteReq, ApiError> {
    refuse_legacy(body, &["Expected", "ConditionalOperator"])?;
    let mut cx = context(body)?;
    let condition = opt_str(body, "ConditionExpression")?
        .map(|c| cx.condition(c))
        .transpose()?;
    cx.finish()?;
    Ok(WriteReq {
        op: "DeleteItem",
        table: table_name(body)?,
        key_or_item: item_from_json(required(body, "Key")?)?,
        kind: WriteKind::Delete,
        condition,
        return_values: return_values(body, &["ALL_OLD"])?,
        old_on_failure: old_on_failure(body)?,
        mode: Mode::parse(body)?,
    })
}

/// Refuses an update that writes a key attribute.
pub fn check_update_paths(table: &Table, update: &Update) -> Result<(), ApiError> {
    for path in update.paths() {
        if table.is_key_attribute(path.top()) {
            return Err(invalid(format!(
                "One or more parameter values were invalid: Cannot update attribute {}. This attribute is part of the key",
                path.top()
            )));
        }
    }
    Ok(())
}

/// The key a write names, validated against the table.
pub fn write_key(
    table: &Table,
    kind: &WriteKind,
    key_or_item: &Item,
) -> Result<PrimaryKey, ApiError> {
    match kind {
        WriteKind::Put(item) => {
            let key = table.primary_key(item, false)?;
            table.check_item(item, "Item size has exceeded the maximum allowed size")?;
            Ok(key)
        }
        WriteKind::Update(update) => {
            check_update_paths(table, update)?;
            table.primary_key(key_or_item, true)
        }
        WriteKind::Delete => table.primary_key(key_or_item, true),
    }
}

/// The item after a write on `old`: `None` for a delete.
pub fn new_image(
    table: &Table,
    key: &PrimaryKey,
    kind: &WriteKind,
    old: Option<&Item>,
) -> Result<Option<Item>, ApiError> {
    match kind {
        WriteKind::Put(item) => Ok(Some(item.clone())),
        WriteKind::Delete => Ok(None),
        WriteKind::Update(update) => {
            let base = old.cloned().unwrap_or_else(|| table.key_item(key));
            let new = expr::apply_update(&base, update)?;
            table.check_item(
                &new,
                "Item size to update has exceeded the maximum allowed size",
            )?;
            Ok(Some(new))
        }
    }
}

fn updated_attributes(item: &Item, update: &Update) -> Item {
    let names: BTreeSet<&str> = update.paths().iter().map(|p| p.top()).collect();
    item.iter()
        .filter(|(k, _)| names.contains(k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn write_item(st: &mut State, now: Instant, req: &WriteReq) -> Result<Json, ApiError> {
    let table = st.table(&req.table)?;
    let key = write_key(table, &req.kind, &req.key_or_item)?;
    if st.held(&req.table, &key).is_some() {
        st.stats.write_conflicts += 1;
        return Err(ApiError::transaction_conflict());
    }
    let old = table.get(&key).cloned();
    let empty = Item::new();
    let passes = req
        .condition
        .as_ref()
        .is_none_or(|c| expr::eval(c, old.as_ref().unwrap_or(&empty)));
    let mut consumed = Consumed::default();
    let new = if passes {
        let new = new_image(table, &key, &req.kind, old.as_ref())?;
        let (units, indexes) = table.write_units(old.as_ref(), new.as_ref());
        consumed.table_write(&req.table, units);
        for (index, u) in indexes {
            consumed.index_write(&req.table, &index, u);
        }
        new
    } else {
        // A failed condition still costs the item's size (one unit when absent).
        let (units, _) = table.write_units(old.as_ref(), None);
        consumed.table_write(&req.table, units);
        None
    };
    let demand = Demand {
        table: req.table.clone(),
        pk: key.pk.clone(),
        read: 0.0,
        write: consumed.totals().write,
    };
    if st.throttle.take(now, &[demand]).is_err() {
        st.stats.throttled += 1;
        return Err(ApiError::throughput_exceeded());
    }
    st.tally(&consumed);
    if !passes {
        st.stats.condition_failures += 1;
        let item = old
            .as_ref()
            .filter(|_| req.old_on_failure)
            .map(item_to_json);
        return Err(ApiError::conditional_check_failed(item));
    }
    if let Some(table) = st.tables.get_mut(&req.table) {
        table.write(&key, new.clone());
    }
    let mut out = Map::new();
    let attributes = match (req.return_values, &req.kind) {
        (ReturnValues::None, _) => None,
        (ReturnValues::AllOld, _) => old.clone(),
        (ReturnValues::AllNew, _) => new.clone(),
        (ReturnValues::UpdatedOld, WriteKind::Update(u)) => {
            old.as_ref().map(|o| updated_attributes(o, u))
        }
        (ReturnValues::UpdatedNew, WriteKind::Update(u)) => {
            new.as_ref().map(|n| updated_attributes(n, u))
        }
        _ => None,
    };
    if let Some(attributes) = attributes.filter(|a| !a.is_empty()) {
        out.insert("Attributes".into(), item_to_json(&attributes));
    }
    single_capacity(&mut out, &consumed, req.mode);
    let _ = req.op;
    Ok(Json::Object(out))
}

// ------------------------------------------------------------------------------ Query

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Select {
    All,
    Projected,
    Specific,
    Count,
}

/// What `Query` and `Scan` share: where they read, and how a page of what they read
/// becomes the answer (filter, projection, `Select`, `Limit`, start key, capacity).
#[derive(Debug)]
pub struct ReadReq {
    pub table: String,
    pub index: Option<String>,
    filter: Option<Cond>,
    projection: Option<Vec<Path>>,
    pub(crate) limit: Option<usize>,
    pub(crate) start: Option<Item>,
    consistent: bool,
    select: Select,
    mode: Mode,
}

/// The shared parameters of `Query` and `Scan`; `cx` has already parsed the operation's
/// own expressions (a key condition), so that every placeholder is accounted for here.
pub fn parse_read(body: &Json, mut cx: Context) -> Result<ReadReq, ApiError> {
    let filter = opt_str(body, "FilterExpression")?
        .map(|f| cx.filter(f))
        .transpose()?;
    let projection = projection(&mut cx, body)?;
    cx.finish()?;
    let index = opt_str(body, "IndexName")?.map(str::to_owned);
    let select = match opt_str(body, "Select")? {
        None if projection.is_some() => Select::Specific,
        None | Some("ALL_ATTRIBUTES") => Select::All,
        Some("ALL_PROJECTED_ATTRIBUTES") => Select::Projected,
        Some("SPECIFIC_ATTRIBUTES") => Select::Specific,
        Some("COUNT") => Select::Count,
        Some(other) => {
            return Err(invalid(format!(
                "1 validation error detected: Value '{other}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
            )));
        }
    };
    // DynamoDB's rules for `Select` with and without a projection.
    match (select, projection.is_some()) {
        (Select::Count, true) => {
            return Err(invalid(
                "Cannot specify the ProjectionExpression when choosing to get only the COUNT",
            ));
        }
        (Select::All, true) => {
            return Err(invalid(
                "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES",
            ));
        }
        (Select::Projected, true) => {
            return Err(invalid(
                "Cannot specify the ProjectionExpression when choosing to get ALL_PROJECTED_ATTRIBUTES",
            ));
        }
        (Select::Specific, false) => {
            return Err(invalid(
                "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
            ));
        }
        _ => {}
    }
    if select == Select::Projected && index.is_none() {
        return Err(invalid(
            "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        ));
    }
    let limit = match body.get("Limit").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => {
                return Err(invalid(format!(
                    "1 validation error detected: Value '{v}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
                )));
            }
        },
    };
    let start = match body.get("ExclusiveStartKey").filter(|v| !v.is_null()) {
        Some(k) => Some(item_from_json(k)?),
        None => None,
    };
    Ok(ReadReq {
        table: table_name(body)?,
        index,
        filter,
        projection,
        limit,
        start,
        consistent: consistent(body),
        select,
        mode: Mode::parse(body)?,
    })
}

#[derive(Debug)]
pub struct QueryReq {
    read: ReadReq,
    key_condition: Cond,
    forward: bool,
}

pub fn parse_query(body: &Json) -> Result<QueryReq, ApiError> {
    refuse_legacy(
        body,
        &[
            "KeyConditions",
            "QueryFilter",
            "AttributesToGet",
            "ConditionalOperator",
        ],
    )?;
    let mut cx = context(body)?;
    let Some(key_condition) = opt_str(body, "KeyConditionExpression")? else {
        return Err(invalid(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
        ));
    };
    let key_condition = cx.key_condition(key_condition)?;
    Ok(QueryReq {
        read: parse_read(body, cx)?,
        key_condition,
        forward: body["ScanIndexForward"].as_bool().unwrap_or(true),
    })
}

/// A condition on a sort key.
#[derive(Debug, Clone)]
enum SkCond {
    Cmp(CmpOp, KeyValue),
    Between(KeyValue, KeyValue),
    BeginsWith(KeyValue),
}

/// The partition key value and the sort key condition of a key condition.
fn key_condition(
    cond: &Cond,
    table: &Table,
    range: Option<&str>,
) -> Result<(KeyValue, Option<SkCond>), ApiError> {
    let mut predicates = Vec::new();
    flatten_and(cond, &mut predicates)?;
    let unsupported = || invalid("Query key condition not supported");
    let key_of = |value: &Value, attr: &str| -> Result<KeyValue, ApiError> {
        let expected = table.types.get(attr).map(String::as_str).unwrap_or("S");
        match KeyValue::from_value(value) {
            Some(k) if k.type_name() == expected => Ok(k),
            _ => Err(invalid(
                "One or more parameter values were invalid: Condition parameter type does not match schema type",
            )),
        }
    };
    let mut pk = None;
    let mut sk = None;
    for predicate in predicates {
        let (attr, condition) = match predicate {
            Cond::Cmp(Operand::Path(p), op, Operand::Value(v)) => (p, (Some(*op), v, None)),
            Cond::Cmp(Operand::Value(v), op, Operand::Path(p)) => {
                let flipped = match op {
                    CmpOp::Lt => CmpOp::Gt,
                    CmpOp::Le => CmpOp::Ge,
                    CmpOp::Gt => CmpOp::Lt,
                    CmpOp::Ge => CmpOp::Le,
                    other => *other,
                };
                (p, (Some(flipped), v, None))
            }
            Cond::Between(Operand::Path(p), Operand::Value(low), Operand::Value(high)) => {
                (p, (None, low, Some(high)))
            }
            Cond::BeginsWith(Operand::Path(p), Operand::Value(prefix)) => (p, (None, prefix, None)),
            _ => return Err(unsupported()),
        };
        let attr = attr.single().ok_or_else(unsupported)?;
        if attr == table.hash {
            if pk.is_some() {
                return Err(invalid(
                    "KeyConditionExpressions must only contain one condition per key",
                ));
            }
            match condition {
                (Some(CmpOp::Eq), v, None) => pk = Some(key_of(v, attr)?),
                _ => return Err(unsupported()),
            }
        } else if Some(attr) == range {
            if sk.is_some() {
                return Err(invalid(
                    "KeyConditionExpressions must only contain one condition per key",
                ));
            }
            sk = Some(match (predicate, condition) {
                (Cond::BeginsWith(..), (_, v, _)) => {
                    let prefix = key_of(v, attr)?;
                    if matches!(prefix, KeyValue::N(_)) {
                        return Err(invalid(
                            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
                        ));
                    }
                    SkCond::BeginsWith(prefix)
                }
                (_, (None, low, Some(high))) => {
                    SkCond::Between(key_of(low, attr)?, key_of(high, attr)?)
                }
                (_, (Some(CmpOp::Ne), _, _)) => {
                    return Err(invalid(
                        "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: <>",
                    ));
                }
                (_, (Some(op), v, None)) => SkCond::Cmp(op, key_of(v, attr)?),
                _ => return Err(unsupported()),
            });
        } else {
            return Err(invalid(format!(
                "Query condition missed key schema element: {}",
                range.unwrap_or(&table.hash)
            )));
        }
    }
    let pk = pk.ok_or_else(|| {
        invalid(format!(
            "Query condition missed key schema element: {}",
            table.hash
        ))
    })?;
    Ok((pk, sk))
}

fn flatten_and<'a>(cond: &'a Cond, out: &mut Vec<&'a Cond>) -> Result<(), ApiError> {
    match cond {
        Cond::And(a, b) => {
            flatten_and(a, out)?;
            flatten_and(b, out)
        }
        Cond::Or(..) => Err(invalid(
            "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: OR",
        )),
        Cond::Not(..) => Err(invalid(
            "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: NOT",
        )),
        other => {
            out.push(other);
            if out.len() > 2 {
                return Err(invalid(
                    "KeyConditionExpressions must only contain one condition per key",
                ));
            }
            Ok(())
        }
    }
}

fn tighter_lower<T: Ord + Clone>(a: Bound<T>, b: Bound<T>) -> Bound<T> {
    use Bound::*;
    match (&a, &b) {
        (Unbounded, _) => b,
        (_, Unbounded) => a,
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) => match x.cmp(y) {
            std::cmp::Ordering::Less => b,
            std::cmp::Ordering::Greater => a,
            std::cmp::Ordering::Equal => {
                if matches!(a, Excluded(_)) {
                    a
                } else {
                    b
                }
            }
        },
    }
}

fn tighter_upper<T: Ord + Clone>(a: Bound<T>, b: Bound<T>) -> Bound<T> {
    use Bound::*;
    match (&a, &b) {
        (Unbounded, _) => b,
        (_, Unbounded) => a,
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) => match x.cmp(y) {
            std::cmp::Ordering::Less => a,
            std::cmp::Ordering::Greater => b,
            std::cmp::Ordering::Equal => {
                if matches!(a, Excluded(_)) {
                    a
                } else {
                    b
                }
            }
        },
    }
}

/// Whether a range can hold anything (and `BTreeMap::range` would not panic on it).
fn non_empty<T: Ord>(low: &Bound<T>, high: &Bound<T>) -> bool {
    use Bound::*;
    match (low, high) {
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) => {
            x < y || (x == y && matches!((low, high), (Included(_), Included(_))))
        }
        _ => true,
    }
}

fn table_bounds(sk: Option<&SkCond>) -> (Bound<SortKey>, Bound<SortKey>) {
    use Bound::*;
    let some = |v: &KeyValue| Some(v.clone());
    match sk {
        None => (Unbounded, Unbounded),
        Some(SkCond::Cmp(op, v)) => match op {
            CmpOp::Eq => (Included(some(v)), Included(some(v))),
            CmpOp::Lt => (Unbounded, Excluded(some(v))),
            CmpOp::Le => (Unbounded, Included(some(v))),
            CmpOp::Gt => (Excluded(some(v)), Unbounded),
            CmpOp::Ge => (Included(some(v)), Unbounded),
            CmpOp::Ne => (Unbounded, Unbounded),
        },
        Some(SkCond::Between(a, b)) => (Included(some(a)), Included(some(b))),
        Some(SkCond::BeginsWith(p)) => (Included(some(p)), Unbounded),
    }
}

fn index_bounds(sk: Option<&SkCond>) -> (Bound<IndexKey>, Bound<IndexKey>) {
    use Bound::*;
    let at = |v: &KeyValue, e: Edge| (v.clone(), e);
    match sk {
        None => (Unbounded, Unbounded),
        Some(SkCond::Cmp(op, v)) => match op {
            CmpOp::Eq => (Included(at(v, Edge::Min)), Included(at(v, Edge::Max))),
            CmpOp::Lt => (Unbounded, Excluded(at(v, Edge::Min))),
            CmpOp::Le => (Unbounded, Included(at(v, Edge::Max))),
            CmpOp::Gt => (Excluded(at(v, Edge::Max)), Unbounded),
            CmpOp::Ge => (Included(at(v, Edge::Min)), Unbounded),
            CmpOp::Ne => (Unbounded, Unbounded),
        },
        Some(SkCond::Between(a, b)) => (Included(at(a, Edge::Min)), Included(at(b, Edge::Max))),
        Some(SkCond::BeginsWith(p)) => (Included(at(p, Edge::Min)), Unbounded),
    }
}

/// The sort keys of the items a query reads, in its order, from its start key on.
fn candidates<'a, T: Ord + Clone + 'a>(
    set: impl Fn(Bound<T>, Bound<T>) -> Box<dyn DoubleEndedIterator<Item = &'a T> + 'a>,
    (low, high): (Bound<T>, Bound<T>),
    start: Option<T>,
    forward: bool,
    prefix: Option<&'a (dyn Fn(&T) -> bool + 'a)>,
) -> Box<dyn Iterator<Item = &'a T> + 'a> {
    let (mut low, mut high) = (low, high);
    if let Some(start) = start {
        if forward {
            low = tighter_lower(low, Bound::Excluded(start));
        } else {
            high = tighter_upper(high, Bound::Excluded(start));
        }
    }
    if !non_empty(&low, &high) {
        return Box::new(std::iter::empty());
    }
    let range = set(low, high);
    match (prefix, forward) {
        (None, true) => range,
        (None, false) => Box::new(range.rev()),
        (Some(p), true) => Box::new(range.take_while(move |k| p(k))),
        (Some(p), false) => {
            let matching: Vec<&T> = range.take_while(|k| p(k)).collect();
            Box::new(matching.into_iter().rev())
        }
    }
}

/// The index a `Query` or `Scan` names, if any (the emulator has local secondary indexes
/// only, so any other name is unknown).
pub fn read_index<'a>(
    table: &'a Table,
    name: Option<&str>,
) -> Result<Option<(usize, &'a Lsi)>, ApiError> {
    match name {
        Some(name) => Ok(Some(table.lsi(name).ok_or_else(|| {
            invalid(format!(
                "The table does not have the specified index: {name}"
            ))
        })?)),
        None => Ok(None),
    }
}

/// Where an `ExclusiveStartKey` points: the table's key, plus the index's sort key on an
/// index (an index entry is ordered by both).
pub struct StartKey {
    pub key: PrimaryKey,
    pub index_value: Option<KeyValue>,
}

pub fn start_key(
    table: &Table,
    index: Option<(usize, &Lsi)>,
    start: &Item,
) -> Result<StartKey, ApiError> {
    let bad = || {
        invalid(
            "The provided starting key is invalid: The provided key element does not match the schema",
        )
    };
    let mut table_key = start.clone();
    let index_value = match index {
        Some((_, lsi)) => Some(
            table_key
                .remove(&lsi.range)
                .and_then(|v| KeyValue::from_value(&v))
                .ok_or_else(bad)?,
        ),
        None => None,
    };
    let key = table.primary_key(&table_key, true).map_err(|_| bad())?;
    Ok(StartKey { key, index_value })
}

/// The items one page of a `Query` or `Scan` reads, in order, up to its `Limit` or 1 MB.
pub struct Page<'a> {
    limit: Option<usize>,
    items: Vec<&'a Item>,
    bytes: usize,
    /// The bytes read in each partition, in order: each partition's throughput pays for
    /// its share.
    partitions: Vec<(KeyValue, usize)>,
    /// Whether the page stopped with items left to read (so it has a `LastEvaluatedKey`).
    stopped: bool,
}

impl<'a> Page<'a> {
    /// `partition`: the one partition a `Query` reads, charged even when it reads nothing.
    pub fn new(limit: Option<usize>, partition: Option<&KeyValue>) -> Page<'a> {
        Page {
            limit,
            items: Vec::new(),
            bytes: 0,
            partitions: partition.map(|pk| (pk.clone(), 0)).into_iter().collect(),
            stopped: false,
        }
    }

    /// Reads `item` (`size` bytes, in partition `pk`); false when the page is already full,
    /// and the item is left for the next page.
    pub fn read(&mut self, pk: &KeyValue, item: &'a Item, size: usize) -> bool {
        if self.limit.is_some_and(|l| self.items.len() >= l) || self.bytes >= MAX_PAGE_BYTES {
            self.stopped = true;
            return false;
        }
        self.bytes += size;
        self.items.push(item);
        match self.partitions.last_mut() {
            Some((last, bytes)) if last == pk => *bytes += size,
            _ => self.partitions.push((pk.clone(), size)),
        }
        true
    }
}

/// A page read by a `Query` or `Scan`, answered: its capacity charged (to each partition's
/// throughput too), its `LastEvaluatedKey`, the filter applied after the read (the
/// filtered-out items are paid for, as in DynamoDB), the projection, `Select`. Returns the
/// answer and what it consumed, for the caller to tally once the state is free again.
pub fn answer_page(
    throttle: &mut Throttle,
    stats: &mut Stats,
    now: Instant,
    table: &Table,
    index: Option<(usize, &Lsi)>,
    req: &ReadReq,
    page: Page<'_>,
) -> Result<(Json, Consumed), ApiError> {
    // What was read is paid, filtered or not: the sizes summed, then rounded up to 4 KB
    // (one unit when nothing was read).
    let units = read_units(page.bytes) * factor(req.consistent);
    let shares = page.partitions.len().max(1) as f64;
    let demands: Vec<Demand> = page
        .partitions
        .iter()
        .map(|(pk, bytes)| Demand {
            table: req.table.clone(),
            pk: pk.clone(),
            read: if page.bytes == 0 {
                units / shares
            } else {
                units * (*bytes as f64) / (page.bytes as f64)
            },
            write: 0.0,
        })
        .collect();
    if throttle.take(now, &demands).is_err() {
        stats.throttled += 1;
        return Err(ApiError::throughput_exceeded());
    }
    let mut consumed = Consumed::default();
    match index {
        Some((_, lsi)) => consumed.index_read(&req.table, &lsi.name, units),
        None => consumed.table_read(&req.table, units),
    }
    let last_key = if page.stopped {
        page.items.last().map(|item| {
            let mut key = Item::new();
            for attr in std::iter::once(&table.hash)
                .chain(table.range.iter())
                .chain(index.map(|(_, l)| &l.range))
            {
                if let Some(v) = item.get(attr) {
                    key.insert(attr.clone(), v.clone());
                }
            }
            key
        })
    } else {
        None
    };
    let scanned_count = page.items.len();
    let matched: Vec<&Item> = match &req.filter {
        Some(filter) => page
            .items
            .into_iter()
            .filter(|item| expr::eval(filter, item))
            .collect(),
        None => page.items,
    };
    let mut out = Map::new();
    out.insert("Count".into(), json!(matched.len()));
    out.insert("ScannedCount".into(), json!(scanned_count));
    if req.select != Select::Count {
        let items: Vec<Json> = matched
            .iter()
            .map(|item| {
                let shown = match (&req.projection, index) {
                    (Some(paths), _) => expr::project(item, paths),
                    (None, Some((_, lsi))) if lsi.projection != crate::table::Projection::All => {
                        item.iter()
                            .filter(|(k, _)| {
                                table.is_key_attribute(k)
                                    || **k == lsi.range
                                    || lsi.non_key.contains(k)
                            })
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    }
                    _ => (*item).clone(),
                };
                item_to_json(&shown)
            })
            .collect();
        out.insert("Items".into(), Json::Array(items));
    }
    if let Some(key) = last_key {
        out.insert("LastEvaluatedKey".into(), item_to_json(&key));
    }
    single_capacity(&mut out, &consumed, req.mode);
    Ok((Json::Object(out), consumed))
}

pub fn query(st: &mut State, now: Instant, q: &QueryReq) -> Result<Json, ApiError> {
    let req = &q.read;
    let State {
        tables,
        throttle,
        stats,
        ..
    } = st;
    let table = tables
        .get(&req.table)
        .ok_or_else(ApiError::table_not_found)?;
    let index = read_index(table, req.index.as_deref())?;
    let range_attr = match index {
        Some((_, lsi)) => Some(lsi.range.as_str()),
        None => table.range.as_deref(),
    };
    let (pk, sk) = key_condition(&q.key_condition, table, range_attr)?;
    let start = match &req.start {
        None => None,
        Some(start_item) => {
            let start = start_key(table, index, start_item)?;
            if start.key.pk != pk {
                return Err(invalid(
                    "The provided starting key is invalid: The provided starting key does not match the partition key of the query",
                ));
            }
            Some((start.key.sk, start.index_value))
        }
    };
    let partition = table.partitions.get(&pk);
    let mut page = Page::new(req.limit, Some(&pk));
    if let Some(partition) = partition {
        match index {
            None => {
                let prefix_value = match &sk {
                    Some(SkCond::BeginsWith(p)) => Some(p.clone()),
                    _ => None,
                };
                let prefix_fn = prefix_value
                    .as_ref()
                    .map(|p| move |k: &SortKey| k.as_ref().is_some_and(|k| k.starts_with(p)));
                let prefix_ref: Option<&dyn Fn(&SortKey) -> bool> =
                    prefix_fn.as_ref().map(|f| f as &dyn Fn(&SortKey) -> bool);
                let keys = candidates(
                    |l, h| Box::new(partition.items.range((l, h)).map(|(k, _)| k)),
                    table_bounds(sk.as_ref()),
                    start.as_ref().map(|(s, _)| s.clone()),
                    q.forward,
                    prefix_ref,
                );
                for k in keys {
                    let item = &partition.items[k];
                    if !page.read(&pk, item, item_size(item)) {
                        break;
                    }
                }
            }
            Some((i, lsi)) => {
                let prefix_value = match &sk {
                    Some(SkCond::BeginsWith(p)) => Some(p.clone()),
                    _ => None,
                };
                let prefix_fn = prefix_value
                    .as_ref()
                    .map(|p| move |k: &IndexKey| k.0.starts_with(p));
                let prefix_ref: Option<&dyn Fn(&IndexKey) -> bool> =
                    prefix_fn.as_ref().map(|f| f as &dyn Fn(&IndexKey) -> bool);
                let start_key = match &start {
                    Some((table_sk, Some(v))) => Some((v.clone(), Edge::At(table_sk.clone()))),
                    _ => None,
                };
                let keys = candidates(
                    |l, h| Box::new(partition.indexes[i].range((l, h))),
                    index_bounds(sk.as_ref()),
                    start_key,
                    q.forward,
                    prefix_ref,
                );
                for (_, edge) in keys {
                    let Edge::At(table_sk) = edge else { continue };
                    let Some(item) = partition.items.get(table_sk) else {
                        continue;
                    };
                    let size = table.index_entry_size(lsi, item).unwrap_or(0);
                    if !page.read(&pk, item, size) {
                        break;
                    }
                }
            }
        }
    }
    let (out, consumed) = answer_page(throttle, stats, now, table, index, req, page)?;
    st.tally(&consumed);
    Ok(out)
}

// ------------------------------------------------------------------------------ batches

#[derive(Debug)]
pub struct BatchGetTable {
    table: String,
    keys: Vec<Item>,
    consistent: bool,
    projection: Option<Vec<Path>>,
    /// The request's entry for this table, to send back the keys left unprocessed.
    request: Json,
}

#[derive(Debug)]
pub struct BatchGetReq {
    tables: Vec<BatchGetTable>,
    mode: Mode,
}

pub fn parse_batch_get(body: &Json) -> Result<BatchGetReq, ApiError> {
    let request_items = required(body, "RequestItems")?
        .as_object()
        .ok_or_else(|| ApiError::serialization("RequestItems must be a map"))?;
    let mut tables = Vec::new();
    let mut total = 0;
    for (name, entry) in request_items {
        refuse_legacy(entry, &["AttributesToGet"])?;
        table_name(&json!({"TableName": name}))?;
        let keys: Vec<Item> = required(entry, "Keys")?
            .as_array()
            .ok_or_else(|| ApiError::serialization("Keys must be a list"))?
            .iter()
            .map(item_from_json)
            .collect::<Result<_, _>>()?;
        total += keys.len();
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].contains(k) {
                return Err(invalid("Provided list of item keys contains duplicates"));
            }
        }
        let mut cx = context(entry)?;
        let projection = projection(&mut cx, entry)?;
        cx.finish()?;
        tables.push(BatchGetTable {
            table: name.clone(),
            keys,
            consistent: consistent(entry),
            projection,
            request: entry.clone(),
        });
    }
    if total > MAX_BATCH_GET_KEYS {
        return Err(invalid(
            "Too many items requested for the BatchGetItem call",
        ));
    }
    if total == 0 {
        return Err(invalid(
            "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    Ok(BatchGetReq {
        tables,
        mode: Mode::parse(body)?,
    })
}

pub fn batch_get(st: &mut State, now: Instant, req: &BatchGetReq) -> Result<Json, ApiError> {
    let State {
        tables,
        throttle,
        stats,
        ..
    } = st;
    // Every key is validated before anything is read.
    let mut keyed = Vec::new();
    for entry in &req.tables {
        let table = tables
            .get(&entry.table)
            .ok_or_else(ApiError::table_not_found)?;
        let keys = entry
            .keys
            .iter()
            .map(|k| table.primary_key(k, true))
            .collect::<Result<Vec<_>, _>>()?;
        keyed.push((entry, table, keys));
    }
    let mut consumed = Consumed::default();
    let mut responses = Map::new();
    let mut unprocessed = Map::new();
    let mut bytes = 0usize;
    let (mut read, mut left) = (0usize, 0usize);
    for (entry, table, keys) in keyed {
        let mut found = Vec::new();
        let mut skipped = Vec::new();
        for (raw, key) in entry.keys.iter().zip(&keys) {
            let item = table.get(key);
            let units = item.map_or(1.0, |i| read_units(item_size(i))) * factor(entry.consistent);
            let demand = Demand {
                table: entry.table.clone(),
                pk: key.pk.clone(),
                read: units,
                write: 0.0,
            };
            if bytes >= MAX_BATCH_GET_BYTES || throttle.take(now, &[demand]).is_err() {
                if bytes < MAX_BATCH_GET_BYTES {
                    stats.throttled += 1;
                }
                skipped.push(item_to_json(raw));
                left += 1;
                continue;
            }
            read += 1;
            consumed.table_read(&entry.table, units);
            if let Some(item) = item {
                bytes += item_size(item);
                let shown = match &entry.projection {
                    Some(paths) => expr::project(item, paths),
                    None => item.clone(),
                };
                found.push(item_to_json(&shown));
            }
        }
        responses.insert(entry.table.clone(), Json::Array(found));
        if !skipped.is_empty() {
            let mut request = entry.request.clone();
            request["Keys"] = Json::Array(skipped);
            unprocessed.insert(entry.table.clone(), request);
        }
    }
    if read == 0 && left > 0 {
        return Err(ApiError::throughput_exceeded());
    }
    let mut out = Map::new();
    out.insert("Responses".into(), Json::Object(responses));
    out.insert("UnprocessedKeys".into(), Json::Object(unprocessed));
    list_capacity(&mut out, &consumed, req.mode, false);
    st.tally(&consumed);
    Ok(Json::Object(out))
}

#[derive(Debug)]
pub struct BatchWriteReq {
    /// (table, the request as sent, the item of a put or the key of a delete, is a put)
    writes: Vec<(String, Json, Item, bool)>,
    mode: Mode,
}

pub fn parse_batch_write(body: &Json) -> Result<BatchWriteReq, ApiError> {
    let request_items = required(body, "RequestItems")?
        .as_object()
        .ok_or_else(|| ApiError::serialization("RequestItems must be a map"))?;
    let mut writes = Vec::new();
    for (name, list) in request_items {
        table_name(&json!({"TableName": name}))?;
        let list = list
            .as_array()
            .ok_or_else(|| ApiError::serialization("a table's writes must be a list"))?;
        for request in list {
            let (item, put) = match (
                request.get("PutRequest").filter(|v| !v.is_null()),
                request.get("DeleteRequest").filter(|v| !v.is_null()),
            ) {
                (Some(p), None) => (item_from_json(required(p, "Item")?)?, true),
                (None, Some(d)) => (item_from_json(required(d, "Key")?)?, false),
                _ => {
                    return Err(invalid(
                        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                    ));
                }
            };
            writes.push((name.clone(), request.clone(), item, put));
        }
    }
    if writes.is_empty() || writes.len() > MAX_BATCH_WRITES {
        return Err(invalid(
            "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
        ));
    }
    Ok(BatchWriteReq {
        writes,
        mode: Mode::parse(body)?,
    })
}

pub fn batch_write(st: &mut State, now: Instant, req: &BatchWriteReq) -> Result<Json, ApiError> {
    // Validated first: one bad member refuses the whole batch.
    let mut keys = Vec::new();
    for (name, _, item, put) in &req.writes {
        let table = st.table(name)?;
        let key = if *put {
            let key = table.primary_key(item, false)?;
            table.check_item(item, "Item size has exceeded the maximum allowed size")?;
            key
        } else {
            table.primary_key(item, true)?
        };
        if keys.contains(&(name.clone(), key.clone())) {
            return Err(invalid("Provided list of item keys contains duplicates"));
        }
        keys.push((name.clone(), key));
    }
    let mut consumed = Consumed::default();
    let mut unprocessed: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    let mut throttled = 0;
    for ((name, request, item, put), (_, key)) in req.writes.iter().zip(&keys) {
        let held = st.held(name, key).is_some();
        let table = st.table(name)?;
        let old = table.get(key).cloned();
        let new = put.then(|| item.clone());
        let (units, indexes) = table.write_units(old.as_ref(), new.as_ref());
        let total = units + indexes.iter().map(|(_, u)| u).sum::<f64>();
        let demand = Demand {
            table: name.clone(),
            pk: key.pk.clone(),
            read: 0.0,
            write: total,
        };
        // A member that meets a transaction in flight, or a partition over its
        // throughput, is left for the caller to send again.
        if held || st.throttle.take(now, &[demand]).is_err() {
            if !held {
                st.stats.throttled += 1;
                throttled += 1;
            }
            unprocessed
                .entry(name.clone())
                .or_default()
                .push(request.clone());
            continue;
        }
        consumed.table_write(name, units);
        for (index, u) in indexes {
            consumed.index_write(name, &index, u);
        }
        if let Some(table) = st.tables.get_mut(name) {
            table.write(key, new);
        }
    }
    if throttled == req.writes.len() {
        return Err(ApiError::throughput_exceeded());
    }
    let mut out = Map::new();
    out.insert(
        "UnprocessedItems".into(),
        Json::Object(
            unprocessed
                .into_iter()
                .map(|(k, v)| (k, Json::Array(v)))
                .collect(),
        ),
    );
    list_capacity(&mut out, &consumed, req.mode, false);
    st.tally(&consumed);
    Ok(Json::Object(out))
}
