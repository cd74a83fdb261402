//! Metrics in CloudWatch Embedded Metric Format: one JSON line per request (or poke
//! batch) on stdout, which CloudWatch Logs turns into metrics with no API call of the
//! function's own. Format: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>.
//!
//! Dimensions are the route and the outcome (`ok` or the refusal's code) of a request,
//! and the function of a poke batch or a garbage collection run: a handful of values each. No space, user or client ID and no user data ever
//! enters a line.

use crate::poke_stream::BatchSummary;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};
use store_dynamodb::{CapacityStats, DynamoStore};
use sync_core::gc::GcReport;
use sync_core::metrics::{MetricsSink, RequestMetrics};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "ReplicacheSync";

/// The dimension keys: a request's route, its outcome, and the function of a poke batch.
pub mod dimension {
    pub const ROUTE: &str = "Route";
    pub const OUTCOME: &str = "Outcome";
    pub const FUNCTION: &str = "Function";
    /// The `Function` of the poke function's lines.
    pub const POKE: &str = "poke";
    /// The `Function` of the garbage collector's lines.
    pub const GC: &str = "gc";
}

/// The metric names, as the alarms and the dashboard of `infra/template.yaml` name them.
pub mod metric {
    pub const REQUESTS: &str = "Requests";
    pub const REFUSED: &str = "Refused";
    pub const LATENCY: &str = "Latency";
    pub const REQUEST_BYTES: &str = "RequestBytes";
    pub const RESPONSE_BYTES: &str = "ResponseBytes";
    pub const MUTATIONS_APPLIED: &str = "MutationsApplied";
    pub const MUTATIONS_FAILED: &str = "MutationsFailed";
    pub const VERSION_CONFLICTS: &str = "VersionConflicts";
    pub const COMMITS: &str = "Commits";
    pub const READ_CAPACITY_UNITS: &str = "ReadCapacityUnits";
    pub const WRITE_CAPACITY_UNITS: &str = "WriteCapacityUnits";
    pub const DYNAMO_REQUESTS: &str = "DynamoRequests";
    pub const STREAM_RECORDS: &str = "StreamRecords";
    pub const SPACES_POKED: &str = "SpacesPoked";
    pub const POKES_SENT: &str = "PokesSent";
    pub const CONNECTIONS_GONE: &str = "ConnectionsGone";
    pub const POKES_FAILED: &str = "PokesFailed";
    pub const SPACES_UNLISTED: &str = "SpacesUnlisted";
    pub const SPACES_COLLECTED: &str = "SpacesCollected";
    pub const TOMBSTONES_REMOVED: &str = "TombstonesRemoved";
    pub const CLIENTS_REMOVED: &str = "ClientsRemoved";
    pub const FLOORS_RAISED: &str = "FloorsRaised";
    pub const SPACES_DEFERRED: &str = "SpacesDeferred";
    pub const SPACES_FAILED: &str = "SpacesFailed";
    pub const GC_INCOMPLETE: &str = "GcIncomplete";

    /// A request's metrics, by [`super::dimension::ROUTE`] (pushes add the push figures,
    /// functions with a store the capacity figures).
    pub const BY_ROUTE: [&str; 12] = [
        REQUESTS,
        REFUSED,
        LATENCY,
        REQUEST_BYTES,
        RESPONSE_BYTES,
        MUTATIONS_APPLIED,
        MUTATIONS_FAILED,
        VERSION_CONFLICTS,
        COMMITS,
        READ_CAPACITY_UNITS,
        WRITE_CAPACITY_UNITS,
        DYNAMO_REQUESTS,
    ];
    /// The metrics also by [`super::dimension::ROUTE`] and [`super::dimension::OUTCOME`].
    pub const BY_ROUTE_AND_OUTCOME: [&str; 1] = [REQUESTS];
    /// A poke batch's metrics, by [`super::dimension::FUNCTION`].
    pub const BY_FUNCTION: [&str; 6] = [
        STREAM_RECORDS,
        SPACES_POKED,
        POKES_SENT,
        CONNECTIONS_GONE,
        POKES_FAILED,
        SPACES_UNLISTED,
    ];
    /// A garbage collection run's metrics, by [`super::dimension::FUNCTION`]
    /// ([`super::dimension::GC`]).
    pub const BY_GC_FUNCTION: [&str; 7] = [
        SPACES_COLLECTED,
        TOMBSTONES_REMOVED,
        CLIENTS_REMOVED,
        FLOORS_RAISED,
        SPACES_DEFERRED,
        SPACES_FAILED,
        GC_INCOMPLETE,
    ];
}

