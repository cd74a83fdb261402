//! Who is asking. The functions never see a token in the `jwt` auth mode: API Gateway's
//! authorizers verify it first, and hand the functions the subject (`sub`):
//!
//! - HTTP API routes: the HTTP API's JWT authorizer (issuer and audience from the
//!   template), whose verified claims arrive in the event's
//!   `requestContext.authorizer.jwt.claims`;
//! - WebSocket `$connect`: a Lambda REQUEST authorizer, the `ws-authorizer` binary
//!   ([`JwtVerifier`], [`authorize_connect`]), given the token in the `token` query
//!   parameter (browsers cannot set headers on a WebSocket); its context
//!   `{"user": <sub>}` arrives in the `$connect` event's `requestContext.authorizer.user`.
//!
//! In the `none` mode every request is anonymous ([`sync_core::auth::ANONYMOUS`]), as
//! in the tutorial: anyone who has a space's ID may use it.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sync_core::auth::{AccessPolicy, MAX_USER_BYTES};
use tokio::sync::RwLock;

/// How requests are authenticated (`AUTH_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Nobody signs in: every request is anonymous and every space is open to anyone
    /// who has its ID. The tutorial's mode; never for real users.
    #[default]
    None,
    /// A JWT on every request, verified by API Gateway's authorizers.
    Jwt,
}

impl AuthMode {
    pub fn parse(raw: &str) -> Option<AuthMode> {
        match raw.trim() {
            "none" => Some(AuthMode::None),
            "jwt" => Some(AuthMode::Jwt),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Jwt => "jwt",
        }
    }

    /// The access policy of the service in this mode: without sign-in, spaces are open
    /// to anyone with their link; with it, new spaces are their owner's and members'.
    pub fn access_policy(self) -> AccessPolicy {
        match self {
            AuthMode::None => AccessPolicy::anonymous(),
            AuthMode::Jwt => AccessPolicy::signed_in(),
        }
    }

    /// Says at a cold start which mode the function runs in; loudly for `none`.
    pub fn announce(self) {
        match self {
            AuthMode::None => tracing::warn!(
                auth_mode = "none",
                "AUTH_MODE is none: NO AUTHENTICATION. Every request is anonymous and anyone \
                 who knows a space's ID can read and change it. For tutorials only; deploy \
                 with AuthMode=jwt for real users"
            ),
            AuthMode::Jwt => tracing::info!(
                auth_mode = "jwt",
                "requests carry JWTs verified by API Gateway"
            ),
        }
    }
}

/// Why a request has no usable user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MissingUser {
    #[error("no verified token: sign in and send it as a bearer token")]
    NoClaims,
    #[error("the token has no subject (sub)")]
    NoSubject,
    #[error("the token's subject is longer than {MAX_USER_BYTES} bytes")]
    SubjectTooLong,
}

/// A verified subject as a user ID: present, non-empty and of bounded length.
pub fn user_of_subject(sub: Option<&str>) -> Result<&str, MissingUser> {
    match sub {
        None | Some("") => Err(MissingUser::NoSubject),
        Some(s) if s.len() > MAX_USER_BYTES => Err(MissingUser::SubjectTooLong),
        Some(s) => Ok(s),
    }
}

// ---------------------------------------------------------------------------------------
// The WebSocket `$connect` authorizer: a JWT in the query string, verified against the
// issuer's JWKS.
// ---------------------------------------------------------------------------------------

/// The query parameter of `$connect` that carries the token: the authorizer's identity
/// source, `route.request.querystring.token`.
pub const TOKEN_QUERY_PARAMETER: &str = "token";
/// The authorizer context key that carries the user to `$connect`
/// (`requestContext.authorizer.user`).
pub const USER_CONTEXT_KEY: &str = "user";
/// Algorithms accepted: what Cognito and common OIDC providers sign with. Never `none`
/// or an HMAC (whose "key" would be public in a JWKS).
pub const ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;
/// Bounds on fetching the JWKS.
const JWKS_TIMEOUT: Duration = Duration::from_secs(3);
const JWKS_MAX_BYTES: usize = 256 * 1024;
/// Least time between two fetches of the JWKS for a key it did not hold (a rotation):
/// tokens with made-up key IDs must not make every invocation fetch.
pub const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// What tokens the authorizer accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    pub issuer: String,
    pub audiences: Vec<String>,
    /// Where the issuer's keys are: `<issuer>/.well-known/jwks.json` unless overridden.
    pub jwks_url: String,
}

