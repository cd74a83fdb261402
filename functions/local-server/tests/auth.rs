//! `AUTH_MODE=jwt` over real HTTP and WebSocket: who may sync what, the 401s, JWKS keys,
//! the development sign-in, the cap on poke sockets per space; and `AUTH_MODE=none` as
//! before.

mod common;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use common::{Reply, TestServer, pull_body, push_body, space_id, test_options};
use futures::StreamExt as _;
use local_server::auth::Auth;
use local_server::config::AllowedOrigins;
use local_server::jwt::JwtAuth;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store_sqlite::SqliteStore;
use sync_core::Store;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

const SECRET: &[u8] = b"test-secret-0123456789abcdef-0123456789";
const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "sync-app";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An HS256 token with `claims`, signed with `secret`.
fn hs256(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap()
}

fn sqlite() -> Arc<dyn Store> {
    Arc::new(SqliteStore::in_memory().unwrap())
}

/// A server in `jwt` mode with `auth`.
async fn jwt_server(store: Arc<dyn Store>, auth: JwtAuth) -> TestServer {
    let mut options = test_options(AllowedOrigins::Any);
    options.auth = Auth::Jwt(Arc::new(auth));
    TestServer::start_with_options(store, options).await
}

/// A server with the development secret (no issuer or audience), tokens for an hour.
async fn dev_server(store: Arc<dyn Store>) -> TestServer {
    jwt_server(
        store,
        JwtAuth::dev_secret(SECRET, None, None, Duration::from_secs(3600)),
    )
    .await
}

