//! The webhook over real sockets: HTTPS with HTTP/2 and HTTP/1.1, the admin port, certificate
//! rotation the kubelet way, and graceful shutdown (in-process and of the real binary).

mod common;

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drain_webhook::admission::{NamespaceLookup, NoNamespaces, Reviewer};
use drain_webhook::metrics::Metrics;
use drain_webhook::server::{self, AppState, Running, ServerOptions};
use drain_webhook::settings::Settings;
use drain_webhook::tls::{self, CertFiles, CertResolver, CertificateAuthority};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::Pod;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsConnector;

type TestBody = BoxBody<Bytes, Infallible>;

// ---------------------------------------------------------------------------------------------
// Certificates

/// A test CA that issues serving certificates for 127.0.0.1 / localhost.
struct Ca(CertificateAuthority);

impl Ca {
    fn new() -> Self {
        Self(CertificateAuthority::new("drain-webhook test CA").unwrap())
    }

    /// (cert chain PEM: leaf then CA, key PEM, leaf DER)
    fn issue(&self) -> (String, String, CertificateDer<'static>) {
        let leaf = self
            .0
            .issue(&["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
        let chain = format!("{}{}", leaf.cert_pem, self.0.cert_pem());
        (chain, leaf.key_pem, leaf.cert_der)
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.0.cert_der().clone()).unwrap();
        roots
    }
}

/// Certificate files laid out the way the kubelet mounts a Secret.
struct KubeletDir {
    dir: tempfile::TempDir,
    generation: u32,
}

impl KubeletDir {
    fn new(cert: &str, key: &str) -> Self {
        let mut this = Self {
            dir: tempfile::tempdir().unwrap(),
            generation: 0,
        };
        this.write(cert, key);
        std::os::unix::fs::symlink("..data/tls.crt", this.dir.path().join("tls.crt")).unwrap();
        std::os::unix::fs::symlink("..data/tls.key", this.dir.path().join("tls.key")).unwrap();
        this
    }

    /// A new timestamped directory, `..data_tmp` pointing at it, renamed over `..data`.
    fn write(&mut self, cert: &str, key: &str) {
        self.generation += 1;
        let name = format!(
            "..2026_11_21_10_00_{:02}.{}",
            self.generation,
            1000 + self.generation
        );
        let target = self.dir.path().join(&name);
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("tls.crt"), cert).unwrap();
        std::fs::write(target.join("tls.key"), key).unwrap();
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("..data")).unwrap();
    }

    fn files(&self) -> CertFiles {
        CertFiles {
            cert: self.dir.path().join("tls.crt"),
            key: self.dir.path().join("tls.key"),
        }
    }
}

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

fn app_state(setup: &Setup, metrics: Arc<Metrics>) -> AppState {
    AppState {
        reviewer: Arc::new(Reviewer {
            settings: Arc::new(Settings::default()),
            own_namespace: setup.own_namespace.clone(),
            kube_version: None,
            namespaces: Arc::clone(&setup.namespaces),
        }),
        metrics,
    }
}

/// Starts the server on ephemeral ports, reloading from `files` every 100 ms.
async fn start(files: &CertFiles, setup: Setup) -> TestServer {
    let metrics = Arc::new(Metrics::new());
    let (key, contents) = files.load().await.unwrap();
    let resolver = Arc::new(CertResolver::new(key));
    let (stop_reload, stop_rx) = watch::channel(false);
    tokio::spawn(tls::reload_certificates(
        files.clone(),
        Arc::clone(&resolver),
        Arc::clone(&metrics),
        contents,
        Duration::from_millis(100),
        stop_rx,
    ));
    let config = Arc::new(tls::server_config(resolver).unwrap());
    let state = app_state(&setup, Arc::clone(&metrics));
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
// Clients

#[derive(Clone, Copy, Debug, PartialEq)]
enum Proto {
    H1,
    H2,
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<TestBody>),
    H2(hyper::client::conn::http2::SendRequest<TestBody>),
}

struct Client {
    sender: Sender,
    peer_leaf: Option<CertificateDer<'static>>,
}

fn full(body: impl Into<Bytes>) -> TestBody {
    Full::new(body.into()).boxed()
}

