//! A reference model of the protocol and a property-based test of the engine against it.
//!
//! [`run_model_test`] generates random sequences of [`Op`]s (pushes by two client groups
//! with correct, duplicate and future mutation IDs, valid and failing mutations, clients of
//! the other group, replays of earlier bodies; pulls by three groups with every kind of
//! cookie) and sends each one through the HTTP-level API ([`SyncService::handle`]) of a
//! service over the store under test, one fresh space per case. A [`Model`] applies the
//! same operations by the protocol's rules and keeps the state of every version, so that
//! each pull answer is checked against the model's state at the answer's cookie: the patch
//! applied to the state at the request's cookie must give exactly the model's entries, and
//! the LMID changes exactly the LMIDs of the group's clients that moved. proptest shrinks a
//! failing sequence to a minimal one and prints it.
//!
//! The rules the model implements (see PROTOCOL.md):
//! - A push whose mutations name a client of another group is refused (403), changing
//!   nothing. A client belongs to the group that first had one of its mutations processed.
//! - For each mutation in order: `expected = LMID + 1` (0 for an unknown client); a smaller
//!   ID is a duplicate, skipped; a larger one stops the push (what was processed before it
//!   stands) and the answer is `{"error":"ClientStateNotFound"}`; an equal one is applied,
//!   or fails permanently (bad args, unknown mutator: no effect), and the LMID becomes it.
//! - A push that processed anything moves the version by exactly 1.
//! - Pull with `null`: `clear` and a `put` per live entry, the LMIDs of all of the group's
//!   clients. With a cookie at or below the version (the object handed out, or its bare
//!   `order`): `put`/`del` of the keys written since, the group's LMIDs changed since.
//!   Above the version without this server's signature: 400 `InvalidCookie`, no change.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use sync_core::cookie::CookieKeys;
use sync_core::{ApiRequest, Store, SyncService};

/// Client groups: the first two push and pull, the last one only pulls.
pub const GROUPS: [&str; 3] = ["ga", "gb", "gc"];
/// The clients each pushing group normally uses.
pub const GROUP_CLIENTS: [&[&str]; 2] = [&["a1", "a2", "a3"], &["b1", "b2"]];
/// Every client, whatever its group: a push may name any of them.
pub const ALL_CLIENTS: [&str; 5] = ["a1", "a2", "a3", "b1", "b2"];
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
const COOKIE_SECRET: &str = "model-test-cookie-secret-0123456789abcdef";

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

/// One step of a test case. IDs and cookies are chosen relative to the state when the step
/// runs, so that a shrunk sequence keeps its meaning.
#[derive(Clone)]
pub enum Op {
    /// Does nothing: what shrinking turns the steps that do not matter into.
    Skip,
    /// A push by `GROUPS[group]`.
    Push {
        group: usize,
        mutations: Vec<MutationSpec>,
    },
    /// The body of an earlier push, byte for byte (counted back from the latest; nothing
    /// when no push was sent yet).
    Replay { back: usize },
    /// A pull by `GROUPS[reader]`.
    Pull { reader: usize, cookie: CookieChoice },
}

#[derive(Clone)]
pub struct MutationSpec {
    pub client: ClientRef,
    pub id: IdChoice,
    pub name: &'static str,
    pub args: Value,
}

#[derive(Debug, Clone, Copy)]
pub enum ClientRef {
    /// One of the pushing group's own clients (index modulo their number).
    Own(usize),
    /// Any client (index into [`ALL_CLIENTS`]), possibly one of the other group.
    Any(usize),
}

#[derive(Debug, Clone, Copy)]
pub enum IdChoice {
    /// The client's next ID: its LMID plus one, plus the `Next`s before it in this push.
    Next,
    /// `k` IDs back from that: a duplicate (omitted when it would be below 1). Its body is
    /// the one first sent with that ID, as a real client resends it.
    Dup(u64),
    /// `k` IDs past it: from the future.
    Gap(u64),
}

