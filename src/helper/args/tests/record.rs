//! `--record PATH --role proxy|app`: both or neither, an absolute path of any characters.

use super::*;
use crate::drain_record::RecordRole;

#[test]
fn a_path_and_a_role_in_any_order_and_form() {
    let record = |args: &[&str]| {
        let mut all = vec!["--delay", "10"];
        all.extend_from_slice(args);
        prestop(&all).record
    };
    assert_eq!(record(&[]), None);
    assert_eq!(
        record(&["--record", "/dev/termination-log", "--role", "app"]),
        Some(RecordArgs {
            path: "/dev/termination-log".into(),
            role: RecordRole::App
        })
    );
    assert_eq!(
        record(&["--role=proxy", "--record=/tmp/a b=c/ü --x"]),
        Some(RecordArgs {
            path: "/tmp/a b=c/ü --x".into(),
            role: RecordRole::Proxy
        })
    );
    // A value that looks like a flag is still the path, given as its own argument.
    let long = format!("/{}", "d".repeat(MAX_RECORD_PATH_BYTES - 1));
    assert_eq!(
        record(&["--record", &long, "--role", "app"]).map(|r| r.path),
        Some(long.into())
    );
}

#[test]
fn errors_name_the_flag_and_the_fix() {
    let too_long = format!("/{}", "d".repeat(MAX_RECORD_PATH_BYTES));
    let cases: [(&[&str], &str); 8] = [
        (&["--record", "/x"], "--record needs --role proxy|app"),
        (&["--role", "app"], "give --record PATH with it"),
        (
            &["--record", "x", "--role", "app"],
            "--record \"x\" is not an absolute path: give the container's terminationMessagePath",
        ),
        (
            &["--record", "", "--role", "app"],
            "is not an absolute path",
        ),
        (&["--record", &too_long, "--role", "app"], "over the 4095"),
        (
            &["--record", "/x", "--role", "db"],
            "--role \"db\" is not proxy or app",
        ),
        (
            &["--record", "/x", "--record", "/y", "--role", "app"],
            "--record given more than once",
        ),
        (&["--record"], "--record: missing value"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["prestop", "--delay", "10"];
        all.extend_from_slice(args);
        let message = error(&all);
        assert!(message.contains(expected), "{args:?}: {message}");
    }
}

#[test]
fn a_nul_byte_is_a_problem_the_planner_can_ask_about() {
    assert_eq!(record_path_problem("/dev/termination-log"), None);
    assert!(record_path_problem("/a\0b").unwrap().contains("NUL"));
    assert!(
        record_path_problem("rel/ative")
            .unwrap()
            .contains("absolute")
    );
}
