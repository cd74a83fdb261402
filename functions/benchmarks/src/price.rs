//! The price model of COST.md: prices read from a data file (`prices.json`, each with its
//! source and the date it was read), and the bill of a set of metered quantities.
//!
//! Kept apart from the measurement so that a price change is an edit of the data file and
//! a rerun, and so that the arithmetic is tested with hand-checked numbers.

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Why the price file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error("the price file is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the price file has no `prices` object")]
    NoPrices,
    #[error("price {0}: missing or malformed field `{1}`")]
    Field(String, &'static str),
    #[error("the price file has no price {0}")]
    Missing(String),
}

/// One price: `usd` for every `per` units of `unit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub usd: f64,
    pub per: f64,
    pub unit: String,
    pub source: String,
    /// The date the source was read (YYYY-MM-DD).
    pub read: String,
    /// How far the figure is confirmed, or any caveat.
    pub note: String,
}

impl Price {
    /// Dollars for one unit.
    pub fn unit_price(&self) -> f64 {
        self.usd / self.per
    }
}

/// The price table of one region.
#[derive(Debug, Clone)]
pub struct Prices {
    pub region: String,
    pub entries: BTreeMap<String, Price>,
}

impl Prices {
    pub fn parse(text: &str) -> Result<Prices, PriceError> {
        let doc: Value = serde_json::from_str(text)?;
        let region = doc["region"].as_str().unwrap_or("").to_owned();
        let entries = doc["prices"].as_object().ok_or(PriceError::NoPrices)?;
        let mut out = BTreeMap::new();
        for (key, p) in entries {
            let num = |f: &'static str| {
                p[f].as_f64()
                    .ok_or_else(|| PriceError::Field(key.clone(), f))
            };
            let text = |f: &'static str| p[f].as_str().unwrap_or("").to_owned();
            let per = num("per")?;
            if per <= 0.0 {
                return Err(PriceError::Field(key.clone(), "per"));
            }
            out.insert(
                key.clone(),
                Price {
                    usd: num("usd")?,
                    per,
                    unit: text("unit"),
                    source: text("source"),
                    read: text("read"),
                    note: text("note"),
                },
            );
        }
        Ok(Prices {
            region,
            entries: out,
        })
    }

    pub fn get(&self, key: &str) -> Result<&Price, PriceError> {
        self.entries
            .get(key)
            .ok_or_else(|| PriceError::Missing(key.to_owned()))
    }

    /// Dollars for one unit of `key`.
    pub fn unit(&self, key: &str) -> Result<f64, PriceError> {
        self.get(key).map(Price::unit_price)
    }
}

/// Lambda's architectures, priced differently per GB-second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Arm64,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    fn gb_second_key(self) -> &'static str {
        match self {
            Arch::X86_64 => "lambda_gb_second_x86_64",
            Arch::Arm64 => "lambda_gb_second_arm64",
        }
    }
}

/// Lambda's billed duration: rounded up to the next millisecond.
pub fn billed_ms(wall: Duration) -> u64 {
    let us = wall.as_micros() as u64;
    us.div_ceil(1000).max(1)
}

/// GB-seconds of `ms` at `memory_mb` (Lambda counts 1,024 MB as 1 GB).
pub fn gb_seconds(memory_mb: u32, ms: f64) -> f64 {
    f64::from(memory_mb) / 1024.0 * ms / 1000.0
}

/// Metered units of a message of `bytes`, in increments of `increment` bytes (at least one).
pub fn metered_units(bytes: usize, increment: usize) -> u64 {
    (bytes.div_ceil(increment)).max(1) as u64
}

/// What one operation (or any number of them) consumes of each billed dimension.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub lambda_requests: f64,
    pub lambda_gb_seconds: f64,
    pub read_units: f64,
    pub write_units: f64,
    /// HTTP API requests, in metered (512 KB) units.
    pub http_requests: f64,
    /// WebSocket messages, in metered (32 KB) units.
    pub ws_messages: f64,
    pub connection_minutes: f64,
    pub log_bytes: f64,
}

impl Usage {
    pub fn scaled(&self, k: f64) -> Usage {
        Usage {
            lambda_requests: self.lambda_requests * k,
            lambda_gb_seconds: self.lambda_gb_seconds * k,
            read_units: self.read_units * k,
            write_units: self.write_units * k,
            http_requests: self.http_requests * k,
            ws_messages: self.ws_messages * k,
            connection_minutes: self.connection_minutes * k,
            log_bytes: self.log_bytes * k,
        }
    }