#[derive(Debug, Clone, Copy)]
pub enum CookieChoice {
    Null,
    /// The last cookie this reader got (`null` before its first answer).
    Last,
    /// The `k`-th latest cookie object this reader got, as handed out.
    Older(usize),
    /// The bare `order` of the `k`-th latest cookie this reader got (a legacy cookie).
    Legacy(usize),
    /// The `k`-th latest cookie object any reader got in this case.
    AnyReader(usize),
    /// A bare number at or below the version (`n` modulo version + 1).
    BareAtOrBelow(u64),
    /// Forged, from the future: a bare number `d` above the version.
    BareAbove(u64),
    /// Forged: 2^53 - 1.
    MaxSafe,
    /// Forged: the float 1e15.
    Exp15,
    /// Forged: 2^53, beyond what JavaScript represents exactly.
    TwoPow53,
    /// Forged: an object `d` above the version whose `sig` is made up, or copied from a
    /// real cookie of another order.
    ForgedAbove {
        ahead: u64,
        reuse_sig: bool,
    },
    /// An object at or below the version with a made-up `sig`: unspecified; the server may
    /// refuse it (400 InvalidCookie) or answer it as the real cookie of that order.
    ForgedAtOrBelow(u64),
    /// A number no server hands out (negative, fractional): above the version it must be
    /// refused; below, the server may refuse it or answer a reset.
    OddNumber(f64),
}

impl fmt::Debug for MutationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {:?} {}({})",
            self.client, self.id, self.name, self.args
        )
    }
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Skip => write!(f, "Skip"),
            Op::Push { group, mutations } => {
                write!(f, "Push {} [", GROUPS[*group])?;
                for (i, m) in mutations.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{m:?}")?;
                }
                write!(f, "]")
            }
            Op::Replay { back } => write!(f, "Replay {{ back: {back} }}"),
            Op::Pull { reader, cookie } => write!(f, "Pull {} {:?}", GROUPS[*reader], cookie),
        }
    }
}

/// The steps of a failing case, one a line, without the `Skip`s (indices are the steps'
/// positions in the case, as the failure message names them).
pub fn render(ops: &[Op]) -> String {
    ops.iter()
        .enumerate()
        .filter(|(_, op)| !matches!(op, Op::Skip))
        .map(|(i, op)| format!("  #{i}: {op:?}\n"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

fn delta() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (-5i64..=5).prop_map(|d| json!(d)),
        1 => prop::sample::select(vec![0.5, -0.25, 0.1, 2.5, 1e9, -3.75]).prop_map(|d| json!(d)),
    ]
}

fn item_key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "c", "é/ü", "k 1"])
}

fn item_value() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!(1),
        json!("x"),
        Value::Null,
        json!(true),
        json!(-7),
        json!(0.5),
        json!(""),
        json!([]),
        json!({"n": [1, 2, {"s": "ü"}], "f": 1.25}),
        json!("a \"quoted\" \\ string \u{1F600}"),
    ])
}

/// Mutations that must fail permanently: bad args or unknown mutators.
fn failing() -> impl Strategy<Value = (&'static str, Value)> {
    prop::sample::select(vec![
        ("increment", json!("1")),
        ("increment", Value::Null),
        ("increment", json!({"delta": 1})),
        ("increment", json!(true)),
        ("increment", json!([1])),
        ("setItem", json!({"key": "", "value": 1})),
        ("setItem", json!({"key": 5, "value": 1})),
        ("setItem", json!({"value": 1})),
        ("setItem", json!({"key": "a"})),
        ("setItem", json!("a")),
        ("deleteItem", json!({})),
        ("deleteItem", json!({"key": ""})),
        ("deleteItem", Value::Null),
        ("nope", json!(1)),
        ("Increment", json!(1)),
        ("", json!(1)),
    ])
}

fn body() -> impl Strategy<Value = (&'static str, Value)> {
    prop_oneof![
        4 => delta().prop_map(|d| ("increment", d)),
        3 => (item_key(), item_value())
            .prop_map(|(k, v)| ("setItem", json!({"key": k, "value": v}))),
        2 => item_key().prop_map(|k| ("deleteItem", json!({"key": k}))),
        1 => failing(),
    ]
}

fn mutation_spec() -> impl Strategy<Value = MutationSpec> {
    let client = prop_oneof![
        19 => (0usize..3).prop_map(ClientRef::Own),
        1 => (0usize..ALL_CLIENTS.len()).prop_map(ClientRef::Any),
    ];
    let id = prop_oneof![
        12 => Just(IdChoice::Next),
        3 => (1u64..=3).prop_map(IdChoice::Dup),
        1 => (1u64..=2).prop_map(IdChoice::Gap),
    ];
    (client, id, body()).prop_map(|(client, id, (name, args))| MutationSpec {
        client,
        id,
        name,
        args,
    })
}

