//! Pieces of `tests/template.rs`: the template as data, the IAM recorder, and API Gateway
//! events of the real shape.

pub mod iam;
pub mod template;

use lambda_http::Request;
use lambda_http::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::json;

/// An HTTP API (payload format 2.0) `POST` event.
pub fn http_event(path: &str, space: Option<&str>, body: &str) -> Request {
    let query = space.map(|s| format!("spaceID={s}")).unwrap_or_default();
    let mut ev = json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json", "host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "test"},
            "requestId": "r1",
            "routeKey": format!("POST {path}"),
            "stage": "$default",
            "time": "27/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1795766400000u64
        },
        "body": body,
        "isBase64Encoded": false
    });
    if let Some(space) = space {
        ev["queryStringParameters"] = json!({ "spaceID": space });
    }
    lambda_http::request::from_str(&ev.to_string()).expect("a valid HTTP API v2 event")
}

/// A WebSocket route event as API Gateway delivers it to a Lambda proxy integration.
pub fn ws_event(
    route: &str,
    connection_id: &str,
    space: Option<&str>,
) -> ApiGatewayWebsocketProxyRequest {
    let event_type = match route {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let mut ev = json!({
        "headers": {"Host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "messageDirection": "IN",
            "stage": "live",
            "connectedAt": 1795766400000u64,
            "requestTimeEpoch": 1795766400000u64,
            "requestId": "r1",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection_id,
            "apiId": "abc123"
        },
        "isBase64Encoded": false
    });
    if let Some(space) = space {
        ev["queryStringParameters"] = json!({ "spaceID": space });
    }
    if event_type == "MESSAGE" {
        ev["body"] = json!(r#"{"action":"ping"}"#);
    }
    serde_json::from_value(ev).expect("a valid WebSocket proxy event")
}
