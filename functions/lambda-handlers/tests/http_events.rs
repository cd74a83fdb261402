//! The HTTP functions driven by API Gateway HTTP API (payload format 2.0) events of the
//! real shape, as Lambda delivers them.

use base64::Engine as _;
use lambda_handlers::HttpFunction;
use lambda_handlers::auth::AuthMode;
use lambda_handlers::http_adapter::DEADLINE_MARGIN;
use lambda_http::{Body, Context, Request, RequestExt as _};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use store_conformance::ScriptedStore;
use sync_core::api::MAX_BODY_BYTES;
use sync_core::cookie::CookieKeys;
use sync_core::memory_store::MemoryStore;
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::{Route, SpaceId, Store, SyncService};

const ALL: &[Route] = &[
    Route::CreateSpace,
    Route::SpaceExists,
    Route::Push,
    Route::Pull,
];

/// An HTTP API v2 event as API Gateway sends it (fields trimmed to realistic values).
fn event(path: &str, query: Option<&str>, body: &str, base64: bool, gzip: bool) -> Request {
    let mut headers = vec![
        ("authorization", ""),
        ("x-replicache-requestid", "client1-session1-0"),
        ("user-agent", "Mozilla/5.0"),
    ];
    if gzip {
        headers.push(("accept-encoding", "gzip, deflate, br"));
    }
    let body = if base64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        body.to_owned()
    };
    let mut ev = test_support::http_api::post_event(path, None, &body, &headers);
    ev["isBase64Encoded"] = json!(base64);
    if let Some(q) = query {
        ev["rawQueryString"] = json!(q);
        let (k, v) = q.split_once('=').unwrap();
        ev["queryStringParameters"] = json!({ k: v });
    }
    lambda_http::request::from_str(&ev.to_string()).expect("a valid HTTP API v2 event")
}

/// The deployment's cookie keys, as the pull function reads them from its secret.
fn keys() -> CookieKeys {
    CookieKeys::from_secret_text("http-events-test-key-0123456789abcdefghijklmnopqrstuvwxyz")
        .unwrap()
}

fn function(routes: &'static [Route]) -> (HttpFunction, Arc<SyncService>) {
    function_on(Arc::new(MemoryStore::new()), routes)
}

fn function_on(
    store: Arc<dyn Store>,
    routes: &'static [Route],
) -> (HttpFunction, Arc<SyncService>) {
    let svc = Arc::new(
        SyncService::new(store, Arc::new(app::registry()), Arc::new(NoPoker))
            .with_cookie_keys(keys()),
    );
    (HttpFunction::new(svc.clone(), routes), svc)
}

fn json_of(resp: &lambda_http::Response<Body>) -> Value {
    let bytes: &[u8] = resp.body().as_ref();
    serde_json::from_slice(bytes).expect("a JSON body")
}

#[tokio::test]
async fn tutorial_flow_through_http_api_events() {
    let (f, _) = function(ALL);
    let resp = f
        .handle(event("/api/replicache/createSpace", None, "", false, false))
        .await;
    assert_eq!(resp.status(), 200);
    let space = json_of(&resp)["spaceID"].as_str().unwrap().to_owned();
    let query = format!("spaceID={space}");

    // Browsers' bodies may arrive base64-encoded.
    let push = json!({"pushVersion":1,"clientGroupID":"g","profileID":"p","schemaVersion":"",
        "mutations":[{"clientID":"c","id":1,"name":"increment","args":3,"timestamp":12.5}]});
    let resp = f
        .handle(event(
            "/api/replicache/push",
            Some(&query),
            &push.to_string(),
            true,
            false,
        ))
        .await;
    assert_eq!((resp.status().as_u16(), json_of(&resp)), (200, json!({})));

    let pull = json!({"pullVersion":1,"clientGroupID":"g","profileID":"p","schemaVersion":"","cookie":null});
    let resp = f
        .handle(event(
            "/api/replicache/pull",
            Some(&query),
            &pull.to_string(),
            false,
            false,
        ))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let space = SpaceId::parse(&space).unwrap();
    assert_eq!(
        json_of(&resp),
        json!({"cookie": keys().sign(&space, 1),"lastMutationIDChanges":{"c":1},
               "patch":[{"op":"clear"},{"op":"put","key":"count","value":3}]})
    );
    assert_eq!(json_of(&resp)["cookie"]["order"], json!(1));
}

