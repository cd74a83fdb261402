//! Cases through the whole API (`SyncService`, request bodies as bytes): no mutation can
//! poison its push. A problem confined to one mutation is that mutation's permanent
//! failure: the push answers 200, the mutation's LMID advances with none of its writes,
//! and the mutations behind it are processed.

use serde_json::{Value, json};
use std::sync::Arc;
use sync_core::api::{ApiRequest, ApiResponse};
use sync_core::cookie::SignedCookie;
use sync_core::json_text::JsonText;
use sync_core::mutators::{MutationError, Mutator, app};
use sync_core::poke::NoPoker;
use sync_core::protocol::{PatchOp, PullResponse};
use sync_core::tx::Tx;
use sync_core::{Store, SyncService};

/// `scan({prefix})`: scans with a prefix of the client's choosing (the app's mutators do
/// not scan; this one puts the scan path under test), writing how many it found.
struct ScanPrefix;

#[async_trait::async_trait]
impl Mutator for ScanPrefix {
    async fn run(&self, tx: &mut Tx<'_>, args: &Value) -> Result<(), MutationError> {
        let prefix = args["prefix"].as_str().unwrap_or_default().to_owned();
        let found = tx.scan(&prefix, 10).await?;
        tx.put("scanned", json!(found.len()))
    }
}

/// `getKey({key})`: reads a key of the client's choosing.
struct GetKey;

#[async_trait::async_trait]
impl Mutator for GetKey {
    async fn run(&self, tx: &mut Tx<'_>, args: &Value) -> Result<(), MutationError> {
        let key = args["key"].as_str().unwrap_or_default().to_owned();
        let value = tx.get(&key).await?;
        tx.put("got", value.unwrap_or(Value::Null))
    }
}

pub fn service(store: Arc<dyn Store>) -> SyncService {
    let registry = app::registry()
        .with("scan", ScanPrefix)
        .with("getKey", GetKey);
    SyncService::new(store, Arc::new(registry), Arc::new(NoPoker))
        .with_cookie_keys(crate::cookie_keys().clone())
}

pub async fn call(svc: &SyncService, route: &str, space: Option<&str>, body: &[u8]) -> ApiResponse {
    svc.handle(ApiRequest {
        method: "POST",
        path: &format!("/api/replicache/{route}"),
        space_id: space,
        body,
        accepts_gzip: false,
        user: "",
    })
    .await
}

async fn create_space(svc: &SyncService) -> String {
    let created = call(svc, "createSpace", None, b"{}").await;
    assert_eq!(created.status, 200);
    created.json_body().expect("JSON")["spaceID"]
        .as_str()
        .expect("a spaceID")
        .to_owned()
}

/// The group's full pull: (state, LMIDs).
async fn pull_all(svc: &SyncService, space: &str, group: &str) -> (Value, Value) {
    let body = json!({"pullVersion":1,"clientGroupID":group,"cookie":null}).to_string();
    let resp = call(svc, "pull", Some(space), body.as_bytes()).await;
    assert_eq!(resp.status, 200);
    let body = resp.json_body().expect("JSON");
    let mut state = serde_json::Map::new();
    for op in body["patch"].as_array().expect("a patch") {
        if op["op"] == "put" {
            state.insert(
                op["key"].as_str().expect("a key").to_owned(),
                op["value"].clone(),
            );
        }
    }
    (Value::Object(state), body["lastMutationIDChanges"].clone())
}

