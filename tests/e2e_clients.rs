//! Every client mode of the load client against the real demo (two "pods", each a drain-e2e
//! proxy in front of a drain-e2e app) behind a stand-in for a Service: a loopback forwarder
//! that, like kube-proxy, sends each new connection to the current backend and leaves
//! established connections where they are. Nothing waits for a time: each step waits for a log
//! line (an event), with a generous bound that is never a reason to pass.
#![cfg(feature = "webhook")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_drain-e2e");
const PATIENCE: Duration = Duration::from_secs(60);

struct Running {
    child: Child,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str], env: &[(&str, &str)], ready: &str) -> Running {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("drain-e2e runs");
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut running = Running {
            child,
            log,
            seen: Vec::new(),
        };
        running.wait_log(ready);
        running
    }

    /// Waits for a line containing every needle; returns it.
    fn wait_log(&mut self, needles: &str) -> String {
        self.wait_logs(needles, 1)
    }

    /// Waits until `count` lines (seen so far in all) contain every `|`-separated needle;
    /// returns the `count`-th.
    fn wait_logs(&mut self, needles: &str, count: usize) -> String {
        let matches = |line: &str| needles.split('|').all(|n| line.contains(n));
        let deadline = Instant::now() + PATIENCE;
        while self.seen.iter().filter(|l| matches(l)).count() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "never logged {count} x {needles:?}; log so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
        self.seen
            .iter()
            .filter(|l| matches(l))
            .nth(count - 1)
            .cloned()
            .unwrap()
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory effects; the pid is our own child's.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    fn wait_exit(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "drain-e2e did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the load client and returns its summary.
    fn summary(mut self) -> serde_json::Value {
        self.signal(libc::SIGTERM);
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.wait_exit();
        let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| {
            panic!(
                "no summary ({e}) in {out:?}; log:\n{}",
                self.seen.join("\n")
            )
        });
        line["drain_e2e_summary"].clone()
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

/// One demo pod: an app and the proxy in front of it, on loopback.
struct Pod {
    app: Running,
    proxy: Running,
    addr: SocketAddr,
}

fn pod(name: &str) -> Pod {
    let app_listen = format!("127.0.0.1:{}", free_port());
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let app = Running::start(
        &["app", "--listen", &app_listen, "--work", "20ms"],
        &[("POD_NAME", name)],
        "listening on",
    );
    let proxy = Running::start(
        &[
            "proxy",
            "--listen",
            &addr.to_string(),
            "--upstream",
            &app_listen,
        ],
        &[],
        "listening on",
    );
    Pod { app, proxy, addr }
}

/// A Service as kube-proxy makes it: each new connection goes to the backend of the moment;
/// an established one stays with its backend (conntrack). A backend that refuses gets the
/// client's connection reset, as close as a user-space forwarder comes to a refused connect.
struct Service {
    addr: SocketAddr,
    backend: Arc<Mutex<SocketAddr>>,
    /// Connections routed whose backend has not answered a first byte yet: until then the
    /// connection may still wait in the backend's accept queue, or its bytes in its socket.
    starting: Arc<AtomicUsize>,
}

impl Service {
    /// The endpoint change, then what the hold of drain-webhook waits for in a real pod: no
    /// new connection still on its way to the old backend.
    fn switch_to(&self, backend: SocketAddr) {
        *self.backend.lock().unwrap() = backend;
        let deadline = Instant::now() + PATIENCE;
        while self.starting.load(Ordering::SeqCst) > 0 {
            assert!(Instant::now() < deadline, "connections never started");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn service(backend: SocketAddr) -> Service {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let current = Arc::new(Mutex::new(backend));
    let starting = Arc::new(AtomicUsize::new(0));
    let (route, counter) = (current.clone(), starting.clone());
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            counter.fetch_add(1, Ordering::SeqCst);
            let backend = *route.lock().unwrap();
            let counter = counter.clone();
            std::thread::spawn(move || {
                let Ok(server) = TcpStream::connect(backend) else {
                    counter.fetch_sub(1, Ordering::SeqCst);
                    reset(&client);
                    return;
                };
                let pipe =
                    |mut from: TcpStream, mut to: TcpStream, first: Option<Arc<AtomicUsize>>| {
                        std::thread::spawn(move || {
                            let mut first = first;
                            let mut buf = [0u8; 16 * 1024];
                            loop {
                                match from.read(&mut buf) {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => {
                                        let written = to.write_all(&buf[..n]);
                                        if let Some(counter) = first.take() {
                                            counter.fetch_sub(1, Ordering::SeqCst);
                                        }
                                        if written.is_err() {
                                            break;
                                        }
                                    }
                                }
                            }
                            if let Some(counter) = first {
                                counter.fetch_sub(1, Ordering::SeqCst);
                            }
                            let _ = to.shutdown(Shutdown::Write);
                        });
                    };
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    None,
                );
                pipe(server, client, Some(counter));
            });
        }
    });
    Service {
        addr,
        backend: current,
        starting,
    }
}

/// Closes with SO_LINGER 0, so the peer sees a reset.
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `linger` for its size; the descriptor is open.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn load(service: SocketAddr, clients: &str) -> Running {
    Running::start(
        &[
            "load",
            "--namespace",
            "test",
            "--service",
            &service.to_string(),
            "--clients",
            clients,
            "--rate",
            "40",
            "--streams",
            "3",
            "--timeout",
            "10s",
        ],
        &[],
        "drain-e2e load: modes",
    )
}

fn counts<'a>(summary: &'a serde_json::Value, mode: &str) -> &'a serde_json::Value {
    &summary["modes"][mode]["service"]
}