/// A token for `user` from the server's development sign-in.
async fn sign_in(server: &TestServer, user: &str) -> String {
    let reply = server
        .post("/api/dev/signIn", &json!({ "name": user }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["user"], user);
    body["token"].as_str().unwrap().to_owned()
}

/// POSTs `body` with `token` as the bearer (none when `None`).
async fn call(server: &TestServer, token: Option<&str>, path: &str, body: &Value) -> Reply {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    server
        .request(
            Method::POST,
            path,
            &headers,
            serde_json::to_vec(body).unwrap(),
        )
        .await
}

fn push_path(space: &str) -> String {
    format!("/api/replicache/push?spaceID={space}")
}

fn pull_path(space: &str) -> String {
    format!("/api/replicache/pull?spaceID={space}")
}

fn access_path(space: &str) -> String {
    format!("/api/replicache/spaceAccess?spaceID={space}")
}

async fn create_space(server: &TestServer, token: &str, body: Value) -> String {
    let reply = call(server, Some(token), "/api/replicache/createSpace", &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["spaceID"].as_str().unwrap().to_owned()
}

async fn exists(server: &TestServer, token: &str, space: &str) -> bool {
    let reply = call(
        server,
        Some(token),
        "/api/replicache/spaceExists",
        &json!({ "spaceID": space }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["spaceExists"].as_bool().unwrap()
}

/// Everything the owner can see of a space: a full pull of their group, and its access.
async fn owner_view(server: &TestServer, owner: &str, space: &str, group: &str) -> Value {
    let pulled = call(
        server,
        Some(owner),
        &pull_path(space),
        &pull_body(group, json!(null)),
    )
    .await;
    assert_eq!(pulled.status, StatusCode::OK, "{}", pulled.text());
    let access = call(server, Some(owner), &access_path(space), &json!({})).await;
    assert_eq!(access.status, StatusCode::OK, "{}", access.text());
    json!({ "pull": pulled.json(), "access": access.json() })
}

async fn assert_unchanged(server: &TestServer, owner: &str, space: &str, before: &Value) {
    assert_eq!(&owner_view(server, owner, space, "gA").await, before);
}

fn assert_refused(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(reply.json()["error"], code, "{}", reply.text());
}

/// Opens a poke socket; the upgrade answer's status, or the refusal's status and body.
async fn open_socket(
    server: &TestServer,
    space: &str,
    token: Option<&str>,
) -> Result<Socket, (StatusCode, Value)> {
    let query = match token {
        Some(token) => format!("?spaceID={space}&token={token}"),
        None => format!("?spaceID={space}"),
    };
    match connect_async(server.ws_url(&query)).await {
        Ok((socket, response)) => {
            assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
            Ok(socket)
        }
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            Err((response.status(), serde_json::from_slice(&body).unwrap()))
        }
        Err(other) => panic!("poke socket: {other}"),
    }
}

async fn next_text(socket: &mut Socket, wait: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??;
        match frame.unwrap() {
            Message::Text(text) => return Some(text.to_string()),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The cross-user table.

/// Alice owns a private space; Bob is a signed-in stranger, then a member; Carol stays a
/// stranger. Every refusal has its status and changes nothing the owner can see.
async fn cross_user_table(server: &TestServer) {
    let alice = sign_in(server, "alice").await;
    let bob = sign_in(server, "bob").await;
    let carol = sign_in(server, "carol").await;

    // New spaces are private in jwt mode.
    let space = create_space(server, &alice, json!({})).await;
    let pushed = call(
        server,
        Some(&alice),
        &push_path(&space),
        &push_body("gA", "cA", 1..=3),
    )
    .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.text());
    let before = owner_view(server, &alice, &space, "gA").await;
    assert_eq!(
        before["access"],
        json!({"owner": "alice", "members": [], "link": "members"})
    );
    assert_eq!(before["pull"]["lastMutationIDChanges"], json!({"cA": 3}));

    // A stranger cannot learn that it exists: every answer is the unknown space's.
    let unknown = "no-such-space";
    assert!(exists(server, &alice, &space).await);
    assert!(!exists(server, &bob, &space).await);
    assert!(!exists(server, &bob, unknown).await);
    for (path, body) in [
        (pull_path(&space), pull_body("gB", json!(null))),
        (pull_path(&space), pull_body("gA", json!(null))),
        (push_path(&space), push_body("gB", "cB", 1..=1)),
        // Into Alice's group, as a client of it: still only "not found".
        (push_path(&space), push_body("gA", "cA", 4..=4)),
        (push_path(&space), push_body("gA", "cB", 1..=1)),
        (access_path(&space), json!({})),
        (access_path(&space), json!({"add": ["bob"]})),
        (access_path(&space), json!({"link": "open"})),
        (access_path(&space), json!({"remove": ["alice"]})),
    ] {
        let refused = call(server, Some(&bob), &path, &body).await;
        assert_refused(&refused, StatusCode::NOT_FOUND, "SpaceNotFound");
        let unknown_path = path.replace(&space, unknown);
        let for_unknown = call(server, Some(&bob), &unknown_path, &body).await;
        assert_eq!(
            (refused.status, refused.json()),
            (for_unknown.status, for_unknown.json()),
            "{path}: the same answer as for a space that does not exist"
        );
        assert_unchanged(server, &alice, &space, &before).await;
    }
    let refused = open_socket(server, &space, Some(&bob)).await.err().unwrap();
    assert_eq!(refused.0, StatusCode::NOT_FOUND);
    assert_eq!(refused.1["error"], "SpaceNotFound");
    assert_eq!(
        open_socket(server, unknown, Some(&bob))
            .await
            .err()
            .unwrap(),
        refused
    );
    assert_eq!(server.hub.connection_count(&space_id(&space)), 0);
    assert_unchanged(server, &alice, &space, &before).await;

    // The owner makes Bob a member.
    let added = call(
        server,
        Some(&alice),
        &access_path(&space),
        &json!({"add": ["bob"]}),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text());
    assert_eq!(
        added.json(),
        json!({"owner": "alice", "members": ["bob"], "link": "members"})
    );
    let before = owner_view(server, &alice, &space, "gA").await;

    // A member sees the space, but not into Alice's client group, and may not change
    // who has access.
    assert!(exists(server, &bob, &space).await);
    for (path, body) in [
        (push_path(&space), push_body("gA", "cA", 4..=4)),
        (push_path(&space), push_body("gA", "cB", 1..=1)),
        (pull_path(&space), pull_body("gA", json!(null))),
        (access_path(&space), json!({"add": ["carol"]})),
        (access_path(&space), json!({"remove": ["bob"]})),
        (access_path(&space), json!({"link": "open"})),
    ] {
        let refused = call(server, Some(&bob), &path, &body).await;
        assert_refused(&refused, StatusCode::FORBIDDEN, "Forbidden");
        assert_unchanged(server, &alice, &space, &before).await;
    }
    // Reading who has access is fine.
    let read = call(server, Some(&bob), &access_path(&space), &json!({})).await;
    assert_eq!(read.json(), before["access"]);

    // A member syncs with a group of their own, and is poked by the owner's pushes.
    let mut bob_socket = open_socket(server, &space, Some(&bob)).await.unwrap();
    let mut alice_socket = open_socket(server, &space, Some(&alice)).await.unwrap();
    let pushed = call(
        server,
        Some(&bob),
        &push_path(&space),
        &push_body("gB", "cB", 1..=2),
    )
    .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.text());
    assert_eq!(
        next_text(&mut alice_socket, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("poke")
    );
    let pushed = call(
        server,
        Some(&alice),
        &push_path(&space),
        &push_body("gA", "cA", 4..=4),
    )
    .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.text());
    assert_eq!(
        next_text(&mut bob_socket, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("poke")
    );
    let bob_pull = call(
        server,
        Some(&bob),
        &pull_path(&space),
        &pull_body("gB", json!(null)),
    )
    .await;
    assert_eq!(bob_pull.status, StatusCode::OK);
    let bob_pull = bob_pull.json();
    assert_eq!(
        bob_pull["lastMutationIDChanges"],
        json!({"cB": 2}),
        "only his own group's"
    );
    assert_eq!(
        bob_pull["patch"][1],
        json!({"op": "put", "key": "count", "value": 6})
    );
    let alice_pull = owner_view(server, &alice, &space, "gA").await;
    assert_eq!(
        alice_pull["pull"]["lastMutationIDChanges"],
        json!({"cA": 4})
    );
    // Alice may not use Bob's group either.
    let refused = call(
        server,
        Some(&alice),
        &push_path(&space),
        &push_body("gB", "cB", 3..=3),
    )
    .await;
    assert_refused(&refused, StatusCode::FORBIDDEN, "Forbidden");

    // Carol is still a stranger.
    assert!(!exists(server, &carol, &space).await);
    let refused = call(
        server,
        Some(&carol),
        &pull_path(&space),
        &pull_body("gC", json!(null)),
    )
    .await;
    assert_refused(&refused, StatusCode::NOT_FOUND, "SpaceNotFound");

    // Removed, Bob is a stranger again.
    let removed = call(
        server,
        Some(&alice),
        &access_path(&space),
        &json!({"remove": ["bob"]}),
    )
    .await;
    assert_eq!(removed.json()["members"], json!([]));
    assert!(!exists(server, &bob, &space).await);
    let refused = call(
        server,
        Some(&bob),
        &push_path(&space),
        &push_body("gB", "cB", 3..=3),
    )
    .await;
    assert_refused(&refused, StatusCode::NOT_FOUND, "SpaceNotFound");
    drop((bob_socket, alice_socket));

    // A space open to anyone with its link behaves as without sign-in, except that only
    // its owner changes who has access.
    let open = create_space(server, &alice, json!({"link": "open"})).await;
    assert!(exists(server, &carol, &open).await);
    let pushed = call(
        server,
        Some(&carol),
        &push_path(&open),
        &push_body("gC", "cC", 1..=2),
    )
    .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.text());
    let pulled = call(
        server,
        Some(&bob),
        &pull_path(&open),
        &pull_body("gB2", json!(null)),
    )
    .await;
    assert_eq!(
        pulled.json()["patch"][1],
        json!({"op": "put", "key": "count", "value": 2})
    );
    open_socket(server, &open, Some(&carol)).await.unwrap();
    let refused = call(
        server,
        Some(&carol),
        &access_path(&open),
        &json!({"add": ["carol"]}),
    )
    .await;
    assert_refused(&refused, StatusCode::FORBIDDEN, "Forbidden");
    let refused = call(
        server,
        Some(&bob),
        &push_path(&open),
        &push_body("gC", "cC", 3..=3),
    )
    .await;
    assert_refused(&refused, StatusCode::FORBIDDEN, "Forbidden");
}

#[tokio::test]
async fn cross_user_table_on_sqlite() {
    let server = dev_server(sqlite()).await;
    cross_user_table(&server).await;
}

#[tokio::test]
async fn cross_user_table_on_dynamodb() {
    let dynamo = test_support::LocalDynamo::start().await;
    let client = dynamo.client().await;
    let table = dynamo.fresh_table(&client, "auth").await;
    let store = store_dynamodb::DynamoStore::new(client, table);
    let server = dev_server(Arc::new(store)).await;
    cross_user_table(&server).await;
}

// ---------------------------------------------------------------------------------------
// 401s.

/// Every route, and the poke socket, answers `token` with a 401 that the browser can
/// read (CORS), that asks for a bearer token, and that does not repeat the token.
async fn assert_unauthorized_everywhere(
    server: &TestServer,
    space: &str,
    token: Option<&str>,
    says: &str,
) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    for (path, body) in [
        ("/api/replicache/createSpace".to_owned(), json!({})),
        (
            "/api/replicache/spaceExists".to_owned(),
            json!({"spaceID": space}),
        ),
        (access_path(space), json!({})),
        (access_path(space), json!({"add": ["mallory"]})),
        (push_path(space), push_body("gM", "cM", 1..=1)),
        (pull_path(space), pull_body("gM", json!(null))),
    ] {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("origin", "http://app.test"),
        ];
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        let reply = server
            .request(
                Method::POST,
                &path,
                &headers,
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
        assert_refused(&reply, StatusCode::UNAUTHORIZED, "Unauthorized");
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains(says),
            "{path}: {message:?} should say {says:?}"
        );
        assert!(
            reply.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{path}"
        );
        assert_eq!(reply.headers["access-control-allow-origin"], "*", "{path}");
        if let Some(token) = token.filter(|t| t.len() > 3) {
            assert!(!reply.text().contains(token), "the token is never echoed");
        }
    }
    let refused = open_socket(server, space, token).await.err().unwrap();
    assert_eq!(refused.0, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.1["error"], "Unauthorized");
    assert_eq!(server.hub.connection_count(&space_id(space)), 0);
}

#[tokio::test]
async fn missing_malformed_wrongly_signed_and_expired_tokens_get_401() {
    let server = jwt_server(
        sqlite(),
        JwtAuth::dev_secret(SECRET, None, None, Duration::from_secs(1)),
    )
    .await;
    // The sign-in's tokens live a second: the work is done with a longer one.
    let short = sign_in(&server, "alice").await;
    let alice = hs256(&json!({"sub": "alice", "exp": now() + 600}), SECRET);
    let space = create_space(&server, &alice, json!({})).await;
    let pushed = call(
        &server,
        Some(&alice),
        &push_path(&space),
        &push_body("gA", "cA", 1..=2),
    )
    .await;
    assert_eq!(pushed.status, StatusCode::OK);
    let before = owner_view(&server, &alice, &space, "gA").await;

    let exp = now() + 600;
    assert_unauthorized_everywhere(&server, &space, None, "needs a token").await;
    assert_unauthorized_everywhere(&server, &space, Some("not-a-jwt"), "not a well-formed JWT")
        .await;
    assert_unauthorized_everywhere(&server, &space, Some("a.b.c"), "not a well-formed JWT").await;
    let forged = hs256(
        &json!({"sub": "alice", "exp": exp}),
        b"not the server's secret, but long",
    );
    assert_unauthorized_everywhere(&server, &space, Some(&forged), "signature").await;
    let no_exp = hs256(&json!({"sub": "alice"}), SECRET);
    assert_unauthorized_everywhere(&server, &space, Some(&no_exp), "`exp`").await;
    let no_sub = hs256(&json!({"exp": exp}), SECRET);
    assert_unauthorized_everywhere(&server, &space, Some(&no_sub), "`sub`").await;
    let empty_sub = hs256(&json!({"sub": "", "exp": exp}), SECRET);
    assert_unauthorized_everywhere(&server, &space, Some(&empty_sub), "subject").await;
    let expired = hs256(&json!({"sub": "alice", "exp": now() - 5}), SECRET);
    assert_unauthorized_everywhere(&server, &space, Some(&expired), "expired").await;

    // A header that is not `Bearer <token>`.
    let reply = server
        .request(
            Method::POST,
            &pull_path(&space),
            &[
                ("content-type", "application/json"),
                ("authorization", &short),
            ],
            serde_json::to_vec(&pull_body("gA", json!(null))).unwrap(),
        )
        .await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "Unauthorized");

    // The sign-in's own token, once its second is over.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_unauthorized_everywhere(&server, &space, Some(&short), "expired").await;

    // Nothing changed.
    assert_eq!(owner_view(&server, &alice, &space, "gA").await, before);
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let server = jwt_server(
        sqlite(),
        JwtAuth::dev_secret(
            SECRET,
            Some(ISSUER.into()),
            Some(AUDIENCE.into()),
            Duration::from_secs(3600),
        ),
    )
    .await;
    let exp = now() + 600;
    let good = hs256(
        &json!({"sub": "alice", "exp": exp, "iss": ISSUER, "aud": AUDIENCE}),
        SECRET,
    );
    let space = create_space(&server, &good, json!({})).await;
    // Cognito's access tokens carry `client_id` instead of `aud`.
    let access_token = hs256(
        &json!({"sub": "alice", "exp": exp, "iss": ISSUER, "client_id": AUDIENCE}),
        SECRET,
    );
    assert!(exists(&server, &access_token, &space).await);
    // The development sign-in's tokens carry both.
    let signed_in = sign_in(&server, "alice").await;
    assert!(exists(&server, &signed_in, &space).await);

    let wrong_issuer = hs256(
        &json!({"sub": "alice", "exp": exp, "iss": "https://evil.test", "aud": AUDIENCE}),
        SECRET,
    );
    assert_unauthorized_everywhere(&server, &space, Some(&wrong_issuer), "another issuer").await;
    let no_issuer = hs256(
        &json!({"sub": "alice", "exp": exp, "aud": AUDIENCE}),
        SECRET,
    );
    assert_unauthorized_everywhere(&server, &space, Some(&no_issuer), "`iss`").await;
    let wrong_audience = hs256(
        &json!({"sub": "alice", "exp": exp, "iss": ISSUER, "aud": "other-app"}),
        SECRET,
    );
    assert_unauthorized_everywhere(&server, &space, Some(&wrong_audience), "another audience")
        .await;
    let no_audience = hs256(&json!({"sub": "alice", "exp": exp, "iss": ISSUER}), SECRET);
    assert_unauthorized_everywhere(&server, &space, Some(&no_audience), "another audience").await;
}

