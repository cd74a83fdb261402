//! Pokes through the API Gateway Management API: `PostToConnection` the text `poke` to
//! every connection of a space, in parallel with bounded concurrency. A connection that is
//! gone (HTTP 410) is deleted; any other failure is logged and counted, and the caller
//! (the poke function, [`crate::poke_stream`]) has the stream deliver the space's change
//! again. Pushes never call this: they answer right after their commit.

use crate::connections::{ConnectionError, ConnectionTable};
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures::StreamExt as _;
use sync_core::SpaceId;

/// Concurrent PostToConnection calls per poke.
pub const DEFAULT_CONCURRENCY: usize = 64;

pub const POKE_MESSAGE: &str = "poke";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Delivered,
    Gone,
    Failed,
}

/// What one fan-out did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOut {
    pub delivered: usize,
    pub gone: usize,
    /// Posts that failed otherwise (after the SDK's own retries): throttled, 5xx,
    /// timeouts, dropped connections.
    pub failed: usize,
}

impl FanOut {
    /// Whether every connection got its poke or is gone.
    pub fn complete(&self) -> bool {
        self.failed == 0
    }
}

pub struct ApiGatewayPoker {
    connections: ConnectionTable,
    management: Client,
    concurrency: usize,
}

impl ApiGatewayPoker {
    pub fn new(connections: ConnectionTable, management: Client) -> Self {
        Self {
            connections,
            management,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Pokes every connection of `space` and removes the gone ones. An error when the
    /// connections could not be listed (nobody was poked).
    pub async fn fan_out(&self, space: &SpaceId) -> Result<FanOut, ConnectionError> {
        let ids = self.connections.list(space).await.inspect_err(|e| {
            tracing::warn!(space_id = %space, error = %e, "could not list poke connections");
        })?;
        let results: Vec<(String, Delivery)> = futures::stream::iter(ids)
            .map(|id| async move {
                let delivery = self.post(&id).await;
                (id, delivery)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut summary = FanOut::default();
        let mut gone = Vec::new();
        for (id, delivery) in results {
            match delivery {
                Delivery::Delivered => summary.delivered += 1,
                Delivery::Failed => summary.failed += 1,
                Delivery::Gone => {
                    summary.gone += 1;
                    gone.push(id);
                }
            }
        }
        futures::stream::iter(gone)
            .for_each_concurrent(self.concurrency, |id| async move {
                if let Err(e) = self.connections.remove_from_space(space, &id).await {
                    tracing::warn!(space_id = %space, error = %e, "could not remove a gone connection");
                }
            })
            .await;
        tracing::info!(space_id = %space, delivered = summary.delivered, gone = summary.gone,
            failed = summary.failed, "poked");
        Ok(summary)
    }

    async fn post(&self, connection_id: &str) -> Delivery {
        let result = self
            .management
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(POKE_MESSAGE))
            .send()
            .await;
        match result {
            Ok(_) => Delivery::Delivered,
            // A plain 410 counts as gone even without the GoneException error type.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 410) => {
                Delivery::Gone
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => Delivery::Gone,
            Err(e) => {
                tracing::warn!(error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e),
                    "PostToConnection failed");
                Delivery::Failed
            }
        }
    }
}