/// The EMF units used here (a subset of CloudWatch's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Bytes,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
        }
    }
}

/// Where the lines go: stdout on Lambda, a buffer in tests.
pub type SharedWriter = Arc<Mutex<dyn Write + Send>>;

/// Writes EMF lines.
#[derive(Clone)]
pub struct EmfWriter {
    out: SharedWriter,
}

impl EmfWriter {
    /// Lines on stdout, which Lambda sends to CloudWatch Logs.
    pub fn stdout() -> Self {
        Self::to(Arc::new(Mutex::new(std::io::stdout())))
    }

    pub fn to(out: SharedWriter) -> Self {
        Self { out }
    }

    /// One EMF line: `metrics` (name, unit, value) under `dimensions`, the metrics named
    /// in `by_outcome` also under one more dimension (key, value), and `properties`
    /// (log fields, no metrics).
    fn emit(
        &self,
        dimensions: &[(&str, &str)],
        metrics: &[(&str, Unit, f64)],
        by_outcome: Option<(&str, &str, &[&str])>,
        properties: &[(&str, Value)],
    ) {
        let keys: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
        let mut directives = vec![json!({
            "Namespace": NAMESPACE,
            "Dimensions": [keys],
            "Metrics": metrics.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit.name()})).collect::<Vec<_>>(),
        })];
        let mut line = Map::new();
        for (k, v) in properties {
            line.insert((*k).into(), v.clone());
        }
        for (k, v) in dimensions {
            line.insert((*k).into(), json!(v));
        }
        if let Some((key, value, names)) = by_outcome {
            let mut with_outcome = keys.clone();
            with_outcome.push(key);
            let units: Vec<Value> = names
                .iter()
                .filter_map(|n| metrics.iter().find(|(name, ..)| name == n))
                .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.name()}))
                .collect();
            directives.push(json!({
                "Namespace": NAMESPACE,
                "Dimensions": [with_outcome],
                "Metrics": units,
            }));
            line.insert(key.into(), json!(value));
        }
        for (name, _, value) in metrics {
            line.insert((*name).into(), json!(value));
        }
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        line.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp, "CloudWatchMetrics": directives}),
        );
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        // One write per line, under the lock, so that concurrent lines never interleave.
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "could not write a metrics line");
        }
    }

    /// The figures of one poke batch: pokes delivered, connections gone, posts failed.
    pub fn poke_batch(&self, summary: &BatchSummary) {
        self.emit(
            &[(dimension::FUNCTION, dimension::POKE)],
            &[
                (metric::STREAM_RECORDS, Unit::Count, summary.records as f64),
                (metric::SPACES_POKED, Unit::Count, summary.spaces as f64),
                (metric::POKES_SENT, Unit::Count, summary.delivered as f64),
                (metric::CONNECTIONS_GONE, Unit::Count, summary.gone as f64),
                (
                    metric::POKES_FAILED,
                    Unit::Count,
                    summary.failed_posts as f64,
                ),
                (
                    metric::SPACES_UNLISTED,
                    Unit::Count,
                    summary.unlisted_spaces as f64,
                ),
            ],
            None,
            &[],
        );
    }
}

