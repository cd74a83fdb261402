//! When each DynamoDB request was on the wire, to tell sequential round trips from
//! concurrent ones. `store_dynamodb::RequestCounter` counts requests; this interceptor
//! also keeps each attempt's start and end, so that the critical path of an operation
//! can be read off: requests that overlap in time share one round trip.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// One request on the wire.
#[derive(Debug, Clone)]
pub struct Span {
    pub operation: String,
    pub start: Instant,
    pub end: Instant,
}

#[derive(Debug, Clone, Default)]
pub struct Timeline {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[derive(Debug, Clone)]
struct SentAt(Instant);

impl Storable for SentAt {
    type Storer = StoreReplace<Self>;
}

impl Timeline {
    pub fn new() -> Self {
        Self::default()
    }

    /// The requests recorded since the last call, in the order they were sent.
    pub fn take(&self) -> Vec<Span> {
        let mut spans = std::mem::take(&mut *self.lock());
        spans.sort_by_key(|s| s.start);
        spans
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Span>> {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Intercept for Timeline {
    fn name(&self) -> &'static str {
        "Timeline"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(SentAt(Instant::now()));
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let end = Instant::now();
        let start = cfg.load::<SentAt>().map_or(end, |s| s.0);
        let operation = cfg
            .load::<Metadata>()
            .map_or("unknown", Metadata::name)
            .to_owned();
        self.lock().push(Span {
            operation,
            start,
            end,
        });
        Ok(())
    }
}

/// Sequential round trips: requests are grouped while they overlap in time; each group is
/// one round trip of the critical path. Returns the groups' operations, in order.
pub fn rounds(spans: &[Span]) -> Vec<Vec<String>> {
    let mut rounds: Vec<Vec<String>> = Vec::new();
    let mut round_end: Option<Instant> = None;
    for span in spans {
        match round_end {
            Some(end) if span.start < end => {
                if let Some(last) = rounds.last_mut() {
                    last.push(span.operation.clone());
                }
                round_end = Some(end.max(span.end));
            }
            _ => {
                rounds.push(vec![span.operation.clone()]);
                round_end = Some(span.end);
            }
        }
    }
    rounds
}

/// `TransactGetItems -> GetItem -> TransactWriteItems`, with `a+b` for a round of
/// concurrent requests and `GetItem x3` for repeats in a row.
pub fn describe_rounds(rounds: &[Vec<String>]) -> String {
    let names: Vec<String> = rounds.iter().map(|r| r.join("+")).collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < names.len() {
        let mut j = i;
        while j < names.len() && names[j] == names[i] {
            j += 1;
        }
        if j - i > 1 {
            out.push(format!("{} x{}", names[i], j - i));
        } else {
            out.push(names[i].clone());
        }
        i = j;
    }
    out.join(" -> ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn span(op: &str, base: Instant, from: u64, to: u64) -> Span {
        Span {
            operation: op.to_owned(),
            start: base + Duration::from_millis(from),
            end: base + Duration::from_millis(to),
        }
    }

    #[test]
    fn overlapping_requests_share_a_round() {
        let t = Instant::now();
        let spans = vec![
            span("GetItem", t, 0, 10),
            span("Query", t, 11, 20),
            span("Query", t, 12, 25),
            span("Put", t, 30, 40),
        ];
        let r = rounds(&spans);
        assert_eq!(r.len(), 3);
        assert_eq!(describe_rounds(&r), "GetItem -> Query+Query -> Put");
        let seq = vec![span("Query", t, 0, 1), span("Query", t, 2, 3)];
        assert_eq!(describe_rounds(&rounds(&seq)), "Query x2");
    }
}
