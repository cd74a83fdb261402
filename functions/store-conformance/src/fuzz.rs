//! Fuzzing of push and pull bodies and of mutator args through the whole API.
//!
//! Every generated request goes through [`SyncService::handle`], over the store under
//! test, and every answer is checked against these properties:
//!
//! 1. No panic; never a 5xx (every status is 200 or a 4xx); every body is JSON; a non-200
//!    body is exactly `{"error": <non-empty code>, "message": <non-empty text>}`, and a
//!    413's also `"maxBytes"`, the body limit.
//! 2. A rejected request (any non-200, or a 200 `VersionNotSupported`) changes nothing: a
//!    full pull (cookie `null`) by an observer group, and one by the request's own group,
//!    give the same JSON before and after. Further: a push changes LMIDs exactly as the
//!    protocol says (duplicates skipped, the prefix before a gap applied, nothing after
//!    it; `ClientStateNotFound` if and only if there is a gap), a push that applies
//!    nothing changes nothing, and a pull changes no data and no LMID (only its version,
//!    and only for a validly signed cookie from the future).
//! 3. Mutator args ([`run_args_fuzz`]): a well-formed push envelope whose mutations carry
//!    arbitrary names and args (any JSON text: nesting to 20,000 levels, numbers out of
//!    `f64` range, lone UTF-16 surrogate escapes, keys over 1,000 bytes, values around the
//!    390,000-byte entry limit, unicode) is always answered 200 `{}`, advances every
//!    client's LMID to its last mutation, and leaves exactly the entries a model of the
//!    app's mutators (`increment`, `setItem`, `deleteItem`) predicts; the `increment(1)`
//!    that ends every push raises the count by exactly 1.
//! 4. Envelopes ([`run_envelope_fuzz`]): random bytes, random JSON, truncated bodies, and
//!    push/pull/createSpace/spaceExists bodies with fields removed, retyped or replaced by
//!    edge values (versions, IDs, mutation IDs, cookies genuine, forged, re-signed or
//!    garbage), sent with a valid, missing, invalid or unknown space and the odd method
//!    or path: 200 or a 4xx, per properties 1 and 2.
//!
//! JSON is generated as raw text, since `serde_json::Value` cannot hold a lone surrogate
//! or an out-of-range number. Cases are shrunk by proptest; a failure panics with the
//! minimal case and the seed to replay it.
//!
//! Case counts come from the environment: `FUZZ_CASES` (per property group; each entry
//! point has a default that keeps it to a few seconds: 300 in memory, 200 on SQLite, 30 on
//! DynamoDB/moto) and `FUZZ_SEED` (to replay a run; random otherwise, and printed). With
//! `--nocapture` a run also prints a tally of the outcomes it exercised (each refusal by
//! its message, each mutation by what came of it). A longer run, on demand:
//!
//! ```text
//! FUZZ_CASES=100000 cargo test -p sync-core --test fuzz --release
//! ```
//!
//! The same with `-p store-sqlite` or `-p store-dynamodb` (moto: keep it small).

use crate::fresh_space;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use sync_core::api::{ApiRequest, MAX_BODY_BYTES};
use sync_core::cookie::CookieKeys;
use sync_core::ids::validate_client_id;
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::protocol::{self, Cookie, MAX_SAFE_INTEGER, Parsed};
use sync_core::store::StoreLimits;
use sync_core::{SpaceId, Store, SyncService};

/// The signing key of the service under test (fixed, so that a run is replayable).
const COOKIE_SECRET: &str = "fuzz-cookie-secret-0123456789abcdef-0123456789";
/// The group whose full pulls observe a space's state.
const OBSERVER: &str = "fuzz-observer";

/// `FUZZ_CASES` from the environment, else `default`.
pub fn cases_from_env(default: u32) -> u32 {
    crate::cases_from_env("FUZZ_CASES", default)
}

pub use crate::runtime;

/// Both fuzzers, `cases` cases each, on a runtime of their own. Panics (failing the
/// calling test) with a minimal counterexample.
pub fn run_fuzz(store: Arc<dyn Store>, cases: u32) {
    run_fuzz_on(&runtime(), store, cases);
}

/// [`run_fuzz`] on a given runtime (one that already drives the store's client). Call it
/// outside of that runtime's `block_on`.
pub fn run_fuzz_on(rt: &tokio::runtime::Runtime, store: Arc<dyn Store>, cases: u32) {
    let fuzz = Fuzz::new(store);
    run_args_fuzz(rt, &fuzz, cases);
    run_envelope_fuzz(rt, &fuzz, cases);
}

/// Property 3: arbitrary mutator names and args in a well-formed push.
pub fn run_args_fuzz(rt: &tokio::runtime::Runtime, fuzz: &Fuzz, cases: u32) {
    run_property("mutator args", cases, &args_case(), |case| {
        rt.block_on(fuzz.check_args_case(case))
    });
    fuzz.report("mutator args");
}

/// Property 4: malformed and odd request envelopes.
pub fn run_envelope_fuzz(rt: &tokio::runtime::Runtime, fuzz: &Fuzz, cases: u32) {
    run_property("envelopes", cases, &envelope_case(), |case| {
        rt.block_on(fuzz.check_envelope_case(case))
    });
    fuzz.report("envelopes");
}

fn run_property<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: &S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(rand::random);
    let seed_bytes: Vec<u8> = std::iter::repeat_n(seed.to_le_bytes(), 4)
        .flatten()
        .collect();
    let config = Config {
        cases,
        failure_persistence: None,
        // A space per case: a long shrink is fine in memory, but bounded on a real store.
        max_shrink_time: 120_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let started = Instant::now();
    match runner.run(strategy, test) {
        Ok(()) => eprintln!(
            "fuzz {name}: {cases} cases passed in {:.1?} (FUZZ_SEED={seed})",
            started.elapsed()
        ),
        Err(TestError::Fail(reason, minimal)) => panic!(
            "fuzz {name}: property violated (replay: FUZZ_SEED={seed} FUZZ_CASES={cases})\n\
             {reason}\nminimal case: {minimal:#?}"
        ),
        Err(TestError::Abort(reason)) => {
            panic!("fuzz {name}: aborted (FUZZ_SEED={seed}): {reason}")
        }
    }
}

// ---------------------------------------------------------------------------------------
// Raw JSON text generators.

/// Raw text (JSON or not), shown abbreviated when long.
#[derive(Clone, PartialEq)]
pub struct Text(pub String);

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&abbreviate(&self.0))
    }
}

/// Bytes, shown as lossy text.
#[derive(Clone, PartialEq)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{:?}", abbreviate(&String::from_utf8_lossy(&self.0)))
    }
}

/// `s`, or its head and tail around the count of bytes left out.
pub fn abbreviate(s: &str) -> String {
    const HEAD: usize = 200;
    const TAIL: usize = 80;
    if s.len() <= HEAD + TAIL + 40 {
        return s.to_owned();
    }
    let mut head = HEAD;
    while !s.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = s.len() - TAIL;
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}…<{} bytes>…{}", &s[..head], tail - head, &s[tail..])
}

fn lit(options: &'static [&'static str]) -> BoxedStrategy<String> {
    select(options).prop_map(str::to_owned).boxed()
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "0.5",
    "1.5",
    "-1.5",
    "1e400",
    "-1e400",
    "1e-400",
    "-1e-400",
    "1E3",
    "1e+2",
    "0.0",
    "-0.0",
    "9007199254740991",
    "9007199254740992",
    "-9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "1e300",
    "-1e300",
    "1.7976931348623157e308",
    "1.7976931348623159e308",
    "5e-324",
    "2e-324",
    "0.1",
    "123456789012345678901234567890.5",
    "0.000000000000000000000000000001",
];

/// A JSON number: edge values, integers, floats, and long digit strings.
pub fn number_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => lit(EDGE_NUMBERS),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        2 => any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        1 => "-?(0|[1-9][0-9]{0,60})(\\.[0-9]{1,30})?([eE][+-]?[0-9]{1,4})?",
    ]
    .boxed()
}

