//! Pulls larger than Lambda's buffered response: the pull function, driven by API Gateway
//! events of the real shape against moto (DynamoDB and S3 on one endpoint), stores the
//! answer in the answer bucket and redirects (303) to a presigned URL, whose GET returns
//! exactly the answer a direct response would have carried.

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lambda_handlers::HttpFunction;
use lambda_handlers::answer_spill::encoded_len;
use lambda_handlers::auth::AuthMode;
use lambda_handlers::bootstrap;
use lambda_http::http::header;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use spill_s3::S3Spill;
use std::io::Read as _;
use std::sync::Arc;
use sync_core::api::ApiResponse;
use sync_core::cookie::CookieKeys;
use sync_core::spill::Oversize;
use sync_core::{Route, SpaceId, Store};
use test_support::LocalDynamo;

/// An HTTP API (payload format 2.0) `POST` event as API Gateway sends the client's.
fn event(path: &str, space: &str, body: &str, gzip: bool) -> Request {
    let mut headers = vec![
        ("authorization", ""),
        ("x-replicache-requestid", "client1-session1-0"),
        ("user-agent", "Mozilla/5.0"),
    ];
    if gzip {
        headers.push(("accept-encoding", "gzip, deflate, br"));
    }
    let ev = test_support::http_api::post_event(path, Some(space), body, &headers);
    lambda_http::request::from_str(&ev.to_string()).expect("a valid HTTP API v2 event")
}

/// Values that gzip cannot shrink much (as real data often is): a xorshift stream as hex.
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed | 1;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(&format!("{x:016x}"));
    }
    out.truncate(len);
    out
}

struct Fixture {
    dynamo: LocalDynamo,
    client: aws_sdk_dynamodb::Client,
    table: String,
    bucket: String,
    keys: CookieKeys,
    space: String,
}

impl Fixture {
    /// A space of `items` entries of `value_len` bytes each, and the answer bucket.
    async fn new(tag: &str, items: usize, value_len: usize) -> Fixture {
        let dynamo = LocalDynamo::start().await;
        let client = dynamo.client().await;
        let table = dynamo.fresh_table(&client, tag).await;
        let bucket = format!("answers-{table}").to_ascii_lowercase();
        spill_s3::prepare_local_bucket(
            &spill_s3::client_for(Some(dynamo.endpoint())).await,
            &bucket,
        )
        .await
        .expect("the answer bucket in moto");
        let keys = CookieKeys::from_secret_text(&CookieKeys::generate_secret_text()).unwrap();
        let service = bootstrap::sync_service(
            client.clone(),
            table.clone(),
            Arc::new(sync_core::poke::NoPoker),
            AuthMode::None,
        );
        let space = "large-pull-space";
        service
            .store()
            .create_space(&SpaceId::parse(space).unwrap())
            .await
            .unwrap();
        let push = HttpFunction::new(service, &[Route::Push]);
        // A few hundred KB per push keeps each commit within DynamoDB's limits.
        let per_push = (300_000 / value_len).max(1);
        let mut id = 0;
        for chunk in (0..items).collect::<Vec<_>>().chunks(per_push) {
            let mutations: Vec<Value> = chunk
                .iter()
                .map(|i| {
                    id += 1;
                    json!({"clientID": "writer", "id": id, "name": "setItem",
                       "args": {"key": format!("k{i:05}"), "value": noise(*i as u64 + 7, value_len)},
                       "timestamp": 1.0})
                })
                .collect();
            let body = json!({"pushVersion": 1, "clientGroupID": "g-writer",
                              "mutations": mutations})
            .to_string();
            let resp = push
                .handle(event("/api/replicache/push", space, &body, false))
                .await;
            assert_eq!(resp.status(), 200);
        }
        Fixture {
            dynamo,
            client,
            table,
            bucket,
            keys,
            space: space.to_owned(),
        }
    }

    /// The pull function; with `limit`, answers over it go to `bucket`.
    async fn pull_function(&self, limit: Option<usize>, bucket: &str) -> HttpFunction {
        let service = bootstrap::pull_service(
            self.client.clone(),
            self.table.clone(),
            self.keys.clone(),
            AuthMode::None,
        );
        let s3 = spill_s3::client_for(Some(self.dynamo.endpoint())).await;
        HttpFunction::new(service, &[Route::Pull]).with_oversize(
            limit.map(|limit| Oversize::new(Arc::new(S3Spill::new(s3, bucket)), limit)),
        )
    }

    async fn pull(&self, f: &HttpFunction, gzip: bool) -> Response<Body> {
        let body = json!({"pullVersion": 1, "clientGroupID": "g-reader", "profileID": "p",
                          "schemaVersion": "", "cookie": null})
        .to_string();
        f.handle(event("/api/replicache/pull", &self.space, &body, gzip))
            .await
    }
}

