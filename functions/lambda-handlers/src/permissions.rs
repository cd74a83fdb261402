//! What each Lambda binary needs from its deployment: the environment variables it reads
//! and the AWS calls its code makes, with the IAM actions those calls require; and, for
//! the poke function, the stream actions that Lambda's event source mapping performs
//! with the function's role.
//!
//! `infra/template.yaml` sets exactly these variables and grants exactly these actions
//! (least privilege). `tests/template.rs` holds the template against this declaration, and
//! the declaration against the code: it runs each binary's code path against a local
//! DynamoDB- and Secrets Manager-compatible server (moto) and compares the requests
//! actually sent. When a handler
//! starts calling something new, that test fails until the declaration and the template
//! say so.
//!
//! IAM has no action named after a transaction: each `Put`, `Update`, `Delete` or
//! `ConditionCheck` inside `TransactWriteItems` needs `dynamodb:PutItem`, `UpdateItem`,
//! `DeleteItem` or `ConditionCheckItem`, and each `Get` of `TransactGetItems` needs
//! `dynamodb:GetItem`.

use crate::config;

/// The variable `RUST_LOG`: the log filter ([`crate::logging::filter`]).
pub const RUST_LOG: &str = config::RUST_LOG;

/// Variables the code reads that a deployment must not set: local runs only.
pub const LOCAL_ONLY_ENV: &[&str] = &[
    config::DYNAMODB_ENDPOINT,
    config::SECRETS_MANAGER_ENDPOINT,
    config::COOKIE_SECRET,
    config::JWKS_URL,
    config::S3_ENDPOINT,
];

/// The needs of one binary of `src/bin/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionNeeds {
    /// The binary's name: the template's `BuildProperties.Binary`.
    pub binary: &'static str,
    /// Environment variables it reads (besides the ones Lambda sets).
    pub env: &'static [&'static str],
    /// DynamoDB API operations it sends, as the SDK names them.
    pub dynamodb_operations: &'static [&'static str],
    /// IAM actions on the table.
    pub table_actions: &'static [&'static str],
    /// IAM actions on the version index ([`store_dynamodb::schema::VERSION_INDEX`]).
    pub index_actions: &'static [&'static str],
    /// IAM actions on the WebSocket API's connections (`@connections/*` of its stage).
    pub connection_actions: &'static [&'static str],
    /// IAM actions on the cookie secret (the stack's `AWS::SecretsManager::Secret`).
    pub secret_actions: &'static [&'static str],
    /// IAM actions on the table's stream (`StreamArn`). The code sends none of them:
    /// Lambda's event source mapping reads the stream with the function's role and hands
    /// the records to the function.
    pub stream_actions: &'static [&'static str],
    /// IAM actions on the objects of the answer bucket (the stack's `AWS::S3::Bucket`,
    /// `<bucket ARN>/*`): the requests its code sends or presigns (S3 authorizes a
    /// presigned URL's request against the role that signed it).
    pub answer_actions: &'static [&'static str],
}

pub const SPACES: FunctionNeeds = FunctionNeeds {
    binary: "spaces",
    env: &[config::TABLE_NAME, RUST_LOG, config::AUTH_MODE],
    // createSpace: a conditional PutItem, or signed in a TransactWriteItems (Put of the
    // space, Update of its owner's count of spaces); spaceExists and spaceAccess reads:
    // GetItem; spaceAccess changes: UpdateItem.
    dynamodb_operations: &["GetItem", "PutItem", "TransactWriteItems", "UpdateItem"],
    table_actions: &[
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ],
    index_actions: &[],
    connection_actions: &[],
    secret_actions: &[],
    stream_actions: &[],
    answer_actions: &[],
};

pub const PUSH: FunctionNeeds = FunctionNeeds {
    binary: "push",
    env: &[config::TABLE_NAME, RUST_LOG, config::AUTH_MODE],
    // The snapshot and mutators' reads (TransactGetItems), the commit (TransactWriteItems:
    // Update of the space item's version, Puts). No poke: the commit's change of the space
    // item reaches the poke function through the table's stream ([`POKE`]). A mutator that
    // scans (`Tx::scan`, a Query by key prefix) would add `dynamodb:Query`; the app's
    // mutators do not.
    dynamodb_operations: &["TransactGetItems", "TransactWriteItems"],
    table_actions: &[
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ],
    index_actions: &[],
    connection_actions: &[],
    secret_actions: &[],
    stream_actions: &[],
    answer_actions: &[],
};

/// The poke function ([`crate::poke_stream`]): the table's stream, filtered to changes of
/// space items, invokes it with batches of records; it pokes each space's connections.
pub const POKE: FunctionNeeds = FunctionNeeds {
    binary: "poke",
    env: &[config::TABLE_NAME, RUST_LOG, config::WEBSOCKET_ENDPOINT],
    // The space's connections (Query) and the removal of gone ones (BatchWriteItem).
    dynamodb_operations: &["BatchWriteItem", "Query"],
    table_actions: &["dynamodb:BatchWriteItem", "dynamodb:Query"],
    index_actions: &[],
    // PostToConnection.
    connection_actions: &["execute-api:ManageConnections"],
    secret_actions: &[],
    // What Lambda's poller needs on the stream (the DynamoDB Developer Guide's policy for
    // a function processing a table's stream), on this table's stream only.
    stream_actions: &[
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    ],
    answer_actions: &[],
};

