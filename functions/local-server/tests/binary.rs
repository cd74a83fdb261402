//! The `local-server` binary itself: banner, SQLite file in DATA_DIR, graceful shutdown on
//! SIGTERM, data that survives a restart, and logs free of user data.

mod common;

use axum::http::StatusCode;
use common::{post_json, pull_body, push_body};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// A value that must never appear in a log line.
const SECRET: &str = "private-value-4f1c9a";

struct Running {
    child: Child,
    addr: SocketAddr,
    banner: Vec<String>,
}

/// Starts the binary on a free port, its logs going to `log`.
async fn start(data_dir: &Path, log: &Path) -> Running {
    start_with_env(data_dir, log, &[]).await
}

/// [`start`] with more environment variables.
async fn start_with_env(data_dir: &Path, log: &Path, env: &[(&str, &str)]) -> Running {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_local-server"))
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("DATA_DIR", data_dir)
        .env("CLIENT_DIR", data_dir.join("no-client"))
        .env_remove("DYNAMODB_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .env("RUST_LOG", "debug")
        .env_remove("AUTH_MODE")
        .env_remove("JWT_SECRET_FILE")
        .env_remove("JWKS_FILE")
        .env_remove("JWT_ISSUER")
        .env_remove("JWT_AUDIENCE")
        .env_remove("DEV_TOKEN_TTL_SECS")
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    while banner.len() < 5 {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the banner is printed")
            .unwrap()
            .expect("the server is running");
        banner.push(line);
    }
    let addr = banner[0]
        .strip_prefix("Serving http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    Running {
        child,
        addr,
        banner,
    }
}

async fn terminate(mut running: Running) {
    let pid = running.child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), running.child.wait())
        .await
        .expect("the server stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn serves_and_keeps_its_data_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let log = dir.path().join("server.log");

    let first = start(&data_dir, &log).await;
    let a = first.addr;
    assert_eq!(
        first.banner[0],
        format!(
            "Serving http://{a}/ (web client not built: {} is missing)",
            data_dir.join("no-client").display()
        )
    );
    assert_eq!(
        first.banner[1],
        format!("API base http://{a}/api/replicache/")
    );
    assert_eq!(
        first.banner[2],
        format!("Pokes    ws://{a}/api/replicache/poke?spaceID=<id>")
    );
    assert!(
        first.banner[3].starts_with("Store    SQLite file "),
        "{}",
        first.banner[3]
    );
    assert!(first.banner[3].ends_with("replicache.sqlite3"));
    assert_eq!(
        first.banner[4],
        "Auth     none (anyone may sync any space they know)"
    );

    let created = post_json(
        a,
        "/api/replicache/createSpace",
        &json!({"spaceID": "kept"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK);
    let pushed = post_json(
        a,
        "/api/replicache/push?spaceID=kept",
        &push_body("g1", "c1", 1..=4),
    )
    .await;
    assert_eq!(pushed.status, StatusCode::OK);
    let secret = json!({"pushVersion": 1, "clientGroupID": "g1", "profileID": "p",
        "schemaVersion": "1", "mutations": [
            {"clientID": "c1", "id": 5, "name": "setItem",
             "args": {"key": "k", "value": SECRET}, "timestamp": 1},
            {"clientID": "c1", "id": 6, "name": "setItem", "args": SECRET, "timestamp": 2}]});
    let pushed = post_json(a, "/api/replicache/push?spaceID=kept", &secret).await;
    assert_eq!(pushed.status, StatusCode::OK);
    let before_restart = post_json(
        a,
        "/api/replicache/pull?spaceID=kept",
        &pull_body("g1", json!(null)),
    )
    .await
    .json()["cookie"]
        .clone();
    terminate(first).await;
    assert!(data_dir.join("replicache.sqlite3").is_file());

    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(
        logs.contains("AUTH_MODE=none: NO AUTHENTICATION"),
        "said loudly: {logs}"
    );
    assert!(!logs.contains(SECRET), "user data stays out of the logs");

    let second = start(&data_dir, &log).await;
    let b = second.addr;
    let exists = post_json(
        b,
        "/api/replicache/spaceExists",
        &json!({"spaceID": "kept"}),
    )
    .await;
    assert_eq!(exists.json(), json!({"spaceExists": true}));
    let pulled = post_json(
        b,
        "/api/replicache/pull?spaceID=kept",
        &pull_body("g1", json!(null)),
    )
    .await;
    assert_eq!(
        pulled.json(),
        json!({"cookie": before_restart, "lastMutationIDChanges": {"c1": 6},
            "patch": [{"op": "clear"}, {"op": "put", "key": "count", "value": 4},
                {"op": "put", "key": "item/k", "value": SECRET}]}),
        "the same data, under the same signed cookie: the key survived the restart"
    );
    assert_eq!(before_restart["order"], 2);
    assert!(data_dir.join("cookie-secret").is_file());
    terminate(second).await;
}

#[tokio::test]
async fn jwt_mode_with_the_development_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let log = dir.path().join("server.log");
    let env = [("AUTH_MODE", "jwt"), ("DEV_TOKEN_TTL_SECS", "600")];

    let first = start_with_env(&data_dir, &log, &env).await;
    let a = first.addr;
    assert_eq!(
        first.banner[2],
        format!("Pokes    ws://{a}/api/replicache/poke?spaceID=<id>&token=<token>")
    );
    let secret_file = data_dir.join("jwt-secret");
    assert_eq!(
        first.banner[4],
        format!(
            "Auth     jwt (HS256 development secret {}; development sign-in at POST /api/dev/signIn, tokens for 600 s)",
            secret_file.display()
        )
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "readable by its owner only");
    }
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    assert_eq!(secret.trim().len(), 64, "256 random bits, hex");

    let refused = post_json(a, "/api/replicache/createSpace", &json!({})).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let signed_in = post_json(a, "/api/dev/signIn", &json!({"name": "alice"})).await;
    assert_eq!(signed_in.status, StatusCode::OK);
    let token = signed_in.json()["token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    let with_token = |path: &'static str, body: serde_json::Value| {
        let bearer = bearer.clone();
        async move {
            common::request(
                a,
                axum::http::Method::POST,
                path,
                &[
                    ("content-type", "application/json"),
                    ("authorization", &bearer),
                ],
                serde_json::to_vec(&body).unwrap(),
            )
            .await
        }
    };
    let created = with_token("/api/replicache/createSpace", json!({"spaceID": "mine"})).await;
    assert_eq!(created.status, StatusCode::OK);
    terminate(first).await;
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("anyone who can reach this server may sign in as any user"),
        "{logs}"
    );
    assert!(!logs.contains(&token), "tokens stay out of the logs");

    // The secret survives a restart: the token still holds.
    let second = start_with_env(&data_dir, &log, &env).await;
    let b = second.addr;
    let exists = common::request(
        b,
        axum::http::Method::POST,
        "/api/replicache/spaceExists",
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {token}")),
        ],
        serde_json::to_vec(&json!({"spaceID": "mine"})).unwrap(),
    )
    .await;
    assert_eq!(exists.json(), json!({"spaceExists": true}));
    terminate(second).await;
}

#[tokio::test]
async fn a_jwt_setting_without_jwt_mode_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_local-server"))
        .env("PORT", "0")
        .env("DATA_DIR", dir.path())
        .env_remove("AUTH_MODE")
        .env("JWKS_FILE", dir.path().join("jwks.json"))
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("JWKS_FILE is a setting of AUTH_MODE=jwt"),
        "{stderr}"
    );
}
