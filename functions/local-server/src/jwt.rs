//! JSON Web Tokens in `AUTH_MODE=jwt`: verifying the bearer tokens of every API request,
//! and issuing the development sign-in's.
//!
//! Keys are either an HS256 development secret (a file, created with 256 random bits
//! when missing) or the public keys of an identity provider, a JSON Web Key Set file
//! (RS256/ES256 keys picked by the token's `kid`), such as a Cognito user pool's
//! `.well-known/jwks.json`. A token must carry `exp` and `sub` (the user); `iss` and
//! `aud` are checked when configured.

use crate::config::{JwtConfig, JwtKeys};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use sync_core::space_routes::valid_user;

/// The development secret's file inside `DATA_DIR` when `JWT_SECRET_FILE` is unset.
pub const DEFAULT_SECRET_FILE_NAME: &str = "jwt-secret";
/// Shortest development secret accepted: 256 bits.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or create the JWT secret {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the JWT secret {path} is shorter than {MIN_SECRET_BYTES} bytes")]
    WeakSecret { path: PathBuf },
    #[error("cannot read the JWKS file {path}: {source}")]
    JwksIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the JWKS file {path} is not usable: {message}")]
    Jwks { path: PathBuf, message: String },
}

/// Why a token is refused; the message of the 401 (it never repeats the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("this request needs a token: send the header `Authorization: Bearer <token>`")]
    Missing,
    #[error("the poke socket needs a token: add `&token=<token>` to its URL")]
    MissingSocketToken,
    #[error("the Authorization header must be one `Bearer <token>`")]
    NotBearer,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired: sign in again")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(String),
    #[error("the token's subject (`sub`) is not a valid user ID")]
    BadSubject,
    #[error("the token names no key this server knows (`kid`)")]
    UnknownKey,
    #[error("the token's algorithm is not accepted here")]
    WrongAlgorithm,
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.into_kind() {
            K::InvalidSignature => TokenError::BadSignature,
            K::ExpiredSignature => TokenError::Expired,
            K::ImmatureSignature => TokenError::NotYetValid,
            K::InvalidIssuer => TokenError::WrongIssuer,
            K::InvalidAudience => TokenError::WrongAudience,
            K::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
            K::InvalidAlgorithm | K::InvalidAlgorithmName | K::UnsupportedAlgorithm => {
                TokenError::WrongAlgorithm
            }
            // A key of one family offered a token of another: a forgery attempt or a
            // misconfigured provider, either way not this server's token.
            K::InvalidKeyFormat | K::InvalidRsaKey(_) | K::InvalidEcdsaKey | K::InvalidEddsaKey => {
                TokenError::BadSignature
            }
            _ => TokenError::Malformed,
        }
    }
}

