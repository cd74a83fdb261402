//! Structured logs: JSON lines that CloudWatch Logs Insights can query. No user data
//! values are ever logged (see `sync_core`'s log calls); each request has one `request`
//! line with its figures.
//!
//! Not `lambda_runtime::tracing::init_default_subscriber`: it writes no timestamp, and
//! Lambda counts a JSON line without an RFC 3339 `timestamp` as INFO, so the template's
//! `ApplicationLogLevel` could not filter on the lines' levels. `RUST_LOG` (the template's
//! `LogLevel`) is the one filter instead, with Lambda's own left wide open.

use crate::config;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt as _;

/// JSON lines on stdout, filtered by [`filter`].
pub fn init() {
    install(filter());
}

/// The filter of `RUST_LOG` (the template's `LogLevel`); `info` when it is unset or not a
/// filter.
pub fn filter() -> EnvFilter {
    config::optional(config::RUST_LOG)
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new("info"))
}

/// Makes JSON lines on stdout, filtered by `filter`, this process's log.
pub fn install(filter: EnvFilter) {
    subscriber(filter, std::io::stdout).init();
}

/// The JSON subscriber, writing to `writer`.
pub fn subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(writer)
        // Lambda adds its own timestamp to every line.
        .without_time()
        // The runtime runs each invocation in a span carrying its `requestId`: every line
        // lists its spans ("spans", outermost first), so it carries that ID even when it
        // is logged in a span of its own.
        .with_current_span(false)
        .with_span_list(true)
        .with_target(false)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_carry_the_invocation_request_id() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = subscriber(EnvFilter::new("info"), move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            // The span `lambda_runtime` opens for each invocation.
            let span = tracing::info_span!("Lambda runtime invoke", requestId = "req-7");
            let _entered = span.enter();
            tracing::info!(route = "pull", "request");
            tracing::debug!("filtered out");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["fields"]["message"], "request");
        assert_eq!(lines[0]["fields"]["route"], "pull");
        assert_eq!(lines[0]["spans"][0]["requestId"], "req-7");
    }
}