/// Pieces of string bodies that a `serde_json::Value` cannot carry, or that stores and
/// parsers like to get wrong.
const EDGE_STRING_PIECES: &[&str] = &[
    "\\ud83d",
    "\\udc00",
    "\\ud83d\\ude00",
    "\\ude00\\ud83d",
    "\\ud800\\ud800",
    "\\ud800x",
    "\\u0000",
    "\\u001f",
    "\\uffff",
    "\\ufeff",
    "\\\"",
    "\\\\",
    "\\/",
    "\\b\\f\\n\\r\\t",
    "é",
    "😀",
    "\u{10ffff}",
    "\u{2028}",
    "\u{7f}",
    "__proto__",
    "item/",
    "count",
];

/// A JSON string, as text: arbitrary unicode (escaped) and raw edge escapes, lone
/// surrogates included.
pub fn string_text() -> BoxedStrategy<String> {
    vec(
        prop_oneof![
            2 => any::<String>().prop_map(|s| {
                let q = quoted(&s);
                q[1..q.len() - 1].to_owned()
            }),
            1 => lit(EDGE_STRING_PIECES),
        ],
        0..5,
    )
    .prop_map(|pieces| format!("\"{}\"", pieces.concat()))
    .boxed()
}

fn array(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

fn object<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> String {
    let fields: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{}", k.as_ref(), v.as_ref()))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// Any JSON value of modest size, as text.
pub fn json_text() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        1 => lit(&["null", "true", "false"]),
        3 => number_text(),
        3 => string_text(),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(|items| array(&items)),
            vec((string_text(), inner), 0..6).prop_map(|fields| object(&fields)),
        ]
    })
    .boxed()
}

const DEPTHS: &[usize] = &[
    1, 2, 99, 100, 101, 102, 126, 127, 128, 129, 130, 500, 20_000,
];

/// Nesting around a leaf: arrays or objects, to the depths where limits lie.
pub fn deep_text() -> BoxedStrategy<String> {
    (
        select(DEPTHS),
        any::<bool>(),
        prop_oneof![
            lit(&["1", "[]", "{}", "\"x\"", "1e400", "\"\\ud83d\""]),
            json_text()
        ],
    )
        .prop_map(|(depth, objects, leaf)| {
            if objects {
                format!("{}{leaf}{}", "{\"a\":".repeat(depth), "}".repeat(depth))
            } else {
                format!("{}{leaf}{}", "[".repeat(depth), "]".repeat(depth))
            }
        })
        .boxed()
}

const BIG_BYTES: &[usize] = &[1_000, 100_000, 389_000, 389_990, 390_000, 400_000];

/// A long string around the entry-size limit (390,000 bytes), of 1- to 4-byte units.
pub fn big_string_text() -> BoxedStrategy<String> {
    (
        select(BIG_BYTES),
        select(&["a", "é", "😀", "\\n", "\\u0001"][..]),
    )
        .prop_map(|(bytes, unit)| format!("\"{}\"", unit.repeat(bytes / unit.len())))
        .boxed()
}

/// A wide array or object.
pub fn wide_text() -> BoxedStrategy<String> {
    (select(&[1_000usize, 20_000][..]), any::<bool>())
        .prop_map(|(n, objects)| {
            if objects {
                let fields: Vec<(String, &str)> = (0..n)
                    .map(|i| (format!("\"k{i}\""), "[0.5,null]"))
                    .collect();
                object(&fields)
            } else {
                array(&vec!["0".to_owned(); n])
            }
        })
        .boxed()
}

/// Any JSON, small or deep or big.
pub fn any_json_text() -> BoxedStrategy<String> {
    prop_oneof![
        8 => json_text(),
        2 => deep_text(),
        1 => big_string_text(),
        1 => wide_text(),
    ]
    .boxed()
}

const KEY_BYTES: &[usize] = &[1, 994, 995, 996, 1_000, 1_001, 5_000];

