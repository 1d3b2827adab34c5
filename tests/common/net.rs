//! Test support for the webhook on the wire: a test CA, certificate files laid out the way the
//! kubelet mounts a Secret, TLS and plain HTTP clients, review fixtures and the checks of an
//! answer. `tests/server.rs` and `tests/router.rs` `#[path]`-include it, and so does
//! `examples/soak.rs`, so it names only `drain_webhook` and dev-dependencies, no `super::`.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use drain_webhook::tls::{CertFiles, CertificateAuthority};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::Pod;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

pub type TestBody = BoxBody<Bytes, Infallible>;

// ---------------------------------------------------------------------------------------------
// Certificates

/// A test CA that issues serving certificates for 127.0.0.1 and localhost.
pub struct Ca(CertificateAuthority);

impl Ca {
    pub fn new() -> Self {
        Self(CertificateAuthority::new("drain-webhook test CA").unwrap())
    }

    /// (cert chain PEM: leaf then CA, key PEM, leaf DER)
    pub fn issue(&self) -> (String, String, CertificateDer<'static>) {
        let leaf = self
            .0
            .issue(&["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
        let chain = format!("{}{}", leaf.cert_pem, self.0.cert_pem());
        (chain, leaf.key_pem, leaf.cert_der)
    }

    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.0.cert_der().clone()).unwrap();
        roots
    }
}

/// Certificate files laid out the way the kubelet mounts a Secret: `tls.crt -> ..data/tls.crt`,
/// `..data -> ..<timestamp>`. [`KubeletDir::write`] writes a new timestamped directory, points
/// `..data_tmp` at it, renames that over `..data` and removes the previous directory, as the
/// kubelet's atomic writer does.
pub struct KubeletDir {
    dir: tempfile::TempDir,
    current: Option<String>,
    generation: u32,
}

impl KubeletDir {
    pub fn new(cert: &str, key: &str) -> Self {
        let mut this = Self {
            dir: tempfile::tempdir().unwrap(),
            current: None,
            generation: 0,
        };
        this.write(cert, key);
        for file in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{file}"), this.dir.path().join(file))
                .unwrap();
        }
        this
    }

    pub fn write(&mut self, cert: &str, key: &str) {
        self.generation += 1;
        let name = format!("..2026_11_21_10_00_00.{}", 100_000 + self.generation);
        let target = self.dir.path().join(&name);
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("tls.crt"), cert).unwrap();
        std::fs::write(target.join("tls.key"), key).unwrap();
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("..data")).unwrap();
        if let Some(previous) = self.current.replace(name) {
            let _ = std::fs::remove_dir_all(self.dir.path().join(previous));
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn files(&self) -> CertFiles {
        CertFiles {
            cert: self.dir.path().join("tls.crt"),
            key: self.dir.path().join("tls.key"),
        }
    }
}

/// The certificates of a PEM file (the CA a self-signed server wrote) as trust roots.
pub fn roots_from(path: &Path) -> rustls::RootCertStore {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

// ---------------------------------------------------------------------------------------------
// Clients

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Proto {
    H1,
    H2,
}

impl Proto {
    pub fn alpn(self) -> &'static [u8] {
        match self {
            Proto::H1 => b"http/1.1",
            Proto::H2 => b"h2",
        }
    }
}

