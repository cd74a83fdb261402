//! One `request` log line per request, with its figures, and no user data in any line.

use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};
use sync_core::api::ApiRequest;
use sync_core::memory_store::MemoryStore;
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::store::Store;
use sync_core::{SpaceId, SyncService};

/// Every line written, in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// The fields of each `request` line.
    fn requests(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|line| line["fields"]["message"] == "request")
            .map(|line| line["fields"].clone())
            .collect()
    }
}

const MARKER: &str = "marker-8c1f0a-user-data";

async fn call(svc: &SyncService, route: &str, space: &SpaceId, body: Value) -> u16 {
    let body = body.to_string();
    svc.handle(ApiRequest {
        method: "POST",
        path: &format!("/api/replicache/{route}"),
        space_id: Some(space.as_str()),
        body: body.as_bytes(),
        accepts_gzip: false,
        user: "",
    })
    .await
    .status
}

#[tokio::test]
async fn one_request_line_per_request_without_user_data() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // The test's runtime polls on this thread only, so the subscriber sees every event.
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = Arc::new(MemoryStore::new());
    let svc = SyncService::new(store.clone(), Arc::new(app::registry()), Arc::new(NoPoker));
    let space = SpaceId::generate();
    store.create_space(&space).await.unwrap();

    let push = json!({"pushVersion": 1, "clientGroupID": "group-1", "mutations": [
        {"clientID": "c", "id": 1, "name": "setItem",
         "args": {"key": format!("k-{MARKER}"), "value": MARKER}},
        {"clientID": "c", "id": 2, "name": "setItem", "args": {"key": "k2", "value": 2}},
        // Fails (no key): its failure is logged, its args are not.
        {"clientID": "c", "id": 3, "name": "setItem", "args": {"value": MARKER}},
    ]});
    assert_eq!(call(&svc, "push", &space, push).await, 200);
    let lines = captured.requests();
    assert_eq!(lines.len(), 1, "{}", captured.text());
    let line = &lines[0];
    assert_eq!(line["route"], "push");
    assert_eq!(line["space_id"], space.as_str());
    assert_eq!(line["client_group_id"], "group-1");
    assert_eq!(line["status"], 200);
    assert_eq!(line["mutations"], 3);
    assert_eq!(line["processed"], 3);
    assert_eq!(line["failed"], 1);
    assert_eq!(line["conflicts"], 0);
    assert_eq!(line["commits"], 1);
    assert_eq!(line["truncated"], false);
    assert!(line["request_bytes"].as_u64().unwrap() > 0);
    assert_eq!(line["response_bytes"], 2);
    assert!(line["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(line.get("refusal").is_none());
    assert!(line.get("cookie_order_in").is_none());

    let pull = json!({"pullVersion": 1, "clientGroupID": "group-2", "cookie": null,
        "profileID": "p", "schemaVersion": ""});
    assert_eq!(call(&svc, "pull", &space, pull).await, 200);
    let lines = captured.requests();
    assert_eq!(lines.len(), 2, "{}", captured.text());
    let line = &lines[1];
    assert_eq!(line["route"], "pull");
    assert_eq!(line["space_id"], space.as_str());
    assert_eq!(line["client_group_id"], "group-2");
    assert_eq!(line["status"], 200);
    assert!(line.get("cookie_order_in").is_none());
    let order = line["cookie_order_out"].as_u64().unwrap();
    assert!(order > 0);
    // A clear and the two entries.
    assert_eq!(line["patch_ops"], 3);
    assert!(line.get("mutations").is_none());

    // From that version on: the cookie's order in, nothing to patch.
    let again = json!({"pullVersion": 1, "clientGroupID": "group-2", "cookie": order});
    assert_eq!(call(&svc, "pull", &space, again).await, 200);
    let lines = captured.requests();
    assert_eq!(lines.len(), 3, "{}", captured.text());
    assert_eq!(lines[2]["cookie_order_in"], order);
    assert_eq!(lines[2]["cookie_order_out"], order);
    assert_eq!(lines[2]["patch_ops"], 0);

    // A refused request has its line too, with the refusal's code.
    let stale = json!({"pullVersion": 0, "clientGroupID": "group-2", "cookie": null});
    assert_eq!(call(&svc, "pull", &space, stale).await, 200);
    let lines = captured.requests();
    assert_eq!(lines.len(), 4, "{}", captured.text());
    assert_eq!(lines[3]["refusal"], "VersionNotSupported");

    // The pushed args and the pull's response held the marker; no line holds it.
    assert!(!captured.text().contains(MARKER), "{}", captured.text());
}