impl JwtSettings {
    pub fn new(issuer: String, audiences: Vec<String>, jwks_url: Option<String>) -> Self {
        let jwks_url = jwks_url
            .unwrap_or_else(|| format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')));
        Self {
            issuer,
            audiences,
            jwks_url,
        }
    }
}

/// Why a token is refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no token")]
    Missing,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token was signed with algorithm {0:?}, which is not accepted")]
    Algorithm(Algorithm),
    #[error("the token's key {0:?} is not among the issuer's keys")]
    UnknownKey(Option<String>),
    #[error("the token is not for this audience")]
    Audience,
    #[error("{0}")]
    Subject(#[from] MissingUser),
    /// Not the token's fault: the issuer's keys could not be had.
    #[error("cannot read the issuer's keys from {url}: {reason}")]
    Jwks { url: String, reason: String },
}

impl TokenError {
    /// Whether the token itself is at fault (answered 401), rather than the keys' source.
    pub fn is_token_fault(&self) -> bool {
        !matches!(self, TokenError::Jwks { .. })
    }
}

/// The claims the authorizer reads. `exp` and `iss` are checked by `jsonwebtoken`.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    /// A string or a list of strings.
    #[serde(default)]
    aud: Option<serde_json::Value>,
    /// What Cognito's access tokens carry instead of `aud`.
    #[serde(default)]
    client_id: Option<String>,
}

/// The issuer's keys, fetched at the first token and kept for the execution
/// environment's life (a cold start fetches them anew); fetched again for a key ID they
/// do not hold (a rotation), at most once a [`JWKS_REFRESH_INTERVAL`].
struct KeyCache {
    keys: Option<JwkSet>,
    fetched_at: Option<Instant>,
}

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<hyper::body::Bytes>,
>;

/// Verifies the JWTs of `$connect`.
#[derive(Clone)]
pub struct JwtVerifier {
    settings: Arc<JwtSettings>,
    cache: Arc<RwLock<KeyCache>>,
    client: HttpsClient,
    refresh_interval: Duration,
}

impl JwtVerifier {
    pub fn new(settings: JwtSettings) -> Result<Self, std::io::Error> {
        // jsonwebtoken picks its crypto from its features; should another package of a
        // build enable a second backend, this one is still the one used.
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(Self {
            settings: Arc::new(settings),
            cache: Arc::new(RwLock::new(KeyCache {
                keys: None,
                fetched_at: None,
            })),
            client,
            refresh_interval: JWKS_REFRESH_INTERVAL,
        })
    }

    /// Fetch the keys again for an unknown key ID at most once per `interval` (default
    /// [`JWKS_REFRESH_INTERVAL`]).
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    /// The user (`sub`) of a valid token: signed by one of the issuer's keys with an
    /// accepted algorithm, from the issuer, for one of the audiences, not expired.
    pub async fn verify(&self, token: &str) -> Result<String, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(TokenError::Algorithm(header.alg));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        // The audience is checked below, as API Gateway's JWT authorizer checks it.
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        if !self.audience_matches(&data.claims) {
            return Err(TokenError::Audience);
        }
        Ok(user_of_subject(data.claims.sub.as_deref())?.to_owned())
    }

    /// API Gateway's rule: `aud` must name one of the audiences; a token without `aud`
    /// is checked on `client_id` instead (Cognito's access tokens).
    fn audience_matches(&self, claims: &Claims) -> bool {
        let accepted = |a: &str| self.settings.audiences.iter().any(|x| x == a);
        match &claims.aud {
            Some(serde_json::Value::String(a)) => accepted(a),
            Some(serde_json::Value::Array(list)) => {
                list.iter().filter_map(|a| a.as_str()).any(accepted)
            }
            Some(_) => false,
            None => claims.client_id.as_deref().is_some_and(accepted),
        }
    }

    /// The issuer's key `kid` (the only key when the token names none).
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, TokenError> {
        {
            let cache = self.cache.read().await;
            if let Some(found) = cache.keys.as_ref().and_then(|keys| pick(keys, kid)) {
                return Ok(found);
            }
        }
        let mut cache = self.cache.write().await;
        // Another invocation may have fetched meanwhile.
        if let Some(found) = cache.keys.as_ref().and_then(|keys| pick(keys, kid)) {
            return Ok(found);
        }
        let recently = cache
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.refresh_interval);
        if cache.keys.is_some() && recently {
            return Err(TokenError::UnknownKey(kid.map(str::to_owned)));
        }
        let keys = self.fetch().await?;
        cache.fetched_at = Some(Instant::now());
        let found = pick(&keys, kid);
        tracing::info!(url = %self.settings.jwks_url, keys = keys.keys.len(), "issuer keys loaded");
        cache.keys = Some(keys);
        found.ok_or_else(|| TokenError::UnknownKey(kid.map(str::to_owned)))
    }

    async fn fetch(&self) -> Result<JwkSet, TokenError> {
        let url = &self.settings.jwks_url;
        let failed = |reason: String| TokenError::Jwks {
            url: url.clone(),
            reason,
        };
        let uri: hyper::Uri = url.parse().map_err(|e| failed(format!("{e}")))?;
        let response = tokio::time::timeout(JWKS_TIMEOUT, self.client.get(uri))
            .await
            .map_err(|_| failed("timed out".into()))?
            .map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {}", response.status())));
        }
        let body = http_body_util::Limited::new(response.into_body(), JWKS_MAX_BYTES);
        let bytes = tokio::time::timeout(JWKS_TIMEOUT, http_body_util::BodyExt::collect(body))
            .await
            .map_err(|_| failed("timed out".into()))?
            .map_err(|e| failed(e.to_string()))?
            .to_bytes();
        serde_json::from_slice::<JwkSet>(&bytes).map_err(|e| failed(format!("not a JWKS: {e}")))
    }
}

