//! The drain-e2e program (`make e2e`'s demo and load client) as a process: the app and proxy
//! modes' signal behaviour against stand-ins on loopback, and `report` on a synthetic results
//! file. Nothing waits for a time: each step waits for the event it needs, with a generous bound.
#![cfg(feature = "webhook")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_drain-e2e");
/// Upper bound for anything to happen; never a reason for a test to pass.
const PATIENCE: Duration = Duration::from_secs(20);

struct Running {
    child: Child,
    log: mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("drain-e2e runs");
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut running = Running { child, log };
        running.wait_log("listening on");
        running
    }

    fn wait_log(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("drain-e2e never logged {needle:?}"),
            }
        }
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory effects; the pid is our own child's.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "drain-e2e did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends one GET; returns the connection so the caller reads the answer when it wants.
fn send_get(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    stream
}

/// The whole answer, or "" when the connection was closed or reset without one.
fn read_answer(mut stream: TcpStream) -> String {
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn app_answers_and_exits_at_once_on_sigterm_dropping_what_is_in_flight() {
    for signal in [libc::SIGTERM, libc::SIGQUIT] {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        // Requests take far longer than the test may: only an exit can end the one in flight.
        let mut app = Running::start(&["app", "--listen", &listen, "--work", "600s"]);
        let pending = send_get(port);
        // A graceful stop would wait the 600 s out; only an exit at once ends it in time.
        app.signal(signal);
        let status = app.wait_exit();
        assert!(status.success(), "{status:?}");
        assert_eq!(
            read_answer(pending),
            "",
            "the in-flight request was cut off"
        );
    }
    let port = free_port();
    let _app = Running::start(&[
        "app",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--work",
        "0s",
    ]);
    let answer = read_answer(send_get(port));
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
}

/// A proxy in front of a stand-in upstream the test controls, with one request held in flight
/// at the upstream.
struct ProxyWithRequestInFlight {
    proxy: Running,
    port: u16,
    upstream_conn: TcpStream,
    client: TcpStream,
}

fn proxy_with_request_in_flight() -> ProxyWithRequestInFlight {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr: SocketAddr = upstream.local_addr().unwrap();
    let port = free_port();
    let proxy = Running::start(&[
        "proxy",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--upstream",
        &upstream_addr.to_string(),
    ]);
    let client = send_get(port);
    let (mut upstream_conn, _) = upstream.accept().unwrap();
    // The proxy forwarded the request head: the request is now in flight.
    let mut head = [0u8; 1024];
    let n = upstream_conn.read(&mut head).unwrap();
    assert!(head[..n].starts_with(b"GET / HTTP/1.1\r\n"));
    ProxyWithRequestInFlight {
        proxy,
        port,
        upstream_conn,
        client,
    }
}

#[test]
fn proxy_sigquit_stops_accepting_and_finishes_in_flight_requests() {
    let mut t = proxy_with_request_in_flight();
    t.proxy.signal(libc::SIGQUIT);
    t.proxy.wait_log("SIGQUIT, graceful");
    // New connections are refused from now on.
    match TcpStream::connect(("127.0.0.1", t.port)) {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        Ok(_) => panic!("the proxy still accepts after SIGQUIT"),
    }
    // The request in flight still gets its answer, then the proxy exits 0.
    t.upstream_conn
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        .unwrap();
    drop(t.upstream_conn);
    let answer = read_answer(t.client);
    assert!(
        answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("ok"),
        "{answer}"
    );
    let status = t.proxy.wait_exit();
    assert!(status.success(), "{status:?}");
}

#[test]
fn proxy_sigterm_is_a_fast_shutdown() {
    let mut t = proxy_with_request_in_flight();
    t.proxy.signal(libc::SIGTERM);
    // Exits with the request still unanswered: the client gets nothing.
    let status = t.proxy.wait_exit();
    assert!(status.success(), "{status:?}");
    assert_eq!(read_answer(t.client), "");
    drop(t.upstream_conn);
}

#[test]
fn proxy_answers_502_when_the_app_is_gone() {
    let dead = free_port();
    let port = free_port();
    let _proxy = Running::start(&[
        "proxy",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--upstream",
        &format!("127.0.0.1:{dead}"),
    ]);
    let answer = read_answer(send_get(port));
    assert!(answer.starts_with("HTTP/1.1 502 Bad Gateway"), "{answer}");
}

#[test]
fn proxy_relays_the_app() {
    let app_port = free_port();
    let port = free_port();
    let _app = Running::start(&[
        "app",
        "--listen",
        &format!("127.0.0.1:{app_port}"),
        "--work",
        "0s",
    ]);
    let _proxy = Running::start(&[
        "proxy",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--upstream",
        &format!("127.0.0.1:{app_port}"),
    ]);
    let answer = read_answer(send_get(port));
    assert!(
        answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("ok\n"),
        "{answer}"
    );
}

fn report(results: &Path, svg: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["report"])
        .arg(results)
        .arg("--svg")
        .arg(svg)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

const SYNTHETIC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/e2e/results-synthetic.json"
);

