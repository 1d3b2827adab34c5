//! The webhook over real sockets: HTTPS with HTTP/2 and HTTP/1.1, the admin port, certificate
//! rotation the kubelet way, and graceful shutdown (in-process and of the real binary).

//! Handler behaviour without sockets (answers, 400/405/408/413, panics) is in tests/router.rs.

mod common;
#[path = "common/net.rs"]
mod net;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drain_webhook::admission::Reviewer;
use drain_webhook::capabilities::{NamespaceLookup, NoNamespaces};
use drain_webhook::metrics::Metrics;
use drain_webhook::observe::Observed;
use drain_webhook::server::{self, AppState, Running, ServerOptions};
use drain_webhook::tls::{self, CertFiles, CertResolver};
use hyper::StatusCode;
use hyper::body::Bytes;
use net::{
    Ca, Client, KubeletDir, PanickingLookup, Proto, Sender, admin_get, answered, client_config,
    error_reason, fixture, full, in_namespace, mutate_request, patched_pod, response_of,
    roots_from, slow_request, tls_connect,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

// ---------------------------------------------------------------------------------------------
// Server under test

struct TestServer {
    running: Option<Running>,
    tls_addr: SocketAddr,
    admin_addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop_reload: watch::Sender<bool>,
}

struct Setup {
    options: ServerOptions,
    own_namespace: Option<String>,
    namespaces: Arc<dyn NamespaceLookup>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            options: ServerOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                admin_listen: "127.0.0.1:0".parse().unwrap(),
                shutdown_delay: Duration::from_millis(200),
                ..ServerOptions::default()
            },
            own_namespace: Some("drain-system".into()),
            namespaces: Arc::new(NoNamespaces),
        }
    }
}

fn app_state(setup: &Setup, metrics: Arc<Metrics>, certificates: Arc<CertResolver>) -> AppState {
    AppState {
        reviewer: Arc::new(Reviewer {
            own_namespace: setup.own_namespace.clone(),
            namespaces: Arc::clone(&setup.namespaces),
            ..Reviewer::for_tests()
        }),
        metrics,
        observed: Arc::new(Observed::default()),
        certificates,
    }
}

