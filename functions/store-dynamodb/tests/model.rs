//! The engine against the protocol's reference model (see `store_conformance::model`), on
//! a fresh table of a real DynamoDB-compatible server (moto). Requests to moto take
//! milliseconds each, so the default number of cases is small; `PROPTEST_CASES` overrides
//! it.

mod support;

use std::sync::Arc;
use store_conformance::model::{model_cases, run_model_test, runtime};

#[test]
fn dynamo_store_matches_the_model() {
    let rt = runtime();
    let fixture = rt.block_on(support::fixture("model"));
    run_model_test(&rt, Arc::new(fixture.store.clone()), model_cases(24));
    drop(fixture);
}
