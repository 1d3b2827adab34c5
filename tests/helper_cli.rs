//! Runs the real drain-helper binary. Timing assertions are lower bounds only (plus generous
//! upper bounds of 20 s where a test shows that something was cut short).

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

const BIN: &str = env!("CARGO_BIN_EXE_drain-helper");
const GENEROUS: Duration = Duration::from_secs(20);

/// The helper with its log on its own stderr (never on the test machine's PID 1).
fn helper(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("DRAIN_HELPER_LOG_TO_STDERR", "1")
        .env_remove("DRAIN_HELPER_TARGET_PID")
        .stdin(Stdio::null());
    command
}

struct Run {
    output: Output,
    elapsed: Duration,
    ended: Instant,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
    fn log(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The log has a line containing `needle`.
    fn assert_logged(&self, needle: &str) {
        let log = self.log();
        assert!(log.contains(needle), "no {needle:?} in:\n{log}");
    }

    /// The first line containing `first` comes before the first containing `then`.
    fn assert_logged_before(&self, first: &str, then: &str) {
        let log = self.log();
        assert!(line_index(&log, first) < line_index(&log, then), "{log}");
    }

    /// `--max` cut the run: exit 124, not before `at_least`, well before the phase would have
    /// ended, and the log says where (`expected`).
    fn assert_cut_by_max(&self, at_least: Duration, expected: &str) {
        let log = self.log();
        assert_eq!(self.code(), Some(124), "{log}");
        assert!(self.elapsed >= at_least, "{:?}", self.elapsed);
        assert!(self.elapsed < GENEROUS, "{:?}", self.elapsed);
        self.assert_logged(expected);
    }
}

fn run(mut command: Command) -> Run {
    let start = Instant::now();
    let output = command.output().expect("drain-helper runs");
    Run {
        output,
        elapsed: start.elapsed(),
        ended: Instant::now(),
    }
}

fn run_args(args: &[&str]) -> Run {
    run(helper(args))
}

/// Position of the first log line containing `needle`, with the whole log in the message.
fn line_index(log: &str, needle: &str) -> usize {
    log.lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no log line contains {needle:?}:\n{log}"))
}

struct Request {
    at: Instant,
    head: String,
}

/// An HTTP server on 127.0.0.1:0 that answers `status` to up to `count` requests and reports
/// each request head with the time it arrived.
fn http_server(count: usize, status: u16) -> (u16, Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let at = Instant::now();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = sender.send(Request {
                at,
                head: String::from_utf8_lossy(&head).into_owned(),
            });
        }
    });
    (port, receiver)
}

fn received(receiver: &Receiver<Request>) -> Request {
    receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("the server got a request")
}

/// A connected pair: (server side, client side), with the server side's local port being the
/// listener's port.
fn held_connection() -> (u16, TcpListener, TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (server, _) = listener.accept().unwrap();
    (port, listener, server, client)
}

fn spawn_shell(script: &str) -> Child {
    Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .spawn()
        .expect("sh starts")
}

/// Waits until `path` exists (the shell script wrote its trap and is ready).
fn wait_for_file(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < GENEROUS,
            "{} never appeared",
            path.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn version_and_help() {
    let run = run_args(&["--version"]);
    assert_eq!(run.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&run.output.stdout),
        format!("drain-helper {}\n", env!("CARGO_PKG_VERSION"))
    );
    let run = run_args(&["--help"]);
    assert_eq!(run.code(), Some(0));
    let help = String::from_utf8_lossy(&run.output.stdout).into_owned();
    for word in [
        "install DIR",
        "prestop",
        "--wait-idle",
        "--then-exec",
        "124",
    ] {
        assert!(help.contains(word), "help lacks {word:?}:\n{help}");
    }
}

#[test]
fn install_copies_an_executable_binary_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_args(&["install", dir.path().to_str().unwrap()]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    let installed = dir.path().join("drain-helper");
    let metadata = fs::metadata(&installed).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o7777, 0o755);
    assert_eq!(fs::read(&installed).unwrap(), fs::read(BIN).unwrap());
    let entries: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "no temporary file is left behind");
    let version = Command::new(&installed).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("drain-helper "));
    run.assert_logged("installed");
}

#[test]
fn install_into_a_missing_dir_fails() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let run = run_args(&["install", missing.to_str().unwrap()]);
    assert_eq!(run.code(), Some(1));
    run.assert_logged("cannot install");
}

