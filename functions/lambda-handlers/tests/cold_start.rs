//! The pull binary's cold start, run as a process: where its cookie keys come from
//! (`bootstrap::cookie_keys`), that a missing or unusable secret stops it with a clear
//! error, and that the secret's text never reaches its output. The secret lives in moto
//! (Secrets Manager API), as it would in Secrets Manager.
//!
//! A cold start that succeeds goes on to the Lambda runtime loop, which needs the
//! variables Lambda sets (`AWS_LAMBDA_FUNCTION_NAME`...): outside Lambda it stops there,
//! which is how these tests see that it got that far.

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use lambda_handlers::config;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use sync_core::cookie::CookieKeys;
use test_support::LocalDynamo;

/// What the runtime loop says when it starts outside Lambda.
const REACHED_THE_RUNTIME: &str = "AWS_LAMBDA_FUNCTION_NAME";

struct Run {
    success: bool,
    output: String,
}

/// Runs the pull binary with `vars` (and none of the cookie variables of the test's own
/// environment) until it exits.
fn run_pull(moto: &str, vars: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pull"));
    for name in [
        config::COOKIE_SECRET_ARN,
        config::COOKIE_SECRET,
        config::SECRETS_MANAGER_ENDPOINT,
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_RUNTIME_API",
    ] {
        command.env_remove(name);
    }
    command
        .env(config::TABLE_NAME, "cold-start")
        .env(config::DYNAMODB_ENDPOINT, moto)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in vars {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the pull binary");
    let started = Instant::now();
    while child.try_wait().expect("the pull process").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the pull binary did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("its output");
    Run {
        success: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

async fn create_secret(moto: &str, name: &str, text: &str) -> String {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(moto)
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
        .create_secret()
        .name(format!("{name}-{:016x}", rand_suffix()))
        .secret_string(text)
        .send()
        .await
        .expect("create a secret in moto")
        .arn()
        .expect("its ARN")
        .to_owned()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn assert_stopped_with(run: &Run, expected: &[&str], secret: &str) {
    assert!(!run.success, "{}", run.output);
    assert!(
        !run.output.contains(REACHED_THE_RUNTIME),
        "the cold start went on: {}",
        run.output
    );
    for part in expected {
        assert!(run.output.contains(part), "{part:?} in {}", run.output);
    }
    assert!(
        secret.is_empty() || !run.output.contains(secret),
        "the secret was printed"
    );
}

#[tokio::test]
async fn keys_come_from_the_secret_named_by_its_arn() {
    let moto = LocalDynamo::start().await;
    let text = CookieKeys::generate_secret_text();
    let arn = create_secret(moto.endpoint(), "cookie", &text).await;
    let run = run_pull(
        moto.endpoint(),
        &[
            (config::COOKIE_SECRET_ARN, &arn),
            (config::SECRETS_MANAGER_ENDPOINT, moto.endpoint()),
        ],
    );
    assert!(
        run.output.contains("cookie keys loaded") && run.output.contains(REACHED_THE_RUNTIME),
        "{}",
        run.output
    );
    assert!(!run.output.contains(&text), "the secret was printed");
    assert!(!run.output.contains("random key"), "{}", run.output);
}

#[tokio::test]
async fn a_missing_or_unusable_secret_stops_the_cold_start() {
    let moto = LocalDynamo::start().await;
    let endpoint = (config::SECRETS_MANAGER_ENDPOINT, moto.endpoint());

    // No such secret.
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-secret-AbCdEf";
    let run = run_pull(
        moto.endpoint(),
        &[(config::COOKIE_SECRET_ARN, missing), endpoint],
    );
    assert_stopped_with(
        &run,
        &["cannot read the cookie secret", "ResourceNotFoundException"],
        "",
    );

    // A secret whose key is too short, or that holds no key at all.
    for (text, why) in [
        ("hunter2-is-not-long-enough", "at least 32 bytes"),
        ("   ", "holds no key"),
    ] {
        let arn = create_secret(moto.endpoint(), "weak", text).await;
        let run = run_pull(
            moto.endpoint(),
            &[(config::COOKIE_SECRET_ARN, &arn), endpoint],
        );
        assert_stopped_with(&run, &["are not usable", &arn, why], text.trim());
    }
}

#[tokio::test]
async fn local_runs_may_give_the_keys_themselves() {
    let moto = LocalDynamo::start().await;
    let text = format!(
        "{} {}",
        CookieKeys::generate_secret_text(),
        CookieKeys::generate_secret_text()
    );
    let run = run_pull(moto.endpoint(), &[(config::COOKIE_SECRET, &text)]);
    assert!(run.output.contains(REACHED_THE_RUNTIME), "{}", run.output);
    assert!(!run.output.contains("random key"), "{}", run.output);
    for key in text.split_whitespace() {
        assert!(!run.output.contains(key), "the secret was printed");
    }

    let weak = "not-32-bytes";
    let run = run_pull(moto.endpoint(), &[(config::COOKIE_SECRET, weak)]);
    assert_stopped_with(&run, &["COOKIE_SECRET", "at least 32 bytes"], weak);

    // Both is a mistake, never a silent choice.
    let run = run_pull(
        moto.endpoint(),
        &[
            (config::COOKIE_SECRET, &text),
            (config::COOKIE_SECRET_ARN, "arn:aws:secretsmanager:x"),
        ],
    );
    assert_stopped_with(&run, &["both COOKIE_SECRET_ARN and COOKIE_SECRET"], &text);

    // Neither: a random key of this process, and a warning saying so.
    let run = run_pull(moto.endpoint(), &[]);
    assert!(
        run.output.contains("random key") && run.output.contains(REACHED_THE_RUNTIME),
        "{}",
        run.output
    );
}
