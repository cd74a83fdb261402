//! The WebSocket `$connect` authorizer (`ws-authorizer`): REQUEST authorizer events of the
//! shape API Gateway sends (AWS's documented example), tokens signed in the test with key
//! pairs generated here (RS256 and ES256), and the issuer's JWKS served over HTTP on
//! 127.0.0.1 (`JWKS_URL`). A valid token is allowed with its user in the context; an
//! expired one, another issuer's or audience's, a bad signature or no token is answered
//! `Unauthorized` (API Gateway's 401), and the real binary says so to the Lambda Runtime
//! API as API Gateway expects.

use aws_lc_rs::encoding::AsDer as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lambda_handlers::auth::{
    AuthorizerError, AuthorizerRequest, AuthorizerResponse, JwtSettings, JwtVerifier, TokenError,
    authorize_connect,
};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example";
const AUDIENCE: &str = "exampleclientid";
const METHOD_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/live/$connect";

// ---------------------------------------------------------------------------------------
// Keys, generated per test run.
// ---------------------------------------------------------------------------------------

/// One DER element: (tag, content, the rest after it).
fn der_element(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = input[0];
    let (len, header) = match input[1] {
        short if short < 0x80 => (usize::from(short), 2),
        long => {
            let n = usize::from(long & 0x7f);
            let len = input[2..2 + n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + n)
        }
    };
    (tag, &input[header..header + len], &input[header + len..])
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (what jsonwebtoken takes
/// for RSA): SEQUENCE { version, algorithm, OCTET STRING { RSAPrivateKey } }.
fn pkcs1_of_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
    let (tag, info, _) = der_element(pkcs8);
    assert_eq!(tag, 0x30, "a SEQUENCE");
    let (_, _, rest) = der_element(info); // version
    let (_, _, rest) = der_element(rest); // AlgorithmIdentifier
    let (tag, key, _) = der_element(rest);
    assert_eq!(tag, 0x04, "an OCTET STRING");
    key.to_vec()
}

struct Signer {
    key: EncodingKey,
    alg: Algorithm,
    kid: String,
}

impl Signer {
    fn rsa(kid: &str) -> Signer {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = pair.as_der().unwrap();
        Signer {
            key: EncodingKey::from_rsa_der(&pkcs1_of_pkcs8(pkcs8.as_ref())),
            alg: Algorithm::RS256,
            kid: kid.to_owned(),
        }
    }

    fn ec(kid: &str) -> Signer {
        let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        )
        .unwrap();
        Signer {
            key: EncodingKey::from_ec_der(pair.to_pkcs8v1().unwrap().as_ref()),
            alg: Algorithm::ES256,
            kid: kid.to_owned(),
        }
    }

    /// The public key, as a JWKS lists it.
    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(match self.alg {
            Algorithm::ES256 => KeyAlgorithm::ES256,
            _ => KeyAlgorithm::RS256,
        });
        jwk
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The claims of a Cognito ID token of `user`, valid for an hour.
fn claims(user: &str) -> Value {
    json!({
        "sub": user,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "token_use": "id",
        "cognito:username": user,
        "auth_time": now() - 10,
        "iat": now() - 10,
        "exp": now() + 3600,
    })
}

// ---------------------------------------------------------------------------------------
// The issuer's JWKS on 127.0.0.1.
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct JwksState {
    body: Arc<Mutex<(StatusCode, String)>>,
    fetches: Arc<AtomicUsize>,
}

struct JwksServer {
    state: JwksState,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start(keys: &[&Signer]) -> JwksServer {
        let state = JwksState {
            body: Arc::new(Mutex::new((StatusCode::OK, String::new()))),
            fetches: Arc::default(),
        };
        let app = Router::new()
            .route(
                "/us-east-1_Example/.well-known/jwks.json",
                get(|State(s): State<JwksState>| async move {
                    s.fetches.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = s.body.lock().unwrap().clone();
                    (status, [("content-type", "application/json")], body)
                }),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let server = JwksServer { state, addr, task };
        server.serve(keys);
        server
    }

    fn serve(&self, keys: &[&Signer]) {
        let set = JwkSet {
            keys: keys.iter().map(|k| k.jwk()).collect(),
        };
        *self.state.body.lock().unwrap() = (StatusCode::OK, serde_json::to_string(&set).unwrap());
    }

    fn fail(&self) {
        *self.state.body.lock().unwrap() = (StatusCode::SERVICE_UNAVAILABLE, "{}".to_owned());
    }

    fn url(&self) -> String {
        format!(
            "http://{}/us-east-1_Example/.well-known/jwks.json",
            self.addr
        )
    }

    fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn verifier(jwks: &JwksServer) -> JwtVerifier {
    JwtVerifier::new(JwtSettings::new(
        ISSUER.to_owned(),
        vec!["otherclient".to_owned(), AUDIENCE.to_owned()],
        Some(jwks.url()),
    ))
    .unwrap()
}

// ---------------------------------------------------------------------------------------
// Events: AWS's documented input of a WebSocket REQUEST authorizer.
// ---------------------------------------------------------------------------------------

fn authorizer_event(token: Option<&str>) -> Value {
    let mut query = json!({ "spaceID": "f3b4c8d2e1a0" });
    if let Some(token) = token {
        query["token"] = json!(token);
    }
    let multi: serde_json::Map<String, Value> = query
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), json!([v])))
        .collect();
    json!({
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": {
            "Connection": "upgrade",
            "content-length": "0",
            "Host": "abcdef123.execute-api.us-east-1.amazonaws.com",
            "Origin": "https://app.example.com",
            "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
            "Upgrade": "websocket",
            "X-Amzn-Trace-Id": "Root=1-65c6747f-2e2b0b6f1c2d3e4f5a6b7c8d",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Port": "443",
            "X-Forwarded-Proto": "https"
        },
        "multiValueHeaders": {
            "Connection": ["upgrade"],
            "Host": ["abcdef123.execute-api.us-east-1.amazonaws.com"],
            "Upgrade": ["websocket"]
        },
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi,
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "extendedRequestId": "ABCD1234=",
            "requestTime": "09/Feb/2026:18:11:43 +0000",
            "messageDirection": "IN",
            "stage": "live",
            "connectedAt": 1707502303419u64,
            "requestTimeEpoch": 1707502303420u64,
            "identity": { "sourceIp": "203.0.113.7" },
            "requestId": "ABCD1234=",
            "domainName": "abcdef123.execute-api.us-east-1.amazonaws.com",
            "connectionId": "AAAAAAAAAAE=",
            "apiId": "abcdef123"
        }
    })
}