/// A `key` argument: any string, long ones around the 1,000-byte key limit (the server
/// prefixes `item/`), or not a string at all.
pub fn key_text() -> BoxedStrategy<String> {
    prop_oneof![
        2 => lit(&[
            "\"a\"",
            "\"b\"",
            "\"\\u0000\"",
            "\"a\\u0000b\"",
            "\" \"",
            "\"%\"",
            "\"_\"",
            "\"a/b\"",
            "\"😀\"",
            "\"\\ud83d\\ude00\"",
        ]),
        3 => string_text(),
        2 => (select(KEY_BYTES), select(&["k", "é", "😀"][..]))
            .prop_map(|(bytes, unit)| format!("\"{}\"", unit.repeat(bytes.div_ceil(unit.len())))),
        1 => json_text(),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------
// Property 3: mutator args.

/// One mutation of a well-formed push: name and args as raw text (`None`: field absent).
#[derive(Clone, Debug)]
pub struct FuzzMutation {
    pub name: Option<Text>,
    pub args: Option<Text>,
    pub timestamp: Option<Text>,
}

fn mutator_name_text() -> BoxedStrategy<String> {
    prop_oneof![
        2 => lit(&[
            "\"increment\"",
            "\"setItem\"",
            "\"deleteItem\"",
            "\"\"",
            "\"\\ud800\"",
            "\"incr\\u0065ment\"",
            "\"Increment\"",
            "\"setItem \"",
            "\"set\\u0000Item\"",
            "7",
            "null",
            "[]",
            "{}",
            "\"__proto__\"",
            "\"count\"",
        ]),
        1 => string_text(),
    ]
    .boxed()
}

fn set_item_args() -> BoxedStrategy<String> {
    (
        option::weighted(0.9, key_text()),
        option::weighted(0.9, any_json_text()),
        option::weighted(
            0.1,
            (
                lit(&["\"k\\u0065y\"", "\"value\"", "\"extra\""]),
                json_text(),
            ),
        ),
    )
        .prop_map(|(key, value, extra)| {
            let mut fields = Vec::new();
            if let Some(key) = key {
                fields.push(("\"key\"".to_owned(), key));
            }
            if let Some(value) = value {
                fields.push(("\"value\"".to_owned(), value));
            }
            fields.extend(extra);
            object(&fields)
        })
        .boxed()
}

fn delete_item_args() -> BoxedStrategy<String> {
    (
        option::weighted(0.9, key_text()),
        option::weighted(0.1, json_text()),
    )
        .prop_map(|(key, extra)| {
            let mut fields = Vec::new();
            if let Some(key) = key {
                fields.push(("\"key\"".to_owned(), key));
            }
            if let Some(extra) = extra {
                fields.push(("\"extra\"".to_owned(), extra));
            }
            object(&fields)
        })
        .boxed()
}

/// A mutation with an arbitrary name and args; mostly one of the app's mutators, so that
/// the args reach a mutator.
pub fn fuzz_mutation() -> BoxedStrategy<FuzzMutation> {
    let some = |s: &str| Some(s.to_owned());
    let named = move |name: &'static str, args: BoxedStrategy<String>| {
        option::weighted(0.95, args)
            .prop_map(move |args| (some(name), args))
            .boxed()
    };
    let name_and_args = prop_oneof![
        3 => named(
            "\"increment\"",
            prop_oneof![3 => number_text(), 1 => any_json_text()].boxed()
        ),
        3 => named("\"setItem\"", set_item_args()),
        2 => named("\"deleteItem\"", delete_item_args()),
        3 => (
            option::weighted(0.9, mutator_name_text()),
            option::weighted(0.9, any_json_text()),
        ),
    ];
    (name_and_args, option::weighted(0.3, number_text()))
        .prop_map(|((name, args), timestamp)| FuzzMutation {
            name: name.map(Text),
            args: args.map(Text),
            timestamp: timestamp.map(Text),
        })
        .boxed()
}

/// A push of one client group: up to three clients, each mutation of one of them, ids in
/// sequence per client; an `increment(1)` of the first client follows them all.
#[derive(Clone, Debug)]
pub struct ArgsCase {
    pub mutations: Vec<(usize, FuzzMutation)>,
    pub profile_id: Option<Text>,
    pub schema_version: Option<Text>,
}

pub fn args_case() -> BoxedStrategy<ArgsCase> {
    (
        vec((0..3usize, fuzz_mutation()), 0..8),
        option::weighted(0.2, json_text()),
        option::weighted(0.2, json_text()),
    )
        .prop_map(|(mutations, profile_id, schema_version)| ArgsCase {
            mutations,
            profile_id: profile_id.map(Text),
            schema_version: schema_version.map(Text),
        })
        .boxed()
}

const ARGS_GROUP: &str = "fuzz-args-group";

fn args_client(i: usize) -> String {
    format!("fuzz-args-client-{i}")
}

/// A planned mutation: client, id, name and args text.
struct Planned {
    client: String,
    id: u64,
    name: Option<String>,
    args: Option<String>,
}

impl ArgsCase {
    /// The push body and its mutations in order, the final `increment(1)` included.
    fn render(&self) -> (String, Vec<Planned>) {
        let mut next_id: BTreeMap<String, u64> = BTreeMap::new();
        let mut plan = Vec::new();
        let mut texts = Vec::new();
        let mut add = |client: String, m: &FuzzMutation| {
            let id = next_id.entry(client.clone()).or_insert(0);
            *id += 1;
            let mut fields = vec![
                ("\"clientID\"".to_owned(), quoted(&client)),
                ("\"id\"".to_owned(), id.to_string()),
            ];
            if let Some(name) = &m.name {
                fields.push(("\"name\"".to_owned(), name.0.clone()));
            }
            if let Some(args) = &m.args {
                fields.push(("\"args\"".to_owned(), args.0.clone()));
            }
            if let Some(ts) = &m.timestamp {
                fields.push(("\"timestamp\"".to_owned(), ts.0.clone()));
            }
            texts.push(object(&fields));
            plan.push(Planned {
                client,
                id: *id,
                name: m.name.as_ref().map(|t| t.0.clone()),
                args: m.args.as_ref().map(|t| t.0.clone()),
            });
        };
        for (client, m) in &self.mutations {
            add(args_client(*client), m);
        }
        let last = FuzzMutation {
            name: Some(Text("\"increment\"".into())),
            args: Some(Text("1".into())),
            timestamp: None,
        };
        add(args_client(0), &last);
        let mut fields = vec![
            ("\"pushVersion\"".to_owned(), "1".to_owned()),
            ("\"clientGroupID\"".to_owned(), quoted(ARGS_GROUP)),
        ];
        if let Some(p) = &self.profile_id {
            fields.push(("\"profileID\"".to_owned(), p.0.clone()));
        }
        if let Some(s) = &self.schema_version {
            fields.push(("\"schemaVersion\"".to_owned(), s.0.clone()));
        }
        fields.push(("\"mutations\"".to_owned(), array(&texts)));
        (object(&fields), plan)
    }
}

/// What the app's mutators leave in a space, by the rules of `mutators::app` and the
/// store's limits.
#[derive(Debug, Default)]
struct AppModel {
    count: Option<f64>,
    items: BTreeMap<String, Value>,
}

impl AppModel {
    /// Applies one mutation; says what came of it.
    fn apply(&mut self, limits: &StoreLimits, name: Option<&str>, args: Option<&str>) -> String {
        let Some(name) = name
            .and_then(|t| serde_json::from_str::<String>(t).ok())
            .filter(|n| !n.is_empty())
        else {
            return "failed: name unreadable".into();
        };
        let args = match args.map(serde_json::from_str::<Value>) {
            None => Value::Null,
            Some(Ok(args)) => args,
            Some(Err(e)) => {
                let why = match e.classify() {
                    serde_json::error::Category::Syntax if e.to_string().contains("recursion") => {
                        "too deep"
                    }
                    serde_json::error::Category::Syntax => "syntax (number or surrogate)",
                    _ => "other",
                };
                return format!("failed: args unreadable, {why}");
            }
        };
        let item_key = |args: &Value| match args.get("key") {
            Some(Value::String(k)) if !k.is_empty() => {
                let key = format!("item/{k}");
                if key.len() <= limits.max_key_bytes {
                    Ok(key)
                } else {
                    Err("failed: key too long")
                }
            }
            _ => Err("failed: bad key"),
        };
        let name = name.as_str();
        let outcome = match name {
            "increment" => match args.as_f64().filter(|d| d.is_finite()) {
                None => "failed: not a finite number",
                Some(delta) => {
                    let next = self.count.unwrap_or(0.0) + delta;
                    if next.is_finite() {
                        self.count = Some(next);
                        "applied"
                    } else {
                        "failed: overflow"
                    }
                }
            },
            "setItem" => match (item_key(&args), args.get("value")) {
                (Err(why), _) => why,
                (_, None) => "failed: no value",
                (Ok(key), Some(value)) => {
                    let bytes =
                        key.len() + serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
                    if depth(value) > limits.max_value_depth {
                        "failed: value too deep"
                    } else if bytes > limits.max_entry_bytes {
                        "failed: entry too large"
                    } else {
                        self.items.insert(key, value.clone());
                        if bytes > 100_000 {
                            "applied (big)"
                        } else {
                            "applied"
                        }
                    }
                }
            },
            "deleteItem" => match item_key(&args) {
                Err(why) => why,
                Ok(key) => {
                    if self.items.remove(&key).is_some() {
                        "applied (deleted)"
                    } else {
                        "applied (absent)"
                    }
                }
            },
            _ => return "failed: unknown mutator".into(),
        };
        format!("{name}: {outcome}")
    }
}

/// Nesting depth: 0 for a scalar, 1 for `[]` or `{}`.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, level)) = stack.pop() {
        let children: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            Value::Object(map) => map.values().collect(),
            _ => continue,
        };
        deepest = deepest.max(level + 1);
        stack.extend(children.into_iter().map(|c| (c, level + 1)));
    }
    deepest
}

// ---------------------------------------------------------------------------------------
// Property 4: envelopes.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteSel {
    Push,
    Pull,
    CreateSpace,
    SpaceExists,
    /// A path no route matches.
    Unknown,
}

impl RouteSel {
    fn path(self, trailing_slash: bool) -> String {
        let path = match self {
            RouteSel::Push => "/api/replicache/push",
            RouteSel::Pull => "/api/replicache/pull",
            RouteSel::CreateSpace => "/api/replicache/createSpace",
            RouteSel::SpaceExists => "/api/replicache/spaceExists",
            RouteSel::Unknown => "/api/replicache/pushx",
        };
        if trailing_slash {
            format!("{path}/")
        } else {
            path.to_owned()
        }
    }
}

