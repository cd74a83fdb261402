//! Reading and writing the attributes of one item. A stored item that does not have the
//! shape this crate writes is [`StoreError::Corrupt`]; messages name the attribute, never
//! its content.

use crate::schema;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::{BTreeSet, HashMap};
use sync_core::auth::{ANONYMOUS, LinkAccess, SpaceAccess};
use sync_core::json_text::JsonText;
use sync_core::store::StoreError;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The primary key of one item.
pub(crate) fn key(pk: &str, sk: impl Into<String>) -> Item {
    HashMap::from([
        (schema::PK.to_owned(), s(pk)),
        (schema::SK.to_owned(), s(sk)),
    ])
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(_) => Err(corrupt(name, "is not a string")),
        None => Err(corrupt(name, "is missing")),
    }
}

pub(crate) fn get_n(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| corrupt(name, "is not a non-negative integer")),
        Some(_) => Err(corrupt(name, "is not a number")),
        None => Err(corrupt(name, "is missing")),
    }
}

/// An absent flag reads as `false`.
pub(crate) fn get_bool(item: &Item, name: &str) -> Result<bool, StoreError> {
    match item.get(name) {
        Some(AttributeValue::Bool(v)) => Ok(*v),
        Some(_) => Err(corrupt(name, "is not a boolean")),
        None => Ok(false),
    }
}

/// The sort keys the space item names as written by the last commit; none when absent.
pub(crate) fn get_head_items(meta: &Item) -> Result<Vec<String>, StoreError> {
    match meta.get(schema::HEAD_ITEMS) {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|sk| match sk {
                AttributeValue::S(sk) => Ok(sk.clone()),
                _ => Err(corrupt(schema::HEAD_ITEMS, "holds a non-string")),
            })
            .collect(),
        Some(_) => Err(corrupt(schema::HEAD_ITEMS, "is not a list")),
        None => Ok(Vec::new()),
    }
}

/// Who may use the space, from its space item. Each attribute reads as
/// [`SpaceAccess::legacy`] has it when absent (see [`schema::LINK`]); the owner is never
/// one of the members, whatever the item holds.
pub(crate) fn get_access(meta: &Item) -> Result<SpaceAccess, StoreError> {
    let owner = match meta.get(schema::OWNER) {
        None => ANONYMOUS.to_owned(),
        Some(_) => get_s(meta, schema::OWNER)?.to_owned(),
    };
    let link = match meta.get(schema::LINK) {
        None => LinkAccess::Open,
        Some(_) => LinkAccess::parse(get_s(meta, schema::LINK)?)
            .ok_or_else(|| corrupt(schema::LINK, "is neither `open` nor `members`"))?,
    };
    let mut members: BTreeSet<String> = match meta.get(schema::MEMBERS) {
        None => BTreeSet::new(),
        Some(AttributeValue::Ss(users)) => users.iter().cloned().collect(),
        Some(_) => return Err(corrupt(schema::MEMBERS, "is not a string set")),
    };
    members.remove(&owner);
    Ok(SpaceAccess {
        owner,
        members,
        link,
    })
}

/// The attributes of a space item that record `access` (see [`get_access`]): the owner
/// unless anonymous, the link access, the members when there are any.
pub(crate) fn access_attributes(access: &SpaceAccess) -> Item {
    let mut attributes = HashMap::from([(schema::LINK.to_owned(), s(access.link.as_str()))]);
    if access.owner != ANONYMOUS {
        attributes.insert(schema::OWNER.to_owned(), s(&access.owner));
    }
    if let Some(members) = string_set(access.members.iter().filter(|m| **m != access.owner)) {
        attributes.insert(schema::MEMBERS.to_owned(), members);
    }
    attributes
}

/// A string set of `values`; `None` when there are none (DynamoDB has no empty sets).
pub(crate) fn string_set<'a>(
    values: impl IntoIterator<Item = &'a String>,
) -> Option<AttributeValue> {
    let values: Vec<String> = values.into_iter().cloned().collect();
    (!values.is_empty()).then_some(AttributeValue::Ss(values))
}

/// The live value of an entry item; `None` when it is deleted.
pub(crate) fn entry_value(item: &Item) -> Result<Option<Value>, StoreError> {
    if get_bool(item, schema::DELETED)? {
        return Ok(None);
    }
    let text = get_s(item, schema::VALUE)?;
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| corrupt(schema::VALUE, &format!("is not valid JSON ({e})")))
}

/// The live value of an entry item as its stored text, checked and borrowed; `None` when
/// it is deleted. What a pull answers, unparsed (see [`JsonText::check_stored`]).
pub(crate) fn entry_text(item: &Item) -> Result<Option<&RawValue>, StoreError> {
    if get_bool(item, schema::DELETED)? {
        return Ok(None);
    }
    match item.get(schema::VALUE) {
        Some(AttributeValue::S(text)) => JsonText::check_stored(text)
            .map(Some)
            .map_err(|e| corrupt(schema::VALUE, &format!("is not valid JSON ({e})"))),
        Some(_) => Err(corrupt(schema::VALUE, "is not a string")),
        None => Err(corrupt(schema::VALUE, "is missing")),
    }
}

