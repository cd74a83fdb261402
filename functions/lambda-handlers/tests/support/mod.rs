//! Pieces of `tests/template.rs`: the template as data, the IAM recorder, and API Gateway
//! events of the real shape.

pub mod iam;
pub mod template;

use lambda_http::Request;
use lambda_http::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::json;

/// An HTTP API (payload format 2.0) `POST` event without sign-in (`AuthMode` none).
pub fn http_event(path: &str, space: Option<&str>, body: &str) -> Request {
    http_event_as(None, path, space, body)
}

/// The claims API Gateway's JWT authorizer puts in the event for a Cognito ID token of
/// `user`: every value a string, as on the wire.
pub fn cognito_claims(user: &str) -> serde_json::Value {
    json!({
        "sub": user,
        "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
        "aud": "exampleclientid",
        "cognito:username": format!("name-of-{user}"),
        "email": format!("{user}@example.com"),
        "email_verified": "true",
        "token_use": "id",
        "auth_time": "1795766000",
        "iat": "1795766000",
        "exp": "1795769600",
        "event_id": "0d8d9f2f-1b5e-4a5e-9c45-5d1e7b0e4f11",
        "origin_jti": "6a5c8f3e-1111-4b7a-9b2c-3d4e5f6a7b8c",
        "jti": "0c1d2e3f-2222-4b7a-9b2c-3d4e5f6a7b8c"
    })
}

/// An HTTP API (payload format 2.0) `POST` event; with `user`, as it arrives behind the
/// API's JWT authorizer: the bearer token in `authorization` and the verified claims in
/// `requestContext.authorizer.jwt`.
pub fn http_event_as(user: Option<&str>, path: &str, space: Option<&str>, body: &str) -> Request {
    let mut ev = test_support::http_api::post_event(path, space, body, &[]);
    if let Some(user) = user {
        ev["headers"]["authorization"] = json!(format!("Bearer eyJ.token-of-{user}.sig"));
        ev["requestContext"]["authorizer"] = json!({
            "jwt": {"claims": cognito_claims(user), "scopes": null}
        });
    }
    lambda_http::request::from_str(&ev.to_string()).expect("a valid HTTP API v2 event")
}

/// A WebSocket route event as API Gateway delivers it to a Lambda proxy integration.
pub fn ws_event(
    route: &str,
    connection_id: &str,
    space: Option<&str>,
) -> ApiGatewayWebsocketProxyRequest {
    ws_event_as(None, route, connection_id, space)
}

/// A `$connect` event behind the Lambda REQUEST authorizer, which allowed `user`: its
/// context (`{"user": ...}`) and principal in `requestContext.authorizer`, the token in
/// the query string.
pub fn ws_connect_as(
    user: &str,
    connection_id: &str,
    space: Option<&str>,
) -> ApiGatewayWebsocketProxyRequest {
    ws_event_as(Some(user), "$connect", connection_id, space)
}

fn ws_event_as(
    user: Option<&str>,
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
    if let Some(user) = user {
        ev["queryStringParameters"]["token"] = json!(format!("eyJ.token-of-{user}.sig"));
        ev["requestContext"]["authorizer"] = json!({
            "principalId": user,
            "user": user,
            "integrationLatency": 112
        });
        ev["requestContext"]["identity"] = json!({"sourceIp": "203.0.113.7"});
    }
    if event_type == "MESSAGE" {
        ev["body"] = json!(r#"{"action":"ping"}"#);
    }
    serde_json::from_value(ev).expect("a valid WebSocket proxy event")
}

/// A record of a DynamoDB stream event in the shape of the AWS documentation's example
/// (Lambda's "Using AWS Lambda with Amazon DynamoDB" event: `eventID`, `eventName`,
/// `eventVersion`, `eventSource`, `awsRegion`, `dynamodb` with `Keys`, `SequenceNumber`,
/// `SizeBytes`, `StreamViewType`, and `eventSourceARN`), for the stream of `table` with
/// `StreamViewType` KEYS_ONLY (the template's): the item's keys and no image.
pub fn stream_record(
    table: &str,
    event_name: &str,
    pk: &str,
    sk: &str,
    sequence: &str,
) -> serde_json::Value {
    json!({
        "eventID": format!("{:032x}", sequence.parse::<u128>().unwrap_or(0)),
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1795766400,
            "Keys": {"pk": {"S": pk}, "sk": {"S": sk}},
            "SequenceNumber": sequence,
            "SizeBytes": 64,
            "StreamViewType": "KEYS_ONLY"
        },
        "eventSourceARN": format!(
            "arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-11-27T08:00:00.000"
        )
    })
}

/// The record of a change of the item of `space` (its `headVersion`, as every commit makes).
pub fn space_item_change(table: &str, space: &str, sequence: &str) -> serde_json::Value {
    stream_record(table, "MODIFY", &format!("space#{space}"), "meta", sequence)
}

/// A DynamoDB stream event (`{"Records": [...]}`) as Lambda's event source mapping
/// invokes a function with it, parsed as the poke function parses it.
pub fn stream_event(records: Vec<serde_json::Value>) -> aws_lambda_events::event::dynamodb::Event {
    serde_json::from_value(json!({ "Records": records })).expect("a DynamoDB stream event")
}

/// An EventBridge scheduled event as a `Schedule` rule delivers it to its function (the
/// shape of the AWS documentation's example).
pub fn scheduled_event() -> serde_json::Value {
    json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-27T03:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/sync-GcFunctionDaily"],
        "detail": {}
    })
}