#[test]
fn install_then_exit_installs_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_args(&["install", dir.path().to_str().unwrap(), "--then", "exit"]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert_eq!(
        fs::read(dir.path().join("drain-helper")).unwrap(),
        fs::read(BIN).unwrap()
    );
    assert!(!run.log().contains("sleeping"), "{}", run.log());
}

#[test]
fn install_then_sleep_into_a_missing_dir_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let run = run_args(&["install", missing.to_str().unwrap(), "--then", "sleep"]);
    assert_eq!(run.code(), Some(1));
    run.assert_logged("cannot install");
}

/// `kill(pid, signal)` on a process this test started and has not reaped.
fn signal_child(pid: u32, signal: libc::c_int) {
    #[allow(unsafe_code)]
    // SAFETY: kill(2) with plain integers on our own unreaped child (or its child).
    let rc = unsafe { libc::kill(pid as i32, signal) };
    assert_eq!(rc, 0, "kill {pid}: {}", std::io::Error::last_os_error());
}

/// Waits for `child` at most `limit`; the exit status and how long it took after `since`.
fn exit_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running {limit:?} after the signal");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Installs, stays up (a first container of a restartPolicy Always pod must not exit), and
/// exits 0 promptly on SIGTERM and on SIGINT.
#[test]
fn install_then_sleep_stays_up_until_sigterm_or_sigint() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = helper(&["install", dir.path().to_str().unwrap(), "--then", "sleep"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_file(&dir.path().join("drain-helper"));
        thread::sleep(Duration::from_millis(300));
        assert!(
            child.try_wait().unwrap().is_none(),
            "exited before a signal"
        );
        let sent = Instant::now();
        signal_child(child.id(), signal);
        let status = exit_within(&mut child, Duration::from_secs(5));
        assert_eq!(status.code(), Some(0), "{status:?}");
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "{:?}",
            sent.elapsed()
        );
        let mut log = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        assert!(log.contains("installed"), "{log}");
        assert!(log.contains("sleeping until SIGTERM"), "{log}");
        assert!(log.contains(": exiting"), "{log}");
    }
}

