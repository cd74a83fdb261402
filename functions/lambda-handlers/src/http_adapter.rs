//! API Gateway HTTP API (payload format 2.0) events in, `sync_core` API calls out.

use lambda_http::{Body, Error, Request, RequestExt, Response, http::header};
use std::sync::Arc;
use sync_core::SyncService;
use sync_core::api::{ApiRequest, ApiResponse, Route};
use sync_core::error::ApiError;

/// One HTTP function: the service and the routes this function is deployed for. A route
/// outside the set is answered 404, so a mis-wired integration is visible at once.
#[derive(Clone)]
pub struct HttpFunction {
    service: Arc<SyncService>,
    routes: &'static [Route],
}

impl HttpFunction {
    pub fn new(service: Arc<SyncService>, routes: &'static [Route]) -> Self {
        Self { service, routes }
    }

    pub async fn handle(&self, event: Request) -> Response<Body> {
        let path = event.raw_http_path().to_owned();
        let query = event.query_string_parameters();
        let space_id = query.first("spaceID");
        let accepts_gzip = event
            .headers()
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("gzip"));
        let body: &[u8] = event.body().as_ref();
        let method = event.method().as_str();
        let response = match Route::from_path(&path) {
            Some(route) if self.routes.contains(&route) => {
                self.service
                    .handle(ApiRequest {
                        method,
                        path: &path,
                        space_id,
                        body,
                        accepts_gzip,
                        user: "",
                    })
                    .await
            }
            _ => ApiResponse::from_error(&ApiError::NotFound {
                method: method.to_owned(),
                path: path.clone(),
            }),
        };
        to_lambda_response(response)
    }
}

fn to_lambda_response(response: ApiResponse) -> Response<Body> {
    let mut builder = Response::builder()
        .status(response.status)
        .header(header::CONTENT_TYPE, "application/json");
    let body = if response.gzipped {
        builder = builder.header(header::CONTENT_ENCODING, "gzip");
        // Binary bodies go back base64-encoded, as API Gateway requires.
        Body::Binary(response.body)
    } else {
        Body::Text(String::from_utf8_lossy(&response.body).into_owned())
    };
    builder.body(body).unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::Text(r#"{"error":"Internal"}"#.into()));
        *fallback.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// Runs the Lambda runtime loop for `function`.
pub async fn serve_http(function: HttpFunction) -> Result<(), Error> {
    lambda_http::run(lambda_http::service_fn(move |event: Request| {
        let function = function.clone();
        async move { Ok::<_, Error>(function.handle(event).await) }
    }))
    .await
}
