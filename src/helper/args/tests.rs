use super::*;

mod equality;
mod migrate;
mod record;

fn parse_strs(args: &[&str]) -> Result<Command, UsageError> {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    parse(&args)
}

fn prestop(args: &[&str]) -> PrestopArgs {
    let mut all = vec!["prestop"];
    all.extend_from_slice(args);
    match parse_strs(&all) {
        Ok(Command::Prestop(parsed)) => parsed,
        other => panic!("{args:?} gave {other:?}"),
    }
}

fn error(args: &[&str]) -> String {
    match parse_strs(args) {
        Err(UsageError(message)) => message,
        Ok(command) => panic!("{args:?} was accepted as {command:?}"),
    }
}

#[test]
fn minimal_prestop_uses_defaults() {
    let parsed = prestop(&["--delay", "15"]);
    assert_eq!(
        parsed,
        PrestopArgs {
            window: SignalWindow::fixed(15),
            notify: vec![],
            wait_idle: vec![],
            max: 45,
            signal: None,
            fast_signal: None,
            then_http_get: None,
            then_exec: None,
            record: None,
        }
    );
}

#[test]
fn adaptive_hold_with_probes_and_stagger() {
    let parsed = prestop(&[
        "--delay",
        "10",
        "--quiet=3s",
        "--hold-max",
        "1m",
        "--probe-every",
        "1,10s, 1",
        "--stagger",
        "5",
    ]);
    assert_eq!(
        parsed.window,
        SignalWindow {
            floor: 10,
            wait: Wait::Hold(HoldArgs {
                quiet: 3,
                cap: 60,
                probe_periods: vec![1, 10, 1],
                migrate: None,
            }),
            stagger: 5,
        }
    );
    // The signal phase begins between the floor and the cap, each plus the stagger; the
    // default bound covers the latest, then the usual 30s.
    assert_eq!((parsed.window.earliest(), parsed.window.latest()), (15, 65));
    assert_eq!(parsed.max, 95);
}

#[test]
fn follow_the_proxy_listeners() {
    let parsed = prestop(&[
        "--delay",
        "15",
        "--follow",
        "8080,80,8080",
        "--follow-until",
        "60",
        "--stagger",
        "5",
    ]);
    assert_eq!(
        parsed.window,
        SignalWindow {
            floor: 15,
            wait: Wait::Follow(FollowArgs {
                ports: vec![80, 8080],
                until: 60,
            }),
            stagger: 5,
        }
    );
    assert_eq!(parsed.window.hold(), None);
    assert_eq!(parsed.max, 95);
    // A fixed delay with a stagger: the signal at D + S.
    let fixed = prestop(&["--delay", "10", "--stagger", "5"]);
    assert_eq!(fixed.window.wait, Wait::Delay);
    let range = (fixed.window.earliest(), fixed.window.latest());
    assert_eq!((range, fixed.max), ((15, 15), 45));
}

