//! Consumed capacity, as `ReturnConsumedCapacity` reports it, and per-partition
//! throughput.
//!
//! The units follow the Developer Guide ("Read/write capacity mode", "Item sizes and
//! formats", "Amazon DynamoDB Transactions: How it works"): a strongly consistent read
//! costs 1 read unit per 4 KB of item (an eventually consistent one half that; a read of
//! a missing item still costs one unit), a `Query` or a `Scan` page sums the sizes of the
//! items it reads before rounding, a write costs 1 write unit per 1 KB of the larger of the item before
//! and after it, an index entry written costs like an item, and every read or write of a
//! transaction costs twice (prepare and commit).
//!
//! Throughput: a partition serves at most 3,000 read units and 1,000 write units per
//! second ("Best practices for designing and using partition keys effectively"). All of
//! an item collection (a partition key's items, with their local secondary index entries)
//! lives in one partition, so the emulator keeps one token bucket per partition key value,
//! holding one second's worth of units. A `Scan` page draws on each partition it read in
//! proportion to the bytes it read there.

use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::value::KeyValue;

/// What `ReturnConsumedCapacity` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    None,
    Total,
    Indexes,
}

impl Mode {
    pub fn parse(body: &Json) -> Result<Mode, crate::error::ApiError> {
        match body["ReturnConsumedCapacity"].as_str() {
            None | Some("NONE") => Ok(Mode::None),
            Some("TOTAL") => Ok(Mode::Total),
            Some("INDEXES") => Ok(Mode::Indexes),
            Some(other) => Err(crate::error::ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
            ))),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Units {
    pub read: f64,
    pub write: f64,
}

impl Units {
    fn add(&mut self, other: &Units) {
        self.read += other.read;
        self.write += other.write;
    }

    fn total(&self) -> f64 {
        self.read + self.write
    }
}

/// Units consumed by one request, by table and by the table's own part and each index's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Consumed {
    tables: BTreeMap<String, TableUnits>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct TableUnits {
    table: Units,
    indexes: BTreeMap<String, Units>,
}

impl Consumed {
    pub fn table_read(&mut self, table: &str, units: f64) {
        self.entry(table).table.read += units;
    }

    pub fn table_write(&mut self, table: &str, units: f64) {
        self.entry(table).table.write += units;
    }

    pub fn index_read(&mut self, table: &str, index: &str, units: f64) {
        self.entry(table)
            .indexes
            .entry(index.to_owned())
            .or_default()
            .read += units;
    }

    pub fn index_write(&mut self, table: &str, index: &str, units: f64) {
        self.entry(table)
            .indexes
            .entry(index.to_owned())
            .or_default()
            .write += units;
    }

    fn entry(&mut self, table: &str) -> &mut TableUnits {
        self.tables.entry(table.to_owned()).or_default()
    }

    pub fn merge(&mut self, other: &Consumed) {
        for (name, units) in &other.tables {
            let entry = self.entry(name);
            entry.table.add(&units.table);
            for (index, u) in &units.indexes {
                entry.indexes.entry(index.clone()).or_default().add(u);
            }
        }
    }

    /// Read and write units in all.
    pub fn totals(&self) -> Units {
        let mut out = Units::default();
        for units in self.tables.values() {
            out.add(&units.table);
            for u in units.indexes.values() {
                out.add(u);
            }
        }
        out
    }

    /// The `ConsumedCapacity` entries, one per table. Transactional operations also
    /// report the read and write split, at the top and under `Table`; single-item and
    /// batch operations report `CapacityUnits` alone, as DynamoDB does.
    pub fn to_json(&self, mode: Mode, split: bool) -> Vec<Json> {
        if mode == Mode::None {
            return Vec::new();
        }
        self.tables
            .iter()
            .map(|(name, units)| {
                let mut total = units.table.clone();
                for u in units.indexes.values() {
                    total.add(u);
                }
                let mut out = Map::new();
                out.insert("TableName".into(), json!(name));
                fill(&mut out, &total, split);
                if mode == Mode::Indexes {
                    let mut table = Map::new();
                    fill(&mut table, &units.table, split);
                    out.insert("Table".into(), Json::Object(table));
                    if !units.indexes.is_empty() {
                        let indexes: Map<String, Json> = units
                            .indexes
                            .iter()
                            .map(|(index, u)| {
                                let mut entry = Map::new();
                                fill(&mut entry, u, split);
                                (index.clone(), Json::Object(entry))
                            })
                            .collect();
                        out.insert("LocalSecondaryIndexes".into(), Json::Object(indexes));
                    }
                }
                Json::Object(out)
            })
            .collect()
    }
}

fn fill(out: &mut Map<String, Json>, units: &Units, split: bool) {
    out.insert("CapacityUnits".into(), json!(units.total()));
    if split {
        out.insert("ReadCapacityUnits".into(), json!(units.read));
        out.insert("WriteCapacityUnits".into(), json!(units.write));
    }
}

/// Per-partition token buckets.
#[derive(Debug)]
pub struct Throttle {
    read_rate: f64,
    write_rate: f64,
    buckets: HashMap<(String, KeyValue), Bucket>,
}

#[derive(Debug)]
struct Bucket {
    read: f64,
    write: f64,
    at: Instant,
}

/// Units one request asks of one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    pub table: String,
    pub pk: KeyValue,
    pub read: f64,
    pub write: f64,
}