impl Client {
    async fn tls(addr: SocketAddr, proto: Proto, roots: rustls::RootCertStore) -> Self {
        let alpn: &[u8] = match proto {
            Proto::H1 => b"http/1.1",
            Proto::H2 => b"h2",
        };
        let stream = raw_tls(addr, alpn, roots).await;
        let (_, session) = stream.get_ref();
        assert_eq!(session.alpn_protocol(), Some(alpn), "ALPN");
        let peer_leaf = session
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|c| c.clone().into_owned());
        let io = TokioIo::new(stream);
        let sender = match proto {
            Proto::H1 => {
                let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
                tokio::spawn(conn);
                Sender::H1(sender)
            }
            Proto::H2 => {
                let (sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .unwrap();
                tokio::spawn(conn);
                Sender::H2(sender)
            }
        };
        Self { sender, peer_leaf }
    }

    async fn plain(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        Self {
            sender: Sender::H1(sender),
            peer_leaf: None,
        }
    }

    async fn send(&mut self, request: Request<TestBody>) -> hyper::Result<(StatusCode, Vec<u8>)> {
        let response = match &mut self.sender {
            Sender::H1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
            Sender::H2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
        };
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes().to_vec();
        Ok((status, body))
    }

    async fn post(&mut self, body: impl Into<Bytes>) -> (StatusCode, Vec<u8>) {
        self.send(mutate_request(full(body))).await.unwrap()
    }

    /// Posts `body` and returns the checked `response` ([`answered`]).
    async fn post_ok(&mut self, body: &[u8], what: &str) -> Value {
        let (status, answer) = self.post(body.to_vec()).await;
        answered(status, &answer, body, what)
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String) {
        let request = Request::get(path)
            .header("host", "localhost")
            .body(full(Bytes::new()))
            .unwrap();
        let (status, body) = self.send(request).await.unwrap();
        (status, String::from_utf8(body).unwrap())
    }
}

fn mutate_request(body: TestBody) -> Request<TestBody> {
    Request::post("https://localhost/mutate")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

async fn admin_get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    Client::plain(addr).await.get(path).await
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/reviews")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn response_of(body: &[u8]) -> Value {
    let review: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    review["response"].clone()
}

fn uid_of(fixture_body: &[u8]) -> String {
    let review: Value = serde_json::from_slice(fixture_body).unwrap();
    review["request"]["uid"].as_str().unwrap().to_string()
}

/// The `response` of a 200 answer to `request`, checked to carry the request's uid.
fn answered(status: StatusCode, answer: &[u8], request: &[u8], what: &str) -> Value {
    assert_eq!(status, StatusCode::OK, "{what}");
    let response = response_of(answer);
    assert_eq!(response["uid"], uid_of(request), "{what}");
    response
}

/// Applies the response's patch to the request's pod and reads the result as a Pod.
fn patched_pod(request_body: &[u8], response: &Value) -> Pod {
    assert_eq!(response["patchType"], "JSONPatch");
    // A Go []byte: base64 in JSON, as the API server decodes it.
    let Value::String(encoded) = &response["patch"] else {
        panic!("patch is not a base64 string: {}", response["patch"]);
    };
    let patch_bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded)
        .expect("patch is valid base64");
    let patch: json_patch::Patch = serde_json::from_slice(&patch_bytes).unwrap();
    let review: Value = serde_json::from_slice(request_body).unwrap();
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).unwrap();
    serde_json::from_value(pod).unwrap()
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
            Some(45)
        );
    }
}

#[tokio::test]
async fn a_dry_run_with_generate_name_is_answered_like_any_other() {
    let (ca, _dir, server) = one_server().await;
    let mut client = Client::tls(server.tls_addr, Proto::H2, ca.roots()).await;
    let body = fixture("pod-create-generate-name-dry-run.json");
    let response = client.post_ok(&body, "dry run").await;
    let pod = patched_pod(&body, &response);
    assert_eq!(pod.spec.unwrap().termination_grace_period_seconds, Some(45));
}

#[tokio::test]
async fn other_requests_are_allowed_without_a_patch() {
    let (ca, _dir, server) = one_server().await;
    for proto in [Proto::H2, Proto::H1] {
        let mut client = Client::tls(server.tls_addr, proto, ca.roots()).await;
        for name in [
            "pod-update.json",
            "pod-delete.json",
            "configmap-create.json",
            "pod-create-own-namespace.json",
            "pod-create-mirror.json",
            "pod-create-subresource.json",
        ] {
            let body = fixture(name);
            let response = client.post_ok(&body, name).await;
            assert_eq!(response["allowed"], true, "{name}");
            assert!(response.get("patch").is_none(), "{name}");
            assert!(response.get("patchType").is_none(), "{name}");
        }
    }
}

