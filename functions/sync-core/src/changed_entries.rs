//! The entries a pull answers, held in one buffer.
//!
//! A first pull of a large space carries one key and one stored value per entry. Held as
//! a `String` and a [`JsonText`] each, they cost two allocations and two frees per entry
//! between the store's read and the body's writing: on the in-memory store, half of such
//! a pull's instructions. Here every key and value text is appended to one buffer as the
//! store reads it (from a row it lends, from the map it locks), and the body is written
//! from that buffer: the allocations grow with the number of doublings, not of entries.

use crate::json_text::JsonText;
use crate::store::EntryChange;
use serde_json::value::RawValue;
use std::fmt;

/// Changed entries, in the order they were added: keys and stored texts back to back in
/// one buffer. A value's text is always one JSON value (checked on the way in).
#[derive(Clone, Default)]
pub struct ChangedEntries {
    text: String,
    spans: Vec<Span>,
}

/// Where an entry lies in the buffer: key `start..key_end`, value text `key_end..end`
/// (empty when deleted: no JSON text is empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    key_end: usize,
    end: usize,
}

/// One changed entry, borrowed from its [`ChangedEntries`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangedEntry<'a> {
    pub key: &'a str,
    /// The stored JSON text; `None` when the entry was deleted.
    pub value: Option<&'a str>,
}

impl ChangedEntries {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key` with `value`'s text, or deleted.
    pub fn push(&mut self, key: &str, value: Option<&RawValue>) {
        self.push_unchecked(key, value.map(RawValue::get));
    }

    /// Adds `key` with `value`, a text as a store holds it: checked to be one JSON value
    /// (see [`JsonText::check_stored`]), without copying it anywhere but here.
    pub fn push_stored(&mut self, key: &str, value: Option<&str>) -> Result<(), serde_json::Error> {
        let value = value.map(JsonText::check_stored).transpose()?;
        self.push(key, value);
        Ok(())
    }

    fn push_unchecked(&mut self, key: &str, value: Option<&str>) {
        let start = self.text.len();
        self.text.push_str(key);
        let key_end = self.text.len();
        if let Some(value) = value {
            self.text.push_str(value);
        }
        self.spans.push(Span {
            start,
            key_end,
            end: self.text.len(),
        });
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The bytes of every key and value text together.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = ChangedEntry<'_>> + '_ {
        self.spans.iter().map(|span| self.entry(span))
    }

    fn entry(&self, span: &Span) -> ChangedEntry<'_> {
        let value = &self.text[span.key_end..span.end];
        ChangedEntry {
            key: &self.text[span.start..span.key_end],
            value: (!value.is_empty()).then_some(value),
        }
    }

    /// In key order (a sorted list is one pass).
    pub fn sort_by_key(&mut self) {
        let text = &self.text;
        self.spans
            .sort_by(|a, b| text[a.start..a.key_end].cmp(&text[b.start..b.key_end]));
    }

    /// Without the deleted entries (their text stays in the buffer, unread).
    pub fn retain_live(&mut self) {
        self.spans.retain(|span| span.end > span.key_end);
    }

    /// The entries as owned values (for tests and tools; a pull never copies them).
    pub fn to_vec(&self) -> Vec<EntryChange> {
        self.iter().map(EntryChange::from).collect()
    }
}

impl From<ChangedEntry<'_>> for EntryChange {
    fn from(entry: ChangedEntry<'_>) -> Self {
        Self {
            key: entry.key.to_owned(),
            value: entry.value.map(JsonText::from_checked),
        }
    }
}

impl<'a> FromIterator<&'a EntryChange> for ChangedEntries {
    fn from_iter<I: IntoIterator<Item = &'a EntryChange>>(iter: I) -> Self {
        let mut entries = Self::new();
        for change in iter {
            entries.push(&change.key, change.value.as_ref().map(JsonText::as_raw));
        }
        entries
    }
}

/// The same entries in the same order (the buffer may hold more: see [`Self::retain_live`]).
impl PartialEq for ChangedEntries {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for ChangedEntries {}

impl PartialEq<Vec<EntryChange>> for ChangedEntries {
    fn eq(&self, other: &Vec<EntryChange>) -> bool {
        self.len() == other.len()
            && self.iter().zip(other).all(|(mine, theirs)| {
                mine.key == theirs.key && mine.value == theirs.value.as_ref().map(JsonText::get)
            })
    }
}

impl fmt::Debug for ChangedEntries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(key: &str, value: Option<serde_json::Value>) -> EntryChange {
        EntryChange {
            key: key.to_owned(),
            value: value.map(JsonText::from),
        }
    }

    #[test]
    fn holds_keys_values_and_deletes_in_order() {
        let mut entries = ChangedEntries::new();
        entries.push_stored("b", Some(r#"{"x":[1,2.5]}"#)).unwrap();
        entries.push_stored("", None).unwrap();
        entries.push_stored("a", Some("\"\"")).unwrap();
        assert_eq!(
            entries.iter().collect::<Vec<_>>(),
            [
                ChangedEntry {
                    key: "b",
                    value: Some(r#"{"x":[1,2.5]}"#)
                },
                ChangedEntry {
                    key: "",
                    value: None
                },
                ChangedEntry {
                    key: "a",
                    value: Some("\"\"")
                },
            ]
        );
        entries.sort_by_key();
        assert_eq!(
            entries.iter().map(|e| e.key).collect::<Vec<_>>(),
            ["", "a", "b"]
        );
        entries.retain_live();
        let fresh: ChangedEntries = entries.to_vec().iter().collect();
        assert_eq!(
            entries, fresh,
            "equal entries, whatever else the buffer holds"
        );
        assert_eq!(
            entries,
            vec![
                change("a", Some(json!(""))),
                change("b", Some(json!({"x": [1, 2.5]})))
            ]
        );
    }

    #[test]
    fn refuses_stored_text_that_is_not_one_json_value() {
        let mut entries = ChangedEntries::new();
        for bad in ["", "{", "1 2", "nul"] {
            assert!(entries.push_stored("k", Some(bad)).is_err(), "{bad:?}");
        }
        assert!(entries.is_empty());
    }

    #[test]
    fn round_trips_through_owned_changes() {
        let owned = vec![
            change("k1", Some(json!({"n": -0.0, "s": "ключ \"q\""}))),
            change("k2", None),
        ];
        let entries: ChangedEntries = owned.iter().collect();
        assert_eq!(entries.to_vec(), owned);
        assert_eq!(entries, owned);
        assert_eq!(entries.len(), 2);
    }
}