    pub fn plus(&self, o: &Usage) -> Usage {
        Usage {
            lambda_requests: self.lambda_requests + o.lambda_requests,
            lambda_gb_seconds: self.lambda_gb_seconds + o.lambda_gb_seconds,
            read_units: self.read_units + o.read_units,
            write_units: self.write_units + o.write_units,
            http_requests: self.http_requests + o.http_requests,
            ws_messages: self.ws_messages + o.ws_messages,
            connection_minutes: self.connection_minutes + o.connection_minutes,
            log_bytes: self.log_bytes + o.log_bytes,
        }
    }
}

/// A bill: dollars by line, in a fixed order.
#[derive(Debug, Clone, PartialEq)]
pub struct Bill {
    pub lines: Vec<(&'static str, f64)>,
}

impl Bill {
    pub fn total(&self) -> f64 {
        self.lines.iter().map(|(_, usd)| usd).sum()
    }

    pub fn line(&self, name: &str) -> f64 {
        self.lines
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0.0, |(_, usd)| *usd)
    }
}

/// Bytes in a GB as CloudWatch Logs meters ingestion.
const GB: f64 = 1_000_000_000.0;

/// The AWS bill of `usage` on `arch`, free tiers left out (they matter for small apps
/// only, and expire or are shared across an account).
pub fn aws_bill(usage: &Usage, prices: &Prices, arch: Arch) -> Result<Bill, PriceError> {
    Ok(Bill {
        lines: vec![
            (
                "Lambda requests",
                usage.lambda_requests * prices.unit("lambda_requests")?,
            ),
            (
                "Lambda duration",
                usage.lambda_gb_seconds * prices.unit(arch.gb_second_key())?,
            ),
            (
                "DynamoDB reads",
                usage.read_units * prices.unit("dynamodb_read_request_units")?,
            ),
            (
                "DynamoDB writes",
                usage.write_units * prices.unit("dynamodb_write_request_units")?,
            ),
            (
                "HTTP API",
                usage.http_requests * prices.unit("http_api_requests")?,
            ),
            (
                "WebSocket messages",
                usage.ws_messages * prices.unit("websocket_messages")?,
            ),
            (
                "WebSocket connection minutes",
                usage.connection_minutes * prices.unit("websocket_connection_minutes")?,
            ),
            (
                "CloudWatch Logs",
                usage.log_bytes / GB * prices.unit("cloudwatch_logs_ingestion_gb")?,
            ),
        ],
    })
}

/// Firestore's document operations for the same workload.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FirestoreUsage {
    pub reads: f64,
    pub writes: f64,
    pub deletes: f64,
}