/// As PID 1 of its own PID namespace (as in a container), where the kernel drops every signal
/// that has no handler, SIGTERM from outside the namespace (the runtime's) still ends the
/// sleep at once. Needs unprivileged user namespaces; says so and passes where there are none.
#[test]
fn install_then_sleep_as_pid_1_exits_on_sigterm_from_outside() {
    let usable = Command::new("unshare")
        .args(["--user", "--map-root-user", "--pid", "--fork", "true"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        eprintln!("skipped: unshare --user --pid is not available here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut unshare = Command::new("unshare")
        .args(["--user", "--map-root-user", "--pid", "--fork", BIN])
        .args(["install", dir.path().to_str().unwrap(), "--then", "sleep"])
        .env("DRAIN_HELPER_LOG_TO_STDERR", "1")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&dir.path().join("drain-helper"));
    let children = format!("/proc/{0}/task/{0}/children", unshare.id());
    let helper_pid: u32 = fs::read_to_string(&children)
        .unwrap()
        .split_whitespace()
        .next()
        .expect("unshare's child, the helper")
        .parse()
        .unwrap();
    let status = fs::read_to_string(format!("/proc/{helper_pid}/status")).unwrap();
    let ns_pid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned();
    assert_eq!(ns_pid, "1", "the helper is PID 1 inside: {status}");
    thread::sleep(Duration::from_millis(200));
    let sent = Instant::now();
    signal_child(helper_pid, libc::SIGTERM);
    let exit = exit_within(&mut unshare, Duration::from_secs(5));
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
}

#[test]
fn prestop_waits_for_the_delay_and_logs_timestamps() {
    let run = run_args(&["prestop", "--delay", "1"]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(run.elapsed >= Duration::from_secs(1), "{:?}", run.elapsed);
    let log = run.log();
    let sleeping = &log.lines().nth(line_index(&log, "(delay 1s)")).unwrap();
    // 2026-11-21T21:50:00.123Z drain-helper prestop: sleeping ...
    let (stamp, rest) = sleeping.split_once(' ').unwrap();
    assert_eq!(stamp.len(), 24, "{stamp}");
    assert!(stamp.ends_with('Z') && &stamp[10..11] == "T" && &stamp[19..20] == ".");
    assert!(stamp.starts_with("20"), "{stamp}");
    assert!(rest.starts_with("drain-helper prestop: sleeping"), "{rest}");
    run.assert_logged_before("sleeping", "done");
}

#[test]
fn notify_posts_at_the_start_before_the_delay_ends() {
    let (port, requests) = http_server(1, 204);
    let url = format!("http://127.0.0.1:{port}/drain?reason=prestop");
    let run = run_args(&["prestop", "--delay", "2", "--notify", &url]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    let request = received(&requests);
    let first_line = request.head.lines().next().unwrap();
    assert_eq!(first_line, "POST /drain?reason=prestop HTTP/1.1");
    assert!(
        request.head.contains("\r\nContent-Length: 0\r\n"),
        "{}",
        request.head
    );
    assert!(
        request.head.contains("\r\nConnection: close\r\n"),
        "{}",
        request.head
    );
    assert!(request.at < run.ended);
    assert!(run.elapsed >= Duration::from_secs(2));
    run.assert_logged_before("HTTP 204", "sleeping");
}

#[test]
fn a_failing_notify_does_not_stop_the_drain() {
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (port, requests) = http_server(1, 200);
    let dead = format!("http://127.0.0.1:{closed_port}/x");
    let live = format!("http://127.0.0.1:{port}/y");
    let run = run_args(&[
        "prestop", "--delay", "0", "--notify", &dead, "--notify", &live,
    ]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    run.assert_logged("failed");
    assert!(received(&requests).head.starts_with("POST /y HTTP/1.1"));
}

#[test]
fn wait_idle_keeps_waiting_while_a_connection_is_open_until_max() {
    let (port, _listener, _server, _client) = held_connection();
    let port = port.to_string();
    let run = run_args(&[
        "prestop",
        "--delay",
        "0",
        "--wait-idle",
        &port,
        "--max",
        "2",
    ]);
    run.assert_cut_by_max(Duration::from_secs(2), "--max 2s reached during wait-idle");
    let log = run.log();
    assert!(log.contains("1 established connection(s)"), "{log}");
}

#[test]
fn wait_idle_returns_once_the_connection_closes() {
    let (port, _listener, server, client) = held_connection();
    let port = port.to_string();
    let start = Instant::now();
    let child = helper(&[
        "prestop",
        "--delay",
        "0",
        "--wait-idle",
        &port,
        "--max",
        "60",
    ])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    thread::sleep(Duration::from_secs(1));
    drop(client);
    drop(server);
    let output = child.wait_with_output().unwrap();
    let elapsed = start.elapsed();
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{log}");
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(
        elapsed < GENEROUS,
        "{elapsed:?}: --max 60 was not what ended it"
    );
    assert!(log.contains("1 established connection(s)"), "{log}");
    assert!(log.contains("no established connections"), "{log}");
}

#[test]
fn wait_idle_ignores_connections_on_other_ports() {
    let (_port, _listener, _server, _client) = held_connection();
    let (other, _l2, _s2, client2) = held_connection();
    drop(client2);
    let other = other.to_string();
    let run = run_args(&[
        "prestop",
        "--delay",
        "0",
        "--wait-idle",
        &other,
        "--max",
        "30",
    ]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(run.elapsed < GENEROUS);
}

#[test]
fn signal_reaches_the_target_and_the_helper_waits_for_its_exit() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let got = dir.path().join("got");
    let mut target = spawn_shell(&format!(
        "trap 'echo quit > {got}; sleep 1; exit 0' QUIT; touch {ready}; while :; do sleep 0.1; done",
        got = got.display(),
        ready = ready.display()
    ));
    wait_for_file(&ready);
    // Only DRAIN_HELPER_TARGET_PID: it also sends the log to the helper's own stderr.
    let mut command = helper(&[
        "prestop", "--delay", "0", "--signal", "SIGQUIT", "--max", "30",
    ]);
    command
        .env_remove("DRAIN_HELPER_LOG_TO_STDERR")
        .env("DRAIN_HELPER_TARGET_PID", target.id().to_string());
    let run = run(command);
    let log = run.log();
    assert_eq!(run.code(), Some(0), "{log}");
    assert_eq!(fs::read_to_string(&got).unwrap(), "quit\n");
    // The trap sleeps 1 s before exiting, and the helper waited for that.
    assert!(run.elapsed >= Duration::from_secs(1), "{:?}", run.elapsed);
    assert!(
        log.contains(&format!("sent SIGQUIT to PID {}", target.id())),
        "{log}"
    );
    assert!(log.contains("exited"), "{log}");
    // No listener to watch: the helper falls back to waiting for the exit, and says so.
    assert!(log.contains("has no listening TCP sockets"), "{log}");
    assert!(log.contains("waiting until it exits"), "{log}");
    // The helper returned while the target was a zombie; it exited through the trap.
    assert_eq!(target.wait().unwrap().code(), Some(0));
}

#[test]
fn signal_by_number_kills_a_sleep() {
    let mut target = Command::new("sleep").arg("60").spawn().unwrap();
    let mut command = helper(&["prestop", "--delay", "0", "--signal", "15"]);
    command.env("DRAIN_HELPER_TARGET_PID", target.id().to_string());
    let run = run(command);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(run.elapsed < GENEROUS);
    assert_eq!(target.wait().unwrap().signal(), Some(15));
}

#[test]
fn a_target_that_ignores_the_signal_is_cut_by_max() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let mut target = spawn_shell(&format!(
        "trap '' QUIT; touch {}; while :; do sleep 0.1; done",
        ready.display()
    ));
    wait_for_file(&ready);
    let mut command = helper(&["prestop", "--delay", "0", "--signal", "QUIT", "--max", "2"]);
    command.env("DRAIN_HELPER_TARGET_PID", target.id().to_string());
    let run = run(command);
    let _ = target.kill();
    let _ = target.wait();
    run.assert_cut_by_max(Duration::from_secs(2), "reached during signal");
}

#[test]
fn a_signal_that_cannot_be_sent_is_logged_and_the_drain_goes_on() {
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id().to_string();
    gone.wait().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("after");
    let marker_text = marker.to_str().unwrap();
    let mut command = helper(&[
        "prestop",
        "--delay",
        "0",
        "--signal",
        "TERM",
        "--then-exec",
        "--",
        "touch",
        marker_text,
    ]);
    command.env("DRAIN_HELPER_TARGET_PID", &pid);
    let run = run(command);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    run.assert_logged("could not send SIGTERM");
    assert!(marker.exists());
}

#[test]
fn then_exec_runs_after_the_delay_and_its_exit_code_is_returned() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let started = SystemTime::now();
    let run = run_args(&[
        "prestop",
        "--delay",
        "1",
        "--then-exec",
        "--",
        "sh",
        "-c",
        "echo \"$0 $1\" > \"$2\"; exit 3",
        "a b",
        "--delay",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), Some(3), "{}", run.log());
    assert_eq!(fs::read_to_string(&out).unwrap(), "a b --delay\n");
    let written = fs::metadata(&out).unwrap().modified().unwrap();
    // Filesystem timestamps are coarse (a few ms), hence 900 ms rather than 1 s.
    assert!(
        written.duration_since(started).unwrap() >= Duration::from_millis(900),
        "the command ran before the delay ended"
    );
    run.assert_logged_before("sleeping", "then-exec");
}

#[test]
fn then_exec_of_a_missing_command_exits_127() {
    let run = run_args(&[
        "prestop",
        "--delay",
        "0",
        "--then-exec",
        "--",
        "/nonexistent/cmd",
    ]);
    assert_eq!(run.code(), Some(127), "{}", run.log());
    run.assert_logged("could not start");
}

#[test]
fn then_http_get_runs_after_the_delay() {
    let (port, requests) = http_server(1, 200);
    let url = format!("http://127.0.0.1:{port}/hook");
    let start = Instant::now();
    let run = run_args(&["prestop", "--delay", "1", "--then-http-get", &url]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    let request = received(&requests);
    assert!(
        request.head.starts_with("GET /hook HTTP/1.1\r\n"),
        "{}",
        request.head
    );
    assert!(request.at.duration_since(start) >= Duration::from_secs(1));
    run.assert_logged("HTTP 200");
}

#[test]
fn then_http_get_with_an_error_status_fails() {
    let (port, requests) = http_server(1, 500);
    let url = format!("http://127.0.0.1:{port}/hook");
    let run = run_args(&["prestop", "--delay", "0", "--then-http-get", &url]);
    assert_eq!(run.code(), Some(1), "{}", run.log());
    received(&requests);
    run.assert_logged("HTTP 500");
}

#[test]
fn max_cuts_a_long_delay() {
    let run = run_args(&["prestop", "--delay", "30s", "--max", "2s"]);
    run.assert_cut_by_max(Duration::from_secs(2), "--max 2s reached during delay");
}

#[test]
fn max_cuts_a_long_then_exec() {
    let run = run_args(&[
        "prestop",
        "--delay",
        "0",
        "--max",
        "2",
        "--then-exec",
        "--",
        "sleep",
        "30",
    ]);
    run.assert_cut_by_max(Duration::from_secs(2), "reached during then-exec");
}

#[test]
fn max_cuts_a_hanging_notify_and_the_delay() {
    // A server that accepts but never answers: the notify call gives up after its own short
    // timeout, then --max cuts the delay.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/x",
        listener.local_addr().unwrap().port()
    );
    let run = run_args(&["prestop", "--delay", "60", "--max", "3", "--notify", &url]);
    drop(listener);
    run.assert_cut_by_max(Duration::from_secs(3), "reached during delay");
    run.assert_logged("failed");
}

#[test]
fn bad_arguments_exit_2_naming_the_argument() {
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &["missing command"]),
        (&["bogus"], &["bogus"]),
        (&["install"], &["DIR"]),
        (&["install", "/tmp/x", "--then", "nap"], &["--then", "nap"]),
        (&["prestop"], &["--delay"]),
        (&["prestop", "--delay", "soon"], &["--delay", "soon"]),
        (
            &["prestop", "--delay", "1", "--frobnicate"],
            &["--frobnicate"],
        ),
        (&["prestop", "--delay", "1", "--max"], &["--max"]),
        (
            &["prestop", "--delay", "1", "--notify", "http://localhost/"],
            &["--notify", "localhost"],
        ),
        (
            &["prestop", "--delay", "1", "--wait-idle", "80,x"],
            &["--wait-idle", "\"x\""],
        ),
        (
            &["prestop", "--delay", "1", "--signal", "SIGNOPE"],
            &["--signal", "SIGNOPE"],
        ),
        (
            &["prestop", "--delay", "1", "--then-exec", "ls"],
            &["--then-exec"],
        ),
        (
            &[
                "prestop",
                "--delay",
                "1",
                "--then-http-get",
                "ftp://1.2.3.4/",
            ],
            &["--then-http-get"],
        ),
    ];
    for (args, expected) in cases {
        let run = run_args(args);
        let log = run.log();
        assert_eq!(run.code(), Some(2), "{args:?}: {log}");
        for word in *expected {
            assert!(log.contains(word), "{args:?}: {log:?} should name {word:?}");
        }
        assert!(log.contains("usage: drain-helper"), "{args:?}: {log}");
        assert!(!log.contains("panicked"), "{args:?}: {log}");
        assert_eq!(
            log.lines().next().map(|l| l.starts_with("drain-helper: ")),
            Some(true)
        );
    }
}

#[test]
fn a_bad_target_pid_override_is_a_usage_error() {
    let mut command = helper(&["prestop", "--delay", "0"]);
    command.env("DRAIN_HELPER_TARGET_PID", "-1");
    let run = run(command);
    assert_eq!(run.code(), Some(2), "{}", run.log());
    run.assert_logged("DRAIN_HELPER_TARGET_PID");
}

// --- A stand-in for nginx as the container's PID 1 -----------------------------------------

/// Set when the test binary is re-executed as the stand-in: where it writes its port and
/// the events it went through.
const STAND_IN_DIR: &str = "DRAIN_TEST_STAND_IN_DIR";
/// How long the stand-in takes between the first and the second half of each answer.
const STAND_IN_SLOW_MS: &str = "DRAIN_TEST_STAND_IN_SLOW_MS";
/// Bytes in each half of the stand-in's answer body.
const HALF: usize = 1000;

/// Not a test: the entry point of the stand-in process (this test binary re-executed with
/// `STAND_IN_DIR` set, see [`spawn_stand_in`]). Returns at once in a normal test run.
#[test]
fn stand_in_proxy_process() {
    let Some(dir) = std::env::var_os(STAND_IN_DIR) else {
        return;
    };
    let slow = std::env::var(STAND_IN_SLOW_MS)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
        .expect("DRAIN_TEST_STAND_IN_SLOW_MS");
    stand_in::run(Path::new(&dir), slow);
}

/// Behaves like nginx on SIGQUIT, in one thread with non-blocking sockets: it closes its
/// listener at once, closes idle connections, keeps serving every connection with a request in
/// progress (complete or not, it is served or waited for), and exits when the last one is
/// closed.
mod stand_in {
    use std::fs::{self, OpenOptions};
    use std::io::{ErrorKind, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    static QUIT: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_quit(_: libc::c_int) {
        QUIT.store(true, Ordering::SeqCst);
    }

    struct Connection {
        stream: TcpStream,
        head: Vec<u8>,
        /// When the second half of the answer is due (the first half has been sent).
        finish_at: Option<Instant>,
    }

    pub fn run(dir: &Path, slow: Duration) -> ! {
        let handler: extern "C" fn(libc::c_int) = on_quit;
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        #[allow(unsafe_code)]
        unsafe {
            libc::signal(libc::SIGQUIT, handler as libc::sighandler_t);
        }
        let mut events = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("events"))
            .unwrap();
        let mut event = |text: &str| writeln!(events, "{text}").unwrap();
        let bound = TcpListener::bind("127.0.0.1:0").unwrap();
        bound.set_nonblocking(true).unwrap();
        let port = bound.local_addr().unwrap().port();
        let mut listener = Some(bound);
        fs::write(dir.join("port.tmp"), port.to_string()).unwrap();
        fs::rename(dir.join("port.tmp"), dir.join("port")).unwrap();
        let mut connections: Vec<Connection> = Vec::new();
        loop {
            // Accept what is queued before looking at the signal, as nginx's event loop does.
            while let Some(Ok((stream, _))) = listener.as_ref().map(TcpListener::accept) {
                stream.set_nonblocking(true).unwrap();
                connections.push(Connection {
                    stream,
                    head: Vec::new(),
                    finish_at: None,
                });
            }
            if QUIT.load(Ordering::SeqCst) && listener.take().is_some() {
                event("quit: listener closed");
            }
            connections.retain_mut(|c| {
                let mut buf = [0u8; 1024];
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        event(&format!(
                            "closed by the client after {} bytes",
                            c.head.len()
                        ));
                        return false;
                    }
                    Ok(n) => c.head.extend_from_slice(&buf[..n]),
                    Err(err) if err.kind() == ErrorKind::WouldBlock => {}
                    Err(err) => {
                        event(&format!("read error {err}"));
                        return false;
                    }
                }
                // nginx closes idle kept-alive connections on its graceful stop.
                if QUIT.load(Ordering::SeqCst) && c.head.is_empty() {
                    event("idle connection closed on quit");
                    return false;
                }
                if c.finish_at.is_none() && c.head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        2 * super::HALF
                    );
                    c.stream.write_all(head.as_bytes()).unwrap();
                    c.stream.write_all(&[b'a'; super::HALF]).unwrap();
                    c.finish_at = Some(Instant::now() + slow);
                    event("request: first half sent");
                }
                if c.finish_at.is_some_and(|at| Instant::now() >= at) {
                    c.stream.write_all(&[b'b'; super::HALF]).unwrap();
                    event("request: served in full");
                    return false;
                }
                true
            });
            if listener.is_none() && connections.is_empty() {
                event("exit");
                std::process::exit(0);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

struct StandIn {
    child: Option<Child>,
    pid: u32,
    dir: tempfile::TempDir,
    port: u16,
}

impl StandIn {
    fn events(&self) -> String {
        fs::read_to_string(self.dir.path().join("events")).unwrap_or_default()
    }
}

fn spawn_stand_in(slow: Duration) -> StandIn {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["stand_in_proxy_process", "--exact", "--test-threads=1"])
        .env(STAND_IN_DIR, dir.path())
        .env(STAND_IN_SLOW_MS, slow.as_millis().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let port_file = dir.path().join("port");
    wait_for_file(&port_file);
    let port = fs::read_to_string(&port_file).unwrap().parse().unwrap();
    StandIn {
        pid: child.id(),
        child: Some(child),
        dir,
        port,
    }
}

/// A request to the stand-in that is in flight once this returns (the first half of the
/// answer has arrived); the thread returns everything that came back until the close.
fn in_flight_request(port: u16) -> thread::JoinHandle<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: stand-in\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.ends_with(&[b'a'; 10]) {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the stand-in closed early");
        answer.extend_from_slice(&buf[..n]);
    }
    thread::spawn(move || {
        let _ = stream.read_to_end(&mut answer);
        answer
    })
}