// ---------------------------------------------------------------------------------------
// JWKS.

struct RsaKey {
    kid: String,
    pair: aws_lc_rs::rsa::KeyPair,
}

impl RsaKey {
    fn generate(kid: &str) -> Self {
        Self {
            kid: kid.to_owned(),
            pair: aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
        }
    }

    fn jwk(&self) -> Value {
        use aws_lc_rs::signature::KeyPair as _;
        let public = self.pair.public_key();
        json!({"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig",
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero())})
    }

    /// An RS256 token with `claims`, its header naming `kid`.
    fn sign(&self, kid: &str, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            b64(json!({"alg": "RS256", "typ": "JWT", "kid": kid})
                .to_string()
                .as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .unwrap();
        format!("{message}.{}", b64(&signature))
    }
}

struct EcKey {
    kid: String,
    pair: aws_lc_rs::signature::EcdsaKeyPair,
}

impl EcKey {
    fn generate(kid: &str) -> Self {
        Self {
            kid: kid.to_owned(),
            pair: aws_lc_rs::signature::EcdsaKeyPair::generate(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            )
            .unwrap(),
        }
    }

    fn jwk(&self) -> Value {
        use aws_lc_rs::signature::KeyPair as _;
        // Uncompressed point: 0x04, x, y.
        let point = self.pair.public_key().as_ref();
        json!({"kty": "EC", "kid": self.kid, "crv": "P-256",
            "x": b64(&point[1..33]), "y": b64(&point[33..65])})
    }