#[test]
fn hold_and_follow_errors_say_what_to_give() {
    let cases: &[(&[&str], &str)] = &[
        (&["--quiet", "3"], "give both"),
        (&["--hold-max", "60"], "give both"),
        (&["--quiet", "0", "--hold-max", "60"], "at least 1s"),
        (
            &["--quiet", "3", "--hold-max", "5"],
            "--hold-max 5s is below --delay 10s",
        ),
        (&["--probe-every", "1"], "--probe-every needs --quiet"),
        (
            &["--quiet", "3", "--hold-max", "60", "--probe-every", "1,0"],
            "at least 1s",
        ),
        (
            &["--quiet", "3", "--hold-max", "60", "--probe-every", "1,x"],
            "--probe-every \"x\"",
        ),
        (&["--follow", "80"], "give both"),
        (&["--follow-until", "60"], "give both"),
        (
            &["--follow", "http", "--follow-until", "60"],
            "--follow \"http\"",
        ),
        (
            &["--follow", "80", "--follow-until", "9"],
            "--follow-until 9s is below --delay 10s",
        ),
        (
            &[
                "--quiet",
                "3",
                "--hold-max",
                "60",
                "--follow",
                "80",
                "--follow-until",
                "60",
            ],
            "cannot be combined",
        ),
        (&["--stagger", "soon"], "--stagger \"soon\""),
        (&["--stagger", "1", "--stagger", "2"], "more than once"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["prestop", "--delay", "10"];
        args.extend_from_slice(extra);
        let message = error(&args);
        assert!(
            message.contains(expected),
            "{args:?}: {message:?} should mention {expected:?}"
        );
    }
}

#[test]
fn full_prestop() {
    let parsed = prestop(&[
        "--delay",
        "1m30s",
        "--notify",
        "http://127.0.0.1:8080/drain",
        "--notify=http://[::1]:9090/quiesce",
        "--wait-idle",
        "8080,443, 8080",
        "--max=2m",
        "--signal",
        "SIGQUIT",
        "--fast-signal=TERM",
        "--then-http-get",
        "http://127.0.0.1:8080/shutdown",
        "--then-exec",
        "--",
        "/bin/sh",
        "-c",
        "--delay 3",
    ]);
    assert_eq!(parsed.window, SignalWindow::fixed(90));
    assert_eq!(parsed.max, 120);
    assert_eq!(parsed.notify.len(), 2);
    assert_eq!(parsed.notify[1].to_string(), "http://[::1]:9090/quiesce");
    assert_eq!(parsed.wait_idle, vec![443, 8080]);
    assert_eq!(parsed.signal, Some(libc::SIGQUIT));
    assert_eq!(parsed.fast_signal, Some(libc::SIGTERM));
    assert_eq!(
        parsed.then_http_get.map(|u| u.path),
        Some("/shutdown".to_string())
    );
    let exec: Vec<OsString> = ["/bin/sh", "-c", "--delay 3"]
        .iter()
        .map(OsString::from)
        .collect();
    assert_eq!(parsed.then_exec, Some(exec));
}

#[test]
fn help_and_version() {
    assert_eq!(parse_strs(&["--help"]), Ok(Command::Help));
    assert_eq!(parse_strs(&["-h"]), Ok(Command::Help));
    assert_eq!(parse_strs(&["prestop", "--help"]), Ok(Command::Help));
    assert_eq!(parse_strs(&["install", "--help"]), Ok(Command::Help));
    assert_eq!(parse_strs(&["--version"]), Ok(Command::Version));
    assert_eq!(parse_strs(&["-V"]), Ok(Command::Version));
}

#[test]
fn install_takes_one_dir() {
    assert_eq!(
        parse_strs(&["install", "/.drain"]),
        Ok(Command::Install {
            dir: PathBuf::from("/.drain"),
            then: AfterInstall::Exit,
        })
    );
    for (word, then) in [("exit", AfterInstall::Exit), ("sleep", AfterInstall::Sleep)] {
        assert_eq!(
            parse_strs(&["install", "/.drain", "--then", word]),
            Ok(Command::Install {
                dir: PathBuf::from("/.drain"),
                then,
            })
        );
    }
    assert!(error(&["install"]).contains("missing DIR"));
    assert!(error(&["install", "/a", "/b"]).contains("\"/b\""));
    assert!(error(&["install", "--force"]).contains("--force"));
    assert!(error(&["install", "--then", "sleep", "/a"]).contains("DIR comes first"));
    assert!(error(&["install", "/a", "--then"]).contains("exit or sleep"));
    assert!(error(&["install", "/a", "--then", "nap"]).contains("\"nap\""));
    assert!(error(&["install", "/a", "--then", "exit", "x"]).contains("\"--then\""));
}

#[test]
fn errors_name_the_bad_argument() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "missing command"),
        (&["frobnicate"], "frobnicate"),
        (&["prestop"], "--delay"),
        (&["prestop", "--delay"], "--delay: missing value"),
        (&["prestop", "--delay", "soon"], "--delay \"soon\""),
        (&["prestop", "--delay", "-1"], "--delay"),
        (
            &["prestop", "--delay", "1", "--delay", "2"],
            "more than once",
        ),
        (&["prestop", "--delay", "1", "--bogus"], "--bogus"),
        (&["prestop", "--delay", "1", "--max", "1y"], "--max"),
        (
            &["prestop", "--delay", "1", "--notify", "http://localhost/x"],
            "--notify",
        ),
        (
            &["prestop", "--delay", "1", "--wait-idle", "80,http"],
            "\"http\"",
        ),
        (
            &["prestop", "--delay", "1", "--wait-idle", "0"],
            "--wait-idle",
        ),
        (
            &["prestop", "--delay", "1", "--wait-idle", ""],
            "--wait-idle",
        ),
        (
            &["prestop", "--delay", "1", "--wait-idle", "70000"],
            "--wait-idle",
        ),
        (
            &["prestop", "--delay", "1", "--signal", "SIGFOO"],
            "--signal",
        ),
        (
            &["prestop", "--delay", "1", "--fast-signal", "SIGTERM"],
            "--fast-signal needs --signal",
        ),
        (
            &[
                "prestop",
                "--delay",
                "1",
                "--signal",
                "3",
                "--fast-signal",
                "x",
            ],
            "--fast-signal: ",
        ),
        (
            &[
                "prestop",
                "--delay",
                "1",
                "--then-http-get",
                "https://1.2.3.4/",
            ],
            "--then-http-get",
        ),
        (&["prestop", "--delay", "1", "--then-exec"], "--then-exec"),
        (
            &["prestop", "--delay", "1", "--then-exec", "ls"],
            "--then-exec",
        ),
        (
            &["prestop", "--delay", "1", "--then-exec", "--"],
            "--then-exec",
        ),
        (
            &["prestop", "--delay", "1", "--then-exec", "--", ""],
            "--then-exec",
        ),
        (
            &["prestop", "--delay", "1", "--then-exec=x", "--", "ls"],
            "--then-exec",
        ),
        (&["prestop", "stray"], "\"stray\""),
    ];
    for (args, expected) in cases {
        let message = error(args);
        assert!(
            message.contains(expected),
            "{args:?}: {message:?} should mention {expected:?}"
        );
    }
}