fn request(token: Option<&str>) -> AuthorizerRequest {
    serde_json::from_value(authorizer_event(token)).expect("a REQUEST authorizer event")
}

async fn decide(
    verifier: &JwtVerifier,
    token: Option<&str>,
) -> Result<AuthorizerResponse, AuthorizerError> {
    authorize_connect(verifier, &request(token)).await
}

fn assert_allowed(answer: Result<AuthorizerResponse, AuthorizerError>, user: &str) {
    let response = answer.unwrap_or_else(|e| panic!("{user}: refused: {e:?}"));
    // The documented output: an IAM policy allowing execute-api:Invoke on this $connect,
    // and the context $connect reads.
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({
            "principalId": user,
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": METHOD_ARN
                }]
            },
            "context": { "user": user }
        })
    );
    assert!(response.is_allow());
}

fn assert_unauthorized(answer: Result<AuthorizerResponse, AuthorizerError>, case: &str) {
    match answer {
        Err(e @ AuthorizerError::Unauthorized(_)) => {
            // What API Gateway reads to answer 401.
            let diagnostic = lambda_runtime::Diagnostic::from(e);
            assert_eq!(diagnostic.error_message, "Unauthorized", "{case}");
        }
        other => panic!("{case}: expected Unauthorized, got {other:?}"),
    }
}

#[tokio::test]
async fn valid_tokens_are_allowed_with_their_user() {
    let rsa = Signer::rsa("rsa-1");
    let ec = Signer::ec("ec-1");
    let jwks = JwksServer::start(&[&rsa, &ec]).await;
    let v = verifier(&jwks);
    assert_allowed(decide(&v, Some(&rsa.sign(&claims("alice")))).await, "alice");
    assert_allowed(decide(&v, Some(&ec.sign(&claims("bob")))).await, "bob");
    // aud as a list; a Cognito access token (no aud, the app client in client_id).
    let mut listed = claims("carol");
    listed["aud"] = json!(["someone-else", AUDIENCE]);
    assert_allowed(decide(&v, Some(&rsa.sign(&listed))).await, "carol");
    let mut access = claims("dave");
    access.as_object_mut().unwrap().remove("aud");
    access["client_id"] = json!(AUDIENCE);
    access["token_use"] = json!("access");
    assert_allowed(decide(&v, Some(&rsa.sign(&access))).await, "dave");
    // Within the clock skew allowed.
    let mut just_expired = claims("erin");
    just_expired["exp"] = json!(now() - 5);
    assert_allowed(decide(&v, Some(&ec.sign(&just_expired))).await, "erin");
    // The keys were fetched once for all of these.
    assert_eq!(jwks.fetches(), 1);
}

