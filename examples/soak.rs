//! `make soak`: the release `drain-webhook serve` under steady load on loopback while its
//! certificate is rotated the kubelet way, malformed bodies and slowloris clients arrive
//! alongside. Reports reviews, failures, RSS and open fds over time, and exits non-zero when
//! a well-formed review failed, a malformed one was not answered 4xx, or resources grew.
//!
//! Environment: SOAK_SECONDS (default 180), SOAK_BIN (default
//! `$CARGO_TARGET_DIR/release/drain-webhook`, else `target/release/drain-webhook`),
//! SOAK_ROTATE_SECONDS (default 3), SOAK_WORKERS (HTTP/2 review connections, default 3; one
//! HTTP/1.1 worker runs besides). Traffic goes to 127.0.0.1 only.

// The test CA, the kubelet-style certificate volume and the clients of tests/server.rs.
#[path = "../tests/common/net.rs"]
mod net;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use hyper::body::Bytes;
use net::{
    Ca, Client, KubeletDir, Proto, Sender, client_config, full, mutate_request, slow_request,
    tls_connect, try_admin_get,
};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Load

#[derive(Default)]
struct Counters {
    reviews_ok: AtomicU64,
    reviews_failed: AtomicU64,
    malformed_4xx: AtomicU64,
    malformed_other: AtomicU64,
    slow_opened: AtomicU64,
    slow_closed_by_server: AtomicU64,
    slow_held_to_cap: AtomicU64,
    rotations: AtomicU64,
    failures: std::sync::Mutex<Vec<String>>,
}

impl Counters {
    fn fail(&self, what: String) {
        self.reviews_failed.fetch_add(1, Ordering::Relaxed);
        self.note(what);
    }

    /// Keeps the first 20 failures for the report.
    fn note(&self, what: String) {
        let mut failures = self.failures.lock().unwrap();
        if failures.len() < 20 {
            failures.push(what);
        }
    }
}

struct Fixture {
    body: Bytes,
    uid: String,
}

fn fixtures() -> Vec<Fixture> {
    net::fixtures()
        .into_iter()
        .map(|(_, bytes)| Fixture {
            uid: net::uid_of(&bytes),
            body: Bytes::from(bytes),
        })
        .collect()
}

/// A connection speaking HTTP/2 (`h2`) or HTTP/1.1.
async fn connect(
    addr: SocketAddr,
    roots: &rustls::RootCertStore,
    h2: bool,
) -> Result<Sender, String> {
    let proto = if h2 { Proto::H2 } else { Proto::H1 };
    Ok(Client::connect(addr, proto, roots.clone()).await?.sender)
}

/// One review on `sender`: its status and body, or why there is none.
async fn send(sender: &mut Sender, body: Bytes) -> Result<(StatusCode, Bytes), String> {
    sender
        .send(mutate_request(full(body)))
        .await
        .map_err(|e| e.to_string())
}