#[tokio::test]
async fn gzip_pulls_go_back_as_binary_bodies() {
    let (f, svc) = function(ALL);
    let created = f
        .handle(event(
            "/api/replicache/createSpace",
            None,
            "{}",
            false,
            false,
        ))
        .await;
    let space = json_of(&created)["spaceID"].as_str().unwrap().to_owned();
    let mutations: Vec<Value> = (1..=40)
        .map(|i| json!({"clientID":"c","id":i,"name":"setItem","args":{"key":format!("k{i}"),"value":"text ".repeat(20)}}))
        .collect();
    let push = json!({"pushVersion":1,"clientGroupID":"g","mutations":mutations}).to_string();
    let query = format!("spaceID={space}");
    f.handle(event(
        "/api/replicache/push",
        Some(&query),
        &push,
        false,
        false,
    ))
    .await;
    let pull = json!({"pullVersion":1,"clientGroupID":"g","cookie":null}).to_string();
    let resp = f
        .handle(event(
            "/api/replicache/pull",
            Some(&query),
            &pull,
            false,
            true,
        ))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let Body::Binary(bytes) = resp.body() else {
        panic!("gzip must be a binary body")
    };
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(bytes.as_slice()),
        &mut text,
    )
    .unwrap();
    let decoded: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(decoded["patch"].as_array().unwrap().len(), 41);
    drop(svc);
}

#[tokio::test]
async fn each_function_answers_only_its_routes() {
    let (pull_only, _) = function(&[Route::Pull]);
    let resp = pull_only
        .handle(event(
            "/api/replicache/push",
            Some("spaceID=x"),
            "{}",
            false,
            false,
        ))
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(json_of(&resp)["error"], json!("NotFound"));
}

#[tokio::test]
async fn bad_events_get_json_errors() {
    let (f, _) = function(ALL);
    let resp = f
        .handle(event(
            "/api/replicache/push",
            Some("spaceID=nope"),
            "{",
            false,
            false,
        ))
        .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(&resp)["error"], json!("BadRequest"));
    let push = json!({"pushVersion":1,"clientGroupID":"g","mutations":[]}).to_string();
    let resp = f
        .handle(event(
            "/api/replicache/push",
            Some("spaceID=nope"),
            &push,
            false,
            false,
        ))
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(json_of(&resp)["error"], json!("SpaceNotFound"));
}

#[tokio::test]
async fn oversized_bodies_get_a_json_413_with_the_limit() {
    let (f, _) = function(ALL);
    let created = f
        .handle(event(
            "/api/replicache/createSpace",
            None,
            "{}",
            false,
            false,
        ))
        .await;
    let space = json_of(&created)["spaceID"].as_str().unwrap().to_owned();
    let query = format!("spaceID={space}");
    let huge = " ".repeat(MAX_BODY_BYTES + 1);
    // As text and as base64 (API Gateway encodes bodies it takes for binary).
    for base64 in [false, true] {
        let resp = f
            .handle(event(
                "/api/replicache/push",
                Some(&query),
                &huge,
                base64,
                false,
            ))
            .await;
        assert_eq!(resp.status(), 413, "base64: {base64}");
        let body = json_of(&resp);
        assert_eq!(body["error"], json!("PayloadTooLarge"), "{body}");
        assert_eq!(body["maxBytes"], json!(MAX_BODY_BYTES), "{body}");
    }
    // Nothing of it was applied: the space is as created.
    let pull = json!({"pullVersion":1,"clientGroupID":"g","cookie":null,"profileID":"p",
        "schemaVersion":"1"})
    .to_string();
    let resp = f
        .handle(event(
            "/api/replicache/pull",
            Some(&query),
            &pull,
            false,
            false,
        ))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(&resp)["lastMutationIDChanges"], json!({}));
}

// ---------------------------------------------------------------------------------------
// Deadlines: Lambda's context says when the invocation ends; the answer must come first.
// ---------------------------------------------------------------------------------------

/// `event` as the Lambda runtime hands it over: with the invocation's context, whose
/// deadline is `deadline`.
fn invoked_until(event: Request, deadline: SystemTime) -> Request {
    let mut context = Context::default();
    context.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into();
    context.deadline = deadline
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    event.with_lambda_context(context)
}

