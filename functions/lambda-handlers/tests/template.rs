//! `infra/template.yaml` held against the code: one function per binary, the environment
//! each binary reads, the routes and their authorizers, the table's schema, the abuse
//! limits, least-privilege IAM, and the alarms and dashboard (on metrics that exist, the
//! functions' EMF ones by `lambda_handlers::emf`'s names), in both auth modes (the
//! template as deployed with `AuthMode` none and jwt: `support::template` evaluates its
//! Conditions and `Fn::If`s).
//! The IAM declaration of `lambda_handlers::permissions` is itself checked against the
//! requests each binary's code path really sends, to a DynamoDB-compatible server (moto)
//! and to the Management API stand-in.

mod support;

use apigw_management_standin::Standin;
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
use lambda_handlers::auth::AuthMode;
use lambda_handlers::connections::ConnectionTable;
use lambda_handlers::emf;
use lambda_handlers::functions::{self, Entry, Function};
use lambda_handlers::permissions::{self, FunctionNeeds};
use lambda_handlers::poke_stream;
use lambda_handlers::poker::ApiGatewayPoker;
use lambda_handlers::websocket::{self, WebSocketRoutes};
use lambda_handlers::{HttpFunction, bootstrap, config};
use serde_json::{Value as Json, json};
use serde_yaml::Value;
use spill_s3::S3Spill;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use store_dynamodb::{DynamoStore, RequestCounter, schema};
use support::iam::IamRecorder;
use support::template::{
    ApiRoute, Grant, Scope, Template, get_att, grants_of, invoked_function, ref_of, strings,
    sub_of, workspace_root,
};
use support::{http_event, http_event_as, ws_connect_as, ws_event};
use sync_core::cookie::CookieKeys;
use sync_core::engine::{self, PushConfig};
use sync_core::gc::GcPolicy;
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::spill::Oversize;
use sync_core::store::now_ms;
use sync_core::{Route, SpaceId, Store};
use test_support::LocalDynamo;

const ALL_ROUTES: [Route; 5] = [
    Route::CreateSpace,
    Route::SpaceExists,
    Route::SpaceAccess,
    Route::Push,
    Route::Pull,
];

/// The binary targets of this package, as Cargo sees them (src/bin/*.rs and any [[bin]]).
fn cargo_binaries() -> BTreeSet<String> {
    let output = std::process::Command::new(option_env!("CARGO").unwrap_or("cargo"))
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Json = serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    let package = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == env!("CARGO_PKG_NAME"))
        .expect("this package in cargo metadata");
    package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .map(|t| t["name"].as_str().expect("a target name").to_owned())
        .collect()
}

fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    items.into_iter().map(str::to_owned).collect()
}

fn declared_grants(needs: &FunctionNeeds) -> BTreeSet<Grant> {
    let scoped = |actions: &[&str], scope: Scope| -> Vec<Grant> {
        actions
            .iter()
            .map(|a| ((*a).to_owned(), scope.clone()))
            .collect()
    };
    let mut grants = BTreeSet::new();
    grants.extend(scoped(needs.table_actions, Scope::Table));
    grants.extend(scoped(
        needs.index_actions,
        Scope::Index(schema::VERSION_INDEX.to_owned()),
    ));
    grants.extend(scoped(needs.connection_actions, Scope::Connections));
    grants.extend(scoped(needs.secret_actions, Scope::Secret));
    grants.extend(scoped(needs.stream_actions, Scope::Stream));
    grants.extend(scoped(needs.answer_actions, Scope::AnswerObjects));
    grants
}

/// The declared grants that the function's own code needs: all but the stream's, which
/// Lambda's event source mapping uses.
fn code_grants(needs: &FunctionNeeds) -> BTreeSet<Grant> {
    declared_grants(needs)
        .into_iter()
        .filter(|(_, scope)| *scope != Scope::Stream)
        .collect()
}

#[test]
fn one_function_per_binary_built_by_cargo_lambda() {
    let binaries = cargo_binaries();
    assert_eq!(
        set(permissions::FUNCTIONS.iter().map(|f| f.binary)),
        binaries,
        "permissions::FUNCTIONS vs src/bin"
    );
    for (mode, t) in Template::each_auth_mode() {
        let deployed: Vec<String> = t.functions().iter().map(|f| f.binary.clone()).collect();
        let deployed_set: BTreeSet<String> = deployed.iter().cloned().collect();
        assert_eq!(
            deployed.len(),
            deployed_set.len(),
            "{mode}: a binary deployed twice: {deployed:?}"
        );
        // The authorizer exists in jwt mode only; every other binary in both.
        let mut expected = binaries.clone();
        if mode == "none" {
            for only in permissions::JWT_MODE_ONLY {
                expected.remove(*only);
            }
        }
        assert_eq!(
            deployed_set, expected,
            "{mode}: template functions vs src/bin"
        );
        check_functions(&t);
    }
    // The jwt-only resources carry the condition in the template as written.
    let raw = support::template::raw_template();
    for (id, resource) in raw["Resources"].as_mapping().unwrap() {
        let binary = resource["Metadata"]["BuildProperties"]["Binary"].as_str();
        if binary.is_some_and(|b| permissions::JWT_MODE_ONLY.contains(&b)) {
            assert_eq!(resource["Condition"].as_str(), Some("JwtAuth"), "{id:?}");
        }
    }

    let architecture = &Template::load().doc["Parameters"]["Architecture"];
    assert_eq!(architecture["Default"].as_str(), Some("x86_64"));
    assert_eq!(strings(&architecture["AllowedValues"]), ["x86_64", "arm64"]);
}

