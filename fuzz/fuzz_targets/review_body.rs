//! Any bytes as the body of `POST /mutate`, through `Reviewer::review` (everything the
//! server does after reading the body). The invariants: tests/common/invariants.rs,
//! `check_review`.
#![no_main]

use drain_webhook::admission::Reviewer;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/invariants.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the cluster version the planner sees; the rest is the body.
    let (kube, body) = match data.split_first() {
        Some((selector, rest)) => (
            match selector % 3 {
                0 => None,
                1 => "1.28".parse().ok(),
                _ => "1.34".parse().ok(),
            },
            rest,
        ),
        None => (None, data),
    };
    let reviewer = Reviewer {
        kube_version: kube,
        ..Reviewer::for_tests()
    };
    if let Err(violation) = invariants::check_review(&reviewer, body) {
        panic!("invariant violated: {violation}");
    }
});
