//! `GET /metrics`: the request figures in the Prometheus (OpenMetrics) text format, after
//! a push, a pull, a refusal and a poke over real HTTP.

mod common;

use axum::http::{Method, StatusCode, header};
use common::{TestServer, pull_body, push_body};
use futures::StreamExt as _;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

/// The value of the sample `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().expect("a number"))
}

async fn scrape(server: &TestServer) -> String {
    let reply = server
        .request(Method::GET, "/metrics", &[], Vec::new())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let content_type = reply.headers.get(header::CONTENT_TYPE).unwrap();
    assert!(
        content_type
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = reply.text();
    assert!(text.ends_with("# EOF\n"), "a complete exposition");
    text
}

#[tokio::test]
async fn metrics_count_pushes_pulls_refusals_and_pokes() {
    let server = TestServer::start().await;
    let space = server.create_space().await;
    let (mut socket, _) = connect_async(server.ws_url(&format!("?spaceID={space}")))
        .await
        .unwrap();

    let push = push_body("metrics-group", "metrics-client", 1..=2);
    let push_len = serde_json::to_vec(&push).unwrap().len() as f64;
    let pushed = server
        .post(&format!("/api/replicache/push?spaceID={space}"), &push)
        .await;
    assert_eq!(pushed.status, StatusCode::OK);
    // The poke is the hub's: wait for it to reach the socket (a bound against a hang).
    let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
        .await
        .expect("a poke")
        .unwrap()
        .unwrap();
    assert_eq!(frame, Message::Text("poke".into()));

    let pulled = server
        .post(
            &format!("/api/replicache/pull?spaceID={space}"),
            &pull_body("metrics-group", json!(null)),
        )
        .await;
    assert_eq!(pulled.status, StatusCode::OK);
    let refused = server
        .post("/api/replicache/pull?spaceID=bad.space", &json!({}))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);

    let text = scrape(&server).await;
    let value = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}"));
    assert_eq!(
        value(r#"sync_requests_total{route="push",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        value(r#"sync_requests_total{route="pull",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        value(r#"sync_requests_total{route="pull",outcome="InvalidSpaceID"}"#),
        1.0
    );
    assert_eq!(
        value(r#"sync_requests_total{route="createSpace",outcome="ok"}"#),
        1.0
    );
    assert_eq!(value("sync_mutations_applied_total"), 2.0);
    assert_eq!(value("sync_mutations_failed_total"), 0.0);
    assert_eq!(value("sync_version_conflicts_total"), 0.0);
    assert_eq!(value("sync_commits_total"), 1.0);
    assert_eq!(value("sync_pokes_sent_total"), 1.0);
    assert_eq!(value("sync_connections_gone_total"), 0.0);
    assert_eq!(value(r#"sync_request_bytes_total{route="push"}"#), push_len);
    assert_eq!(
        value(r#"sync_response_bytes_total{route="push"}"#),
        2.0,
        "the body {{}}"
    );
    assert_eq!(
        value(r#"sync_request_duration_seconds_count{route="pull"}"#),
        2.0
    );
    // Labels are routes and outcomes only: no space or client ID anywhere.
    for id in [
        space.as_str(),
        "metrics-group",
        "metrics-client",
        "bad.space",
    ] {
        assert!(!text.contains(id), "{id} in the metrics");
    }
    server.stop().await;
}
