//! The adaptive hold, the follow and the stagger with the real drain-helper binary. The
//! kernel's counter is a synthetic `/proc/net/snmp` (`DRAIN_HELPER_SNMP_PATH`) that a feeder
//! thread rewrites atomically (write, then rename) as connections "arrive"; a probe is one
//! connection per second, like the kubelet's readiness probe in the e2e demo. The socket table
//! is this machine's, read over NETLINK_SOCK_DIAG: `DRAIN_HELPER_INBOUND_PORTS` makes the hold
//! watch only the test's own listener (its client is a loopback peer, which a pod's hold would
//! take for one of its own containers), so other traffic on the machine cannot hold it. Timing
//! assertions are orderings and generous bounds (the build machine is busy), never exact.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

#[path = "helper_hold/migrate.rs"]
mod migrate;
#[path = "helper_hold/nginx.rs"]
mod nginx;

const BIN: &str = env!("CARGO_BIN_EXE_drain-helper");
/// Slack on top of any expected end: the test machine runs other builds.
const SLACK: f64 = 6.0;

/// `/proc/net/snmp` as the kernel writes it, with `passive_opens` in its column.
fn snmp_text(passive_opens: u64) -> String {
    format!(
        "Ip: Forwarding DefaultTTL InReceives\nIp: 2 64 963649\n\
         Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n\
         Tcp: 1 200 120000 -1 59647 {passive_opens} 549 1010 0 963574 959138 16 0 1214 0\n\
         Udp: InDatagrams NoPorts\nUdp: 73 0\n"
    )
}

/// Replaces the file in one step, as the kernel's file never shows half a count.
fn write_atomically(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    fs::write(&temporary, text).unwrap();
    fs::rename(&temporary, path).unwrap();
}

/// What arrives, from the feeder's start: `traffic_until` (None: forever) three connections
/// every 100 ms (or one every `trickle`), and with `probe` one connection per second;
/// `probe_forwarded`: each probe also opens a second connection in the pod (a front proxy
/// forwarding it to the app); `ten_second_probes`: that many more probes, every 10 s each, at
/// phases spread over the period.
#[derive(Clone, Copy, Default)]
struct Arrivals {
    traffic_until: Option<Duration>,
    trickle: Option<Duration>,
    probe: bool,
    probe_forwarded: bool,
    ten_second_probes: u64,
    /// Delete the file at this time (the counter becomes unreadable).
    vanish_at: Option<Duration>,
}

impl Arrivals {
    fn count(&self, elapsed: Duration) -> u64 {
        let traffic_time = self
            .traffic_until
            .map_or(elapsed, |until| elapsed.min(until));
        let traffic = match self.trickle {
            // The first connection at half the interval, then one every interval.
            Some(every) => ((traffic_time + every / 2).as_millis() / every.as_millis()) as u64,
            None => 3 * (traffic_time.as_millis() / 100) as u64,
        };
        let elapsed_ms = elapsed.as_millis() as u64;
        let slow_probes: u64 = (0..self.ten_second_probes)
            .map(|i| {
                let phase = (300 + 1_700 * i) % 10_000;
                if elapsed_ms < phase {
                    0
                } else {
                    (elapsed_ms - phase) / 10_000 + 1
                }
            })
            .sum();
        let probes = match (self.probe, self.probe_forwarded) {
            (true, false) => elapsed.as_secs() + 1,
            (true, true) => 2 * (elapsed.as_secs() + 1),
            (false, _) => 0,
        };
        50_000 + traffic + probes + slow_probes
    }
}

