//! The drain record with the real drain-helper binary: what it appends to the termination
//! message file (`--record PATH --role proxy|app`), read back with the observer's own parser
//! (`drain_record::parse_message`), and that a path it cannot write never changes the hook's
//! exit status. Time assertions are generous bounds (the build machine is busy).

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use drain_webhook::drain_record::{DrainRecord, EndReason, RecordRole, parse_message};

const BIN: &str = env!("CARGO_BIN_EXE_drain-helper");
/// Well over any phase these tests run, well under a hung hook.
const GENEROUS_MS: u64 = 20_000;

/// `/proc/net/snmp` with a fixed `PassiveOpens`: no new connection ever arrives.
const SNMP: &str = "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n\
                    Tcp: 1 200 120000 -1 59647 4242 549 1010 0 963574 959138 16 0 1214 0\n";

fn helper(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("prestop")
        .args(args)
        .env("DRAIN_HELPER_LOG_TO_STDERR", "1")
        .env_remove("DRAIN_HELPER_TARGET_PID")
        .stdin(Stdio::null());
    command
}

fn log(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The record the run left in `path`, parsed as the observer parses the kubelet's message.
fn record_in(path: &Path) -> DrainRecord {
    let message = fs::read_to_string(path).unwrap();
    parse_message(&message)
        .unwrap_or_else(|err| panic!("{err}: {message}"))
        .unwrap_or_else(|| panic!("no record in {message:?}"))
}

#[test]
fn a_fixed_delay_appends_its_record_after_the_containers_own_message() {
    let dir = tempfile::tempdir().unwrap();
    // A path as odd as a terminationMessagePath may be: spaces, unicode, a `=`.
    let path = dir.path().join("term ination=log ü");
    let own = "started with 3 workers\nlast reload: ok";
    fs::write(&path, own).unwrap();
    let path_text = path.to_str().unwrap();
    let output = helper(&["--delay", "1", "--record", path_text, "--role", "app"])
        .output()
        .unwrap();
    let log = log(&output);
    assert_eq!(output.status.code(), Some(0), "{log}");
    assert!(
        log.contains(&format!("drain record appended to {path_text}")),
        "{log}"
    );
    let message = fs::read_to_string(&path).unwrap();
    assert!(
        message.starts_with(&format!("{own}\n{{\"v\":1,")),
        "{message}"
    );
    assert!(message.ends_with("}\n"), "{message}");
    let record = record_in(&path);
    assert_eq!(record.role, RecordRole::App);
    assert_eq!(record.why, EndReason::Fixed);
    assert_eq!(record.floor_ms, 1_000);
    assert!((1_000..GENEROUS_MS).contains(&record.end_ms), "{record:?}");
    assert_eq!(
        (record.last_arrival_ms, record.after_floor),
        (None, 0),
        "a fixed delay measures nothing"
    );
    assert_eq!((record.migrated_at_ms, record.signal_at_ms), (None, None));
    assert_eq!(record.exit, 0);
}

#[test]
fn the_exit_status_is_recorded_as_the_hook_returns_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("termination-log");
    let path_text = path.to_str().unwrap();
    let output = helper(&[
        "--delay",
        "0",
        "--record",
        path_text,
        "--role",
        "proxy",
        "--then-exec",
        "--",
        "sh",
        "-c",
        "exit 3",
    ])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", log(&output));
    let record = record_in(&path);
    assert_eq!((record.role, record.exit), (RecordRole::Proxy, 3));

    // Cut by --max during the delay: exit 124, the hold ended at the cut, at a bound.
    fs::write(&path, "").unwrap();
    let output = helper(&[
        "--delay", "30", "--max", "1", "--record", path_text, "--role", "app",
    ])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(124), "{}", log(&output));
    let record = record_in(&path);
    assert_eq!((record.why, record.exit), (EndReason::Cap, 124));
    assert!((1_000..GENEROUS_MS).contains(&record.end_ms), "{record:?}");
}

