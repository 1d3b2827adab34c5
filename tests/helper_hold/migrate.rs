//! `--migrate` with the real binary: a stand-in for the front proxy (this test binary
//! re-executed) that, like nginx on SIGHUP, closes its idle kept-alive connections and keeps
//! listening, and counts its accepts into the synthetic `/proc/net/snmp` the hold reads.

use super::*;
use drain_webhook::drain_record::{DrainRecord, EndReason, parse_message};
use std::io::ErrorKind;

/// Set when the test binary is re-executed as the stand-in: where it writes its port, its
/// counter file and its events.
const STAND_IN_DIR: &str = "DRAIN_TEST_MIGRATE_STAND_IN_DIR";

/// Not a test: the entry point of the stand-in process. Returns at once in a normal run.
#[test]
fn stand_in_proxy_process() {
    if let Some(dir) = std::env::var_os(STAND_IN_DIR) {
        stand_in::run(Path::new(&dir));
    }
}

mod stand_in {
    use std::fs::OpenOptions;
    use std::io::{ErrorKind, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    static RELOAD: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_hup(_: libc::c_int) {
        RELOAD.store(true, Ordering::SeqCst);
    }

    /// Serves `GET` with a short answer on kept-alive connections; `POST /drain` answers and
    /// then acts as SIGHUP does: every connection with no request in progress is closed, the
    /// listener stays.
    pub fn run(dir: &Path) -> ! {
        let handler: extern "C" fn(libc::c_int) = on_hup;
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        #[allow(unsafe_code)]
        unsafe {
            libc::signal(libc::SIGHUP, handler as libc::sighandler_t);
        }
        let mut events = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("events"))
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let mut accepts = 0u64;
        let snmp = dir.join("snmp");
        super::write_atomically(&snmp, &super::snmp_text(50_000));
        let port = listener.local_addr().unwrap().port();
        super::write_atomically(&dir.join("port"), &port.to_string());
        let mut connections: Vec<(TcpStream, Vec<u8>)> = Vec::new();
        loop {
            while let Ok((stream, _)) = listener.accept() {
                stream.set_nonblocking(true).unwrap();
                connections.push((stream, Vec::new()));
                accepts += 1;
                super::write_atomically(&snmp, &super::snmp_text(50_000 + accepts));
            }
            let mut drain_asked = false;
            connections.retain_mut(|(stream, buffer)| {
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk) {
                    Ok(0) => return false,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    Err(err) if err.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => return false,
                }
                while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    let request: Vec<u8> = buffer.drain(..end + 4).collect();
                    if request.starts_with(b"POST /drain ") {
                        drain_asked = true;
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        return false;
                    }
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                }
                true
            });
            if RELOAD.swap(false, Ordering::SeqCst) || drain_asked {
                let before = connections.len();
                connections.retain(|(_, buffer)| !buffer.is_empty());
                let line = format!(
                    "reload: closed {} idle connection(s), still listening",
                    before - connections.len()
                );
                writeln!(events, "{line}").unwrap();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The stand-in, killed when dropped.
struct StandIn {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl StandIn {
    fn start() -> StandIn {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "migrate::stand_in_proxy_process",
                "--exact",
                "--test-threads=1",
            ])
            .env(STAND_IN_DIR, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let port_file = dir.path().join("port");
        let started = Instant::now();
        while !port_file.exists() {
            assert!(started.elapsed() < Duration::from_secs(20), "no stand-in");
            thread::sleep(Duration::from_millis(10));
        }
        let port = fs::read_to_string(&port_file).unwrap().parse().unwrap();
        StandIn { child, dir, port }
    }

    fn snmp(&self) -> PathBuf {
        self.dir.path().join("snmp")
    }

    fn events(&self) -> String {
        fs::read_to_string(self.dir.path().join("events")).unwrap_or_default()
    }

    /// `drain-helper prestop ARGS` with the stand-in as PID 1, its counter and its port.
    fn helper(&self, args: &[&str]) -> Command {
        let mut command = super::helper(args, &self.snmp());
        command
            .env("DRAIN_HELPER_TARGET_PID", self.child.id().to_string())
            .env("DRAIN_HELPER_INBOUND_PORTS", self.port.to_string());
        command
    }

    /// `--record` into this stand-in's folder, as the proxy's.
    fn record_args(&self) -> Vec<String> {
        let path = self.dir.path().join("termination-log");
        ["--record", path.to_str().unwrap(), "--role", "proxy"]
            .map(str::to_owned)
            .to_vec()
    }

    /// The drain record the hook left, read as the observer reads it.
    fn drain_record(&self) -> DrainRecord {
        let message = fs::read_to_string(self.dir.path().join("termination-log")).unwrap();
        parse_message(&message).unwrap().expect("a drain record")
    }

    /// Whether the stand-in still runs and accepts connections.
    fn still_serving(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
            && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the client did once the proxy closed its kept-alive connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterClose {
    /// Went elsewhere (a live pod, through the Service): nothing more here.
    Leave,
    /// Came back here (a load balancer still routing to the pod): a new short connection
    /// every 300 ms.
    ReconnectHere,
}

/// A client with one kept-alive connection, a request every 200 ms until `until` from now.
/// Returns when its connection was closed by the stand-in, if it was.
pub(super) fn client(
    port: u16,
    until: Duration,
    after: AfterClose,
) -> thread::JoinHandle<Option<Instant>> {
    let start = Instant::now();
    thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let request = b"GET / HTTP/1.1\r\nHost: app\r\n\r\n";
        let mut closed = None;
        while start.elapsed() < until {
            let mut answer = [0u8; 64];
            let ok = stream.write_all(request).is_ok()
                && matches!(stream.read(&mut answer), Ok(n) if n > 0);
            if !ok {
                closed = Some(Instant::now());
                break;
            }
            thread::sleep(Duration::from_millis(200));
        }
        if closed.is_some() && after == AfterClose::ReconnectHere {
            while start.elapsed() < until {
                if let Ok(mut short) = TcpStream::connect(("127.0.0.1", port)) {
                    let _ = short.write_all(request);
                    let _ = short.read(&mut [0u8; 64]);
                }
                thread::sleep(Duration::from_millis(300));
            }
        }
        closed
    })
}

pub(super) const HOLD_ARGS: [&str; 6] = ["--delay", "1", "--quiet", "2", "--hold-max", "12"];

#[test]
fn without_migrate_a_kept_alive_client_holds_the_pod_to_the_cap() {
    let stand_in = StandIn::start();
    let client = client(stand_in.port, Duration::from_secs(14), AfterClose::Leave);
    let record_args = stand_in.record_args();
    let mut args = HOLD_ARGS.to_vec();
    args.extend(record_args.iter().map(String::as_str));
    let run = run(stand_in.helper(&args));
    run.assert_exit_0();
    assert_eq!(run.hold_end().1, "cap", "{}", run.log());
    assert_eq!(client.join().unwrap(), None, "the connection stayed open");
    // The record says what the log says: the cap, with requests still arriving after D.
    let record = stand_in.drain_record();
    assert_eq!((record.why, record.migrated_at_ms), (EndReason::Cap, None));
    assert!(record.capped_with_traffic(), "{record:?}");
    assert!(
        (12_000..=12_000 + 6_000).contains(&record.end_ms),
        "{record:?}"
    );
    let last = record.last_arrival_ms.expect("requests arrived");
    assert!((1_000..=record.end_ms).contains(&last), "{record:?}");
}

#[test]
fn with_migrate_hup_the_client_moves_and_the_hold_ends_quiet_well_before_the_cap() {
    let mut stand_in = StandIn::start();
    let client = client(stand_in.port, Duration::from_secs(14), AfterClose::Leave);
    let record_args = stand_in.record_args();
    let mut args = HOLD_ARGS.to_vec();
    args.extend(["--migrate", "HUP"]);
    args.extend(record_args.iter().map(String::as_str));
    let run = run(stand_in.helper(&args));
    run.assert_exit_0();
    let log = run.log();
    let (at, reason, _) = run.hold_end();
    assert_eq!(reason, "quiet", "{log}");
    // The record: migrated at D, quiet before the cap, the requests before the migration.
    let record = stand_in.drain_record();
    assert_eq!(record.why, EndReason::Quiet, "{record:?}");
    let migrated = record.migrated_at_ms.expect("migrated");
    assert!((1_000..record.end_ms).contains(&migrated), "{record:?}");
    assert!(record.end_ms < 12_000, "{record:?}");
    assert!(
        record
            .last_arrival_ms
            .is_none_or(|last| last <= migrated + 2_000),
        "{record:?}"
    );
    // Migrated at D = 1 s, quiet Q = 2 s later: far from the cap of 12 s.
    assert!((1.0..=1.0 + 2.0 + SLACK).contains(&at), "{at}\n{log}");
    let pid = stand_in.child.id();
    assert!(
        log.contains(&format!(
            ": sent SIGHUP to PID {pid}; 1 inbound connection(s) open before"
        )),
        "{log}"
    );
    assert!(
        log.contains("after migration: 0 inbound connection(s) open 1.")
            && log.contains(" after (1 before)"),
        "{log}"
    );
    run.assert_order("migrated after 1.", "hold ended after");
    assert_eq!(log.matches("migrated after").count(), 1, "{log}");
    assert!(client.join().unwrap().is_some(), "the stand-in closed it");
    assert!(
        stand_in
            .events()
            .contains("reload: closed 1 idle connection(s)")
    );
    // SIGHUP did not stop the proxy: it still listens.
    assert!(stand_in.still_serving());
}

#[test]
fn with_migrate_post_the_app_lets_go_and_the_hold_ends_quiet() {
    let mut stand_in = StandIn::start();
    let client = client(stand_in.port, Duration::from_secs(14), AfterClose::Leave);
    let url = format!("http://127.0.0.1:{}/drain", stand_in.port);
    let mut args = HOLD_ARGS.to_vec();
    args.extend(["--migrate", &url]);
    let run = run(stand_in.helper(&args));
    run.assert_exit_0();
    let log = run.log();
    let (at, reason, _) = run.hold_end();
    assert_eq!(reason, "quiet", "{log}");
    assert!((1.0..=1.0 + 2.0 + SLACK).contains(&at), "{at}\n{log}");
    assert!(log.contains(&format!(": POST {url}: HTTP 200; ")), "{log}");
    assert!(client.join().unwrap().is_some());
    assert!(stand_in.still_serving());
}

/// The proxy let the kept-alive connection go, but the client comes back here with new
/// connections (a load balancer still routing to the pod): the counter sees them, as before
/// the migration, and the pod is held until they stop.
#[test]
fn a_client_that_reconnects_here_after_the_migration_holds_as_new_connections() {
    let stand_in = StandIn::start();
    let client = client(
        stand_in.port,
        Duration::from_secs(7),
        AfterClose::ReconnectHere,
    );
    let mut args = HOLD_ARGS.to_vec();
    args.extend(["--migrate", "SIGHUP"]);
    let run = run(stand_in.helper(&args));
    run.assert_exit_0();
    let log = run.log();
    let (at, reason, _) = run.hold_end();
    assert_eq!(reason, "quiet", "{log}");
    // The reconnections last until 7 s of the client's clock (started first): quiet only Q
    // after them, not Q after the migration (3 s). The bound leaves the client 2 s of stalls.
    assert!(at >= 5.0 + 2.0, "{at}\n{log}");
    assert!(at <= 7.0 + 2.0 + SLACK, "{at}\n{log}");
    let reconnections = log
        .lines()
        .skip_while(|line| !line.contains("migrated after"))
        .filter_map(|line| line.split("still receiving: ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    assert!(
        reconnections >= 3,
        "new connections counted after it:\n{log}"
    );
    assert!(client.join().unwrap().is_some());
}

/// A migration that fails (no such process, or the URL refuses) is one line, and the hold
/// goes on exactly as without it: traffic that never stops is held to the cap.
#[test]
fn a_failed_migration_is_logged_and_the_hold_goes_on() {
    let never_stops = Arrivals {
        traffic_until: None,
        ..Arrivals::default()
    };
    for (migrate, target, why) in [
        (
            "HUP",
            "999999999",
            "could not send SIGHUP to PID 999999999: ",
        ),
        (
            "http://127.0.0.1:1/drain",
            "1",
            "POST http://127.0.0.1:1/drain failed: ",
        ),
    ] {
        let feeder = Feeder::start(never_stops);
        let mut command = helper(
            &[
                "--delay",
                "1",
                "--quiet",
                "1",
                "--hold-max",
                "4",
                "--migrate",
                migrate,
            ],
            &feeder.path,
        );
        command.env("DRAIN_HELPER_TARGET_PID", target);
        let run = run(command);
        run.assert_exit_0();
        let log = run.log();
        let failed: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("migration failed after 1."))
            .collect();
        assert_eq!(failed.len(), 1, "{log}");
        assert!(
            failed[0].contains(why) && failed[0].ends_with("; holding on as before"),
            "{log}"
        );
        assert!(!log.contains("migrated after"), "{log}");
        let (at, reason, _) = run.hold_end();
        assert_eq!(reason, "cap", "{log}");
        assert!(at >= 4.0, "{at}");
    }
}

/// Quiet at the floor: the hold ends there and nothing is sent (a process that does not
/// handle the signal, here `sleep`, would die of it).
#[test]
fn a_hold_that_ends_at_the_floor_does_not_migrate() {
    let feeder = Feeder::start(Arrivals {
        traffic_until: Some(Duration::ZERO),
        ..Arrivals::default()
    });
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let mut command = helper(
        &[
            "--delay",
            "1",
            "--quiet",
            "1",
            "--hold-max",
            "10",
            "--migrate",
            "HUP",
        ],
        &feeder.path,
    );
    command.env("DRAIN_HELPER_TARGET_PID", sleeper.id().to_string());
    let run = run(command);
    let still_running = sleeper.try_wait().unwrap().is_none();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    run.assert_exit_0();
    assert_eq!(run.hold_end().1, "quiet", "{}", run.log());
    assert!(!run.log().contains("migrat"), "{}", run.log());
    assert!(still_running, "SIGHUP reached the target");
}

#[test]
fn the_stand_in_closes_idle_connections_on_sighup_and_keeps_listening() {
    // The stand-in itself, so that the tests above rest on it.
    let mut stand_in = StandIn::start();
    let mut idle = TcpStream::connect(("127.0.0.1", stand_in.port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    thread::sleep(Duration::from_millis(100));
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on our own child, not yet reaped.
    let sent = unsafe { libc::kill(stand_in.child.id() as i32, libc::SIGHUP) };
    assert_eq!(sent, 0);
    let mut buffer = [0u8; 8];
    let read = idle.read(&mut buffer);
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::ConnectionReset),
        "{read:?}"
    );
    assert!(stand_in.still_serving());
}