/// A mutation's JSON text; `args` is raw JSON text (it may be what serde cannot hold).
fn raw_mutation(client: &str, id: u64, name: &str, args: &str) -> String {
    format!(r#"{{"clientID":"{client}","id":{id},"name":{name},"args":{args},"timestamp":1}}"#)
}

fn raw_push(group: &str, mutations: &[String]) -> Vec<u8> {
    format!(
        r#"{{"pushVersion":1,"clientGroupID":"{group}","profileID":"p","schemaVersion":"","mutations":[{}]}}"#,
        mutations.join(",")
    )
    .into_bytes()
}

pub async fn api_poison_mutations(store: Arc<dyn Store>) {
    let svc = service(store);
    let space = create_space(&svc).await;
    let long_key = format!("\"{}\"", "k".repeat(1_100));
    let deep_args = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let deep_value = format!(
        r#"{{"key":"deep","value":{}1{}}}"#,
        "[".repeat(110),
        "]".repeat(110)
    );
    let big_value = format!(r#"{{"key":"big","value":"{}"}}"#, "x".repeat(400_000));
    // (what, name as JSON text, args as JSON text)
    let poisons: Vec<(&str, String, String)> = vec![
        (
            "args with a lone UTF-16 surrogate",
            r#""setItem""#.into(),
            r#"{"key":"k","value":"cut \ud83d"}"#.into(),
        ),
        (
            "args nested beyond the parser's limit",
            r#""setItem""#.into(),
            deep_args,
        ),
        (
            "a number out of range",
            r#""increment""#.into(),
            "1e400".into(),
        ),
        (
            "an unknown mutator",
            r#""noSuchMutator""#.into(),
            "1".into(),
        ),
        ("a name that is not a string", "7".into(), "1".into()),
        (
            "a name with a lone surrogate",
            r#""\udc00""#.into(),
            "1".into(),
        ),
        ("invalid args", r#""increment""#.into(), r#""one""#.into()),
        (
            "put: a key over the store's limit",
            r#""setItem""#.into(),
            format!(r#"{{"key":{long_key},"value":1}}"#),
        ),
        (
            "del (get, has): a key over the store's limit",
            r#""deleteItem""#.into(),
            format!(r#"{{"key":{long_key}}}"#),
        ),
        (
            "get: a key over the store's limit",
            r#""getKey""#.into(),
            format!(r#"{{"key":{long_key}}}"#),
        ),
        (
            "scan: a prefix over the store's limit",
            r#""scan""#.into(),
            format!(r#"{{"prefix":{long_key}}}"#),
        ),
        (
            "a value nested too deep to read back",
            r#""setItem""#.into(),
            deep_value,
        ),
        (
            "a value over the item size limit",
            r#""setItem""#.into(),
            big_value,
        ),
    ];
    let group = "poison-group";
    let mut expected_count = 0;
    for (n, (what, name, args)) in poisons.iter().enumerate() {
        let id = n as u64 + 1;
        let body = raw_push(
            group,
            &[
                raw_mutation("poisoned", id, name, args),
                raw_mutation("healthy", id, r#""increment""#, "1"),
            ],
        );
        let resp = call(&svc, "push", Some(&space), &body).await;
        assert_eq!(
            (resp.status, resp.json_body()),
            (200, Some(json!({}))),
            "{what}: the push must succeed"
        );
        expected_count += 1;
        let (state, lmids) = pull_all(&svc, &space, group).await;
        assert_eq!(
            lmids,
            json!({"poisoned": id, "healthy": id}),
            "{what}: both LMIDs advance"
        );
        assert_eq!(
            state["count"],
            json!(expected_count),
            "{what}: the valid one applied"
        );
        let keys: Vec<&String> = state.as_object().expect("a map").keys().collect();
        assert_eq!(
            keys,
            ["count"],
            "{what}: the poisoned mutation wrote nothing"
        );
    }
}

/// A new group's push of 97 writes on distinct keys, failing mutations of two more
/// clients and a valid one: the failed mutations' LMID writes count against the commit's
/// limits too, so the push is split instead of refused by the store on every attempt.
pub async fn api_failed_mutations_count_against_commit_limits(store: Arc<dyn Store>) {
    let svc = service(store);
    let space = create_space(&svc).await;
    let group = "limits-group";
    let mut mutations: Vec<String> = (1..=97)
        .map(|i| {
            raw_mutation(
                "writer",
                i,
                r#""setItem""#,
                &format!(r#"{{"key":"k{i:03}","value":{i}}}"#),
            )
        })
        .collect();
    mutations.push(raw_mutation("failing1", 1, r#""noSuchMutator""#, "null"));
    mutations.push(raw_mutation("failing2", 1, r#""increment""#, r#""x""#));
    mutations.push(raw_mutation("writer", 98, r#""increment""#, "1"));
    let resp = call(&svc, "push", Some(&space), &raw_push(group, &mutations)).await;
    assert_eq!((resp.status, resp.json_body()), (200, Some(json!({}))));
    let (state, lmids) = pull_all(&svc, &space, group).await;
    assert_eq!(lmids, json!({"writer": 98, "failing1": 1, "failing2": 1}));
    assert_eq!(state["count"], json!(1));
    for i in 1..=97 {
        assert_eq!(state[format!("item/k{i:03}")], json!(i));
    }
}

/// A pull answers each value exactly as the push stored it, whatever the store: floats
/// in the text they round-trip as, integers beyond 2^53 whole, negative zero, escapes and
/// non-ASCII text, object keys in the order the server writes them; and the body is
/// byte for byte what serializing the values parsed back into trees gives (the answer of
/// a server that parses each stored value and serializes it again).
pub async fn api_pull_answers_values_exactly(store: Arc<dyn Store>) {
    let svc = service(store);
    let space = create_space(&svc).await;
    // (key, the value's JSON text as pushed, the text a pull must answer)
    let values: [(&str, &str, &str); 10] = [
        ("tenth", "0.1", "0.1"),
        ("huge", "1e300", "1e+300"),
        ("max", "1.7976931348623157e308", "1.7976931348623157e+308"),
        ("negative-zero", "-0.0", "-0.0"),
        ("beyond-2^53", "123456789012345678", "123456789012345678"),
        ("negative", "-12345.678e-3", "-12.345678"),
        ("tiny", "5e-324", "5e-324"),
        (
            "text",
            r#""ключ \u00e9 \ud83d\udd11 \"q\" \\ \/ \n \t \u0000 \u001f \u2028""#,
            "\"ключ é 🔑 \\\"q\\\" \\\\ / \\n \\t \\u0000 \\u001f \u{2028}\"",
        ),
        (
            "object",
            r#"{"z":1,"a":{"y":[true,null],"b":2.50},"m":"é"}"#,
            r#"{"a":{"b":2.5,"y":[true,null]},"m":"é","z":1}"#,
        ),
        ("null", "null", "null"),
    ];
    let mutations: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, (key, pushed, _))| {
            let args = format!(r#"{{"key":"{key}","value":{pushed}}}"#);
            raw_mutation("exact", i as u64 + 1, r#""setItem""#, &args)
        })
        .collect();
    let pushed = call(&svc, "push", Some(&space), &raw_push("g-exact", &mutations)).await;
    assert_eq!(pushed.status, 200);

    let body = json!({"pullVersion":1,"clientGroupID":"g-exact","cookie":null}).to_string();
    let resp = call(&svc, "pull", Some(&space), body.as_bytes()).await;
    assert_eq!(resp.status, 200);
    let text = std::str::from_utf8(&resp.body).expect("UTF-8");
    for (key, pushed, answered) in &values {
        let op = format!(r#"{{"op":"put","key":"item/{key}","value":{answered}}}"#);
        assert!(text.contains(&op), "{key}: {op} not in {text}");
        // What the push stored: the pushed text parsed, as a store writes it.
        let stored: Value = serde_json::from_str(pushed).expect("JSON");
        assert_eq!(serde_json::to_string(&stored).expect("JSON"), *answered);
    }
    assert_eq!(
        text,
        reserialized(text),
        "the body as a parse and serialize gives it"
    );
}

/// `body` with every value parsed into a tree and serialized again, as a pull answered
/// before values passed through as text.
fn reserialized(body: &str) -> String {
    let parsed: Value = serde_json::from_str(body).expect("a pull response");
    let patch = parsed["patch"]
        .as_array()
        .expect("a patch")
        .iter()
        .map(|op| {
            let key = || op["key"].as_str().expect("a key").to_owned();
            match op["op"].as_str() {
                Some("clear") => PatchOp::Clear,
                Some("put") => PatchOp::Put {
                    key: key(),
                    value: JsonText::from_value(&op["value"]),
                },
                Some("del") => PatchOp::Del { key: key() },
                other => panic!("unknown op {other:?}"),
            }
        })
        .collect();
    let response = PullResponse {
        cookie: SignedCookie {
            order: parsed["cookie"]["order"].as_u64().expect("an order"),
            sig: parsed["cookie"]["sig"].as_str().expect("a sig").to_owned(),
        },
        last_mutation_id_changes: serde_json::from_value(parsed["lastMutationIDChanges"].clone())
            .expect("LMIDs"),
        patch,
    };
    serde_json::to_string(&response).expect("JSON")
}
