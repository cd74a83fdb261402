//! Fuzzing of push and pull bodies and of mutator args through the API, over DynamoDB (a
//! local moto server, so few cases by default): see `store_conformance::fuzz`. More:
//! `FUZZ_CASES=200 cargo test -p store-dynamodb --test fuzz --release`.

mod support;

use std::sync::Arc;
use store_conformance::fuzz;

#[test]
fn fuzz_api_over_dynamodb_store() {
    let rt = fuzz::runtime();
    let fixture = rt.block_on(support::fixture("fuzz"));
    fuzz::run_fuzz_on(
        &rt,
        Arc::new(fixture.store.clone()),
        fuzz::cases_from_env(30),
    );
}
