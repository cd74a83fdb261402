//! Bad input, as a table: each request gets a clear answer (a status and a JSON body
//! naming the problem, or the 200 body the protocol requires) and changes nothing.

use serde_json::{Value, json};
use std::sync::Arc;
use sync_core::api::{ApiRequest, MAX_BODY_BYTES};
use sync_core::memory_store::MemoryStore;
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::{SpaceId, SyncService};

fn service() -> SyncService {
    SyncService::new(
        Arc::new(MemoryStore::new()),
        Arc::new(app::registry()),
        Arc::new(NoPoker),
    )
}

fn request<'a>(path: &'a str, space: Option<&'a str>, body: &'a [u8]) -> ApiRequest<'a> {
    ApiRequest {
        method: "POST",
        path,
        space_id: space,
        body,
        accepts_gzip: false,
        user: "",
    }
}

async fn call(svc: &SyncService, path: &str, space: Option<&str>, body: &[u8]) -> (u16, Value) {
    let resp = svc.handle(request(path, space, body)).await;
    (resp.status, resp.json_body().expect("every answer is JSON"))
}

/// The full state of a space as a fresh client group would pull it.
async fn state(svc: &SyncService, space: &str) -> Value {
    let body = json!({"pullVersion":1,"clientGroupID":"observer","cookie":null}).to_string();
    call(svc, "/api/replicache/pull", Some(space), body.as_bytes())
        .await
        .1
}

/// (what, path, spaceID, body, expected status, expected error code)
type BadInput<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, u16, &'a str);

