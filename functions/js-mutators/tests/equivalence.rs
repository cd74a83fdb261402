//! The same `client/src/mutators.js` in Node (as a browser runs it, over a transaction on
//! an in-memory sorted map: tests/equivalence.mjs) and on the server (this crate's engine
//! through the push engine over sync-core's in-memory store) gives the same outcome for
//! every mutation and the same final state, over hundreds of random cases: random
//! arguments (valid and not), random starting states, floats (0.1+0.2, 1e300, -0, 5e-324,
//! 2^53+2), unicode with astral characters in keys and values, nesting up to the depth
//! limit, deletes and scans (`sumItems` adds floats in scan order, so the orders must
//! agree too).

mod common;

use common::*;
use js_mutators::JsMutators;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use sync_core::memory_store::MemoryStore;
use sync_core::mutators::{MutationError, Mutator};
use sync_core::tx::Tx;
use sync_core::{Registry, Store};

const CASES: usize = 400;
const SEEDS: [u32; 2] = [1, 20261130];

/// Sets the space's starting state: `args` is an object of key to value.
struct Seed;

#[async_trait::async_trait]
impl Mutator for Seed {
    async fn run(&self, tx: &mut Tx<'_>, args: &Value) -> Result<(), MutationError> {
        for (key, value) in args.as_object().into_iter().flatten() {
            tx.put(key, value.clone())?;
        }
        Ok(())
    }
}

/// A JavaScript mutator whose outcomes are written down, in order.
struct Recorded {
    inner: js_mutators::JsMutator,
    outcomes: Arc<Mutex<Vec<bool>>>,
}

#[async_trait::async_trait]
impl Mutator for Recorded {
    async fn run(&self, tx: &mut Tx<'_>, args: &Value) -> Result<(), MutationError> {
        let outcome = self.inner.run(tx, args).await;
        self.outcomes.lock().unwrap().push(outcome.is_ok());
        outcome
    }
}

fn node_cases(seed: u32) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/equivalence.mjs");
    let out = Command::new("node")
        .arg(script)
        .arg(seed.to_string())
        .arg(CASES.to_string())
        .output()
        .expect("run node (the test command needs it)");
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Value = serde_json::from_slice(&out.stdout).expect("node prints JSON");
    all["cases"].as_array().expect("cases").clone()
}

/// Numbers as JavaScript has them: one kind, a double (`3` and `3.0` are the same).
fn js_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| js_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| js_equal(v, w)))
        }
        _ => a == b,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_server_agree_on_random_cases() {
    let js = JsMutators::load(js_mutators::app::SOURCE, test_config(1)).expect("load");
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let registry = js
        .names()
        .iter()
        .fold(Registry::new().with("__seed", Seed), |r, name| {
            r.with(
                name,
                Recorded {
                    inner: js.mutator(name).expect("a mutator"),
                    outcomes: outcomes.clone(),
                },
            )
        });
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let svc = service(store.clone(), registry);
    let mut checked = 0;
    let mut failures = 0;
    for seed in SEEDS {
        for (n, case) in node_cases(seed).iter().enumerate() {
            let space = new_space(store.as_ref(), &format!("eq{seed}x{n}")).await;
            let mut mutations = vec![("__seed", case["initial"].clone())];
            for m in case["mutations"].as_array().expect("mutations") {
                mutations.push((m["name"].as_str().expect("a name"), m["args"].clone()));
            }
            outcomes.lock().unwrap().clear();
            assert_eq!(push(&svc, &space, 1, &mutations).await, 200);
            let ok: Vec<Value> = outcomes.lock().unwrap().iter().map(|&b| b.into()).collect();
            let expected_state: BTreeMap<String, Value> = case["state"]
                .as_object()
                .expect("a state")
                .clone()
                .into_iter()
                .collect();
            let got = state(store.as_ref(), &space).await;
            let same_state = got.len() == expected_state.len()
                && got
                    .iter()
                    .all(|(k, v)| expected_state.get(k).is_some_and(|w| js_equal(v, w)));
            assert!(
                Value::Array(ok.clone()) == case["ok"] && same_state,
                "seed {seed} case {n} differs:\n{case}\nserver outcomes {ok:?}\nserver state {got:?}"
            );
            failures += ok.iter().filter(|b| *b == &Value::Bool(false)).count();
            checked += 1;
        }
    }
    assert_eq!(checked, SEEDS.len() * CASES);
    // The cases do exercise failures (invalid arguments, overflows, non-number counts).
    assert!(failures > 50, "only {failures} failed mutations");
}
