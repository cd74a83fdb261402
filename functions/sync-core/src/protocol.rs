//! Wire types of the Replicache push and pull protocol, version 1, and their validation.
//!
//! Bodies are first read as loose JSON so that a version-0 body (mutation recovery from a
//! very old client database) is answered `VersionNotSupported` instead of being misread as
//! version 1, and so that every refusal can say exactly which field was wrong.

use crate::changed_entries::ChangedEntries;
use crate::cookie::SignedCookie;
use crate::ids::{IdError, validate_client_id};
use crate::json_text::JsonText;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Largest integer a JavaScript number represents exactly; mutation IDs and cookies above
/// it cannot have come from a real client.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A refused request body, with the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("field `{field}` is missing")]
    Missing { field: String },
    #[error("field `{field}` must be {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("field `{field}`: {source}")]
    BadId { field: String, source: IdError },
}

/// Which of the protocol's version fields a `VersionNotSupported` answer refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionType {
    Push,
    Pull,
    Schema,
}

/// A body that parsed but speaks a protocol version we do not.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<T> {
    Supported(T),
    VersionNotSupported(VersionType),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub client_id: String,
    pub id: u64,
    pub name: String,
    pub args: Value,
    /// Why the mutation's `name` or `args` could not be read; such a mutation is
    /// processed as a permanent failure.
    pub defect: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PushRequest {
    pub client_group_id: String,
    pub profile_id: Option<String>,
    pub schema_version: String,
    pub mutations: Vec<Mutation>,
}

