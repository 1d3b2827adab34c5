//! Every client mode of the load client against the real demo (two "pods", each a drain-e2e
//! proxy in front of a drain-e2e app) behind a stand-in for a Service: a loopback forwarder
//! that, like kube-proxy, sends each new connection to the current backend and leaves
//! established connections where they are. Nothing waits for a time: each step waits for a log
//! line (an event), with a generous bound that is never a reason to pass.
#![cfg(feature = "webhook")]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "common/demo.rs"]
mod demo;

use demo::{PATIENCE, Running, free_port, pod};

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