/// A push as the tabs of one group send it: for each of a few clients, some of its already
/// processed mutations again and then new ones.
fn tabs_push() -> impl Strategy<Value = Op> {
    let segment = (
        0usize..3,
        0u64..=2,
        1usize..=3,
        prop::collection::vec(body(), 3),
    );
    (0usize..2, prop::collection::vec(segment, 1..=3)).prop_map(|(group, segments)| {
        let mut mutations = Vec::new();
        for (client, resend, new, bodies) in segments {
            for k in (1..=resend).rev() {
                mutations.push(MutationSpec {
                    client: ClientRef::Own(client),
                    id: IdChoice::Dup(k),
                    name: "increment",
                    args: json!(0),
                });
            }
            for (name, args) in bodies.into_iter().take(new) {
                mutations.push(MutationSpec {
                    client: ClientRef::Own(client),
                    id: IdChoice::Next,
                    name,
                    args,
                });
            }
        }
        Op::Push { group, mutations }
    })
}

fn cookie_choice() -> impl Strategy<Value = CookieChoice> {
    prop_oneof![
        3 => Just(CookieChoice::Null),
        6 => Just(CookieChoice::Last),
        3 => (0usize..4).prop_map(CookieChoice::Older),
        3 => (0usize..4).prop_map(CookieChoice::Legacy),
        2 => (0usize..6).prop_map(CookieChoice::AnyReader),
        1 => (0u64..8).prop_map(CookieChoice::BareAtOrBelow),
        1 => (1u64..=3).prop_map(CookieChoice::BareAbove),
        1 => Just(CookieChoice::MaxSafe),
        1 => Just(CookieChoice::Exp15),
        1 => Just(CookieChoice::TwoPow53),
        1 => (1u64..=3, any::<bool>())
            .prop_map(|(ahead, reuse_sig)| CookieChoice::ForgedAbove { ahead, reuse_sig }),
        1 => (0u64..8).prop_map(CookieChoice::ForgedAtOrBelow),
        1 => prop::sample::select(vec![-1.0, 0.5, 1.5, 2.5]).prop_map(CookieChoice::OddNumber),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // First, so that shrinking turns the steps that do not matter into it.
        1 => Just(Op::Skip),
        30 => (0usize..2, prop::collection::vec(mutation_spec(), 0..=6))
            .prop_map(|(group, mutations)| Op::Push { group, mutations }),
        10 => tabs_push(),
        6 => (0usize..8).prop_map(|back| Op::Replay { back }),
        35 => (0usize..3, cookie_choice()).prop_map(|(reader, cookie)| Op::Pull { reader, cookie }),
    ]
}

/// Test cases: 10 to 40 steps.
pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 10..=40)
}

// ---------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------

/// The state of a space at one version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub entries: BTreeMap<String, Value>,
    pub lmids: BTreeMap<String, u64>,
    pub group_of: BTreeMap<String, String>,
}

impl Snapshot {
    /// The LMIDs of `group`'s clients.
    pub fn group_lmids(&self, group: &str) -> BTreeMap<String, u64> {
        self.lmids
            .iter()
            .filter(|(c, _)| self.group_of.get(*c).map(String::as_str) == Some(group))
            .map(|(c, l)| (c.clone(), *l))
            .collect()
    }
}

/// A mutation as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMutation {
    pub client: String,
    pub id: u64,
    pub name: String,
    pub args: Value,
}

/// What the server must answer a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushExpect {
    /// 200 `{}`.
    Ok,
    /// 200 `{"error":"ClientStateNotFound"}`.
    ClientStateNotFound,
    /// 403.
    Forbidden,
}

/// What a push did in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushReport {
    pub expect: PushExpect,
    pub applied: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// What a pull's answer is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// `clear`, then every live entry; all the group's LMIDs.
    Reset,
    /// The changes since this version.
    Since(u64),
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    /// `history[v]` is the state at version `v`.
    pub history: Vec<Snapshot>,
    /// The version of each key's last write (a delete counts, even of an absent key).
    pub written_at: BTreeMap<String, u64>,
    /// The body of every processed mutation, by client and ID.
    pub processed: HashMap<(String, u64), (String, Value)>,
}

impl Model {
    pub fn new() -> Self {
        Self {
            history: vec![Snapshot::default()],
            ..Self::default()
        }
    }

    pub fn version(&self) -> u64 {
        self.history.len() as u64 - 1
    }

    pub fn current(&self) -> &Snapshot {
        self.history.last().expect("history starts with version 0")
    }

    pub fn lmid(&self, client: &str) -> u64 {
        self.current().lmids.get(client).copied().unwrap_or(0)
    }