#[test]
fn a_quiet_hold_and_a_signal_are_recorded_with_their_times() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("termination-log");
    let snmp = dir.path().join("snmp");
    fs::write(&snmp, SNMP).unwrap();
    let mut target = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    // The hold watches only a port nothing uses, so the machine's own traffic cannot hold it.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = unused.local_addr().unwrap().port().to_string();
    let output = helper(&[
        "--delay",
        "1",
        "--quiet",
        "1",
        "--hold-max",
        "20",
        "--signal",
        "TERM",
        "--record",
        path.to_str().unwrap(),
        "--role",
        "proxy",
    ])
    .env("DRAIN_HELPER_TARGET_PID", target.id().to_string())
    .env("DRAIN_HELPER_SNMP_PATH", &snmp)
    .env("DRAIN_HELPER_INBOUND_PORTS", &port)
    .output()
    .unwrap();
    let log = log(&output);
    assert_eq!(output.status.code(), Some(0), "{log}");
    let _ = target.wait();
    let record = record_in(&path);
    assert_eq!(
        (record.role, record.why),
        (RecordRole::Proxy, EndReason::Quiet)
    );
    assert_eq!((record.last_arrival_ms, record.after_floor), (None, 0));
    assert!((1_000..GENEROUS_MS).contains(&record.end_ms), "{record:?}");
    let signal_at = record.signal_at_ms.expect("the signal went");
    assert!(
        (record.end_ms..GENEROUS_MS).contains(&signal_at),
        "{record:?}"
    );
}

#[test]
fn a_path_it_cannot_write_is_logged_once_and_the_hook_still_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder/termination-log");
    let full = dir.path().join("full");
    fs::write(&full, "x".repeat(4_090)).unwrap();
    for path in [missing.as_path(), dir.path(), full.as_path()] {
        let path_text = path.to_str().unwrap();
        let start = Instant::now();
        let output = helper(&["--delay", "0", "--record", path_text, "--role", "app"])
            .output()
            .unwrap();
        let log = log(&output);
        assert_eq!(output.status.code(), Some(0), "{log}");
        assert!(
            start.elapsed() < Duration::from_millis(GENEROUS_MS),
            "{log}"
        );
        let not_written = format!("drain record not written to {path_text}: ");
        assert_eq!(log.matches(&not_written).count(), 1, "{log}");
        assert!(log.contains("(the hook goes on)"), "{log}");
    }
    assert!(!dir.path().join("no-such-folder").exists());
    assert_eq!(fs::read_to_string(&full).unwrap(), "x".repeat(4_090));
}

#[test]
fn a_container_restarted_in_place_appends_a_second_record_and_the_last_one_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("termination-log");
    let path_text = path.to_str().unwrap();
    for role in ["proxy", "app"] {
        let output = helper(&["--delay", "0", "--record", path_text, "--role", role])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", log(&output));
        thread::sleep(Duration::from_millis(10));
    }
    let message = fs::read_to_string(&path).unwrap();
    assert_eq!(message.lines().count(), 2, "{message}");
    assert_eq!(record_in(&path).role, RecordRole::App);
}

#[test]
fn a_follow_is_recorded_as_such_when_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("termination-log");
    // A port nothing listens on: the follow waits for its bound (it cannot tell the proxy).
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port().to_string()
    };
    let output = helper(&[
        "--delay",
        "0",
        "--follow",
        &port,
        "--follow-until",
        "2",
        "--record",
        path.to_str().unwrap(),
        "--role",
        "app",
    ])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", log(&output));
    let record = record_in(&path);
    assert_eq!(
        (record.role, record.why),
        (RecordRole::App, EndReason::Follow)
    );
    assert!((2_000..GENEROUS_MS).contains(&record.end_ms), "{record:?}");
    assert_eq!((record.last_arrival_ms, record.after_floor), (None, 0));
}