    fn sign(&self, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            b64(json!({"alg": "ES256", "typ": "JWT", "kid": self.kid})
                .to_string()
                .as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = self
            .pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), message.as_bytes())
            .unwrap();
        format!("{message}.{}", b64(signature.as_ref()))
    }
}

#[tokio::test]
async fn jwks_keys_verify_by_kid_and_there_is_no_dev_sign_in() {
    let rsa = RsaKey::generate("rsa-1");
    let ec = EcKey::generate("ec-1");
    let stranger = RsaKey::generate("rsa-1");
    let jwks = json!({"keys": [rsa.jwk(), ec.jwk()]}).to_string();
    let server = jwt_server(
        sqlite(),
        JwtAuth::jwks(&jwks, Some(ISSUER.into()), Some(AUDIENCE.into())).unwrap(),
    )
    .await;
    let claims =
        |sub: &str| json!({"sub": sub, "exp": now() + 600, "iss": ISSUER, "aud": AUDIENCE});

    let alice = rsa.sign("rsa-1", &claims("alice"));
    let space = create_space(&server, &alice, json!({})).await;
    let pushed = call(
        &server,
        Some(&alice),
        &push_path(&space),
        &push_body("gA", "cA", 1..=1),
    )
    .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.text());
    open_socket(&server, &space, Some(&alice)).await.unwrap();
    let alice_ec = ec.sign(&claims("alice"));
    assert!(
        exists(&server, &alice_ec, &space).await,
        "ES256 keys verify too"
    );
    let bob = rsa.sign("rsa-1", &claims("bob"));
    assert!(!exists(&server, &bob, &space).await);

    // Another key under a known kid, an unknown kid, no kid, an expired token.
    let forged = stranger.sign("rsa-1", &claims("alice"));
    assert_unauthorized_everywhere(&server, &space, Some(&forged), "signature").await;
    let unknown_kid = rsa.sign("rsa-2", &claims("alice"));
    assert_unauthorized_everywhere(&server, &space, Some(&unknown_kid), "`kid`").await;
    let expired = rsa.sign(
        "rsa-1",
        &json!({"sub": "alice", "exp": now() - 5, "iss": ISSUER, "aud": AUDIENCE}),
    );
    assert_unauthorized_everywhere(&server, &space, Some(&expired), "expired").await;
    let wrong_audience = rsa.sign(
        "rsa-1",
        &json!({"sub": "alice", "exp": now() + 600, "iss": ISSUER, "aud": "other"}),
    );
    assert_unauthorized_everywhere(&server, &space, Some(&wrong_audience), "audience").await;
    // An HS256 token "signed" with the public key's bytes (the old key-confusion attack).
    let public_n = rsa.jwk()["n"].as_str().unwrap().to_owned();
    let confused = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some("rsa-1".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims("alice"),
        &jsonwebtoken::EncodingKey::from_secret(public_n.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_unauthorized_everywhere(&server, &space, Some(&confused), "algorithm").await;

    // No development sign-in with a JWKS: the path is an unknown route.
    let reply = server
        .post("/api/dev/signIn", &json!({"name": "alice"}))
        .await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "NotFound");
    assert!(!reply.text().contains("token"));
}