/// The attributes of an entry written at `version`; a deleted entry keeps no value.
pub(crate) fn entry_item(
    pk: &str,
    key: &str,
    value: Option<&Value>,
    version: u64,
) -> Result<Item, StoreError> {
    let mut item = self::key(pk, schema::entry_sk(key));
    item.insert(schema::VERSION.to_owned(), n(version));
    item.insert(
        schema::DELETED.to_owned(),
        AttributeValue::Bool(value.is_none()),
    );
    if let Some(value) = value {
        // Serializing a `Value` cannot fail (its map keys are strings); stay total anyway.
        let text = serde_json::to_string(value)
            .map_err(|e| StoreError::Corrupt(format!("entry value cannot be serialized: {e}")))?;
        item.insert(schema::VALUE.to_owned(), s(text));
    }
    Ok(item)
}

fn corrupt(attribute: &str, what: &str) -> StoreError {
    StoreError::Corrupt(format!("attribute `{attribute}` {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_round_trip() {
        let value = json!({"a": [1, 0.1, null, "ключ"]});
        let item = entry_item("space#s", "k", Some(&value), 7).unwrap();
        assert_eq!(get_s(&item, schema::SK).unwrap(), "e#k");
        assert_eq!(get_n(&item, schema::VERSION).unwrap(), 7);
        assert_eq!(entry_value(&item).unwrap(), Some(value));
        // JSON null is a live value, not a deletion.
        let null = entry_item("space#s", "k", Some(&Value::Null), 8).unwrap();
        assert_eq!(entry_value(&null).unwrap(), Some(Value::Null));
    }

    #[test]
    fn a_pull_takes_the_stored_text_as_it_is() {
        let value = json!({"b": [0.1, 1e300, -0.0, 123456789012345678u64], "a": "ключ\n"});
        let item = entry_item("space#s", "k", Some(&value), 7).unwrap();
        let stored = get_s(&item, schema::VALUE).unwrap();
        let text = entry_text(&item).unwrap().unwrap();
        assert_eq!(text.get(), stored);
        assert_eq!(serde_json::from_str::<Value>(text.get()).unwrap(), value);
        let deleted = entry_item("space#s", "k", None, 8).unwrap();
        assert!(entry_text(&deleted).unwrap().is_none());
        let mut broken = key("space#s", "e#k");
        broken.insert(schema::VALUE.to_owned(), s("{\"a\":"));
        let err = entry_text(&broken).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)));
        assert!(matches!(
            entry_text(&key("space#s", "e#k")),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn deleted_entries_keep_no_value() {
        let item = entry_item("space#s", "k", None, 3).unwrap();
        assert!(!item.contains_key(schema::VALUE));
        assert!(get_bool(&item, schema::DELETED).unwrap());
        assert_eq!(entry_value(&item).unwrap(), None);
    }

    #[test]
    fn malformed_items_are_corrupt() {
        let mut item = key("space#s", "e#k");
        assert!(matches!(entry_value(&item), Err(StoreError::Corrupt(_))));
        item.insert(schema::VALUE.to_owned(), s("{not json"));
        let err = entry_value(&item).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)));
        assert!(
            !err.to_string().contains("not json"),
            "messages carry no data"
        );
        item.insert(schema::VERSION.to_owned(), AttributeValue::N("-1".into()));
        assert!(get_n(&item, schema::VERSION).is_err());
    }

    #[test]
    fn access_round_trips_and_old_space_items_are_legacy() {
        let mut access = SpaceAccess::new("alice", LinkAccess::Members);
        access
            .members
            .extend(["bob".to_owned(), "carol".to_owned()]);
        let mut item = key("space#s", schema::META_SK);
        item.extend(access_attributes(&access));
        assert_eq!(get_access(&item).unwrap(), access);

        // Nobody's, open, no members: only the link is written.
        let legacy = SpaceAccess::legacy();
        let attributes = access_attributes(&legacy);
        assert_eq!(attributes.len(), 1);
        assert_eq!(get_access(&attributes).unwrap(), legacy);
        // A space item from before access was recorded.
        assert_eq!(
            get_access(&key("space#s", schema::META_SK)).unwrap(),
            legacy
        );
    }

    #[test]
    fn the_owner_is_never_a_member_and_odd_access_is_corrupt() {
        let mut item = key("space#s", schema::META_SK);
        item.insert(schema::OWNER.to_owned(), s("alice"));
        item.insert(
            schema::MEMBERS.to_owned(),
            AttributeValue::Ss(vec!["alice".into(), "bob".into()]),
        );
        let access = get_access(&item).unwrap();
        assert_eq!(access.members, ["bob".to_owned()].into());
        assert_eq!(access.link, LinkAccess::Open);

        item.insert(schema::LINK.to_owned(), s("everyone"));
        let err = get_access(&item).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)));
        assert!(
            !err.to_string().contains("everyone"),
            "messages carry no data"
        );
        item.insert(schema::LINK.to_owned(), s("members"));
        item.insert(schema::MEMBERS.to_owned(), s("bob"));
        assert!(matches!(get_access(&item), Err(StoreError::Corrupt(_))));
    }
}
