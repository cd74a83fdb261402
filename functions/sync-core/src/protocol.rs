//! Wire types of the Replicache push and pull protocol, version 1, and their validation.
//!
//! Bodies are first read as loose JSON so that a version-0 body (mutation recovery from a
//! very old client database) is answered `VersionNotSupported` instead of being misread as
//! version 1, and so that every refusal can say exactly which field was wrong.

use crate::ids::{IdError, validate_client_id};
use serde::Serialize;
use serde_json::{Map, Value};

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
}

#[derive(Debug, Clone, PartialEq)]
pub struct PushRequest {
    pub client_group_id: String,
    pub profile_id: Option<String>,
    pub schema_version: String,
    pub mutations: Vec<Mutation>,
}

/// The cookie a pull presents. Ours are always non-negative integers; any other finite
/// number is one we never handed out and is answered with a reset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cookie {
    Null,
    Version(u64),
    Unusable(f64),
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
    Put { key: String, value: Value },
    Del { key: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PullResponse {
    pub cookie: u64,
    #[serde(rename = "lastMutationIDChanges")]
    pub last_mutation_id_changes: std::collections::BTreeMap<String, u64>,
    pub patch: Vec<PatchOp>,
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
    let profile_id = optional_string(&obj, "profileID")?;
    let schema_version = optional_string(&obj, "schemaVersion")?.unwrap_or_default();
    let raw = obj
        .get("mutations")
        .ok_or_else(|| missing("mutations"))?
        .as_array()
        .ok_or_else(|| wrong_type("mutations", "an array"))?;
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
    let profile_id = optional_string(&obj, "profileID")?;
    let schema_version = optional_string(&obj, "schemaVersion")?.unwrap_or_default();
    let cookie = match obj.get("cookie") {
        None => return Err(missing("cookie")),
        Some(Value::Null) => Cookie::Null,
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(v), _) if v <= MAX_SAFE_INTEGER => Cookie::Version(v),
            (_, Some(f)) => Cookie::Unusable(f),
            _ => return Err(wrong_type("cookie", "null or a number")),
        },
        Some(_) => return Err(wrong_type("cookie", "null or a number")),
    };
    Ok(Parsed::Supported(PullRequest {
        client_group_id,
        profile_id,
        schema_version,
        cookie,
    }))
}

fn parse_mutation(index: usize, raw: &Value) -> Result<Mutation, ProtocolError> {
    let field = |name: &str| format!("mutations[{index}].{name}");
    let obj = raw.as_object().ok_or_else(|| ProtocolError::WrongType {
        field: format!("mutations[{index}]"),
        expected: "an object",
    })?;
    let client_id = match obj.get("clientID") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(wrong_type(&field("clientID"), "a string")),
        None => return Err(missing(&field("clientID"))),
    };
    validate_client_id(&client_id, "clientID").map_err(|source| ProtocolError::BadId {
        field: field("clientID"),
        source,
    })?;
    let id = match obj.get("id") {
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|id| (1..=MAX_SAFE_INTEGER).contains(id))
            .ok_or_else(|| wrong_type(&field("id"), "an integer from 1 to 2^53-1"))?,
        Some(_) => return Err(wrong_type(&field("id"), "an integer from 1 to 2^53-1")),
        None => return Err(missing(&field("id"))),
    };
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(wrong_type(&field("name"), "a non-empty string")),
        None => return Err(missing(&field("name"))),
    };
    // Replicache sends `args: null` for mutators without arguments; an absent field means
    // the same.
    let args = obj.get("args").cloned().unwrap_or(Value::Null);
    Ok(Mutation {
        client_id,
        id,
        name,
        args,
    })
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ProtocolError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(ProtocolError::NotAnObject),
        Err(e) => Err(ProtocolError::InvalidJson(e.to_string())),
    }
}

/// `Ok(false)` for any version other than 1 (notably 0); an error when the field is absent
/// or not a number.
fn is_version_one(obj: &Map<String, Value>, field: &str) -> Result<bool, ProtocolError> {
    match obj.get(field) {
        Some(Value::Number(n)) => Ok(n.as_u64() == Some(1)),
        Some(_) => Err(wrong_type(field, "a number")),
        None => Err(missing(field)),
    }
}

fn id_field(obj: &Map<String, Value>, field: &'static str) -> Result<String, ProtocolError> {
    match obj.get(field) {
        Some(Value::String(s)) => {
            validate_client_id(s, field).map_err(|source| ProtocolError::BadId {
                field: field.to_owned(),
                source,
            })?;
            Ok(s.clone())
        }
        Some(_) => Err(wrong_type(field, "a string")),
        None => Err(missing(field)),
    }
}

fn optional_string(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, ProtocolError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(wrong_type(field, "a string")),
    }
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
    }

    #[test]
    fn serializes_responses_as_the_client_expects() {
        let r = PullResponse {
            cookie: 4,
            last_mutation_id_changes: [("c".to_owned(), 3)].into(),
            patch: vec![
                PatchOp::Clear,
                PatchOp::Put {
                    key: "count".into(),
                    value: json!(16),
                },
                PatchOp::Del { key: "x".into() },
            ],
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"cookie":4,"lastMutationIDChanges":{"c":3},"patch":[{"op":"clear"},
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