#[tokio::test]
async fn a_bad_annotation_is_denied_with_its_name() {
    let (ca, _dir, server) = one_server().await;
    let mut client = Client::tls(server.tls_addr, Proto::H2, ca.roots()).await;
    let body = fixture("pod-create-bad-delay.json");
    let response = client.post_ok(&body, "bad delay").await;
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 400);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("drain.io/delay"), "{message}");
    assert!(response.get("patch").is_none());
}

#[tokio::test]
async fn malformed_bodies_get_4xx_and_the_server_keeps_answering() {
    let mut setup = Setup::default();
    setup.options.body_limit = 512 * 1024;
    let (ca, _dir, server) = server_with(setup).await;
    let good = fixture("pod-create-nginx-app.json");
    let mut wrong_version: Value = serde_json::from_slice(&good).unwrap();
    wrong_version["apiVersion"] = "admission.k8s.io/v1beta1".into();
    let mut wrong_types: Value = serde_json::from_slice(&good).unwrap();
    wrong_types["request"]["operation"] = serde_json::json!(["CREATE"]);
    // A syntactically valid review, larger than the limit.
    let mut huge: Value = serde_json::from_slice(&good).unwrap();
    huge["request"]["object"]["metadata"]["annotations"] =
        serde_json::json!({ "filler": "x".repeat(600 * 1024) });
    let cases: Vec<(&str, Vec<u8>, StatusCode)> = vec![
        ("empty", Vec::new(), StatusCode::BAD_REQUEST),
        (
            "truncated",
            good[..good.len() / 3].to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "not JSON",
            b"hello, webhook".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong apiVersion",
            serde_json::to_vec(&wrong_version).unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong types",
            serde_json::to_vec(&wrong_types).unwrap(),
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
            let reason: Value = serde_json::from_slice(&answer).unwrap();
            assert!(reason["error"].is_string(), "{what}: {reason}");
        }
        let mut client = Client::tls(server.tls_addr, proto, ca.roots()).await;
        client.post_ok(&good, &format!("{proto:?}")).await;
    }
    let (_, metrics) = admin_get(server.admin_addr, "/metrics").await;
    assert!(
        metrics
            .contains(r#"drain_webhook_reviews_total{operation="unknown",outcome="invalid"} 12"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn get_on_mutate_is_refused() {
    let (ca, _dir, server) = one_server().await;
    let mut client = Client::tls(server.tls_addr, Proto::H1, ca.roots()).await;
    let (status, _) = client.get("/mutate").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn readiness_follows_serving_and_metrics_count_reviews() {
    let ca = Ca::new();
    let (cert, key, _) = ca.issue();
    let dir = KubeletDir::new(&cert, &key);
    let setup = Setup::default();
    let metrics = Arc::new(Metrics::new());
    let (key, _) = dir.files().load().await.unwrap();
    let config = Arc::new(tls::server_config(Arc::new(CertResolver::new(key))).unwrap());
    let state = app_state(&setup, Arc::clone(&metrics));
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

/// A request whose body arrives in two halves, the second when `rest` is sent.
fn slow_request(body: Vec<u8>) -> (Request<TestBody>, mpsc::Sender<Bytes>) {
    let (tx, rx) = mpsc::channel::<Bytes>(2);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    let request = Request::post("https://localhost/mutate")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("content-length", body.len().to_string())
        .body(StreamBody::new(stream).boxed())
        .unwrap();
    (request, tx)
}

/// A review whose first half is sent: in flight until [`InFlight::finish`] sends the rest.
struct InFlight {
    body: Vec<u8>,
    rest: mpsc::Sender<Bytes>,
    pending: tokio::task::JoinHandle<hyper::Result<(StatusCode, Vec<u8>)>>,
}

impl InFlight {
    async fn start(mut client: Client, body: Vec<u8>) -> Self {
        let (request, rest) = slow_request(body.clone());
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
            };
        }
    }
}

fn roots_from(path: &Path) -> rustls::RootCertStore {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

#[tokio::test]
async fn the_binary_drains_on_sigterm_and_exits_zero() {
    let mut spawned = spawn_binary(&["--shutdown-delay", "1s", "--namespace", "drain-system"]);
    let roots = roots_from(&spawned.ca);
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin_get(spawned.admin_addr, "/readyz").await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let body = fixture("pod-create-nginx-app.json");
    let mut client = Client::tls(spawned.tls_addr, Proto::H2, roots.clone()).await;
    client.post_ok(&body, "before SIGTERM").await;

    // A review in flight when SIGTERM arrives.
    let in_flight = Client::tls(spawned.tls_addr, Proto::H1, roots.clone()).await;
    let in_flight = InFlight::start(in_flight, body).await;

    let status = Command::new("kill")
        .args(["-TERM", &spawned.child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin_get(spawned.admin_addr, "/readyz").await.0 != StatusCode::SERVICE_UNAVAILABLE {
        assert!(Instant::now() < deadline, "still ready after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Still serving during the shutdown delay, on the existing connection.
    let (status, _) = client.post(fixture("pod-update.json")).await;
    assert_eq!(status, StatusCode::OK);

    in_flight.finish().await;
    drop(client);

    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = spawned.child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(exit.code(), Some(0));
    // The self-signed CA it wrote for local clients is gone with it.
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

/// A TLS connection with the given ALPN and no HTTP on it yet.
async fn raw_tls(
    addr: SocketAddr,
    alpn: &[u8],
    roots: rustls::RootCertStore,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
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

/// Answers namespace look-ups for `panic` with a panic: a stand-in for a bug in the review.
struct PanickingLookup;

impl NamespaceLookup for PanickingLookup {
    fn annotations(&self, namespace: &str) -> Option<std::collections::BTreeMap<String, String>> {
        assert_ne!(namespace, "panic", "test hook: a bug in the review");
        None
    }
}

fn in_namespace(body: &[u8], namespace: &str) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(body).unwrap();
    review["request"]["namespace"] = namespace.into();
    review["request"]["object"]["metadata"]["namespace"] = namespace.into();
    serde_json::to_vec(&review).unwrap()
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
        let reason: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(reason["error"], "internal error");
        // The same connection (all other HTTP/2 streams on it) keeps working.
        client.post_ok(&good, &format!("{proto:?}")).await;
    }
    let (_, metrics) = admin_get(server.admin_addr, "/metrics").await;
    assert!(
        metrics.contains(r#"drain_webhook_reviews_total{operation="unknown",outcome="error"} 2"#),
        "{metrics}"
    );
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
        let mut stream = raw_tls(server.tls_addr, alpn, ca.roots()).await;
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
    let mut stream = raw_tls(server.tls_addr, b"http/1.1", ca.roots()).await;
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
        let (request, rest) = slow_request(body.clone());
        rest.send(Bytes::copy_from_slice(&body[..10]))
            .await
            .unwrap();
        // `rest` is kept alive and never sends the remainder.
        let (status, answer) = client.send(request).await.unwrap();
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{proto:?}");
        let reason: Value = serde_json::from_slice(&answer).unwrap();
        assert!(reason["error"].as_str().unwrap().contains("timed out"));
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
        let (request, rest) = slow_request(body.clone());
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

#[tokio::test]
async fn pods_past_the_work_bounds_are_denied_naming_the_bound() {
    let (ca, _dir, server) = one_server().await;
    let good = fixture("pod-create-nginx-app.json");
    let mut many: Value = serde_json::from_slice(&good).unwrap();
    let containers: Vec<Value> = (0..1500)
        .map(|i| serde_json::json!({"name": format!("c{i}"), "image": "nginx:1.27"}))
        .collect();
    many["request"]["object"]["spec"]["containers"] = containers.into();
    let mut long: Value = serde_json::from_slice(&good).unwrap();
    long["request"]["object"]["metadata"]["annotations"]["drain.io/proxies"] =
        "nginx,".repeat(20_000).into();
    let mut client = Client::tls(server.tls_addr, Proto::H2, ca.roots()).await;
    for (what, review, expected) in [
        ("containers", many, "at most 1000 containers"),
        ("annotation", long, "drain.io/proxies"),
    ] {
        let body = serde_json::to_vec(&review).unwrap();
        let (status, answer) = client.post(body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{what}");
        let response = response_of(&answer);
        assert_eq!(response["uid"], uid_of(&body));
        assert_eq!(response["allowed"], false, "{what}");
        assert_eq!(response["status"]["code"], 400, "{what}");
        let message = response["status"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{what}: {message}");
    }
}
