//! `infra/template.yaml` as data: resources, the functions with their settings (Globals
//! applied), and the scopes of their IAM statements.

use serde_yaml::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where an IAM action applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// The sync table itself.
    Table,
    /// A secondary index of the sync table, by name.
    Index(String),
    /// `@connections/*` of the WebSocket API's stage.
    Connections,
    /// The cookie secret (the stack's one `AWS::SecretsManager::Secret`).
    Secret,
    /// The sync table's stream (`Fn::GetAtt: [Table, StreamArn]`).
    Stream,
    /// The objects of the answer bucket (`${Bucket.Arn}/*` of the stack's one
    /// `AWS::S3::Bucket`).
    AnswerObjects,
    /// Anything else, as written.
    Other(String),
}

/// (IAM action, where it applies).
pub type Grant = (String, Scope);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// The template as deployed with some parameter values: resources whose `Condition` is
/// false are gone, every `Fn::If` is replaced by its chosen branch, and what a branch
/// left as `AWS::NoValue` is removed (see [`resolve`]). Refs to parameters stay as they
/// are: the tests check what they refer to.
pub struct Template {
    pub doc: Value,
    /// The directory of the template, which relative paths such as CodeUri start from.
    pub dir: PathBuf,
}

/// The template as written, conditions unevaluated.
pub fn raw_template() -> Value {
    let path = workspace_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

impl Template {
    /// The template with its parameters' defaults.
    pub fn load() -> Template {
        Template::load_with(&[])
    }

    /// The template with `overrides` of its parameters (the rest at their defaults).
    pub fn load_with(overrides: &[(&str, &str)]) -> Template {
        let raw = raw_template();
        let parameters = parameter_values(&raw, overrides);
        let doc = resolve(&raw, &parameters);
        Template {
            doc,
            dir: workspace_root().join("infra"),
        }
    }

    /// The template in both auth modes: (mode, template).
    pub fn each_auth_mode() -> Vec<(&'static str, Template)> {
        ["none", "jwt"]
            .into_iter()
            .map(|mode| (mode, Template::load_with(&jwt_parameters(mode))))
            .collect()
    }

    pub fn resources(&self) -> &Mapping {
        self.doc["Resources"]
            .as_mapping()
            .expect("a Resources mapping")
    }

    pub fn resource(&self, id: &str) -> &Value {
        let resource = &self.doc["Resources"][id];
        assert!(!resource.is_null(), "no resource {id} in the template");
        resource
    }

    /// Logical IDs of the resources of `kind`, in order.
    pub fn ids_of_type(&self, kind: &str) -> Vec<String> {
        self.resources()
            .iter()
            .filter(|(_, r)| r["Type"].as_str() == Some(kind))
            .map(|(id, _)| id.as_str().expect("string logical IDs").to_owned())
            .collect()
    }

    /// The one resource of `kind`.
    pub fn only_id_of_type(&self, kind: &str) -> String {
        let ids = self.ids_of_type(kind);
        assert_eq!(ids.len(), 1, "expected one {kind}, found {ids:?}");
        ids[0].clone()
    }

    pub fn functions(&self) -> Vec<Function<'_>> {
        self.ids_of_type("AWS::Serverless::Function")
            .into_iter()
            .map(|id| {
                let resource = self.resource(&id);
                let binary = resource["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{id} has no Metadata.BuildProperties.Binary"))
                    .to_owned();
                Function {
                    id,
                    binary,
                    resource,
                    globals: &self.doc["Globals"]["Function"],
                }
            })
            .collect()
    }

    /// What an IAM `Resource` entry designates, recognizing this template's forms.
    pub fn scope_of(&self, resource: &Value) -> Scope {
        let table = self.only_id_of_type("AWS::DynamoDB::Table");
        // A secret's Ref is its ARN.
        if ref_of(resource) == Some(self.cookie_secret().as_str()) {
            return Scope::Secret;
        }
        if let Some((id, attribute)) = get_att(resource)
            && id == table
        {
            match attribute.as_str() {
                "Arn" => return Scope::Table,
                "StreamArn" => return Scope::Stream,
                _ => {}
            }
        }
        if let Some(sub) = sub_of(resource) {
            if sub == format!("${{{}.Arn}}/*", self.answer_bucket()) {
                return Scope::AnswerObjects;
            }
            if let Some(index) = sub.strip_prefix(&format!("${{{table}.Arn}}/index/")) {
                return Scope::Index(index.to_owned());
            }
            let api = self.websocket_api();
            let stage = self.websocket_stage();
            let connections = format!(
                "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api}}}/${{{stage}}}/POST/@connections/*"
            );
            if sub == connections {
                return Scope::Connections;
            }
        }
        Scope::Other(serde_yaml::to_string(resource).unwrap_or_default())
    }

    /// The logical ID of the answer bucket.
    pub fn answer_bucket(&self) -> String {
        self.only_id_of_type("AWS::S3::Bucket")
    }

    /// The logical ID of the cookie secret.
    pub fn cookie_secret(&self) -> String {
        self.only_id_of_type("AWS::SecretsManager::Secret")
    }

    pub fn websocket_api(&self) -> String {
        self.api("WEBSOCKET")
    }

    /// The stage of the WebSocket API.
    pub fn websocket_stage(&self) -> String {
        self.stage_of(&self.websocket_api())
    }
}

