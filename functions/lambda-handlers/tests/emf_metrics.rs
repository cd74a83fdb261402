//! The HTTP functions' metrics: CloudWatch Embedded Metric Format lines, one per request,
//! from the push and pull functions driven by API Gateway events of the real shape, on
//! DynamoDB (moto).

use lambda_handlers::HttpFunction;
use lambda_handlers::emf::{EmfMetrics, EmfWriter, NAMESPACE};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use store_dynamodb::DynamoStore;
use support::http_event;
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::{Route, SpaceId, Store, SyncService};
use test_support::LocalDynamo;

// Shared with the template tests, of which this binary uses only the event builder.
#[allow(dead_code)]
mod support;

const SPACE: &str = "emf-space-7f3a";
const GROUP: &str = "emf-group-91c2";
const CLIENT: &str = "emf-client-5d0e";

/// A function's service as `bootstrap` wires it on Lambda, its figures to `metrics`.
fn function(store: &DynamoStore, route: Route, metrics: Arc<EmfMetrics>) -> HttpFunction {
    let service = SyncService::new(
        Arc::new(store.clone()),
        Arc::new(app::registry()),
        Arc::new(NoPoker),
    )
    .with_metrics(metrics);
    let routes: &'static [Route] = match route {
        Route::Push => &[Route::Push],
        _ => &[Route::Pull],
    };
    HttpFunction::new(Arc::new(service), routes)
}

/// Every line written so far, each parsed as JSON; the buffer is emptied.
fn take_lines(out: &Mutex<Vec<u8>>) -> (Vec<String>, Vec<Value>) {
    let text = String::from_utf8(std::mem::take(&mut *out.lock().unwrap())).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let values = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    (lines, values)
}