impl EmfWriter {
    /// The figures of one garbage collection run; `GcIncomplete` is 1 when it stopped at
    /// its deadline.
    pub fn gc_run(&self, report: &GcReport) {
        self.emit(
            &[(dimension::FUNCTION, dimension::GC)],
            &[
                (metric::SPACES_COLLECTED, Unit::Count, report.spaces as f64),
                (
                    metric::TOMBSTONES_REMOVED,
                    Unit::Count,
                    report.tombstones_removed as f64,
                ),
                (
                    metric::CLIENTS_REMOVED,
                    Unit::Count,
                    report.clients_removed as f64,
                ),
                (
                    metric::FLOORS_RAISED,
                    Unit::Count,
                    report.floors_raised as f64,
                ),
                (
                    metric::SPACES_DEFERRED,
                    Unit::Count,
                    report.spaces_deferred as f64,
                ),
                (
                    metric::SPACES_FAILED,
                    Unit::Count,
                    report.spaces_failed as f64,
                ),
                (
                    metric::GC_INCOMPLETE,
                    Unit::Count,
                    f64::from(u8::from(report.incomplete)),
                ),
            ],
            None,
            &[],
        );
    }
}

/// The [`MetricsSink`] of an HTTP function: one EMF line per request.
pub struct EmfMetrics {
    writer: EmfWriter,
    capacity: Option<CapacityDelta>,
}

/// DynamoDB capacity consumed since the previous request. Lambda hands an instance one
/// request at a time, so the difference of the store's counter between two requests is
/// what the later one consumed.
struct CapacityDelta {
    store: DynamoStore,
    last: Mutex<CapacityStats>,
}

impl EmfMetrics {
    pub fn new(writer: EmfWriter) -> Self {
        Self {
            writer,
            capacity: None,
        }
    }

    /// Also reports the DynamoDB capacity each request consumed through `store` (or a
    /// clone of it: clones share the counter).
    pub fn with_capacity_of(mut self, store: DynamoStore) -> Self {
        let last = Mutex::new(store.capacity_stats());
        self.capacity = Some(CapacityDelta { store, last });
        self
    }
}

impl MetricsSink for EmfMetrics {
    fn record(&self, m: &RequestMetrics) {
        let mut metrics: Vec<(&str, Unit, f64)> = vec![
            (metric::REQUESTS, Unit::Count, 1.0),
            (
                metric::REFUSED,
                Unit::Count,
                if m.refusal.is_some() { 1.0 } else { 0.0 },
            ),
            (
                metric::LATENCY,
                Unit::Milliseconds,
                m.duration.as_secs_f64() * 1000.0,
            ),
            (metric::REQUEST_BYTES, Unit::Bytes, m.request_bytes as f64),
            (metric::RESPONSE_BYTES, Unit::Bytes, m.response_bytes as f64),
        ];
        if let Some(push) = m.push {
            metrics.extend([
                (metric::MUTATIONS_APPLIED, Unit::Count, push.applied as f64),
                (metric::MUTATIONS_FAILED, Unit::Count, push.failed as f64),
                (
                    metric::VERSION_CONFLICTS,
                    Unit::Count,
                    f64::from(push.conflicts),
                ),
                (metric::COMMITS, Unit::Count, push.commits as f64),
            ]);
        }
        if let Some(capacity) = &self.capacity {
            let now = capacity.store.capacity_stats();
            let mut last = capacity.last.lock().unwrap_or_else(PoisonError::into_inner);
            metrics.extend([
                (
                    metric::READ_CAPACITY_UNITS,
                    Unit::Count,
                    (now.read_units - last.read_units).max(0.0),
                ),
                (
                    metric::WRITE_CAPACITY_UNITS,
                    Unit::Count,
                    (now.write_units - last.write_units).max(0.0),
                ),
                (
                    metric::DYNAMO_REQUESTS,
                    Unit::Count,
                    now.requests.saturating_sub(last.requests) as f64,
                ),
            ]);
            *last = now;
        }
        self.writer.emit(
            &[(dimension::ROUTE, m.route_name())],
            &metrics,
            Some((
                dimension::OUTCOME,
                m.refusal.unwrap_or("ok"),
                &metric::BY_ROUTE_AND_OUTCOME,
            )),
            &[("Status", json!(m.status))],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poke_batch_is_one_line_of_its_counts_by_function() {
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let summary = BatchSummary {
            records: 5,
            skipped: 1,
            spaces: 2,
            delivered: 7,
            gone: 3,
            failed_posts: 1,
            unlisted_spaces: 0,
        };
        EmfWriter::to(out.clone()).poke_batch(&summary);
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1);
        let line: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line["Function"], "poke");
        assert_eq!(line["PokesSent"], 7.0);
        assert_eq!(line["ConnectionsGone"], 3.0);
        assert_eq!(line["PokesFailed"], 1.0);
        assert_eq!(line["SpacesPoked"], 2.0);
        let directives = line["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        assert_eq!(directives[0]["Namespace"], NAMESPACE);
        assert_eq!(directives[0]["Dimensions"], json!([["Function"]]));
        let names: Vec<&str> = directives[0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                assert_eq!(m["Unit"], "Count");
                m["Name"].as_str().unwrap()
            })
            .collect();
        assert!(names.contains(&"PokesSent") && names.contains(&"ConnectionsGone"));
    }