/// A store holding the space `deadline-space`, whose every call takes `delay`.
async fn slow_store(delay: Duration) -> Arc<ScriptedStore<MemoryStore>> {
    let store = ScriptedStore::new(MemoryStore::new()).with_delay(delay);
    let space = SpaceId::parse("deadline-space").unwrap();
    store.inner().create_space(&space).await.unwrap();
    Arc::new(store)
}

/// A pull of `deadline-space`.
fn pull_event() -> Request {
    let pull = json!({"pullVersion":1,"clientGroupID":"g","cookie":null}).to_string();
    event(
        "/api/replicache/pull",
        Some("spaceID=deadline-space"),
        &pull,
        false,
        false,
    )
}

#[tokio::test]
async fn an_invocation_near_its_deadline_answers_503_in_time() {
    // The store takes 5 s; the invocation has DEADLINE_MARGIN + 300 ms left, or is already
    // past its deadline: either way a JSON 503 comes back at once, not the store's answer,
    // and well before the service's own 25 s bound.
    let (f, _) = function_on(slow_store(Duration::from_secs(5)).await, &[Route::Pull]);
    for (left, most) in [
        (
            DEADLINE_MARGIN + Duration::from_millis(300),
            Duration::from_millis(1500),
        ),
        (Duration::ZERO, Duration::from_millis(500)),
    ] {
        let started = Instant::now();
        let deadline = SystemTime::now() + left;
        let resp = f.handle(invoked_until(pull_event(), deadline)).await;
        let took = started.elapsed();
        assert_eq!(resp.status(), 503, "{left:?} left");
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(json_of(&resp)["error"], json!("DeadlineExceeded"));
        assert!(took < most, "answered after {took:?} with {left:?} left");
        // Before the invocation's end, not after it.
        assert!(
            SystemTime::now() <= deadline || left.is_zero(),
            "answered after the deadline"
        );
    }
    // A deadline in the past.
    let resp = f
        .handle(invoked_until(
            pull_event(),
            SystemTime::now() - Duration::from_secs(1),
        ))
        .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(json_of(&resp)["error"], json!("DeadlineExceeded"));
}

#[tokio::test]
async fn an_invocation_with_time_enough_is_answered() {
    // The store takes 300 ms a call; 10 s are plenty.
    let (f, _) = function_on(slow_store(Duration::from_millis(300)).await, &[Route::Pull]);
    let started = Instant::now();
    let resp = f
        .handle(invoked_until(
            pull_event(),
            SystemTime::now() + Duration::from_secs(10),
        ))
        .await;
    assert_eq!(resp.status(), 200, "{}", json_of(&resp));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the store was used"
    );
    let space = SpaceId::parse("deadline-space").unwrap();
    assert_eq!(
        json_of(&resp),
        json!({"cookie": keys().sign(&space, 0),"lastMutationIDChanges":{},
               "patch":[{"op":"clear"}]})
    );
}