/// The answer's body is complete: both halves, nothing cut.
fn assert_served_in_full(answer: &[u8]) {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body.len(), 2 * HALF, "the answer was cut: {head}");
    assert!(body.ends_with(&"b".repeat(HALF)));
}

struct Stopped {
    helper: Run,
    /// The helper was still running when the stand-in exited (and was SIGKILLed, as the
    /// runtime kills the exec session when the container's PID 1 exits).
    helper_killed: bool,
    stand_in_code: Option<i32>,
    stand_in_signal: Option<i32>,
}

/// Runs `drain-helper prestop --delay 0 --signal SIGQUIT --max MAX` against the stand-in, as
/// the container runtime would: the moment the stand-in exits, the helper is SIGKILLed if it
/// is still running.
fn stop_stand_in(stand_in: &mut StandIn, max: &str) -> Stopped {
    stop_stand_in_with(stand_in, max, &[])
}

fn stop_stand_in_with(stand_in: &mut StandIn, max: &str, extra: &[&str]) -> Stopped {
    let start = Instant::now();
    let mut args = vec![
        "prestop", "--delay", "0", "--signal", "SIGQUIT", "--max", max,
    ];
    args.extend_from_slice(extra);
    let helper = helper(&args)
        .env("DRAIN_HELPER_TARGET_PID", stand_in.pid.to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let helper_pid = helper.id() as i32;
    let mut child = stand_in.child.take().expect("a running stand-in");
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let status = child.wait().unwrap();
        // The helper is not reaped before this (the test waits for it only afterwards), so
        // its PID cannot have been reused; a zombie ignores the signal.
        #[allow(unsafe_code)]
        // SAFETY: kill(2) with plain integers on our own unreaped child.
        let _ = unsafe { libc::kill(helper_pid, libc::SIGKILL) };
        let _ = sender.send(status);
    });
    let stand_in_status = receiver
        .recv_timeout(Duration::from_secs(120))
        .expect("the stand-in exits");
    let output = helper.wait_with_output().unwrap();
    let helper_killed = output.status.signal() == Some(libc::SIGKILL);
    Stopped {
        helper: Run {
            output,
            elapsed: start.elapsed(),
            ended: Instant::now(),
        },
        helper_killed,
        stand_in_code: stand_in_status.code(),
        stand_in_signal: stand_in_status.signal(),
    }
}

