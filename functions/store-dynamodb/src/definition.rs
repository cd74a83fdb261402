//! The table's definition has one source: the `AWS::DynamoDB::Table` resource of
//! `infra/template.yaml`, compiled into this crate. Deployments create the table from the
//! template; local runs and tests create it from the same resource ([`crate::create_table`]),
//! so nothing else restates its keys, attributes or indexes.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The deployment template, as built.
const TEMPLATE: &str = include_str!("../../../infra/template.yaml");

/// The resource type this module reads.
pub const TABLE_RESOURCE_TYPE: &str = "AWS::DynamoDB::Table";

#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("the template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("the template has {0} resources of type {TABLE_RESOURCE_TYPE}, not one")]
    TableCount(usize),
}

/// The properties of the table resource that shape its data: the rest (stream, recovery,
/// encryption, retention) only concerns a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableDefinition {
    pub billing_mode: String,
    pub attribute_definitions: Vec<AttributeDefinition>,
    pub key_schema: Vec<KeyElement>,
    #[serde(default)]
    pub local_secondary_indexes: Vec<LocalIndex>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<serde_yaml::Value>,
    pub time_to_live_specification: Option<TimeToLive>,
    pub stream_specification: Option<StreamSpecification>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinition {
    pub attribute_name: String,
    /// `S`, `N` or `B`.
    pub attribute_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyElement {
    pub attribute_name: String,
    /// `HASH` or `RANGE`.
    pub key_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LocalIndex {
    pub index_name: String,
    pub key_schema: Vec<KeyElement>,
    pub projection: Projection,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Projection {
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimeToLive {
    pub attribute_name: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSpecification {
    pub stream_view_type: String,
}

#[derive(Deserialize)]
struct Template {
    #[serde(rename = "Resources")]
    resources: BTreeMap<String, Resource>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(rename = "Type")]
    kind: String,
    // Other resources' properties hold CloudFormation's tags (`!Ref`, `!Sub`): kept as
    // YAML values, read only for the table.
    #[serde(rename = "Properties", default)]
    properties: serde_yaml::Value,
}

impl TableDefinition {
    /// The table of the deployment template.
    pub fn from_template() -> Result<Self, DefinitionError> {
        Self::from_template_text(TEMPLATE)
    }

    /// The one table resource of a CloudFormation template's text.
    pub fn from_template_text(text: &str) -> Result<Self, DefinitionError> {
        let template: Template = serde_yaml::from_str(text)?;
        let mut tables = template
            .resources
            .into_values()
            .filter(|r| r.kind == TABLE_RESOURCE_TYPE)
            .collect::<Vec<_>>();
        match tables.len() {
            1 => Ok(serde_yaml::from_value(tables.remove(0).properties)?),
            n => Err(DefinitionError::TableCount(n)),
        }
    }

    /// The type of a defined attribute.
    pub fn attribute_type(&self, name: &str) -> Option<&str> {
        self.attribute_definitions
            .iter()
            .find(|a| a.attribute_name == name)
            .map(|a| a.attribute_type.as_str())
    }

    pub fn local_index(&self, name: &str) -> Option<&LocalIndex> {
        self.local_secondary_indexes
            .iter()
            .find(|i| i.index_name == name)
    }
}

/// `(attribute, key type)` pairs of a key schema, for comparisons.
pub fn key_pairs(keys: &[KeyElement]) -> Vec<(&str, &str)> {
    keys.iter()
        .map(|k| (k.attribute_name.as_str(), k.key_type.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;

    /// The names the code uses are the ones the template defines.
    #[test]
    fn the_template_defines_the_table_the_code_uses() {
        let t = TableDefinition::from_template().expect("the template's table");
        assert_eq!(t.billing_mode, "PAY_PER_REQUEST");
        assert_eq!(
            key_pairs(&t.key_schema),
            [(schema::PK, "HASH"), (schema::SK, "RANGE")]
        );
        assert_eq!(t.attribute_type(schema::PK), Some("S"));
        assert_eq!(t.attribute_type(schema::SK), Some("S"));
        assert_eq!(t.attribute_type(schema::VERSION), Some("N"));
        assert_eq!(t.attribute_definitions.len(), 3, "only key attributes");
        let index = t
            .local_index(schema::VERSION_INDEX)
            .expect("the version index");
        assert_eq!(
            key_pairs(&index.key_schema),
            [(schema::PK, "HASH"), (schema::VERSION, "RANGE")]
        );
        assert_eq!(index.projection.projection_type, "ALL");
        assert_eq!(t.local_secondary_indexes.len(), 1);
        assert!(t.global_secondary_indexes.is_empty());
        let ttl = t.time_to_live_specification.as_ref().expect("a TTL");
        assert_eq!(
            (ttl.attribute_name.as_str(), ttl.enabled),
            (schema::TTL_ATTRIBUTE, true)
        );
    }

    #[test]
    fn a_template_without_exactly_one_table_is_refused() {
        let none = "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n";
        assert!(matches!(
            TableDefinition::from_template_text(none),
            Err(DefinitionError::TableCount(0))
        ));
        let table = "    Type: AWS::DynamoDB::Table\n    Properties: {BillingMode: PAY_PER_REQUEST, AttributeDefinitions: [], KeySchema: []}\n";
        let two = format!("Resources:\n  A:\n{table}  B:\n{table}");
        assert!(matches!(
            TableDefinition::from_template_text(&two),
            Err(DefinitionError::TableCount(2))
        ));
        assert!(matches!(
            TableDefinition::from_template_text("Resources: [unclosed"),
            Err(DefinitionError::Yaml(_))
        ));
    }
}