#[tokio::test]
async fn an_emulator_placeholder_deadline_is_not_taken_for_one() {
    // `cargo lambda watch` says every invocation ends 600000 ms after the epoch; a Lambda
    // context without a deadline says 0. Neither can be a real invocation's: the service's
    // own bound applies, and the work is done.
    let (f, _) = function_on(slow_store(Duration::from_millis(50)).await, &[Route::Pull]);
    for deadline_ms in [600_000, 0] {
        let mut context = Context::default();
        context.deadline = deadline_ms;
        let resp = f.handle(pull_event().with_lambda_context(context)).await;
        assert_eq!(
            resp.status(),
            200,
            "deadline {deadline_ms}: {}",
            json_of(&resp)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Who is asking: the JWT authorizer's claims in jwt mode, nobody in none mode.
// ---------------------------------------------------------------------------------------

/// `event` as it arrives behind the HTTP API's JWT authorizer, which verified a token of
/// `sub`: claims as strings, as on the wire.
fn signed_in(event: Request, sub: &str) -> Request {
    let mut v: Value = {
        let path = event.raw_http_path().to_owned();
        let query = event
            .query_string_parameters()
            .first("spaceID")
            .map(|s| format!("spaceID={s}"));
        let body = String::from_utf8_lossy(event.body().as_ref()).into_owned();
        let ev = json!({
            "version": "2.0",
            "routeKey": format!("POST {path}"),
            "rawPath": path,
            "rawQueryString": query.clone().unwrap_or_default(),
            "headers": {"content-type": "application/json",
                        "authorization": format!("Bearer eyJ.of-{sub}.sig")},
            "requestContext": {
                "accountId": "123456789012", "apiId": "abc123",
                "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
                "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                         "sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0"},
                "requestId": "JKJaXmPLvHcESHA=", "routeKey": format!("POST {path}"),
                "stage": "$default", "time": "27/Nov/2026:08:00:00 +0000",
                "timeEpoch": 1795766400000u64
            },
            "body": body,
            "isBase64Encoded": false
        });
        if let Some(q) = query {
            let (k, v) = q.split_once('=').unwrap();
            let mut ev = ev;
            ev["queryStringParameters"] = json!({ k: v });
            ev
        } else {
            ev
        }
    };
    v["requestContext"]["authorizer"] = json!({"jwt": {
        "claims": {"sub": sub, "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
                   "aud": "exampleclientid", "exp": "1795769600", "iat": "1795766000",
                   "token_use": "id", "email_verified": "true"},
        "scopes": null
    }});
    lambda_http::request::from_str(&v.to_string()).expect("a valid HTTP API v2 event")
}

fn jwt_function() -> HttpFunction {
    let svc = Arc::new(
        SyncService::new(
            Arc::new(MemoryStore::new()),
            Arc::new(app::registry()),
            Arc::new(NoPoker),
        )
        .with_access_policy(AuthMode::Jwt.access_policy()),
    );
    HttpFunction::new(svc, ALL_WITH_ACCESS).with_auth(AuthMode::Jwt)
}

const ALL_WITH_ACCESS: &[Route] = &[
    Route::CreateSpace,
    Route::SpaceExists,
    Route::SpaceAccess,
    Route::Push,
    Route::Pull,
];

#[tokio::test]
async fn jwt_mode_reads_the_user_from_the_authorizers_claims() {
    let f = jwt_function();
    let created = f
        .handle(signed_in(
            event("/api/replicache/createSpace", None, "{}", false, false),
            "alice-sub",
        ))
        .await;
    assert_eq!(created.status(), 200);
    let space = json_of(&created)["spaceID"].as_str().unwrap().to_owned();
    let query = format!("spaceID={space}");
    let access = f
        .handle(signed_in(
            event(
                "/api/replicache/spaceAccess",
                Some(&query),
                "{}",
                false,
                false,
            ),
            "alice-sub",
        ))
        .await;
    assert_eq!(
        json_of(&access),
        json!({"owner": "alice-sub", "members": [], "link": "members"})
    );
    // Another subject is a stranger to it.
    let other = f
        .handle(signed_in(
            event(
                "/api/replicache/spaceAccess",
                Some(&query),
                "{}",
                false,
                false,
            ),
            "bob-sub",
        ))
        .await;
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn jwt_mode_without_claims_is_401_json() {
    let f = jwt_function();
    for path in [
        "/api/replicache/createSpace",
        "/api/replicache/push",
        "/api/replicache/pull",
    ] {
        let resp = f
            .handle(event(path, Some("spaceID=s"), "{}", false, false))
            .await;
        assert_eq!(resp.status(), 401, "{path}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(json_of(&resp)["error"], json!("Unauthorized"));
    }
    // An empty subject is no user either.
    let resp = f
        .handle(signed_in(
            event("/api/replicache/createSpace", None, "{}", false, false),
            "",
        ))
        .await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn none_mode_ignores_claims_every_request_is_anonymous() {
    // In none mode nobody is signed in, even if a token's claims arrive.
    let (f, _) = function(ALL_WITH_ACCESS);
    let created = f
        .handle(signed_in(
            event("/api/replicache/createSpace", None, "{}", false, false),
            "alice-sub",
        ))
        .await;
    let space = json_of(&created)["spaceID"].as_str().unwrap().to_owned();
    let access = f
        .handle(event(
            "/api/replicache/spaceAccess",
            Some(&format!("spaceID={space}")),
            "{}",
            false,
            false,
        ))
        .await;
    assert_eq!(
        json_of(&access),
        json!({"owner": "", "members": [], "link": "open"})
    );
}