/// The `spaceID` query parameter.
#[derive(Clone, Debug)]
pub enum SpaceSel {
    /// The case's space.
    Current,
    Missing,
    Raw(&'static str),
    /// A valid ID of no space.
    Unknown,
}

/// A mutation of an envelope: an object of maybe-missing, maybe-odd fields, or any JSON.
#[derive(Clone, Debug)]
pub enum EnvMutation {
    Fields {
        client_id: Option<Text>,
        id: Option<IdSel>,
        name: Option<Text>,
        args: Option<Text>,
    },
    Raw(Text),
}

/// A mutation ID: relative to the client's next one at run time, or raw text.
#[derive(Clone, Debug)]
pub enum IdSel {
    /// The next ID of the client (its LMID in the group, then the IDs before it in this
    /// body) plus this: -1 a duplicate, 0 due, 1 a gap.
    Next(i8),
    Raw(Text),
}

#[derive(Clone, Debug)]
pub enum MutationsSel {
    List(Vec<EnvMutation>),
    Raw(Text),
}

/// A pull cookie; some are made at run time from the space's current cookie.
#[derive(Clone, Debug)]
pub enum CookieSel {
    Raw(Text),
    /// The cookie the space hands out now.
    Genuine,
    /// Its signature with another order.
    GenuineSigOtherOrder(i64),
    /// Its order with a damaged signature.
    GenuineBadSig,
    /// A validly signed cookie this many versions ahead (as after a restore).
    SignedFuture(u64),
    /// A validly signed cookie of 2^53-1.
    SignedMaxSafe,
}

#[derive(Clone, Debug)]
pub enum SpaceBodySel {
    Raw(Text),
    /// `{"spaceID": <the case's space>}`
    Current,
    /// `{"spaceID": <a new valid ID>}`
    Fresh,
}

#[derive(Clone, Debug)]
pub enum Body {
    Bytes(Bytes),
    Json(Text),
    Push {
        version: Option<Text>,
        group: Option<Text>,
        profile: Option<Text>,
        schema: Option<Text>,
        mutations: Option<MutationsSel>,
        extras: Vec<(Text, Text)>,
    },
    Pull {
        version: Option<Text>,
        group: Option<Text>,
        profile: Option<Text>,
        schema: Option<Text>,
        cookie: Option<CookieSel>,
        extras: Vec<(Text, Text)>,
    },
    Space(Option<SpaceBodySel>),
    /// Another body cut short.
    Truncated(Box<Body>, Index),
    /// Another body in JSON whitespace (which changes nothing).
    Padded(Box<Body>, &'static str),
    /// Whitespace one byte over the API's body limit.
    Oversized,
}

#[derive(Clone, Debug)]
pub struct EnvRequest {
    pub method: &'static str,
    pub route: RouteSel,
    pub trailing_slash: bool,
    pub space: SpaceSel,
    pub body: Body,
}

/// A fresh, seeded space and up to four requests to it, in order.
#[derive(Clone, Debug)]
pub struct EnvCase {
    pub requests: Vec<EnvRequest>,
}

fn version_text() -> BoxedStrategy<String> {
    prop_oneof![
        30 => Just("1".to_owned()),
        1 => lit(&[
            "0", "2", "1.0", "1e0", "-1", "\"1\"", "null", "true", "9007199254740993", "1e400",
            "[1]", "-0", "1.5",
        ]),
        1 => json_text(),
    ]
    .boxed()
}

fn id_token_text(pool: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        30 => lit(pool),
        1 => lit(&[
            "\"\"",
            "\"bad id!\"",
            "\"g\\u0031\"",
            "\"c\\u0031\"",
            "\"\\ud800\"",
            "\"g/1\"",
            "\"gé\"",
            "\"g1 \"",
            "7",
            "null",
            "[\"g1\"]",
            "{}",
        ]),
        1 => select(&[127usize, 128, 129, 1_000][..]).prop_map(|n| format!("\"{}\"", "a".repeat(n))),
        1 => json_text(),
    ]
    .boxed()
}

fn mutation_id() -> BoxedStrategy<IdSel> {
    prop_oneof![
        30 => select(&[-1i8, 0, 0, 0, 0, 1][..]).prop_map(IdSel::Next),
        2 => lit(&[
            "0",
            "-1",
            "1.5",
            "9007199254740991",
            "9007199254740992",
            "1e300",
            "\"1\"",
            "null",
            "1.0",
            "1e0",
            "-0",
            "18446744073709551616",
            "1e400",
        ])
        .prop_map(|t| IdSel::Raw(Text(t))),
        1 => json_text().prop_map(|t| IdSel::Raw(Text(t))),
    ]
    .boxed()
}

fn env_mutation() -> BoxedStrategy<EnvMutation> {
    let name = prop_oneof![
        8 => lit(&["\"increment\"", "\"setItem\"", "\"deleteItem\""]),
        1 => mutator_name_text(),
    ];
    let args = prop_oneof![
        8 => lit(&[
            "1",
            "-2",
            "{\"key\":\"a\",\"value\":1}",
            "{\"key\":\"b\",\"value\":[true,{\"x\":null}]}",
            "{\"key\":\"a\"}",
            "null",
        ]),
        1 => json_text(),
    ];
    prop_oneof![
        30 => (
            option::weighted(0.98, id_token_text(&["\"c1\"", "\"c2\"", "\"c3\""])),
            option::weighted(0.98, mutation_id()),
            option::weighted(0.9, name),
            option::weighted(0.9, args),
        )
            .prop_map(|(client_id, id, name, args)| EnvMutation::Fields {
                client_id: client_id.map(Text),
                id,
                name: name.map(Text),
                args: args.map(Text),
            }),
        1 => json_text().prop_map(|t| EnvMutation::Raw(Text(t))),
    ]
    .boxed()
}

fn cookie_sel() -> BoxedStrategy<CookieSel> {
    let raw = |s: BoxedStrategy<String>| s.prop_map(|t| CookieSel::Raw(Text(t))).boxed();
    let cookie_object = (
        option::weighted(
            0.9,
            prop_oneof![
                3 => lit(&[
                    "0", "1", "2", "3", "-1", "1.5", "9007199254740991", "9007199254740992",
                    "1e300", "\"2\"", "null",
                ]),
                1 => json_text(),
            ],
        ),
        option::weighted(
            0.9,
            prop_oneof![lit(&["\"\"", "\"x\"", "7", "null"]), string_text()],
        ),
        option::weighted(0.2, json_text()),
    )
        .prop_map(|(order, sig, extra)| {
            let mut fields = Vec::new();
            if let Some(order) = order {
                fields.push(("\"order\"".to_owned(), order));
            }
            if let Some(sig) = sig {
                fields.push(("\"sig\"".to_owned(), sig));
            }
            if let Some(extra) = extra {
                fields.push(("\"extra\"".to_owned(), extra));
            }
            object(&fields)
        })
        .boxed();
    prop_oneof![
        3 => raw(lit(&["null"])),
        2 => raw(lit(&[
            "0", "1", "2", "3", "-1", "1.5", "0.5", "9007199254740991", "9007199254740992",
            "1e300", "-0", "1e400", "18446744073709551616", "-1e300", "\"1\"", "\"\"", "true",
            "[]",
        ])),
        2 => raw(cookie_object),
        2 => Just(CookieSel::Genuine),
        1 => (-2i64..=2).prop_map(CookieSel::GenuineSigOtherOrder),
        1 => Just(CookieSel::GenuineBadSig),
        1 => (1u64..=3).prop_map(CookieSel::SignedFuture),
        1 => Just(CookieSel::SignedMaxSafe),
        1 => raw(json_text()),
    ]
    .boxed()
}

fn extras() -> BoxedStrategy<Vec<(Text, Text)>> {
    vec(
        (
            prop_oneof![
                lit(&[
                    "\"pushVersion\"",
                    "\"pullVersion\"",
                    "\"clientGroupID\"",
                    "\"mutations\"",
                    "\"cookie\"",
                    "\"\\u0070ushVersion\"",
                    "\"profileID\"",
                ]),
                string_text(),
            ],
            json_text(),
        )
            .prop_map(|(k, v)| (Text(k), Text(v))),
        0..2,
    )
    .boxed()
}

/// `profileID` and `schemaVersion`: read leniently by the server.
fn lenient_text() -> BoxedStrategy<String> {
    prop_oneof![4 => lit(&["\"p\"", "\"\"", "\"v1\""]), 1 => json_text()].boxed()
}

fn push_body() -> BoxedStrategy<Body> {
    let mutations = prop_oneof![
        12 => vec(env_mutation(), 0..5).prop_map(MutationsSel::List),
        1 => json_text().prop_map(|t| MutationsSel::Raw(Text(t))),
    ];
    (
        option::weighted(0.98, version_text()),
        option::weighted(0.98, id_token_text(&["\"g1\"", "\"g2\"", "\"g3\""])),
        option::weighted(0.5, lenient_text()),
        option::weighted(0.5, lenient_text()),
        option::weighted(0.98, mutations),
        prop_oneof![6 => Just(Vec::new()), 1 => extras()],
    )
        .prop_map(
            |(version, group, profile, schema, mutations, extras)| Body::Push {
                version: version.map(Text),
                group: group.map(Text),
                profile: profile.map(Text),
                schema: schema.map(Text),
                mutations,
                extras,
            },
        )
        .boxed()
}

fn pull_body() -> BoxedStrategy<Body> {
    (
        option::weighted(0.98, version_text()),
        option::weighted(0.98, id_token_text(&["\"g1\"", "\"g2\"", "\"g3\""])),
        option::weighted(0.5, lenient_text()),
        option::weighted(0.5, lenient_text()),
        option::weighted(0.98, cookie_sel()),
        prop_oneof![6 => Just(Vec::new()), 1 => extras()],
    )
        .prop_map(
            |(version, group, profile, schema, cookie, extras)| Body::Pull {
                version: version.map(Text),
                group: group.map(Text),
                profile: profile.map(Text),
                schema: schema.map(Text),
                cookie,
                extras,
            },
        )
        .boxed()
}

fn space_body() -> BoxedStrategy<Body> {
    option::weighted(
        0.8,
        prop_oneof![
            2 => Just(SpaceBodySel::Current),
            2 => Just(SpaceBodySel::Fresh),
            2 => lit(&[
                "\"bad space!\"",
                "\"\"",
                "null",
                "7",
                "\"\\ud800\"",
                "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
            ])
            .prop_map(|t| SpaceBodySel::Raw(Text(format!("{{\"spaceID\":{t}}}")))),
            1 => json_text().prop_map(|t| SpaceBodySel::Raw(Text(t))),
            1 => lit(&["", "{}", " \n", "{\"spaceID\":null}"])
                .prop_map(|t| SpaceBodySel::Raw(Text(t))),
        ],
    )
    .prop_map(Body::Space)
    .boxed()
}

fn any_body() -> BoxedStrategy<Body> {
    prop_oneof![
        3 => vec(any::<u8>(), 0..64).prop_map(|b| Body::Bytes(Bytes(b))),
        1 => Just(Body::Oversized),
        3 => json_text().prop_map(|t| Body::Json(Text(t))),
        2 => push_body(),
        2 => pull_body(),
        1 => space_body(),
        2 => (prop_oneof![push_body(), pull_body()], any::<Index>())
            .prop_map(|(b, at)| Body::Truncated(Box::new(b), at)),
    ]
    .boxed()
}

fn env_request() -> BoxedStrategy<EnvRequest> {
    let padded = |body: BoxedStrategy<Body>| {
        prop_oneof![
            8 => body.clone(),
            1 => (body, select(&[" ", "\n", "\t", "\r\n", " \n\t "][..]))
                .prop_map(|(b, ws)| Body::Padded(Box::new(b), ws)),
        ]
    };
    let route_and_body = prop_oneof![
        5 => padded(push_body()).prop_map(|b| (RouteSel::Push, b)),
        4 => padded(pull_body()).prop_map(|b| (RouteSel::Pull, b)),
        1 => space_body().prop_map(|b| (RouteSel::CreateSpace, b)),
        1 => space_body().prop_map(|b| (RouteSel::SpaceExists, b)),
        3 => (
            select(&[
                RouteSel::Push,
                RouteSel::Pull,
                RouteSel::CreateSpace,
                RouteSel::SpaceExists,
                RouteSel::Unknown,
            ][..]),
            any_body(),
        ),
    ];
    let space = prop_oneof![
        24 => Just(SpaceSel::Current),
        1 => Just(SpaceSel::Missing),
        1 => Just(SpaceSel::Unknown),
        1 => select(&[
            "",
            "bad space!",
            "space/../x",
            "späce",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ][..])
        .prop_map(SpaceSel::Raw),
    ];
    let method = prop_oneof![
        24 => Just("POST"),
        1 => select(&["GET", "post", "PUT", ""][..]),
    ];
    (method, route_and_body, prop::bool::weighted(0.05), space)
        .prop_map(
            |(method, (route, body), trailing_slash, space)| EnvRequest {
                method,
                route,
                trailing_slash,
                space,
                body,
            },
        )
        .boxed()
}

pub fn envelope_case() -> BoxedStrategy<EnvCase> {
    vec(env_request(), 1..=4)
        .prop_map(|requests| EnvCase { requests })
        .boxed()
}

/// What a body needs from the run: the space, and the cookie it hands out now.
struct Ctx<'a> {
    space: &'a SpaceId,
    cookie: &'a Value,
    keys: &'a CookieKeys,
    /// The LMIDs of the group a push body names, if it names a valid one.
    lmids: BTreeMap<String, u64>,
}