#[test]
fn a_drained_proxy_ends_the_hook_with_0_before_it_exits_and_no_request_is_cut() {
    let mut stand_in = spawn_stand_in(Duration::from_secs(2));
    let request = in_flight_request(stand_in.port);
    let stopped = stop_stand_in(&mut stand_in, "30");
    let answer = request.join().unwrap();
    let log = stopped.helper.log();
    let events = stand_in.events();
    assert!(
        !stopped.helper_killed,
        "the helper outlived the stand-in:\n{log}\n{events}"
    );
    assert_eq!(stopped.helper.code(), Some(0), "{log}\n{events}");
    assert_eq!(stopped.stand_in_code, Some(0), "{events}");
    assert_served_in_full(&answer);
    // The helper waited for the in-flight request (2 s), well before --max.
    assert!(stopped.helper.elapsed >= Duration::from_secs(2), "{log}");
    assert!(stopped.helper.elapsed < GENEROUS, "{log}");
    stopped.helper.assert_logged(&format!(
        "PID {} listens on port(s) {}; pinning 1 connection(s)",
        stand_in.pid, stand_in.port
    ));
    stopped
        .helper
        .assert_logged_before("closed port(s)", "has drained");
    // The stand-in served the request, then waited for the helper's pin, which closed only
    // when the helper exited; then it exited itself.
    let order: Vec<&str> = events.lines().collect();
    assert_eq!(
        order,
        [
            "request: first half sent",
            "quit: listener closed",
            "request: served in full",
            &format!(
                "closed by the client after {} bytes",
                "GET /drain-helper-pin HTTP/1.1\r\n".len()
            ),
            "exit",
        ],
        "{log}"
    );
}