    /// Applies a push by `group`.
    pub fn push(&mut self, group: &str, mutations: &[SentMutation]) -> PushReport {
        let mut report = PushReport {
            expect: PushExpect::Ok,
            applied: 0,
            failed: 0,
            skipped: 0,
        };
        let current = self.current();
        if mutations.iter().any(|m| {
            current
                .group_of
                .get(&m.client)
                .is_some_and(|g| g.as_str() != group)
        }) {
            report.expect = PushExpect::Forbidden;
            return report;
        }
        let mut next = current.clone();
        let mut written = Vec::new();
        for m in mutations {
            let expected = next.lmids.get(&m.client).copied().unwrap_or(0) + 1;
            if m.id < expected {
                report.skipped += 1;
                continue;
            }
            if m.id > expected {
                report.expect = PushExpect::ClientStateNotFound;
                break;
            }
            match mutate(&next.entries, &m.name, &m.args) {
                Some(writes) => {
                    report.applied += 1;
                    for (key, value) in writes {
                        match value {
                            Some(v) => next.entries.insert(key.clone(), v),
                            None => next.entries.remove(&key),
                        };
                        written.push(key);
                    }
                }
                None => report.failed += 1,
            }
            next.lmids.insert(m.client.clone(), m.id);
            next.group_of
                .entry(m.client.clone())
                .or_insert_with(|| group.to_owned());
            self.processed
                .entry((m.client.clone(), m.id))
                .or_insert_with(|| (m.name.clone(), m.args.clone()));
        }
        if report.applied + report.failed > 0 {
            let version = self.history.len() as u64;
            for key in written {
                self.written_at.insert(key, version);
            }
            self.history.push(next);
        }
        report
    }

    /// Checks a 200 pull answer for `group` against the model; returns the answer's cookie.
    pub fn check_pull(&self, group: &str, base: Base, resp: &Value) -> Result<Value, String> {
        let obj = resp.as_object().ok_or("the answer is not an object")?;
        for field in obj.keys() {
            if !["cookie", "lastMutationIDChanges", "patch"].contains(&field.as_str()) {
                return Err(format!("unexpected field `{field}`"));
            }
        }
        let cookie = obj.get("cookie").ok_or("no cookie")?;
        let order = cookie
            .get("order")
            .and_then(Value::as_u64)
            .ok_or("the cookie has no integer `order`")?;
        if !cookie.get("sig").is_some_and(Value::is_string)
            || cookie.as_object().unwrap().len() != 2
        {
            return Err("the cookie is not {order, sig}".into());
        }
        if order != self.version() {
            return Err(format!(
                "the cookie's order is {order}, the model's version {}",
                self.version()
            ));
        }
        let at = &self.history[order as usize];
        let (mut state, base_lmids) = match base {
            Base::Reset => (BTreeMap::new(), BTreeMap::new()),
            Base::Since(o) => {
                let then = &self.history[o as usize];
                (then.entries.clone(), then.group_lmids(group))
            }
        };
        let patch = obj
            .get("patch")
            .and_then(Value::as_array)
            .ok_or("no patch array")?;
        let mut seen = BTreeSet::new();
        for (i, op) in patch.iter().enumerate() {
            let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
            if kind == "clear" {
                if base != Base::Reset || i != 0 {
                    return Err(format!("unexpected clear at patch[{i}]"));
                }
                continue;
            }
            if base == Base::Reset && i == 0 {
                return Err("a reset that does not start with clear".into());
            }
            let key = op
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("patch[{i}] has no key: {op}"))?;
            if !seen.insert(key.to_owned()) {
                return Err(format!("key {key:?} twice in the patch"));
            }
            if let Base::Since(o) = base
                && self.written_at.get(key).is_none_or(|v| *v <= o)
            {
                return Err(format!("patch[{i}] {op}: key not written since {o}"));
            }
            match kind {
                "put" => {
                    let value = op
                        .get("value")
                        .ok_or_else(|| format!("patch[{i}] put without value"))?;
                    state.insert(key.to_owned(), value.clone());
                }
                "del" if base != Base::Reset => {
                    state.remove(key);
                }
                _ => return Err(format!("unexpected patch[{i}]: {op}")),
            }
        }
        if base == Base::Reset && patch.is_empty() {
            return Err("a reset without clear".into());
        }
        if state != at.entries {
            return Err(format!(
                "entries after the patch: {}\nthe model's at version {order}: {}",
                json!(state),
                json!(at.entries)
            ));
        }
        let changes: BTreeMap<String, u64> = serde_json::from_value(
            obj.get("lastMutationIDChanges")
                .cloned()
                .ok_or("no lastMutationIDChanges")?,
        )
        .map_err(|e| format!("lastMutationIDChanges: {e}"))?;
        let expected: BTreeMap<String, u64> = at
            .group_lmids(group)
            .into_iter()
            .filter(|(c, l)| base_lmids.get(c) != Some(l))
            .collect();
        if changes != expected {
            return Err(format!(
                "lastMutationIDChanges {}, the model's {} (the group's LMIDs at {order}: {})",
                json!(changes),
                json!(expected),
                json!(at.group_lmids(group))
            ));
        }
        Ok(cookie.clone())
    }
}