pub const PULL: FunctionNeeds = FunctionNeeds {
    binary: "pull",
    env: &[
        config::TABLE_NAME,
        RUST_LOG,
        config::AUTH_MODE,
        config::COOKIE_SECRET_ARN,
        config::ANSWER_BUCKET,
    ],
    // The space item (version, access) with the group's item (its owner) in one
    // BatchGetItem, the changed entries (Query on the version index) and the group's
    // clients (Query by sort-key prefix), and moving the version past a cookie from the
    // future (a conditional UpdateItem).
    dynamodb_operations: &["BatchGetItem", "Query", "UpdateItem"],
    table_actions: &[
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ],
    index_actions: &["dynamodb:Query"],
    connection_actions: &[],
    // The cookie keys, once per cold start.
    secret_actions: &["secretsmanager:GetSecretValue"],
    stream_actions: &[],
    // An answer over Lambda's response limit, stored (PutObject); the client fetches it
    // with a URL presigned by the function's role (GetObject).
    answer_actions: &["s3:GetObject", "s3:PutObject"],
};

pub const WS_CONNECT: FunctionNeeds = FunctionNeeds {
    binary: "ws-connect",
    env: &[
        config::TABLE_NAME,
        RUST_LOG,
        config::AUTH_MODE,
        config::MAX_SOCKETS_PER_SPACE,
    ],
    // The space's access (GetItem); the count of its sockets (Query, Select=COUNT); the
    // connection's two records (BatchWriteItem).
    dynamodb_operations: &["BatchWriteItem", "GetItem", "Query"],
    table_actions: &[
        "dynamodb:BatchWriteItem",
        "dynamodb:GetItem",
        "dynamodb:Query",
    ],
    index_actions: &[],
    connection_actions: &[],
    secret_actions: &[],
    stream_actions: &[],
    answer_actions: &[],
};

pub const WS_DISCONNECT: FunctionNeeds = FunctionNeeds {
    binary: "ws-disconnect",
    env: &[config::TABLE_NAME, RUST_LOG],
    // The connection's space (GetItem); deleting its two records (BatchWriteItem).
    dynamodb_operations: &["BatchWriteItem", "GetItem"],
    table_actions: &["dynamodb:BatchWriteItem", "dynamodb:GetItem"],
    index_actions: &[],
    connection_actions: &[],
    secret_actions: &[],
    stream_actions: &[],
    answer_actions: &[],
};

/// The WebSocket `$connect` authorizer (the `jwt` auth mode only): it verifies tokens
/// against the issuer's public keys, fetched over HTTPS, and calls no AWS API at all. Its
/// role holds only what SAM gives every function: writing its logs.
pub const WS_AUTHORIZER: FunctionNeeds = FunctionNeeds {
    binary: "ws-authorizer",
    env: &[RUST_LOG, config::JWT_ISSUER, config::JWT_AUDIENCE],
    dynamodb_operations: &[],
    table_actions: &[],
    index_actions: &[],
    connection_actions: &[],
    secret_actions: &[],
    stream_actions: &[],
    answer_actions: &[],
};

/// The garbage collector ([`crate::gc`]), invoked by an EventBridge schedule. The
/// variables of its policy are optional in the code; the template always sets them.
pub const GC: FunctionNeeds = FunctionNeeds {
    binary: "gc",
    env: &[
        config::TABLE_NAME,
        RUST_LOG,
        config::TOMBSTONE_RETENTION_DAYS,
        config::CLIENT_IDLE_DAYS,
    ],
    // The spaces (Scan for space items); a space's item (GetItem) and its old deletes and
    // idle clients (Query of its partition); the tombstone floor's commit, a version-only
    // commit (a conditional UpdateItem); the removals (conditional DeleteItems).
    dynamodb_operations: &["DeleteItem", "GetItem", "Query", "Scan", "UpdateItem"],
    table_actions: &[
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:UpdateItem",
    ],
    index_actions: &[],
    connection_actions: &[],
    secret_actions: &[],
    stream_actions: &[],
    answer_actions: &[],
};

/// Every binary of `src/bin/`.
pub const FUNCTIONS: &[FunctionNeeds] = &[
    SPACES,
    PUSH,
    POKE,
    PULL,
    WS_CONNECT,
    WS_DISCONNECT,
    WS_AUTHORIZER,
    GC,
];

/// The binaries deployed only in the `jwt` auth mode (their resources carry the
/// template's `JwtAuth` condition).
pub const JWT_MODE_ONLY: &[&str] = &[WS_AUTHORIZER.binary];

/// The binaries whose behaviour depends on the auth mode: they get `AUTH_MODE`.
pub fn reads_auth_mode(needs: &FunctionNeeds) -> bool {
    needs.env.contains(&config::AUTH_MODE)
}

/// The needs of the binary named `binary`.
pub fn of(binary: &str) -> Option<&'static FunctionNeeds> {
    FUNCTIONS.iter().find(|f| f.binary == binary)
}