fn push_field(fields: &mut Vec<(String, String)>, key: &str, value: &Option<Text>) {
    if let Some(v) = value {
        fields.push((quoted(key), v.0.clone()));
    }
}

impl Body {
    /// The group a push or pull body names, when it is a valid ID.
    fn group_hint(&self) -> Option<String> {
        let group = match self {
            Body::Padded(body, _) => return body.group_hint(),
            Body::Push { group, .. } | Body::Pull { group, .. } => group.as_ref()?,
            _ => return None,
        };
        let group = serde_json::from_str::<String>(&group.0).ok()?;
        validate_client_id(&group, "clientGroupID").ok()?;
        Some(group)
    }

    fn render(&self, ctx: &Ctx<'_>) -> Vec<u8> {
        match self {
            Body::Bytes(b) => b.0.clone(),
            Body::Json(t) => t.0.clone().into_bytes(),
            Body::Push {
                version,
                group,
                profile,
                schema,
                mutations,
                extras,
            } => {
                let mut fields = Vec::new();
                push_field(&mut fields, "pushVersion", version);
                push_field(&mut fields, "clientGroupID", group);
                push_field(&mut fields, "profileID", profile);
                push_field(&mut fields, "schemaVersion", schema);
                match mutations {
                    None => {}
                    Some(MutationsSel::Raw(t)) => fields.push((quoted("mutations"), t.0.clone())),
                    Some(MutationsSel::List(list)) => {
                        let mut next = ctx.lmids.clone();
                        let items: Vec<String> = list.iter().map(|m| m.render(&mut next)).collect();
                        fields.push((quoted("mutations"), array(&items)));
                    }
                }
                fields.extend(extras.iter().map(|(k, v)| (k.0.clone(), v.0.clone())));
                object(&fields).into_bytes()
            }
            Body::Pull {
                version,
                group,
                profile,
                schema,
                cookie,
                extras,
            } => {
                let mut fields = Vec::new();
                push_field(&mut fields, "pullVersion", version);
                push_field(&mut fields, "clientGroupID", group);
                push_field(&mut fields, "profileID", profile);
                push_field(&mut fields, "schemaVersion", schema);
                if let Some(cookie) = cookie {
                    fields.push((quoted("cookie"), cookie.render(ctx)));
                }
                fields.extend(extras.iter().map(|(k, v)| (k.0.clone(), v.0.clone())));
                object(&fields).into_bytes()
            }
            Body::Space(None) => Vec::new(),
            Body::Space(Some(SpaceBodySel::Raw(t))) => t.0.clone().into_bytes(),
            Body::Space(Some(SpaceBodySel::Current)) => json!({ "spaceID": ctx.space.as_str() })
                .to_string()
                .into_bytes(),
            Body::Space(Some(SpaceBodySel::Fresh)) => {
                json!({ "spaceID": fresh_space("fuzz-new").as_str() })
                    .to_string()
                    .into_bytes()
            }
            Body::Truncated(body, at) => {
                let mut bytes = body.render(ctx);
                bytes.truncate(at.index(bytes.len().max(1)));
                bytes
            }
            Body::Padded(body, ws) => [ws.as_bytes(), &body.render(ctx), ws.as_bytes()].concat(),
            Body::Oversized => vec![b' '; MAX_BODY_BYTES + 1],
        }
    }

    /// The cookie a pull body presents, when it is one this module made up.
    fn cookie(&self) -> Option<&CookieSel> {
        match self {
            Body::Padded(body, _) => body.cookie(),
            Body::Pull { cookie, .. } => cookie.as_ref(),
            _ => None,
        }
    }
}

