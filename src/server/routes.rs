//! The routers and their handlers: `POST /mutate`, `GET /certificate` and `GET /settings` on
//! the HTTPS listener; `/livez`, `/readyz` and `/metrics` on the admin listener. What listens,
//! accepts and stops is in the module above.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{FutureExt, StreamExt};

use super::ServerOptions;
use crate::admission::{Answer, JSON_CONTENT_TYPE, Reviewer};
use crate::metrics::{self, Metrics};
use crate::observe::Observed;
use crate::observe::report::DRAINS_PATH;
use crate::served::{CERTIFICATE_PATH, SETTINGS_PATH, ServedSettings};
use crate::tls::CertResolver;

/// What the admission handler gets from the caller (the body bounds come from
/// [`ServerOptions`]).
#[derive(Debug, Clone)]
pub struct AppState {
    pub reviewer: Arc<Reviewer>,
    pub metrics: Arc<Metrics>,
    /// The drain observer's series and aggregates (`GET /drains` on the admin listener).
    pub observed: Arc<Observed>,
    /// The certificate handshakes get; `GET /certificate` shows it (see [`served_certificate`]).
    pub certificates: Arc<CertResolver>,
}

/// State of the `POST /mutate` handler: only what it reads, since axum clones it for every
/// review.
#[derive(Debug, Clone)]
struct MutateState {
    reviewer: Arc<Reviewer>,
    metrics: Arc<Metrics>,
    body_limit: usize,
    body_timeout: Duration,
}

/// The HTTPS application: `POST /mutate`, with the body bounds of `options`,
/// `GET /certificate` and `GET /settings` (crate::served). Public so that
/// tests drive the handler without sockets (`tower::ServiceExt::oneshot`, tests/router.rs);
/// [`bind`] serves it.
pub fn router(app: AppState, options: &ServerOptions) -> Router {
    let certificates = app.certificates;
    let settings = ServedSettings::of(&app.reviewer.settings, app.reviewer.kube_version);
    Router::new()
        .route("/mutate", post(mutate))
        .with_state(MutateState {
            reviewer: app.reviewer,
            metrics: app.metrics,
            body_limit: options.body_limit,
            body_timeout: options.body_timeout,
        })
        .route(
            CERTIFICATE_PATH,
            get(move || served_certificate(Arc::clone(&certificates))),
        )
        .route(
            SETTINGS_PATH,
            get(move || std::future::ready(axum::Json(settings.clone()))),
        )
}

/// `GET /certificate`: the PEM chain new handshakes get, right now (after any reload).
/// `drain-webhook check` reads it through the API server's service proxy and verifies it
/// against the webhook configuration's caBundle: from outside the cluster it cannot make a
/// handshake with the Service itself (docs/decisions.md, "check"). Public data: every TLS
/// client sees the same chain in its handshake.
async fn served_certificate(certificates: Arc<CertResolver>) -> Response {
    let current = certificates.current();
    let pem = crate::tls::chain_pem(&current.cert);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PEM_CONTENT_TYPE),
        )],
        pem,
    )
        .into_response()
}

/// Content type of `GET /certificate` (RFC 8555 section 9.1).
pub const PEM_CONTENT_TYPE: &str = "application/pem-certificate-chain";

/// Whether `/readyz` answers 200: on from [`Bound::serve`] until the shutdown trigger. Clones
/// share one flag.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub(super) fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }
}

/// State of the admin router.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub observed: Arc<Observed>,
    pub ready: Readiness,
}

/// `/livez`, `/readyz`, `/metrics`.
pub fn admin_router(state: AdminState) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route(DRAINS_PATH, get(drains))
        .with_state(state)
}

/// `GET /drains`: the drain observer's aggregates as JSON (the leader's; a follower says who
/// leads), docs/operations.md.
async fn drains(State(state): State<AdminState>) -> Response {
    axum::Json(state.observed.board.report()).into_response()
}