#[test]
fn then_exec_keeps_everything_after_the_separator() {
    let parsed = prestop(&[
        "--delay",
        "1",
        "--then-exec",
        "--",
        "echo",
        "--max",
        "9",
        "--",
    ]);
    // `--max 9` after the separator belongs to the command, not to the helper.
    assert_eq!(parsed.max, 31);
    let exec: Vec<OsString> = ["echo", "--max", "9", "--"]
        .iter()
        .map(OsString::from)
        .collect();
    assert_eq!(parsed.then_exec, Some(exec));
}

#[test]
fn max_defaults_to_delay_plus_thirty_seconds_and_never_overflows() {
    assert_eq!(prestop(&["--delay", "0"]).max, 30);
    assert_eq!(prestop(&["--delay", "86400"]).max, 86_430);
    assert_eq!(prestop(&["--delay", "5", "--max", "1"]).max, 1);
}

#[test]
fn non_utf8_arguments_are_errors_except_in_the_command() {
    use std::os::unix::ffi::OsStringExt;
    let bad = OsString::from_vec(vec![b'-', 0xff]);
    let args = vec![OsString::from("prestop"), bad.clone()];
    assert!(parse(&args).is_err());
    let args = vec![
        OsString::from("prestop"),
        OsString::from("--delay"),
        OsString::from("1"),
        OsString::from("--then-exec"),
        OsString::from("--"),
        OsString::from("/bin/echo"),
        bad.clone(),
    ];
    match parse(&args) {
        Ok(Command::Prestop(parsed)) => {
            assert_eq!(parsed.then_exec.unwrap()[1], bad);
        }
        other => panic!("{other:?}"),
    }
}

#[cfg(feature = "webhook")]
mod render_then_parse;