#[tokio::test]
async fn bad_tokens_are_unauthorized() {
    let rsa = Signer::rsa("rsa-1");
    let ec = Signer::ec("ec-1");
    let jwks = JwksServer::start(&[&rsa, &ec]).await;
    let v = verifier(&jwks);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims("alice");
        change(&mut c);
        c
    };
    // Another key claiming a published key ID: a bad signature.
    let impostor = Signer::rsa("rsa-1");
    let impostor_ec = Signer::ec("ec-1");
    let valid = rsa.sign(&claims("alice"));
    let (head, rest) = valid.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let tampered_payload = {
        use base64::Engine as _;
        let forged = serde_json::to_vec(&with(&|c| c["sub"] = json!("mallory"))).unwrap();
        format!(
            "{head}.{}.{signature}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged)
        )
    };
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        jsonwebtoken::encode(
            &header,
            &claims("alice"),
            &EncodingKey::from_secret(b"anyone can make this").unwrap(),
        )
        .unwrap()
    };
    let unsigned = {
        use base64::Engine as _;
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
        };
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"})),
            b64(&claims("alice"))
        )
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("empty token", Some(String::new())),
        ("not a JWT", Some("not-a-jwt".into())),
        (
            "expired",
            Some(rsa.sign(&with(&|c| c["exp"] = json!(now() - 3600)))),
        ),
        (
            "no exp",
            Some(rsa.sign(&with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }))),
        ),
        (
            "not yet valid",
            Some(ec.sign(&with(&|c| c["nbf"] = json!(now() + 3600)))),
        ),
        (
            "another issuer",
            Some(rsa.sign(&with(&|c| {
                c["iss"] = json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other")
            }))),
        ),
        (
            "no issuer",
            Some(rsa.sign(&with(&|c| {
                c.as_object_mut().unwrap().remove("iss");
            }))),
        ),
        (
            "another audience",
            Some(rsa.sign(&with(&|c| c["aud"] = json!("someone-else")))),
        ),
        (
            "aud present but wrong, client_id right",
            Some(rsa.sign(&with(&|c| {
                c["aud"] = json!("someone-else");
                c["client_id"] = json!(AUDIENCE);
            }))),
        ),
        (
            "no audience at all",
            Some(rsa.sign(&with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }))),
        ),
        (
            "no subject",
            Some(rsa.sign(&with(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            }))),
        ),
        (
            "empty subject",
            Some(rsa.sign(&with(&|c| c["sub"] = json!("")))),
        ),
        ("bad RSA signature", Some(impostor.sign(&claims("alice")))),
        ("bad EC signature", Some(impostor_ec.sign(&claims("alice")))),
        ("tampered payload", Some(tampered_payload)),
        ("HS256 with a made-up secret", Some(hs256)),
        ("alg none", Some(unsigned)),
        (
            "unknown key",
            Some(Signer::ec("ec-2").sign(&claims("alice"))),
        ),
    ];
    for (case, token) in &cases {
        assert_unauthorized(decide(&v, token.as_deref()).await, case);
    }
    // An unknown key ID made the keys be fetched once more, not once per token.
    assert!(jwks.fetches() <= 2, "{} fetches", jwks.fetches());
    for _ in 0..5 {
        assert_unauthorized(
            decide(&v, Some(&Signer::ec("ec-3").sign(&claims("alice")))).await,
            "unknown keys again",
        );
    }
    assert!(jwks.fetches() <= 2, "{} fetches", jwks.fetches());
}

#[tokio::test]
async fn rotated_keys_are_fetched_and_an_outage_is_not_the_tokens_fault() {
    let old = Signer::rsa("2026-01");
    let new = Signer::rsa("2026-02");
    let jwks = JwksServer::start(&[&old]).await;
    let v = verifier(&jwks).with_refresh_interval(Duration::ZERO);
    assert_allowed(decide(&v, Some(&old.sign(&claims("alice")))).await, "alice");
    // The issuer rotates: a token of the new key makes the keys be fetched again.
    jwks.serve(&[&old, &new]);
    assert_allowed(decide(&v, Some(&new.sign(&claims("bob")))).await, "bob");
    assert_eq!(jwks.fetches(), 2);

    // The issuer's keys cannot be had (a fresh cold start): not a 401, which would send
    // the client to sign in again, but an error (API Gateway answers 500; the client
    // retries).
    let jwks = JwksServer::start(&[&old]).await;
    jwks.fail();
    let v = verifier(&jwks);
    match decide(&v, Some(&old.sign(&claims("alice")))).await {
        Err(e @ AuthorizerError::KeysUnavailable) => {
            let diagnostic = lambda_runtime::Diagnostic::from(e);
            assert_ne!(diagnostic.error_message, "Unauthorized");
        }
        other => panic!("expected KeysUnavailable, got {other:?}"),
    }
    let e = v.verify(&old.sign(&claims("alice"))).await.unwrap_err();
    assert!(
        matches!(e, TokenError::Jwks { .. }) && !e.is_token_fault(),
        "{e}"
    );
    // Bad tokens are still told apart without the keys.
    assert_unauthorized(decide(&v, None).await, "no token");
}

