//! The request figures of [`sync_core::metrics`] in a Prometheus registry, served at
//! `GET /metrics` in the OpenMetrics text format. The same figures as the Lambdas' EMF
//! lines; labels are the route and the outcome (`ok` or the refusal's code), never an ID.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use sync_core::metrics::{MetricsSink, RequestMetrics};

/// The content type of [`PrometheusMetrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, &'static str)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// The server's registry and the metrics in it.
#[derive(Debug)]
pub struct PrometheusMetrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    duration: HistogramFamily,
    request_bytes: Family<Labels, Counter>,
    response_bytes: Family<Labels, Counter>,
    mutations_applied: Counter,
    mutations_failed: Counter,
    conflicts: Counter,
    commits: Counter,
    pokes_sent: Counter,
    connections_gone: Counter,
}

fn duration_histogram() -> Histogram {
    // 1 ms to about 33 s, doubling: the range of a request up to its deadline.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for PrometheusMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl PrometheusMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sync");
        let requests = Family::<Labels, Counter>::default();
        let duration = HistogramFamily::new_with_constructor(duration_histogram);
        let request_bytes = Family::<Labels, Counter>::default();
        let response_bytes = Family::<Labels, Counter>::default();
        let mutations_applied = Counter::default();
        let mutations_failed = Counter::default();
        let conflicts = Counter::default();
        let commits = Counter::default();
        let pokes_sent = Counter::default();
        let connections_gone = Counter::default();
        registry.register(
            "requests",
            "Requests by route and outcome (ok or the refusal's code)",
            requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time to answer a request",
            Unit::Seconds,
            duration.clone(),
        );
        registry.register_with_unit(
            "request",
            "Request body bytes",
            Unit::Bytes,
            request_bytes.clone(),
        );
        registry.register_with_unit(
            "response",
            "Response body bytes as sent",
            Unit::Bytes,
            response_bytes.clone(),
        );
        registry.register(
            "mutations_applied",
            "Mutations applied by pushes",
            mutations_applied.clone(),
        );
        registry.register(
            "mutations_failed",
            "Mutations that failed permanently (processed with no effect)",
            mutations_failed.clone(),
        );
        registry.register(
            "version_conflicts",
            "Push commits that lost to a concurrent commit and were retried",
            conflicts.clone(),
        );
        registry.register("commits", "Push commits", commits.clone());
        registry.register(
            "pokes_sent",
            "Pokes handed to poke sockets",
            pokes_sent.clone(),
        );
        registry.register(
            "connections_gone",
            "Poke sockets found closed when poking",
            connections_gone.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            request_bytes,
            response_bytes,
            mutations_applied,
            mutations_failed,
            conflicts,
            commits,
            pokes_sent,
            connections_gone,
        }
    }

    /// Counts one poke fan-out: `sent` sockets poked, `gone` found closed.
    pub fn record_pokes(&self, sent: usize, gone: usize) {
        self.pokes_sent.inc_by(sent as u64);
        self.connections_gone.inc_by(gone as u64);
    }

    /// The registry in the OpenMetrics text format.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

impl MetricsSink for PrometheusMetrics {
    fn record(&self, m: &RequestMetrics) {
        let route = m.route_name();
        let by_route: Labels = vec![("route", route)];
        self.requests
            .get_or_create(&vec![
                ("route", route),
                ("outcome", m.refusal.unwrap_or("ok")),
            ])
            .inc();
        self.duration
            .get_or_create(&by_route)
            .observe(m.duration.as_secs_f64());
        self.request_bytes
            .get_or_create(&by_route)
            .inc_by(m.request_bytes as u64);
        self.response_bytes
            .get_or_create(&by_route)
            .inc_by(m.response_bytes as u64);
        if let Some(push) = m.push {
            self.mutations_applied.inc_by(push.applied as u64);
            self.mutations_failed.inc_by(push.failed as u64);
            self.conflicts.inc_by(u64::from(push.conflicts));
            self.commits.inc_by(push.commits as u64);
        }
    }
}
