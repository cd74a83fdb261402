//! Identifiers that arrive from clients, validated once at the edge.

use base64::Engine as _;
use rand::RngCore as _;
use std::fmt;

/// Longest accepted space ID. Generated IDs are 22 characters.
pub const MAX_SPACE_ID_LEN: usize = 64;
/// Longest accepted client or client-group ID (Replicache generates ~26 characters).
pub const MAX_CLIENT_ID_LEN: usize = 128;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} is longer than {max} characters")]
    TooLong { what: &'static str, max: usize },
    #[error("{what} may contain only letters, digits, '-' and '_'")]
    BadCharacters { what: &'static str },
}

/// The ID of a space: URL-safe, 1..=64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpaceId(String);

impl SpaceId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        validate_token(raw, "spaceID", MAX_SPACE_ID_LEN)?;
        Ok(Self(raw.to_owned()))
    }

    /// A new unguessable ID: 128 random bits, base64url without padding.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SpaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Client and client-group IDs are opaque to us but end up in storage keys, so they are
/// held to the same safe alphabet as space IDs.
pub fn validate_client_id(raw: &str, what: &'static str) -> Result<(), IdError> {
    validate_token(raw, what, MAX_CLIENT_ID_LEN)
}

fn validate_token(raw: &str, what: &'static str, max: usize) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty { what });
    }
    if raw.len() > max {
        return Err(IdError::TooLong { what, max });
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(IdError::BadCharacters { what });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = SpaceId::generate();
        let b = SpaceId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 22);
        assert_eq!(SpaceId::parse(a.as_str()), Ok(a));
    }

    #[test]
    fn refuses_bad_ids() {
        assert!(matches!(SpaceId::parse(""), Err(IdError::Empty { .. })));
        assert!(matches!(
            SpaceId::parse(&"a".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
        assert!(matches!(
            SpaceId::parse("a/b"),
            Err(IdError::BadCharacters { .. })
        ));
        assert!(matches!(
            SpaceId::parse("späce"),
            Err(IdError::BadCharacters { .. })
        ));
        assert!(validate_client_id("abc-DEF_12", "clientID").is_ok());
    }
}
