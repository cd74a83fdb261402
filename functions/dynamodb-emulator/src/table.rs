//! A table: its key schema and local secondary indexes, its items by partition (each
//! partition an ordered map by sort key, with an ordered set per index, so that a `Query`
//! reads only its key range, as DynamoDB does), key and item validation with DynamoDB's
//! limits and messages, and what a write costs in write units. A `Scan` reads the
//! partitions in a fixed order, by a hash of their key ([`scan_hash`]), kept in
//! [`Table::scan_order`].

use crate::error::ApiError;
use crate::value::{Item, KeyValue, Value, item_size};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// DynamoDB's limits: 400 KB per item, 2,048 bytes per partition key, 1,024 bytes per sort
/// key.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
pub const MAX_HASH_KEY_BYTES: usize = 2048;
pub const MAX_RANGE_KEY_BYTES: usize = 1024;

pub type SortKey = Option<KeyValue>;

/// Sort keys of an index, with sentinels below and above every table sort key, so that a
/// key condition on the index's sort key is a range of this set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Edge {
    Min,
    At(SortKey),
    Max,
}

/// An index entry: the index's sort key, then the table's sort key (ties in the index are
/// ordered by the table's key).
pub type IndexKey = (KeyValue, Edge);

/// A partition's place in a scan: the hash of its key ([`scan_hash`]), then the key itself
/// (should two hashes tie). Entries always hold `Some`; `(h, None)` sorts below every key
/// of hash `h`, so that a range can start at a hash.
pub type ScanKey = (u64, Option<KeyValue>);