/// The cookie a pull presents.
#[derive(Debug, Clone, PartialEq)]
pub enum Cookie {
    Null,
    /// A bare integer from 0 to 2^53-1: what earlier versions of this server handed out.
    Version(u64),
    /// Any other number: one no version of this server handed out.
    Unusable(f64),
    /// `{"order": <version>, "sig": <signature>}`: what this server hands out (see
    /// [`crate::cookie`]).
    Signed {
        order: u64,
        sig: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PullRequest {
    pub client_group_id: String,
    pub profile_id: Option<String>,
    pub schema_version: String,
    pub cookie: Cookie,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    Clear,
    /// The value as stored, written into the body as it is.
    Put {
        key: String,
        value: JsonText,
    },
    Del {
        key: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PullResponse {
    pub cookie: SignedCookie,
    #[serde(rename = "lastMutationIDChanges")]
    pub last_mutation_id_changes: std::collections::BTreeMap<String, u64>,
    pub patch: Patch,
}

/// A pull's patch: `clear` or not, then a `put` or `del` per changed entry, written
/// straight from the entries' buffer (see [`ChangedEntries`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch {
    clear: bool,
    entries: ChangedEntries,
}

impl Patch {
    /// The changes after a cookie.
    pub fn changes(entries: ChangedEntries) -> Self {
        Self {
            clear: false,
            entries,
        }
    }

    /// `clear`, then every live entry of `entries` (after a clear, a deleted entry needs
    /// no `del`).
    pub fn reset(mut entries: ChangedEntries) -> Self {
        entries.retain_live();
        Self {
            clear: true,
            entries,
        }
    }

    /// The number of ops.
    pub fn len(&self) -> usize {
        self.entries.len() + usize::from(self.clear)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ops, owned (for tests and tools; a pull writes them from the buffer).
    pub fn to_ops(&self) -> Vec<PatchOp> {
        let clear = self.clear.then_some(PatchOp::Clear);
        clear
            .into_iter()
            .chain(self.entries.iter().map(|entry| match entry.value {
                Some(text) => PatchOp::Put {
                    key: entry.key.to_owned(),
                    value: JsonText::from_checked(text),
                },
                None => PatchOp::Del {
                    key: entry.key.to_owned(),
                },
            }))
            .collect()
    }
}

/// From ops in order; a `clear` is written first wherever it is.
impl FromIterator<PatchOp> for Patch {
    fn from_iter<I: IntoIterator<Item = PatchOp>>(ops: I) -> Self {
        let mut patch = Self::default();
        for op in ops {
            match op {
                PatchOp::Clear => patch.clear = true,
                PatchOp::Put { key, value } => patch.entries.push(&key, Some(value.as_raw())),
                PatchOp::Del { key } => patch.entries.push(&key, None),
            }
        }
        patch
    }
}

impl PartialEq<Vec<PatchOp>> for Patch {
    fn eq(&self, other: &Vec<PatchOp>) -> bool {
        self.to_ops() == *other
    }
}

impl Serialize for Patch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_ops().serialize(serializer)
    }
}

impl PullResponse {
    /// The response body, byte for byte what `serde_json::to_vec(self)` gives, written in
    /// one pass into a buffer sized up front. A first pull writes one op per entry, and
    /// through serde each op is a dozen writer calls and a scan of four strings; here it
    /// is five appends, the key's scan, and the stored value's text as it is.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        const OP_BYTES: usize = r#"{"op":"put","key":"","value":},"#.len();
        let entries = &self.patch.entries;
        let entry_bytes = entries.len() * OP_BYTES + entries.text_len();
        // Escapes can make it longer: the buffer then grows as usual.
        let mut out = Vec::with_capacity(entry_bytes + 256);
        out.extend_from_slice(br#"{"cookie":"#);
        serde_json::to_writer(&mut out, &self.cookie)?;
        out.extend_from_slice(br#","lastMutationIDChanges":"#);
        serde_json::to_writer(&mut out, &self.last_mutation_id_changes)?;
        out.extend_from_slice(br#","patch":["#);
        if self.patch.clear {
            out.extend_from_slice(br#"{"op":"clear"},"#);
        }
        for entry in entries.iter() {
            match entry.value {
                Some(value) => {
                    out.extend_from_slice(br#"{"op":"put","key":"#);
                    write_json_string(&mut out, entry.key)?;
                    out.extend_from_slice(br#","value":"#);
                    out.extend_from_slice(value.as_bytes());
                    out.extend_from_slice(b"},");
                }
                None => {
                    out.extend_from_slice(br#"{"op":"del","key":"#);
                    write_json_string(&mut out, entry.key)?;
                    out.extend_from_slice(b"},");
                }
            }
        }
        if !self.patch.is_empty() {
            // The comma after the last op.
            out.pop();
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }
}

/// `s` as a JSON string, as serde_json writes it: a string with nothing to escape (no
/// quote, backslash or control character, serde_json's only escapes) is copied as is.
fn write_json_string(out: &mut Vec<u8>, s: &str) -> Result<(), serde_json::Error> {
    if !needs_escape(s.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, s)
    }
}

/// Whether `bytes` hold a byte serde_json escapes (a quote, a backslash, a control
/// character), eight at a time: a first pull scans every key.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Exact as a yes or no: whether some byte of `x` is below `n` (n <= 0x80).
    let any_below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS != 0;
    let any_equal = |x: u64, b: u8| any_below(x ^ (ONES * u64::from(b)), 1);
    let escapes = |b: &u8| *b < 0x20 || *b == b'"' || *b == b'\\';
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(word);
        if any_below(x, 0x20) || any_equal(x, b'"') || any_equal(x, b'\\') {
            return true;
        }
    }
    chunks.remainder().iter().any(escapes)
}

/// The error bodies the client acts on; they travel with HTTP status 200.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "error")]
pub enum ClientError {
    ClientStateNotFound,
    VersionNotSupported {
        #[serde(rename = "versionType")]
        version_type: VersionType,
    },
}

pub fn parse_push(body: &[u8]) -> Result<Parsed<PushRequest>, ProtocolError> {
    let obj = parse_object(body)?;
    if !is_version_one(&obj, "pushVersion")? {
        return Ok(Parsed::VersionNotSupported(VersionType::Push));
    }
    let client_group_id = id_field(&obj, "clientGroupID")?;
    let profile_id = lenient_string(&obj, "profileID");
    let schema_version = lenient_string(&obj, "schemaVersion").unwrap_or_default();
    let raw = obj.get("mutations").ok_or_else(|| missing("mutations"))?;
    let raw: Vec<Box<RawValue>> =
        serde_json::from_str(raw.get()).map_err(|_| wrong_type("mutations", "an array"))?;
    let mutations = raw
        .iter()
        .enumerate()
        .map(|(i, m)| parse_mutation(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Parsed::Supported(PushRequest {
        client_group_id,
        profile_id,
        schema_version,
        mutations,
    }))
}

pub fn parse_pull(body: &[u8]) -> Result<Parsed<PullRequest>, ProtocolError> {
    let obj = parse_object(body)?;
    if !is_version_one(&obj, "pullVersion")? {
        return Ok(Parsed::VersionNotSupported(VersionType::Pull));
    }
    let client_group_id = id_field(&obj, "clientGroupID")?;
    let profile_id = lenient_string(&obj, "profileID");
    let schema_version = lenient_string(&obj, "schemaVersion").unwrap_or_default();
    let raw = obj.get("cookie").ok_or_else(|| missing("cookie"))?;
    let cookie = parse_cookie(raw)?;
    Ok(Parsed::Supported(PullRequest {
        client_group_id,
        profile_id,
        schema_version,
        cookie,
    }))
}

const COOKIE_EXPECTED: &str = "null, a number or a cookie this server handed out";

fn parse_cookie(raw: &RawValue) -> Result<Cookie, ProtocolError> {
    let wrong = || wrong_type("cookie", COOKIE_EXPECTED);
    match serde_json::from_str::<Value>(raw.get()).map_err(|_| wrong())? {
        Value::Null => Ok(Cookie::Null),
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(v), _) if v <= MAX_SAFE_INTEGER => Ok(Cookie::Version(v)),
            (_, Some(f)) => Ok(Cookie::Unusable(f)),
            _ => Err(wrong()),
        },
        Value::Object(obj) => {
            let order = obj
                .get("order")
                .and_then(Value::as_u64)
                .filter(|o| *o <= MAX_SAFE_INTEGER)
                .ok_or_else(wrong)?;
            let sig = obj.get("sig").and_then(Value::as_str).ok_or_else(wrong)?;
            Ok(Cookie::Signed {
                order,
                sig: sig.to_owned(),
            })
        }
        _ => Err(wrong()),
    }
}

/// A mutation's envelope (`clientID`, `id`) must be usable, or nothing can be said of
/// it: a 400. Its `name` and `args` are the mutation's own business: when they cannot be
/// read (a lone UTF-16 surrogate, nesting beyond the parser's limit, a number out of
/// range), the mutation carries a defect and is processed as a permanent failure, so the
/// client stops resending it.
fn parse_mutation(index: usize, raw: &RawValue) -> Result<Mutation, ProtocolError> {
    let field = |name: &str| format!("mutations[{index}].{name}");
    let obj: RawObject = serde_json::from_str(raw.get()).map_err(|_| ProtocolError::WrongType {
        field: format!("mutations[{index}]"),
        expected: "an object",
    })?;
    let client_id = match obj.get("clientID") {
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map_err(|_| wrong_type(&field("clientID"), "a string"))?,
        None => return Err(missing(&field("clientID"))),
    };
    validate_client_id(&client_id, "clientID").map_err(|source| ProtocolError::BadId {
        field: field("clientID"),
        source,
    })?;
    let id = match obj.get("id") {
        Some(raw) => serde_json::from_str::<Value>(raw.get())
            .ok()
            .and_then(|v| v.as_u64())
            .filter(|id| (1..=MAX_SAFE_INTEGER).contains(id))
            .ok_or_else(|| wrong_type(&field("id"), "an integer from 1 to 2^53-1"))?,
        None => return Err(missing(&field("id"))),
    };
    let mut defect = None;
    let name = match obj
        .get("name")
        .map(|raw| serde_json::from_str::<String>(raw.get()))
    {
        Some(Ok(name)) if !name.is_empty() => name,
        _ => {
            defect = Some("`name` is not a non-empty string".to_owned());
            String::new()
        }
    };
    // Replicache sends `args: null` for mutators without arguments; an absent field means
    // the same.
    let args = match obj
        .get("args")
        .map(|raw| serde_json::from_str::<Value>(raw.get()))
    {
        None => Value::Null,
        Some(Ok(args)) => args,
        Some(Err(e)) => {
            // The parser's message names the problem and its position, never the text.
            defect.get_or_insert_with(|| format!("`args` cannot be read: {e}"));
            Value::Null
        }
    };
    Ok(Mutation {
        client_id,
        id,
        name,
        args,
        defect,
    })
}

/// The fields of a JSON object, each left unparsed until asked for, so that nothing
/// inside a mutation's `args` can make the whole body unreadable.
type RawObject = BTreeMap<String, Box<RawValue>>;

fn parse_object(body: &[u8]) -> Result<RawObject, ProtocolError> {
    let raw: &RawValue =
        serde_json::from_slice(body).map_err(|e| ProtocolError::InvalidJson(e.to_string()))?;
    if !raw.get().starts_with('{') {
        return Err(ProtocolError::NotAnObject);
    }
    serde_json::from_str(raw.get()).map_err(|e| ProtocolError::InvalidJson(e.to_string()))
}

/// `Ok(false)` for any version other than 1 (notably 0); an error when the field is absent
/// or not a number.
fn is_version_one(obj: &RawObject, field: &str) -> Result<bool, ProtocolError> {
    match obj
        .get(field)
        .map(|raw| serde_json::from_str::<Value>(raw.get()))
    {
        Some(Ok(Value::Number(n))) => Ok(n.as_u64() == Some(1)),
        Some(_) => Err(wrong_type(field, "a number")),
        None => Err(missing(field)),
    }
}

fn id_field(obj: &RawObject, field: &'static str) -> Result<String, ProtocolError> {
    let raw = obj.get(field).ok_or_else(|| missing(field))?;
    let id: String = serde_json::from_str(raw.get()).map_err(|_| wrong_type(field, "a string"))?;
    validate_client_id(&id, field).map_err(|source| ProtocolError::BadId {
        field: field.to_owned(),
        source,
    })?;
    Ok(id)
}

/// An informational string field; anything but a readable string counts as absent.
fn lenient_string(obj: &RawObject, field: &'static str) -> Option<String> {
    obj.get(field)
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
}

fn missing(field: &str) -> ProtocolError {
    ProtocolError::Missing {
        field: field.to_owned(),
    }
}

fn wrong_type(field: &str, expected: &'static str) -> ProtocolError {
    ProtocolError::WrongType {
        field: field.to_owned(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn push_body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn parses_a_real_push() {
        let body = push_body(json!({"pushVersion":1,"clientGroupID":"g1","profileID":"p",
            "schemaVersion":"","mutations":[{"clientID":"c1","id":1,"name":"increment",
            "args":1,"timestamp":180.49}]}));
        let Parsed::Supported(req) = parse_push(&body).unwrap() else {
            panic!("expected v1")
        };
        assert_eq!(req.client_group_id, "g1");
        assert_eq!(req.mutations.len(), 1);
        assert_eq!(req.mutations[0].args, json!(1));
    }

    #[test]
    fn version_zero_is_not_supported_not_misread() {
        let body = push_body(json!({"pushVersion":0,"clientID":"c","mutations":[]}));
        assert_eq!(
            parse_push(&body).unwrap(),
            Parsed::VersionNotSupported(VersionType::Push)
        );
        let body = push_body(json!({"pullVersion":0,"clientID":"c","cookie":null}));
        assert_eq!(
            parse_pull(&body).unwrap(),
            Parsed::VersionNotSupported(VersionType::Pull)
        );
    }

    #[test]
    fn unreadable_names_and_args_are_the_mutation_s_defect_not_the_body_s() {
        let deep = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
        let body = format!(
            r#"{{"pushVersion":1,"clientGroupID":"g","profileID":"\ud800","mutations":[
            {{"clientID":"c","id":1,"name":"setItem","args":{{"key":"k","value":"\ud83d"}}}},
            {{"clientID":"c","id":2,"name":"setItem","args":{deep}}},
            {{"clientID":"c","id":3,"name":"increment","args":1e400}},
            {{"clientID":"c","id":4,"name":"\udc00","args":1}},
            {{"clientID":"c","id":5,"name":7}},
            {{"clientID":"c","id":6,"name":"increment","args":1}}]}}"#
        );
        let Parsed::Supported(req) = parse_push(body.as_bytes()).unwrap() else {
            panic!("expected v1")
        };
        assert_eq!(
            req.profile_id, None,
            "an unreadable profileID counts as absent"
        );
        let defects: Vec<bool> = req.mutations.iter().map(|m| m.defect.is_some()).collect();
        assert_eq!(defects, [true, true, true, true, true, false]);
        assert!(
            req.mutations[1]
                .defect
                .as_ref()
                .unwrap()
                .contains("recursion")
        );
        assert_eq!(req.mutations[5].args, json!(1));
    }

    #[test]
    fn a_mutation_without_a_usable_client_or_id_is_a_bad_request() {
        for m in [
            json!({"id":1,"name":"increment"}),
            json!({"clientID":"c","name":"increment"}),
            json!({"clientID":"bad id!","id":1,"name":"increment"}),
            json!({"clientID":7,"id":1,"name":"increment"}),
            json!([1]),
        ] {
            let body = push_body(json!({"pushVersion":1,"clientGroupID":"g","mutations":[m]}));
            assert!(parse_push(&body).is_err(), "{m}");
        }
        let body =
            br#"{"pushVersion":1,"clientGroupID":"g","mutations":[{"clientID":"\ud800","id":1}]}"#;
        assert!(parse_push(body).is_err());
    }

    #[test]
    fn refuses_absurd_mutation_ids() {
        for id in [
            json!(0),
            json!(-1),
            json!(1.5),
            json!(9007199254740992u64),
            json!("1"),
        ] {
            let body = push_body(json!({"pushVersion":1,"clientGroupID":"g","mutations":
                [{"clientID":"c","id":id,"name":"increment","args":1}]}));
            assert!(
                matches!(parse_push(&body), Err(ProtocolError::WrongType { .. })),
                "{id}"
            );
        }
    }

    #[test]
    fn cookies() {
        let pull = |c: Value| {
            parse_pull(&push_body(
                json!({"pullVersion":1,"clientGroupID":"g","cookie":c}),
            ))
        };
        assert!(matches!(
            pull(json!(null)),
            Ok(Parsed::Supported(PullRequest {
                cookie: Cookie::Null,
                ..
            }))
        ));
        assert!(matches!(
            pull(json!(7)),
            Ok(Parsed::Supported(PullRequest {
                cookie: Cookie::Version(7),
                ..
            }))
        ));
        assert!(matches!(
            pull(json!(-3)),
            Ok(Parsed::Supported(PullRequest {
                cookie: Cookie::Unusable(_),
                ..
            }))
        ));
        assert!(matches!(
            pull(json!("7")),
            Err(ProtocolError::WrongType { .. })
        ));
        assert!(matches!(
            pull(json!({"order":1})),
            Err(ProtocolError::WrongType { .. })
        ));
        assert!(matches!(
            pull(json!({"order":-1,"sig":"x"})),
            Err(ProtocolError::WrongType { .. })
        ));
        assert_eq!(
            pull(json!({"order":9,"sig":"x","extra":true})),
            Ok(Parsed::Supported(PullRequest {
                client_group_id: "g".into(),
                profile_id: None,
                schema_version: String::new(),
                cookie: Cookie::Signed {
                    order: 9,
                    sig: "x".into()
                }
            }))
        );
    }

    #[test]
    fn finds_every_byte_to_escape_at_every_position() {
        let naive = |s: &[u8]| s.iter().any(|b| *b < 0x20 || *b == b'"' || *b == b'\\');
        for len in 0..20 {
            let plain = vec![b'a'; len];
            assert!(!needs_escape(&plain));
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut s = plain.clone();
                    s[at] = b;
                    assert_eq!(needs_escape(&s), naive(&s), "{b:#x} at {at} of {len}");
                }
            }
        }
        assert!(!needs_escape("ключ 🔑 \u{7f} ~ !#".as_bytes()));
    }

    #[test]
    fn the_written_body_is_what_serde_writes() {
        let tricky = [
            "plain",
            "",
            "q\"uote",
            "back\\slash",
            "ctl\u{0}\u{1f}\n",
            "ключ 🔑 \u{2028} \u{7f}",
        ];
        let mut patch = vec![PatchOp::Clear];
        for (i, key) in tricky.iter().enumerate() {
            patch.push(PatchOp::Put {
                key: (*key).to_owned(),
                value: json!({"k": key, "n": [0.1, -0.0, 1e300, i]}).into(),
            });
            patch.push(PatchOp::Del {
                key: format!("{key}/gone"),
            });
        }
        let r = PullResponse {
            cookie: SignedCookie {
                order: 9,
                sig: "s\"ig".into(),
            },
            last_mutation_id_changes: [("c\"1".to_owned(), 3), ("c2".to_owned(), 4)].into(),
            patch: patch.iter().cloned().collect(),
        };
        assert_eq!(r.patch.to_ops(), patch);
        assert_eq!(
            String::from_utf8(r.to_json().unwrap()).unwrap(),
            serde_json::to_string(&r).unwrap()
        );
        // Every shape of patch: empty, only a clear, without a clear, one op.
        for ops in [&[][..], &patch[..1], &patch[1..], &patch[1..2]] {
            let other = PullResponse {
                patch: ops.iter().cloned().collect(),
                last_mutation_id_changes: BTreeMap::new(),
                ..r.clone()
            };
            assert_eq!(other.patch.len(), ops.len());
            assert_eq!(
                String::from_utf8(other.to_json().unwrap()).unwrap(),
                serde_json::to_string(&other).unwrap()
            );
        }
    }

    #[test]
    fn serializes_responses_as_the_client_expects() {
        let r = PullResponse {
            cookie: SignedCookie {
                order: 4,
                sig: "c2ln".into(),
            },
            last_mutation_id_changes: [("c".to_owned(), 3)].into(),
            patch: [
                PatchOp::Clear,
                PatchOp::Put {
                    key: "count".into(),
                    value: json!(16).into(),
                },
                PatchOp::Del { key: "x".into() },
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"cookie":{"order":4,"sig":"c2ln"},"lastMutationIDChanges":{"c":3},"patch":[{"op":"clear"},
                {"op":"put","key":"count","value":16},{"op":"del","key":"x"}]})
        );
        assert_eq!(
            serde_json::to_value(ClientError::VersionNotSupported {
                version_type: VersionType::Schema
            })
            .unwrap(),
            json!({"error":"VersionNotSupported","versionType":"schema"})
        );
        assert_eq!(
            serde_json::to_value(ClientError::ClientStateNotFound).unwrap(),
            json!({"error":"ClientStateNotFound"})
        );
    }
}
