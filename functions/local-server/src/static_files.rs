//! The web client: the built single-page app when its directory exists, otherwise a short
//! note at `/` saying it is not built.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use std::convert::Infallible;
use std::path::Path;
use tower::ServiceExt as _;
use tower::service_fn;
use tower_http::services::{ServeDir, ServeFile};

/// The router that answers everything the API routes do not.
pub fn router(client_dir: &Path) -> Router {
    if client_dir.is_dir() {
        spa(client_dir)
    } else {
        not_built()
    }
}

/// Files of `client_dir`; any other GET that looks like an app route (no file extension in
/// its last segment, e.g. `/space/<id>`) gets `index.html` so the app's router handles it.
/// A missing asset stays a 404: HTML in place of a script would only hide the mistake.
fn spa(client_dir: &Path) -> Router {
    let index = ServeFile::new(client_dir.join("index.html"));
    let fallback = service_fn(move |req: Request<Body>| {
        let index = index.clone();
        async move {
            let is_read = req.method() == Method::GET || req.method() == Method::HEAD;
            if is_read && is_app_route(req.uri()) {
                match index.oneshot(req).await {
                    Ok(response) => Ok::<_, Infallible>(response.map(Body::new)),
                    Err(never) => match never {},
                }
            } else {
                Ok(StatusCode::NOT_FOUND.into_response())
            }
        }
    });
    Router::new().fallback_service(ServeDir::new(client_dir).fallback(fallback))
}

fn is_app_route(uri: &Uri) -> bool {
    let last = uri.path().rsplit('/').next().unwrap_or_default();
    !last.contains('.')
}

const NOT_BUILT: &str = "The web client is not built, so there is nothing to show here.\n\
Build it into the directory named by CLIENT_DIR (default client/dist) and restart.\n\
The sync API is at /api/replicache/.\n";

fn not_built() -> Router {
    Router::new()
        .route("/", get(|| async { NOT_BUILT }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
}

/// For the startup banner.
pub fn describe(client_dir: &Path) -> String {
    if client_dir.is_dir() {
        "web client".to_owned()
    } else {
        format!("web client not built: {} is missing", client_dir.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::CONTENT_TYPE;

    async fn get_path(router: Router, path: &str) -> (StatusCode, String) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn serves_files_and_falls_back_to_index_for_app_routes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<html>app</html>").unwrap();
        std::fs::create_dir(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("assets/app.js"), "console.log(1)").unwrap();
        let app = router(dir.path());

        assert_eq!(
            get_path(app.clone(), "/").await,
            (StatusCode::OK, "<html>app</html>".into())
        );
        assert_eq!(
            get_path(app.clone(), "/assets/app.js").await,
            (StatusCode::OK, "console.log(1)".into())
        );
        assert_eq!(
            get_path(app.clone(), "/space/abc-123").await,
            (StatusCode::OK, "<html>app</html>".into())
        );
        assert_eq!(
            get_path(app.clone(), "/assets/missing.js").await.0,
            StatusCode::NOT_FOUND
        );
        let response = app
            .oneshot(Request::get("/space/x").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.headers()[CONTENT_TYPE], "text/html");
    }

    #[tokio::test]
    async fn says_so_when_the_client_is_not_built() {
        let dir = tempfile::tempdir().unwrap();
        let app = router(&dir.path().join("dist"));
        let (status, body) = get_path(app.clone(), "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("not built"), "{body}");
        assert_eq!(get_path(app, "/space/x").await.0, StatusCode::NOT_FOUND);
    }
}