/// Well-formed reviews on one connection (renewed every 200 requests so new connections see
/// rotated certificates); every answer must be 200 with the request's uid.
async fn review_worker(
    addr: SocketAddr,
    roots: rustls::RootCertStore,
    h2: bool,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    let fixtures = fixtures();
    let mut sender: Option<Sender> = None;
    let mut sent_on_connection = 0;
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        if sender.is_none() || sent_on_connection >= 200 {
            match connect(addr, &roots, h2).await {
                Ok(s) => {
                    sender = Some(s);
                    sent_on_connection = 0;
                }
                Err(err) => {
                    counters.fail(format!("{}: {err}", if h2 { "h2" } else { "h1" }));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let fixture = &fixtures[i % fixtures.len()];
        i += 1;
        sent_on_connection += 1;
        let Some(s) = sender.as_mut() else { continue };
        match send(s, fixture.body.clone()).await {
            Ok((StatusCode::OK, body)) => {
                let uid = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["response"]["uid"].as_str().map(str::to_string));
                if uid.as_deref() == Some(fixture.uid.as_str()) {
                    counters.reviews_ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    counters.fail(format!("wrong uid {uid:?}, expected {}", fixture.uid));
                }
            }
            Ok((status, body)) => counters.fail(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
            Err(err) => {
                counters.fail(format!("{}: {err}", if h2 { "h2" } else { "h1" }));
                sender = None;
            }
        }
    }
}

/// Malformed bodies: each must get a 4xx.
async fn malformed_worker(
    addr: SocketAddr,
    roots: rustls::RootCertStore,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    let good = fixtures().remove(0).body;
    let mut wrong_types: Value = serde_json::from_slice(&good).unwrap();
    wrong_types["request"]["uid"] = 42.into();
    let mut huge: Value = serde_json::from_slice(&good).unwrap();
    huge["request"]["object"]["metadata"]["annotations"] =
        serde_json::json!({ "filler": "x".repeat(4 << 20) });
    let cases: Vec<Bytes> = vec![
        Bytes::new(),
        good.slice(..good.len() / 2),
        Bytes::from_static(b"this is not JSON"),
        Bytes::from(serde_json::to_vec(&wrong_types).unwrap()),
        Bytes::from_static(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
        Bytes::from(serde_json::to_vec(&huge).unwrap()),
    ];
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let body = cases[i % cases.len()].clone();
        i += 1;
        // A fresh connection each time: after an unread oversized body the server may close.
        let outcome = match connect(addr, &roots, i.is_multiple_of(2)).await {
            Ok(mut s) => send(&mut s, body).await,
            Err(err) => Err(err),
        };
        match outcome {
            Ok((status, _)) if status.is_client_error() => {
                counters.malformed_4xx.fetch_add(1, Ordering::Relaxed);
            }
            other => {
                counters.malformed_other.fetch_add(1, Ordering::Relaxed);
                counters.note(format!(
                    "malformed case {}: {:?}",
                    (i - 1) % cases.len(),
                    other.map(|r| r.0)
                ));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One slow client; returns whether the server closed it before the cap.
async fn slow_client(
    addr: SocketAddr,
    roots: rustls::RootCertStore,
    kind: usize,
    body: Bytes,
) -> bool {
    let cap = Duration::from_secs(40);
    let held = async {
        match kind {
            // TCP only, never a TLS handshake.
            0 => {
                let Ok(mut tcp) = TcpStream::connect(addr).await else {
                    return;
                };
                let mut buf = [0u8; 64];
                let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await;
            }
            // TLS, then nothing at all.
            1 => {
                let Ok(mut tls) = tls_connect(addr, client_config(roots, b"h2")).await else {
                    return;
                };
                let mut buf = [0u8; 64];
                while let Ok(n) = tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            }
            // HTTP/1.1 headers dripped one byte a second, never finished.
            2 => {
                let Ok(mut tls) = tls_connect(addr, client_config(roots, b"http/1.1")).await else {
                    return;
                };
                if tls
                    .write_all(b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                    .await
                    .is_err()
                {
                    return;
                }
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if tls.write_all(b"a").await.is_err() || tls.flush().await.is_err() {
                        return;
                    }
                }
            }
            // HTTP/2 review whose body never finishes: expect 408.
            _ => {
                let Ok(mut sender) = connect(addr, &roots, true).await else {
                    return;
                };
                let (request, tx) = slow_request(body.len());
                let _ = tx.send(body.slice(..body.len() / 3)).await;
                let _ = sender.send(request).await;
                drop(tx);
            }
        }
    };
    tokio::time::timeout(cap, held).await.is_ok()
}

async fn slowloris(
    addr: SocketAddr,
    roots: rustls::RootCertStore,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    let body = fixtures().remove(0).body;
    let mut tasks = tokio::task::JoinSet::new();
    let mut kind = 0usize;
    while !stop.load(Ordering::Relaxed) {
        // At most 32 slow clients at a time, a wave of 4 every 2 s.
        for _ in 0..4 {
            if tasks.len() >= 32 {
                break;
            }
            counters.slow_opened.fetch_add(1, Ordering::Relaxed);
            tasks.spawn(slow_client(addr, roots.clone(), kind % 4, body.clone()));
            kind += 1;
        }
        let deadline = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                Some(done) = tasks.join_next() => record_slow(&counters, done),
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        record_slow(&counters, done);
    }
}

fn record_slow(counters: &Counters, done: Result<bool, tokio::task::JoinError>) {
    if matches!(done, Ok(true)) {
        counters
            .slow_closed_by_server
            .fetch_add(1, Ordering::Relaxed);
    } else {
        counters.slow_held_to_cap.fetch_add(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------------------
// The process under test

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: u64,
}

fn sample(pid: u32, started: Instant) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample {
        at: started.elapsed(),
        rss_kib,
        fds,
    })
}

fn print_sample(label: &str, s: &Sample, counters: &Counters) {
    println!(
        "soak: {label:>9} t={:>4}s  VmRSS {:>7} KiB  fds {:>4}  reviews ok {:>8} failed {}  malformed 4xx {}  slow clients {}  rotations {}",
        s.at.as_secs(),
        s.rss_kib,
        s.fds,
        counters.reviews_ok.load(Ordering::Relaxed),
        counters.reviews_failed.load(Ordering::Relaxed),
        counters.malformed_4xx.load(Ordering::Relaxed),
        counters.slow_opened.load(Ordering::Relaxed),
        counters.rotations.load(Ordering::Relaxed),
    );
}

fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("SOAK_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("release/drain-webhook")
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::main]
async fn main() -> ExitCode {
    let seconds = env_u64("SOAK_SECONDS", 180);
    let rotate_every = Duration::from_secs(env_u64("SOAK_ROTATE_SECONDS", 3).max(1));
    let workers = env_u64("SOAK_WORKERS", 3).max(1);
    let bin = binary();
    println!(
        "soak: {} for {seconds}s, rotation every {rotate_every:?}, {workers} HTTP/2 + 1 HTTP/1.1 review workers",
        bin.display()
    );

    let ca = Ca::new();
    let roots = ca.roots();
    let (cert, key, _) = ca.issue();
    let mut volume = KubeletDir::new(&cert, &key);

    let mut child = match Command::new(&bin)
        .args([
            "serve",
            "--no-cluster",
            "--kube-version",
            "1.34",
            "--cert-mode",
            "files",
        ])
        .arg("--tls-cert")
        .arg(volume.path().join("tls.crt"))
        .arg("--tls-key")
        .arg(volume.path().join("tls.key"))
        .args([
            "--tls-reload-interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--shutdown-delay",
            "1s",
            "--log-format",
            "json",
            "--log-level",
            "info",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            eprintln!(
                "soak: cannot start {}: {err} (build it: cargo build --release)",
                bin.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<(SocketAddr, SocketAddr)>();
    let log_errors = Arc::new(AtomicU64::new(0));
    let log_errors_in = Arc::clone(&log_errors);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                // Not a log line: a panic message or the like.
                eprintln!("soak: server stderr: {line}");
                log_errors_in.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if value["level"] == "ERROR" {
                eprintln!("soak: server error: {line}");
                log_errors_in.fetch_add(1, Ordering::Relaxed);
            }
            if let (Some(tls), Some(admin)) =
                (value["tls_addr"].as_str(), value["admin_addr"].as_str())
                && let (Ok(tls), Ok(admin)) = (tls.parse(), admin.parse())
            {
                let _ = addr_tx.send((tls, admin));
            }
        }
    });
    let Ok((tls_addr, admin_addr)) = addr_rx.recv_timeout(Duration::from_secs(60)) else {
        eprintln!("soak: the server never logged its addresses");
        let _ = child.kill();
        return ExitCode::FAILURE;
    };
    assert!(tls_addr.ip().is_loopback() && admin_addr.ip().is_loopback());
    while try_admin_get(admin_addr, "/readyz").await.ok().map(|r| r.0) != Some(StatusCode::OK) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let idle_start = sample(pid, started).unwrap();

    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for i in 0..=workers {
        load.spawn(review_worker(
            tls_addr,
            roots.clone(),
            i < workers,
            Arc::clone(&stop),
            Arc::clone(&counters),
        ));
    }
    load.spawn(malformed_worker(
        tls_addr,
        roots.clone(),
        Arc::clone(&stop),
        Arc::clone(&counters),
    ));
    load.spawn(slowloris(
        tls_addr,
        roots.clone(),
        Arc::clone(&stop),
        Arc::clone(&counters),
    ));

    // Warm-up: allocator pools, connection buffers, the first rotations.
    let warm_up = Duration::from_secs(10.min(seconds / 4).max(1));
    let deadline = started + Duration::from_secs(seconds);
    let mut next_rotation = Instant::now() + rotate_every;
    let mut next_report = Instant::now() + warm_up;
    let mut start: Option<Sample> = None;
    println!(
        "soak: {:>9} t=   0s  VmRSS {:>7} KiB  fds {:>4}  (idle, before load)",
        "idle", idle_start.rss_kib, idle_start.fds
    );
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = Instant::now();
        if now >= next_rotation {
            let (cert, key, _) = ca.issue();
            volume.write(&cert, &key);
            counters.rotations.fetch_add(1, Ordering::Relaxed);
            next_rotation = now + rotate_every;
        }
        if now >= next_report {
            let Some(s) = sample(pid, started) else {
                eprintln!("soak: the server is gone");
                break;
            };
            print_sample(
                if start.is_none() { "start" } else { "sample" },
                &s,
                &counters,
            );
            start.get_or_insert(s);
            next_report = now + Duration::from_secs(30);
        }
    }
    let end = sample(pid, started);
    if let Some(end) = &end {
        print_sample("end", end, &counters);
    }
    stop.store(true, Ordering::Relaxed);
    // Slow clients are cut off by the server's own timeouts (10 s); give them time to go.
    while load.join_next().await.is_some() {}
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_end = sample(pid, started);
    if let Some(s) = &idle_end {
        println!(
            "soak: {:>9} t={:>4}s  VmRSS {:>7} KiB  fds {:>4}  (idle, after load)",
            "idle",
            s.at.as_secs(),
            s.rss_kib,
            s.fds
        );
    }
    let metrics = try_admin_get(admin_addr, "/metrics")
        .await
        .map(|r| r.1)
        .unwrap_or_default();
    let reloads_ok = metric(
        &metrics,
        r#"drain_webhook_certificate_reloads_total{result="success"}"#,
    );
    let reloads_failed = metric(
        &metrics,
        r#"drain_webhook_certificate_reloads_total{result="failure"}"#,
    );

    // SIGTERM: the server drains and exits 0.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let exit_deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            _ if Instant::now() > exit_deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };

    let ok = counters.reviews_ok.load(Ordering::Relaxed);
    let failed = counters.reviews_failed.load(Ordering::Relaxed);
    let malformed_4xx = counters.malformed_4xx.load(Ordering::Relaxed);
    let malformed_other = counters.malformed_other.load(Ordering::Relaxed);
    let rotations = counters.rotations.load(Ordering::Relaxed);
    println!(
        "soak: well-formed reviews {ok} ok, {failed} failed; malformed {malformed_4xx} answered 4xx, {malformed_other} not; slow clients {} opened, {} closed by the server, {} held to the 40 s cap",
        counters.slow_opened.load(Ordering::Relaxed),
        counters.slow_closed_by_server.load(Ordering::Relaxed),
        counters.slow_held_to_cap.load(Ordering::Relaxed),
    );
    println!(
        "soak: certificate rotations {rotations}, reloads counted by the server: {reloads_ok} success, {reloads_failed} failure"
    );
    for failure in counters.failures.lock().unwrap().iter() {
        println!("soak: failure: {failure}");
    }

    let (start, end, idle_end) = match (start, end, idle_end) {
        (Some(s), Some(e), Some(i)) => (s, e, i),
        _ => {
            println!("soak result: 0 passed, 1 failed (the server did not survive to be measured)");
            return ExitCode::FAILURE;
        }
    };
    // Growth after warm-up: at most half again plus a little slack (allocator arenas, TLS
    // session state); fds back to the idle count plus a little once the load has gone.
    let rss_limit = start.rss_kib * 3 / 2 + 8 * 1024;
    let fd_limit_loaded = start.fds * 3 / 2 + 32;
    let fd_limit_idle = idle_start.fds + 8;
    let checks = [
        (
            format!("well-formed reviews: {ok} ok, {failed} failed"),
            failed == 0 && ok > 0,
        ),
        (
            format!("malformed bodies: {malformed_4xx} answered 4xx, {malformed_other} otherwise"),
            malformed_other == 0 && malformed_4xx > 0,
        ),
        (
            format!(
                "slow clients closed by the server: {} of {}",
                counters.slow_closed_by_server.load(Ordering::Relaxed),
                counters.slow_opened.load(Ordering::Relaxed)
            ),
            counters.slow_held_to_cap.load(Ordering::Relaxed) == 0,
        ),
        (
            format!(
                "RSS after warm-up {} KiB -> end {} KiB (limit {rss_limit} KiB)",
                start.rss_kib, end.rss_kib
            ),
            end.rss_kib <= rss_limit,
        ),
        (
            format!(
                "open fds under load {} -> {} (limit {fd_limit_loaded}); idle {} -> {} (limit {fd_limit_idle})",
                start.fds, end.fds, idle_start.fds, idle_end.fds
            ),
            end.fds <= fd_limit_loaded && idle_end.fds <= fd_limit_idle,
        ),
        (
            format!(
                "certificate reloads: {reloads_ok} success, {reloads_failed} failure for {rotations} rotations"
            ),
            reloads_failed == 0 && reloads_ok > 0,
        ),
        (
            format!(
                "server log: {} error lines",
                log_errors.load(Ordering::Relaxed)
            ),
            log_errors.load(Ordering::Relaxed) == 0,
        ),
        (
            format!("exit on SIGTERM: {exit:?}"),
            exit.is_some_and(|s| s.success()),
        ),
    ];
    let mut passed = 0;
    for (what, ok) in &checks {
        println!("soak: {} {what}", if *ok { "PASS" } else { "FAIL" });
        passed += usize::from(*ok);
    }
    let failed_checks = checks.len() - passed;
    println!(
        "soak result: {passed} passed, {failed_checks} failed ({ok} well-formed reviews, {failed} failed)"
    );
    if failed_checks == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
