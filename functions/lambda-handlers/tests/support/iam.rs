//! An SDK interceptor that reads every request as it goes out and records the IAM actions
//! AWS would authorize it against, with where they apply: the ground truth that the
//! declared permissions are checked against.

use super::template::{Grant, Scope};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

/// The `X-Amz-Target` prefix of DynamoDB's JSON protocol (`DynamoDB_20120810.GetItem`).
const DYNAMODB_TARGET: &str = "DynamoDB_20120810.";
/// The `X-Amz-Target` prefix of Secrets Manager's (`secretsmanager.GetSecretValue`).
const SECRETS_MANAGER_TARGET: &str = "secretsmanager.";

#[derive(Debug, Clone)]
pub struct IamRecorder {
    /// The sync table: a request to any other table is recorded as out of scope.
    table: String,
    /// The cookie secret's ARN: a request for any other secret is out of scope.
    secret: Option<String>,
    /// The answer bucket: a request to any other bucket is out of scope.
    bucket: Option<String>,
    grants: Arc<Mutex<BTreeSet<Grant>>>,
}

impl IamRecorder {
    pub fn new(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            secret: None,
            bucket: None,
            grants: Arc::default(),
        }
    }

    /// The recorder of a function given the cookie secret `arn`.
    pub fn with_secret(mut self, arn: &str) -> Self {
        self.secret = Some(arn.to_owned());
        self
    }

    /// The recorder of a function given the answer bucket `bucket`.
    pub fn with_bucket(mut self, bucket: &str) -> Self {
        self.bucket = Some(bucket.to_owned());
        self
    }

    /// The IAM action of one S3 object request (path-style: `/<bucket>/<key>`), named
    /// after the operation (PutObject, GetObject: IAM's names are the API's). A presigned
    /// request passes here too when it is signed, though it is sent by whoever holds it.
    fn record_s3(&self, operation: &str, uri: &str) {
        let path = uri.split_once("://").map_or(uri, |(_, rest)| {
            rest.split_once('/').map_or("", |(_, path)| path)
        });
        let bucket = path.split('/').next().unwrap_or_default();
        let scope = match &self.bucket {
            Some(b) if b == bucket && path.len() > bucket.len() + 1 => Scope::AnswerObjects,
            _ => Scope::Other(format!("s3 {uri}")),
        };
        self.record(&format!("s3:{operation}"), scope);
    }

    pub fn grants(&self) -> BTreeSet<Grant> {
        self.grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, action: &str, scope: Scope) {
        self.grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((action.to_owned(), scope));
    }

    fn table_scope(&self, body: &Value, table: Option<&str>) -> Scope {
        match (table, body["IndexName"].as_str()) {
            (Some(t), None) if t == self.table => Scope::Table,
            (Some(t), Some(index)) if t == self.table => Scope::Index(index.to_owned()),
            (t, _) => Scope::Other(format!("table {t:?}")),
        }
    }

    /// The IAM action of one Secrets Manager request: named after the operation, on the
    /// secret that `SecretId` names (an ARN or a name; the functions pass the ARN).
    fn record_secrets_manager(&self, operation: &str, body: &Value) {
        let scope = match (body["SecretId"].as_str(), &self.secret) {
            (Some(id), Some(secret)) if id == secret => Scope::Secret,
            (id, _) => Scope::Other(format!("secret {id:?}")),
        };
        self.record(&format!("secretsmanager:{operation}"), scope);
    }

    /// The IAM actions of one DynamoDB request (JSON protocol: the body names the tables).
    fn record_dynamodb(&self, operation: &str, body: &Value) {
        match operation {
            "TransactWriteItems" | "TransactGetItems" => {
                for item in body["TransactItems"].as_array().into_iter().flatten() {
                    for (kind, action) in [
                        ("Put", "dynamodb:PutItem"),
                        ("Update", "dynamodb:UpdateItem"),
                        ("Delete", "dynamodb:DeleteItem"),
                        ("ConditionCheck", "dynamodb:ConditionCheckItem"),
                        ("Get", "dynamodb:GetItem"),
                    ] {
                        let action_body = &item[kind];
                        if !action_body.is_null() {
                            let scope =
                                self.table_scope(action_body, action_body["TableName"].as_str());
                            self.record(action, scope);
                        }
                    }
                }
            }
            "BatchWriteItem" | "BatchGetItem" => {
                let tables = body["RequestItems"].as_object().into_iter().flatten();
                for (table, _) in tables {
                    let scope = self.table_scope(&Value::Null, Some(table));
                    self.record(&format!("dynamodb:{operation}"), scope);
                }
            }
            _ => {
                let scope = self.table_scope(body, body["TableName"].as_str());
                self.record(&format!("dynamodb:{operation}"), scope);
            }
        }
    }
}

impl Intercept for IamRecorder {
    fn name(&self) -> &'static str {
        "IamRecorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or("unknown", Metadata::name);
        let request = context.request();
        let body = || -> Value {
            request
                .body()
                .bytes()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null)
        };
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        if target.starts_with(DYNAMODB_TARGET) {
            self.record_dynamodb(operation, &body());
        } else if target.starts_with(SECRETS_MANAGER_TARGET) {
            self.record_secrets_manager(operation, &body());
        } else if matches!(operation, "PutObject" | "GetObject") {
            self.record_s3(operation, request.uri());
        } else if request.uri().contains("/@connections/") {
            // PostToConnection, GetConnection and DeleteConnection share one action.
            self.record("execute-api:ManageConnections", Scope::Connections);
        } else {
            self.record(
                &format!("unknown:{operation}"),
                Scope::Other(request.uri().to_owned()),
            );
        }
        Ok(())
    }
}