/// The body of a Lambda response as the client reads it (gunzipped when so encoded).
fn decoded(resp: &Response<Body>) -> Value {
    let bytes: &[u8] = resp.body().as_ref();
    gunzip_if(resp.headers().get(header::CONTENT_ENCODING), bytes)
}

fn gunzip_if(encoding: Option<&header::HeaderValue>, bytes: &[u8]) -> Value {
    if encoding.is_some_and(|v| v == "gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("gzip");
        serde_json::from_slice(&out).expect("JSON")
    } else {
        serde_json::from_slice(bytes).expect("JSON")
    }
}

/// The size of a Lambda response as the runtime sends it.
fn encoded(resp: &Response<Body>) -> usize {
    let gzipped = resp.headers().get(header::CONTENT_ENCODING).is_some();
    let body: &[u8] = resp.body().as_ref();
    encoded_len(&ApiResponse {
        status: resp.status().as_u16(),
        body: body.to_vec(),
        gzipped,
    })
}

/// GET `url` as a client following the redirect does (no body, no Accept-Encoding
/// forced): status, headers, body.
async fn get(url: &str) -> (u16, header::HeaderMap, Vec<u8>) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let req = hyper::Request::get(url)
        .header("x-replicache-requestid", "client1-session1-0")
        .body(Empty::new())
        .unwrap();
    let resp = client.request(req).await.expect("GET the presigned URL");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

async fn check_redirected(fx: &Fixture, gzip: bool) {
    let direct = fx
        .pull(&fx.pull_function(None, &fx.bucket).await, gzip)
        .await;
    assert_eq!(direct.status(), 200);
    let expected = decoded(&direct);
    assert_eq!(expected["patch"].as_array().unwrap().len(), 1 + 60);
    // The full pull is 3 times the limit.
    let limit = encoded(&direct) / 3;
    let f = fx.pull_function(Some(limit), &fx.bucket).await;
    let resp = fx.pull(&f, gzip).await;
    assert_eq!(resp.status(), 303, "{}", decoded(&resp));
    assert_eq!(decoded(&resp)["redirect"], "SeeOther");
    let location = resp.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        location.starts_with(&format!("{}/{}/answers/", fx.dynamo.endpoint(), fx.bucket)),
        "{location}"
    );
    assert!(
        location.contains("X-Amz-Signature="),
        "presigned: {location}"
    );
    assert!(location.contains("X-Amz-Expires=300"), "{location}");
    let (status, headers, body) = get(&location).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(
        headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| v == "gzip"),
        gzip,
        "stored with Content-Encoding gzip exactly when gzipped"
    );
    assert_eq!(
        gunzip_if(headers.get(header::CONTENT_ENCODING), &body),
        expected
    );
    // Each answer its own object.
    let again = fx.pull(&f, gzip).await;
    assert_ne!(again.headers()[header::LOCATION], location.as_str());
}

#[tokio::test]
async fn a_pull_three_times_over_the_limit_is_redirected_to_its_exact_answer() {
    let fx = Fixture::new("largepull", 60, 4000).await;
    check_redirected(&fx, true).await;
    // A client that takes no gzip gets the plain JSON, through S3 too.
    check_redirected(&fx, false).await;
}

#[tokio::test]
async fn a_small_pull_is_answered_directly() {
    let fx = Fixture::new("smallpull", 3, 100).await;
    let f = fx.pull_function(Some(spill_s3_default()), &fx.bucket).await;
    let resp = fx.pull(&f, true).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get(header::LOCATION).is_none());
    assert_eq!(decoded(&resp)["patch"].as_array().unwrap().len(), 4);
}

fn spill_s3_default() -> usize {
    lambda_handlers::answer_spill::DEFAULT_LIMIT
}

#[tokio::test]
async fn a_failed_store_is_a_clear_503_that_changes_nothing() {
    let fx = Fixture::new("spillfail", 20, 1000).await;
    let store = store_dynamodb::DynamoStore::new(fx.client.clone(), fx.table.clone());
    let space = SpaceId::parse(&fx.space).unwrap();
    let version = store.space_version(&space).await.unwrap();
    // A bucket that does not exist: PutObject fails.
    let f = fx.pull_function(Some(1000), "no-such-bucket-here").await;
    let resp = fx.pull(&f, true).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get(header::LOCATION).is_none());
    let body = decoded(&resp);
    assert_eq!(body["error"], "AnswerUnavailable", "{body}");
    assert!(body["message"].as_str().unwrap().contains("retry"));
    assert_eq!(store.space_version(&space).await.unwrap(), version);
    // The retry, once the bucket is there, is answered.
    let f = fx.pull_function(Some(1000), &fx.bucket).await;
    assert_eq!(fx.pull(&f, true).await.status(), 303);
}