fn check_functions(t: &Template) {
    let served: BTreeSet<String> = t
        .routes_of(&t.http_api())
        .iter()
        .map(|r| r.function().to_owned())
        .collect();
    for f in t.functions() {
        let id = &f.id;
        assert_eq!(
            f.resource["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}"
        );
        assert_eq!(f.prop("Runtime").as_str(), Some("provided.al2023"), "{id}");
        assert_eq!(f.prop("Handler").as_str(), Some("bootstrap"), "{id}");
        let architectures = f
            .prop("Architectures")
            .as_sequence()
            .expect("Architectures");
        assert_eq!(architectures.len(), 1, "{id}");
        assert_eq!(ref_of(&architectures[0]), Some("Architecture"), "{id}");
        let logging = f.prop("LoggingConfig");
        assert_eq!(logging["LogFormat"].as_str(), Some("JSON"), "{id}");
        // RUST_LOG filters; Lambda passes every line on.
        assert_eq!(
            logging["ApplicationLogLevel"].as_str(),
            Some("TRACE"),
            "{id}"
        );
        assert!(
            ref_of(&logging["LogGroup"]).is_some(),
            "{id}: a log group with a retention"
        );
        assert!(
            f.prop("MemorySize").as_u64().is_some_and(|m| m >= 128),
            "{id}: MemorySize"
        );
        let timeout = f.prop("Timeout").as_u64().expect("Timeout");
        if served.contains(&f.id) {
            // API Gateway HTTP APIs give an integration 30 seconds.
            assert!(
                timeout < 30,
                "{id}: Timeout {timeout} s outlives the HTTP API's 30 s"
            );
        }
        // CodeUri is this package: `cargo lambda build --bin <Binary>` runs there.
        let code = t
            .dir
            .join(f.prop("CodeUri").as_str().expect("CodeUri: a path"));
        let code = code.canonicalize().expect("CodeUri exists");
        let package = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(code, package.canonicalize().unwrap(), "{id}: CodeUri");
    }
}

#[test]
fn tracing_is_a_parameter_of_every_function() {
    let t = Template::load();
    let parameter = &t.doc["Parameters"]["Tracing"];
    assert_eq!(parameter["Default"].as_str(), Some("PassThrough"));
    assert_eq!(
        strings(&parameter["AllowedValues"]),
        ["PassThrough", "Active"]
    );
    assert_eq!(
        ref_of(&t.doc["Globals"]["Function"]["Tracing"]),
        Some("Tracing")
    );
    for f in t.functions() {
        assert_eq!(ref_of(f.prop("Tracing")), Some("Tracing"), "{}", f.id);
    }
}

#[test]
fn reserved_concurrency_applies_to_every_function_when_set() {
    let parameter = &Template::load().doc["Parameters"]["ReservedConcurrency"];
    assert_eq!(
        parameter["Default"].as_u64(),
        Some(0),
        "unreserved by default"
    );
    assert_eq!(parameter["MinValue"].as_u64(), Some(0));
    for (mode, _) in Template::each_auth_mode() {
        let mut overrides = support::template::jwt_parameters(mode);
        // 0: no reservation, the property absent.
        let t = Template::load_with(&overrides);
        for f in t.functions() {
            assert!(
                f.prop("ReservedConcurrentExecutions").is_null(),
                "{mode} {}: reserved with ReservedConcurrency 0",
                f.id
            );
        }
        overrides.push(("ReservedConcurrency", "5"));
        let t = Template::load_with(&overrides);
        for f in t.functions() {
            assert_eq!(
                ref_of(f.prop("ReservedConcurrentExecutions")),
                Some("ReservedConcurrency"),
                "{mode} {}",
                f.id
            );
        }
    }
}

/// The environment of a cold start in these tests: a value for every variable any
/// function reads, good enough for the cold start to succeed against `dynamo`.
fn cold_start_env(dynamo: &LocalDynamo, table: &str, mode: &str) -> BTreeMap<String, String> {
    [
        (config::TABLE_NAME, table),
        (config::DYNAMODB_ENDPOINT, dynamo.endpoint()),
        (config::RUST_LOG, "warn"),
        (config::AUTH_MODE, mode),
        (config::WEBSOCKET_ENDPOINT, "http://127.0.0.1:9/stage"),
        (config::COOKIE_SECRET, &CookieKeys::generate_secret_text()),
        (config::MAX_SOCKETS_PER_SPACE, "5"),
        (config::JWT_ISSUER, "https://issuer.test"),
        (config::JWT_AUDIENCE, "app"),
        (config::JWKS_URL, "http://127.0.0.1:9/jwks.json"),
        (config::ANSWER_BUCKET, "answers"),
        (config::S3_ENDPOINT, dynamo.endpoint()),
        (config::TOMBSTONE_RETENTION_DAYS, "30"),
        (config::CLIENT_IDLE_DAYS, "30"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Each function's cold start, run as its binary runs it (`functions::start`) against an
/// environment of its own: the variables it reads are exactly the ones declared for it
/// (besides the local-only ones), and it builds what the template wires it to.
#[tokio::test]
async fn each_function_reads_its_declared_environment_and_serves_its_entry() {
    assert_eq!(config::DYNAMODB_ENDPOINT, store_dynamodb::ENDPOINT_ENV);
    assert_eq!(config::TABLE_NAME, store_dynamodb::TABLE_NAME_ENV);
    let dynamo = LocalDynamo::start().await;
    let table = dynamo
        .fresh_table(&dynamo.client().await, "coldstart")
        .await;
    let mut read_anywhere = BTreeSet::new();
    for mode in ["none", "jwt"] {
        for function in Function::ALL {
            let (ready, read) = config::scoped(
                cold_start_env(&dynamo, &table, mode),
                functions::start(function, |_| {}),
            )
            .await;
            let ready = ready.unwrap_or_else(|e| panic!("{function:?} in {mode}: {e}"));
            assert_eq!(ready.entry(), function.entry(), "{function:?}");
            if let Some(auth) = ready.auth() {
                assert_eq!(Some(auth), AuthMode::parse(mode), "{function:?}");
            }
            // The scheduled function answers its schedule's event with its run's report.
            if let functions::Ready::Gc(gc) = &ready {
                assert_eq!(gc.policy(), GcPolicy::DEFAULT);
                let deadline = now_ms() + 900_000;
                let answer = gc
                    .handle(&support::scheduled_event(), deadline)
                    .await
                    .unwrap_or_else(|e| panic!("{function:?} in {mode}: {e}"));
                assert_eq!(answer["incomplete"], json!(false), "{answer}");
                assert!(answer["spaces"].is_u64(), "{answer}");
            }
            read_anywhere.extend(read.iter().cloned());
            let deployed: BTreeSet<String> = read
                .into_iter()
                .filter(|v| !permissions::LOCAL_ONLY_ENV.contains(&v.as_str()))
                .collect();
            assert_eq!(
                deployed,
                set(function.needs().env.iter().copied()),
                "{function:?} in {mode}: variables read"
            );
        }
    }
    // The pull reads the secret's endpoint only with a secret to read.
    let secret =
        aws_sdk_secretsmanager::Client::from_conf(local_secrets_config(dynamo.endpoint()).build())
            .create_secret()
            .name(format!("coldstart-{table}"))
            .secret_string(CookieKeys::generate_secret_text())
            .send()
            .await
            .expect("a secret in moto");
    let mut env = cold_start_env(&dynamo, &table, "none");
    env.remove(config::COOKIE_SECRET);
    env.insert(
        config::COOKIE_SECRET_ARN.to_owned(),
        secret.arn().expect("an ARN").to_owned(),
    );
    env.insert(
        config::SECRETS_MANAGER_ENDPOINT.to_owned(),
        dynamo.endpoint().to_owned(),
    );
    let (ready, read) = config::scoped(env, functions::start(Function::Pull, |_| {})).await;
    assert!(ready.is_ok(), "the pull with its secret");
    read_anywhere.extend(read);
    // Every local-only variable is one some cold start reads.
    for local in permissions::LOCAL_ONLY_ENV {
        assert!(
            read_anywhere.contains(*local),
            "{local} is read by no function"
        );
    }
}

fn is_identifier_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[test]
fn environment_is_what_each_binary_reads() {
    // The template against the declaration: exactly those variables, with the right
    // values, in both auth modes.
    for (mode, t) in Template::each_auth_mode() {
        check_environment(mode, &t);
    }
    let t = Template::load();
    let log_level = &t.doc["Parameters"]["LogLevel"];
    assert_eq!(log_level["Default"].as_str(), Some("info"));
    let auth_mode = &t.doc["Parameters"]["AuthMode"];
    assert_eq!(auth_mode["Default"].as_str(), Some("none"));
    assert_eq!(strings(&auth_mode["AllowedValues"]), ["none", "jwt"]);
    // The variables' values are the mode names the code knows.
    for value in ["none", "jwt"] {
        assert!(lambda_handlers::auth::AuthMode::parse(value).is_some());
    }
}

fn check_environment(mode: &str, t: &Template) {
    let table = t.only_id_of_type("AWS::DynamoDB::Table");
    let secret = t.cookie_secret();
    let bucket = t.answer_bucket();
    let api = t.websocket_api();
    let stage = t.websocket_stage();
    for f in t.functions() {
        let needs = permissions::of(&f.binary).expect("declared");
        let env = f.env();
        assert_eq!(
            env.keys().cloned().collect::<BTreeSet<_>>(),
            set(needs.env.iter().copied()),
            "{mode} {}: environment",
            f.id
        );
        for local in permissions::LOCAL_ONLY_ENV {
            assert!(
                !env.contains_key(*local),
                "{}: {local} is for local runs only",
                f.id
            );
        }
        for (name, value) in &env {
            let parameter = |p: &str| assert_eq!(ref_of(value), Some(p), "{mode} {}: {name}", f.id);
            match name.as_str() {
                config::TABLE_NAME => assert_eq!(ref_of(value), Some(table.as_str()), "{}", f.id),
                permissions::RUST_LOG => parameter("LogLevel"),
                config::AUTH_MODE => parameter("AuthMode"),
                config::JWT_ISSUER => parameter("JwtIssuer"),
                config::JWT_AUDIENCE => parameter("JwtAudience"),
                config::MAX_SOCKETS_PER_SPACE => parameter("MaxSocketsPerSpace"),
                config::TOMBSTONE_RETENTION_DAYS => parameter("TombstoneRetentionDays"),
                config::CLIENT_IDLE_DAYS => parameter("ClientIdleDays"),
                // The ARN (a secret's Ref), never the value.
                config::COOKIE_SECRET_ARN => {
                    assert_eq!(ref_of(value), Some(secret.as_str()), "{}", f.id)
                }
                config::ANSWER_BUCKET => {
                    assert_eq!(ref_of(value), Some(bucket.as_str()), "{}", f.id)
                }
                config::WEBSOCKET_ENDPOINT => assert_eq!(
                    sub_of(value),
                    Some(
                        format!("https://${{{api}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/${{{stage}}}")
                            .as_str()
                    ),
                    "{}: the Management API endpoint of the WebSocket stage",
                    f.id
                ),
                other => panic!("{}: unexpected variable {other}", f.id),
            }
        }
    }
    // Every function whose behaviour depends on the mode is told the mode: the HTTP
    // functions and $connect.
    let told: BTreeSet<&str> = permissions::FUNCTIONS
        .iter()
        .filter(|f| permissions::reads_auth_mode(f))
        .map(|f| f.binary)
        .collect();
    assert_eq!(
        told,
        BTreeSet::from(["pull", "push", "spaces", "ws-connect"])
    );
}

/// The routes of the HTTP API: method and path from the route key.
fn http_route_of(key: &str) -> Route {
    let (method, path) = key.split_once(' ').expect("METHOD /path");
    assert_eq!(method, "POST", "{key}");
    let route = Route::from_path(path).unwrap_or_else(|| panic!("{path}: no such route"));
    assert_eq!(path, format!("/api/replicache/{}", route.name()));
    route
}

#[test]
fn http_routes_reach_the_functions_that_serve_them() {
    for (mode, t) in Template::each_auth_mode() {
        check_http_routes(mode, &t);
    }
}

fn check_http_routes(mode: &str, t: &Template) {
    let api = t.http_api();
    let function_ids: BTreeMap<String, String> = t
        .functions()
        .into_iter()
        .map(|f| (f.id.clone(), f.binary.clone()))
        .collect();
    let routes = t.routes_of(&api);
    let mut deployed = Vec::new();
    let mut served: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &routes {
        let route = http_route_of(&r.key);
        deployed.push(route);
        served
            .entry(r.function().to_owned())
            .or_default()
            .insert(format!("{route:?}"));
        let integration = &t.resource(&r.integration)["Properties"];
        assert_eq!(
            integration["PayloadFormatVersion"].as_str(),
            Some("2.0"),
            "{}",
            r.id
        );
        // Authorization: every route behind the JWT authorizer in jwt mode, none in none.
        match mode {
            "jwt" => {
                assert_eq!(r.authorization_type, "JWT", "{mode} {}", r.id);
                let authorizer = r
                    .authorizer
                    .as_deref()
                    .unwrap_or_else(|| panic!("{}: no authorizer", r.id));
                assert_eq!(
                    ref_of(&t.resource(authorizer)["Properties"]["ApiId"]),
                    Some(api.as_str())
                );
            }
            _ => {
                assert_eq!(r.authorization_type, "NONE", "{mode} {}", r.id);
                assert_eq!(r.authorizer, None, "{mode} {}", r.id);
            }
        }
        // API Gateway may invoke the function for this route only.
        let path = r.key.split_once(' ').expect("METHOD /path").1;
        let arn = format!(
            "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api}}}/*/POST{path}"
        );
        let permissions = t.permissions_of(r.function());
        assert!(
            permissions
                .iter()
                .any(|p| sub_of(&p["SourceArn"]) == Some(arn.as_str())),
            "{}: no permission for {arn}",
            r.id
        );
    }
    // Each function's permissions name its routes and nothing else.
    for (function, routes) in &served {
        for p in t.permissions_of(function) {
            assert_eq!(p["Action"].as_str(), Some("lambda:InvokeFunction"));
            assert_eq!(p["Principal"].as_str(), Some("apigateway.amazonaws.com"));
            let arn = sub_of(&p["SourceArn"]).expect("SourceArn: Fn::Sub");
            let route = arn
                .rsplit_once("/POST")
                .and_then(|(_, path)| Route::from_path(path))
                .unwrap_or_else(|| panic!("{function}: permission for {arn}"));
            assert!(routes.contains(&format!("{route:?}")), "{function}: {arn}");
        }
    }
    // The routes each binary serves (its cold start builds exactly these: see
    // each_function_reads_its_declared_environment_and_serves_its_entry).
    for (function, routes) in &served {
        let binary = &function_ids[function];
        let Some(Entry::Http(handled)) = Function::of_binary(binary).map(Function::entry) else {
            panic!("{binary} serves no HTTP routes");
        };
        let handled: BTreeSet<String> = handled.iter().map(|r| format!("{r:?}")).collect();
        assert_eq!(
            routes, &handled,
            "{function}: routes deployed vs routes handled"
        );
    }
    deployed.sort_by_key(|r| r.name());
    let mut all = ALL_ROUTES.to_vec();
    all.sort_by_key(|r| r.name());
    assert_eq!(deployed, all, "every route deployed exactly once");

    // The authorizer: the JWT of the Authorization header, from the issuer, for the
    // audiences; in jwt mode only.
    let authorizers = t.ids_of_api("AWS::ApiGatewayV2::Authorizer", &api);
    if mode == "jwt" {
        assert_eq!(authorizers.len(), 1, "{authorizers:?}");
        let a = &t.resource(&authorizers[0])["Properties"];
        assert_eq!(a["AuthorizerType"].as_str(), Some("JWT"));
        assert_eq!(
            strings(&a["IdentitySource"]),
            ["$request.header.Authorization"]
        );
        assert_eq!(ref_of(&a["JwtConfiguration"]["Issuer"]), Some("JwtIssuer"));
        let audience = a["JwtConfiguration"]["Audience"]["Fn::Split"]
            .as_sequence()
            .expect("Audience: Fn::Split of JwtAudience");
        assert_eq!(audience[0].as_str(), Some(","));
        assert_eq!(ref_of(&audience[1]), Some("JwtAudience"));
    } else {
        assert!(authorizers.is_empty(), "{mode}: {authorizers:?}");
    }

    // The $default stage deploys itself after every route exists, throttled.
    let stage_id = t.stage_of(&api);
    let stage = t.resource(&stage_id);
    assert_eq!(stage["Properties"]["StageName"].as_str(), Some("$default"));
    assert_eq!(stage["Properties"]["AutoDeploy"].as_bool(), Some(true));
    let depends: BTreeSet<String> = strings(&stage["DependsOn"]).into_iter().collect();
    assert_eq!(
        depends,
        routes.iter().map(|r| r.id.clone()).collect::<BTreeSet<_>>()
    );
    check_throttling(t, &stage_id, "HttpThrottleBurst", "HttpThrottleRate");

    // CORS: browsers may send the token, and see every answer, the authorizer's 401s
    // included (API Gateway adds the headers to them).
    let cors = &t.resource(&api)["Properties"]["CorsConfiguration"];
    let lower = |v: &Value| -> BTreeSet<String> {
        strings(v).iter().map(|s| s.to_ascii_lowercase()).collect()
    };
    assert_eq!(lower(&cors["AllowMethods"]), set(["options", "post"]));
    assert_eq!(
        lower(&cors["AllowHeaders"]),
        set(["authorization", "content-type", "x-replicache-requestid"])
    );
    // Fn::Split of the AllowedOrigins parameter (see the template for why not a list).
    let split = cors["AllowOrigins"]["Fn::Split"]
        .as_sequence()
        .expect("AllowOrigins: Fn::Split");
    assert_eq!(split[0].as_str(), Some(","));
    assert_eq!(ref_of(&split[1]), Some("AllowedOrigins"));
    assert_eq!(
        t.doc["Parameters"]["AllowedOrigins"]["Default"].as_str(),
        Some("*")
    );
    // No route answers OPTIONS: API Gateway answers preflights, unauthenticated.
    assert!(
        routes
            .iter()
            .all(|r| !r.key.starts_with("OPTIONS") && !r.key.starts_with("ANY"))
    );
}

/// The stage's default route settings throttle with the two parameters.
fn check_throttling(t: &Template, stage: &str, burst: &str, rate: &str) {
    let settings = &t.resource(stage)["Properties"]["DefaultRouteSettings"];
    assert_eq!(
        ref_of(&settings["ThrottlingBurstLimit"]),
        Some(burst),
        "{stage}"
    );
    assert_eq!(
        ref_of(&settings["ThrottlingRateLimit"]),
        Some(rate),
        "{stage}"
    );
    for p in [burst, rate] {
        let parameter = &t.doc["Parameters"][p];
        assert_eq!(parameter["Type"].as_str(), Some("Number"), "{p}");
        assert!(
            parameter["MinValue"].as_u64().is_some_and(|m| m >= 1),
            "{p}"
        );
        assert!(parameter["Default"].as_u64().is_some_and(|d| d >= 1), "{p}");
    }
}

#[test]
fn websocket_routes_reach_their_functions() {
    for (mode, t) in Template::each_auth_mode() {
        check_websocket_routes(mode, &t);
    }
}

fn check_websocket_routes(mode: &str, t: &Template) {
    let api = t.websocket_api();
    let props = &t.resource(&api)["Properties"];
    assert_eq!(
        props["RouteSelectionExpression"].as_str(),
        Some("$request.body.action")
    );
    // Route -> what serves it; None: API Gateway answers the route itself (see
    // check_keep_alive_route).
    let expected: BTreeMap<&str, Option<Entry>> = BTreeMap::from([
        ("$connect", Some(Entry::WebSocketConnect)),
        ("$disconnect", Some(Entry::WebSocketDisconnect)),
        ("$default", None),
    ]);
    let function_ids: BTreeMap<String, String> = t
        .functions()
        .into_iter()
        .map(|f| (f.id.clone(), f.binary.clone()))
        .collect();
    let routes = t.routes_of(&api);
    let mut seen = BTreeSet::new();
    for route in &routes {
        let key = route.key.as_str();
        let served_by = expected
            .get(key)
            .unwrap_or_else(|| panic!("unexpected route {key}"));
        let Some(entry) = served_by else {
            check_keep_alive_route(t, &api, route);
            assert_eq!(route.authorization_type, "NONE", "{mode} {key}");
            seen.insert(key);
            continue;
        };
        let function = route.function();
        let binary = function_ids
            .get(function)
            .unwrap_or_else(|| panic!("{key}: {function} is no function"));
        assert_eq!(
            Function::of_binary(binary).map(Function::entry).as_ref(),
            Some(entry),
            "{binary} serves {key}"
        );

        // API Gateway may invoke the function for this route only.
        let permissions = t.permissions_of(function);
        assert_eq!(permissions.len(), 1, "{function}");
        let permission = permissions[0];
        assert_eq!(permission["Action"].as_str(), Some("lambda:InvokeFunction"));
        assert_eq!(
            permission["Principal"].as_str(),
            Some("apigateway.amazonaws.com")
        );
        assert_eq!(
            sub_of(&permission["SourceArn"]),
            Some(
                format!("arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api}}}/*/{key}")
                    .as_str()
            )
        );

        // Only $connect is authorized, by the Lambda authorizer, in jwt mode.
        match (mode, key) {
            ("jwt", "$connect") => {
                assert_eq!(route.authorization_type, "CUSTOM", "{mode} {key}");
                let authorizer = route.authorizer.as_deref().expect("an authorizer");
                check_websocket_authorizer(t, &api, authorizer, &function_ids);
            }
            _ => {
                assert_eq!(route.authorization_type, "NONE", "{mode} {key}");
                assert_eq!(route.authorizer, None, "{mode} {key}");
            }
        }
        seen.insert(key);
    }
    assert_eq!(seen, expected.keys().copied().collect::<BTreeSet<_>>());
    let authorizers = t.ids_of_api("AWS::ApiGatewayV2::Authorizer", &api);
    assert_eq!(
        authorizers.len(),
        usize::from(mode == "jwt"),
        "{mode}: {authorizers:?}"
    );

    // The stage serves all three routes: it deploys itself after they exist.
    let stage_id = t.websocket_stage();
    let stage = t.resource(&stage_id);
    assert_eq!(stage["Properties"]["AutoDeploy"].as_bool(), Some(true));
    assert!(
        stage["Properties"]["DeploymentId"].is_null(),
        "AutoDeploy takes no DeploymentId"
    );
    let depends: BTreeSet<String> = strings(&stage["DependsOn"]).into_iter().collect();
    assert_eq!(
        depends,
        routes.iter().map(|r| r.id.clone()).collect::<BTreeSet<_>>()
    );
    check_throttling(
        t,
        &stage_id,
        "WebSocketThrottleBurst",
        "WebSocketThrottleRate",
    );
    let cap = &t.doc["Parameters"]["MaxSocketsPerSpace"];
    assert_eq!(
        cap["Default"].as_u64(),
        Some(config::DEFAULT_MAX_SOCKETS_PER_SPACE as u64)
    );
    assert_eq!(cap["MinValue"].as_u64(), Some(1));
}

/// `$default`, where the clients' keep-alive messages land: a MOCK integration that API
/// Gateway answers itself, so no function runs (nor is billed) per keep-alive, and no
/// route response, so nothing is sent back (the client expects nothing).
fn check_keep_alive_route(t: &Template, api: &str, route: &ApiRoute) {
    assert_eq!(route.key, "$default");
    assert_eq!(route.function, None, "$default invokes no function");
    let integration = &t.resource(&route.integration)["Properties"];
    assert_eq!(integration["IntegrationType"].as_str(), Some("MOCK"));
    // A MOCK integration answers with the statusCode its request template produces; the
    // literal key `$default` is written `\$default` in a selection expression.
    assert_eq!(
        integration["TemplateSelectionExpression"].as_str(),
        Some("\\$default")
    );
    let templates = integration["RequestTemplates"]
        .as_mapping()
        .expect("RequestTemplates");
    assert_eq!(templates.len(), 1, "{templates:?}");
    let template = templates
        .get("$default")
        .and_then(|v| v.as_str())
        .expect("a $default request template");
    let template: Json = serde_json::from_str(template).expect("a JSON request template");
    assert_eq!(template, json!({"statusCode": 200}));

    // One-way: neither a route response nor integration responses.
    let props = &t.resource(&route.id)["Properties"];
    assert!(props["RouteResponseSelectionExpression"].is_null());
    for kind in [
        "AWS::ApiGatewayV2::RouteResponse",
        "AWS::ApiGatewayV2::IntegrationResponse",
    ] {
        assert_eq!(t.ids_of_api(kind, api), Vec::<String>::new(), "{kind}");
    }
    // Nothing may be invoked for $default.
    for id in t.ids_of_type("AWS::Lambda::Permission") {
        let arn = sub_of(&t.resource(&id)["Properties"]["SourceArn"]).unwrap_or("");
        assert!(!arn.ends_with("/$default"), "{id}: {arn}");
    }

    // The web client's keep-alive goes to $default: its action is no route of the API.
    let poke_js = std::fs::read_to_string(workspace_root().join("client/src/poke.js"))
        .expect("client/src/poke.js");
    let action = poke_js
        .split_once("KEEP_ALIVE_MESSAGE = JSON.stringify({ action: '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(action, _)| action)
        .expect("the client's keep-alive message");
    assert!(
        t.routes_of(api).iter().all(|r| r.key != action),
        "a route {action} would take the client's keep-alives"
    );
}

/// The `$connect` authorizer: a REQUEST authorizer reading `?token=`, invoking the
/// `ws-authorizer` function, which API Gateway may invoke as this authorizer only.
fn check_websocket_authorizer(
    t: &Template,
    api: &str,
    authorizer: &str,
    function_ids: &BTreeMap<String, String>,
) {
    let a = &t.resource(authorizer)["Properties"];
    assert_eq!(ref_of(&a["ApiId"]), Some(api));
    assert_eq!(a["AuthorizerType"].as_str(), Some("REQUEST"));
    assert_eq!(
        strings(&a["IdentitySource"]),
        [format!(
            "route.request.querystring.{}",
            lambda_handlers::auth::TOKEN_QUERY_PARAMETER
        )]
    );
    let function = invoked_function(&a["AuthorizerUri"]);
    assert_eq!(
        function_ids.get(&function).map(String::as_str),
        Some(permissions::WS_AUTHORIZER.binary)
    );
    let permissions = t.permissions_of(&function);
    assert_eq!(permissions.len(), 1, "{function}");
    let p = permissions[0];
    assert_eq!(p["Action"].as_str(), Some("lambda:InvokeFunction"));
    assert_eq!(p["Principal"].as_str(), Some("apigateway.amazonaws.com"));
    assert_eq!(
        sub_of(&p["SourceArn"]),
        Some(
            format!(
                "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api}}}/authorizers/${{{authorizer}}}"
            )
            .as_str()
        )
    );
    // Nothing else invokes it.
    assert_eq!(
        function_ids
            .get(&function)
            .and_then(|b| Function::of_binary(b))
            .map(Function::entry),
        Some(Entry::ConnectAuthorizer)
    );
}

#[test]
fn jwt_mode_needs_an_issuer_and_an_audience() {
    // A CloudFormation rule refuses AuthMode jwt without them, before anything is built.
    let raw = support::template::raw_template();
    let rule = raw["Rules"]
        .as_mapping()
        .and_then(|rules| rules.values().next())
        .expect("a rule");
    let condition = &rule["RuleCondition"]["Fn::Equals"];
    assert_eq!(ref_of(&condition[0]), Some("AuthMode"));
    assert_eq!(condition[1].as_str(), Some("jwt"));
    let asserted: BTreeSet<String> = rule["Assertions"]
        .as_sequence()
        .expect("Assertions")
        .iter()
        .map(|a| {
            let equals = &a["Assert"]["Fn::Not"][0]["Fn::Equals"];
            assert_eq!(equals[1].as_str(), Some(""));
            ref_of(&equals[0]).expect("a parameter").to_owned()
        })
        .collect();
    assert_eq!(asserted, set(["JwtAudience", "JwtIssuer"]));
}

/// The table's keys, attributes and indexes are read from the template by the store
/// itself (`store_dynamodb::definition`, whose tests hold them against the names the code
/// uses); here, what only a deployment has.
#[test]
fn table_is_kept_and_recoverable() {
    let t = Template::load();
    let table = t.resource(&t.only_id_of_type(store_dynamodb::definition::TABLE_RESOURCE_TYPE));
    // The table holds all the data: neither deleting the stack nor replacing it drops it.
    assert_eq!(table["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(table["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let p = &table["Properties"];
    assert!(p["TableName"].is_null(), "CloudFormation names the table");
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
    // The store's definition is this very resource.
    let definition = store_dynamodb::TableDefinition::from_template().expect("the definition");
    assert_eq!(
        Some(definition.billing_mode.as_str()),
        p["BillingMode"].as_str()
    );
    assert_eq!(
        definition
            .local_index(schema::VERSION_INDEX)
            .map(|i| i.index_name.as_str()),
        Some(schema::VERSION_INDEX)
    );
}

#[test]
fn the_table_stream_feeds_the_poke_function() {
    for (mode, t) in Template::each_auth_mode() {
        let table_id = t.only_id_of_type("AWS::DynamoDB::Table");
        let stream = &t.resource(&table_id)["Properties"]["StreamSpecification"];
        assert_eq!(
            stream["StreamViewType"].as_str(),
            Some(poke_stream::STREAM_VIEW_TYPE),
            "{mode}: keys only"
        );
        let mappings = t.ids_of_type("AWS::Lambda::EventSourceMapping");
        assert_eq!(mappings.len(), 1, "{mode}: {mappings:?}");
        let mapping = t.resource(&mappings[0]);
        assert!(mapping["Condition"].is_null(), "in both auth modes");
        let p = &mapping["Properties"];
        // The table's stream, to the function of the poke binary, whose main serves it.
        assert_eq!(
            get_att(&p["EventSourceArn"]),
            Some((table_id.clone(), "StreamArn".to_owned()))
        );
        let function = ref_of(&p["FunctionName"]).expect("FunctionName: a Ref");
        let poke = t
            .functions()
            .into_iter()
            .find(|f| f.id == function)
            .unwrap_or_else(|| panic!("{function} is no function of the template"));
        assert_eq!(poke.binary, permissions::POKE.binary);
        assert_eq!(
            Function::of_binary(&poke.binary).map(Function::entry),
            Some(Entry::StreamBatches)
        );
        // Nothing but the mapping invokes it.
        assert!(t.permissions_of(function).is_empty(), "{function}");
        // Modifications of space items only: the library's pattern, which its tests hold
        // against the store's keys and against records of the documented shape.
        let filters = p["FilterCriteria"]["Filters"]
            .as_sequence()
            .expect("FilterCriteria.Filters");
        assert_eq!(filters.len(), 1);
        let pattern: Json = serde_json::from_str(
            filters[0]["Pattern"]
                .as_str()
                .expect("Pattern: a JSON string"),
        )
        .expect("Pattern: JSON");
        assert_eq!(
            pattern,
            serde_json::from_str::<Json>(poke_stream::FILTER_PATTERN).unwrap()
        );
        // Failed records reported and retried, a failing batch split, retries bounded.
        assert_eq!(
            strings(&p["FunctionResponseTypes"]),
            ["ReportBatchItemFailures"]
        );
        assert_eq!(p["BisectBatchOnFunctionError"].as_bool(), Some(true));
        let retries = p["MaximumRetryAttempts"]
            .as_i64()
            .expect("MaximumRetryAttempts");
        assert!((1..=10).contains(&retries), "{retries}");
        // Batches, without waiting to fill them; new changes only.
        let batch = p["BatchSize"].as_u64().expect("BatchSize");
        assert!((1..=1000).contains(&batch), "{batch}");
        assert_eq!(p["MaximumBatchingWindowInSeconds"].as_u64(), Some(0));
        assert_eq!(p["StartingPosition"].as_str(), Some("LATEST"));
        assert_ne!(p["Enabled"].as_bool(), Some(false));
        let parallel = p["ParallelizationFactor"].as_u64().unwrap_or(1);
        assert!((1..=10).contains(&parallel), "{parallel}");
        // Time for a batch's fan-outs, within Lambda's limit.
        let timeout = poke.prop("Timeout").as_u64().expect("Timeout");
        assert!((30..=900).contains(&timeout), "{timeout}");
    }
}

/// The garbage collector's schedule: one daily `Schedule` event, on the one function whose
/// entry is [`Entry::Schedule`]; no other function has SAM events (their invokers are
/// resources of their own). Its parameters default to the library's policy.
#[test]
fn a_daily_schedule_invokes_the_garbage_collector() {
    for (mode, t) in Template::each_auth_mode() {
        let mut scheduled = Vec::new();
        for f in t.functions() {
            let events = f.prop("Events");
            if Function::of_binary(&f.binary).map(Function::entry) != Some(Entry::Schedule) {
                assert!(events.is_null(), "{mode} {}: Events", f.id);
                continue;
            }
            let events = events.as_mapping().expect("Events");
            assert_eq!(events.len(), 1, "{mode} {}: {events:?}", f.id);
            let event = events.values().next().expect("an event");
            assert_eq!(event["Type"].as_str(), Some("Schedule"), "{}", f.id);
            let p = &event["Properties"];
            assert_eq!(p["Schedule"].as_str(), Some("rate(1 day)"), "{}", f.id);
            assert_ne!(p["Enabled"].as_bool(), Some(false), "{}", f.id);
            assert!(p["State"].is_null() || p["State"].as_str() == Some("ENABLED"));
            assert!(p["Input"].is_null(), "{}: the run needs no input", f.id);
            // Lambda's longest, well above the margin a run keeps before it.
            let timeout = f.prop("Timeout").as_u64().expect("Timeout");
            assert_eq!(timeout, 900, "{}", f.id);
            assert!(timeout > lambda_handlers::gc::DEADLINE_MARGIN.as_secs() * 10);
            // The schedule's rule (SAM's) is its only invoker.
            assert!(t.permissions_of(&f.id).is_empty(), "{}", f.id);
            scheduled.push(f.binary.clone());
        }
        assert_eq!(scheduled, [permissions::GC.binary], "{mode}");
    }
    let t = Template::load();
    for (name, default) in [
        (
            "TombstoneRetentionDays",
            GcPolicy::DEFAULT.tombstone_retention,
        ),
        ("ClientIdleDays", GcPolicy::DEFAULT.client_idle),
    ] {
        let p = &t.doc["Parameters"][name];
        assert_eq!(p["Type"].as_str(), Some("Number"), "{name}");
        assert_eq!(p["MinValue"].as_u64(), Some(1), "{name}");
        assert_eq!(
            p["Default"].as_u64(),
            Some(default.as_secs() / 86_400),
            "{name}"
        );
    }
}

#[test]
fn iam_grants_exactly_the_declared_actions() {
    for (mode, t) in Template::each_auth_mode() {
        for f in t.functions() {
            let needs = permissions::of(&f.binary).expect("declared");
            let granted = grants_of(&t, &f);
            let declared = declared_grants(needs);
            assert_eq!(
                granted,
                declared,
                "{mode} {}: granted but not needed {:?}; needed but not granted {:?}",
                f.id,
                granted.difference(&declared).collect::<Vec<_>>(),
                declared.difference(&granted).collect::<Vec<_>>()
            );
            // Nothing beyond the inline policies (SAM adds the basic logging role itself).
            for key in ["Role", "PermissionsBoundary"] {
                assert!(f.prop(key).is_null(), "{}: {key}", f.id);
            }
        }
    }
    // The WebSocket authorizer calls no AWS API: no policy at all, so its role is SAM's
    // basic one (writing its logs); it is not in a VPC and reads no table or secret.
    let needs = &permissions::WS_AUTHORIZER;
    assert!(declared_grants(needs).is_empty());
    assert!(needs.dynamodb_operations.is_empty());
    let t = Template::load_with(&support::template::jwt_parameters("jwt"));
    let authorizer = t
        .functions()
        .into_iter()
        .find(|f| f.binary == needs.binary)
        .expect("the authorizer in jwt mode");
    for key in [
        "Policies",
        "Role",
        "PermissionsBoundary",
        "VpcConfig",
        "Layers",
    ] {
        assert!(authorizer.prop(key).is_null(), "{}: {key}", authorizer.id);
    }
    for name in authorizer.env().keys() {
        assert!(
            ![
                config::TABLE_NAME,
                config::COOKIE_SECRET_ARN,
                config::WEBSOCKET_ENDPOINT
            ]
            .contains(&name.as_str()),
            "the authorizer gets {name}"
        );
    }
    // Only the poke function may post to connections, and read the table's stream; the
    // push function, which answers after its commit, neither.
    let posting: Vec<&str> = permissions::FUNCTIONS
        .iter()
        .filter(|f| !f.connection_actions.is_empty())
        .map(|f| f.binary)
        .collect();
    assert_eq!(posting, ["poke"]);
    let streaming: Vec<&str> = permissions::FUNCTIONS
        .iter()
        .filter(|f| !f.stream_actions.is_empty())
        .map(|f| f.binary)
        .collect();
    assert_eq!(streaming, ["poke"]);
    assert!(!permissions::PUSH.env.contains(&config::WEBSOCKET_ENDPOINT));
    // Only the function that signs cookies may read their keys, and only read them.
    let reading: Vec<(&str, &[&str])> = permissions::FUNCTIONS
        .iter()
        .filter(|f| !f.secret_actions.is_empty())
        .map(|f| (f.binary, f.secret_actions))
        .collect();
    assert_eq!(reading, [("pull", &["secretsmanager:GetSecretValue"][..])]);
}

#[test]
fn cookie_secret_is_generated_and_retained() {
    let t = Template::load();
    let id = t.cookie_secret();
    let secret = t.resource(&id);
    // Clients hold cookies signed with these keys: neither deleting the stack nor
    // replacing the secret may lose them.
    assert_eq!(secret["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(secret["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let p = &secret["Properties"];
    // Generated by Secrets Manager, never written into the template or a parameter.
    for key in ["SecretString", "Name", "KmsKeyId"] {
        assert!(p[key].is_null(), "{id}: unexpected {key}");
    }
    let generate = &p["GenerateSecretString"];
    let length = generate["PasswordLength"].as_u64().expect("PasswordLength");
    assert_eq!(length, 64);
    assert!(length as usize >= sync_core::cookie::MIN_KEY_BYTES);
    // One key as it stands: no whitespace (it separates keys), and plain characters.
    assert_eq!(generate["ExcludePunctuation"].as_bool(), Some(true));
    assert_ne!(generate["IncludeSpace"].as_bool(), Some(true));
    for key in ["SecretStringTemplate", "GenerateStringKey"] {
        assert!(
            generate[key].is_null(),
            "{id}: a plain string, not JSON ({key})"
        );
    }
    // The pull function gets its ARN, and nothing else does.
    for f in t.functions() {
        let arn = f.env().get(config::COOKIE_SECRET_ARN).cloned();
        if f.binary == permissions::PULL.binary {
            assert_eq!(arn.as_ref().and_then(ref_of), Some(id.as_str()), "{}", f.id);
        } else {
            assert!(arn.is_none(), "{}: the cookie secret", f.id);
        }
    }
    let outputs = &t.doc["Outputs"];
    assert_eq!(
        ref_of(&outputs["CookieSecretArn"]["Value"]),
        Some(id.as_str())
    );
}

#[test]
fn answer_bucket_is_private_encrypted_short_lived_and_readable_by_url() {
    let t = Template::load();
    let id = t.answer_bucket();
    let p = &t.resource(&id)["Properties"];
    let block = &p["PublicAccessBlockConfiguration"];
    for key in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[key].as_bool(), Some(true), "{id}: {key}");
    }
    let sse = &p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0];
    assert!(
        sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
            .as_str()
            .is_some(),
        "{id}: SSE"
    );
    let rules = p["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .expect("lifecycle rules");
    assert!(
        rules.iter().any(|r| r["Status"].as_str() == Some("Enabled")
            && r["ExpirationInDays"].as_i64() == Some(i64::from(spill_s3::EXPIRY_DAYS))
            && r["Prefix"].is_null()
            && r["Filter"].is_null()),
        "{id}: every object expires after a day"
    );
    // Browsers fetch the redirected pull from any origin, with the client's headers.
    let cors = p["CorsConfiguration"]["CorsRules"]
        .as_sequence()
        .expect("CORS rules");
    assert_eq!(cors.len(), 1);
    assert_eq!(strings(&cors[0]["AllowedMethods"]), ["GET"]);
    assert_eq!(strings(&cors[0]["AllowedOrigins"]), ["*"]);
    assert_eq!(strings(&cors[0]["AllowedHeaders"]), ["*"]);
    // Only the pull function gets the bucket, by its Ref (the name).
    for f in t.functions() {
        let bucket = f.env().get(config::ANSWER_BUCKET).cloned();
        if f.binary == permissions::PULL.binary {
            assert_eq!(ref_of(bucket.as_ref().unwrap()), Some(id.as_str()));
        } else {
            assert!(bucket.is_none(), "{}: the answer bucket", f.id);
        }
    }
    let writing: Vec<&str> = permissions::FUNCTIONS
        .iter()
        .filter(|f| !f.answer_actions.is_empty())
        .map(|f| f.binary)
        .collect();
    assert_eq!(writing, ["pull"]);
}

#[test]
fn outputs_give_the_client_its_urls() {
    let t = Template::load();
    let outputs = &t.doc["Outputs"];
    let http = t.http_api();
    let ws = t.websocket_api();
    let stage = t.websocket_stage();
    assert_eq!(
        sub_of(&outputs["HttpApiUrl"]["Value"]),
        Some(
            format!("https://${{{http}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}")
                .as_str()
        )
    );
    // The HTTP API serves its $default stage, so the routes sit at the root of that URL.
    assert_eq!(
        t.resource(&t.stage_of(&http))["Properties"]["StageName"].as_str(),
        Some("$default")
    );
    assert_eq!(ref_of(&outputs["AuthMode"]["Value"]), Some("AuthMode"));
    assert_eq!(
        sub_of(&outputs["WebSocketUrl"]["Value"]),
        Some(
            format!(
                "wss://${{{ws}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/${{{stage}}}"
            )
            .as_str()
        )
    );
    let table = t.only_id_of_type("AWS::DynamoDB::Table");
    assert_eq!(ref_of(&outputs["TableName"]["Value"]), Some(table.as_str()));
    assert!(get_att(&outputs["TableName"]["Value"]).is_none());
}

// ---------------------------------------------------------------------------------------
// The declaration against reality: each binary's code path, wired as its `main` wires it,
// against moto and the Management API stand-in, with every request recorded.
// ---------------------------------------------------------------------------------------

struct Observer {
    counter: RequestCounter,
    recorder: IamRecorder,
}

impl Observer {
    fn new(table: &str) -> Self {
        Self {
            counter: RequestCounter::new(),
            recorder: IamRecorder::new(table),
        }
    }

    /// An observer of a function given the cookie secret `arn`.
    fn with_secret(table: &str, arn: &str) -> Self {
        Self {
            counter: RequestCounter::new(),
            recorder: IamRecorder::new(table).with_secret(arn),
        }
    }

    /// The observer, given the answer bucket `bucket` too.
    fn with_bucket(mut self, bucket: &str) -> Self {
        self.recorder = self.recorder.with_bucket(bucket);
        self
    }

    /// An S3 client of `endpoint` whose requests are recorded.
    async fn s3(&self, endpoint: &str) -> aws_sdk_s3::Client {
        let base = spill_s3::client_for(Some(endpoint)).await;
        aws_sdk_s3::Client::from_conf(
            base.config()
                .to_builder()
                .interceptor(self.recorder.clone())
                .build(),
        )
    }

    /// A Secrets Manager client of `endpoint` whose requests are recorded.
    fn secrets(&self, endpoint: &str) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::from_conf(
            local_secrets_config(endpoint)
                .interceptor(self.recorder.clone())
                .build(),
        )
    }

    /// A copy of `base` whose requests are counted and recorded.
    fn dynamodb(&self, base: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        let counted = store_dynamodb::with_counter(base, &self.counter);
        aws_sdk_dynamodb::Client::from_conf(
            counted
                .config()
                .to_builder()
                .interceptor(self.recorder.clone())
                .build(),
        )
    }

    fn management(&self, endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
        let config = aws_sdk_apigatewaymanagement::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(endpoint)
            .interceptor(self.recorder.clone())
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(config)
    }

    fn check(&self, needs: &FunctionNeeds) {
        let operations: BTreeSet<String> = self.counter.snapshot().into_keys().collect();
        assert_eq!(
            operations,
            set(needs.dynamodb_operations.iter().copied()),
            "{}: DynamoDB operations sent vs declared",
            needs.binary
        );
        let observed = self.recorder.grants();
        let declared = code_grants(needs);
        assert!(
            observed.is_subset(&declared),
            "{}: requests needing undeclared permissions: {:?}",
            needs.binary,
            observed.difference(&declared).collect::<Vec<_>>()
        );
        assert_eq!(
            observed, declared,
            "{}: declared permissions no request needed",
            needs.binary
        );
    }
}

fn local_secrets_config(endpoint: &str) -> aws_sdk_secretsmanager::config::Builder {
    aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
}

fn json_of(resp: &lambda_http::Response<lambda_http::Body>) -> Json {
    let bytes: &[u8] = resp.body().as_ref();
    serde_json::from_slice(bytes).expect("a JSON body")
}

fn increment(client: &str, id: u64) -> String {
    json!({"pushVersion":1,"clientGroupID":format!("g-{client}"),"mutations":
        [{"clientID":client,"id":id,"name":"increment","args":2,"timestamp":1.0}]})
    .to_string()
}

fn pull(client: &str, cookie: Json) -> String {
    json!({"pullVersion":1,"clientGroupID":format!("g-{client}"),"cookie":cookie}).to_string()
}

#[tokio::test]
async fn declared_actions_match_the_requests_sent() {
    let dynamo = LocalDynamo::start().await;
    let base = dynamo.client().await;
    let table = dynamo.fresh_table(&base, "template").await;
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(base.clone(), table.clone()));
    let connections = ConnectionTable::new(base.clone(), table.clone());
    let standin = Standin::start().await.expect("the Management API stand-in");

    // spaces, in both auth modes (one deployment's role serves either): createSpace,
    // spaceExists; signed in, createSpace under the per-user quota and spaceAccess (read,
    // then a change).
    let spaces = Observer::new(&table);
    const SPACE_ROUTES: &[Route] = &[Route::CreateSpace, Route::SpaceExists, Route::SpaceAccess];
    let signed_in = HttpFunction::new(
        bootstrap::sync_service(
            spaces.dynamodb(&base),
            table.clone(),
            Arc::new(NoPoker),
            AuthMode::Jwt,
        ),
        SPACE_ROUTES,
    )
    .with_auth(AuthMode::Jwt);
    let created = signed_in
        .handle(http_event_as(
            Some("alice"),
            "/api/replicache/createSpace",
            None,
            "{}",
        ))
        .await;
    assert_eq!(created.status(), 200, "{}", json_of(&created));
    let private = json_of(&created)["spaceID"]
        .as_str()
        .expect("spaceID")
        .to_owned();
    for body in [json!({}), json!({"add": ["bob"]})] {
        let resp = signed_in
            .handle(http_event_as(
                Some("alice"),
                "/api/replicache/spaceAccess",
                Some(&private),
                &body.to_string(),
            ))
            .await;
        assert_eq!(resp.status(), 200, "{body}: {}", json_of(&resp));
    }
    let f = HttpFunction::new(
        bootstrap::sync_service(
            spaces.dynamodb(&base),
            table.clone(),
            Arc::new(NoPoker),
            AuthMode::None,
        ),
        SPACE_ROUTES,
    );
    let created = f
        .handle(http_event("/api/replicache/createSpace", None, "{}"))
        .await;
    assert_eq!(created.status(), 200);
    let space_id = json_of(&created)["spaceID"]
        .as_str()
        .expect("spaceID")
        .to_owned();
    let exists = json!({ "spaceID": space_id }).to_string();
    let resp = f
        .handle(http_event("/api/replicache/spaceExists", None, &exists))
        .await;
    assert_eq!(json_of(&resp), json!({"spaceExists": true}));
    spaces.check(&permissions::SPACES);
    let space = SpaceId::parse(&space_id).unwrap();

    // push: answers right after its commit and pokes nobody.
    connections.add(&space, "open=").await.unwrap();
    connections.add(&space, "gone=").await.unwrap();
    standin.open("open=");
    let push = Observer::new(&table);
    let f = HttpFunction::new(
        bootstrap::sync_service(
            push.dynamodb(&base),
            table.clone(),
            Arc::new(NoPoker),
            AuthMode::None,
        ),
        &[Route::Push],
    );
    let resp = f
        .handle(http_event(
            "/api/replicache/push",
            Some(&space_id),
            &increment("c1", 1),
        ))
        .await;
    assert_eq!((resp.status().as_u16(), json_of(&resp)), (200, json!({})));
    assert_eq!(standin.total_posts(), 0);
    push.check(&permissions::PUSH);

    // poke: the stream's record of that commit (a modification of the space item), in an
    // event as the mapping delivers it, pokes the open connection and removes the gone
    // (410) one.
    let poke = Observer::new(&table);
    let poker = ApiGatewayPoker::new(
        ConnectionTable::new(poke.dynamodb(&base), table.clone()),
        poke.management(&standin.endpoint()),
    );
    let event = support::stream_event(vec![support::space_item_change(&table, &space_id, "100")]);
    let response = poke_stream::handle(&poker, &event)
        .await
        .expect("a response");
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(standin.messages("open="), [b"poke".to_vec()]);
    assert_eq!(standin.posts("gone="), 1);
    assert_eq!(connections.list(&space).await.unwrap(), ["open="]);
    poke.check(&permissions::POKE);

    // pull: the cookie keys from the secret (moto speaks Secrets Manager too), a pull from
    // scratch, then cookies from the future: forged ones are refused and leave the version
    // alone; a genuine one (after a restore) moves the version past it.
    let secret_text = CookieKeys::generate_secret_text();
    let secret_arn =
        aws_sdk_secretsmanager::Client::from_conf(local_secrets_config(dynamo.endpoint()).build())
            .create_secret()
            .name(format!("cookie-{table}"))
            .secret_string(&secret_text)
            .send()
            .await
            .expect("create the cookie secret in moto")
            .arn()
            .expect("the secret's ARN")
            .to_owned();
    let keys = CookieKeys::from_secret_text(&secret_text).unwrap();
    let bucket = format!("answers-{table}").to_ascii_lowercase();
    spill_s3::prepare_local_bucket(
        &spill_s3::client_for(Some(dynamo.endpoint())).await,
        &bucket,
    )
    .await
    .expect("the answer bucket in moto");
    let pull_fn = Observer::with_secret(&table, &secret_arn).with_bucket(&bucket);
    let loaded =
        bootstrap::cookie_keys_from_secret(&pull_fn.secrets(dynamo.endpoint()), &secret_arn)
            .await
            .expect("the cookie keys from the secret");
    let f = HttpFunction::new(
        bootstrap::pull_service(
            pull_fn.dynamodb(&base),
            table.clone(),
            loaded,
            AuthMode::None,
        ),
        &[Route::Pull],
    );
    let pull_with = |cookie: Json| {
        f.handle(http_event(
            "/api/replicache/pull",
            Some(&space_id),
            &pull("c1", cookie),
        ))
    };
    let resp = pull_with(Json::Null).await;
    assert_eq!(
        json_of(&resp),
        json!({"cookie": keys.sign(&space, 1),"lastMutationIDChanges":{"c1":1},
               "patch":[{"op":"clear"},{"op":"put","key":"count","value":2}]})
    );
    assert_eq!(json_of(&resp)["cookie"]["order"], json!(1));
    let other_keys = CookieKeys::from_secret_text(&CookieKeys::generate_secret_text()).unwrap();
    for forged in [
        json!(1000),
        json!({"order": 1000, "sig": "AAAAAAAAAAAAAAAAAAAAAA"}),
        json!(other_keys.sign(&space, 1000)),
    ] {
        let resp = pull_with(forged.clone()).await;
        assert_eq!(resp.status(), 400, "{forged}");
        assert_eq!(json_of(&resp)["error"], json!("InvalidCookie"), "{forged}");
        assert_eq!(store.space_version(&space).await.unwrap(), Some(1));
    }
    let resp = pull_with(json!(keys.sign(&space, 1000))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(&resp)["cookie"], json!(keys.sign(&space, 1001)));
    // An answer over the limit (here every one) is stored and redirected to.
    let spilling = HttpFunction::new(
        bootstrap::pull_service(
            pull_fn.dynamodb(&base),
            table.clone(),
            keys.clone(),
            AuthMode::None,
        ),
        &[Route::Pull],
    )
    .with_oversize(Some(Oversize::new(
        Arc::new(S3Spill::new(pull_fn.s3(dynamo.endpoint()).await, &bucket)),
        0,
    )));
    let resp = spilling
        .handle(http_event(
            "/api/replicache/pull",
            Some(&space_id),
            &pull("c1", Json::Null),
        ))
        .await;
    assert_eq!(resp.status(), 303, "{}", json_of(&resp));
    pull_fn.check(&permissions::PULL);

    // ws-connect: the space's access, its sockets counted, the connection stored.
    let connect = Observer::new(&table);
    let client = connect.dynamodb(&base);
    let routes = WebSocketRoutes::new(
        bootstrap::sync_service(
            client.clone(),
            table.clone(),
            Arc::new(NoPoker),
            AuthMode::None,
        ),
        ConnectionTable::new(client, table.clone()),
    );
    let resp = routes
        .connect(&ws_event("$connect", "new=", Some(&space_id)))
        .await;
    assert_eq!(resp.status_code, 200);
    // Signed in, on the private space (the member's socket).
    let client = connect.dynamodb(&base);
    let routes = WebSocketRoutes::new(
        bootstrap::sync_service(
            client.clone(),
            table.clone(),
            Arc::new(NoPoker),
            AuthMode::Jwt,
        ),
        ConnectionTable::new(client, table.clone()),
    )
    .with_auth(AuthMode::Jwt);
    let resp = routes
        .connect(&ws_connect_as("bob", "bobs=", Some(&private)))
        .await;
    assert_eq!(resp.status_code, 200, "{:?}", resp.body);
    connect.check(&permissions::WS_CONNECT);

    // ws-disconnect.
    let disconnect = Observer::new(&table);
    let client = disconnect.dynamodb(&base);
    let resp = websocket::disconnect(
        &ConnectionTable::new(client, table.clone()),
        &ws_event("$disconnect", "new=", None),
    )
    .await;
    assert_eq!(resp.status_code, 200);
    assert_eq!(connections.list(&space).await.unwrap(), ["open="]);
    disconnect.check(&permissions::WS_DISCONNECT);

    assert_eq!(store.space_version(&space).await.unwrap(), Some(1001));

    // gc, on a table of its own: a space with a delete; its schedule's event runs the
    // collector as of now (reads only: nothing is old enough), then a run as of a month
    // later removes the delete (raising the space's floor first) and its client.
    let table = dynamo.fresh_table(&base, "template-gc").await;
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(base.clone(), table.clone()));
    let gc_space = store_conformance::new_space(store.as_ref(), "gc").await;
    let set = store_conformance::mutation("c", 1, "setItem", json!({"key": "a", "value": 1}));
    let delete = store_conformance::mutation("c", 2, "deleteItem", json!({"key": "a"}));
    engine::push(
        store.as_ref(),
        &app::registry(),
        &PushConfig::default(),
        &gc_space,
        "",
        &store_conformance::push_request("g", vec![set, delete]),
    )
    .await
    .expect("a push with a delete");
    let gc = Observer::new(&table);
    let function = bootstrap::gc_function(gc.dynamodb(&base), table.clone(), GcPolicy::DEFAULT);
    let answer = function
        .handle(&support::scheduled_event(), now_ms() + 900_000)
        .await
        .expect("a run");
    assert_eq!(
        (&answer["tombstonesRemoved"], &answer["clientsRemoved"]),
        (&json!(0), &json!(0)),
        "{answer}"
    );
    let month_later = now_ms() + 31 * 86_400_000;
    let report = lambda_handlers::gc::run_gc(
        &DynamoStore::new(gc.dynamodb(&base), table.clone()),
        &GcPolicy::DEFAULT,
        month_later,
        None,
    )
    .await
    .expect("a run");
    assert_eq!(
        (
            report.spaces,
            report.tombstones_removed,
            report.clients_removed,
            report.floors_raised,
            report.spaces_failed
        ),
        (1, 1, 1, 1, 0),
        "{report:?}"
    );
    gc.check(&permissions::GC);
}

// ---------------------------------------------------------------------------------------
// Alarms and dashboard
// ---------------------------------------------------------------------------------------

/// A dimension's value as written: a resource's `Ref` (or `${Id}` in the dashboard), or
/// a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DimValue {
    Ref(String),
    Literal(String),
}

/// One metric that an alarm or a dashboard widget watches.
#[derive(Debug, Clone)]
struct Watched {
    /// The alarm's logical ID, or the widget's title.
    by: String,
    namespace: String,
    name: String,
    dimensions: Vec<(String, DimValue)>,
}

impl Watched {
    fn dimension(&self, key: &str) -> Option<&DimValue> {
        self.dimensions
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    fn is(&self, namespace: &str, name: &str) -> bool {
        self.namespace == namespace && self.name == name
    }
}

fn alarm_dimensions(by: &str, dims: &Value) -> Vec<(String, DimValue)> {
    dims.as_sequence()
        .into_iter()
        .flatten()
        .map(|d| {
            let key = d["Name"].as_str().expect("a dimension Name").to_owned();
            let value = match (ref_of(&d["Value"]), d["Value"].as_str()) {
                (Some(id), _) => DimValue::Ref(id.to_owned()),
                (None, Some(s)) => DimValue::Literal(s.to_owned()),
                _ => panic!("{by}: dimension {key}: unexpected value {:?}", d["Value"]),
            };
            (key, value)
        })
        .collect()
}

/// The metrics alarm `id` watches: its own metric, or every `MetricStat` of its metric
/// math (after checking the math: one expression returned, naming every metric).
fn alarm_metrics(id: &str, alarm: &Value) -> Vec<Watched> {
    let p = &alarm["Properties"];
    let Some(queries) = p["Metrics"].as_sequence() else {
        return vec![Watched {
            by: id.to_owned(),
            namespace: p["Namespace"].as_str().expect("Namespace").to_owned(),
            name: p["MetricName"].as_str().expect("MetricName").to_owned(),
            dimensions: alarm_dimensions(id, &p["Dimensions"]),
        }];
    };
    for key in [
        "Namespace",
        "MetricName",
        "Dimensions",
        "Statistic",
        "Period",
    ] {
        assert!(p[key].is_null(), "{id}: {key} beside Metrics");
    }
    let returned: Vec<&Value> = queries
        .iter()
        .filter(|q| q["ReturnData"].as_bool() != Some(false))
        .collect();
    assert_eq!(
        returned.len(),
        1,
        "{id}: one query returns the alarm's data"
    );
    let expression = returned[0]["Expression"]
        .as_str()
        .unwrap_or_else(|| panic!("{id}: the returned query is an expression"));
    let mut watched = Vec::new();
    for q in queries {
        let Some(metric) = q["MetricStat"]["Metric"].as_mapping() else {
            continue;
        };
        let metric = Value::Mapping(metric.clone());
        let query_id = q["Id"].as_str().expect("an Id");
        assert!(
            expression.contains("METRICS()")
                || expression
                    .match_indices(query_id)
                    .any(|(at, _)| !expression[..at].ends_with(is_identifier_char)
                        && !expression[at + query_id.len()..].starts_with(is_identifier_char)),
            "{id}: {query_id} is not used by {expression}"
        );
        assert!(
            q["MetricStat"]["Period"].as_u64().is_some() && q["MetricStat"]["Stat"].is_string(),
            "{id}: {query_id} has no Period or Stat"
        );
        watched.push(Watched {
            by: id.to_owned(),
            namespace: metric["Namespace"].as_str().expect("Namespace").to_owned(),
            name: metric["MetricName"]
                .as_str()
                .expect("MetricName")
                .to_owned(),
            dimensions: alarm_dimensions(id, &metric["Dimensions"]),
        });
    }
    // CloudWatch's limit for one alarm's metric math.
    assert!(
        (1..=10).contains(&watched.len()),
        "{id}: {} metrics",
        watched.len()
    );
    watched
}

/// Checks that `w` exists: an AWS metric of the resource its dimension names (a
/// resource of the right type in `t`), or a metric the functions emit
/// (`lambda_handlers::emf`) under the dimensions they emit it with.
fn check_watched(t: &Template, w: &Watched) {
    let by = &w.by;
    for (key, _) in &w.dimensions {
        let lower = key.to_lowercase();
        assert!(
            !["space", "user", "client"]
                .iter()
                .any(|id| lower.contains(id)),
            "{by}: dimension {key} names a space, user or client"
        );
    }
    let keys: BTreeSet<String> = w.dimensions.iter().map(|(k, _)| k.clone()).collect();
    let refers_to = |key: &str, kind: &str| match w.dimension(key) {
        Some(DimValue::Ref(id)) => assert_eq!(
            t.resource(id)["Type"].as_str(),
            Some(kind),
            "{by}: {key} refers to {id}"
        ),
        other => panic!("{by}: {} {key} is {other:?}", w.name),
    };
    match w.namespace.as_str() {
        "AWS/ApiGateway" => {
            // HTTP APIs' names (REST APIs' are 4XXError, 5XXError).
            assert!(
                ["Count", "4xx", "5xx", "Latency", "IntegrationLatency"].contains(&w.name.as_str()),
                "{by}: AWS/ApiGateway {}",
                w.name
            );
            assert_eq!(keys, set(["ApiId"]), "{by}");
            assert_eq!(
                w.dimension("ApiId"),
                Some(&DimValue::Ref(t.http_api())),
                "{by}"
            );
        }
        "AWS/Lambda" => {
            assert!(
                [
                    "Errors",
                    "Throttles",
                    "Duration",
                    "IteratorAge",
                    "Invocations"
                ]
                .contains(&w.name.as_str()),
                "{by}: AWS/Lambda {}",
                w.name
            );
            assert_eq!(keys, set(["FunctionName"]), "{by}");
            refers_to("FunctionName", "AWS::Serverless::Function");
        }
        "AWS/DynamoDB" => {
            assert!(
                [
                    "ReadThrottleEvents",
                    "WriteThrottleEvents",
                    "TransactionConflict",
                    "ConsumedReadCapacityUnits",
                    "ConsumedWriteCapacityUnits",
                ]
                .contains(&w.name.as_str()),
                "{by}: AWS/DynamoDB {}",
                w.name
            );
            assert_eq!(keys, set(["TableName"]), "{by}");
            refers_to("TableName", "AWS::DynamoDB::Table");
        }
        ns if ns == emf::NAMESPACE => {
            let name = w.name.as_str();
            let literal = |key: &str| match w.dimension(key) {
                Some(DimValue::Literal(v)) => v.clone(),
                other => panic!("{by}: {name} {key} is {other:?}"),
            };
            if keys == set([emf::dimension::FUNCTION]) {
                // The poke function's figures, or the garbage collector's.
                let function = literal(emf::dimension::FUNCTION);
                let names: &[&str] = match function.as_str() {
                    emf::dimension::POKE => &emf::metric::BY_FUNCTION,
                    emf::dimension::GC => &emf::metric::BY_GC_FUNCTION,
                    other => panic!("{by}: {name} of function {other}, which emits none"),
                };
                assert!(
                    names.contains(&name),
                    "{by}: {name} is not emitted by {function}"
                );
            } else {
                let by_outcome = keys == set([emf::dimension::ROUTE, emf::dimension::OUTCOME]);
                assert!(
                    by_outcome || keys == set([emf::dimension::ROUTE]),
                    "{by}: {name} under {keys:?}, never emitted so"
                );
                let names: &[&str] = if by_outcome {
                    &emf::metric::BY_ROUTE_AND_OUTCOME
                } else {
                    &emf::metric::BY_ROUTE
                };
                assert!(names.contains(&name), "{by}: {name} under {keys:?}");
                let route = literal(emf::dimension::ROUTE);
                assert!(
                    ALL_ROUTES.iter().any(|r| r.name() == route),
                    "{by}: no route {route}"
                );
            }
        }
        other => panic!("{by}: namespace {other}"),
    }
}

fn alarms(t: &Template) -> Vec<(String, &Value)> {
    t.ids_of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|id| {
            let alarm = t.resource(&id);
            (id, alarm)
        })
        .collect()
}

fn check_alarms(mode: &str, t: &Template) {
    let mut watched = Vec::new();
    for (id, alarm) in alarms(t) {
        let p = &alarm["Properties"];
        assert!(
            p["AlarmDescription"].as_str().is_some_and(|d| d.len() > 20),
            "{mode}: {id} has no description"
        );
        assert_eq!(
            p["TreatMissingData"].as_str(),
            Some("notBreaching"),
            "{mode}: {id}: no traffic is no alarm"
        );
        assert!(p["Threshold"].as_f64().is_some(), "{mode}: {id}: Threshold");
        let periods = p["EvaluationPeriods"].as_u64().expect("EvaluationPeriods");
        let to_alarm = p["DatapointsToAlarm"].as_u64().unwrap_or(periods);
        assert!(
            (1..=periods).contains(&to_alarm),
            "{mode}: {id}: DatapointsToAlarm"
        );
        for w in alarm_metrics(&id, alarm) {
            check_watched(t, &w);
            watched.push(w);
        }
    }
    let watches = |namespace: &str, name: &str| watched.iter().any(|w| w.is(namespace, name));
    for (namespace, name) in [
        ("AWS/ApiGateway", "5xx"),
        ("AWS/DynamoDB", "ReadThrottleEvents"),
        ("AWS/DynamoDB", "WriteThrottleEvents"),
        ("AWS/DynamoDB", "TransactionConflict"),
        (emf::NAMESPACE, emf::metric::VERSION_CONFLICTS),
        (emf::NAMESPACE, emf::metric::POKES_FAILED),
    ] {
        assert!(
            watches(namespace, name),
            "{mode}: no alarm on {namespace} {name}"
        );
    }

    let of_function = |name: &str, function: &str| -> Vec<&Watched> {
        watched
            .iter()
            .filter(|w| {
                w.is("AWS/Lambda", name)
                    && w.dimension("FunctionName") == Some(&DimValue::Ref(function.to_owned()))
            })
            .collect()
    };
    let functions = t.functions();
    assert!(functions.len() >= 6, "{mode}: the functions");
    for f in &functions {
        for name in ["Errors", "Throttles"] {
            assert!(
                !of_function(name, &f.id).is_empty(),
                "{mode}: no alarm on {}'s {name}",
                f.id
            );
        }
        // Its own alarm on its slowest invocation, near (below) its timeout.
        let timeout_ms = f.prop("Timeout").as_f64().expect("Timeout") * 1000.0;
        let duration = of_function("Duration", &f.id);
        assert_eq!(duration.len(), 1, "{mode}: {}'s Duration alarm", f.id);
        let p = &t.resource(&duration[0].by)["Properties"];
        assert_eq!(
            p["Statistic"].as_str(),
            Some("Maximum"),
            "{}",
            duration[0].by
        );
        assert_eq!(
            p["ComparisonOperator"].as_str(),
            Some("GreaterThanThreshold")
        );
        let threshold = p["Threshold"].as_f64().unwrap();
        assert!(
            threshold < timeout_ms && threshold >= timeout_ms / 2.0,
            "{mode}: {}: Duration threshold {threshold} ms, timeout {timeout_ms} ms",
            f.id
        );
    }
    // The poke function's lag behind the table's stream.
    let poke = t.resource("PokeStreamMapping")["Properties"]["FunctionName"].clone();
    let poke = ref_of(&poke).expect("the poke function").to_owned();
    assert_eq!(of_function("IteratorAge", &poke).len(), 1, "{mode}");
}

#[test]
fn alarms_watch_what_exists() {
    for (mode, t) in Template::each_auth_mode() {
        check_alarms(mode, &t);
    }
    // The authorizer's alarm goes with it.
    let none = Template::load_with(&support::template::jwt_parameters("none"));
    assert!(
        alarms(&none).iter().all(|(id, _)| !serde_yaml::to_string(
            &none.resource(id)["Properties"]
        )
        .unwrap()
        .contains("WsAuthorizerFunction")),
        "an alarm watches the authorizer function in AuthMode none"
    );
}

#[test]
fn alarms_notify_the_topic_only_when_it_is_set() {
    let raw = support::template::raw_template();
    assert_eq!(
        raw["Parameters"]["AlarmTopicArn"]["Default"].as_str(),
        Some("")
    );
    let topic = "arn:aws:sns:us-east-1:123456789012:sync-alarms";
    let topic_ref: Value = serde_yaml::from_str("[{Ref: AlarmTopicArn}]").unwrap();
    for mode in ["none", "jwt"] {
        let mut parameters = support::template::jwt_parameters(mode);
        let default = Template::load_with(&parameters);
        parameters.push(("AlarmTopicArn", topic));
        let with_topic = Template::load_with(&parameters);
        let ids = default.ids_of_type("AWS::CloudWatch::Alarm");
        assert!(ids.len() >= 10, "{mode}: alarms: {ids:?}");
        // The alarms exist either way.
        assert_eq!(ids, with_topic.ids_of_type("AWS::CloudWatch::Alarm"));
        for id in &ids {
            for key in ["AlarmActions", "OKActions"] {
                // Exactly the topic when set, nothing (not an empty ARN) otherwise.
                assert!(
                    default.resource(id)["Properties"][key].is_null(),
                    "{mode}: {id}: {key} without a topic"
                );
                assert_eq!(
                    with_topic.resource(id)["Properties"][key],
                    topic_ref,
                    "{mode}: {id}: {key} with a topic"
                );
            }
            assert!(default.resource(id)["Properties"]["InsufficientDataActions"].is_null());
        }
    }
    // As written: under HasAlarmTopic, and only in the alarms.
    let mut rest = raw["Resources"].as_mapping().unwrap().clone();
    rest.retain(|id, resource| {
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            return true;
        }
        for key in ["AlarmActions", "OKActions"] {
            let written = &resource["Properties"][key]["Fn::If"][0];
            assert_eq!(written.as_str(), Some("HasAlarmTopic"), "{id:?}: {key}");
        }
        false
    });
    let rest = serde_yaml::to_string(&rest).unwrap();
    assert!(
        !rest.contains("AlarmTopicArn"),
        "AlarmTopicArn outside the alarms"
    );
}

/// `(body, variables)` of an `Fn::Sub`, in either form.
fn sub_parts(v: &Value) -> (String, Vec<String>) {
    match &v["Fn::Sub"] {
        Value::String(s) => (s.clone(), Vec::new()),
        Value::Sequence(parts) if parts.len() == 2 => (
            parts[0].as_str().expect("Fn::Sub: a string").to_owned(),
            parts[1]
                .as_mapping()
                .expect("Fn::Sub: variables")
                .keys()
                .map(|k| k.as_str().expect("a variable name").to_owned())
                .collect(),
        ),
        other => panic!("not an Fn::Sub: {other:?}"),
    }
}

/// The names between `${` and `}` in `text`.
fn placeholders(text: &str) -> Vec<String> {
    text.match_indices("${")
        .map(|(at, _)| {
            let rest = &text[at + 2..];
            rest[..rest.find('}').expect("a closed ${")].to_owned()
        })
        .collect()
}

/// The metrics a dashboard widget graphs: its metric rows, and the metric names of its
/// SEARCH expressions (`{Namespace,Keys...} MetricName="X"`). `${Id}` in the body is
/// `<ref:Id>` here.
fn widget_metrics(title: &str, widget: &Json) -> Vec<Watched> {
    let mut watched = Vec::new();
    for row in widget["properties"]["metrics"]
        .as_array()
        .unwrap_or_else(|| panic!("{title}: no metrics"))
    {
        let row = row.as_array().expect("a metric row");
        if let Some(expression) = row[0]["expression"].as_str() {
            let Some(search) = expression.strip_prefix("SEARCH('{") else {
                continue;
            };
            let (schema, rest) = search.split_once('}').expect("a SEARCH schema");
            let mut schema = schema.split(',').map(str::to_owned);
            let namespace = schema.next().unwrap();
            let name = rest
                .split_once("MetricName=\"")
                .and_then(|(_, n)| n.split_once('"'))
                .map(|(n, _)| n.to_owned())
                .unwrap_or_else(|| panic!("{title}: a SEARCH with no MetricName"));
            // Any route (and outcome): stands for one that exists.
            let dimensions = schema
                .map(|k| {
                    let v = if k == emf::dimension::ROUTE {
                        "push"
                    } else {
                        "ok"
                    };
                    (k, DimValue::Literal(v.to_owned()))
                })
                .collect();
            watched.push(Watched {
                by: title.to_owned(),
                namespace,
                name,
                dimensions,
            });
            continue;
        }
        let strings: Vec<&str> = row.iter().filter_map(Json::as_str).collect();
        assert!(
            strings.len() >= 2 && strings.len().is_multiple_of(2) && !strings.contains(&"."),
            "{title}: row {row:?}"
        );
        let dimensions = strings[2..]
            .chunks(2)
            .map(|kv| {
                let value = match kv[1]
                    .strip_prefix("<ref:")
                    .and_then(|v| v.strip_suffix('>'))
                {
                    Some(id) => DimValue::Ref(id.to_owned()),
                    None => DimValue::Literal(kv[1].to_owned()),
                };
                (kv[0].to_owned(), value)
            })
            .collect();
        watched.push(Watched {
            by: title.to_owned(),
            namespace: strings[0].to_owned(),
            name: strings[1].to_owned(),
            dimensions,
        });
    }
    watched
}

#[test]
fn dashboard_graphs_what_exists() {
    for (mode, t) in Template::each_auth_mode() {
        let id = t.only_id_of_type("AWS::CloudWatch::Dashboard");
        let (body, variables) = sub_parts(&t.resource(&id)["Properties"]["DashboardBody"]);
        let mut substituted = body.clone();
        for name in placeholders(&body) {
            let known = name.starts_with("AWS::")
                || variables.contains(&name)
                || !t.doc["Resources"][name.as_str()].is_null();
            assert!(known, "{mode}: ${{{name}}} is no resource or variable");
            // A marker that stays valid JSON only inside a string, as a name must be.
            substituted = substituted.replace(&format!("${{{name}}}"), &format!("<ref:{name}>"));
        }
        let dashboard: Json = serde_json::from_str(&substituted)
            .unwrap_or_else(|e| panic!("{mode}: the dashboard body is not JSON: {e}"));
        let widgets = dashboard["widgets"].as_array().expect("widgets");
        let mut watched = Vec::new();
        for widget in widgets {
            let title = widget["properties"]["title"].as_str().expect("a title");
            for key in ["x", "y", "width", "height"] {
                assert!(widget[key].is_u64(), "{title}: {key}");
            }
            assert!(
                widget["x"].as_u64().unwrap() + widget["width"].as_u64().unwrap() <= 24,
                "{title}: wider than the grid"
            );
            let graphs = widget_metrics(title, widget);
            assert!(!graphs.is_empty(), "{mode}: {title} graphs nothing");
            for w in &graphs {
                // The authorizer function's name is a variable: it exists in jwt mode only.
                if w.dimension("FunctionName")
                    == Some(&DimValue::Ref("WsAuthorizerName".to_owned()))
                {
                    assert!(variables.contains(&"WsAuthorizerName".to_owned()));
                    continue;
                }
                check_watched(&t, w);
            }
            watched.extend(graphs);
        }
        let graphs = |namespace: &str, name: &str| watched.iter().any(|w| w.is(namespace, name));
        for (namespace, name) in [
            ("AWS/ApiGateway", "5xx"),
            ("AWS/ApiGateway", "4xx"),
            ("AWS/DynamoDB", "ConsumedWriteCapacityUnits"),
            ("AWS/DynamoDB", "WriteThrottleEvents"),
            ("AWS/Lambda", "IteratorAge"),
            (emf::NAMESPACE, emf::metric::REQUESTS),
            (emf::NAMESPACE, emf::metric::LATENCY),
            (emf::NAMESPACE, emf::metric::MUTATIONS_APPLIED),
            (emf::NAMESPACE, emf::metric::MUTATIONS_FAILED),
            (emf::NAMESPACE, emf::metric::VERSION_CONFLICTS),
            (emf::NAMESPACE, emf::metric::POKES_SENT),
            (emf::NAMESPACE, emf::metric::POKES_FAILED),
        ] {
            assert!(
                graphs(namespace, name),
                "{mode}: no graph of {namespace} {name}"
            );
        }
        for f in t.functions() {
            for name in ["Errors", "Throttles", "Duration"] {
                let graphed = watched.iter().any(|w| {
                    w.is("AWS/Lambda", name)
                        && match w.dimension("FunctionName") {
                            Some(DimValue::Ref(r)) => {
                                *r == f.id
                                    || (r == "WsAuthorizerName" && f.binary == "ws-authorizer")
                            }
                            _ => false,
                        }
                });
                assert!(graphed, "{mode}: no graph of {}'s {name}", f.id);
            }
        }
        let url = sub_of(&t.doc["Outputs"]["DashboardUrl"]["Value"]).expect("DashboardUrl");
        assert!(
            url.ends_with(&format!("#dashboards:name=${{{id}}}")),
            "{url}"
        );
    }
}