/// The claims read from a verified token (`exp`, `nbf`, `iss` and `aud` are checked by
/// the library).
#[derive(Debug, Deserialize)]
struct Claims {
    // Optional here so that a missing one is reported as such by the validation.
    #[serde(default)]
    sub: Option<serde_json::Value>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    /// Cognito's access tokens name their app client here instead of in `aud`.
    #[serde(default)]
    client_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

enum Keys {
    Secret(DecodingKey),
    /// By `kid`: the key and the one algorithm it signs with.
    Jwks(HashMap<String, (DecodingKey, Algorithm)>),
}

/// Verifies bearer tokens and names their user.
pub struct Verifier {
    keys: Keys,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = match &self.keys {
            Keys::Secret(_) => "HS256 secret".to_owned(),
            Keys::Jwks(keys) => format!("{} JWKS keys", keys.len()),
        };
        f.debug_struct("Verifier")
            .field("keys", &keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl Verifier {
    /// Tokens signed with the HS256 `secret`.
    pub fn with_secret(secret: &[u8], issuer: Option<String>, audience: Option<String>) -> Self {
        install_crypto_provider();
        Self {
            keys: Keys::Secret(
                DecodingKey::from_secret(secret)
                    .unwrap_or_else(|_| unreachable!("an HMAC secret of any length is a key")),
            ),
            issuer,
            audience,
        }
    }

    /// Tokens signed with the keys of the JSON Web Key Set `jwks` (its text). Keys for
    /// encryption, without a `kid`, or of other algorithms than RS256/RS384/RS512/
    /// PS256/PS384/PS512/ES256/ES384 are left out; a set with none left is refused.
    pub fn with_jwks(
        jwks: &str,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Result<Self, String> {
        install_crypto_provider();
        let set: JwkSet =
            serde_json::from_str(jwks).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                tracing::warn!("JWKS: a key without `kid` is ignored");
                continue;
            };
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let Some(algorithm) = key_algorithm(jwk) else {
                tracing::warn!(kid = %kid, "JWKS: a key of an algorithm not accepted is ignored");
                continue;
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {kid:?}: {e}"))?;
            keys.insert(kid, (key, algorithm));
        }
        if keys.is_empty() {
            return Err("it holds no RS256 or ES256 signing key with a `kid`".into());
        }
        Ok(Self {
            keys: Keys::Jwks(keys),
            issuer,
            audience,
        })
    }

    /// The user (`sub`) of a valid `token`.
    pub fn verify(&self, token: &str) -> Result<String, TokenError> {
        let (key, algorithm) = match &self.keys {
            Keys::Secret(key) => (key, Algorithm::HS256),
            Keys::Jwks(keys) => {
                let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName
                    | jsonwebtoken::errors::ErrorKind::UnsupportedAlgorithm => {
                        TokenError::WrongAlgorithm
                    }
                    _ => TokenError::Malformed,
                })?;
                let kid = header.kid.ok_or(TokenError::UnknownKey)?;
                let (key, algorithm) = keys.get(&kid).ok_or(TokenError::UnknownKey)?;
                (key, *algorithm)
            }
        };
        let mut validation = Validation::new(algorithm);
        // The server's own clock decides, to the second: the development tokens are
        // checked by the clock that issued them, and a provider's token that looks
        // expired a moment early is renewed by the client (401, `getAuth`).
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".into());
        }
        match &self.audience {
            // An `aud`, when present, must match; otherwise Cognito's `client_id` must
            // (checked below), as API Gateway's JWT authorizer does.
            Some(audience) => validation.set_audience(&[audience]),
            // Without an expected audience, a token's own `aud` says nothing to us.
            None => validation.validate_aud = false,
        }
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)?.claims;
        if let Some(audience) = &self.audience
            && claims.aud.is_none()
            && claims.client_id.as_deref() != Some(audience.as_str())
        {
            return Err(TokenError::WrongAudience);
        }
        match claims.sub {
            Some(serde_json::Value::String(sub)) if valid_user(&sub) => Ok(sub),
            _ => Err(TokenError::BadSubject),
        }
    }
}

/// The algorithm a JWKS key signs with: its `alg`, or what its type implies.
fn key_algorithm(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        _ => return None,
    };
    let algorithm = match jwk.common.key_algorithm {
        None => implied,
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(KeyAlgorithm::RS384) => Algorithm::RS384,
        Some(KeyAlgorithm::RS512) => Algorithm::RS512,
        Some(KeyAlgorithm::PS256) => Algorithm::PS256,
        Some(KeyAlgorithm::PS384) => Algorithm::PS384,
        Some(KeyAlgorithm::PS512) => Algorithm::PS512,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::ES384) => Algorithm::ES384,
        Some(_) => return None,
    };
    // The key's type and its `alg` must agree (an RSA key never verifies ES256).
    (algorithm.family() == implied.family()).then_some(algorithm)
}

/// A token issued by the development sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issued {
    pub token: String,
    pub user: String,
    /// When it expires, in seconds since the Unix epoch.
    #[serde(rename = "expiresAt")]
    pub expires_at: u64,
}