/// A mutator's writes (`None` value: delete), or `None` when it fails permanently.
fn mutate(
    entries: &BTreeMap<String, Value>,
    name: &str,
    args: &Value,
) -> Option<Vec<(String, Option<Value>)>> {
    let item_key = || match args.get("key") {
        Some(Value::String(k)) if !k.is_empty() => Some(format!("item/{k}")),
        _ => None,
    };
    match name {
        "increment" => {
            let delta = args.as_f64().filter(|d| d.is_finite())?;
            let count = match entries.get("count") {
                None => 0.0,
                Some(v) => v.as_f64()?,
            };
            let next = count + delta;
            next.is_finite()
                .then(|| vec![("count".to_owned(), Some(number(next)))])
        }
        "setItem" => {
            let key = item_key()?;
            let value = args.get("value")?.clone();
            Some(vec![(key, Some(value))])
        }
        "deleteItem" => Some(vec![(item_key()?, None)]),
        _ => None,
    }
}

/// Integral numbers as integers, as JavaScript prints them.
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER as f64 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

// ---------------------------------------------------------------------------------------
// Running a case against the service
// ---------------------------------------------------------------------------------------

/// What the cases exercised, to show that the generator reaches every rule.
#[derive(Debug, Default)]
pub struct Coverage {
    pub pushes: AtomicU64,
    pub pushes_committed: AtomicU64,
    pub pushes_all_duplicates: AtomicU64,
    pub client_state_not_found: AtomicU64,
    pub forbidden: AtomicU64,
    pub replays: AtomicU64,
    pub mutations_applied: AtomicU64,
    pub mutations_failed: AtomicU64,
    pub duplicates_skipped: AtomicU64,
    pub multi_client_pushes: AtomicU64,
    pub pulls_reset: AtomicU64,
    pub pulls_since: AtomicU64,
    pub pulls_since_older: AtomicU64,
    pub pulls_refused: AtomicU64,
    pub pulls_either_refused: AtomicU64,
    pub pulls_either_answered: AtomicU64,
    pub max_version: AtomicU64,
}

impl Coverage {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        write!(
            f,
            "pushes {} (committed {}, all duplicates {}, ClientStateNotFound {}, 403 {}, \
             replays {}, several clients {}); mutations applied {}, failed {}, duplicates \
             skipped {}; pulls reset {}, incremental {} (from an older version {}), refused \
             {}, unspecified cookie refused {} / answered {}; highest version {}",
            n(&self.pushes),
            n(&self.pushes_committed),
            n(&self.pushes_all_duplicates),
            n(&self.client_state_not_found),
            n(&self.forbidden),
            n(&self.replays),
            n(&self.multi_client_pushes),
            n(&self.mutations_applied),
            n(&self.mutations_failed),
            n(&self.duplicates_skipped),
            n(&self.pulls_reset),
            n(&self.pulls_since),
            n(&self.pulls_since_older),
            n(&self.pulls_refused),
            n(&self.pulls_either_refused),
            n(&self.pulls_either_answered),
            n(&self.max_version),
        )
    }
}

/// What the runner keeps besides the model.
struct Case<'a> {
    svc: &'a SyncService,
    coverage: &'a Coverage,
    space: String,
    model: Model,
    /// Every push sent: group, mutations, body.
    pushes: Vec<(usize, Vec<SentMutation>, Vec<u8>)>,
    /// Cookies each reader got, oldest first.
    cookies: [Vec<Value>; 3],
    /// Cookies any reader got, oldest first.
    all_cookies: Vec<Value>,
}

/// What a pull's cookie must get.
#[derive(Debug, Clone, Copy)]
enum PullExpect {
    Answer(Base),
    Refused,
    /// Unspecified: refused, or answered as `Base`.
    Either(Base),
}

impl<'a> Case<'a> {
    async fn call(&self, route: &str, body: &[u8]) -> (u16, Value) {
        let resp = self
            .svc
            .handle(ApiRequest {
                method: "POST",
                path: &format!("/api/replicache/{route}"),
                space_id: Some(&self.space),
                body,
                accepts_gzip: false,
                user: "",
            })
            .await;
        let body = resp
            .json_body()
            .unwrap_or_else(|| json!({"unreadable": String::from_utf8_lossy(&resp.body)}));
        (resp.status, body)
    }