impl EnvMutation {
    /// `next`: each client's last ID so far (its LMID, then this body's IDs).
    fn render(&self, next: &mut BTreeMap<String, u64>) -> String {
        match self {
            EnvMutation::Raw(t) => t.0.clone(),
            EnvMutation::Fields {
                client_id,
                id,
                name,
                args,
            } => {
                let mut fields = Vec::new();
                push_field(&mut fields, "clientID", client_id);
                match id {
                    None => {}
                    Some(IdSel::Raw(t)) => fields.push((quoted("id"), t.0.clone())),
                    Some(IdSel::Next(delta)) => {
                        let client = client_id
                            .as_ref()
                            .and_then(|t| serde_json::from_str::<String>(&t.0).ok())
                            .unwrap_or_default();
                        let last = next.entry(client).or_insert(0);
                        let id = (*last + 1).saturating_add_signed(i64::from(*delta));
                        *last = (*last).max(id);
                        fields.push((quoted("id"), id.to_string()));
                    }
                }
                push_field(&mut fields, "name", name);
                push_field(&mut fields, "args", args);
                object(&fields)
            }
        }
    }
}

impl CookieSel {
    fn render(&self, ctx: &Ctx<'_>) -> String {
        let order = ctx.cookie["order"].as_u64().unwrap_or(0);
        let sig = ctx.cookie["sig"].as_str().unwrap_or("");
        let signed = |order: u64| serde_json::to_string(&ctx.keys.sign(ctx.space, order));
        match self {
            CookieSel::Raw(t) => t.0.clone(),
            CookieSel::Genuine => ctx.cookie.to_string(),
            CookieSel::GenuineSigOtherOrder(delta) => {
                json!({ "order": order as i64 + delta, "sig": sig }).to_string()
            }
            CookieSel::GenuineBadSig => {
                let mut bad: Vec<char> = sig.chars().collect();
                if let Some(c) = bad.first_mut() {
                    *c = if *c == 'A' { 'B' } else { 'A' };
                }
                json!({ "order": order, "sig": bad.into_iter().collect::<String>() }).to_string()
            }
            CookieSel::SignedFuture(ahead) => signed(order + ahead).expect("a cookie serializes"),
            CookieSel::SignedMaxSafe => signed(MAX_SAFE_INTEGER).expect("a cookie serializes"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The checks.

/// A service over the store under test, and what the checks need to know of it.
pub struct Fuzz {
    svc: SyncService,
    keys: CookieKeys,
    limits: StoreLimits,
    /// How often each kind of outcome came up, to show what a run exercised.
    tally: Mutex<BTreeMap<String, u64>>,
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err(TestCaseError::fail(format!($($fmt)+)));
        }
    };
}

fn lmids(pull: &Value) -> BTreeMap<String, u64> {
    pull["lastMutationIDChanges"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(u64::MAX)))
                .collect()
        })
        .unwrap_or_default()
}

/// The entries a full pull puts (its patch must start with `clear`).
fn entries(pull: &Value) -> Result<BTreeMap<String, Value>, TestCaseError> {
    let patch = pull["patch"].as_array().cloned().unwrap_or_default();
    ensure!(
        patch.first() == Some(&json!({"op": "clear"})),
        "a full pull starts with clear: {}",
        abbreviate(&pull.to_string())
    );
    let mut out = BTreeMap::new();
    for op in &patch[1..] {
        ensure!(
            op["op"] == "put" && op["key"].is_string(),
            "a full pull only puts after clear: {op}"
        );
        out.insert(
            op["key"].as_str().unwrap_or_default().to_owned(),
            op["value"].clone(),
        );
    }
    Ok(out)
}

