//! `--migrate`: a signal for PID 1 or a URL to POST, only with the adaptive hold.

use super::*;

const HOLD: [&str; 6] = ["--delay", "10", "--quiet", "3", "--hold-max", "60"];

/// The parsed `--migrate` of `prestop` with the hold and `extra`.
fn migrate_of(extra: &[&str]) -> Option<Migrate> {
    let mut args = HOLD.to_vec();
    args.extend_from_slice(extra);
    prestop(&args).window.hold()?.migrate.clone()
}

#[test]
fn a_signal_by_name_or_number_or_a_url() {
    assert_eq!(
        migrate_of(&["--migrate", "HUP"]),
        Some(Migrate::Signal(libc::SIGHUP))
    );
    assert_eq!(
        migrate_of(&["--migrate=sigusr2"]),
        Some(Migrate::Signal(libc::SIGUSR2))
    );
    assert_eq!(migrate_of(&["--migrate", "1"]), Some(Migrate::Signal(1)));
    let url = HttpUrl::parse("http://127.0.0.1:8080/drain").unwrap();
    assert_eq!(
        migrate_of(&["--migrate", "http://127.0.0.1:8080/drain"]),
        Some(Migrate::Post(url))
    );
    assert_eq!(migrate_of(&[]), None);
    // With nginx's graceful stop: the reload signal and the stop signal differ.
    let mut args = HOLD.to_vec();
    args.extend_from_slice(&["--migrate", "HUP", "--signal", "QUIT"]);
    let parsed = prestop(&args);
    assert_eq!(parsed.signal, Some(libc::SIGQUIT));
}

#[test]
fn errors_name_the_flag_and_the_fix() {
    // Without the hold, then each case after `prestop` and the hold's flags.
    let mut cases: Vec<(Vec<&str>, &[&str])> = vec![(
        vec!["prestop", "--delay", "10", "--migrate", "HUP"],
        &["--migrate needs --quiet and --hold-max"],
    )];
    let with_hold: &[(&[&str], &[&str])] = &[
        (
            &["--migrate", "KILL"],
            &["--migrate SIGKILL", "nginx: SIGHUP", "http://IP:PORT/PATH"],
        ),
        (
            &["--migrate", "STOP"],
            &["--migrate SIGSTOP", "no process can handle it"],
        ),
        (
            &["--migrate", "RELOAD"],
            &["--migrate: unknown signal \"RELOAD\"", "nginx: SIGHUP"],
        ),
        (
            &["--migrate", "https://127.0.0.1/x"],
            &["--migrate \"https://127.0.0.1/x\""],
        ),
        (
            &["--migrate", "http://localhost/x"],
            &["--migrate \"http://localhost/x\""],
        ),
        (
            &["--migrate", "QUIT", "--signal", "SIGQUIT"],
            &[
                "--migrate SIGQUIT is also --signal",
                "keep the listeners open",
            ],
        ),
        (
            &[
                "--migrate",
                "TERM",
                "--signal",
                "QUIT",
                "--fast-signal",
                "TERM",
            ],
            &["--migrate SIGTERM is also --fast-signal"],
        ),
        (
            &["--migrate", "HUP", "--migrate", "USR2"],
            &["--migrate given more than once"],
        ),
    ];
    for (extra, expected) in with_hold {
        let mut args = vec!["prestop"];
        args.extend_from_slice(&HOLD);
        args.extend_from_slice(extra);
        cases.push((args, expected));
    }
    for (args, expected) in &cases {
        let message = error(args);
        for part in *expected {
            assert!(
                message.contains(part),
                "{args:?}: {message:?} should mention {part:?}"
            );
        }
    }
}
