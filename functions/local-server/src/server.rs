//! Startup and shutdown: open the store, bind, say what is served where, serve until
//! SIGINT or SIGTERM.

use crate::config::Config;
use crate::cookie_secret::{self, CookieSecretError};
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
    let hub = PokeHub::new();
    let options = AppOptions {
        allowed_origins: config.allowed_origins.clone(),
        client_dir: config.client_dir.clone(),
        cookie_keys,
        request_timeout: config.request_timeout,
    };
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
    println!(
        "Serving http://{authority}/ ({})",
        static_files::describe(&config.client_dir)
    );
    println!("API base http://{authority}{API_PREFIX}");
    println!("Pokes    ws://{authority}{POKE_PATH}?spaceID=<id>");
    println!("Store    {}", opened.description);
    tracing::info!(address = %local, store = %opened.description, "listening");

    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal(hub))
        .await
        .map_err(ServerError::Serve)?;
    tracing::info!("stopped");
    Ok(())
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
