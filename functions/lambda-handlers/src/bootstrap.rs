//! Cold-start wiring: SDK clients and the sync service, built once per execution
//! environment and reused by every invocation.

use crate::config;
use crate::connections::ConnectionTable;
use crate::poker::ApiGatewayPoker;
use std::sync::Arc;
use sync_core::SyncService;
use sync_core::mutators::app;
use sync_core::poke::{NoPoker, Poker};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The table name and a DynamoDB client (honouring `DYNAMODB_ENDPOINT` for local runs).
pub async fn dynamo() -> Result<(aws_sdk_dynamodb::Client, String), BoxError> {
    let table = config::table_name()?;
    Ok((store_dynamodb::client_from_env().await, table))
}

/// The poker of the push function: the WebSocket API's Management API when
/// `WEBSOCKET_ENDPOINT` is set, otherwise none (pokes are optional; clients still pull on
/// their interval).
pub async fn poker(client: &aws_sdk_dynamodb::Client, table: &str) -> Arc<dyn Poker> {
    let Some(endpoint) = config::optional(config::WEBSOCKET_ENDPOINT) else {
        tracing::warn!("WEBSOCKET_ENDPOINT is not set: pushes will not poke");
        return Arc::new(NoPoker);
    };
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let management = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
        .endpoint_url(endpoint)
        .build();
    Arc::new(ApiGatewayPoker::new(
        ConnectionTable::new(client.clone(), table),
        aws_sdk_apigatewaymanagement::Client::from_conf(management),
    ))
}

pub fn sync_service(
    client: aws_sdk_dynamodb::Client,
    table: String,
    poker: Arc<dyn Poker>,
) -> Arc<SyncService> {
    let store = store_dynamodb::DynamoStore::new(client, table);
    Arc::new(SyncService::new(
        Arc::new(store),
        Arc::new(app::registry()),
        poker,
    ))
}