#[test]
fn report_prints_the_table_draws_both_namespaces_and_passes() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("results.svg");
    let (ok, text) = report(Path::new(SYNTHETIC), &svg);
    assert!(ok, "{text}");
    assert!(
        text.contains(
            "PASS: the opted-in namespace lost 0 of 2400 requests, 0 of 2400 stream messages, 0 streams cut"
        ),
        "{text}"
    );
    let plain_lb = text
        .lines()
        .find(|l| l.starts_with("demo-plain") && l.contains(" new ") && l.contains(" lb "))
        .unwrap_or_else(|| panic!("no plain lb row in {text}"));
    let fields: Vec<&str> = plain_lb.split_whitespace().collect();
    // namespace injected mode path requests lost lost% refused reset timeout 5xx no-backend other
    assert_eq!(
        &fields[..13],
        [
            "demo-plain",
            "no",
            "new",
            "lb",
            "600",
            "9",
            "1.50%",
            "6",
            "1",
            "0",
            "2",
            "0",
            "0"
        ],
        "{plain_lb}"
    );
    assert!(
        text.contains("create to Ready: 2.10 s (median of 3) injected, 1.90 s (median of 3) plain, ratio x1.11"),
        "{text}"
    );

    // Streams: the plain namespace's lb path missed messages across reconnects; its unclean
    // ends are split into resets and those at its pod's grace period's end (SIGKILL).
    let plain_streams = text
        .lines()
        .filter(|l| l.starts_with("demo-plain") && l.contains(" lb "))
        .nth(2)
        .unwrap_or_else(|| panic!("no plain stream row in {text}"));
    let fields: Vec<&str> = plain_streams.split_whitespace().collect();
    // namespace injected path messages missing opened refused clean reset stalled killed open
    assert_eq!(
        &fields[..12],
        [
            "demo-plain",
            "no",
            "lb",
            "1180",
            "31",
            "14",
            "26",
            "0",
            "4",
            "0",
            "2",
            "2"
        ],
        "{plain_streams}"
    );
    // Holds next to L, and the median from deletion to the proxy's signal.
    assert!(
        text.contains("demo-on: 2 pods terminated, load balancer L = 5 s late; median 17.2 s from deletion to the proxy's stop signal"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("demo-on-a") && l.contains("16.2 quiet")),
        "{text}"
    );

    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.contains("demo-on (drain-webhook), new: lost 0, of 1200 requests"));
    assert!(picture.contains("demo-plain (plain), new: lost 12, of 1200 requests"));
    assert!(picture.contains("demo-plain (plain), stream: lost 37, of 2380 messages"));
    assert_eq!(
        picture.matches("restart 1 (").count(),
        6,
        "one mark per namespace and mode"
    );
    // One bar per second with losses: plain service has 2 such seconds, plain lb 2.
    assert_eq!(picture.matches(r#"class="lost new service""#).count(), 2);
    assert_eq!(picture.matches(r#"class="lost new lb""#).count(), 2);
    assert_eq!(picture.matches(r#"class="lost stream lb""#).count(), 1);
    // Well-formed XML, checked by a parser that is not ours.
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])",
        ])
        .arg(&svg)
        .status()
        .expect("python3 (make deps needs it too)");
    assert!(parsed.success(), "the SVG does not parse");
}

/// A pod whose proxy moved its clients off (SIGHUP, issue 30) shows when, after its deletion;
/// the others a dash.
#[test]
fn report_shows_when_a_pod_moved_its_clients() {
    let mut results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SYNTHETIC).unwrap()).unwrap();
    let hold = &mut results["namespaces"][0]["holds"][0];
    assert_eq!(hold["pod"], "demo-on-a");
    let start = hold["hook_start_unix"].as_f64().unwrap();
    hold["proxy_moved_unix"] = (start + 10.04).into();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results.json");
    std::fs::write(&file, results.to_string()).unwrap();
    let (ok, text) = report(&file, &dir.path().join("r.svg"));
    assert!(ok, "{text}");
    assert!(text.contains("moved at"), "{text}");
    let row = |pod: &str| {
        let line = text.lines().find(|l| l.trim_start().starts_with(pod));
        let line = line.unwrap_or_else(|| panic!("no row for {pod}: {text}"));
        line.split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // pod, hold end, why, receiving, moved at, signal at
    assert_eq!(row("demo-on-a")[4], "10.0", "{text}");
    assert_eq!(row("demo-on-b")[4], "-", "{text}");
}

#[test]
fn report_fails_when_the_opted_in_namespace_lost_a_request() {
    let mut results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SYNTHETIC).unwrap()).unwrap();
    let on = &mut results["namespaces"][0];
    assert_eq!(on["injected"], true);
    on["load"]["modes"]["keepalive"]["lb"]["refused"] = 1.into();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results.json");
    std::fs::write(&file, results.to_string()).unwrap();
    let (ok, text) = report(&file, &dir.path().join("r.svg"));
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAIL: the opted-in namespace lost 1 of 2400 requests, 0 of 2400 stream messages, 0 streams cut"),
        "{text}"
    );
}

#[test]
fn report_fails_when_an_opted_in_stream_was_cut() {
    let mut results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SYNTHETIC).unwrap()).unwrap();
    results["namespaces"][0]["load"]["modes"]["stream"]["service"]["stream"]["reset"] = 1.into();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results.json");
    std::fs::write(&file, results.to_string()).unwrap();
    let (ok, text) = report(&file, &dir.path().join("r.svg"));
    assert!(!ok, "{text}");
    assert!(text.contains("1 streams cut"), "{text}");
}

#[test]
fn report_names_a_file_that_is_not_results() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results.json");
    std::fs::write(&file, "{\"namespaces\": 3}").unwrap();
    let (ok, text) = report(&file, &dir.path().join("r.svg"));
    assert!(!ok);
    assert!(text.contains("is not a make e2e results file"), "{text}");
}