/// Starts the server on ephemeral ports, reloading from `files` every 100 ms.
async fn start(files: &CertFiles, setup: Setup) -> TestServer {
    let metrics = Arc::new(Metrics::new());
    let (key, contents) = files.load().await.unwrap();
    let resolver = Arc::new(CertResolver::new(key));
    let (stop_reload, stop_rx) = watch::channel(false);
    let counted = Arc::clone(&metrics);
    tokio::spawn(tls::reload_certificates(
        files.clone(),
        Arc::clone(&resolver),
        move |ok| counted.certificate_reloaded(ok),
        contents,
        Duration::from_millis(100),
        stop_rx,
    ));
    let state = app_state(&setup, Arc::clone(&metrics), Arc::clone(&resolver));
    let config = Arc::new(tls::server_config(resolver).unwrap());
    let bound = server::bind(setup.options, state, config).await.unwrap();
    let running = bound.serve();
    TestServer {
        tls_addr: running.tls_addr,
        admin_addr: running.admin_addr,
        running: Some(running),
        metrics,
        stop_reload,
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop_reload.send_replace(true);
        if let Some(running) = &self.running {
            running.handle.trigger();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

async fn one_server() -> (Ca, KubeletDir, TestServer) {
    server_with(Setup::default()).await
}

#[tokio::test]
async fn the_seed_pod_is_mutated_over_http2_and_http1() {
    let (ca, _dir, server) = one_server().await;
    for proto in [Proto::H2, Proto::H1] {
        let mut client = Client::tls(server.tls_addr, proto, ca.roots()).await;
        let body = fixture("pod-create-nginx-app.json");
        let response = client.post_ok(&body, &format!("{proto:?}")).await;
        assert_eq!(response["allowed"], true);
        let pod = patched_pod(&body, &response);
        let delay = |name| common::pre_stop(&pod, name).and_then(common::hook_delay);
        assert_eq!(delay("nginx"), Some(10), "{proto:?}");
        assert_eq!(delay("app"), Some(15), "{proto:?}");
        assert_eq!(
            pod.spec.as_ref().unwrap().termination_grace_period_seconds,
            Some(95),
            "M + S + B"
        );
    }
}

/// Each reason a body is refused is in tests/router.rs; here, that a 4xx answer reaches the
/// client over both protocols (HTTP/1.1 closes after an unread oversized body) and the server
/// keeps answering.
#[tokio::test]
async fn malformed_bodies_get_4xx_and_the_server_keeps_answering() {
    let mut setup = Setup::default();
    setup.options.body_limit = 512 * 1024;
    let (ca, _dir, server) = server_with(setup).await;
    let good = fixture("pod-create-nginx-app.json");
    // A syntactically valid review, larger than the limit.
    let mut huge: Value = serde_json::from_slice(&good).unwrap();
    huge["request"]["object"]["metadata"]["annotations"] =
        serde_json::json!({ "filler": "x".repeat(600 * 1024) });
    let cases: Vec<(&str, Vec<u8>, StatusCode)> = vec![
        (
            "truncated",
            good[..good.len() / 3].to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "huge",
            serde_json::to_vec(&huge).unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for proto in [Proto::H2, Proto::H1] {
        for (what, body, expected) in &cases {
            // HTTP/1.1 closes the connection after an unread oversized body: one per case.
            let mut client = Client::tls(server.tls_addr, proto, ca.roots()).await;
            let (status, answer) = client.post(body.clone()).await;
            assert_eq!(status, *expected, "{what} over {proto:?}");
            // A JSON reason (the reasons themselves: tests/router.rs).
            error_reason(&answer);
        }
        let mut client = Client::tls(server.tls_addr, proto, ca.roots()).await;
        client.post_ok(&good, &format!("{proto:?}")).await;
    }
    let line = r#"drain_webhook_reviews_total{operation="unknown",outcome="invalid"} 4"#;
    metrics_show(server.admin_addr, line).await.unwrap();
}

#[tokio::test]
async fn readiness_follows_serving_and_metrics_count_reviews() {
    let ca = Ca::new();
    let (cert, key, _) = ca.issue();
    let dir = KubeletDir::new(&cert, &key);
    let setup = Setup::default();
    let metrics = Arc::new(Metrics::new());
    let (key, _) = dir.files().load().await.unwrap();
    let resolver = Arc::new(CertResolver::new(key));
    let state = app_state(&setup, Arc::clone(&metrics), Arc::clone(&resolver));
    let config = Arc::new(tls::server_config(resolver).unwrap());
    let bound = server::bind(setup.options, state, config).await.unwrap();
    let admin = bound.admin_addr();
    assert_eq!(
        admin_get(admin, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(admin_get(admin, "/livez").await.0, StatusCode::OK);
    let running = bound.serve();
    assert_eq!(admin_get(admin, "/readyz").await.0, StatusCode::OK);

    let mut client = Client::tls(running.tls_addr, Proto::H2, ca.roots()).await;
    client.post(fixture("pod-create-nginx-app.json")).await;
    client.post(fixture("pod-update.json")).await;
    client.post(fixture("pod-create-bad-delay.json")).await;
    let (status, text) = admin_get(admin, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        r#"drain_webhook_reviews_total{operation="create",outcome="mutated"} 1"#,
        r#"drain_webhook_reviews_total{operation="update",outcome="skipped"} 1"#,
        r#"drain_webhook_reviews_total{operation="create",outcome="denied"} 1"#,
        "drain_webhook_review_duration_seconds_count 3",
        "drain_webhook_patch_operations_total",
        r#"drain_webhook_certificate_reloads_total{result="failure"} 0"#,
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    running.handle.trigger();
    assert_eq!(
        admin_get(admin, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    running.wait().await;
}

/// Sends reviews in a loop on fresh connections until told to stop; returns how many
/// succeeded and the failures.
fn keep_sending(
    addr: SocketAddr,
    roots: rustls::RootCertStore,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    tokio::spawn(async move {
        let body = fixture("pod-create-nginx-app.json");
        let mut ok = 0;
        let mut failures = Vec::new();
        while !*stop.borrow_and_update() {
            for proto in [Proto::H2, Proto::H1] {
                let mut client = Client::tls(addr, proto, roots.clone()).await;
                match client.send(mutate_request(full(body.clone()))).await {
                    Ok((StatusCode::OK, _)) => ok += 1,
                    Ok((status, _)) => failures.push(format!("{proto:?}: {status}")),
                    Err(err) => failures.push(format!("{proto:?}: {err}")),
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (ok, failures)
    })
}

async fn wait_for_leaf(
    addr: SocketAddr,
    roots: &rustls::RootCertStore,
    leaf: &CertificateDer<'static>,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let client = Client::tls(addr, Proto::H2, roots.clone()).await;
        if client.peer_leaf.as_ref() == Some(leaf) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn certificates_rotate_the_kubelet_way_without_failed_requests() {
    let ca = Ca::new();
    let (cert_a, key_a, leaf_a) = ca.issue();
    let (cert_b, key_b, leaf_b) = ca.issue();
    let mut dir = KubeletDir::new(&cert_a, &key_a);
    let server = start(&dir.files(), Setup::default()).await;

    let mut before = Client::tls(server.tls_addr, Proto::H2, ca.roots()).await;
    assert_eq!(before.peer_leaf.as_ref(), Some(&leaf_a));

    let (stop_tx, stop_rx) = watch::channel(false);
    let load = keep_sending(server.tls_addr, ca.roots(), stop_rx);
    tokio::time::sleep(Duration::from_millis(200)).await;
    dir.write(&cert_b, &key_b);
    assert!(
        wait_for_leaf(server.tls_addr, &ca.roots(), &leaf_b).await,
        "new connections never saw certificate B"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_tx.send_replace(true);
    let (ok, failures) = load.await.unwrap();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(ok > 0);

    // GET /certificate shows the chain handshakes now get (what `check` verifies).
    let mut after = Client::tls(server.tls_addr, Proto::H2, ca.roots()).await;
    let (status, pem) = after.get("/certificate").await;
    assert_eq!(status, StatusCode::OK);
    let shown: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(shown.first(), Some(&leaf_b), "{pem}");

    // The connection made before the rotation still works.
    let (status, _) = before.post(fixture("pod-update.json")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, metrics) = admin_get(server.admin_addr, "/metrics").await;
    assert!(
        metrics.contains(r#"drain_webhook_certificate_reloads_total{result="success"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_bad_new_pair_keeps_the_last_good_one() {
    let ca = Ca::new();
    let (cert_a, key_a, leaf_a) = ca.issue();
    let (cert_b, _key_b, _) = ca.issue();
    let (_, key_c, _) = ca.issue();
    let mut dir = KubeletDir::new(&cert_a, &key_a);
    let server = start(&dir.files(), Setup::default()).await;

    dir.write(
        &cert_b,
        "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.metrics.certificate_reload_failures() < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.metrics.certificate_reload_failures(), 1);
    let mut client = Client::tls(server.tls_addr, Proto::H2, ca.roots()).await;
    assert_eq!(client.peer_leaf.as_ref(), Some(&leaf_a));
    assert_eq!(
        client.post(fixture("pod-update.json")).await.0,
        StatusCode::OK
    );

    // A key that parses but belongs to another certificate is refused too.
    dir.write(&cert_b, &key_c);
    while server.metrics.certificate_reload_failures() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.metrics.certificate_reload_failures(), 2);
    let client = Client::tls(server.tls_addr, Proto::H1, ca.roots()).await;
    assert_eq!(client.peer_leaf.as_ref(), Some(&leaf_a));
    let (_, metrics) = admin_get(server.admin_addr, "/metrics").await;
    assert!(
        metrics.contains(r#"drain_webhook_certificate_reloads_total{result="failure"} 2"#),
        "{metrics}"
    );
}

/// A review whose first half is sent: in flight until [`InFlight::finish`] sends the rest.
struct InFlight {
    body: Vec<u8>,
    rest: mpsc::Sender<Bytes>,
    pending: tokio::task::JoinHandle<hyper::Result<(StatusCode, Vec<u8>)>>,
}

impl InFlight {
    async fn start(mut client: Client, body: Vec<u8>) -> Self {
        let (request, rest) = slow_request(body.len());
        rest.send(Bytes::copy_from_slice(&body[..body.len() / 2]))
            .await
            .unwrap();
        let pending = tokio::spawn(async move { client.send(request).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        Self {
            body,
            rest,
            pending,
        }
    }

    /// Sends the rest; the answer must be a 200 for this review.
    async fn finish(self) {
        let half = self.body.len() / 2;
        self.rest
            .send(Bytes::copy_from_slice(&self.body[half..]))
            .await
            .unwrap();
        drop(self.rest);
        let (status, answer) = self.pending.await.unwrap().unwrap();
        answered(status, &answer, &self.body, "in flight");
    }
}

#[tokio::test]
async fn shutdown_turns_unready_at_once_and_finishes_in_flight_reviews() {
    let mut setup = Setup::default();
    setup.options.shutdown_delay = Duration::from_millis(500);
    let (ca, _dir, mut server) = server_with(setup).await;
    let running = server.running.take().unwrap();

    // An HTTP/2 review in flight when the shutdown starts (the binary test covers HTTP/1.1).
    let client = Client::tls(server.tls_addr, Proto::H2, ca.roots()).await;
    let in_flight = InFlight::start(client, fixture("pod-create-nginx-app.json")).await;

    running.handle.trigger();
    assert_eq!(
        admin_get(server.admin_addr, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Past the shutdown delay the listener is closed while the review is still in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(server.tls_addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    in_flight.finish().await;
    tokio::time::timeout(Duration::from_secs(60), running.wait())
        .await
        .expect("shutdown finished");
}

// ---------------------------------------------------------------------------------------------
// The real binary

/// The spawned binary; killed (if still running) and reaped on drop, also when a test fails.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

struct Spawned {
    child: ChildGuard,
    tls_addr: SocketAddr,
    admin_addr: SocketAddr,
    ca: PathBuf,
    /// The JSON log lines after the one with the addresses.
    logs: std::sync::mpsc::Receiver<Value>,
}

impl Spawned {
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// Waits (generously) for the process to exit.
    async fn exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(exit) = self.child.0.try_wait().unwrap() {
                return exit;
            }
            assert!(Instant::now() < deadline, "did not exit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_ready(&self, expected: StatusCode) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while admin_get(self.admin_addr, "/readyz").await.0 != expected {
            assert!(
                Instant::now() < deadline,
                "/readyz never answered {expected}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Starts `drain-webhook serve` on ephemeral ports with a self-signed certificate and reads
/// the addresses and the CA path from its JSON log.
fn spawn_binary(extra: &[&str]) -> Spawned {
    let mut child = Command::new(env!("CARGO_BIN_EXE_drain-webhook"))
        .args([
            "serve",
            "--no-cluster",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .args(extra)
        .env_remove("DRAIN_CERT_MODE")
        .env_remove("DRAIN_TLS_CERT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take();
    let child = ChildGuard(child);
    let stderr = stderr.unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Ok(value) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(value);
            } else {
                eprintln!("drain-webhook: {line}");
            }
        }
    });
    let mut ca = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(remaining)
            .expect("the server logged its addresses");
        if let Some(path) = line["ca"].as_str() {
            ca = Some(PathBuf::from(path));
        }
        if let (Some(tls), Some(admin)) = (line["tls_addr"].as_str(), line["admin_addr"].as_str()) {
            return Spawned {
                child,
                tls_addr: tls.parse().unwrap(),
                admin_addr: admin.parse().unwrap(),
                ca: ca.expect("the CA path is logged before serving"),
                logs: rx,
            };
        }
    }
}

#[tokio::test]
async fn the_binary_drains_on_sigterm_and_exits_zero() {
    let mut spawned = spawn_binary(&["--shutdown-delay", "1s", "--namespace", "drain-system"]);
    let roots = roots_from(&spawned.ca);
    spawned.wait_ready(StatusCode::OK).await;

    let body = fixture("pod-create-nginx-app.json");
    let mut client = Client::tls(spawned.tls_addr, Proto::H2, roots.clone()).await;
    client.post_ok(&body, "before SIGTERM").await;

    // A review in flight when SIGTERM arrives.
    let in_flight = Client::tls(spawned.tls_addr, Proto::H1, roots.clone()).await;
    let in_flight = InFlight::start(in_flight, body).await;

    spawned.signal("TERM");
    spawned.wait_ready(StatusCode::SERVICE_UNAVAILABLE).await;
    // Still serving during the shutdown delay, on the existing connection.
    let (status, _) = client.post(fixture("pod-update.json")).await;
    assert_eq!(status, StatusCode::OK);

    in_flight.finish().await;
    drop(client);

    let exit = spawned.exit().await;
    assert_eq!(exit.code(), Some(0));
    // The self-signed CA it wrote for local clients is gone with it.
    assert!(!spawned.ca.exists(), "{} left behind", spawned.ca.display());
}

#[tokio::test]
async fn a_second_signal_aborts_the_graceful_shutdown() {
    // A shutdown delay far beyond the test's deadlines: only the abort can end it in time.
    let mut spawned = spawn_binary(&["--shutdown-delay", "3600s"]);
    let roots = roots_from(&spawned.ca);
    spawned.wait_ready(StatusCode::OK).await;
    // A review in flight, which the abort drops.
    let client = Client::tls(spawned.tls_addr, Proto::H2, roots).await;
    let _in_flight = InFlight::start(client, fixture("pod-create-nginx-app.json")).await;

    spawned.signal("TERM");
    // The first one started the graceful shutdown.
    spawned.wait_ready(StatusCode::SERVICE_UNAVAILABLE).await;
    spawned.signal("INT");
    let exit = spawned.exit().await;
    assert_eq!(exit.code(), Some(1), "{exit:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let logged = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match spawned.logs.recv_timeout(left) {
            Ok(line) if line["level"] == "ERROR" && line["signal"] == "SIGINT" => break true,
            Ok(_) => continue,
            Err(_) => break false,
        }
    };
    assert!(logged, "no error line naming the second signal");
    assert!(!spawned.ca.exists(), "{} left behind", spawned.ca.display());
}

#[tokio::test]
async fn the_binary_allows_its_own_namespace_untouched() {
    let mut spawned = spawn_binary(&["--shutdown-delay", "0s", "--namespace", "drain-system"]);
    let roots = roots_from(&spawned.ca);
    let mut client = Client::tls(spawned.tls_addr, Proto::H2, roots).await;
    let body = fixture("pod-create-own-namespace.json");
    let (status, answer) = client.post(body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let response = response_of(&answer);
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none());
    let _ = Command::new("kill")
        .args(["-TERM", &spawned.child.0.id().to_string()])
        .status();
    let _ = spawned.child.0.wait();
}

// ---------------------------------------------------------------------------------------------
// Limits that protect the process (docs/operations.md)

async fn server_with(setup: Setup) -> (Ca, KubeletDir, TestServer) {
    let ca = Ca::new();
    let (cert, key, _) = ca.issue();
    let dir = KubeletDir::new(&cert, &key);
    let server = start(&dir.files(), setup).await;
    (ca, dir, server)
}

/// Whether the server closes the connection (EOF or reset) within a generous deadline.
async fn closed_by_server(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> bool {
    use tokio::io::AsyncReadExt;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_panic_in_a_review_is_a_500_and_the_connection_keeps_serving() {
    let setup = Setup {
        namespaces: Arc::new(PanickingLookup),
        ..Setup::default()
    };
    let (ca, _dir, server) = server_with(setup).await;
    let good = fixture("pod-create-nginx-app.json");
    let boom = in_namespace(&good, "panic");
    for proto in [Proto::H2, Proto::H1] {
        let mut client = Client::tls(server.tls_addr, proto, ca.roots()).await;
        let (status, answer) = client.post(boom.clone()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{proto:?}");
        assert_eq!(error_reason(&answer), "internal error");
        // The same connection (all other HTTP/2 streams on it) keeps working.
        client.post_ok(&good, &format!("{proto:?}")).await;
    }
    let line = r#"drain_webhook_reviews_total{operation="unknown",outcome="error"} 2"#;
    metrics_show(server.admin_addr, line).await.unwrap();
}

#[tokio::test]
async fn clients_that_start_no_request_after_tls_are_disconnected() {
    let mut setup = Setup::default();
    setup.options.header_timeout = Duration::from_millis(300);
    let (ca, _dir, server) = server_with(setup).await;
    for (alpn, sent) in [
        (&b"h2"[..], &b""[..]),
        (b"h2", b"PRI * HTTP/2.0\r\n"),
        (b"http/1.1", b""),
        (b"http/1.1", b"POST /mu"),
    ] {
        let mut stream = tls_connect(server.tls_addr, client_config(ca.roots(), alpn))
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut stream, sent)
            .await
            .unwrap();
        assert!(
            closed_by_server(&mut stream).await,
            "{} after sending {:?}: still open",
            String::from_utf8_lossy(alpn),
            String::from_utf8_lossy(sent)
        );
    }
    // And the server still answers.
    let mut client = Client::tls(server.tls_addr, Proto::H2, ca.roots()).await;
    assert_eq!(
        client.post(fixture("pod-update.json")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn slow_http1_headers_are_cut_off() {
    let mut setup = Setup::default();
    setup.options.header_timeout = Duration::from_millis(300);
    let (ca, _dir, server) = server_with(setup).await;
    let mut stream = tls_connect(server.tls_addr, client_config(ca.roots(), b"http/1.1"))
        .await
        .unwrap();
    // Past the first bytes, then one header byte at a time, never the blank line.
    tokio::io::AsyncWriteExt::write_all(
        &mut stream,
        b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nX-Slow: ",
    )
    .await
    .unwrap();
    let dripping = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if tokio::io::AsyncWriteExt::write_all(&mut stream, b"a")
                .await
                .is_err()
            {
                return;
            }
        }
    };
    let closed = tokio::time::timeout(Duration::from_secs(30), dripping).await;
    assert!(closed.is_ok(), "a dripping header kept the connection open");
}

#[tokio::test]
async fn a_body_that_never_finishes_gets_408() {
    let mut setup = Setup::default();
    setup.options.body_timeout = Duration::from_millis(300);
    let (ca, _dir, server) = server_with(setup).await;
    let body = fixture("pod-create-nginx-app.json");
    for proto in [Proto::H2, Proto::H1] {
        let mut client = Client::tls(server.tls_addr, proto, ca.roots()).await;
        let (request, rest) = slow_request(body.len());
        rest.send(Bytes::copy_from_slice(&body[..10]))
            .await
            .unwrap();
        // `rest` is kept alive and never sends the remainder.
        let (status, answer) = client.send(request).await.unwrap();
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{proto:?}");
        assert!(error_reason(&answer).contains("timed out"));
        drop(rest);
    }
    let mut client = Client::tls(server.tls_addr, Proto::H2, ca.roots()).await;
    assert_eq!(client.post(body).await.0, StatusCode::OK);
}

#[tokio::test]
async fn connections_above_the_limit_wait_for_a_free_slot() {
    let mut setup = Setup::default();
    setup.options.max_connections = 2;
    let (ca, _dir, server) = server_with(setup).await;
    let mut first = Client::tls(server.tls_addr, Proto::H2, ca.roots()).await;
    let second = Client::tls(server.tls_addr, Proto::H1, ca.roots()).await;
    assert_eq!(
        first.post(fixture("pod-update.json")).await.0,
        StatusCode::OK
    );
    // A third connection is not accepted (no TLS handshake) while both slots are taken.
    let roots = ca.roots();
    let addr = server.tls_addr;
    let mut third = tokio::spawn(async move { Client::tls(addr, Proto::H2, roots).await });
    let waited = tokio::time::timeout(Duration::from_millis(500), &mut third).await;
    assert!(
        waited.is_err(),
        "a third connection was served at a limit of 2"
    );
    // A slot frees up: the waiting connection is served.
    drop(second);
    let mut third = tokio::time::timeout(Duration::from_secs(30), third)
        .await
        .expect("the waiting connection was accepted once a slot was free")
        .unwrap();
    assert_eq!(
        third.post(fixture("pod-update.json")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        first.post(fixture("pod-update.json")).await.0,
        StatusCode::OK
    );
}

/// Polls `/metrics` until it shows `line`; the text last seen when it never does.
async fn metrics_show(admin: SocketAddr, line: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, text) = admin_get(admin, "/metrics").await;
        if text.lines().any(|l| l == line) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(text);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn open_connections_are_counted_until_they_close() {
    let (ca, _dir, server) = one_server().await;
    metrics_show(server.admin_addr, "drain_webhook_open_connections 0")
        .await
        .unwrap();
    let mut first = Client::tls(server.tls_addr, Proto::H2, ca.roots()).await;
    let mut second = Client::tls(server.tls_addr, Proto::H1, ca.roots()).await;
    for client in [&mut first, &mut second] {
        assert_eq!(
            client.post(fixture("pod-update.json")).await.0,
            StatusCode::OK
        );
    }
    metrics_show(server.admin_addr, "drain_webhook_open_connections 2")
        .await
        .unwrap();
    drop(second);
    metrics_show(server.admin_addr, "drain_webhook_open_connections 1")
        .await
        .unwrap();
    drop(first);
    metrics_show(server.admin_addr, "drain_webhook_open_connections 0")
        .await
        .unwrap();
}

#[tokio::test]
async fn http2_streams_above_the_limit_wait_for_a_free_one() {
    let mut setup = Setup::default();
    setup.options.max_concurrent_streams = 4;
    setup.options.body_timeout = Duration::from_secs(120);
    let (ca, _dir, server) = server_with(setup).await;
    let body = fixture("pod-create-nginx-app.json");
    let client = Client::tls(server.tls_addr, Proto::H2, ca.roots()).await;
    let Sender::H2(sender) = client.sender else {
        unreachable!("HTTP/2 client")
    };
    // Four streams held open by bodies that are not finished yet.
    let mut held = Vec::new();
    for _ in 0..4 {
        let (request, rest) = slow_request(body.len());
        rest.send(Bytes::copy_from_slice(&body[..10]))
            .await
            .unwrap();
        let mut sender = sender.clone();
        let pending = tokio::spawn(async move {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            Ok::<_, hyper::Error>(response.status())
        });
        held.push((pending, rest));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A fifth request waits for a stream: the server advertised at most 4.
    let mut sender5 = sender.clone();
    let full_body = body.clone();
    let mut fifth = tokio::spawn(async move {
        sender5.ready().await?;
        let response = sender5
            .send_request(mutate_request(full(full_body)))
            .await?;
        Ok::<_, hyper::Error>(response.status())
    });
    let waited = tokio::time::timeout(Duration::from_millis(500), &mut fifth).await;
    assert!(
        waited.is_err(),
        "a fifth concurrent stream was served at a limit of 4"
    );
    // Finish one held request: its stream ends and the fifth request goes through.
    let (pending, rest) = held.remove(0);
    rest.send(Bytes::copy_from_slice(&body[10..]))
        .await
        .unwrap();
    drop(rest);
    assert_eq!(pending.await.unwrap().unwrap(), StatusCode::OK);
    let status = tokio::time::timeout(Duration::from_secs(30), fifth)
        .await
        .expect("the fifth request got a stream")
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    for (pending, rest) in held {
        rest.send(Bytes::copy_from_slice(&body[10..]))
            .await
            .unwrap();
        drop(rest);
        assert_eq!(pending.await.unwrap().unwrap(), StatusCode::OK);
    }
}