/// A synthetic counter file, fed by a thread until dropped.
struct Feeder {
    _dir: tempfile::TempDir,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Feeder {
    fn start(arrivals: Arrivals) -> Feeder {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snmp");
        let start = Instant::now();
        write_atomically(&path, &snmp_text(arrivals.count(Duration::ZERO)));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (path, stop) = (path.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                let mut last = None;
                while !stop.load(Ordering::Relaxed) {
                    let elapsed = start.elapsed();
                    if arrivals.vanish_at.is_some_and(|at| elapsed >= at) {
                        let _ = fs::remove_file(&path);
                        return;
                    }
                    let count = arrivals.count(elapsed);
                    if last != Some(count) {
                        write_atomically(&path, &snmp_text(count));
                        last = Some(count);
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Feeder {
            _dir: dir,
            path,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn helper(args: &[&str], snmp: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("prestop")
        .args(args)
        .env("DRAIN_HELPER_LOG_TO_STDERR", "1")
        .env("DRAIN_HELPER_SNMP_PATH", snmp)
        // Port 1 (tcpmux): no connection on this machine; a test with a client replaces it.
        .env("DRAIN_HELPER_INBOUND_PORTS", "1")
        .env_remove("DRAIN_HELPER_TARGET_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

struct Run {
    output: Output,
    /// Seconds from the spawn to the exit, as the test saw them.
    elapsed: f64,
    ended: Instant,
}

impl Run {
    fn log(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn assert_exit_0(&self) {
        assert_eq!(self.output.status.code(), Some(0), "{}", self.log());
    }

    /// `hold ended after X.Ys: REASON...`, parsed as e2e/holds.rs does: (X.Y, REASON, rest).
    fn hold_end(&self) -> (f64, String, String) {
        let log = self.log();
        let ends: Vec<&str> = log
            .lines()
            .filter_map(|line| line.split_once("hold ended after ").map(|(_, rest)| rest))
            .collect();
        assert_eq!(ends.len(), 1, "exactly one end line:\n{log}");
        let (seconds, why) = ends[0].split_once("s: ").expect("X.Ys: reason");
        let (whole, tenth) = seconds.split_once('.').expect("one decimal");
        assert!(
            whole.bytes().all(|b| b.is_ascii_digit()) && tenth.len() == 1,
            "{seconds}"
        );
        let reason = why.split([' ', '(']).next().unwrap().to_string();
        (seconds.parse().unwrap(), reason, why.to_string())
    }

    /// The first line containing `first` comes before the first containing `then`.
    fn assert_order(&self, first: &str, then: &str) {
        let log = self.log();
        let at = |needle: &str| {
            log.lines()
                .position(|line| line.contains(needle))
                .unwrap_or_else(|| panic!("no line contains {needle:?}:\n{log}"))
        };
        assert!(
            at(first) < at(then),
            "{first:?} should come before {then:?}:\n{log}"
        );
    }
}

fn run(mut command: Command) -> Run {
    let start = Instant::now();
    let output = command.output().expect("drain-helper runs");
    Run {
        output,
        elapsed: start.elapsed().as_secs_f64(),
        ended: Instant::now(),
    }
}

/// A free loopback port: bound, noted, released (for nginx to listen on, or for a port nobody
/// listens on; nothing else here binds at random).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
#[test]
fn released_after_the_traffic_stops_not_held_by_the_probe() {
    // D = 1, Q = 2, traffic until L = 3, a probe every second throughout, cap 30.
    let feeder = Feeder::start(Arrivals {
        traffic_until: Some(Duration::from_secs(3)),
        probe: true,
        probe_forwarded: false,
        vanish_at: None,
        ..Arrivals::default()
    });
    let args = [
        "--delay",
        "1",
        "--quiet",
        "2",
        "--hold-max",
        "30",
        "--probe-every",
        "1",
    ];
    let run = run(helper(&args, &feeder.path));
    run.assert_exit_0();
    let (at, reason, detail) = run.hold_end();
    assert_eq!(
        (reason.as_str(), detail.as_str()),
        ("quiet", "quiet for 2s")
    );
    // Held past the floor by the traffic, and released within Q (plus slack) of its end,
    // long before the cap although the probe never stopped.
    assert!(at >= 3.0, "{at}\n{}", run.log());
    assert!(at <= 3.0 + 2.0 + SLACK, "{at}\n{}", run.log());
    assert!(run.elapsed < 30.0);
    run.assert_order(
        "hold: at least 1s, until quiet for 2s, at most 30s",
        "still receiving: ",
    );
    run.assert_order("still receiving: ", "hold ended after");
    assert!(
        run.log()
            .contains("new connections and 0 bytes on open connections in the last 2s"),
        "{}",
        run.log()
    );
}

/// The e2e demo's shape: the kubelet's readiness probe every second reaches the front proxy,
/// which forwards it to the app over loopback, so each probe is two accepted connections; the
/// plan lists its period twice (`--probe-every 1,1`) and the pod is released at L + Q.
#[test]
fn a_probe_forwarded_by_the_proxy_is_discounted_twice() {
    let arrivals = Arrivals {
        traffic_until: Some(Duration::from_secs(3)),
        probe: true,
        probe_forwarded: true,
        vanish_at: None,
        ..Arrivals::default()
    };
    let feeder = Feeder::start(arrivals);
    let args = [
        "--delay",
        "1",
        "--quiet",
        "2",
        "--hold-max",
        "30",
        "--probe-every",
        "1,1",
    ];
    let twice = run(helper(&args, &feeder.path));
    twice.assert_exit_0();
    let (at, reason, _) = twice.hold_end();
    assert_eq!(reason, "quiet", "{}", twice.log());
    assert!(
        (3.0..=3.0 + 2.0 + SLACK).contains(&at),
        "{at}\n{}",
        twice.log()
    );
    // Listed once only, the forwarded half is taken for traffic: held to the cap. Q = 6 s
    // gives the margin: every window sees at least 12 connections, of which the one entry
    // excuses at most 7 (a 2 s stall of the feeder or the helper still leaves 4 unexcused),
    // where Q = 2 s left one connection between "cap" and "quiet".
    let feeder = Feeder::start(arrivals);
    let args = [
        "--delay",
        "1",
        "--quiet",
        "6",
        "--hold-max",
        "9",
        "--probe-every",
        "1",
    ];
    let once = run(helper(&args, &feeder.path));
    once.assert_exit_0();
    assert_eq!(once.hold_end().1, "cap", "{}", once.log());
}

/// Slow traffic beside 10 s probes (issue 30): each listed probe excuses one connection per
/// period, so a request every 2 s (lone app, two probes) or every second (front proxy, six
/// entries) holds the pod until it stops, where the window-by-window allowance released it at
/// D. D = 10 s as by default: in its first period a probe's token is usable at any time (its
/// phase is not known yet), and by D the traffic has spent those. Released Q after the traffic
/// at the earliest, and within two periods plus tolerances (22 s) after it at the latest
/// (docs/helper.md, "Probes").
fn slow_traffic_holds_until_it_stops(trickle: Duration, probes: &str, ten_second_probes: u64) {
    let feeder = Feeder::start(Arrivals {
        traffic_until: Some(Duration::from_secs(14)),
        trickle: Some(trickle),
        ten_second_probes,
        ..Arrivals::default()
    });
    let args = [
        "--delay",
        "10",
        "--quiet",
        "3",
        "--hold-max",
        "60",
        "--probe-every",
        probes,
    ];
    let run = run(helper(&args, &feeder.path));
    run.assert_exit_0();
    let (at, reason, _) = run.hold_end();
    assert_eq!(reason, "quiet", "{}", run.log());
    // The last request came at 13-14 s of the feeder's clock, which started first.
    assert!(at >= 13.0 + 3.0, "{at}\n{}", run.log());
    assert!(at <= 14.0 + 22.0 + SLACK, "{at}\n{}", run.log());
    run.assert_order("still receiving: ", "hold ended after");
}

#[test]
fn half_a_connection_per_second_beside_two_10s_probes_holds_until_it_stops() {
    slow_traffic_holds_until_it_stops(Duration::from_secs(2), "10,10", 2);
}

#[test]
fn a_connection_per_second_beside_six_10s_probes_holds_until_it_stops() {
    slow_traffic_holds_until_it_stops(Duration::from_secs(1), "10,10,10,10,10,10", 6);
}

#[test]
fn traffic_that_never_stops_is_released_at_the_cap() {
    let feeder = Feeder::start(Arrivals {
        traffic_until: None,
        probe: false,
        probe_forwarded: false,
        vanish_at: None,
        ..Arrivals::default()
    });
    let args = ["--delay", "1", "--quiet", "1", "--hold-max", "4"];
    let run = run(helper(&args, &feeder.path));
    run.assert_exit_0();
    let (at, reason, detail) = run.hold_end();
    assert_eq!(reason, "cap");
    assert_eq!(detail, "cap 4s reached with traffic still arriving");
    assert!(at >= 4.0, "{at}");
    assert!(run.elapsed < 4.0 + SLACK, "{}", run.elapsed);
    run.assert_order("still receiving: ", "hold ended after");
}

#[test]
fn the_probe_holds_until_the_cap_unless_discounted() {
    let probe_only = Arrivals {
        traffic_until: Some(Duration::ZERO),
        probe: true,
        probe_forwarded: false,
        vanish_at: None,
        ..Arrivals::default()
    };
    // Not told about the probe: its connection every second is traffic. Q = 3 s: only a
    // stall of the feeder longer than 2 s could show a quiet window.
    let feeder = Feeder::start(probe_only);
    let run_plain = run(helper(
        &["--delay", "1", "--quiet", "3", "--hold-max", "4"],
        &feeder.path,
    ));
    run_plain.assert_exit_0();
    assert_eq!(run_plain.hold_end().1, "cap");
    // Told: released once Q was observed (at the later of D and Q), well before the cap.
    let feeder = Feeder::start(probe_only);
    let run_discounted = run(helper(
        &[
            "--delay",
            "1",
            "--quiet",
            "2",
            "--hold-max",
            "14",
            "--probe-every",
            "1",
        ],
        &feeder.path,
    ));
    run_discounted.assert_exit_0();
    let (at, reason, _) = run_discounted.hold_end();
    assert_eq!(reason, "quiet", "{}", run_discounted.log());
    assert!((2.0..2.0 + SLACK).contains(&at), "{at}");
    assert!(!run_discounted.log().contains("still receiving"));
}

#[test]
fn an_unreadable_counter_makes_the_hold_the_fixed_delay() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let garbage = dir.path().join("garbage");
    fs::write(&garbage, "Tcp: ActiveOpens\nTcp: 12\n").unwrap();
    for (path, why) in [
        (&missing, "No such file"),
        (&garbage, "no Tcp PassiveOpens count"),
    ] {
        let run = run(helper(
            &["--delay", "1", "--quiet", "2", "--hold-max", "30"],
            path,
        ));
        run.assert_exit_0();
        let (at, reason, detail) = run.hold_end();
        assert_eq!(reason, "fixed");
        assert!(detail.starts_with("fixed (cannot read "), "{detail}");
        assert!(detail.contains(why), "{detail}");
        // The fixed D: not shorter, and not Q or the cap either.
        assert!((1.0..1.0 + SLACK).contains(&at), "{at}");
        assert!(run.elapsed < 1.0 + SLACK);
    }
}

#[test]
fn a_counter_that_vanishes_during_the_hold_ends_it_as_fixed() {
    // Traffic throughout; the file disappears at 3 s, after the floor of 1 s.
    let feeder = Feeder::start(Arrivals {
        traffic_until: None,
        probe: false,
        probe_forwarded: false,
        vanish_at: Some(Duration::from_secs(3)),
        ..Arrivals::default()
    });
    let run = run(helper(
        &["--delay", "1", "--quiet", "1", "--hold-max", "30"],
        &feeder.path,
    ));
    run.assert_exit_0();
    let (at, reason, _) = run.hold_end();
    assert_eq!(reason, "fixed", "{}", run.log());
    assert!((1.0..3.0 + SLACK).contains(&at), "{at}");
    run.assert_order("still receiving: ", "hold ended after");
}

#[test]
fn max_still_bounds_the_hold() {
    let feeder = Feeder::start(Arrivals {
        traffic_until: None,
        probe: false,
        probe_forwarded: false,
        vanish_at: None,
        ..Arrivals::default()
    });
    let run = run(helper(
        &[
            "--delay",
            "0",
            "--quiet",
            "1",
            "--hold-max",
            "30",
            "--max",
            "2",
        ],
        &feeder.path,
    ));
    assert_eq!(run.output.status.code(), Some(124), "{}", run.log());
    assert!(
        run.log().contains("--max 2s reached during hold"),
        "{}",
        run.log()
    );
    assert!(!run.log().contains("hold ended after"));
}

#[test]
fn follow_ends_when_the_listener_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let child = helper(
        &["--delay", "1", "--follow", &port, "--follow-until", "20"],
        Path::new("/nonexistent"),
    )
    .spawn()
    .unwrap();
    let start = Instant::now();
    thread::sleep(Duration::from_secs(2));
    drop(listener);
    let dropped = Instant::now();
    let output = child.wait_with_output().unwrap();
    let run = Run {
        output,
        elapsed: start.elapsed().as_secs_f64(),
        ended: Instant::now(),
    };
    run.assert_exit_0();
    // Not before the listener closed, and well before the bound.
    assert!(run.ended >= dropped);
    assert!(run.elapsed < 2.0 + SLACK, "{}", run.elapsed);
    let log = run.log();
    assert!(
        log.contains(&format!(
            "follow: waiting until nothing listens on port(s) {port} (at most 20s)"
        )),
        "{log}"
    );
    assert!(log.contains("s: listeners closed\n"), "{log}");
    run.assert_order("sleeping", "follow: waiting");
}

#[test]
fn follow_ends_at_its_bound_then_the_stagger() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let run = run(helper(
        &[
            "--delay",
            "0",
            "--follow",
            &port,
            "--follow-until",
            "2",
            "--stagger",
            "1",
        ],
        Path::new("/nonexistent"),
    ));
    drop(listener);
    run.assert_exit_0();
    let log = run.log();
    let line = log
        .lines()
        .find(|line| line.contains("follow ended after "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.ends_with(": bound 2s reached"), "{line}");
    let seconds: f64 = line
        .split("follow ended after ")
        .nth(1)
        .and_then(|rest| rest.split_once("s:"))
        .and_then(|(x, _)| x.parse().ok())
        .unwrap();
    assert!(seconds >= 2.0, "{seconds}");
    run.assert_order("follow ended after", "stagger: 1s");
    // The bound, then the stagger: at least 3 s in all.
    assert!(
        run.elapsed >= 3.0 && run.elapsed < 3.0 + SLACK,
        "{}",
        run.elapsed
    );
}

/// Ports nothing listened on when the hook started are not the proxy's listeners (a declared
/// containerPort the proxy does not serve on): the app must not take their silence for the
/// proxy's graceful stop, so the follow lasts until its bound.
#[test]
fn follow_of_ports_nothing_listened_on_waits_for_its_bound() {
    let port = free_port().to_string();
    let run = run(helper(
        &["--delay", "0", "--follow", &port, "--follow-until", "2"],
        Path::new("/nonexistent"),
    ));
    run.assert_exit_0();
    assert!(
        run.log()
            .contains("when the hook started, so they are not the proxy's listeners")
            && run
                .log()
                .contains("bound 2s reached (nothing listened on the ports at the start)"),
        "{}",
        run.log()
    );
    assert!(
        run.elapsed >= 2.0 && run.elapsed < 2.0 + SLACK,
        "{}",
        run.elapsed
    );
}

/// A proxy that closed its listeners by the end of the app's delay (its hold was quiet at D)
/// is followed at once: listening at the start, gone at D.
#[test]
fn follow_of_a_proxy_already_stopped_ends_at_the_delay() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(listener);
    });
    let run = run(helper(
        &["--delay", "1", "--follow", &port, "--follow-until", "20"],
        Path::new("/nonexistent"),
    ));
    closer.join().unwrap();
    run.assert_exit_0();
    assert!(run.log().contains("listeners closed"), "{}", run.log());
    assert!(
        run.elapsed >= 1.0 && run.elapsed < 1.0 + SLACK,
        "{}",
        run.elapsed
    );
}

#[test]
fn the_stagger_comes_after_the_hold_and_before_the_signal() {
    let dir = tempfile::tempdir().unwrap();
    let pid_holder = Command::new("sleep").arg("30").spawn().unwrap();
    let mut command = helper(
        &[
            "--delay",
            "1",
            "--quiet",
            "1",
            "--hold-max",
            "5",
            "--stagger",
            "1",
            "--signal",
            "TERM",
        ],
        &dir.path().join("missing"),
    );
    command.env("DRAIN_HELPER_TARGET_PID", pid_holder.id().to_string());
    let run = run(command);
    let mut pid_holder = pid_holder;
    let _ = pid_holder.wait();
    run.assert_exit_0();
    run.assert_order("hold ended after", "stagger: 1s");
    run.assert_order("stagger: 1s", "sent SIGTERM");
    assert!(run.elapsed >= 2.0, "{}", run.elapsed);
}

/// A kept-alive connection to a listener of the test: the server side reads and discards.
struct KeepAlive {
    port: u16,
    client: TcpStream,
    _server: thread::JoinHandle<()>,
}

impl KeepAlive {
    fn open() -> KeepAlive {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        let server = thread::spawn(move || {
            let _listener = listener;
            let mut buffer = [0u8; 4096];
            while matches!(accepted.read(&mut buffer), Ok(n) if n > 0) {}
        });
        KeepAlive {
            port,
            client,
            _server: server,
        }
    }

    /// Sends a request every 200 ms on the one connection until `until` from now, in a thread.
    fn requests_until(&self, until: Duration) -> thread::JoinHandle<Instant> {
        let mut client = self.client.try_clone().unwrap();
        let start = Instant::now();
        thread::spawn(move || {
            let mut last = start;
            while start.elapsed() < until {
                client
                    .write_all(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
                    .unwrap();
                last = Instant::now();
                thread::sleep(Duration::from_millis(200));
            }
            last
        })
    }
}

/// No new connection at all: the synthetic counter never moves.
fn no_new_connections() -> Feeder {
    Feeder::start(Arrivals {
        traffic_until: Some(Duration::ZERO),
        probe: false,
        probe_forwarded: false,
        vanish_at: None,
        ..Arrivals::default()
    })
}

const KEEP_ALIVE_ARGS: [&str; 6] = ["--delay", "1", "--quiet", "2", "--hold-max", "20"];

#[test]
fn requests_on_a_kept_alive_connection_hold_until_they_stop() {
    let feeder = no_new_connections();
    let connection = KeepAlive::open();
    let mut command = helper(&KEEP_ALIVE_ARGS, &feeder.path);
    command.env("DRAIN_HELPER_INBOUND_PORTS", connection.port.to_string());
    let client = connection.requests_until(Duration::from_secs(4));
    let run = run(command);
    let last_request = client.join().unwrap();
    run.assert_exit_0();
    let (at, reason, detail) = run.hold_end();
    assert_eq!(
        (reason.as_str(), detail.as_str()),
        ("quiet", "quiet for 2s")
    );
    // Not at D or Q as with the counter alone: after the requests stopped, well before M.
    assert!(at >= 4.0, "{at}\n{}", run.log());
    assert!(run.ended >= last_request);
    assert!(at <= 4.0 + 2.0 + SLACK, "{at}\n{}", run.log());
    run.assert_order(
        "still receiving: 0 new connections and ",
        "hold ended after",
    );
    assert!(
        run.log()
            .contains(" bytes on open connections in the last 2s"),
        "{}",
        run.log()
    );
    assert!(!run.log().contains("cannot see requests"), "{}", run.log());
}

#[test]
fn an_idle_kept_alive_connection_does_not_hold() {
    let feeder = no_new_connections();
    let connection = KeepAlive::open();
    // A request before the hook starts: the connection has carried traffic, then idles.
    connection.requests_until(Duration::ZERO).join().unwrap();
    let mut command = helper(&KEEP_ALIVE_ARGS, &feeder.path);
    command.env("DRAIN_HELPER_INBOUND_PORTS", connection.port.to_string());
    let run = run(command);
    run.assert_exit_0();
    let (at, reason, _) = run.hold_end();
    assert_eq!(reason, "quiet", "{}", run.log());
    // Released once Q was observed (the later of D and Q), far from the cap.
    assert!((2.0..2.0 + SLACK).contains(&at), "{at}\n{}", run.log());
    assert!(!run.log().contains("still receiving"), "{}", run.log());
    drop(connection);
}

/// A seccomp filter that refuses `socket(AF_NETLINK, ...)` with EPERM, as a restrictive
/// profile would; every other call is allowed.
#[allow(unsafe_code)]
fn refuse_netlink(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64
    let statement = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    // struct seccomp_data: nr at 0, arch at 4, args[0] (low half, little-endian) at 16.
    let filter = [
        statement(load, 4),
        jump(ARCH, 0, 4),
        statement(load, 0),
        jump(libc::SYS_socket as u32, 0, 2),
        statement(load, 16),
        jump(libc::AF_NETLINK as u32, 1, 0),
        statement(ret, libc::SECCOMP_RET_ALLOW),
        statement(ret, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
    ];
    // SAFETY: between fork and exec only prctl(2) runs (async-signal-safe); the program and
    // its filter live in this closure, which outlives both calls.
    unsafe {
        command.pre_exec(move || {
            let program = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &raw const program,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn without_the_socket_table_the_counter_alone_decides() {
    // The same keep-alive requests, the netlink socket refused: one line, then the hold is the
    // counter's (quiet at the later of D and Q, the requests unseen), and the hook succeeds.
    let feeder = no_new_connections();
    let connection = KeepAlive::open();
    let mut command = helper(&KEEP_ALIVE_ARGS, &feeder.path);
    command.env("DRAIN_HELPER_INBOUND_PORTS", connection.port.to_string());
    refuse_netlink(&mut command);
    // Requests until 6 s: seen, they would hold until at least 7.8 s; unseen, quiet at 2 s.
    let client = connection.requests_until(Duration::from_secs(6));
    let run = run(command);
    client.join().unwrap();
    run.assert_exit_0();
    let log = run.log();
    let fallbacks: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("cannot see requests on open connections"))
        .collect();
    assert_eq!(fallbacks.len(), 1, "{log}");
    assert!(
        fallbacks[0].contains("NETLINK_SOCK_DIAG")
            && fallbacks[0].contains("not permitted")
            && fallbacks[0].ends_with("; counting new connections only"),
        "{log}"
    );
    let (at, reason, _) = run.hold_end();
    assert_eq!(reason, "quiet", "{log}");
    assert!((2.0..5.0).contains(&at), "{at}\n{log}");
    run.assert_order("cannot see requests", "hold ended after");
}
