//! Startup and shutdown: open the store, bind, say what is served where, serve until
//! SIGINT or SIGTERM.

use crate::auth::{Auth, DEV_SIGN_IN_PATH};
use crate::config::{AuthConfig, Config, JwtConfig, JwtKeys};
use crate::cookie_secret::{self, CookieSecretError};
use crate::jwt::{JwtAuth, KeyError};
use crate::poke_hub::PokeHub;
use crate::routes::{self, API_PREFIX, AppOptions, POKE_PATH};
use crate::static_files;
use crate::store_choice::{self, StoreChoiceError};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreChoiceError),
    #[error(transparent)]
    CookieSecret(#[from] CookieSecretError),
    #[error("the answer bucket: {0}")]
    Answers(#[from] sync_core::spill::SpillError),
    #[error(transparent)]
    JwtKeys(#[from] KeyError),
    #[error("cannot listen on {host}:{port}: {source}")]
    Bind {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Serve(#[source] std::io::Error),
}

pub async fn run(config: Config) -> Result<(), ServerError> {
    let opened = store_choice::open_store(&config.storage).await?;
    let cookie_keys = cookie_secret::load_or_create(&config.cookie_secret_file)?;
    let (auth, auth_description) = load_auth(&config.auth)?;
    let (oversize, answers_description) = match &config.answers {
        Some(answers) => {
            let oversize = crate::answers::open(answers).await?;
            let text = format!(
                "over {} bytes: S3 bucket {} at {} (303 to a presigned URL)",
                answers.limit, answers.bucket, answers.endpoint
            );
            (Some(oversize), text)
        }
        None => (None, "direct, any size".to_owned()),
    };
    let hub = PokeHub::new();
    let options = AppOptions {
        allowed_origins: config.allowed_origins.clone(),
        client_dir: config.client_dir.clone(),
        cookie_keys,
        request_timeout: config.request_timeout,
        auth,
        max_sockets_per_space: config.max_sockets_per_space,
        oversize,
    };
    let gc = config
        .gc
        .map(|gc| crate::gc_task::spawn(Arc::clone(&opened.store), gc));
    let app = routes::app(opened.store, Arc::clone(&hub), &options);
    let bind_error = |source| ServerError::Bind {
        host: config.host.clone(),
        port: config.port,
        source,
    };
    let listener = TcpListener::bind((config.host.as_str(), config.port))
        .await
        .map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let authority = authority(&config.host, local);
    let token_param = match config.auth {
        AuthConfig::None => "",
        AuthConfig::Jwt(_) => "&token=<token>",
    };
    let banner = format!(
        "Serving http://{authority}/ ({})\n\
         API base http://{authority}{API_PREFIX}\n\
         Pokes    ws://{authority}{POKE_PATH}?spaceID=<id>{token_param}\n\
         Store    {}\n\
         Auth     {auth_description}\n\
         Answers  {answers_description}\n\
         Garbage  {}\n",
        static_files::describe(&config.client_dir),
        opened.description,
        describe_gc(config.gc.as_ref()),
    );
    // Whoever started the server may have stopped reading its output: that is no reason
    // to stop serving.
    let mut stdout = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut stdout, banner.as_bytes())
        .and_then(|()| std::io::Write::flush(&mut stdout));
    drop(stdout);
    tracing::info!(address = %local, store = %opened.description, "listening");

    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal(hub))
        .await;
    if let Some(gc) = gc {
        gc.abort();
    }
    served.map_err(ServerError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}

fn describe_gc(gc: Option<&crate::config::GcConfig>) -> String {
    match gc {
        None => "never collected (GC_INTERVAL_SECS=0)".to_owned(),
        Some(gc) => format!(
            "collected every {} s: deletes older than {} s, clients idle for {} s",
            gc.interval.as_secs(),
            gc.policy.tombstone_retention.as_secs(),
            gc.policy.client_idle.as_secs()
        ),
    }
}

/// The auth of `config`, with its line of the banner; says loudly when there is none, and
/// when anyone may sign in as anyone.
fn load_auth(config: &AuthConfig) -> Result<(Auth, String), KeyError> {
    let jwt = match config {
        AuthConfig::None => {
            tracing::warn!(
                "AUTH_MODE=none: NO AUTHENTICATION. Every request is anonymous: anyone who can \
                 reach this server and knows (or guesses) a space's ID may read and change it. \
                 Set AUTH_MODE=jwt for sign-in."
            );
            return Ok((
                Auth::None,
                "none (anyone may sync any space they know)".to_owned(),
            ));
        }
        AuthConfig::Jwt(jwt) => jwt,
    };
    let auth = JwtAuth::load(jwt)?;
    let description = describe_jwt(jwt);
    if auth.dev.is_some() {
        tracing::warn!(
            "development sign-in at POST {DEV_SIGN_IN_PATH}: anyone who can reach this server \
             may sign in as any user. For development only; use JWKS_FILE with a real identity \
             provider otherwise."
        );
    }
    tracing::info!(auth = %description, "auth");
    Ok((Auth::Jwt(std::sync::Arc::new(auth)), description))
}

fn describe_jwt(jwt: &JwtConfig) -> String {
    let mut text = match &jwt.keys {
        JwtKeys::DevSecret(path) => format!(
            "jwt (HS256 development secret {}; development sign-in at POST {DEV_SIGN_IN_PATH}, tokens for {} s)",
            path.display(),
            jwt.dev_token_ttl.as_secs()
        ),
        JwtKeys::Jwks(path) => format!("jwt (keys of {})", path.display()),
    };
    if let Some(issuer) = &jwt.issuer {
        text.push_str(&format!(", issuer {issuer}"));
    }
    if let Some(audience) = &jwt.audience {
        text.push_str(&format!(", audience {audience}"));
    }
    text
}

/// `host:port` as a URL shows it: a name as configured, an IP address as bound (so IPv6
/// gets its brackets), with the port actually bound (`PORT=0` picks one).
fn authority(host: &str, local: SocketAddr) -> String {
    match host.parse::<IpAddr>() {
        Ok(_) => local.to_string(),
        Err(_) => format!("{host}:{}", local.port()),
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, after telling the poke sockets to close so
/// that they do not hold the shutdown up.
async fn shutdown_signal(hub: Arc<PokeHub>) {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
    hub.close_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        let v4: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let v6: SocketAddr = "[::1]:9000".parse().unwrap();
        assert_eq!(authority("127.0.0.1", v4), "127.0.0.1:8080");
        assert_eq!(authority("::1", v6), "[::1]:9000");
        assert_eq!(authority("localhost", v4), "localhost:8080");
    }
}
