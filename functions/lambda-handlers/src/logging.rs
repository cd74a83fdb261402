//! Structured logs: JSON lines that CloudWatch Logs Insights can query. No user data
//! values are ever logged (see `sync_core`'s log calls).

pub fn init() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Lambda adds its own timestamps and request IDs to every line.
        .without_time()
        .with_current_span(false)
        .with_target(false)
        .init();
}