/// A client configuration that trusts `roots` and offers one ALPN protocol.
pub fn client_config(roots: rustls::RootCertStore, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut config = rustls::ClientConfig::builder_with_provider(drain_webhook::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// A TLS connection to `addr` (as 127.0.0.1) with no HTTP on it yet.
pub async fn tls_connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    TlsConnector::from(config)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
}

pub enum Sender {
    H1(hyper::client::conn::http1::SendRequest<TestBody>),
    H2(hyper::client::conn::http2::SendRequest<TestBody>),
}

impl Sender {
    /// The HTTP handshake of `proto` on an open connection.
    pub async fn handshake<S>(io: S, proto: Proto) -> hyper::Result<Self>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        Ok(match proto {
            Proto::H1 => {
                let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
                tokio::spawn(conn);
                Sender::H1(sender)
            }
            Proto::H2 => {
                let (sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
                tokio::spawn(conn);
                Sender::H2(sender)
            }
        })
    }

    /// Sends `request` and reads the whole answer.
    pub async fn send(&mut self, request: Request<TestBody>) -> hyper::Result<(StatusCode, Bytes)> {
        let response = match self {
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
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// One connection to the webhook (or, [`Client::plain`], to the admin port).
pub struct Client {
    pub sender: Sender,
    /// The leaf certificate the server presented (TLS only).
    pub peer_leaf: Option<CertificateDer<'static>>,
}

impl Client {
    /// A TLS connection speaking `proto`, checked to have negotiated it by ALPN.
    pub async fn connect(
        addr: SocketAddr,
        proto: Proto,
        roots: rustls::RootCertStore,
    ) -> Result<Self, String> {
        let stream = tls_connect(addr, client_config(roots, proto.alpn()))
            .await
            .map_err(|e| format!("{proto:?} connect: {e}"))?;
        let (_, session) = stream.get_ref();
        if session.alpn_protocol() != Some(proto.alpn()) {
            return Err(format!(
                "{proto:?}: ALPN gave {:?}",
                session.alpn_protocol()
            ));
        }
        let peer_leaf = session
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|c| c.clone().into_owned());
        let sender = Sender::handshake(stream, proto)
            .await
            .map_err(|e| format!("{proto:?} handshake: {e}"))?;
        Ok(Self { sender, peer_leaf })
    }

    /// [`Client::connect`], failing the test when it cannot.
    pub async fn tls(addr: SocketAddr, proto: Proto, roots: rustls::RootCertStore) -> Self {
        Self::connect(addr, proto, roots)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Plain HTTP/1.1 (the admin port).
    pub async fn plain(addr: SocketAddr) -> std::io::Result<Self> {
        let tcp = TcpStream::connect(addr).await?;
        let sender = Sender::handshake(tcp, Proto::H1)
            .await
            .map_err(std::io::Error::other)?;
        Ok(Self {
            sender,
            peer_leaf: None,
        })
    }

    pub async fn send(
        &mut self,
        request: Request<TestBody>,
    ) -> hyper::Result<(StatusCode, Vec<u8>)> {
        let (status, body) = self.sender.send(request).await?;
        Ok((status, body.to_vec()))
    }

    pub async fn post(&mut self, body: impl Into<Bytes>) -> (StatusCode, Vec<u8>) {
        self.send(mutate_request(full(body))).await.unwrap()
    }

    /// Posts `body` and returns the checked `response` ([`answered`]).
    pub async fn post_ok(&mut self, body: &[u8], what: &str) -> Value {
        let (status, answer) = self.post(body.to_vec()).await;
        answered(status, &answer, body, what)
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, String) {
        let request = Request::get(path)
            .header("host", "localhost")
            .body(full(Bytes::new()))
            .unwrap();
        let (status, body) = self.send(request).await.unwrap();
        (status, String::from_utf8(body).unwrap())
    }
}

pub fn full(body: impl Into<Bytes>) -> TestBody {
    Full::new(body.into()).boxed()
}

/// `POST /mutate` with `body`, as the API server sends it.
pub fn mutate_request(body: TestBody) -> Request<TestBody> {
    Request::post("https://localhost/mutate")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

/// A review whose body (of `len` bytes, as Content-Length says) arrives in the chunks sent on
/// the returned channel; it ends when the sender is dropped.
pub fn slow_request(len: usize) -> (Request<TestBody>, mpsc::Sender<Bytes>) {
    let (tx, rx) = mpsc::channel::<Bytes>(2);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    let mut request = mutate_request(StreamBody::new(stream).boxed());
    request
        .headers_mut()
        .insert(hyper::header::CONTENT_LENGTH, len.into());
    (request, tx)
}

/// `GET path` on the admin port; an error when it does not answer.
pub async fn try_admin_get(addr: SocketAddr, path: &str) -> std::io::Result<(StatusCode, String)> {
    let mut client = Client::plain(addr).await?;
    let request = Request::get(path)
        .header("host", "localhost")
        .body(full(Bytes::new()))
        .unwrap();
    let (status, body) = client.send(request).await.map_err(std::io::Error::other)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

pub async fn admin_get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    try_admin_get(addr, path)
        .await
        .unwrap_or_else(|err| panic!("GET {path} on {addr}: {err}"))
}

// ---------------------------------------------------------------------------------------------
// Reviews and answers

pub fn reviews_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reviews")
}

/// A review of `tests/data/reviews` by file name.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = reviews_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Every review of `tests/data/reviews`, by name.
pub fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(reviews_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

pub fn response_of(body: &[u8]) -> Value {
    let review: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    review["response"].clone()
}

pub fn uid_of(review_body: &[u8]) -> String {
    let review: Value = serde_json::from_slice(review_body).unwrap();
    review["request"]["uid"].as_str().unwrap().to_string()
}

/// The `response` of a 200 answer to `request`, checked to carry the request's uid.
pub fn answered(status: StatusCode, answer: &[u8], request: &[u8], what: &str) -> Value {
    assert_eq!(status, StatusCode::OK, "{what}");
    let response = response_of(answer);
    assert_eq!(response["uid"], uid_of(request), "{what}");
    response
}

/// The `{"error": "..."}` reason of a 4xx or 500 answer.
pub fn error_reason(answer: &[u8]) -> String {
    let reason: Value = serde_json::from_slice(answer).unwrap();
    reason["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error string in {reason}"))
        .to_string()
}

/// The response's patch: base64 (a Go []byte, as the API server decodes it) of a JSONPatch.
pub fn decode_patch(response: &Value) -> json_patch::Patch {
    assert_eq!(response["patchType"], "JSONPatch");
    let Value::String(encoded) = &response["patch"] else {
        panic!("patch is not a base64 string: {}", response["patch"]);
    };
    let patch_bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded)
        .expect("patch is valid base64");
    serde_json::from_slice(&patch_bytes).unwrap()
}

/// Applies the response's patch to the request's pod and reads the result as a Pod.
pub fn patched_pod(request_body: &[u8], response: &Value) -> Pod {
    let patch = decode_patch(response);
    let review: Value = serde_json::from_slice(request_body).unwrap();
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).unwrap();
    serde_json::from_value(pod).unwrap()
}

/// `body` with the request and its object moved to `namespace`.
pub fn in_namespace(body: &[u8], namespace: &str) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(body).unwrap();
    review["request"]["namespace"] = namespace.into();
    review["request"]["object"]["metadata"]["namespace"] = namespace.into();
    serde_json::to_vec(&review).unwrap()
}

/// Answers namespace look-ups for `panic` with a panic: a stand-in for a bug in the review
/// (with [`in_namespace`]).
pub struct PanickingLookup;

impl drain_webhook::capabilities::NamespaceLookup for PanickingLookup {
    fn annotations(&self, namespace: &str) -> Option<std::collections::BTreeMap<String, String>> {
        assert_ne!(namespace, "panic", "test hook: a bug in the review");
        None
    }
}