#[test]
fn a_proxy_with_no_requests_in_flight_is_released_at_once() {
    let mut stand_in = spawn_stand_in(Duration::from_secs(60));
    let stopped = stop_stand_in(&mut stand_in, "30");
    let log = stopped.helper.log();
    assert!(!stopped.helper_killed, "{log}");
    assert_eq!(stopped.helper.code(), Some(0), "{log}");
    assert!(stopped.helper.elapsed < GENEROUS, "{log}");
    stopped.helper.assert_logged("0 connection(s) left");
    assert!(
        stand_in.events().ends_with("exit\n"),
        "{}",
        stand_in.events()
    );
}

#[test]
fn an_in_flight_request_longer_than_max_still_gives_124_and_is_not_cut() {
    let mut stand_in = spawn_stand_in(Duration::from_secs(5));
    let request = in_flight_request(stand_in.port);
    let stopped = stop_stand_in(&mut stand_in, "2");
    let answer = request.join().unwrap();
    let log = stopped.helper.log();
    assert!(!stopped.helper_killed, "{log}");
    stopped.helper.assert_cut_by_max(
        Duration::from_secs(2),
        "--max 2s reached during signal (waiting for the process to drain)",
    );
    // The helper gave up, not the proxy: the request still completed.
    assert_served_in_full(&answer);
    assert_eq!(stopped.stand_in_code, Some(0));
}