/// The metric names and units the line declares, checked against the EMF specification:
/// each directive has the namespace, dimension sets whose keys are members of the line,
/// and metrics whose values are numbers in the line.
fn declared(line: &Value) -> Vec<(String, String, Vec<Vec<String>>)> {
    let aws = &line["_aws"];
    assert!(aws["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    let mut out = Vec::new();
    for directive in aws["CloudWatchMetrics"].as_array().unwrap() {
        assert_eq!(directive["Namespace"], NAMESPACE);
        let sets: Vec<Vec<String>> = serde_json::from_value(directive["Dimensions"].clone())
            .expect("Dimensions is an array of arrays of strings");
        for key in sets.iter().flatten() {
            assert!(line[key].is_string(), "dimension {key} is a string member");
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap().to_owned();
            assert!(line[&name].is_number(), "metric {name} has a number value");
            out.push((
                name,
                metric["Unit"].as_str().unwrap().to_owned(),
                sets.clone(),
            ));
        }
    }
    out
}

fn unit_of(line: &Value, name: &str) -> String {
    declared(line)
        .into_iter()
        .find(|(n, ..)| n == name)
        .map(|(_, unit, _)| unit)
        .unwrap_or_else(|| panic!("{name} is declared"))
}

fn assert_no_ids(raw: &str) {
    for id in [SPACE, GROUP, CLIENT] {
        assert!(!raw.contains(id), "no ID in a metrics line: {raw}");
    }
}

#[tokio::test]
async fn push_and_pull_write_one_emf_line_each_with_their_figures() {
    let dynamo = LocalDynamo::start().await;
    let client = dynamo.client().await;
    let table = dynamo.fresh_table(&client, "emf").await;
    let store = DynamoStore::new(client, table);
    let space = SpaceId::parse(SPACE).unwrap();
    store.create_space(&space).await.unwrap();
    let before = store.capacity_stats();
    let out = Arc::new(Mutex::new(Vec::new()));
    // One sink for both, as in one Lambda instance: one request at a time on one store.
    let metrics =
        Arc::new(EmfMetrics::new(EmfWriter::to(out.clone())).with_capacity_of(store.clone()));
    let push = function(&store, Route::Push, metrics.clone());
    let pull = function(&store, Route::Pull, metrics.clone());

    // Two mutations applied, one failed (unknown mutator): processed, no effect.
    let body = json!({"pushVersion": 1, "clientGroupID": GROUP, "mutations": [
        {"clientID": CLIENT, "id": 1, "name": "increment", "args": 2, "timestamp": 1.0},
        {"clientID": CLIENT, "id": 2, "name": "increment", "args": 3, "timestamp": 2.0},
        {"clientID": CLIENT, "id": 3, "name": "noSuchMutator", "args": {}, "timestamp": 3.0},
    ]})
    .to_string();
    let response = push
        .handle(http_event("/api/replicache/push", Some(SPACE), &body))
        .await;
    assert_eq!(response.status(), 200);
    let (raw, lines) = take_lines(&out);
    assert_eq!(lines.len(), 1, "one line per request: {raw:?}");
    let mut all = lines.clone();
    let line = &lines[0];
    assert_no_ids(&raw[0]);
    assert_eq!(line["Route"], "push");
    assert_eq!(line["Outcome"], "ok");
    assert_eq!(line["Status"], 200);
    assert_eq!(line["Requests"], 1.0);
    assert_eq!(line["Refused"], 0.0);
    assert_eq!(line["MutationsApplied"], 2.0);
    assert_eq!(line["MutationsFailed"], 1.0);
    assert_eq!(line["VersionConflicts"], 0.0);
    assert_eq!(line["Commits"], 1.0);
    assert_eq!(line["RequestBytes"], body.len() as f64);
    assert_eq!(line["ResponseBytes"], 2.0, "the body {{}}");
    assert!(line["Latency"].as_f64().unwrap() > 0.0);
    assert_eq!(unit_of(line, "Latency"), "Milliseconds");
    assert_eq!(unit_of(line, "RequestBytes"), "Bytes");
    assert_eq!(unit_of(line, "MutationsApplied"), "Count");
    // The push read and wrote DynamoDB: at least one request, and the capacity of this
    // request only (the counter's delta).
    assert!(line["DynamoRequests"].as_f64().unwrap() >= 1.0);
    assert!(line["WriteCapacityUnits"].as_f64().unwrap() >= 0.0);
    // Every metric by route; requests also by outcome. Nothing else is a dimension.
    for (name, _, sets) in declared(line) {
        if name == "Requests" && sets == [vec!["Route".to_owned(), "Outcome".to_owned()]] {
            continue;
        }
        assert_eq!(sets, [vec!["Route".to_owned()]], "{name}");
    }

    let body = json!({"pullVersion": 1, "clientGroupID": GROUP, "cookie": null,
        "profileID": "emf-profile", "schemaVersion": ""})
    .to_string();
    let response = pull
        .handle(http_event("/api/replicache/pull", Some(SPACE), &body))
        .await;
    assert_eq!(response.status(), 200);
    let (raw, lines) = take_lines(&out);
    assert_eq!(lines.len(), 1, "{raw:?}");
    all.extend(lines.clone());
    let line = &lines[0];
    assert_no_ids(&raw[0]);
    assert_eq!(line["Route"], "pull");
    assert_eq!(line["Outcome"], "ok");
    assert_eq!(line["Refused"], 0.0);
    assert!(line["ResponseBytes"].as_f64().unwrap() > 2.0);
    assert!(
        line.get("MutationsApplied").is_none(),
        "push figures only on a push"
    );
    assert!(line["DynamoRequests"].as_f64().unwrap() >= 1.0);
    assert!(line["ReadCapacityUnits"].as_f64().unwrap() >= 0.0);

    // Refusals: the reason is the outcome dimension of the request count.
    let response = pull
        .handle(http_event("/api/replicache/pull", Some("bad.space"), "{}"))
        .await;
    assert_eq!(response.status(), 400);
    let response = push
        .handle(http_event("/api/replicache/push", Some(SPACE), "not json"))
        .await;
    assert_eq!(response.status(), 400);
    let (raw, lines) = take_lines(&out);
    assert_eq!(lines.len(), 2, "{raw:?}");
    assert_eq!(lines[0]["Route"], "pull");
    assert_eq!(lines[0]["Outcome"], "InvalidSpaceID");
    assert_eq!(lines[1]["Route"], "push");
    assert_eq!(lines[1]["Status"], 400);
    assert_eq!(lines[1]["Refused"], 1.0);
    assert!(lines[1]["Outcome"].as_str().unwrap() != "ok");
    assert!(raw[0].find("bad.space").is_none(), "no raw input in a line");

    // Refused before the service runs: a route this function does not serve, and (in
    // jwt mode) a request without verified claims. Counted and logged all the same.
    let response = push
        .handle(http_event("/api/replicache/pull", Some(SPACE), "{}"))
        .await;
    assert_eq!(response.status(), 404);
    let jwt_push = function(&store, Route::Push, metrics.clone())
        .with_auth(lambda_handlers::auth::AuthMode::Jwt);
    let response = jwt_push
        .handle(http_event("/api/replicache/push", Some(SPACE), &body))
        .await;
    assert_eq!(response.status(), 401);
    let (raw, refused) = take_lines(&out);
    assert_eq!(refused.len(), 2, "{raw:?}");
    assert_eq!(refused[0]["Route"], "pull");
    assert_eq!(refused[0]["Outcome"], "NotFound");
    assert_eq!(refused[0]["Refused"], 1.0);
    assert_eq!(refused[1]["Route"], "push");
    assert_eq!(refused[1]["Status"], 401);
    assert_eq!(refused[1]["Outcome"], "Unauthorized");
    // They read nothing.
    assert!(
        refused.iter().all(|l| l["DynamoRequests"] == 0.0),
        "{raw:?}"
    );

    // Each line reports what its own request consumed: together, all the store's counter
    // moved since the functions were built.
    all.extend(lines.clone());
    let after = store.capacity_stats();
    let sum = |name: &str| all.iter().map(|l| l[name].as_f64().unwrap()).sum::<f64>();
    assert_eq!(
        sum("DynamoRequests"),
        (after.requests - before.requests) as f64
    );
    assert!((sum("ReadCapacityUnits") - (after.read_units - before.read_units)).abs() < 1e-9);
    assert!((sum("WriteCapacityUnits") - (after.write_units - before.write_units)).abs() < 1e-9);
}
