//! Attribute values as DynamoDB's JSON carries them (`{"S": "text"}`, `{"N": "1"}`, ...),
//! their sizes by DynamoDB's documented rules, and key values, which order items.

use crate::error::ApiError;
use crate::number::Number;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value as Json, json};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Levels of lists and maps DynamoDB accepts in one value.
const MAX_NESTING: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    S(String),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    L(Vec<Value>),
    M(BTreeMap<String, Value>),
    /// Sets keep the order they were written in; their members are distinct.
    Ss(Vec<String>),
    Ns(Vec<Number>),
    Bs(Vec<Vec<u8>>),
}

pub type Item = BTreeMap<String, Value>;

impl Value {
    /// The type's name in DynamoDB's messages and `attribute_type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::S(_) => "S",
            Value::N(_) => "N",
            Value::B(_) => "B",
            Value::Bool(_) => "BOOL",
            Value::Null => "NULL",
            Value::L(_) => "L",
            Value::M(_) => "M",
            Value::Ss(_) => "SS",
            Value::Ns(_) => "NS",
            Value::Bs(_) => "BS",
        }
    }

    /// The size of the value (without its name), by the rules of "Item sizes and
    /// formats" in the Developer Guide: strings and binaries by their bytes, numbers by
    /// their significant digits, 1 byte for a boolean or null, 3 bytes per list or map
    /// plus 1 per element, sets by the sum of their members.
    pub fn size(&self) -> usize {
        match self {
            Value::S(s) => s.len(),
            Value::N(n) => n.size(),
            Value::B(b) => b.len(),
            Value::Bool(_) | Value::Null => 1,
            Value::L(list) => 3 + list.iter().map(|v| v.size() + 1).sum::<usize>(),
            Value::M(map) => {
                3 + map
                    .iter()
                    .map(|(k, v)| k.len() + v.size() + 1)
                    .sum::<usize>()
            }
            Value::Ss(set) => set.iter().map(String::len).sum(),
            Value::Ns(set) => set.iter().map(Number::size).sum(),
            Value::Bs(set) => set.iter().map(Vec::len).sum(),
        }
    }

    pub fn from_json(json: &Json) -> Result<Value, ApiError> {
        parse(json, 0)
    }

    pub fn to_json(&self) -> Json {
        match self {
            Value::S(s) => json!({"S": s}),
            Value::N(n) => json!({"N": n.to_string()}),
            Value::B(b) => json!({"B": BASE64.encode(b)}),
            Value::Bool(b) => json!({"BOOL": b}),
            Value::Null => json!({"NULL": true}),
            Value::L(list) => json!({"L": list.iter().map(Value::to_json).collect::<Vec<_>>()}),
            Value::M(map) => json!({"M": item_to_json(map)}),
            Value::Ss(set) => json!({"SS": set}),
            Value::Ns(set) => json!({"NS": set.iter().map(Number::to_string).collect::<Vec<_>>()}),
            Value::Bs(set) => {
                json!({"BS": set.iter().map(|b| BASE64.encode(b)).collect::<Vec<_>>()})
            }
        }
    }

    /// DynamoDB's comparison of two values for `<`, `<=`, `>`, `>=` and `BETWEEN`: only
    /// two strings, two numbers or two binaries compare; anything else is `None`.
    pub fn ordering(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::S(a), Value::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Value::N(a), Value::N(b)) => Some(a.cmp(b)),
            (Value::B(a), Value::B(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// Equality as `=` sees it: sets are equal whatever their order.
    pub fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Ss(a), Value::Ss(b)) => same_members(a, b),
            (Value::Ns(a), Value::Ns(b)) => same_members(a, b),
            (Value::Bs(a), Value::Bs(b)) => same_members(a, b),
            (Value::L(a), Value::L(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equals(y))
            }
            (Value::M(a), Value::M(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && va.equals(vb))
            }
            _ => self == other,
        }
    }
}