pub fn firestore_bill(usage: &FirestoreUsage, prices: &Prices) -> Result<Bill, PriceError> {
    Ok(Bill {
        lines: vec![
            (
                "Firestore reads",
                usage.reads * prices.unit("firestore_document_reads")?,
            ),
            (
                "Firestore writes",
                usage.writes * prices.unit("firestore_document_writes")?,
            ),
            (
                "Firestore deletes",
                usage.deletes * prices.unit("firestore_document_deletes")?,
            ),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICES: &str = r#"{"region": "us-east-1", "prices": {
        "lambda_requests": {"usd": 0.20, "per": 1000000, "unit": "request"},
        "lambda_gb_second_x86_64": {"usd": 0.0000166667, "per": 1, "unit": "GB-second"},
        "lambda_gb_second_arm64": {"usd": 0.0000133334, "per": 1, "unit": "GB-second"},
        "dynamodb_read_request_units": {"usd": 0.125, "per": 1000000, "unit": "RRU"},
        "dynamodb_write_request_units": {"usd": 0.625, "per": 1000000, "unit": "WRU"},
        "http_api_requests": {"usd": 1.00, "per": 1000000, "unit": "request"},
        "websocket_messages": {"usd": 1.00, "per": 1000000, "unit": "message"},
        "websocket_connection_minutes": {"usd": 0.25, "per": 1000000, "unit": "minute"},
        "cloudwatch_logs_ingestion_gb": {"usd": 0.50, "per": 1, "unit": "GB"},
        "firestore_document_reads": {"usd": 0.03, "per": 100000, "unit": "read"},
        "firestore_document_writes": {"usd": 0.09, "per": 100000, "unit": "write"},
        "firestore_document_deletes": {"usd": 0.01, "per": 100000, "unit": "delete"}
    }}"#;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn a_million_pushes_priced_by_hand() {
        let prices = Prices::parse(PRICES).unwrap();
        // One push: 1 invocation of 20 ms at 256 MB, 2 RRU, 4 WRU, 1 HTTP request, 1 KB of
        // logs.
        let one = Usage {
            lambda_requests: 1.0,
            lambda_gb_seconds: gb_seconds(256, 20.0),
            read_units: 2.0,
            write_units: 4.0,
            http_requests: 1.0,
            ws_messages: 0.0,
            connection_minutes: 0.0,
            log_bytes: 1000.0,
        };
        let bill = aws_bill(&one.scaled(1e6), &prices, Arch::X86_64).unwrap();
        // By hand: 0.20; 0.25 GB x 0.02 s = 0.005 GB-s x 1e6 = 5,000 GB-s x 0.0000166667
        // = 0.0833335; 2e6 x 0.125/1e6 = 0.25; 4e6 x 0.625/1e6 = 2.50; 1.00; 1e9 bytes =
        // 1 GB x 0.50 = 0.50.
        assert!(close(bill.line("Lambda requests"), 0.20));
        assert!(close(bill.line("Lambda duration"), 0.0833335));
        assert!(close(bill.line("DynamoDB reads"), 0.25));
        assert!(close(bill.line("DynamoDB writes"), 2.50));
        assert!(close(bill.line("HTTP API"), 1.00));
        assert!(close(bill.line("CloudWatch Logs"), 0.50));
        assert!(close(bill.total(), 4.5333335));
        // arm64: 5,000 GB-s x 0.0000133334 = 0.066667.
        let arm = aws_bill(&one.scaled(1e6), &prices, Arch::Arm64).unwrap();
        assert!(close(arm.line("Lambda duration"), 0.066667));
    }

    #[test]
    fn websocket_and_firestore_lines() {
        let prices = Prices::parse(PRICES).unwrap();
        let usage = Usage {
            ws_messages: 3.0,
            connection_minutes: 60.0,
            ..Usage::default()
        }
        .scaled(1000.0);
        let bill = aws_bill(&usage, &prices, Arch::Arm64).unwrap();
        // 3,000 messages x $1/1e6 = 0.003; 60,000 minutes x $0.25/1e6 = 0.015.
        assert!(close(bill.line("WebSocket messages"), 0.003));
        assert!(close(bill.line("WebSocket connection minutes"), 0.015));
        assert!(close(bill.total(), 0.018));
        let fs = firestore_bill(
            &FirestoreUsage {
                reads: 10_000.0,
                writes: 1_000.0,
                deletes: 0.0,
            },
            &prices,
        )
        .unwrap();
        // 10,000 x 0.03/1e5 = 0.003; 1,000 x 0.09/1e5 = 0.0009.
        assert!(close(fs.total(), 0.0039));
    }

    #[test]
    fn rounding_rules() {
        assert_eq!(billed_ms(Duration::from_micros(1)), 1);
        assert_eq!(billed_ms(Duration::from_micros(1000)), 1);
        assert_eq!(billed_ms(Duration::from_micros(1001)), 2);
        assert_eq!(metered_units(0, 32 * 1024), 1);
        assert_eq!(metered_units(32 * 1024, 32 * 1024), 1);
        assert_eq!(metered_units(32 * 1024 + 1, 32 * 1024), 2);
        assert!(close(gb_seconds(128, 1000.0), 0.125));
    }

    #[test]
    fn a_missing_or_malformed_price_is_an_error() {
        let prices = Prices::parse(r#"{"prices": {"x": {"usd": 1, "per": 10}}}"#).unwrap();
        assert!(close(prices.unit("x").unwrap(), 0.1));
        assert!(matches!(prices.unit("y"), Err(PriceError::Missing(_))));
        assert!(matches!(
            Prices::parse(r#"{"prices": {"x": {"usd": 1}}}"#),
            Err(PriceError::Field(_, "per"))
        ));
        assert!(matches!(
            Prices::parse(r#"{"prices": {"x": {"usd": 1, "per": 0}}}"#),
            Err(PriceError::Field(_, "per"))
        ));
        assert!(matches!(Prices::parse("{}"), Err(PriceError::NoPrices)));
    }

    /// The shipped price file parses and names every price the model uses.
    #[test]
    fn the_shipped_price_file_is_complete() {
        let text = include_str!("../prices.json");
        let prices = Prices::parse(text).unwrap();
        let usage = Usage::default();
        aws_bill(&usage, &prices, Arch::X86_64).unwrap();
        aws_bill(&usage, &prices, Arch::Arm64).unwrap();
        firestore_bill(&FirestoreUsage::default(), &prices).unwrap();
        for (key, p) in &prices.entries {
            assert!(p.source.starts_with("https://"), "{key} has no source");
            assert_eq!(p.read.len(), 10, "{key} has no date read");
        }
    }
}