fn pick(keys: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => keys.find(kid).cloned(),
        None if keys.keys.len() == 1 => keys.keys.first().cloned(),
        None => None,
    }
}

/// A Lambda REQUEST authorizer's input, as API Gateway sends it for a WebSocket API's
/// `$connect`: only what the authorizer reads (the event carries much more).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerRequest {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// `arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/$connect`.
    pub method_arn: String,
    #[serde(default)]
    pub query_string_parameters: Option<HashMap<String, String>>,
}

impl AuthorizerRequest {
    pub fn token(&self) -> Option<&str> {
        self.query_string_parameters
            .as_ref()?
            .get(TOKEN_QUERY_PARAMETER)
            .map(String::as_str)
    }
}

/// A REQUEST authorizer's answer: an IAM policy on the method ARN, and the context
/// handed to the integration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    pub principal_id: String,
    pub policy_document: PolicyDocument,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: String,
    pub statement: Vec<PolicyStatement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyStatement {
    pub action: String,
    pub effect: String,
    pub resource: String,
}

impl AuthorizerResponse {
    fn policy(principal: &str, effect: &str, method_arn: &str) -> Self {
        Self {
            principal_id: principal.to_owned(),
            policy_document: PolicyDocument {
                version: "2012-10-17".to_owned(),
                statement: vec![PolicyStatement {
                    action: "execute-api:Invoke".to_owned(),
                    effect: effect.to_owned(),
                    resource: method_arn.to_owned(),
                }],
            },
            context: BTreeMap::new(),
        }
    }

    /// Lets `user` connect: Allow on this `$connect` only, the user in the context.
    pub fn allow(user: &str, method_arn: &str) -> Self {
        let mut response = Self::policy(user, "Allow", method_arn);
        response
            .context
            .insert(USER_CONTEXT_KEY.to_owned(), user.to_owned());
        response
    }

    /// Refuses the connection (API Gateway answers 403).
    pub fn deny(method_arn: &str) -> Self {
        Self::policy("anonymous", "Deny", method_arn)
    }

    pub fn is_allow(&self) -> bool {
        self.policy_document
            .statement
            .iter()
            .all(|s| s.effect == "Allow")
            && !self.policy_document.statement.is_empty()
    }
}

/// What the authorizer answers when the token is missing, invalid or expired: the error
/// `Unauthorized`, which API Gateway turns into 401 (its documented contract for Lambda
/// authorizers), so that the client knows to sign in again.
#[derive(Debug, thiserror::Error)]
#[error("Unauthorized")]
pub struct Unauthorized;

/// The authorizer's failures: the token's (401) or the keys' source's (API Gateway
/// answers 500; the client retries).
#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    #[error(transparent)]
    Unauthorized(#[from] Unauthorized),
    #[error("the issuer's keys are unavailable")]
    KeysUnavailable,
}

/// The error reported to Lambda: `errorMessage` `Unauthorized` is what API Gateway
/// answers 401 for; anything else is a 500.
impl From<AuthorizerError> for lambda_runtime::Diagnostic {
    fn from(e: AuthorizerError) -> Self {
        let error_type = match e {
            AuthorizerError::Unauthorized(_) => "Unauthorized",
            AuthorizerError::KeysUnavailable => "KeysUnavailable",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Decides one `$connect`: Allow with the user for a valid token; `Unauthorized` (401)
/// for a missing or bad one; Deny (403) for a request that is not a `$connect` of a
/// WebSocket API (nothing else may use this authorizer).
pub async fn authorize_connect(
    verifier: &JwtVerifier,
    request: &AuthorizerRequest,
) -> Result<AuthorizerResponse, AuthorizerError> {
    if request.kind.as_deref().is_some_and(|k| k != "REQUEST")
        || !request.method_arn.ends_with("/$connect")
    {
        tracing::warn!(method_arn = %request.method_arn, "not a $connect request: denied");
        return Ok(AuthorizerResponse::deny(&request.method_arn));
    }
    match verifier.verify(request.token().unwrap_or("")).await {
        Ok(user) => {
            tracing::info!("token accepted");
            Ok(AuthorizerResponse::allow(&user, &request.method_arn))
        }
        Err(e) if e.is_token_fault() => {
            tracing::info!(reason = %e, "token refused");
            Err(Unauthorized.into())
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot verify tokens");
            Err(AuthorizerError::KeysUnavailable)
        }
    }
}
