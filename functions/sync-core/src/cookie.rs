//! Pull cookies that nobody can forge.
//!
//! A cookie is the space version a pull answered at. The Replicache client compares object
//! cookies by their `order` field, so the server hands out `{"order": <version>, "sig":
//! <tag>}`, where the tag is an HMAC-SHA256 of the space ID and the version under a key
//! from configuration. A signature matters for one decision only: raising a space's
//! version past a cookie from the future (after a restore, the client holds a cookie the
//! data no longer reaches). Without a valid signature such a cookie is refused, so one
//! request can never move a space's version (a forged 2^53-1 would otherwise wedge every
//! client of the space). A cookie at or below the version needs no trust: it only selects
//! which changes a pull sends, and reveals nothing a pull from `null` would not.

use crate::ids::SpaceId;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the signature kept in a cookie: 128 bits, as many as a space ID.
const TAG_BYTES: usize = 16;
/// Shortest key accepted: 256 bits of the secret's text.
pub const MIN_KEY_BYTES: usize = 32;
/// Separates what is signed from any other use of the same key.
const DOMAIN: &[u8] = b"replicache-sync cookie v1\0";

/// The cookie of a pull response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedCookie {
    /// The space version: what the client compares cookies by.
    pub order: u64,
    pub sig: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieKeyError {
    #[error("the cookie secret holds no key")]
    Empty,
    #[error("a cookie key must be at least {MIN_KEY_BYTES} bytes; one has {0}")]
    TooShort(usize),
}

/// The keys cookies are signed with: the first signs, every one verifies, so a key can be
/// rotated without turning the cookies clients hold into strangers.
#[derive(Clone)]
pub struct CookieKeys {
    keys: Vec<HmacSha256>,
}

impl std::fmt::Debug for CookieKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material.
        f.debug_struct("CookieKeys")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl CookieKeys {
    /// Keys from a secret's text: whitespace-separated keys, the signing key first, each
    /// at least [`MIN_KEY_BYTES`] bytes (any characters; a generated secret is fine as is).
    pub fn from_secret_text(text: &str) -> Result<Self, CookieKeyError> {
        let keys = text
            .split_whitespace()
            .map(|key| {
                if key.len() < MIN_KEY_BYTES {
                    return Err(CookieKeyError::TooShort(key.len()));
                }
                Ok(hmac_of(key.as_bytes()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(CookieKeyError::Empty);
        }
        Ok(Self { keys })
    }

    /// A random key. Cookies it signs are honoured only by this process: for tests, and
    /// for a server that was given no key (a restore then cannot raise versions).
    pub fn random() -> Self {
        Self {
            keys: vec![hmac_of(&rand::random::<[u8; 32]>())],
        }
    }

    /// A new random secret text for [`CookieKeys::from_secret_text`]: 256 bits, base64url.
    pub fn generate_secret_text() -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    }

    pub fn sign(&self, space: &SpaceId, order: u64) -> SignedCookie {
        let tag = tag(&self.keys[0], space, order);
        SignedCookie {
            order,
            sig: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES]),
        }
    }

    /// Whether `sig` is what one of the keys signs for `order` in `space` (compared in
    /// constant time).
    pub fn verify(&self, space: &SpaceId, order: u64, sig: &str) -> bool {
        let Ok(given) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        if given.len() != TAG_BYTES {
            return false;
        }
        self.keys.iter().any(|key| {
            let mut mac = key.clone();
            update(&mut mac, space, order);
            mac.verify_truncated_left(&given).is_ok()
        })
    }
}

fn hmac_of(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

fn update(mac: &mut HmacSha256, space: &SpaceId, order: u64) {
    mac.update(DOMAIN);
    mac.update(space.as_str().as_bytes());
    mac.update(b"\0");
    mac.update(&order.to_be_bytes());
}

fn tag(key: &HmacSha256, space: &SpaceId, order: u64) -> Vec<u8> {
    let mut mac = key.clone();
    update(&mut mac, space, order);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(s: &str) -> SpaceId {
        SpaceId::parse(s).unwrap()
    }

    #[test]
    fn signatures_bind_key_space_and_order() {
        let keys = CookieKeys::from_secret_text(&"k".repeat(32)).unwrap();
        let cookie = keys.sign(&space("a"), 42);
        assert_eq!(cookie.order, 42);
        assert!(keys.verify(&space("a"), 42, &cookie.sig));
        assert!(!keys.verify(&space("a"), 43, &cookie.sig));
        assert!(!keys.verify(&space("b"), 42, &cookie.sig));
        let other = CookieKeys::from_secret_text(&"x".repeat(32)).unwrap();
        assert!(!other.verify(&space("a"), 42, &cookie.sig));
        for forged in ["", "AAAA", &"A".repeat(22), "not base64!"] {
            assert!(!keys.verify(&space("a"), 42, forged), "{forged}");
        }
    }

    #[test]
    fn rotation_keeps_old_cookies_valid() {
        let old = CookieKeys::from_secret_text(&"o".repeat(40)).unwrap();
        let cookie = old.sign(&space("s"), 7);
        let rotated =
            CookieKeys::from_secret_text(&format!("{} {}", "n".repeat(40), "o".repeat(40)))
                .unwrap();
        assert!(rotated.verify(&space("s"), 7, &cookie.sig));
        assert_ne!(
            rotated.sign(&space("s"), 7).sig,
            cookie.sig,
            "the new key signs"
        );
    }

    #[test]
    fn weak_or_missing_keys_are_refused() {
        assert_eq!(
            CookieKeys::from_secret_text("short").unwrap_err(),
            CookieKeyError::TooShort(5)
        );
        assert_eq!(
            CookieKeys::from_secret_text(" \n").unwrap_err(),
            CookieKeyError::Empty
        );
        let generated = CookieKeys::generate_secret_text();
        assert!(CookieKeys::from_secret_text(&generated).is_ok());
        assert!(!format!("{:?}", CookieKeys::random()).contains('['));
    }
}