/// A stream (here: an answer slower than the whole hook) keeps a graceful stop going: with
/// `--fast-signal`, the helper sends it when `--max` runs out, so the proxy stops before the
/// kubelet's SIGKILL, and the hook ends by itself rather than with 124.
#[test]
fn a_proxy_still_draining_at_max_gets_its_fast_signal() {
    let mut stand_in = spawn_stand_in(Duration::from_secs(20));
    let request = in_flight_request(stand_in.port);
    let stopped = stop_stand_in_with(&mut stand_in, "2", &["--fast-signal", "SIGTERM"]);
    let _ = request.join();
    let log = stopped.helper.log();
    assert!(
        log.contains("still drains (1 connection(s) left): sending SIGTERM (fast stop)"),
        "{log}"
    );
    // Stopped by the fast signal at --max, long before its slow answer was due.
    assert_eq!(stopped.stand_in_signal, Some(libc::SIGTERM), "{log}");
    assert!(stopped.helper.elapsed >= Duration::from_secs(2), "{log}");
    assert!(stopped.helper.elapsed < Duration::from_secs(15), "{log}");
    // The runtime ends the hook when the process exits; when the helper got there first, it
    // ended with 0, not with --max's 124.
    if !stopped.helper_killed {
        assert_eq!(stopped.helper.code(), Some(0), "{log}");
    }
}