/// The hash that orders partitions in a scan and assigns them to the segments of a
/// parallel scan: FNV-1a over the key's type and bytes (a number's canonical text, so that
/// `1.50` and `1.5` agree), then SplitMix64's finaliser so that every bit depends on every
/// byte. Fixed, unlike `std`'s hasher, so that the order is the same across pages and runs.
pub fn scan_hash(pk: &KeyValue) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    match pk {
        KeyValue::S(s) => {
            eat(b"S");
            eat(s.as_bytes());
        }
        KeyValue::N(n) => {
            eat(b"N");
            eat(n.to_string().as_bytes());
        }
        KeyValue::B(b) => {
            eat(b"B");
            eat(b);
        }
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PrimaryKey {
    pub pk: KeyValue,
    pub sk: SortKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    All,
    KeysOnly,
    Include,
}

#[derive(Debug, Clone)]
pub struct Lsi {
    pub name: String,
    pub range: String,
    pub projection: Projection,
    pub non_key: Vec<String>,
    /// The `Projection` as created, for `DescribeTable`.
    pub projection_json: Json,
}

#[derive(Debug, Default)]
pub struct Partition {
    pub items: BTreeMap<SortKey, Item>,
    /// One set per local secondary index, in the order of [`Table::lsis`].
    pub indexes: Vec<BTreeSet<IndexKey>>,
}

#[derive(Debug)]
pub struct Table {
    pub name: String,
    pub hash: String,
    pub range: Option<String>,
    /// Declared types (`S`, `N`, `B`) of the key attributes of the table and its indexes.
    pub types: BTreeMap<String, String>,
    pub lsis: Vec<Lsi>,
    pub ttl_attribute: Option<String>,
    pub created: f64,
    pub definitions: Json,
    pub partitions: HashMap<KeyValue, Partition>,
    /// The keys of [`Table::partitions`] in scan order.
    pub scan_order: BTreeSet<ScanKey>,
    pub item_count: usize,
    pub size_bytes: usize,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::validation(message)
}

impl Table {
    /// A table from a `CreateTable` request.
    pub fn create(body: &Json, now: f64) -> Result<Table, ApiError> {
        let name = crate::ops::table_name(body)?;
        let definitions = body["AttributeDefinitions"].clone();
        let mut types = BTreeMap::new();
        for def in definitions.as_array().into_iter().flatten() {
            let (Some(attr), Some(kind)) =
                (def["AttributeName"].as_str(), def["AttributeType"].as_str())
            else {
                return Err(invalid("Invalid AttributeDefinitions"));
            };
            if !["S", "N", "B"].contains(&kind) {
                return Err(invalid(format!(
                    "1 validation error detected: Value '{kind}' at 'attributeDefinitions.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"
                )));
            }
            types.insert(attr.to_owned(), kind.to_owned());
        }
        let (hash, range) = key_schema(&body["KeySchema"])?;
        let mut lsis = Vec::new();
        for index in body["LocalSecondaryIndexes"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index_name = index["IndexName"]
                .as_str()
                .ok_or_else(|| invalid("An index must have a name"))?;
            let (index_hash, index_range) = key_schema(&index["KeySchema"])?;
            let Some(index_range) = index_range.filter(|_| index_hash == hash) else {
                return Err(invalid(
                    "One or more parameter values were invalid: Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
                ));
            };
            let projection = match index["Projection"]["ProjectionType"].as_str() {
                Some("ALL") | None => Projection::All,
                Some("KEYS_ONLY") => Projection::KeysOnly,
                Some("INCLUDE") => Projection::Include,
                Some(other) => return Err(invalid(format!("Unknown ProjectionType {other}"))),
            };
            let non_key = index["Projection"]["NonKeyAttributes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            lsis.push(Lsi {
                name: index_name.to_owned(),
                range: index_range,
                projection,
                non_key,
                projection_json: index["Projection"].clone(),
            });
        }
        let mut keys = vec![hash.clone()];
        keys.extend(range.clone());
        keys.extend(lsis.iter().map(|l| l.range.clone()));
        for key in &keys {
            if !types.contains_key(key) {
                return Err(invalid(
                    "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [".to_owned()
                        + key
                        + "], AttributeDefinitions: ["
                        + &types.keys().cloned().collect::<Vec<_>>().join(", ")
                        + "]",
                ));
            }
        }
        if types.len() > keys.iter().collect::<BTreeSet<_>>().len() {
            return Err(invalid(
                "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
            ));
        }
        Ok(Table {
            name,
            hash,
            range,
            types,
            lsis,
            ttl_attribute: None,
            created: now,
            definitions,
            partitions: HashMap::new(),
            scan_order: BTreeSet::new(),
            item_count: 0,
            size_bytes: 0,
        })
    }

    pub fn lsi(&self, name: &str) -> Option<(usize, &Lsi)> {
        self.lsis.iter().enumerate().find(|(_, l)| l.name == name)
    }

    pub fn is_key_attribute(&self, name: &str) -> bool {
        name == self.hash || self.range.as_deref() == Some(name)
    }

    /// The primary key an item (`PutItem`'s `Item`) or a key (`Key`) names; `exact` refuses
    /// attributes beyond the key, as a `Key` parameter must have none.
    pub fn primary_key(&self, item: &Item, exact: bool) -> Result<PrimaryKey, ApiError> {
        let mismatch = || invalid("The provided key element does not match the schema");
        if exact {
            let expected = 1 + usize::from(self.range.is_some());
            if item.len() != expected {
                return Err(mismatch());
            }
        }
        let pk = self.key_value(item, &self.hash, exact)?;
        if pk.size() > MAX_HASH_KEY_BYTES {
            return Err(invalid(
                "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
            ));
        }
        let sk = match &self.range {
            Some(range) => {
                let sk = self.key_value(item, range, exact)?;
                if sk.size() > MAX_RANGE_KEY_BYTES {
                    return Err(invalid(
                        "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
                    ));
                }
                Some(sk)
            }
            None => None,
        };
        Ok(PrimaryKey { pk, sk })
    }

    fn key_value(&self, item: &Item, attr: &str, exact: bool) -> Result<KeyValue, ApiError> {
        let expected = self.types.get(attr).map(String::as_str).unwrap_or("S");
        let Some(value) = item.get(attr) else {
            return Err(if exact {
                invalid("The provided key element does not match the schema")
            } else {
                invalid(format!(
                    "One or more parameter values were invalid: Missing the key {attr} in the item"
                ))
            });
        };
        if value.type_name() != expected {
            return Err(if exact {
                invalid("The provided key element does not match the schema")
            } else {
                invalid(format!(
                    "One or more parameter values were invalid: Type mismatch for key {attr} expected: {expected} actual: {}",
                    value.type_name()
                ))
            });
        }
        let key = KeyValue::from_value(value)
            .ok_or_else(|| invalid("The provided key element does not match the schema"))?;
        if matches!(&key, KeyValue::S(s) if s.is_empty())
            || matches!(&key, KeyValue::B(b) if b.is_empty())
        {
            return Err(invalid(format!(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {} value. Key: {attr}",
                if matches!(key, KeyValue::S(_)) {
                    "string"
                } else {
                    "binary"
                }
            )));
        }
        Ok(key)
    }

    /// The key attributes of `key` as an item.
    pub fn key_item(&self, key: &PrimaryKey) -> Item {
        let mut item = Item::new();
        item.insert(self.hash.clone(), key.pk.to_value());
        if let (Some(range), Some(sk)) = (&self.range, &key.sk) {
            item.insert(range.clone(), sk.to_value());
        }
        item
    }

    /// Refuses an item DynamoDB would not store: over 400 KB (`message` says which
    /// operation), or with an index key of the wrong type, empty or too long.
    pub fn check_item(&self, item: &Item, too_large: &str) -> Result<(), ApiError> {
        if item_size(item) > MAX_ITEM_BYTES {
            return Err(invalid(too_large));
        }
        for lsi in &self.lsis {
            let Some(value) = item.get(&lsi.range) else {
                continue;
            };
            let expected = self
                .types
                .get(&lsi.range)
                .map(String::as_str)
                .unwrap_or("S");
            if value.type_name() != expected {
                return Err(invalid(format!(
                    "One or more parameter values were invalid: Type mismatch for Index Key {} Expected: {expected} Actual: {} IndexName: {}",
                    lsi.range,
                    value.type_name(),
                    lsi.name
                )));
            }
            let empty = matches!(value, Value::S(s) if s.is_empty())
                || matches!(value, Value::B(b) if b.is_empty());
            if empty {
                return Err(invalid(format!(
                    "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty string value. IndexName: {}, IndexKey: {}",
                    lsi.name, lsi.range
                )));
            }
            if KeyValue::from_value(value).is_some_and(|k| k.size() > MAX_RANGE_KEY_BYTES) {
                return Err(invalid(
                    "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
                ));
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &PrimaryKey) -> Option<&Item> {
        self.partitions.get(&key.pk)?.items.get(&key.sk)
    }

    /// Writes `item` at `key` (`None` deletes), keeping the indexes and counts in step.
    pub fn write(&mut self, key: &PrimaryKey, item: Option<Item>) {
        let lsi_ranges: Vec<String> = self.lsis.iter().map(|l| l.range.clone()).collect();
        let index_count = lsi_ranges.len();
        if item.is_none() && !self.partitions.contains_key(&key.pk) {
            // Deleting from a partition that does not exist changes nothing.
            return;
        }
        let scan_key = (scan_hash(&key.pk), Some(key.pk.clone()));
        let scan_order = &mut self.scan_order;
        let partition = self.partitions.entry(key.pk.clone()).or_insert_with(|| {
            scan_order.insert(scan_key.clone());
            Partition {
                items: BTreeMap::new(),
                indexes: vec![BTreeSet::new(); index_count],
            }
        });
        let old = match &item {
            Some(new) => partition.items.insert(key.sk.clone(), new.clone()),
            None => partition.items.remove(&key.sk),
        };
        for (i, range) in lsi_ranges.iter().enumerate() {
            if let Some(v) = old
                .as_ref()
                .and_then(|o| o.get(range))
                .and_then(KeyValue::from_value)
            {
                partition.indexes[i].remove(&(v, Edge::At(key.sk.clone())));
            }
            if let Some(v) = item
                .as_ref()
                .and_then(|n| n.get(range))
                .and_then(KeyValue::from_value)
            {
                partition.indexes[i].insert((v, Edge::At(key.sk.clone())));
            }
        }
        if let Some(old) = &old {
            self.item_count -= 1;
            self.size_bytes -= item_size(old);
        }
        if let Some(new) = &item {
            self.item_count += 1;
            self.size_bytes += item_size(new);
        }
        if partition.items.is_empty() {
            self.partitions.remove(&key.pk);
            self.scan_order.remove(&scan_key);
        }
    }

    /// The size of `item`'s entry in index `lsi`, or `None` when the item is not in it.
    pub fn index_entry_size(&self, lsi: &Lsi, item: &Item) -> Option<usize> {
        item.get(&lsi.range)?;
        Some(match lsi.projection {
            Projection::All => item_size(item),
            Projection::KeysOnly | Projection::Include => item
                .iter()
                .filter(|(k, _)| {
                    self.is_key_attribute(k)
                        || **k == lsi.range
                        || (lsi.projection == Projection::Include && lsi.non_key.contains(k))
                })
                .map(|(k, v)| k.len() + v.size())
                .sum(),
        })
    }

    /// What replacing `old` by `new` costs, in write units of 1 KB: the table's (the
    /// larger of the two sizes; a delete, the deleted item's; at least 1) and each local
    /// secondary index's, by the rules of "Provisioned throughput considerations for local
    /// secondary indexes": one write to add or remove an entry, two when its key changes,
    /// one to rewrite an entry whose key stays.
    pub fn write_units(&self, old: Option<&Item>, new: Option<&Item>) -> (f64, Vec<(String, f64)>) {
        let size = old.map_or(0, item_size).max(new.map_or(0, item_size));
        let table = kb_units(size);
        let mut indexes = Vec::new();
        for lsi in &self.lsis {
            let before = old.and_then(|o| self.index_entry_size(lsi, o));
            let after = new.and_then(|n| self.index_entry_size(lsi, n));
            let units = match (before, after) {
                (None, None) => 0.0,
                (Some(b), None) => kb_units(b),
                (None, Some(a)) => kb_units(a),
                (Some(b), Some(a)) => {
                    let same_key =
                        old.and_then(|o| o.get(&lsi.range)) == new.and_then(|n| n.get(&lsi.range));
                    if same_key {
                        kb_units(a)
                    } else {
                        kb_units(b) + kb_units(a)
                    }
                }
            };
            if units > 0.0 {
                indexes.push((lsi.name.clone(), units));
            }
        }
        (table, indexes)
    }

    pub fn describe(&self, arn_prefix: &str) -> Json {
        let mut key_schema = vec![json!({"AttributeName": self.hash, "KeyType": "HASH"})];
        if let Some(range) = &self.range {
            key_schema.push(json!({"AttributeName": range, "KeyType": "RANGE"}));
        }
        let arn = format!("{arn_prefix}:table/{}", self.name);
        let mut out = json!({
            "TableName": self.name,
            "TableArn": arn,
            "TableId": format!("{:08x}-emulator", self.created as u64),
            "TableStatus": "ACTIVE",
            "CreationDateTime": self.created,
            "AttributeDefinitions": self.definitions,
            "KeySchema": key_schema,
            "ItemCount": self.item_count,
            "TableSizeBytes": self.size_bytes,
            "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST", "LastUpdateToPayPerRequestDateTime": self.created},
            "ProvisionedThroughput": {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0},
            "DeletionProtectionEnabled": false,
        });
        if !self.lsis.is_empty() {
            out["LocalSecondaryIndexes"] = self
                .lsis
                .iter()
                .map(|l| {
                    json!({
                        "IndexName": l.name,
                        "IndexArn": format!("{arn}/index/{}", l.name),
                        "KeySchema": [
                            {"AttributeName": self.hash, "KeyType": "HASH"},
                            {"AttributeName": l.range, "KeyType": "RANGE"},
                        ],
                        "Projection": l.projection_json,
                        "IndexSizeBytes": 0,
                        "ItemCount": 0,
                    })
                })
                .collect();
        }
        out
    }
}

/// Units of 1 KB, rounded up; at least one.
pub fn kb_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Units of 4 KB, rounded up; at least one.
pub fn read_units(bytes: usize) -> f64 {
    bytes.div_ceil(4096).max(1) as f64
}

fn key_schema(schema: &Json) -> Result<(String, Option<String>), ApiError> {
    let mut hash = None;
    let mut range = None;
    for element in schema.as_array().into_iter().flatten() {
        let name = element["AttributeName"].as_str().map(str::to_owned);
        match element["KeyType"].as_str() {
            Some("HASH") if hash.is_none() => hash = name,
            Some("RANGE") if range.is_none() => range = name,
            _ => {
                return Err(invalid(
                    "Invalid KeySchema: the key schema may have one HASH and one RANGE element",
                ));
            }
        }
    }
    let hash = hash.ok_or_else(|| {
        invalid("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    })?;
    Ok((hash, range))
}