/// A request's outcome for the tally: route, status, error, and the refusal's message
/// with its numbers blurred.
fn outcome_label(route: RouteSel, status: u16, resp: &Value) -> String {
    let error = resp["error"].as_str().unwrap_or("ok");
    let message: String = resp["message"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .take(70)
        .collect();
    format!("{route:?} {status} {error} {message}")
}

/// The order of a pull answer's cookie.
fn order_of(pull: &Value) -> u64 {
    pull["cookie"]["order"].as_u64().unwrap_or_default()
}

/// `base` with a pull's patch applied; `None` for a malformed patch.
fn apply_patch(base: &BTreeMap<String, Value>, patch: &Value) -> Option<BTreeMap<String, Value>> {
    let mut state = base.clone();
    for (i, op) in patch.as_array()?.iter().enumerate() {
        match (op["op"].as_str()?, op["key"].as_str()) {
            ("clear", None) if i == 0 => state.clear(),
            ("put", Some(key)) => {
                state.insert(key.to_owned(), op.get("value")?.clone());
            }
            ("del", Some(key)) => {
                state.remove(key);
            }
            _ => return None,
        }
    }
    Some(state)
}

/// What a request's answer says, for messages.
fn answer(status: u16, body: &Value) -> String {
    format!("{status} {}", abbreviate(&body.to_string()))
}

impl Fuzz {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let keys = CookieKeys::from_secret_text(COOKIE_SECRET).expect("a valid cookie secret");
        let limits = store.limits();
        let svc = SyncService::new(store, Arc::new(app::registry()), Arc::new(NoPoker))
            .with_cookie_keys(keys.clone());
        Self {
            svc,
            keys,
            limits,
            tally: Mutex::default(),
        }
    }

    fn count(&self, what: impl Into<String>) {
        let mut tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        *tally.entry(what.into()).or_default() += 1;
    }

    /// Prints and clears the tally of outcomes.
    fn report(&self, name: &str) {
        let tally = std::mem::take(&mut *self.tally.lock().unwrap_or_else(|e| e.into_inner()));
        let lines: Vec<String> = tally.iter().map(|(k, n)| format!("  {n:>7} {k}")).collect();
        eprintln!(
            "fuzz {name}: outcomes (shrinking included)\n{}",
            lines.join("\n")
        );
    }

    /// One request; checks property 1 on its answer.
    async fn call(
        &self,
        method: &str,
        path: &str,
        space: Option<&str>,
        body: &[u8],
    ) -> Result<(u16, Value), TestCaseError> {
        let resp = self
            .svc
            .handle(ApiRequest {
                method,
                path,
                space_id: space,
                body,
                accepts_gzip: false,
                user: "",
            })
            .await;
        let raw = || abbreviate(&String::from_utf8_lossy(&resp.body));
        ensure!(
            resp.status == 200 || (400..500).contains(&resp.status),
            "status {} is neither 200 nor a 4xx: {}",
            resp.status,
            raw()
        );
        let Some(value) = resp.json_body() else {
            return Err(TestCaseError::fail(format!(
                "the answer ({}) is not JSON: {}",
                resp.status,
                raw()
            )));
        };
        if resp.status != 200 {
            let nonempty = |f: &str| value[f].as_str().is_some_and(|s| !s.is_empty());
            // A 413 also says the limit, for clients that split their pushes by it.
            let limit_is_said = resp.status != 413
                || value["maxBytes"].as_u64() == Some(sync_core::api::MAX_BODY_BYTES as u64);
            let fields = 2 + usize::from(resp.status == 413);
            ensure!(
                value.as_object().is_some_and(|o| o.len() == fields)
                    && nonempty("error")
                    && nonempty("message")
                    && limit_is_said,
                "a {} answer is not {{error, message}} (and maxBytes for a 413): {}",
                resp.status,
                raw()
            );
        }
        Ok((resp.status, value))
    }

    async fn create_space(&self) -> Result<SpaceId, TestCaseError> {
        let (status, body) = self
            .call("POST", "/api/replicache/createSpace", None, b"{}")
            .await?;
        ensure!(status == 200, "createSpace: {}", answer(status, &body));
        let space = body["spaceID"]
            .as_str()
            .and_then(|s| SpaceId::parse(s).ok());
        space.ok_or_else(|| TestCaseError::fail(format!("createSpace answered {body}")))
    }

    async fn push(&self, space: &SpaceId, body: &Value) -> Result<(), TestCaseError> {
        let text = body.to_string();
        let (status, resp) = self
            .call(
                "POST",
                "/api/replicache/push",
                Some(space.as_str()),
                text.as_bytes(),
            )
            .await?;
        ensure!(
            status == 200 && resp == json!({}),
            "push {text}: {}",
            answer(status, &resp)
        );
        Ok(())
    }

    /// A full pull by `group` (cookie null), with its patch in key order.
    async fn full_pull(&self, space: &SpaceId, group: &str) -> Result<Value, TestCaseError> {
        let body = json!({"pullVersion": 1, "clientGroupID": group, "cookie": null}).to_string();
        let (status, mut resp) = self
            .call(
                "POST",
                "/api/replicache/pull",
                Some(space.as_str()),
                body.as_bytes(),
            )
            .await?;
        ensure!(
            status == 200 && resp["cookie"]["order"].is_u64(),
            "full pull by {group}: {}",
            answer(status, &resp)
        );
        if let Some(patch) = resp["patch"].as_array_mut() {
            patch.sort_by(|a, b| {
                let key = |op: &Value| (op["op"] != "clear", op["key"].as_str().map(str::to_owned));
                key(a).cmp(&key(b))
            });
        }
        Ok(resp)
    }

    async fn space_exists(&self, space: &str) -> Result<bool, TestCaseError> {
        let body = json!({ "spaceID": space }).to_string();
        let (status, resp) = self
            .call("POST", "/api/replicache/spaceExists", None, body.as_bytes())
            .await?;
        ensure!(status == 200, "spaceExists: {}", answer(status, &resp));
        resp["spaceExists"]
            .as_bool()
            .ok_or_else(|| TestCaseError::fail(format!("spaceExists answered {resp}")))
    }

    /// Property 3 for one case.
    pub async fn check_args_case(&self, case: ArgsCase) -> Result<(), TestCaseError> {
        let space = self.create_space().await?;
        // Entries for the case's deletes and overwrites to find, from another group.
        let seeded = [
            ("a", json!(1)),
            ("b", json!({"x": true})),
            ("😀", json!("v")),
        ];
        let seed: Vec<Value> = seeded
            .iter()
            .enumerate()
            .map(|(i, (key, value))| {
                json!({"clientID": "fuzz-args-seed-client", "id": i + 1, "name": "setItem",
                       "args": {"key": key, "value": value}})
            })
            .collect();
        let seed = json!({"pushVersion": 1, "clientGroupID": "fuzz-args-seed", "mutations": seed});
        self.push(&space, &seed).await?;
        let (body, plan) = case.render();
        let (status, resp) = self
            .call(
                "POST",
                "/api/replicache/push",
                Some(space.as_str()),
                body.as_bytes(),
            )
            .await?;
        let shown = || abbreviate(&body);
        ensure!(
            status == 200 && resp == json!({}),
            "a well-formed push is answered 200 {{}}, not {}\npush: {}",
            answer(status, &resp),
            shown()
        );

        let mut model = AppModel {
            count: None,
            items: seeded
                .into_iter()
                .map(|(key, value)| (format!("item/{key}"), value))
                .collect(),
        };
        let mut expected_lmids = BTreeMap::new();
        let mut count_before_last = None;
        for (i, m) in plan.iter().enumerate() {
            if i + 1 == plan.len() {
                count_before_last = model.count;
            }
            let outcome = model.apply(&self.limits, m.name.as_deref(), m.args.as_deref());
            if i + 1 < plan.len() {
                self.count(outcome);
            }
            expected_lmids.insert(m.client.clone(), m.id);
        }
        let before = count_before_last.unwrap_or(0.0);
        let after = model.count.unwrap_or(f64::NAN);
        if before.abs() < 2f64.powi(52) {
            ensure!(after == before + 1.0, "model: increment(1) adds 1");
        }

        let group = self.full_pull(&space, ARGS_GROUP).await?;
        ensure!(
            lmids(&group) == expected_lmids,
            "every mutation is processed: lastMutationIDChanges {} (expected {expected_lmids:?})\n\
             push: {}",
            group["lastMutationIDChanges"],
            shown()
        );

        let observed = self.full_pull(&space, OBSERVER).await?;
        let mut got = entries(&observed)?;
        let count = got.remove(app::COUNT_KEY);
        ensure!(
            count.as_ref().and_then(Value::as_f64) == model.count,
            "count is {count:?}, the model says {:?} ({before} before the final increment(1))\n\
             push: {}",
            model.count,
            shown()
        );
        if got != model.items {
            let keys =
                |m: &BTreeMap<String, Value>| m.keys().map(|k| abbreviate(k)).collect::<Vec<_>>();
            let show = |v: Option<&Value>| abbreviate(&v.map_or("absent".into(), Value::to_string));
            let differing: Vec<String> = got
                .keys()
                .chain(model.items.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|k| got.get(*k) != model.items.get(*k))
                .map(|k| {
                    format!(
                        "{}: stored {}, model {}",
                        abbreviate(k),
                        show(got.get(k)),
                        show(model.items.get(k))
                    )
                })
                .collect();
            return Err(TestCaseError::fail(format!(
                "items differ from the model: stored keys {:?}, model keys {:?}; {differing:?}\n\
                 push: {}",
                keys(&got),
                keys(&model.items),
                shown()
            )));
        }
        Ok(())
    }

    /// Properties 1 and 2 for one case of property 4.
    pub async fn check_envelope_case(&self, case: EnvCase) -> Result<(), TestCaseError> {
        let space = self.create_space().await?;
        let seed_g1 = json!({"pushVersion": 1, "clientGroupID": "g1", "mutations": [
            {"clientID": "c1", "id": 1, "name": "increment", "args": 5},
            {"clientID": "c1", "id": 2, "name": "setItem",
             "args": {"key": "a", "value": {"x": [1, 2.5, "é"]}}}]});
        let seed_g2 = json!({"pushVersion": 1, "clientGroupID": "g2", "mutations": [
            {"clientID": "c2", "id": 1, "name": "setItem", "args": {"key": "b", "value": null}}]});
        // The space's entries at each version seen, to check incremental pulls against.
        let mut history = BTreeMap::from([(0, BTreeMap::new())]);
        for seed in [seed_g1, seed_g2] {
            self.push(&space, &seed).await?;
            let state = self.full_pull(&space, OBSERVER).await?;
            history.insert(order_of(&state), entries(&state)?);
        }
        for (i, req) in case.requests.iter().enumerate() {
            self.check_request(&space, i, req, &mut history).await?;
        }
        Ok(())
    }

    async fn check_request(
        &self,
        space: &SpaceId,
        i: usize,
        req: &EnvRequest,
        history: &mut BTreeMap<u64, BTreeMap<String, Value>>,
    ) -> Result<(), TestCaseError> {
        let before = self.full_pull(space, OBSERVER).await?;
        let now = entries(&before)?;
        history.insert(order_of(&before), now.clone());
        let hint = req.body.group_hint();
        let hint_before = match &hint {
            Some(g) => Some(self.full_pull(space, g).await?),
            None => None,
        };
        let ctx = Ctx {
            space,
            cookie: &before["cookie"],
            keys: &self.keys,
            lmids: hint_before.as_ref().map(lmids).unwrap_or_default(),
        };
        let body = req.body.render(&ctx);
        let unknown_space = SpaceId::generate();
        let target = match &req.space {
            SpaceSel::Current => Some(space.as_str()),
            SpaceSel::Missing => None,
            SpaceSel::Raw(s) => Some(*s),
            SpaceSel::Unknown => Some(unknown_space.as_str()),
        };
        let to_current = matches!(req.space, SpaceSel::Current);
        let path = req.route.path(req.trailing_slash);
        // The request's group, when its body names a valid one: its state is watched too.
        let push = match protocol::parse_push(&body) {
            Ok(Parsed::Supported(p)) if req.route == RouteSel::Push => Some(p),
            _ => None,
        };
        let pull = match protocol::parse_pull(&body) {
            Ok(Parsed::Supported(p)) if req.route == RouteSel::Pull => Some(p),
            _ => None,
        };
        let group = push
            .as_ref()
            .map(|p| p.client_group_id.clone())
            .or_else(|| pull.as_ref().map(|p| p.client_group_id.clone()));
        let group_before = match &group {
            Some(g) if hint.as_ref() == Some(g) => hint_before,
            Some(g) => Some(self.full_pull(space, g).await?),
            None => None,
        };

        let (status, resp) = self.call(req.method, &path, target, &body).await?;
        self.count(outcome_label(req.route, status, &resp));

        let after = self.full_pull(space, OBSERVER).await?;
        let group_after = match &group {
            Some(g) => Some(self.full_pull(space, g).await?),
            None => None,
        };
        let what = || {
            format!(
                "request #{i}: {} {path} spaceID={target:?} body={}\nanswer: {}",
                req.method,
                abbreviate(&String::from_utf8_lossy(&body)),
                answer(status, &resp)
            )
        };
        let unchanged = before == after && group_before == group_after;
        let state_diff = || {
            format!(
                "observer before {}\nobserver after  {}\ngroup before {}\ngroup after  {}",
                abbreviate(&before.to_string()),
                abbreviate(&after.to_string()),
                abbreviate(&format!("{group_before:?}")),
                abbreviate(&format!("{group_after:?}"))
            )
        };
        let version_not_supported = resp["error"] == "VersionNotSupported";
        if status != 200 || version_not_supported {
            ensure!(
                unchanged,
                "a rejected request changed the space\n{}\n{}",
                what(),
                state_diff()
            );
        }
        if matches!(req.space, SpaceSel::Unknown) && req.route != RouteSel::CreateSpace {
            ensure!(
                !self.space_exists(unknown_space.as_str()).await?,
                "a request to an unknown space created it\n{}",
                what()
            );
        }
        if status != 200 || version_not_supported {
            return Ok(());
        }
        match req.route {
            RouteSel::Push => {
                let (Some(push), Some(group_before), Some(group_after)) =
                    (&push, &group_before, &group_after)
                else {
                    return Err(TestCaseError::fail(format!(
                        "a push the parser refuses was answered 200\n{}",
                        what()
                    )));
                };
                ensure!(to_current, "a push to another space succeeded\n{}", what());
                // The protocol's walk: skip duplicates, apply the due, stop at a gap.
                let mut expected = lmids(group_before);
                let mut applied = 0;
                let mut gap = false;
                for m in &push.mutations {
                    let next = expected.get(&m.client_id).copied().unwrap_or(0) + 1;
                    if m.id < next {
                        continue;
                    }
                    if m.id > next {
                        gap = true;
                        break;
                    }
                    expected.insert(m.client_id.clone(), m.id);
                    applied += 1;
                }
                let csnf = resp == json!({"error": "ClientStateNotFound"});
                ensure!(
                    csnf || resp == json!({}),
                    "a push is answered {{}} or ClientStateNotFound\n{}",
                    what()
                );
                ensure!(
                    csnf == gap,
                    "ClientStateNotFound if and only if a mutation is ahead of its client \
                     (gap: {gap})\n{}",
                    what()
                );
                ensure!(
                    lmids(group_after) == expected,
                    "LMIDs after the push: {:?}, expected {expected:?}\n{}\n{}",
                    lmids(group_after),
                    what(),
                    state_diff()
                );
                self.count(format!(
                    "push applied {}{}",
                    if applied == 0 { "none" } else { "some" },
                    if gap { ", then a gap" } else { "" }
                ));
                if applied == 0 {
                    ensure!(
                        unchanged,
                        "a push that applied nothing changed the space\n{}\n{}",
                        what(),
                        state_diff()
                    );
                }
            }
            RouteSel::Pull => {
                let Some(pull) = &pull else {
                    return Err(TestCaseError::fail(format!(
                        "a pull the parser refuses was answered 200\n{}",
                        what()
                    )));
                };
                ensure!(to_current, "a pull of another space succeeded\n{}", what());
                let order = resp["cookie"]["order"].as_u64();
                ensure!(
                    order.is_some_and(|o| o <= MAX_SAFE_INTEGER)
                        && resp["cookie"]["sig"].is_string()
                        && resp["lastMutationIDChanges"].is_object()
                        && resp["patch"].is_array(),
                    "a pull answer has a signed cookie up to 2^53-1, LMIDs and a patch\n{}",
                    what()
                );
                let order = order.unwrap_or_default() as f64;
                let least = match &pull.cookie {
                    Cookie::Null => 0.0,
                    Cookie::Version(v) => *v as f64,
                    Cookie::Unusable(f) => f.max(0.0),
                    Cookie::Signed { order, .. } => *order as f64,
                };
                ensure!(
                    order >= least,
                    "the cookie went back: answered {order}, presented {least}\n{}",
                    what()
                );
                if let Cookie::Unusable(f) = pull.cookie {
                    ensure!(order > f, "an unusable cookie {f} got {order}\n{}", what());
                }
                self.count(format!(
                    "pull answered, cookie {}{}",
                    match pull.cookie {
                        Cookie::Null => "null",
                        Cookie::Version(_) => "number",
                        Cookie::Unusable(_) => "unusable number",
                        Cookie::Signed { .. } => "object",
                    },
                    if unchanged { "" } else { ", version raised" }
                ));
                let theirs = group_before.as_ref().map(lmids).unwrap_or_default();
                ensure!(
                    lmids(&resp).iter().all(|(c, id)| theirs.get(c) == Some(id)),
                    "a pull answered LMIDs that are not its group's clients' current ones \
                     ({theirs:?})\n{}",
                    what()
                );
                // The patch takes the client from its cookie's state to the current one.
                let since = match pull.cookie {
                    Cookie::Null | Cookie::Unusable(_) => Some(0),
                    Cookie::Version(c) | Cookie::Signed { order: c, .. } => Some(c),
                };
                if unchanged && let Some(base) = since.and_then(|c| history.get(&c)) {
                    let patched = apply_patch(base, &resp["patch"]);
                    self.count(match since {
                        Some(0) => "pull patch checked from version 0",
                        _ => "pull patch checked from a later version",
                    });
                    ensure!(
                        patched.as_ref() == Some(&now),
                        "the patch does not take the cookie's state to the current one\n\
                         {}\nstate at the cookie {}\nstate now {}",
                        what(),
                        abbreviate(&format!("{base:?}")),
                        abbreviate(&format!("{now:?}"))
                    );
                }
                if let Cookie::Version(c) | Cookie::Signed { order: c, .. } = pull.cookie
                    && resp["cookie"]["order"] == c
                {
                    ensure!(
                        resp["patch"].as_array().is_some_and(Vec::is_empty)
                            && lmids(&resp).is_empty(),
                        "an answer under the presented cookie carries changes (the client \
                         ignores them)\n{}",
                        what()
                    );
                }
                if !unchanged {
                    let restored = matches!(req.body.cookie(), Some(CookieSel::SignedFuture(_)));
                    ensure!(
                        restored
                            && before["patch"] == after["patch"]
                            && before["lastMutationIDChanges"] == after["lastMutationIDChanges"]
                            && group_before.as_ref().map(lmids) == group_after.as_ref().map(lmids),
                        "a pull changed the space (only a signed cookie from the future may \
                         move its version)\n{}\n{}",
                        what(),
                        state_diff()
                    );
                }
            }
            RouteSel::CreateSpace => {
                ensure!(
                    resp["spaceID"]
                        .as_str()
                        .is_some_and(|s| SpaceId::parse(s).is_ok()),
                    "createSpace answers a spaceID\n{}",
                    what()
                );
                ensure!(unchanged, "createSpace changed another space\n{}", what());
            }
            RouteSel::SpaceExists => {
                ensure!(
                    resp["spaceExists"].is_boolean(),
                    "spaceExists answers a boolean\n{}",
                    what()
                );
                if matches!(req.body, Body::Space(Some(SpaceBodySel::Current))) {
                    ensure!(resp["spaceExists"] == true, "the space exists\n{}", what());
                }
                ensure!(unchanged, "spaceExists changed the space\n{}", what());
            }
            RouteSel::Unknown => {
                return Err(TestCaseError::fail(format!(
                    "an unknown path was answered 200\n{}",
                    what()
                )));
            }
        }
        Ok(())
    }
}