#[tokio::test]
async fn only_connect_requests_are_allowed() {
    let rsa = Signer::rsa("rsa-1");
    let jwks = JwksServer::start(&[&rsa]).await;
    let v = verifier(&jwks);
    let mut event = authorizer_event(Some(&rsa.sign(&claims("alice"))));
    event["methodArn"] =
        json!("arn:aws:execute-api:us-east-1:123456789012:abcdef123/live/$default");
    let response = authorize_connect(&v, &serde_json::from_value(event).unwrap())
        .await
        .unwrap();
    assert!(!response.is_allow());
    assert_eq!(response.policy_document.statement[0].effect, "Deny");
    assert!(response.context.is_empty());
}

// ---------------------------------------------------------------------------------------
// The real binary, under an emulation of the Lambda Runtime API.
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct RuntimeApi {
    events: Arc<Mutex<Vec<Value>>>,
    answers: tokio::sync::mpsc::UnboundedSender<(String, bool, Value)>,
}

async fn next_invocation(State(api): State<RuntimeApi>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let next = {
        let mut events = api.events.lock().unwrap();
        if events.is_empty() {
            None
        } else {
            Some((events.len(), events.remove(0)))
        }
    };
    let Some((n, event)) = next else {
        std::future::pending::<()>().await;
        return StatusCode::NO_CONTENT.into_response();
    };
    let deadline = (SystemTime::now() + Duration::from_secs(10))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    (
        [
            ("lambda-runtime-aws-request-id", format!("request-{n}")),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:ws-authorizer".to_owned(),
            ),
            ("content-type", "application/json".to_owned()),
        ],
        event.to_string(),
    )
        .into_response()
}

#[tokio::test]
async fn the_binary_answers_api_gateway_as_documented() {
    use axum::extract::Path;
    use axum::routing::post;
    let rsa = Signer::rsa("rsa-1");
    let jwks = JwksServer::start(&[&rsa]).await;
    let mut expired = claims("alice");
    expired["exp"] = json!(now() - 3600);
    let events = vec![
        authorizer_event(Some(&rsa.sign(&claims("alice")))),
        authorizer_event(Some(&rsa.sign(&expired))),
        authorizer_event(None),
    ];
    let total = events.len();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let api = RuntimeApi {
        events: Arc::new(Mutex::new(events)),
        answers: tx,
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(
                |State(api): State<RuntimeApi>, Path(id): Path<String>, body: String| async move {
                    let value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let _ = api.answers.send((id, true, value));
                    StatusCode::ACCEPTED
                },
            ),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(
                |State(api): State<RuntimeApi>, Path(id): Path<String>, body: String| async move {
                    let value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let _ = api.answers.send((id, false, value));
                    StatusCode::ACCEPTED
                },
            ),
        )
        .route(
            "/2018-06-01/runtime/init/error",
            post(|State(api): State<RuntimeApi>, body: String| async move {
                let _ = api.answers.send(("init".into(), false, json!(body)));
                StatusCode::ACCEPTED
            }),
        )
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    // The binary gets this test process's PATH and nothing else of its environment.
    #[allow(clippy::disallowed_methods)]
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ws-authorizer"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "ws-authorizer")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "info")
        .env("JWT_ISSUER", ISSUER)
        .env("JWT_AUDIENCE", format!("otherclient,{AUDIENCE}"))
        .env("JWKS_URL", jwks.url())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the ws-authorizer binary");
    let mut answers = Vec::new();
    while answers.len() < total {
        let answer = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("an answer within 60 s")
            .expect("the runtime API emulation");
        assert_ne!(answer.0, "init", "the cold start failed: {}", answer.2);
        answers.push(answer);
    }
    let _ = child.kill().await;
    server.abort();
    answers.sort_by(|a, b| b.0.cmp(&a.0));
    // The valid token: the Allow policy with the user.
    let (_, ok, allow) = &answers[0];
    assert!(*ok, "{allow}");
    assert_eq!(allow["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(
        allow["policyDocument"]["Statement"][0]["Resource"],
        METHOD_ARN
    );
    assert_eq!(allow["context"], json!({"user": "alice"}));
    // Expired, and missing: the error "Unauthorized", which API Gateway answers 401.
    for (_, ok, error) in &answers[1..] {
        assert!(!*ok, "{error}");
        assert_eq!(error["errorMessage"], "Unauthorized", "{error}");
    }
}