/// `--wait-idle` on a proxy's own port (issue 27): its clients (a load balancer's kept-alive
/// connections) stay until the proxy closes them, which it does after its graceful signal. So
/// the signal comes first, then the wait, which ends once the proxy has closed them; before,
/// the wait ran first and reached --max without ever sending the signal.
#[test]
fn wait_idle_on_a_proxy_port_waits_after_the_graceful_signal() {
    let mut stand_in = spawn_stand_in(Duration::from_millis(100));
    let port = stand_in.port.to_string();
    // A client's idle kept-alive connection, open until the proxy closes it.
    let mut idle = TcpStream::connect(("127.0.0.1", stand_in.port)).unwrap();
    idle.set_read_timeout(Some(GENEROUS)).unwrap();
    let stopped = stop_stand_in_with(&mut stand_in, "10", &["--wait-idle", &port]);
    let mut rest = Vec::new();
    assert_eq!(
        idle.read_to_end(&mut rest).unwrap(),
        0,
        "closed by the proxy"
    );
    let log = stopped.helper.log();
    let events = stand_in.events();
    assert!(!stopped.helper_killed, "{log}\n{events}");
    assert_eq!(stopped.helper.code(), Some(0), "{log}\n{events}");
    assert!(
        stopped.helper.elapsed < Duration::from_secs(8),
        "well before --max: {log}"
    );
    stopped
        .helper
        .assert_logged_before("sent SIGQUIT", "wait-idle: no established connections");
    assert!(
        events.contains("idle connection closed on quit"),
        "{events}"
    );
    assert_eq!(stopped.stand_in_code, Some(0), "{events}");
}

#[test]
fn then_exec_gives_the_command_the_default_sigpipe() {
    // The helper ignores SIGPIPE itself; an ignored signal survives exec, and `yes` would then
    // get EPIPE and complain instead of dying quietly when `head` stops reading.
    let run = run_args(&[
        "prestop",
        "--delay",
        "0",
        "--then-exec",
        "--",
        "sh",
        "-c",
        "yes | head -n 1 >/dev/null",
    ]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    let log = run.log();
    assert!(!log.to_lowercase().contains("broken pipe"), "{log}");
}