fn same_members<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::validation(message)
}

fn parse(json: &Json, depth: usize) -> Result<Value, ApiError> {
    if depth > MAX_NESTING {
        return Err(invalid("Nesting Levels have exceeded supported limits"));
    }
    let Some(object) = json.as_object() else {
        return Err(ApiError::serialization(
            "Unexpected value type in payload: an attribute value must be an object",
        ));
    };
    let mut entries = object.iter().filter(|(_, v)| !v.is_null());
    let (kind, content) = match (entries.next(), entries.next()) {
        (None, _) => {
            return Err(invalid(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
            ));
        }
        (Some(entry), None) => entry,
    };
    let text = |v: &Json| -> Result<String, ApiError> {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| ApiError::serialization(format!("{kind} must be a string")))
    };
    let number = |v: &Json| -> Result<Number, ApiError> {
        Number::parse(&text(v)?).map_err(|e| invalid(e.message()))
    };
    let binary = |v: &Json| -> Result<Vec<u8>, ApiError> {
        BASE64.decode(text(v)?).map_err(|_| {
            ApiError::serialization(
                "Base64 encoded length is expected a multiple of 4 bytes but found: invalid",
            )
        })
    };
    let array = |v: &Json| -> Result<Vec<Json>, ApiError> {
        v.as_array()
            .cloned()
            .ok_or_else(|| ApiError::serialization(format!("{kind} must be a list")))
    };
    let value = match kind.as_str() {
        "S" => Value::S(text(content)?),
        "N" => Value::N(number(content)?),
        "B" => Value::B(binary(content)?),
        "BOOL" => Value::Bool(
            content
                .as_bool()
                .ok_or_else(|| ApiError::serialization("BOOL must be a boolean"))?,
        ),
        "NULL" => {
            if content.as_bool() != Some(true) {
                return Err(invalid(
                    "One or more parameter values were invalid: Null attribute value types must have the value of true",
                ));
            }
            Value::Null
        }
        "L" => Value::L(
            array(content)?
                .iter()
                .map(|v| parse(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        "M" => {
            let map = content
                .as_object()
                .ok_or_else(|| ApiError::serialization("M must be a map"))?;
            let mut out = BTreeMap::new();
            for (k, v) in map {
                out.insert(k.clone(), parse(v, depth + 1)?);
            }
            Value::M(out)
        }
        "SS" => Value::Ss(set(
            array(content)?.iter().map(text).collect::<Result<_, _>>()?,
            "string",
        )?),
        "NS" => Value::Ns(set(
            array(content)?
                .iter()
                .map(number)
                .collect::<Result<_, _>>()?,
            "number",
        )?),
        "BS" => Value::Bs(set(
            array(content)?
                .iter()
                .map(binary)
                .collect::<Result<_, _>>()?,
            "binary",
        )?),
        other => {
            return Err(ApiError::serialization(format!(
                "Unexpected field type: {other}"
            )));
        }
    };
    Ok(value)
}

fn set<T: PartialEq + std::fmt::Debug>(members: Vec<T>, kind: &str) -> Result<Vec<T>, ApiError> {
    if members.is_empty() {
        return Err(invalid(format!(
            "One or more parameter values were invalid: An {kind} set  may not be empty"
        )));
    }
    for (i, m) in members.iter().enumerate() {
        if members[..i].contains(m) {
            return Err(invalid(
                "One or more parameter values were invalid: Input collection contains duplicates",
            ));
        }
    }
    Ok(members)
}

/// An item (or key, or map of expression values) from its JSON object.
pub fn item_from_json(json: &Json) -> Result<Item, ApiError> {
    let Some(object) = json.as_object() else {
        return Err(ApiError::serialization("an item must be a map"));
    };
    object
        .iter()
        .map(|(k, v)| Ok((k.clone(), Value::from_json(v)?)))
        .collect()
}

pub fn item_to_json(item: &Item) -> Json {
    Json::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect::<Map<_, _>>(),
    )
}

/// The size of an item: its attribute names and values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

/// The value of a key attribute: a string, number or binary, ordered as DynamoDB orders
/// sort keys (strings and binaries by their bytes, numbers by value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyValue {
    S(String),
    N(Number),
    B(Vec<u8>),
}

