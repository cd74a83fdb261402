//! A stored value as the JSON text it is stored as, carried from the store to the pull's
//! response body without being parsed into a [`Value`] tree and serialized again.
//!
//! Every store writes a value as `serde_json`'s serialization of a [`Value`] (keys in
//! order, floats in their shortest round-tripping form), so that text is exactly what
//! parsing it and serializing it again would give: passing it through unchanged answers
//! the same bytes, at a fraction of the cost (a pull of 10k entries was mostly that
//! parse and serialize).

use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;

/// One JSON value as text, known to be valid JSON.
#[derive(Clone)]
pub struct JsonText(Box<RawValue>);

impl JsonText {
    /// The text a store holds, checked and borrowed: a store lends its rows' text to the
    /// pull's buffer (see [`crate::changed_entries::ChangedEntries`]). It was valid when
    /// it was written, and it is checked again here: the check builds no tree (a scan,
    /// about 870 instructions for a 90-byte value, a quarter of what a first pull from
    /// SQLite costs per entry, against the several thousand of a parse into a [`Value`]
    /// and back), and in exchange a value corrupted at rest (a file edited from a shell,
    /// an item written by another tool) is the store's typed
    /// [`crate::store::StoreError::Corrupt`], logged where it happened, never text spliced
    /// into a body that no client could read or that reads as more than one value.
    pub fn check_stored(text: &str) -> Result<&RawValue, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// A text that was checked when it was taken in.
    pub(crate) fn from_checked(text: &str) -> Self {
        Self(
            RawValue::from_string(text.to_owned())
                .expect("a text checked when it was taken in is JSON"),
        )
    }

    /// The text of `value`, as a store writes it.
    pub fn from_value(value: &Value) -> Self {
        // Serializing a `Value` cannot fail: its object keys are strings and its numbers
        // finite (serde_json's own `Display` of a `Value` relies on the same).
        Self(serde_json::value::to_raw_value(value).expect("a serde_json Value always serializes"))
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }

    pub fn as_raw(&self) -> &RawValue {
        &self.0
    }

    /// The value parsed (for tests and tools; the pull path never parses).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(self.get())
    }
}

impl From<Value> for JsonText {
    fn from(value: Value) -> Self {
        Self::from_value(&value)
    }
}

impl From<&Value> for JsonText {
    fn from(value: &Value) -> Self {
        Self::from_value(value)
    }
}

/// Equal texts: what every store writes for one value is the same text, so equal values
/// have equal texts.
impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for JsonText {}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // serde_json writes a raw value's text as it is.
        self.0.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_text_must_be_json() {
        assert!(JsonText::check_stored("{\"a\":1}").is_ok());
        assert!(JsonText::check_stored("{not json").is_err());
        assert!(JsonText::check_stored("1 2").is_err());
        assert!(JsonText::check_stored("").is_err());
    }

    #[test]
    fn serializes_as_the_same_bytes_as_the_value() {
        let value = json!({
            "z": [0.1, 1e300, -0.0, 123456789012345678u64, -5, 2.5e-8],
            "a": "ключ \"q\" \\ \n \t \u{1} 😀",
            "m": {"b": null, "a": true},
        });
        let text = JsonText::from_value(&value);
        // Through the text a store holds, as a pull reads it.
        let stored = JsonText::from_checked(JsonText::check_stored(text.get()).unwrap().get());
        let wrapped = json!({ "v": value });
        #[derive(Serialize)]
        struct Wrapped<'a> {
            v: &'a JsonText,
        }
        assert_eq!(
            serde_json::to_string(&Wrapped { v: &stored }).unwrap(),
            serde_json::to_string(&wrapped).unwrap()
        );
        assert_eq!(stored.to_value().unwrap(), value);
    }
}