    async fn start(svc: &'a SyncService, coverage: &'a Coverage) -> Result<Case<'a>, String> {
        let resp = svc
            .handle(ApiRequest {
                method: "POST",
                path: "/api/replicache/createSpace",
                space_id: None,
                body: b"{}",
                accepts_gzip: false,
                user: "",
            })
            .await;
        let body = resp.json_body().unwrap_or(Value::Null);
        let space = match (resp.status, body.get("spaceID").and_then(Value::as_str)) {
            (200, Some(space)) => space.to_owned(),
            _ => return Err(format!("createSpace: {} {body}", resp.status)),
        };
        Ok(Case {
            svc,
            coverage,
            space,
            model: Model::new(),
            pushes: Vec::new(),
            cookies: Default::default(),
            all_cookies: Vec::new(),
        })
    }

    async fn run(&mut self, ops: &[Op]) -> Result<(), String> {
        for (i, op) in ops.iter().enumerate() {
            self.step(op)
                .await
                .map_err(|e| format!("step #{i} ({op:?}): {e}"))?;
        }
        // Every reader checks the final state, from scratch and from its last cookie.
        for (reader, group) in GROUPS.iter().enumerate() {
            for cookie in [CookieChoice::Null, CookieChoice::Last] {
                self.pull(reader, cookie)
                    .await
                    .map_err(|e| format!("final pull by {group} {cookie:?}: {e}"))?;
            }
        }
        Ok(())
    }

    async fn step(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Skip => Ok(()),
            Op::Push { group, mutations } => {
                let sent = self.resolve(*group, mutations);
                let body = serde_json::to_vec(&json!({
                    "pushVersion": 1,
                    "clientGroupID": GROUPS[*group],
                    "profileID": "p",
                    "schemaVersion": "",
                    "mutations": sent.iter().map(|m| json!({
                        "clientID": m.client, "id": m.id, "name": m.name, "args": m.args,
                        "timestamp": 0,
                    })).collect::<Vec<_>>(),
                }))
                .expect("a JSON body");
                self.push(*group, sent, body).await
            }
            Op::Replay { back } => {
                if self.pushes.is_empty() {
                    return Ok(());
                }
                Coverage::add(&self.coverage.replays, 1);
                let (group, sent, body) =
                    self.pushes[self.pushes.len() - 1 - back % self.pushes.len()].clone();
                self.push(group, sent, body).await
            }
            Op::Pull { reader, cookie } => self.pull(*reader, *cookie).await,
        }
    }

    /// The mutations a push sends, with IDs relative to the model's LMIDs.
    fn resolve(&self, group: usize, specs: &[MutationSpec]) -> Vec<SentMutation> {
        let mut cursor: HashMap<&str, u64> = HashMap::new();
        let mut sent: Vec<SentMutation> = Vec::new();
        for spec in specs {
            let client = match spec.client {
                ClientRef::Own(i) => GROUP_CLIENTS[group][i % GROUP_CLIENTS[group].len()],
                ClientRef::Any(i) => ALL_CLIENTS[i % ALL_CLIENTS.len()],
            };
            let at = cursor
                .entry(client)
                .or_insert_with(|| self.model.lmid(client));
            let id = match spec.id {
                IdChoice::Next => {
                    *at += 1;
                    *at
                }
                IdChoice::Dup(k) if *at + 1 > k => *at + 1 - k,
                IdChoice::Dup(_) => continue,
                IdChoice::Gap(k) => *at + 1 + k,
            };
            let (name, args) = match spec.id {
                // A duplicate carries the body first sent with its ID.
                IdChoice::Dup(_) => self
                    .model
                    .processed
                    .get(&(client.to_owned(), id))
                    .cloned()
                    .or_else(|| {
                        sent.iter()
                            .find(|m| m.client == client && m.id == id)
                            .map(|m| (m.name.clone(), m.args.clone()))
                    })
                    .unwrap_or_else(|| (spec.name.to_owned(), spec.args.clone())),
                _ => (spec.name.to_owned(), spec.args.clone()),
            };
            sent.push(SentMutation {
                client: client.to_owned(),
                id,
                name,
                args,
            });
        }
        sent
    }

    async fn push(
        &mut self,
        group: usize,
        sent: Vec<SentMutation>,
        body: Vec<u8>,
    ) -> Result<(), String> {
        let before = self.model.version();
        let report = self.model.push(GROUPS[group], &sent);
        let expect = report.expect;
        let c = self.coverage;
        Coverage::add(&c.pushes, 1);
        Coverage::add(&c.mutations_applied, report.applied);
        Coverage::add(&c.mutations_failed, report.failed);
        Coverage::add(&c.duplicates_skipped, report.skipped);
        let processed = report.applied + report.failed;
        Coverage::add(&c.pushes_committed, u64::from(processed > 0));
        let all_duplicates = !sent.is_empty() && report.skipped == sent.len() as u64;
        Coverage::add(&c.pushes_all_duplicates, u64::from(all_duplicates));
        let clients: BTreeSet<&str> = sent.iter().map(|m| m.client.as_str()).collect();
        Coverage::add(&c.multi_client_pushes, u64::from(clients.len() > 1));
        match expect {
            PushExpect::Ok => {}
            PushExpect::ClientStateNotFound => Coverage::add(&c.client_state_not_found, 1),
            PushExpect::Forbidden => Coverage::add(&c.forbidden, 1),
        }
        c.max_version
            .fetch_max(self.model.version(), Ordering::Relaxed);
        let (status, resp) = self.call("push", &body).await;
        let ok = match expect {
            PushExpect::Ok => status == 200 && resp == json!({}),
            PushExpect::ClientStateNotFound => {
                status == 200 && resp == json!({"error": "ClientStateNotFound"})
            }
            PushExpect::Forbidden => status == 403 && resp["error"] == "Forbidden",
        };
        self.pushes.push((group, sent, body.clone()));
        if !ok {
            return Err(format!(
                "push {}\nanswered {status} {resp}\nthe model expects {expect:?} (version {before} -> {})",
                String::from_utf8_lossy(&body),
                self.model.version()
            ));
        }
        Ok(())
    }

    /// The cookie to send and what it must get.
    fn cookie(&self, reader: usize, choice: CookieChoice) -> (Value, PullExpect) {
        let version = self.model.version();
        let nth_latest = |list: &[Value], k: usize| -> Option<Value> {
            (!list.is_empty()).then(|| list[list.len() - 1 - k % list.len()].clone())
        };
        let order = |c: &Value| c["order"].as_u64().expect("cookies checked have an order");
        let mine = &self.cookies[reader];
        let handed_out = |c: Option<Value>| match c {
            Some(c) => {
                let o = order(&c);
                (c, PullExpect::Answer(Base::Since(o)))
            }
            None => (Value::Null, PullExpect::Answer(Base::Reset)),
        };
        match choice {
            CookieChoice::Null => (Value::Null, PullExpect::Answer(Base::Reset)),
            CookieChoice::Last => handed_out(mine.last().cloned()),
            CookieChoice::Older(k) => handed_out(nth_latest(mine, k)),
            CookieChoice::Legacy(k) => match nth_latest(mine, k) {
                Some(c) => (json!(order(&c)), PullExpect::Answer(Base::Since(order(&c)))),
                None => (Value::Null, PullExpect::Answer(Base::Reset)),
            },
            CookieChoice::AnyReader(k) => handed_out(nth_latest(&self.all_cookies, k)),
            CookieChoice::BareAtOrBelow(n) => {
                let n = n % (version + 1);
                (json!(n), PullExpect::Answer(Base::Since(n)))
            }
            CookieChoice::BareAbove(d) => (json!(version + d), PullExpect::Refused),
            CookieChoice::MaxSafe => (json!(MAX_SAFE_INTEGER), PullExpect::Refused),
            CookieChoice::Exp15 => (json!(1e15), PullExpect::Refused),
            CookieChoice::TwoPow53 => (json!(MAX_SAFE_INTEGER + 1), PullExpect::Refused),
            CookieChoice::ForgedAbove { ahead, reuse_sig } => {
                let sig = match self.all_cookies.last() {
                    Some(c) if reuse_sig => c["sig"].clone(),
                    _ => json!("AAAAAAAAAAAAAAAAAAAAAA"),
                };
                (
                    json!({"order": version + ahead, "sig": sig}),
                    PullExpect::Refused,
                )
            }
            CookieChoice::ForgedAtOrBelow(n) => {
                let n = n % (version + 1);
                (
                    json!({"order": n, "sig": "AAAAAAAAAAAAAAAAAAAAAA"}),
                    PullExpect::Either(Base::Since(n)),
                )
            }
            CookieChoice::OddNumber(f) => {
                let expect = if f > version as f64 {
                    PullExpect::Refused
                } else {
                    PullExpect::Either(Base::Reset)
                };
                (json!(f), expect)
            }
        }
    }

    async fn pull(&mut self, reader: usize, choice: CookieChoice) -> Result<(), String> {
        let (cookie, expect) = self.cookie(reader, choice);
        let group = GROUPS[reader];
        let body = serde_json::to_vec(&json!({
            "pullVersion": 1,
            "clientGroupID": group,
            "profileID": "p",
            "schemaVersion": "",
            "cookie": cookie,
        }))
        .expect("a JSON body");
        let (status, resp) = self.call("pull", &body).await;
        let context = || {
            format!(
                "pull {}\nanswered {status} {resp}\nthe model is at version {} with {}",
                String::from_utf8_lossy(&body),
                self.model.version(),
                json!({"entries": self.model.current().entries,
                       "lmids": self.model.current().lmids,
                       "groups": self.model.current().group_of}),
            )
        };
        let refused = status == 400 && resp["error"] == "InvalidCookie";
        let c = self.coverage;
        let base = match expect {
            PullExpect::Refused if refused => {
                Coverage::add(&c.pulls_refused, 1);
                return Ok(());
            }
            PullExpect::Either(_) if refused => {
                Coverage::add(&c.pulls_either_refused, 1);
                return Ok(());
            }
            PullExpect::Refused => {
                return Err(format!(
                    "expected 400 InvalidCookie (a forged cookie above the version)\n{}",
                    context()
                ));
            }
            PullExpect::Answer(base) | PullExpect::Either(base) => base,
        };
        if status != 200 {
            return Err(format!("expected 200 ({base:?})\n{}", context()));
        }
        let cookie = self
            .model
            .check_pull(group, base, &resp)
            .map_err(|e| format!("{e}\nexpected {base:?}\n{}", context()))?;
        match (expect, base) {
            (PullExpect::Either(_), _) => Coverage::add(&c.pulls_either_answered, 1),
            (_, Base::Reset) => Coverage::add(&c.pulls_reset, 1),
            (_, Base::Since(o)) => {
                Coverage::add(&c.pulls_since, 1);
                Coverage::add(&c.pulls_since_older, u64::from(o < self.model.version()));
            }
        }
        self.cookies[reader].push(cookie.clone());
        self.all_cookies.push(cookie);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------

/// `PROPTEST_CASES` when set, else `default`.
pub fn model_cases(default: u32) -> u32 {
    crate::cases_from_env("PROPTEST_CASES", default)
}

pub use crate::runtime;

/// A service over `store` as the model test drives it.
pub fn service(store: Arc<dyn Store>) -> SyncService {
    SyncService::new(
        store,
        Arc::new(sync_core::mutators::app::registry()),
        Arc::new(sync_core::poke::NoPoker),
    )
    .with_cookie_keys(CookieKeys::from_secret_text(COOKIE_SECRET).expect("a valid secret"))
}

/// Runs one sequence of steps in a fresh space; `Err` describes the first disagreement.
pub async fn run_case(svc: &SyncService, coverage: &Coverage, ops: &[Op]) -> Result<(), String> {
    let mut case = Case::start(svc, coverage).await?;
    case.run(ops).await
}

/// Runs `cases` random cases against `store` (one fresh space each), on `rt`; panics with
/// the minimal failing sequence proptest shrank to when the server and the model disagree.
/// `PROPTEST_RNG_SEED` replays a run (the seed is printed on failure).
pub fn run_model_test(rt: &tokio::runtime::Runtime, store: Arc<dyn Store>, cases: u32) {
    let svc = service(store);
    let mut config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let seed = match config.rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => rand::random(),
    };
    config.rng_seed = RngSeed::Fixed(seed);
    if config.max_shrink_time == 0 {
        config.max_shrink_time = 300_000;
    }
    let started = Instant::now();
    let coverage = Coverage::default();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&ops(), |ops| {
        rt.block_on(run_case(&svc, &coverage, &ops))
            .map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => eprintln!(
            "model test: {cases} cases passed in {:.1} s (PROPTEST_RNG_SEED={seed})\n{coverage}",
            started.elapsed().as_secs_f64()
        ),
        Err(TestError::Fail(reason, minimal)) => panic!(
            "the server disagrees with the model (PROPTEST_RNG_SEED={seed} \
             PROPTEST_CASES={cases} reproduces this run).\nMinimal case:\n{}\n{reason}",
            render(&minimal)
        ),
        Err(TestError::Abort(reason)) => panic!("model test aborted: {reason}"),
    }
}
