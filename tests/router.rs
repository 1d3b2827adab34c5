//! The `POST /mutate` handler through its router, without sockets (`tower::ServiceExt::oneshot`,
//! as kubewarden's policy-server tests its handlers): answers, status codes, content type, body
//! bounds, panic handling and the metrics they count. What needs a connection (TLS, ALPN, HTTP/2 streams,
//! connection limits, rotation, shutdown) is in tests/server.rs.

mod common;
#[path = "common/net.rs"]
mod net;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use drain_webhook::admission::Reviewer;
use drain_webhook::metrics::Metrics;
use drain_webhook::observe::Observed;
use drain_webhook::server::{self, AppState, ServerOptions};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Bytes;
use net::{
    PanickingLookup, answered, error_reason, fixture, in_namespace, patched_pod, response_of,
    uid_of,
};
use serde_json::Value;
use tower::ServiceExt;

/// The router under test and the metrics it counts into.
struct App {
    router: Router,
    metrics: Arc<Metrics>,
}

impl App {
    fn new() -> Self {
        Self::with(Reviewer::for_tests(), ServerOptions::default())
    }

    fn with(reviewer: Reviewer, options: ServerOptions) -> Self {
        let metrics = Arc::new(Metrics::new());
        let state = AppState {
            reviewer: Arc::new(reviewer),
            metrics: Arc::clone(&metrics),
            observed: Arc::new(Observed::default()),
            certificates: Arc::new(local_certificate()),
        };
        Self {
            router: server::router(state, &options),
            metrics,
        }
    }

    fn with_options(options: ServerOptions) -> Self {
        Self::with(Reviewer::for_tests(), options)
    }

    /// One request through the router; the status and the whole body of the answer.
    async fn call(&self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        // A generous bound, so that a handler waiting for a body that never ends fails the
        // test instead of hanging it.
        let response = tokio::time::timeout(
            Duration::from_secs(60),
            self.router.clone().oneshot(request),
        )
        .await
        .expect("answered within 60 s")
        .unwrap();
        let status = response.status();
        if status != StatusCode::METHOD_NOT_ALLOWED && status != StatusCode::NOT_FOUND {
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "application/json",
                "{status}"
            );
        }
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, body.to_vec())
    }

    async fn post(&self, body: impl Into<Body>) -> (StatusCode, Vec<u8>) {
        self.call(post(body)).await
    }

    /// Posts `body` and returns the checked `response` ([`answered`]).
    async fn post_ok(&self, body: &[u8], what: &str) -> Value {
        let (status, answer) = self.post(body.to_vec()).await;
        answered(status, &answer, body, what)
    }

    /// `/metrics` (the admin router encodes the same registry) shows each of `lines`.
    fn assert_counted(&self, lines: &[&str]) {
        let text = self.metrics.encode();
        for line in lines {
            assert!(
                text.lines().any(|l| l == *line),
                "missing {line} in\n{text}"
            );
        }
    }
}

fn local_certificate() -> drain_webhook::tls::CertResolver {
    use drain_webhook::tls;
    let pair = tls::self_signed(&tls::LOCAL_NAMES).unwrap();
    let key = tls::load_certified_key(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes()).unwrap();
    tls::CertResolver::new(key)
}