/// Parameters of a deployment in auth mode `mode` (issuer and audience as a Cognito user
/// pool's would be in `jwt` mode).
pub fn jwt_parameters(mode: &str) -> Vec<(&'static str, &'static str)> {
    match mode {
        "jwt" => vec![
            ("AuthMode", "jwt"),
            (
                "JwtIssuer",
                "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
            ),
            ("JwtAudience", "exampleclientid"),
        ],
        _ => vec![("AuthMode", "none")],
    }
}

/// Every parameter's value: the override, else its `Default` (as CloudFormation hands
/// values to conditions: strings). A parameter without a default must be overridden.
pub fn parameter_values(raw: &Value, overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for (name, parameter) in raw["Parameters"].as_mapping().expect("Parameters") {
        let name = name.as_str().expect("string parameter names").to_owned();
        let value = overrides
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| scalar(&parameter["Default"]))
            .unwrap_or_else(|| panic!("parameter {name} has no default and no value"));
        if let Some(allowed) = parameter["AllowedValues"].as_sequence() {
            let allowed: Vec<String> = allowed.iter().filter_map(scalar).collect();
            assert!(
                allowed.contains(&value),
                "{name}={value:?} is not one of {allowed:?}"
            );
        }
        values.insert(name, value);
    }
    for (name, _) in overrides {
        assert!(values.contains_key(*name), "no parameter {name}");
    }
    values
}

/// A scalar as CloudFormation passes it to conditions: a string.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The value of every condition of `raw` under `parameters`.
pub fn evaluate_conditions(
    raw: &Value,
    parameters: &BTreeMap<String, String>,
) -> BTreeMap<String, bool> {
    let definitions = raw["Conditions"].as_mapping().cloned().unwrap_or_default();
    let mut values = BTreeMap::new();
    for name in definitions.keys() {
        let name = name.as_str().expect("string condition names");
        condition_value(name, &definitions, parameters, &mut values, 0);
    }
    values
}

fn condition_value(
    name: &str,
    definitions: &Mapping,
    parameters: &BTreeMap<String, String>,
    values: &mut BTreeMap<String, bool>,
    depth: usize,
) -> bool {
    if let Some(v) = values.get(name) {
        return *v;
    }
    assert!(depth < 32, "condition {name} refers to itself");
    let definition = definitions
        .get(name)
        .unwrap_or_else(|| panic!("no condition {name}"));
    let v = condition_expression(definition, definitions, parameters, values, depth + 1);
    values.insert(name.to_owned(), v);
    v
}

