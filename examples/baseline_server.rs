//! The floor `make bench` measures drain-webhook against: the same listener stack as
//! `drain-webhook serve` (rustls, HTTP/2 and HTTP/1.1, TCP_NODELAY, the same windows, admin
//! port with `/readyz`, graceful shutdown, all through `server::bind_router`), but a handler
//! that only parses the AdmissionReview and answers `allowed: true` without a patch.
//!
//! Bench-only: an example is never part of the production binary or image.
//!
//! ```text
//! cargo run --release --example baseline_server -- 127.0.0.1:8443 127.0.0.1:8080
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use drain_webhook::metrics::Metrics;
use drain_webhook::observe::Observed;
use drain_webhook::server::{self, ServerOptions};
use drain_webhook::tls::{self, CertResolver};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};

/// Parses the review (typed, one pass over the bytes) and allows it untouched.
async fn allow(body: Bytes) -> Response {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(review) => review,
        Err(err) => return (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(err) => return (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    };
    let answer = AdmissionResponse::from(&request).into_review();
    match serde_json::to_vec(&answer) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn address(arg: Option<String>, default: &str) -> SocketAddr {
    arg.as_deref()
        .unwrap_or(default)
        .parse()
        .unwrap_or_else(|err| panic!("usage: baseline_server [LISTEN] [ADMIN_LISTEN]: {err}"))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let listen = address(args.next(), "127.0.0.1:8443");
    let admin_listen = address(args.next(), "127.0.0.1:8080");

    let pair = tls::self_signed(&tls::LOCAL_NAMES).expect("self-signed certificate");
    let key = tls::load_certified_key(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes())
        .expect("certificate loads");
    let config = Arc::new(
        tls::server_config(Arc::new(CertResolver::new(key))).expect("TLS server configuration"),
    );
    let options = ServerOptions {
        listen,
        admin_listen,
        shutdown_delay: Duration::ZERO,
        ..ServerOptions::default()
    };
    let router = Router::new()
        .route("/mutate", post(allow))
        .layer(DefaultBodyLimit::max(options.body_limit));
    let bound = server::bind_router(
        options,
        router,
        Arc::new(Metrics::new()),
        Arc::new(Observed::default()),
        config,
    )
    .await
    .expect("listeners bind");
    let handle = bound.shutdown_handle();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    let running = bound.serve();
    eprintln!(
        "baseline_server: https://{}/mutate, admin http://{}",
        running.tls_addr, running.admin_addr
    );
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        handle.trigger();
    });
    running.wait().await;
}
