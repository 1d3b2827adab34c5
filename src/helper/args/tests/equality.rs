//! The hand-written comparisons of the helper's arguments.

use super::*;

/// The hand-written comparisons (they skip `memcmp` for empty lists) still tell apart
/// arguments that differ in any one option, and still find equal ones equal: the planner's
/// memo of checked commands depends on both.
#[test]
fn arguments_that_differ_in_one_option_are_not_equal() {
    let args = |quiet: &'static str, hold_max: &'static str, max: &'static str, extra: &[&str]| {
        let mut all = vec![
            "--delay",
            "10",
            "--quiet",
            quiet,
            "--hold-max",
            hold_max,
            "--max",
            max,
        ];
        all.extend_from_slice(extra);
        prestop(&all)
    };
    let with = |extra: &[&str]| args("3", "60", "80", extra);
    let plain = with(&[]);
    assert_eq!(plain, with(&[]));
    assert!(same_list::<u16>(&[], &[]));
    assert!(!same_list(&[], &[1u16]));
    assert!(!same_list(&[2u32], &[1]));
    let variants = [
        with(&["--probe-every", "10"]),
        with(&["--migrate", "SIGHUP"]),
        with(&["--wait-idle", "8080"]),
        with(&["--notify", "http://127.0.0.1:8080/drain"]),
        with(&["--signal", "SIGQUIT"]),
        with(&["--signal", "SIGQUIT", "--fast-signal", "SIGTERM"]),
        with(&["--then-http-get", "http://127.0.0.1:8080/stop"]),
        with(&["--then-exec", "--", "/stop"]),
        with(&["--record", "/dev/termination-log", "--role", "app"]),
        with(&["--stagger", "5"]),
        args("3", "61", "80", &[]),
        args("3", "60", "81", &[]),
        args("4", "60", "80", &[]),
    ];
    for (i, variant) in variants.iter().enumerate() {
        assert_ne!(*variant, plain, "variant {i}");
        assert_eq!(*variant, variant.clone(), "variant {i}");
        for (j, other) in variants.iter().enumerate().filter(|&(j, _)| j != i) {
            assert_ne!(variant, other, "variants {i} and {j}");
        }
    }
}