/// A condition function: Fn::Equals, Fn::Not, Fn::And, Fn::Or, or `Condition: name`.
/// Anything else fails the test (this evaluator knows only what the template uses).
fn condition_expression(
    e: &Value,
    definitions: &Mapping,
    parameters: &BTreeMap<String, String>,
    values: &mut BTreeMap<String, bool>,
    depth: usize,
) -> bool {
    let map = e
        .as_mapping()
        .filter(|m| m.len() == 1)
        .unwrap_or_else(|| panic!("not a condition function: {e:?}"));
    let (function, args) = map.iter().next().expect("one entry");
    let args_list = || args.as_sequence().cloned().unwrap_or_default();
    let mut sub = |v: &Value| condition_expression(v, definitions, parameters, values, depth);
    match function.as_str().expect("a function name") {
        "Fn::Equals" => {
            let operands = args_list();
            assert_eq!(operands.len(), 2, "Fn::Equals takes two operands: {e:?}");
            condition_operand(&operands[0], parameters)
                == condition_operand(&operands[1], parameters)
        }
        "Fn::Not" => {
            let operands = args_list();
            assert_eq!(operands.len(), 1, "Fn::Not takes one condition: {e:?}");
            !sub(&operands[0])
        }
        "Fn::And" => args_list().iter().all(&mut sub),
        "Fn::Or" => args_list().iter().any(&mut sub),
        "Condition" => condition_value(
            args.as_str().expect("Condition: a name"),
            definitions,
            parameters,
            values,
            depth,
        ),
        other => panic!("the test's evaluator does not know {other}: {e:?}"),
    }
}

/// An operand of Fn::Equals: a literal, or a Ref to a parameter.
fn condition_operand(v: &Value, parameters: &BTreeMap<String, String>) -> String {
    if let Some(name) = ref_of(v) {
        return parameters
            .get(name)
            .unwrap_or_else(|| panic!("Fn::Equals: {name} is not a parameter"))
            .clone();
    }
    scalar(v).unwrap_or_else(|| panic!("Fn::Equals: unexpected operand {v:?}"))
}

/// `raw` as CloudFormation deploys it under `parameters`: resources and outputs whose
/// `Condition` is false removed, each `Fn::If` replaced by its branch, `AWS::NoValue`
/// removed. A `Fn::If` naming an unknown condition fails the test.
pub fn resolve(raw: &Value, parameters: &BTreeMap<String, String>) -> Value {
    let conditions = evaluate_conditions(raw, parameters);
    let mut doc = raw.clone();
    for section in ["Resources", "Outputs"] {
        if let Some(entries) = doc[section].as_mapping_mut() {
            entries.retain(|_, entry| match entry["Condition"].as_str() {
                None => true,
                Some(c) => *conditions
                    .get(c)
                    .unwrap_or_else(|| panic!("{section}: unknown condition {c}")),
            });
        }
    }
    for section in ["Globals", "Resources", "Outputs"] {
        let resolved = resolve_value(&doc[section], &conditions);
        doc[section] = resolved.unwrap_or(Value::Null);
    }
    doc
}

fn is_no_value(v: &Value) -> bool {
    ref_of(v) == Some("AWS::NoValue")
}

