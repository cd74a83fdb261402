//! Who is asking: `AUTH_MODE=none` (everyone is the anonymous user) or `jwt` (a bearer
//! token on every API request, the `token` query parameter on the poke socket), the 401
//! answer, and the development sign-in.

use crate::jwt::{JwtAuth, TokenError};
use axum::body::Bytes;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use sync_core::ApiResponse;
use sync_core::auth::{ANONYMOUS, AccessPolicy};
use sync_core::error::ApiError;
use sync_core::space_routes::valid_user;

/// The development sign-in's path.
pub const DEV_SIGN_IN_PATH: &str = "/api/dev/signIn";

#[derive(Debug, Clone)]
pub enum Auth {
    /// Every request is anonymous (`AUTH_MODE=none`).
    None,
    /// Every API request carries a bearer JWT (`AUTH_MODE=jwt`).
    Jwt(Arc<JwtAuth>),
}

impl Auth {
    /// The service's access policy for this mode: in `none`, new spaces are open to
    /// anyone with their link; in `jwt`, to their owner and members.
    pub fn policy(&self) -> AccessPolicy {
        match self {
            Auth::None => AccessPolicy::anonymous(),
            Auth::Jwt(_) => AccessPolicy::signed_in(),
        }
    }

    pub fn jwt(&self) -> Option<&Arc<JwtAuth>> {
        match self {
            Auth::None => None,
            Auth::Jwt(jwt) => Some(jwt),
        }
    }

    /// The user of an API request: the subject of its bearer token in `jwt` mode.
    pub fn user(&self, headers: &HeaderMap) -> Result<String, TokenError> {
        match self {
            Auth::None => Ok(ANONYMOUS.to_owned()),
            Auth::Jwt(jwt) => jwt.verifier.verify(bearer(headers)?),
        }
    }

    /// The user of a poke socket: the token of the `token` query parameter (browsers
    /// cannot set headers on a WebSocket), else of the Authorization header.
    pub fn socket_user(
        &self,
        query_token: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<String, TokenError> {
        match (self, query_token) {
            (Auth::None, _) => Ok(ANONYMOUS.to_owned()),
            (Auth::Jwt(jwt), Some(token)) => jwt.verifier.verify(token),
            (Auth::Jwt(_), None) => self.user(headers).map_err(|e| match e {
                TokenError::Missing => TokenError::MissingSocketToken,
                other => other,
            }),
        }
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Result<&str, TokenError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(TokenError::Missing),
        (Some(_), Some(_)) => return Err(TokenError::NotBearer),
        (Some(value), None) => value,
    };
    let value = value.to_str().map_err(|_| TokenError::NotBearer)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(TokenError::NotBearer)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(TokenError::NotBearer);
    }
    Ok(token)
}

/// 401 `{"error":"Unauthorized","message":...}` with `WWW-Authenticate: Bearer`: the
/// Replicache client answers it by calling `getAuth` and retrying.
pub fn unauthorized(e: &TokenError) -> Response {
    let r = ApiResponse::from_error(&ApiError::Unauthorized(e.to_string()));
    let mut response = (
        StatusCode::UNAUTHORIZED,
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        r.body,
    )
        .into_response();
    let challenge = match e {
        // RFC 6750: no error code when the request had no credentials at all.
        TokenError::Missing | TokenError::MissingSocketToken => "Bearer",
        _ => "Bearer error=\"invalid_token\"",
    };
    let headers = response.headers_mut();
    headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    headers.insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

/// `POST /api/dev/signIn` `{"name": "alice"}` -> `{"token", "user", "expiresAt"}`: a token
/// for any name, signed with the development secret. Development only: whoever reaches
/// the server can be anyone.
pub fn dev_sign_in(jwt: &JwtAuth, body: &Bytes) -> Response {
    let Some(dev) = &jwt.dev else {
        return json_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "no development sign-in here",
        );
    };
    let name = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned));
    let Some(name) = name.filter(|n| valid_user(n)) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "send {\"name\": \"...\"}: a non-empty name of at most 256 bytes without control characters",
        );
    };
    let issued = dev.issue(&name);
    tracing::info!(ttl_secs = dev.ttl().as_secs(), "development sign-in");
    let mut response = axum::Json(issued).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": code, "message": message });
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer(&headers(&["Bearer abc"])), Ok("abc"));
        assert_eq!(bearer(&headers(&["bearer  abc "])), Ok("abc"));
        assert_eq!(bearer(&headers(&[])), Err(TokenError::Missing));
        assert_eq!(bearer(&headers(&["abc"])), Err(TokenError::NotBearer));
        assert_eq!(bearer(&headers(&["Basic abc"])), Err(TokenError::NotBearer));
        assert_eq!(bearer(&headers(&["Bearer "])), Err(TokenError::NotBearer));
        assert_eq!(
            bearer(&headers(&["Bearer a", "Bearer b"])),
            Err(TokenError::NotBearer)
        );
    }

    #[test]
    fn modes() {
        let none = Auth::None;
        assert_eq!(none.user(&headers(&[])), Ok(String::new()));
        let jwt = Auth::Jwt(Arc::new(JwtAuth::dev_secret(
            &[7; 32],
            None,
            None,
            Duration::from_secs(60),
        )));
        let token = jwt
            .jwt()
            .unwrap()
            .dev
            .as_ref()
            .unwrap()
            .issue("alice")
            .token;
        assert_eq!(
            jwt.user(&headers(&[&format!("Bearer {token}")])),
            Ok("alice".into())
        );
        assert_eq!(jwt.user(&headers(&[])), Err(TokenError::Missing));
        assert_eq!(
            jwt.socket_user(Some(&token), &headers(&[])),
            Ok("alice".into())
        );
        assert_eq!(
            jwt.socket_user(None, &headers(&[])),
            Err(TokenError::MissingSocketToken)
        );
        assert_eq!(jwt.policy().max_spaces_per_user, Some(1000));
        assert_eq!(none.policy().max_spaces_per_user, None);
    }
}