async fn readyz(State(state): State<AdminState>) -> Response {
    if state.ready.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics_text(State(state): State<AdminState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn mutate(State(state): State<MutateState>, request: Request) -> Response {
    let started = Instant::now();
    // Only Content-Type and Content-Length are read from the headers: no `HeaderMap`
    // extractor copying them all.
    let (parts, body) = request.into_parts();
    let answer = match check_content_type(&parts.headers) {
        Err(answer) => answer,
        Ok(()) => match read_body(&state, &parts.headers, body).await {
            Ok(bytes) => review_catching_panics(&state.reviewer, &bytes),
            Err(answer) => answer,
        },
    };
    state.metrics.observe_review(
        answer.operation.as_ref(),
        answer.outcome,
        answer.patch_operations,
        started.elapsed(),
    );
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(JSON_CONTENT_TYPE),
        )],
        answer.body,
    )
        .into_response()
}

/// The API server sends `application/json` (parameters such as `charset` allowed); anything
/// else, or nothing, is a client that is not the API server, refused before its body is read.
fn check_content_type(headers: &HeaderMap) -> Result<(), Answer> {
    let value = headers.get(header::CONTENT_TYPE);
    // Read as bytes first: every review passes here, and the lossy text below is only for a
    // refusal's message.
    let media_type = value.map(|v| {
        let bytes = v.as_bytes();
        let end = bytes.iter().position(|&b| b == b';').unwrap_or(bytes.len());
        bytes[..end].trim_ascii()
    });
    if media_type.is_some_and(|t| t.eq_ignore_ascii_case(JSON_CONTENT_TYPE.as_bytes())) {
        return Ok(());
    }
    let text = value.map(|v| String::from_utf8_lossy(v.as_bytes()));
    let media_type = text
        .as_deref()
        .map(|t| t.split(';').next().unwrap_or("").trim());
    if media_type.is_some_and(|t| t.eq_ignore_ascii_case(JSON_CONTENT_TYPE)) {
        return Ok(());
    }
    tracing::warn!(content_type = ?text, "request body is not declared as JSON");
    Err(Answer::unsupported_media_type(text.as_deref()))
}

/// A panic while reviewing (a bug of ours) is an internal error, answered with HTTP 500 like
/// any other, instead of tearing down the connection and every HTTP/2 stream on it.
fn review_catching_panics(reviewer: &Reviewer, body: &[u8]) -> Answer {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reviewer.review(body))) {
        Ok(answer) => answer,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".into());
            tracing::error!(panic = %message, "the review panicked; answered as an internal error");
            Answer::internal(None)
        }
    }
}

/// Reads the whole body within the limit and the timeout; the error is the answer to send.
async fn read_body(
    state: &MutateState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, Answer> {
    let limit = state.body_limit;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        tracing::warn!(limit, "request body too large (Content-Length)");
        return Err(Answer::too_large(limit));
    }
    let read = async {
        let mut stream = body.into_data_stream();
        let mut buffer = Vec::with_capacity(declared.map_or(0, |len| len as usize));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|err| {
                tracing::warn!(error = %err, "cannot read the request body");
                Answer::invalid("cannot read the request body")
            })?;
            if buffer.len() + chunk.len() > limit {
                tracing::warn!(limit, "request body too large");
                return Err(Answer::too_large(limit));
            }
            buffer.extend_from_slice(&chunk);
        }
        Ok(buffer)
    };
    // A review's body has nearly always arrived whole by the time the handler runs: read it
    // without arming the timer first (registering in and leaving tokio's timer wheel was 2% of
    // the server's time per review, docs/benchmarks.md); only a body still arriving is bounded.
    let mut read = std::pin::pin!(read);
    if let Some(result) = read.as_mut().now_or_never() {
        return result;
    }
    match tokio::time::timeout(state.body_timeout, read).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(timeout = ?state.body_timeout, "timed out reading the request body");
            Err(Answer::timed_out())
        }
    }
}