    /// The names of each directive's metrics in `line`, with its dimension sets.
    fn directives(line: &Value) -> Vec<(Value, Vec<String>)> {
        line["_aws"]["CloudWatchMetrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let names = d["Metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["Name"].as_str().unwrap().to_owned())
                    .collect();
                (d["Dimensions"].clone(), names)
            })
            .collect()
    }

    #[test]
    fn the_public_lists_are_what_the_lines_carry() {
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let writer = EmfWriter::to(out.clone());
        writer.poke_batch(&BatchSummary::default());
        EmfMetrics::new(writer).record(&RequestMetrics {
            route: Some(sync_core::Route::Push),
            status: 200,
            refusal: None,
            duration: std::time::Duration::from_millis(5),
            request_bytes: 10,
            response_bytes: 20,
            push: Some(sync_core::metrics::PushFigures::default()),
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            directives(&lines[0]),
            vec![(
                json!([[dimension::FUNCTION]]),
                metric::BY_FUNCTION.map(String::from).to_vec()
            )]
        );
        let request = directives(&lines[1]);
        assert_eq!(request.len(), 2);
        assert_eq!(request[0].0, json!([[dimension::ROUTE]]));
        // Every metric but the capacity figures (this sink has no store).
        assert_eq!(
            request[0].1,
            metric::BY_ROUTE[..9]
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            request[1].0,
            json!([[dimension::ROUTE, dimension::OUTCOME]])
        );
        assert_eq!(
            request[1].1,
            metric::BY_ROUTE_AND_OUTCOME.map(String::from).to_vec()
        );
        assert_eq!(lines[1][dimension::ROUTE], "push");
        assert_eq!(lines[1][dimension::OUTCOME], "ok");
    }

    #[test]
    fn a_gc_run_is_one_line_of_its_counts_by_function() {
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let report = GcReport {
            spaces: 4,
            tombstones_removed: 3,
            clients_removed: 2,
            floors_raised: 1,
            spaces_deferred: 0,
            spaces_failed: 1,
            incomplete: true,
            resumed: false,
        };
        EmfWriter::to(out.clone()).gc_run(&report);
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1);
        let line: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line[dimension::FUNCTION], dimension::GC);
        assert_eq!(line[metric::TOMBSTONES_REMOVED], 3.0);
        assert_eq!(line[metric::CLIENTS_REMOVED], 2.0);
        assert_eq!(line[metric::SPACES_FAILED], 1.0);
        assert_eq!(line[metric::GC_INCOMPLETE], 1.0);
        assert_eq!(
            directives(&line),
            vec![(
                json!([[dimension::FUNCTION]]),
                metric::BY_GC_FUNCTION.map(String::from).to_vec()
            )]
        );
    }
}