/// Issues HS256 tokens for any name: the development sign-in.
pub struct DevIssuer {
    key: EncodingKey,
    ttl: Duration,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `user` (a valid user ID), valid for the issuer's lifetime from now.
    pub fn issue(&self, user: &str) -> Issued {
        let now = unix_now();
        let exp = now.saturating_add(self.ttl.as_secs());
        let claims = IssuedClaims {
            sub: user,
            iat: now,
            exp,
            iss: self.issuer.as_deref(),
            aud: self.audience.as_deref(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .unwrap_or_else(|e| unreachable!("HS256 signing cannot fail: {e}"));
        Issued {
            token,
            user: user.to_owned(),
            expires_at: exp,
        }
    }
}

/// Token verification in `AUTH_MODE=jwt`, and the development sign-in when the keys are
/// the development secret.
#[derive(Debug)]
pub struct JwtAuth {
    pub verifier: Verifier,
    /// Present only with the HS256 development secret, never with a JWKS.
    pub dev: Option<DevIssuer>,
}

impl JwtAuth {
    /// The development secret `secret`: tokens signed with it verify, and the development
    /// sign-in issues them.
    pub fn dev_secret(
        secret: &[u8],
        issuer: Option<String>,
        audience: Option<String>,
        ttl: Duration,
    ) -> Self {
        let dev = DevIssuer {
            key: EncodingKey::from_secret(secret)
                .unwrap_or_else(|_| unreachable!("an HMAC secret of any length is a key")),
            ttl,
            issuer: issuer.clone(),
            audience: audience.clone(),
        };
        Self {
            verifier: Verifier::with_secret(secret, issuer, audience),
            dev: Some(dev),
        }
    }

    /// The keys of the JSON Web Key Set `jwks` (its text); no development sign-in.
    pub fn jwks(
        jwks: &str,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Result<Self, String> {
        Ok(Self {
            verifier: Verifier::with_jwks(jwks, issuer, audience)?,
            dev: None,
        })
    }

    /// What `config` asks for, reading (or creating) its key file.
    pub fn load(config: &JwtConfig) -> Result<Self, KeyError> {
        let issuer = config.issuer.clone();
        let audience = config.audience.clone();
        match &config.keys {
            JwtKeys::DevSecret(path) => {
                let secret = load_or_create_secret(path)?;
                Ok(Self::dev_secret(
                    &secret,
                    issuer,
                    audience,
                    config.dev_token_ttl,
                ))
            }
            JwtKeys::Jwks(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| KeyError::JwksIo {
                    path: path.clone(),
                    source,
                })?;
                Self::jwks(&text, issuer, audience).map_err(|message| KeyError::Jwks {
                    path: path.clone(),
                    message,
                })
            }
        }
    }
}

/// The development secret in `path` (its trimmed text is the HS256 key), creating the
/// file with 256 random bits, readable by its owner only, when it does not exist.
pub fn load_or_create_secret(path: &Path) -> Result<Vec<u8>, KeyError> {
    let (text, created) = crate::cookie_secret::read_or_create(path, || {
        rand::random::<[u8; 32]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
    .map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    if created {
        tracing::info!(path = %path.display(), "created a new JWT development secret");
    }
    let secret = text.trim().as_bytes().to_vec();
    if secret.len() < MIN_SECRET_BYTES {
        return Err(KeyError::WeakSecret {
            path: path.to_owned(),
        });
    }
    Ok(secret)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// jsonwebtoken picks its crypto backend from its features; should another crate of the
/// build turn on a second backend, the choice is made here rather than left to fail at
/// the first token.
fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn sign(claims: &serde_json::Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap()
    }

    fn in_an_hour() -> u64 {
        unix_now() + 3600
    }

    #[test]
    fn issued_tokens_verify_and_name_their_user() {
        let auth = JwtAuth::dev_secret(SECRET, None, None, Duration::from_secs(60));
        let issued = auth.dev.as_ref().unwrap().issue("alice");
        assert_eq!(issued.user, "alice");
        assert!(issued.expires_at >= unix_now() + 59);
        assert_eq!(auth.verifier.verify(&issued.token), Ok("alice".into()));
    }

    #[test]
    fn refusals_say_why() {
        let v = Verifier::with_secret(SECRET, None, None);
        let exp = in_an_hour();
        assert_eq!(v.verify("nonsense"), Err(TokenError::Malformed));
        assert_eq!(v.verify("a.b.c"), Err(TokenError::Malformed));
        let other = sign(
            &json!({"sub": "a", "exp": exp}),
            b"another secret, 32 bytes long!!!",
        );
        assert_eq!(v.verify(&other), Err(TokenError::BadSignature));
        let expired = sign(&json!({"sub": "a", "exp": unix_now() - 1}), SECRET);
        assert_eq!(v.verify(&expired), Err(TokenError::Expired));
        let no_exp = sign(&json!({"sub": "a"}), SECRET);
        assert_eq!(
            v.verify(&no_exp),
            Err(TokenError::MissingClaim("exp".into()))
        );
        let no_sub = sign(&json!({"exp": exp}), SECRET);
        assert_eq!(
            v.verify(&no_sub),
            Err(TokenError::MissingClaim("sub".into()))
        );
        let numeric = sign(&json!({"sub": 7, "exp": exp}), SECRET);
        assert!(v.verify(&numeric).is_err());
        for bad in [json!(""), json!("a\u{7}b"), json!("x".repeat(257))] {
            let token = sign(&json!({"sub": bad, "exp": exp}), SECRET);
            assert_eq!(v.verify(&token), Err(TokenError::BadSubject), "{bad}");
        }
        let later = sign(&json!({"sub": "a", "exp": exp, "nbf": exp - 60}), SECRET);
        assert_eq!(v.verify(&later), Err(TokenError::NotYetValid));
        // `alg: none` and other algorithms are refused.
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(format!(r#"{{"sub":"a","exp":{exp}}}"#).as_bytes())
        );
        assert!(v.verify(&none).is_err());
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &json!({"sub": "a", "exp": exp}),
            &EncodingKey::from_secret(SECRET).unwrap(),
        )
        .unwrap();
        assert_eq!(v.verify(&hs512), Err(TokenError::WrongAlgorithm));
    }

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn issuer_and_audience_when_configured() {
        let v = Verifier::with_secret(SECRET, Some("https://iss".into()), Some("app".into()));
        let exp = in_an_hour();
        let ok = sign(
            &json!({"sub": "a", "exp": exp, "iss": "https://iss", "aud": "app"}),
            SECRET,
        );
        assert_eq!(v.verify(&ok), Ok("a".into()));
        let cognito_access = sign(
            &json!({"sub": "a", "exp": exp, "iss": "https://iss", "client_id": "app"}),
            SECRET,
        );
        assert_eq!(v.verify(&cognito_access), Ok("a".into()));
        let wrong_iss = sign(
            &json!({"sub": "a", "exp": exp, "iss": "https://evil", "aud": "app"}),
            SECRET,
        );
        assert_eq!(v.verify(&wrong_iss), Err(TokenError::WrongIssuer));
        let no_iss = sign(&json!({"sub": "a", "exp": exp, "aud": "app"}), SECRET);
        assert_eq!(
            v.verify(&no_iss),
            Err(TokenError::MissingClaim("iss".into()))
        );
        let wrong_aud = sign(
            &json!({"sub": "a", "exp": exp, "iss": "https://iss", "aud": "other"}),
            SECRET,
        );
        assert_eq!(v.verify(&wrong_aud), Err(TokenError::WrongAudience));
        let no_aud = sign(
            &json!({"sub": "a", "exp": exp, "iss": "https://iss"}),
            SECRET,
        );
        assert_eq!(v.verify(&no_aud), Err(TokenError::WrongAudience));
        let wrong_client = sign(
            &json!({"sub": "a", "exp": exp, "iss": "https://iss", "client_id": "other"}),
            SECRET,
        );
        assert_eq!(v.verify(&wrong_client), Err(TokenError::WrongAudience));

        // Unconfigured, neither is checked.
        let open = Verifier::with_secret(SECRET, None, None);
        assert_eq!(open.verify(&wrong_aud), Ok("a".into()));

        // The development sign-in's tokens carry both.
        let auth = JwtAuth::dev_secret(
            SECRET,
            Some("https://iss".into()),
            Some("app".into()),
            Duration::from_secs(60),
        );
        let issued = auth.dev.as_ref().unwrap().issue("bob");
        assert_eq!(auth.verifier.verify(&issued.token), Ok("bob".into()));
    }

    #[test]
    fn a_jwks_without_usable_keys_is_refused() {
        assert!(Verifier::with_jwks("{}", None, None).is_err());
        assert!(Verifier::with_jwks(r#"{"keys": []}"#, None, None).is_err());
        let symmetric = r#"{"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0c2VjcmV0"}]}"#;
        assert!(
            Verifier::with_jwks(symmetric, None, None).is_err(),
            "no HMAC keys from a JWKS"
        );
    }

    #[test]
    fn the_secret_file_is_created_once_with_256_bits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join(DEFAULT_SECRET_FILE_NAME);
        let first = load_or_create_secret(&path).unwrap();
        assert_eq!(first.len(), 64, "32 random bytes as hex");
        assert_eq!(load_or_create_secret(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by its owner only");
        }
        let weak = dir.path().join("weak");
        std::fs::write(&weak, "short\n").unwrap();
        assert!(matches!(
            load_or_create_secret(&weak),
            Err(KeyError::WeakSecret { .. })
        ));
    }
}