#[tokio::test]
async fn bad_inputs_get_clear_errors_and_change_nothing() {
    let svc = service();
    let (status, created) = call(&svc, "/api/replicache/createSpace", None, b"{}").await;
    assert_eq!(status, 200);
    let space = created["spaceID"].as_str().unwrap().to_owned();
    let good_push = json!({"pushVersion":1,"clientGroupID":"g","profileID":"p","schemaVersion":"",
        "mutations":[{"clientID":"c","id":1,"name":"increment","args":5,"timestamp":1}]});
    let (status, _) = call(
        &svc,
        "/api/replicache/push",
        Some(&space),
        good_push.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    let before = state(&svc, &space).await;
    assert_eq!(before["cookie"]["order"], json!(1));

    let push = "/api/replicache/push";
    let pull = "/api/replicache/pull";
    let huge = vec![b' '; MAX_BODY_BYTES + 1];
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let s = Some(space.as_str());
    #[rustfmt::skip]
    let table: Vec<BadInput> = vec![
        ("malformed JSON", push, s, b"{not json".to_vec(), 400, "BadRequest"),
        ("empty body", push, s, b"".to_vec(), 400, "BadRequest"),
        ("JSON but not an object", push, s, b"[1,2]".to_vec(), 400, "BadRequest"),
        ("deeply nested JSON", push, s, deep.clone().into_bytes(), 400, "BadRequest"),
        ("missing pushVersion", push, s, br#"{"clientGroupID":"g","mutations":[]}"#.to_vec(), 400, "BadRequest"),
        ("mistyped pushVersion", push, s, br#"{"pushVersion":"1","clientGroupID":"g","mutations":[]}"#.to_vec(), 400, "BadRequest"),
        ("missing clientGroupID", push, s, br#"{"pushVersion":1,"mutations":[]}"#.to_vec(), 400, "BadRequest"),
        ("mutations not an array", push, s, br#"{"pushVersion":1,"clientGroupID":"g","mutations":{}}"#.to_vec(), 400, "BadRequest"),
        ("mutation without clientID", push, s, br#"{"pushVersion":1,"clientGroupID":"g","mutations":[{"id":2,"name":"increment","args":1}]}"#.to_vec(), 400, "BadRequest"),
        ("negative mutation id", push, s, br#"{"pushVersion":1,"clientGroupID":"g","mutations":[{"clientID":"c","id":-1,"name":"increment","args":1}]}"#.to_vec(), 400, "BadRequest"),
        ("fractional mutation id", push, s, br#"{"pushVersion":1,"clientGroupID":"g","mutations":[{"clientID":"c","id":2.5,"name":"increment","args":1}]}"#.to_vec(), 400, "BadRequest"),
        ("mutation id beyond 2^53", push, s, br#"{"pushVersion":1,"clientGroupID":"g","mutations":[{"clientID":"c","id":1e300,"name":"increment","args":1}]}"#.to_vec(), 400, "BadRequest"),
        ("clientID with a slash", push, s, br#"{"pushVersion":1,"clientGroupID":"g","mutations":[{"clientID":"a/b","id":2,"name":"increment","args":1}]}"#.to_vec(), 400, "BadRequest"),
        ("missing spaceID", push, None, good_push.to_string().into_bytes(), 400, "InvalidSpaceID"),
        ("invalid spaceID", push, Some("../etc"), good_push.to_string().into_bytes(), 400, "InvalidSpaceID"),
        ("unknown spaceID", push, Some("nope"), good_push.to_string().into_bytes(), 404, "SpaceNotFound"),
        ("body over the limit", push, s, huge.clone(), 413, "PayloadTooLarge"),
        ("client of another group", push, s, br#"{"pushVersion":1,"clientGroupID":"other","mutations":[{"clientID":"c","id":2,"name":"increment","args":1}]}"#.to_vec(), 403, "Forbidden"),
        ("pull: string cookie", pull, s, br#"{"pullVersion":1,"clientGroupID":"g","cookie":"1"}"#.to_vec(), 400, "BadRequest"),
        ("pull: object cookie", pull, s, br#"{"pullVersion":1,"clientGroupID":"g","cookie":{"order":1}}"#.to_vec(), 400, "BadRequest"),
        ("pull: missing cookie", pull, s, br#"{"pullVersion":1,"clientGroupID":"g"}"#.to_vec(), 400, "BadRequest"),
        ("pull: absurd cookie", pull, s, br#"{"pullVersion":1,"clientGroupID":"g","cookie":1e300}"#.to_vec(), 400, "InvalidCookie"),
        ("pull: forged cookie 2^53-1", pull, s, br#"{"pullVersion":1,"clientGroupID":"g","cookie":9007199254740991}"#.to_vec(), 400, "InvalidCookie"),
        ("pull: forged signed cookie", pull, s, br#"{"pullVersion":1,"clientGroupID":"g","cookie":{"order":50,"sig":"AAAAAAAAAAAAAAAAAAAAAA"}}"#.to_vec(), 400, "InvalidCookie"),
        ("pull: unknown space", pull, Some("nope"), br#"{"pullVersion":1,"clientGroupID":"g","cookie":null}"#.to_vec(), 404, "SpaceNotFound"),
        ("createSpace: bad id", "/api/replicache/createSpace", None, br#"{"spaceID":"no spaces"}"#.to_vec(), 400, "InvalidSpaceID"),
        ("createSpace: existing id", "/api/replicache/createSpace", None, format!(r#"{{"spaceID":"{space}"}}"#).into_bytes(), 409, "SpaceExists"),
        ("spaceExists: missing id", "/api/replicache/spaceExists", None, b"{}".to_vec(), 400, "InvalidSpaceID"),
        ("unknown route", "/api/replicache/nope", s, b"{}".to_vec(), 404, "NotFound"),
    ];
    for (name, path, space_id, body, status, code) in table {
        let (got_status, got) = call(&svc, path, space_id, &body).await;
        assert_eq!(got_status, status, "{name}: {got}");
        assert_eq!(got["error"], json!(code), "{name}: {got}");
        assert!(
            got["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}: {got}"
        );
        assert_eq!(
            state(&svc, &space).await,
            before,
            "{name} changed the space"
        );
    }

    // Answers the protocol requires as 200 bodies.
    let good_push_text = good_push.to_string();
    #[rustfmt::skip]
    let protocol_table: Vec<(&str, &str, &[u8], Value)> = vec![
        ("push v0", push, br#"{"pushVersion":0,"clientID":"c","mutations":[{"id":2,"name":"increment","args":1}]}"#, json!({"error":"VersionNotSupported","versionType":"push"})),
        ("pull v0", pull, br#"{"pullVersion":0,"clientID":"c","cookie":null}"#, json!({"error":"VersionNotSupported","versionType":"pull"})),
        ("push v2", push, br#"{"pushVersion":2,"clientGroupID":"g","mutations":[]}"#, json!({"error":"VersionNotSupported","versionType":"push"})),
        ("mutation from the future", push, br#"{"pushVersion":1,"clientGroupID":"g","mutations":[{"clientID":"c","id":9,"name":"increment","args":1}]}"#, json!({"error":"ClientStateNotFound"})),
        ("duplicate only", push, good_push_text.as_bytes(), json!({})),
    ];
    for (name, path, body, expected) in protocol_table {
        let (status, got) = call(&svc, path, Some(&space), body).await;
        assert_eq!((status, got), (200, expected), "{name}");
        assert_eq!(
            state(&svc, &space).await,
            before,
            "{name} changed the space"
        );
    }

    // A 413 says what the limit is, for clients that split their pushes by it.
    let (_, too_large) = call(&svc, push, s, &huge).await;
    assert_eq!(too_large["maxBytes"], json!(MAX_BODY_BYTES), "{too_large}");
    let (_, not_found) = call(&svc, push, Some("nope"), good_push.to_string().as_bytes()).await;
    assert!(
        not_found.get("maxBytes").is_none(),
        "only a 413 has it: {not_found}"
    );

    // Unknown mutators and bad args are processed with no effect: only the LMID moves.
    let body = json!({"pushVersion":1,"clientGroupID":"g","mutations":[
        {"clientID":"c","id":2,"name":"noSuchMutator","args":1},
        {"clientID":"c","id":3,"name":"increment","args":"NaN"},
        {"clientID":"c","id":4,"name":"increment","args":null}]});
    let (status, _) = call(&svc, push, Some(&space), body.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    let after = state(&svc, &space).await;
    assert_eq!(after["patch"], before["patch"]);
}

#[tokio::test]
async fn space_routes() {
    let svc = service();
    let (status, body) = call(
        &svc,
        "/api/replicache/createSpace",
        None,
        br#"{"spaceID":"my-space_1"}"#,
    )
    .await;
    assert_eq!((status, body), (200, json!({"spaceID":"my-space_1"})));
    let (_, generated) = call(&svc, "/api/replicache/createSpace", None, b"").await;
    let id = generated["spaceID"].as_str().unwrap();
    assert!(SpaceId::parse(id).is_ok() && id.len() >= 22);
    for (space, exists) in [("my-space_1", true), (id, true), ("other", false)] {
        let body = json!({ "spaceID": space }).to_string();
        let (status, got) = call(&svc, "/api/replicache/spaceExists", None, body.as_bytes()).await;
        assert_eq!((status, got), (200, json!({ "spaceExists": exists })));
    }
    let get = svc
        .handle(ApiRequest {
            method: "GET",
            ..request("/api/replicache/pull", Some(id), b"")
        })
        .await;
    assert_eq!(get.status, 405);
}

#[tokio::test]
async fn large_pulls_are_gzipped_when_accepted() {
    let svc = service();
    let (_, created) = call(&svc, "/api/replicache/createSpace", None, b"{}").await;
    let space = created["spaceID"].as_str().unwrap();
    let mutations: Vec<Value> = (1..=50)
        .map(|i| {
            json!({"clientID":"c","id":i,"name":"setItem",
            "args":{"key":format!("k{i}"),"value":"some text to compress ".repeat(5)}})
        })
        .collect();
    let body = json!({"pushVersion":1,"clientGroupID":"g","mutations":mutations}).to_string();
    assert_eq!(
        call(&svc, "/api/replicache/push", Some(space), body.as_bytes())
            .await
            .0,
        200
    );
    let pull = json!({"pullVersion":1,"clientGroupID":"g","cookie":null}).to_string();
    let plain = svc
        .handle(request(
            "/api/replicache/pull",
            Some(space),
            pull.as_bytes(),
        ))
        .await;
    let gz = svc
        .handle(ApiRequest {
            accepts_gzip: true,
            ..request("/api/replicache/pull", Some(space), pull.as_bytes())
        })
        .await;
    assert!(!plain.gzipped && gz.gzipped);
    assert!(
        gz.body.len() * 4 < plain.body.len(),
        "compression should pay off here"
    );
    assert_eq!(gz.json_body(), plain.json_body());
}