/// `POST /mutate` as the API server sends it.
fn post(body: impl Into<Body>) -> Request<Body> {
    Request::post("/mutate")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

/// A body that sends `first` and then never finishes.
fn unfinished(first: &[u8]) -> Body {
    let first = Bytes::copy_from_slice(first);
    Body::from_stream(
        futures_util::stream::iter([Ok::<_, std::convert::Infallible>(first)])
            .chain(futures_util::stream::pending()),
    )
}

#[tokio::test]
async fn the_seed_pod_is_patched() {
    let app = App::new();
    let body = fixture("pod-create-nginx-app.json");
    let response = app.post_ok(&body, "seed").await;
    assert_eq!(response["allowed"], true);
    let operations = net::decode_patch(&response).0.len();
    let pod = patched_pod(&body, &response);
    let delay = |name| common::pre_stop(&pod, name).and_then(common::hook_delay);
    assert_eq!(delay("nginx"), Some(10));
    assert_eq!(delay("app"), Some(15));
    assert_eq!(
        pod.spec.as_ref().unwrap().termination_grace_period_seconds,
        Some(95),
        "M + S + B"
    );
    app.assert_counted(&[
        r#"drain_webhook_reviews_total{operation="create",outcome="mutated"} 1"#,
        &format!("drain_webhook_patch_operations_total {operations}"),
        "drain_webhook_review_duration_seconds_count 1",
    ]);
}

#[tokio::test]
async fn a_dry_run_with_generate_name_is_answered_like_any_other() {
    let app = App::new();
    let body = fixture("pod-create-generate-name-dry-run.json");
    let response = app.post_ok(&body, "dry run").await;
    let pod = patched_pod(&body, &response);
    assert_eq!(pod.spec.unwrap().termination_grace_period_seconds, Some(95));
}

#[tokio::test]
async fn other_requests_are_allowed_without_a_patch() {
    let app = App::new();
    for name in [
        "pod-update.json",
        "pod-delete.json",
        "configmap-create.json",
        "pod-create-own-namespace.json",
        "pod-create-mirror.json",
        "pod-create-subresource.json",
    ] {
        let body = fixture(name);
        let response = app.post_ok(&body, name).await;
        assert_eq!(response["allowed"], true, "{name}");
        assert!(response.get("patch").is_none(), "{name}");
        assert!(response.get("patchType").is_none(), "{name}");
    }
    app.assert_counted(&[
        r#"drain_webhook_reviews_total{operation="create",outcome="skipped"} 4"#,
        r#"drain_webhook_reviews_total{operation="update",outcome="skipped"} 1"#,
        r#"drain_webhook_reviews_total{operation="delete",outcome="skipped"} 1"#,
    ]);
}

#[tokio::test]
async fn a_bad_annotation_is_denied_with_its_name() {
    let app = App::new();
    let body = fixture("pod-create-bad-delay.json");
    let response = app.post_ok(&body, "bad delay").await;
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 400);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("drain.io/delay"), "{message}");
    assert!(response.get("patch").is_none());
    app.assert_counted(&[r#"drain_webhook_reviews_total{operation="create",outcome="denied"} 1"#]);
}

#[tokio::test]
async fn pods_past_the_work_bounds_are_denied_naming_the_bound() {
    let app = App::new();
    let good = fixture("pod-create-nginx-app.json");
    let mut many: Value = serde_json::from_slice(&good).unwrap();
    let containers: Vec<Value> = (0..1500)
        .map(|i| serde_json::json!({"name": format!("c{i}"), "image": "nginx:1.27"}))
        .collect();
    many["request"]["object"]["spec"]["containers"] = containers.into();
    let mut long: Value = serde_json::from_slice(&good).unwrap();
    long["request"]["object"]["metadata"]["annotations"]["drain.io/proxies"] =
        "nginx,".repeat(20_000).into();
    for (what, review, expected) in [
        ("containers", many, "at most 1000 containers"),
        ("annotation", long, "drain.io/proxies"),
    ] {
        let body = serde_json::to_vec(&review).unwrap();
        let (status, answer) = app.post(body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{what}");
        let response = response_of(&answer);
        assert_eq!(response["uid"], uid_of(&body));
        assert_eq!(response["allowed"], false, "{what}");
        assert_eq!(response["status"]["code"], 400, "{what}");
        let message = response["status"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{what}: {message}");
    }
}

#[tokio::test]
async fn malformed_bodies_get_400_with_a_reason() {
    let app = App::new();
    let good = fixture("pod-create-nginx-app.json");
    let mut wrong_version: Value = serde_json::from_slice(&good).unwrap();
    wrong_version["apiVersion"] = "admission.k8s.io/v1beta1".into();
    let mut wrong_types: Value = serde_json::from_slice(&good).unwrap();
    wrong_types["request"]["operation"] = serde_json::json!(["CREATE"]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty body"),
        ("truncated", good[..good.len() / 3].to_vec(), "not JSON"),
        ("not JSON", b"hello, webhook".to_vec(), "not JSON"),
        (
            "wrong apiVersion",
            serde_json::to_vec(&wrong_version).unwrap(),
            "apiVersion",
        ),
        (
            "wrong types",
            serde_json::to_vec(&wrong_types).unwrap(),
            "AdmissionRequest",
        ),
    ];
    for (what, body, expected) in &cases {
        let (status, answer) = app.post(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        let reason = error_reason(&answer);
        assert!(reason.contains(expected), "{what}: {reason}");
    }
    // And the next well-formed review is answered.
    app.post_ok(&good, "after malformed bodies").await;
    app.assert_counted(&[&format!(
        r#"drain_webhook_reviews_total{{operation="unknown",outcome="invalid"}} {}"#,
        cases.len()
    )]);
}

#[tokio::test]
async fn bodies_above_the_limit_get_413() {
    let limit = 512 * 1024;
    let app = App::with_options(ServerOptions {
        body_limit: limit,
        // Long enough that a 413 for an unfinished body cannot be a timeout in disguise.
        body_timeout: Duration::from_secs(3600),
        ..ServerOptions::default()
    });
    // A syntactically valid review, larger than the limit.
    let good = fixture("pod-create-nginx-app.json");
    let mut huge: Value = serde_json::from_slice(&good).unwrap();
    huge["request"]["object"]["metadata"]["annotations"] =
        serde_json::json!({ "filler": "x".repeat(600 * 1024) });
    let huge = serde_json::to_vec(&huge).unwrap();

    // Announced by Content-Length: answered before any of the body is read (it never ends).
    let mut announced = post(unfinished(b"{"));
    announced
        .headers_mut()
        .insert(header::CONTENT_LENGTH, (limit + 1).into());
    // No Content-Length: the body grows past the limit while it is read (and never ends).
    let growing = Body::from_stream(
        futures_util::stream::iter(
            huge.chunks(64 * 1024)
                .map(|chunk| Ok::<_, std::convert::Infallible>(Bytes::copy_from_slice(chunk)))
                .collect::<Vec<_>>(),
        )
        .chain(futures_util::stream::pending()),
    );
    for (what, request) in [
        ("whole body", post(huge.clone())),
        ("Content-Length", announced),
        ("growing body", post(growing)),
    ] {
        let (status, answer) = app.call(request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{what}");
        let reason = error_reason(&answer);
        assert!(
            reason.contains(&format!("larger than {limit} bytes")),
            "{what}: {reason}"
        );
    }
    // A body of exactly the limit is read, and answered as what it is (blanks only).
    let (status, answer) = app.post(vec![b' '; limit]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_reason(&answer), "empty body");
    app.assert_counted(&[
        r#"drain_webhook_reviews_total{operation="unknown",outcome="invalid"} 4"#,
    ]);
}

#[tokio::test]
async fn a_body_that_never_finishes_gets_408() {
    // A tiny bound instead of waiting: the body never finishes, so the bound alone decides.
    let app = App::with_options(ServerOptions {
        body_timeout: Duration::from_millis(1),
        ..ServerOptions::default()
    });
    let body = fixture("pod-create-nginx-app.json");
    let (status, answer) = app.call(post(unfinished(&body[..10]))).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert!(error_reason(&answer).contains("timed out"));
    app.assert_counted(&[
        r#"drain_webhook_reviews_total{operation="unknown",outcome="invalid"} 1"#,
    ]);
}

/// A body that has arrived whole is read without arming the body timer: on a runtime without
/// timers, arming one would panic (an internal error); a body still arriving arms it.
#[test]
fn a_whole_body_is_read_without_a_timer() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let app = App::new();
    let body = fixture("pod-create-nginx-app.json");
    let (status, answer) = runtime.block_on(async {
        let response = app
            .router
            .clone()
            .oneshot(post(body.clone()))
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    });
    answered(status, &answer, &body, "a whole body, no timer");
    let unfinished = runtime.block_on(async {
        futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
            app.router.clone().oneshot(post(unfinished(&body[..10]))),
        ))
        .await
    });
    assert!(unfinished.is_err(), "a body still arriving arms the timer");
}

#[tokio::test]
async fn only_json_bodies_are_read() {
    let app = App::new();
    let body = fixture("pod-create-nginx-app.json");
    for accepted in ["application/json; charset=utf-8", "Application/JSON"] {
        let request = Request::post("/mutate")
            .header(header::CONTENT_TYPE, accepted)
            .body(Body::from(body.clone()))
            .unwrap();
        let (status, answer) = app.call(request).await;
        answered(status, &answer, &body, accepted);
    }
    for (sent, named) in [
        (
            Some("application/x-www-form-urlencoded"),
            "\"application/x-www-form-urlencoded\"",
        ),
        (Some("text/json"), "\"text/json\""),
        (None, "none"),
    ] {
        // Refused before the body is read: this one never finishes.
        let mut request = Request::post("/mutate");
        if let Some(sent) = sent {
            request = request.header(header::CONTENT_TYPE, sent);
        }
        let (status, answer) = app.call(request.body(unfinished(b"{")).unwrap()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{sent:?}");
        let reason = error_reason(&answer);
        assert!(
            reason.contains("expected Content-Type application/json") && reason.contains(named),
            "{sent:?}: {reason}"
        );
    }
    app.assert_counted(&[
        r#"drain_webhook_reviews_total{operation="unknown",outcome="invalid"} 3"#,
    ]);
}

#[tokio::test]
async fn get_on_mutate_is_refused() {
    let app = App::new();
    let get = Request::get("/mutate").body(Body::empty()).unwrap();
    assert_eq!(app.call(get).await.0, StatusCode::METHOD_NOT_ALLOWED);
    let elsewhere = Request::post("/validate")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(fixture("pod-create-nginx-app.json")))
        .unwrap();
    assert_eq!(app.call(elsewhere).await.0, StatusCode::NOT_FOUND);
    // Neither is a review.
    app.assert_counted(&["drain_webhook_review_duration_seconds_count 0"]);
}

#[tokio::test]
async fn a_panic_in_a_review_is_a_500() {
    let app = App::with(
        Reviewer {
            namespaces: Arc::new(PanickingLookup),
            ..Reviewer::for_tests()
        },
        ServerOptions::default(),
    );
    let good = fixture("pod-create-nginx-app.json");
    let (status, answer) = app.post(in_namespace(&good, "panic")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_reason(&answer), "internal error");
    // The router keeps answering.
    app.post_ok(&good, "after the panic").await;
    app.assert_counted(&[r#"drain_webhook_reviews_total{operation="unknown",outcome="error"} 1"#]);
}

/// `GET /settings` answers the settings the server plans with (what `check` reads through the
/// API server's service proxy): its helper delivery, version and durations.
#[tokio::test]
async fn the_settings_are_served_as_json() {
    use drain_webhook::served::{SETTINGS_PATH, ServedSettings};
    use drain_webhook::settings::{HelperDelivery, Settings};
    let mut settings = Settings {
        delay: 0,
        ..Settings::default()
    };
    settings.helper.delivery = HelperDelivery::InitContainer;
    let reviewer = Reviewer {
        settings: Arc::new(settings),
        kube_version: "1.35".parse().ok(),
        ..Reviewer::for_tests()
    };
    let app = App::with(reviewer, ServerOptions::default());
    let (status, body) = app
        .call(Request::get(SETTINGS_PATH).body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let served: ServedSettings = serde_json::from_slice(&body).unwrap();
    assert_eq!(served.helper_delivery, "init-container");
    assert_eq!(served.kube_version.as_deref(), Some("1.35"));
    assert_eq!(served.delay, 0);
    assert_eq!(served.stagger, Settings::default().stagger);
}