// ---------------------------------------------------------------------------------------
// The development sign-in.

#[tokio::test]
async fn the_dev_sign_in_issues_tokens_for_a_name() {
    let server = jwt_server(
        sqlite(),
        JwtAuth::dev_secret(SECRET, None, None, Duration::from_secs(120)),
    )
    .await;
    let before = now();
    let reply = server
        .request(
            Method::POST,
            "/api/dev/signIn",
            &[
                ("content-type", "application/json"),
                ("origin", "http://app.test"),
            ],
            r#"{"name": "alice@example.com"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["access-control-allow-origin"], "*");
    let body = reply.json();
    assert_eq!(body["user"], "alice@example.com");
    let expires = body["expiresAt"].as_u64().unwrap();
    assert!((before + 120..=now() + 120).contains(&expires), "{expires}");
    let token = body["token"].as_str().unwrap();
    let decoded = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET).unwrap(),
        &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
    )
    .unwrap()
    .claims;
    assert_eq!(decoded["sub"], "alice@example.com");
    assert_eq!(decoded["exp"], expires);
    assert!(!exists(&server, token, "nothing").await);

    for bad in [
        r#"{}"#,
        r#"{"name": ""}"#,
        r#"{"name": 5}"#,
        "not json",
        r#"{"name": "a\u0007"}"#,
    ] {
        let reply = server
            .request(
                Method::POST,
                "/api/dev/signIn",
                &[("content-type", "application/json")],
                bad,
            )
            .await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "BadRequest");
    }
    let get = server
        .request(Method::GET, "/api/dev/signIn", &[], "")
        .await;
    assert_refused(&get, StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed");
}

