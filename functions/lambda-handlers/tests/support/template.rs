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

pub struct Template {
    pub doc: Value,
    /// The directory of the template, which relative paths such as CodeUri start from.
    pub dir: PathBuf,
}

impl Template {
    pub fn load() -> Template {
        let path = workspace_root().join("infra/template.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let doc: Value = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
        Template {
            doc,
            dir: path.parent().expect("infra/").to_owned(),
        }
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
            && attribute == "Arn"
        {
            return Scope::Table;
        }
        if let Some(sub) = sub_of(resource) {
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

    /// The logical ID of the cookie secret.
    pub fn cookie_secret(&self) -> String {
        self.only_id_of_type("AWS::SecretsManager::Secret")
    }

    pub fn websocket_api(&self) -> String {
        let apis: Vec<String> = self
            .ids_of_type("AWS::ApiGatewayV2::Api")
            .into_iter()
            .filter(|id| {
                self.resource(id)["Properties"]["ProtocolType"].as_str() == Some("WEBSOCKET")
            })
            .collect();
        assert_eq!(apis.len(), 1, "expected one WebSocket API, found {apis:?}");
        apis[0].clone()
    }

    /// The stage of the WebSocket API.
    pub fn websocket_stage(&self) -> String {
        let api = self.websocket_api();
        let stages: Vec<String> = self
            .ids_of_type("AWS::ApiGatewayV2::Stage")
            .into_iter()
            .filter(|id| ref_of(&self.resource(id)["Properties"]["ApiId"]) == Some(api.as_str()))
            .collect();
        assert_eq!(
            stages.len(),
            1,
            "expected one stage of {api}, found {stages:?}"
        );
        stages[0].clone()
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

    /// (method, path, API logical ID) of every HttpApi event.
    pub fn http_routes(&self) -> Vec<(String, String, String)> {
        let mut routes = Vec::new();
        for (name, event) in self.resource["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            assert_eq!(
                event["Type"].as_str(),
                Some("HttpApi"),
                "{}: event {name:?} is not an HttpApi event",
                self.id
            );
            let p = &event["Properties"];
            routes.push((
                p["Method"].as_str().expect("Method").to_owned(),
                p["Path"].as_str().expect("Path").to_owned(),
                ref_of(&p["ApiId"]).expect("ApiId: Ref").to_owned(),
            ));
        }
        routes
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
