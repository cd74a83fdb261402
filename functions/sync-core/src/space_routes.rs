//! The routes about spaces themselves: `createSpace`, `spaceExists` and `spaceAccess`
//! (who may use a space), each authorized by the service's [`AccessPolicy`].
//!
//! - `createSpace` `{}`, `{"spaceID": "..."}`, `{"link": "open" | "members"}` ->
//!   `{"spaceID": "..."}`; the creator owns the space.
//! - `spaceExists` `{"spaceID": "..."}` -> `{"spaceExists": bool}`: `false` for a space the
//!   user may not use, as for one that does not exist.
//! - `spaceAccess?spaceID=...` `{}` -> `{"owner", "members", "link"}`;
//!   `{"add": [users], "remove": [users], "link": ...}` changes it (the owner only).

use crate::api::ApiResponse;
use crate::auth::{AccessChange, AccessPolicy, Action, LinkAccess, MAX_MEMBERS, MAX_USER_BYTES};
use crate::error::ApiError;
use crate::ids::SpaceId;
use crate::protocol::ProtocolError;
use crate::store::{Created, Store};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

pub(crate) async fn create_space(
    store: &dyn Store,
    policy: &AccessPolicy,
    user: &str,
    body: &[u8],
) -> Result<ApiResponse, ApiError> {
    let obj = body_object(body)?;
    let requested = space_field(&obj, false)?;
    let link = match obj.get("link") {
        None | Some(Value::Null) => policy.default_link,
        Some(raw) => link_value(raw)?,
    };
    let access = crate::auth::SpaceAccess::new(user, link);
    let limit = policy.max_spaces_per_user;
    let space = match requested {
        Some(space) => {
            policy
                .caller(user)
                .authorize(&space, None, Action::CreateSpace)
                .map_err(ApiError::from)?;
            // A chosen ID that is taken is said so: its chooser could not have it anyway.
            match store.create_space_for(&space, &access, limit).await? {
                Created::Yes => space,
                Created::Exists => return Err(ApiError::SpaceExists),
                Created::OwnerAtLimit => return Err(quota(limit)),
            }
        }
        None => loop {
            // 128 random bits never collide in practice; the loop keeps it a fact.
            let space = SpaceId::generate();
            policy
                .caller(user)
                .authorize(&space, None, Action::CreateSpace)
                .map_err(ApiError::from)?;
            match store.create_space_for(&space, &access, limit).await? {
                Created::Yes => break space,
                Created::Exists => continue,
                Created::OwnerAtLimit => return Err(quota(limit)),
            }
        },
    };
    tracing::info!(space_id = %space, link = link.as_str(), "space created");
    Ok(ApiResponse::json(
        200,
        &json!({ "spaceID": space.as_str() }),
    ))
}

fn quota(limit: Option<usize>) -> ApiError {
    ApiError::QuotaExceeded(format!(
        "you own {} spaces, the most allowed",
        limit.unwrap_or_default()
    ))
}

pub(crate) async fn space_exists(
    store: &dyn Store,
    policy: &AccessPolicy,
    user: &str,
    body: &[u8],
) -> Result<ApiResponse, ApiError> {
    let obj = body_object(body)?;
    let space = space_field(&obj, true)?.ok_or(ApiError::MissingSpaceIdField)?;
    let exists = match store.space_access(&space).await? {
        Some(access) => policy
            .caller(user)
            .authorize(&space, Some(&access), Action::CheckExists)
            .is_ok(),
        None => false,
    };
    Ok(ApiResponse::json(200, &json!({ "spaceExists": exists })))
}

pub(crate) async fn space_access(
    store: &dyn Store,
    policy: &AccessPolicy,
    user: &str,
    space: &SpaceId,
    body: &[u8],
) -> Result<ApiResponse, ApiError> {
    let obj = body_object(body)?;
    let change = access_change(&obj)?;
    let access = store
        .space_access(space)
        .await?
        .ok_or(ApiError::SpaceNotFound)?;
    let caller = policy.caller(user);
    caller
        .authorize(space, Some(&access), Action::ReadAccess)
        .map_err(ApiError::from)?;
    if change.is_empty() {
        return Ok(ApiResponse::json(200, &access));
    }
    caller
        .authorize(space, Some(&access), Action::ChangeAccess)
        .map_err(ApiError::from)?;
    let after = change.applied_to(&access);
    if after.members.len() > MAX_MEMBERS {
        return Err(ApiError::BadRequest(ProtocolError::WrongType {
            field: "add".into(),
            expected: "users that keep the space within 1,000 members",
        }));
    }
    let changed = store
        .change_access(space, &change)
        .await?
        .ok_or(ApiError::SpaceNotFound)?;
    tracing::info!(space_id = %space, added = change.add.len(), removed = change.remove.len(),
        link = changed.link.as_str(), "space access changed");
    Ok(ApiResponse::json(200, &changed))
}

/// The body of a space route as a JSON object; an empty body counts as `{}`.
fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(ProtocolError::NotAnObject.into()),
        Err(e) => Err(ProtocolError::InvalidJson(e.to_string()).into()),
    }
}

fn space_field(obj: &Map<String, Value>, required: bool) -> Result<Option<SpaceId>, ApiError> {
    match obj.get("spaceID") {
        None | Some(Value::Null) if required => Err(ApiError::MissingSpaceIdField),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => SpaceId::parse(s)
            .map(Some)
            .map_err(ApiError::InvalidSpaceId),
        Some(_) => Err(wrong_type("spaceID", "a string")),
    }
}

fn link_value(raw: &Value) -> Result<LinkAccess, ApiError> {
    raw.as_str()
        .and_then(LinkAccess::parse)
        .ok_or_else(|| wrong_type("link", "\"open\" or \"members\""))
}

fn access_change(obj: &Map<String, Value>) -> Result<AccessChange, ApiError> {
    Ok(AccessChange {
        add: users(obj, "add")?,
        remove: users(obj, "remove")?,
        link: match obj.get("link") {
            None | Some(Value::Null) => None,
            Some(raw) => Some(link_value(raw)?),
        },
    })
}

fn users(obj: &Map<String, Value>, field: &'static str) -> Result<BTreeSet<String>, ApiError> {
    let expected = "an array of user IDs (non-empty strings of at most 256 bytes)";
    let Some(raw) = obj.get(field).filter(|v| !v.is_null()) else {
        return Ok(BTreeSet::new());
    };
    let list = raw.as_array().ok_or_else(|| wrong_type(field, expected))?;
    if list.len() > MAX_MEMBERS {
        return Err(wrong_type(field, "at most 1,000 user IDs"));
    }
    list.iter()
        .map(|user| {
            user.as_str()
                .filter(|u| valid_user(u))
                .map(str::to_owned)
                .ok_or_else(|| wrong_type(field, expected))
        })
        .collect()
}

/// A user ID as a JWT subject is: non-empty, bounded, no control characters.
pub fn valid_user(user: &str) -> bool {
    !user.is_empty() && user.len() <= MAX_USER_BYTES && !user.chars().any(char::is_control)
}

fn wrong_type(field: &str, expected: &'static str) -> ApiError {
    ProtocolError::WrongType {
        field: field.to_owned(),
        expected,
    }
    .into()
}