impl Throttle {
    /// Rates in units per second; 0 turns the limit off.
    pub fn new(read_rate: f64, write_rate: f64) -> Throttle {
        Throttle {
            read_rate,
            write_rate,
            buckets: HashMap::new(),
        }
    }

    /// Takes every demand from its partition's bucket, or none of them: the indexes of
    /// the demands whose partition is over its throughput.
    pub fn take(&mut self, now: Instant, demands: &[Demand]) -> Result<(), Vec<usize>> {
        if self.read_rate <= 0.0 && self.write_rate <= 0.0 {
            return Ok(());
        }
        // What each partition is asked for in all.
        let mut asked: HashMap<(String, KeyValue), Units> = HashMap::new();
        for d in demands {
            let units = asked.entry((d.table.clone(), d.pk.clone())).or_default();
            units.read += d.read;
            units.write += d.write;
        }
        let (read_rate, write_rate) = (self.read_rate, self.write_rate);
        let mut refused = Vec::new();
        for (partition, units) in &asked {
            let bucket = self.buckets.entry(partition.clone()).or_insert(Bucket {
                read: read_rate,
                write: write_rate,
                at: now,
            });
            let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
            bucket.read = (bucket.read + elapsed * read_rate).min(read_rate);
            bucket.write = (bucket.write + elapsed * write_rate).min(write_rate);
            bucket.at = now;
            // A request larger than a full bucket passes when the bucket is full.
            let fits = |level: f64, cost: f64, rate: f64| {
                rate <= 0.0 || cost <= 0.0 || level >= cost || level >= rate
            };
            if !fits(bucket.read, units.read, read_rate)
                || !fits(bucket.write, units.write, write_rate)
            {
                refused.push(partition.clone());
            }
        }
        if !refused.is_empty() {
            return Err(demands
                .iter()
                .enumerate()
                .filter(|(_, d)| refused.contains(&(d.table.clone(), d.pk.clone())))
                .map(|(i, _)| i)
                .collect());
        }
        for (partition, units) in asked {
            if let Some(bucket) = self.buckets.get_mut(&partition) {
                if read_rate > 0.0 {
                    bucket.read -= units.read;
                }
                if write_rate > 0.0 {
                    bucket.write -= units.write;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn demand(pk: &str, write: f64) -> Demand {
        Demand {
            table: "t".into(),
            pk: KeyValue::S(pk.into()),
            read: 0.0,
            write,
        }
    }

    #[test]
    fn a_hot_partition_is_throttled_and_recovers() {
        let mut t = Throttle::new(0.0, 10.0);
        let start = Instant::now();
        for _ in 0..10 {
            assert!(t.take(start, &[demand("a", 1.0)]).is_ok());
        }
        assert_eq!(t.take(start, &[demand("a", 1.0)]), Err(vec![0]));
        // Another partition has its own throughput.
        assert!(t.take(start, &[demand("b", 1.0)]).is_ok());
        // All or nothing: the cold partition's demand is not taken either.
        assert_eq!(
            t.take(start, &[demand("b", 1.0), demand("a", 1.0)]),
            Err(vec![1])
        );
        assert!(
            t.take(start + Duration::from_millis(200), &[demand("a", 2.0)])
                .is_ok()
        );
        assert!(
            t.take(start + Duration::from_millis(200), &[demand("a", 1.0)])
                .is_err()
        );
    }

    #[test]
    fn off_means_off() {
        let mut t = Throttle::new(0.0, 0.0);
        for _ in 0..10_000 {
            assert!(t.take(Instant::now(), &[demand("a", 100.0)]).is_ok());
        }
    }

    #[test]
    fn reports() {
        let mut c = Consumed::default();
        c.table_write("t", 2.0);
        c.index_write("t", "version-index", 2.0);
        assert_eq!(c.to_json(Mode::None, false), Vec::<Json>::new());
        assert_eq!(
            c.to_json(Mode::Total, false),
            vec![json!({"TableName": "t", "CapacityUnits": 4.0})]
        );
        assert_eq!(
            c.to_json(Mode::Indexes, true),
            vec![json!({
                "TableName": "t", "CapacityUnits": 4.0, "ReadCapacityUnits": 0.0, "WriteCapacityUnits": 4.0,
                "Table": {"CapacityUnits": 2.0, "ReadCapacityUnits": 0.0, "WriteCapacityUnits": 2.0},
                "LocalSecondaryIndexes": {"version-index": {"CapacityUnits": 2.0, "ReadCapacityUnits": 0.0, "WriteCapacityUnits": 2.0}},
            })]
        );
    }
}
