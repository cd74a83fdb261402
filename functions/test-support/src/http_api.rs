//! Events of API Gateway's HTTP API (payload format 2.0), as it sends a client's request
//! to a function: for tests and benchmarks that drive the Lambda handlers.

use serde_json::{Value, json};

/// A `POST` to `path` with `body`, `spaceID=<space>` when given, and `headers` besides
/// `content-type` and `host`.
pub fn post_event(path: &str, space: Option<&str>, body: &str, headers: &[(&str, &str)]) -> Value {
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": path,
        "rawQueryString": space.map(|s| format!("spaceID={s}")).unwrap_or_default(),
        "headers": {
            "content-type": "application/json",
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0"},
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": format!("POST {path}"),
            "stage": "$default",
            "time": "30/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1_795_766_400_000u64
        },
        "body": body,
        "isBase64Encoded": false
    });
    if let Some(space) = space {
        event["queryStringParameters"] = json!({ "spaceID": space });
    }
    for (name, value) in headers {
        event["headers"][*name] = json!(value);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_route_space_and_headers() {
        let event = post_event(
            "/api/replicache/pull",
            Some("s1"),
            "{}",
            &[("accept-encoding", "gzip")],
        );
        assert_eq!(event["routeKey"], "POST /api/replicache/pull");
        assert_eq!(event["queryStringParameters"]["spaceID"], "s1");
        assert_eq!(event["headers"]["accept-encoding"], "gzip");
        assert_eq!(event["headers"]["content-type"], "application/json");
        let none = post_event("/p", None, "", &[]);
        assert!(none.get("queryStringParameters").is_none());
        assert_eq!(none["rawQueryString"], "");
    }
}