fn lost(counts: &serde_json::Value) -> u64 {
    [
        "refused",
        "reset",
        "timeout",
        "http_5xx",
        "no_backend",
        "other",
    ]
    .iter()
    .map(|k| counts[k].as_u64().unwrap())
    .sum()
}

/// The order drain-webhook gives a pod with a front proxy: the Service stops sending it new
/// connections, then the proxy stops gracefully (SIGQUIT), then the app gets SIGTERM. Keep-alive
/// and HTTP/2 clients lose nothing (the one retry covers a connection closed under a request),
/// and every stream ends cleanly and resumes on the other pod without a missing message.
#[test]
fn a_graceful_stop_loses_nothing_in_keepalive_h2_and_stream_modes() {
    let mut old = pod("old");
    let new = pod("new");
    let service = service(old.addr);
    let mut load = load(service.addr, "keepalive,h2,stream");
    load.wait_log("first answer: keepalive/service");
    load.wait_log("first answer: h2/service");
    load.wait_logs("stream on service: first message from pod \"old\"", 3);

    service.switch_to(new.addr);
    old.proxy.signal(libc::SIGQUIT);
    old.proxy.wait_log("SIGQUIT, graceful");
    // The app gets SIGTERM once the proxy's requests in flight have their answers (in the
    // plan: S later); only the streams are left then. HTTP/2 first: the client has taken the
    // GOAWAY and moved to the new pod.
    load.wait_log("h2 connection to|opened (replacing one)");
    for asked in 1.. {
        old.proxy.signal(libc::SIGUSR1);
        let status = old.proxy.wait_logs("proxy: status:", asked);
        if status.contains(" 0 requests awaiting") {
            break;
        }
    }
    // Streams stay open through the proxy's graceful stop, as with nginx, until the app ends
    // them: SIGTERM, S after the proxy's signal in the plan.
    old.app.signal(libc::SIGTERM);
    old.app.wait_log("ending 3 streams");
    old.proxy.wait_log("drained, exiting");
    old.proxy.wait_exit();
    load.wait_logs("stream on service from pod \"old\" ended Clean", 3);
    load.wait_logs(
        "stream on service: first message from pod \"new\"|, 0 missing",
        3,
    );
    let summary = load.summary();

    for mode in ["keepalive", "h2"] {
        let c = counts(&summary, mode);
        assert!(c["ok"].as_u64().unwrap() > 0, "{mode}: {c}");
        assert_eq!(lost(c), 0, "{mode} lost requests: {summary:#}");
    }
    let stream = &counts(&summary, "stream")["stream"];
    assert_eq!(stream["clean"], 3, "{summary:#}");
    assert_eq!(stream["reset"], 0, "{summary:#}");
    assert_eq!(stream["stalled"], 0, "{summary:#}");
    assert_eq!(stream["missing"], 0, "{summary:#}");
    // At least the first message of each stream before and after its reconnect.
    assert!(stream["messages"].as_u64().unwrap() >= 6, "{summary:#}");
}

/// The counters count: when the pod behind the Service is killed outright (the plain
/// namespace's case at its worst, and what SIGKILL does at the end of a grace period), every
/// mode loses, and every stream ends unclean.
#[test]
fn an_abrupt_kill_is_counted_in_every_mode() {
    let mut old = pod("old");
    let service = service(old.addr);
    let mut load = load(service.addr, "new,keepalive,h2,stream");
    for mode in ["new", "keepalive", "h2"] {
        load.wait_log(&format!("first answer: {mode}/service"));
    }
    load.wait_logs("stream on service: first message from pod \"old\"", 3);

    old.proxy.signal(libc::SIGKILL);
    old.app.signal(libc::SIGKILL);
    old.proxy.wait_exit();
    for mode in ["new", "keepalive", "h2"] {
        load.wait_log(&format!("first lost: {mode}/service"));
    }
    load.wait_logs("stream on service from pod \"old\" ended Reset", 3);
    let summary = load.summary();

    for mode in ["new", "keepalive", "h2"] {
        let c = counts(&summary, mode);
        assert!(lost(c) > 0, "{mode} counted no loss: {summary:#}");
    }
    let stream = counts(&summary, "stream");
    assert_eq!(stream["stream"]["reset"], 3, "{summary:#}");
    assert_eq!(stream["stream"]["clean"], 0, "{summary:#}");
    // The reconnects failed (nothing is left behind the Service) and were counted.
    assert!(lost(stream) > 0, "{summary:#}");
    assert_eq!(summary["stream_ends"].as_array().unwrap().len(), 3);
    assert_eq!(summary["stream_ends"][0]["pod"], "old");
}

/// nginx's semantics for streams on a graceful stop: kept open until they end; with
/// `--shutdown-timeout` (nginx's worker_shutdown_timeout) closed when it runs out, which the
/// client sees as a stream cut, not a clean end.
#[test]
fn a_proxy_shutdown_timeout_cuts_the_streams_it_still_has() {
    let app_listen = format!("127.0.0.1:{}", free_port());
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _app = Running::start(
        &["app", "--listen", &app_listen],
        &[("POD_NAME", "only")],
        "listening on",
    );
    let mut proxy = Running::start(
        &[
            "proxy",
            "--listen",
            &addr.to_string(),
            "--upstream",
            &app_listen,
            "--shutdown-timeout",
            "1s",
        ],
        &[],
        "listening on",
    );
    let mut load = load(addr, "stream");
    load.wait_logs("stream on service: first message", 3);
    proxy.signal(libc::SIGQUIT);
    proxy.wait_log("shutdown timeout reached");
    load.wait_logs("ended Reset", 3);
    let summary = load.summary();
    let stream = &counts(&summary, "stream")["stream"];
    assert_eq!(stream["reset"], 3, "{summary:#}");
    assert_eq!(stream["clean"], 0, "{summary:#}");
}