/// `v` with its `Fn::If`s chosen; `None` where it is `AWS::NoValue`.
fn resolve_value(v: &Value, conditions: &BTreeMap<String, bool>) -> Option<Value> {
    if is_no_value(v) {
        return None;
    }
    match v {
        Value::Mapping(map) => {
            if map.len() == 1
                && let Some(args) = map.get("Fn::If")
            {
                let args = args.as_sequence().expect("Fn::If: a list");
                assert_eq!(args.len(), 3, "Fn::If: [condition, then, else]");
                let name = args[0].as_str().expect("Fn::If: a condition name");
                let chosen = *conditions
                    .get(name)
                    .unwrap_or_else(|| panic!("Fn::If: unknown condition {name}"));
                return resolve_value(&args[if chosen { 1 } else { 2 }], conditions);
            }
            let mut out = Mapping::new();
            for (k, item) in map {
                if let Some(item) = resolve_value(item, conditions) {
                    out.insert(k.clone(), item);
                }
            }
            Some(Value::Mapping(out))
        }
        Value::Sequence(items) => Some(Value::Sequence(
            items
                .iter()
                .filter_map(|item| resolve_value(item, conditions))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

pub struct Function<'a> {
    pub id: String,
    pub binary: String,
    pub resource: &'a Value,
    globals: &'a Value,
}

impl Function<'_> {
    /// A property of the function, or of `Globals.Function` when the function has none.
    pub fn prop(&self, name: &str) -> &Value {
        let own = &self.resource["Properties"][name];
        if own.is_null() {
            &self.globals[name]
        } else {
            own
        }
    }

    /// Environment variables (SAM merges the Globals' into the function's).
    pub fn env(&self) -> BTreeMap<String, Value> {
        let mut env = BTreeMap::new();
        for source in [self.globals, &self.resource["Properties"]] {
            if let Some(vars) = source["Environment"]["Variables"].as_mapping() {
                for (k, v) in vars {
                    env.insert(k.as_str().expect("string names").to_owned(), v.clone());
                }
            }
        }
        env
    }

    /// Every IAM statement of the function's inline policies.
    pub fn statements(&self) -> Vec<&Value> {
        let mut statements = Vec::new();
        for policy in self.prop("Policies").as_sequence().into_iter().flatten() {
            let listed = &policy["Statement"];
            assert!(
                listed.is_sequence(),
                "{}: only inline policies with a Statement list are expected, found {policy:?}",
                self.id
            );
            statements.extend(listed.as_sequence().into_iter().flatten());
        }
        statements
    }
}

/// One route of an `AWS::ApiGatewayV2::Api`, with what serves it.
#[derive(Debug, Clone)]
pub struct ApiRoute {
    pub id: String,
    /// `POST /api/replicache/push`, `$connect`...
    pub key: String,
    /// The logical ID of the function its integration invokes (`AWS_PROXY`); `None` for
    /// a `MOCK` integration, which API Gateway answers itself.
    pub function: Option<String>,
    pub integration: String,
    pub authorization_type: String,
    /// The logical ID of its authorizer (`AuthorizerId: Ref X`).
    pub authorizer: Option<String>,
}

impl ApiRoute {
    /// The logical ID of the function serving this route, which must have one.
    pub fn function(&self) -> &str {
        self.function
            .as_deref()
            .unwrap_or_else(|| panic!("{}: no function serves it", self.key))
    }
}

/// The logical ID of the function an integration or authorizer URI invokes.
pub fn invoked_function(uri: &Value) -> String {
    let uri = sub_of(uri).unwrap_or_else(|| panic!("not an Fn::Sub URI: {uri:?}"));
    uri.strip_prefix(
        "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${",
    )
    .and_then(|s| s.strip_suffix(".Arn}/invocations"))
    .unwrap_or_else(|| panic!("unexpected Lambda invocation URI {uri}"))
    .to_owned()
}

impl Template {
    /// The one API of `protocol` (`HTTP` or `WEBSOCKET`).
    pub fn api(&self, protocol: &str) -> String {
        let apis: Vec<String> = self
            .ids_of_type("AWS::ApiGatewayV2::Api")
            .into_iter()
            .filter(|id| self.resource(id)["Properties"]["ProtocolType"].as_str() == Some(protocol))
            .collect();
        assert_eq!(apis.len(), 1, "expected one {protocol} API, found {apis:?}");
        apis[0].clone()
    }

    pub fn http_api(&self) -> String {
        self.api("HTTP")
    }

    /// The resources of `kind` whose `ApiId` is `Ref: api`.
    pub fn ids_of_api(&self, kind: &str, api: &str) -> Vec<String> {
        self.ids_of_type(kind)
            .into_iter()
            .filter(|id| ref_of(&self.resource(id)["Properties"]["ApiId"]) == Some(api))
            .collect()
    }

    /// The one stage of `api`.
    pub fn stage_of(&self, api: &str) -> String {
        let stages = self.ids_of_api("AWS::ApiGatewayV2::Stage", api);
        assert_eq!(
            stages.len(),
            1,
            "expected one stage of {api}, found {stages:?}"
        );
        stages[0].clone()
    }

    /// Every route of `api`, with its integration's function.
    pub fn routes_of(&self, api: &str) -> Vec<ApiRoute> {
        self.ids_of_type("AWS::ApiGatewayV2::Route")
            .into_iter()
            .filter_map(|id| {
                let p = &self.resource(&id)["Properties"];
                if ref_of(&p["ApiId"]) != Some(api) {
                    return None;
                }
                let integration = sub_of(&p["Target"])
                    .and_then(|s| s.strip_prefix("integrations/${"))
                    .and_then(|s| s.strip_suffix('}'))
                    .unwrap_or_else(|| panic!("{id}: Target is not integrations/${{...}}"))
                    .to_owned();
                let i = &self.resource(&integration)["Properties"];
                assert_eq!(ref_of(&i["ApiId"]), Some(api), "{integration}");
                let function = match i["IntegrationType"].as_str() {
                    Some("AWS_PROXY") => Some(invoked_function(&i["IntegrationUri"])),
                    Some("MOCK") => {
                        assert!(
                            i["IntegrationUri"].is_null(),
                            "{integration}: MOCK has no URI"
                        );
                        None
                    }
                    other => panic!("{integration}: IntegrationType {other:?}"),
                };
                Some(ApiRoute {
                    key: p["RouteKey"].as_str().expect("RouteKey").to_owned(),
                    function,
                    integration,
                    authorization_type: p["AuthorizationType"]
                        .as_str()
                        .unwrap_or("NONE")
                        .to_owned(),
                    authorizer: ref_of(&p["AuthorizerId"]).map(str::to_owned),
                    id,
                })
            })
            .collect()
    }

    /// The `AWS::Lambda::Permission`s of the function `function_id`.
    pub fn permissions_of(&self, function_id: &str) -> Vec<&Value> {
        self.ids_of_type("AWS::Lambda::Permission")
            .into_iter()
            .map(|id| &self.resource(&id)["Properties"])
            .filter(|p| ref_of(&p["FunctionName"]) == Some(function_id))
            .collect()
    }
}

/// The grants of `statements`, in `template`'s terms. Only plain `Allow` statements with
/// explicit action lists are expected.
pub fn grants_of(template: &Template, function: &Function<'_>) -> BTreeSet<Grant> {
    let mut grants = BTreeSet::new();
    for statement in function.statements() {
        assert_eq!(
            statement["Effect"].as_str(),
            Some("Allow"),
            "{}: {statement:?}",
            function.id
        );
        for key in ["NotAction", "NotResource", "Condition"] {
            assert!(
                statement[key].is_null(),
                "{}: unexpected {key}",
                function.id
            );
        }
        let actions = strings(&statement["Action"]);
        let resources = list(&statement["Resource"]);
        assert!(
            !actions.is_empty() && !resources.is_empty(),
            "{}: empty statement",
            function.id
        );
        for action in &actions {
            assert!(
                !action.contains('*'),
                "{}: wildcard action {action}",
                function.id
            );
            for resource in &resources {
                grants.insert((action.clone(), template.scope_of(resource)));
            }
        }
    }
    grants
}

/// `{Ref: X}` -> X.
pub fn ref_of(v: &Value) -> Option<&str> {
    v["Ref"].as_str()
}

/// `{Fn::GetAtt: [X, Y]}` or `{Fn::GetAtt: X.Y}` -> (X, Y).
pub fn get_att(v: &Value) -> Option<(String, String)> {
    match &v["Fn::GetAtt"] {
        Value::Sequence(parts) if parts.len() == 2 => {
            Some((parts[0].as_str()?.to_owned(), parts[1].as_str()?.to_owned()))
        }
        Value::String(s) => s.split_once('.').map(|(a, b)| (a.to_owned(), b.to_owned())),
        _ => None,
    }
}

/// `{Fn::Sub: "..."}` -> the string.
pub fn sub_of(v: &Value) -> Option<&str> {
    v["Fn::Sub"].as_str()
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Sequence(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// A string or a list of strings.
pub fn strings(v: &Value) -> Vec<String> {
    list(v)
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}
