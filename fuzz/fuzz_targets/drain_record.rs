//! Any bytes as a container's termination message, through the drain-record parser the
//! observer runs on every terminated container of a planned pod. The invariants:
//! tests/common/invariants.rs, `check_drain_record` (never a panic, oversized messages
//! refused, a record read back round-trips through the line the helper writes).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/invariants.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = invariants::check_drain_record(data) {
        panic!("invariant violated: {violation}");
    }
});