// ---------------------------------------------------------------------------------------
// Abuse limit: poke sockets per space.

#[tokio::test]
async fn a_space_has_at_most_the_configured_number_of_poke_sockets() {
    let mut options = test_options(AllowedOrigins::Any);
    options.auth = Auth::Jwt(Arc::new(JwtAuth::dev_secret(
        SECRET,
        None,
        None,
        Duration::from_secs(3600),
    )));
    options.max_sockets_per_space = 2;
    let server = TestServer::start_with_options(sqlite(), options).await;
    let alice = sign_in(&server, "alice").await;
    let space = create_space(&server, &alice, json!({})).await;
    let other = create_space(&server, &alice, json!({})).await;
    let first = open_socket(&server, &space, Some(&alice)).await.unwrap();
    let mut second = open_socket(&server, &space, Some(&alice)).await.unwrap();
    let (status, body) = open_socket(&server, &space, Some(&alice))
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "TooManyRequests");
    assert_eq!(server.hub.connection_count(&space_id(&space)), 2);
    // Another space has its own places.
    open_socket(&server, &other, Some(&alice)).await.unwrap();
    // The two sockets still work.
    let pushed = call(
        &server,
        Some(&alice),
        &push_path(&space),
        &push_body("g", "c", 1..=1),
    )
    .await;
    assert_eq!(pushed.status, StatusCode::OK);
    assert_eq!(
        next_text(&mut second, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("poke")
    );
    // A closed socket frees its place.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.hub.connection_count(&space_id(&space)) > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the socket was not removed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    open_socket(&server, &space, Some(&alice)).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// AUTH_MODE=none.

#[tokio::test]
async fn without_auth_everything_is_anonymous_and_open_as_before() {
    let server = TestServer::start().await;
    // Any Authorization header is ignored, and nothing asks for one.
    let space = server.create_space().await;
    for token in [None, Some("garbage"), Some("a.b.c")] {
        let pushed = call(
            &server,
            token,
            &push_path(&space),
            &push_body("g1", "c1", 1..=1),
        )
        .await;
        assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.text());
        let pulled = call(
            &server,
            token,
            &pull_path(&space),
            &pull_body("g1", json!(null)),
        )
        .await;
        assert_eq!(pulled.json()["lastMutationIDChanges"], json!({"c1": 1}));
    }
    let access = call(&server, None, &access_path(&space), &json!({})).await;
    assert_eq!(
        access.json(),
        json!({"owner": "", "members": [], "link": "open"})
    );
    open_socket(&server, &space, None).await.unwrap();
    let (status, _) = open_socket(&server, "unknown", None).await.err().unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    // No development sign-in.
    let reply = server
        .post("/api/dev/signIn", &json!({"name": "alice"}))
        .await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "NotFound");
}