impl KeyValue {
    pub fn from_value(value: &Value) -> Option<KeyValue> {
        match value {
            Value::S(s) => Some(KeyValue::S(s.clone())),
            Value::N(n) => Some(KeyValue::N(n.clone())),
            Value::B(b) => Some(KeyValue::B(b.clone())),
            _ => None,
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            KeyValue::S(s) => Value::S(s.clone()),
            KeyValue::N(n) => Value::N(n.clone()),
            KeyValue::B(b) => Value::B(b.clone()),
        }
    }

    /// The bytes DynamoDB counts against a key's size limit.
    pub fn size(&self) -> usize {
        match self {
            KeyValue::S(s) => s.len(),
            KeyValue::N(n) => n.size(),
            KeyValue::B(b) => b.len(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            KeyValue::S(_) => "S",
            KeyValue::N(_) => "N",
            KeyValue::B(_) => "B",
        }
    }

    /// Whether `self` starts with `prefix` (`begins_with` on a sort key).
    pub fn starts_with(&self, prefix: &KeyValue) -> bool {
        match (self, prefix) {
            (KeyValue::S(s), KeyValue::S(p)) => s.as_bytes().starts_with(p.as_bytes()),
            (KeyValue::B(s), KeyValue::B(p)) => s.starts_with(p),
            _ => false,
        }
    }
}

impl Ord for KeyValue {
    fn cmp(&self, other: &KeyValue) -> Ordering {
        match (self, other) {
            (KeyValue::S(a), KeyValue::S(b)) => a.as_bytes().cmp(b.as_bytes()),
            (KeyValue::N(a), KeyValue::N(b)) => a.cmp(b),
            (KeyValue::B(a), KeyValue::B(b)) => a.cmp(b),
            // Never mixed within one key attribute; any fixed order will do.
            _ => self.type_name().cmp(other.type_name()),
        }
    }
}

impl PartialOrd for KeyValue {
    fn partial_cmp(&self, other: &KeyValue) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let j = json!({"M": {"a": {"L": [{"N": "1.50"}, {"NULL": true}, {"BOOL": false}]},
                            "b": {"SS": ["x", "y"]}, "c": {"B": "AAE="}, "d": {"NS": ["1", "2"]}}});
        let v = Value::from_json(&j).unwrap();
        let back = v.to_json();
        assert_eq!(back["M"]["a"]["L"][0], json!({"N": "1.5"}));
        assert_eq!(Value::from_json(&back).unwrap(), v);
    }

    #[test]
    fn refusals() {
        for bad in [
            json!({}),
            json!({"S": "a", "N": "1"}),
            json!({"NULL": false}),
            json!({"SS": []}),
            json!({"SS": ["a", "a"]}),
            json!({"N": "x"}),
        ] {
            assert!(Value::from_json(&bad).is_err(), "{bad}");
        }
        let mut deep = json!({"N": "1"});
        for _ in 0..40 {
            deep = json!({"L": [deep]});
        }
        assert!(Value::from_json(&deep).is_err());
    }

    #[test]
    fn sizes_follow_the_documented_rules() {
        let item = item_from_json(&json!({
            "pk": {"S": "abc"},          // 2 + 3
            "n": {"N": "123"},           // 1 + 3
            "flag": {"BOOL": true},      // 4 + 1
            "l": {"L": [{"S": "xy"}]},   // 1 + 3 + (2 + 1)
            "ss": {"SS": ["a", "bc"]},   // 2 + 3
        }))
        .unwrap();
        assert_eq!(item_size(&item), 5 + 4 + 5 + 7 + 5);
    }
}
