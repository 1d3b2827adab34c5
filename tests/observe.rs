//! The drain observer against a fake API server (tests/common/fake_api.rs): two observers
//! contend for one Lease, exactly one reads the drain records of the planned pods, each
//! record is counted once across re-lists, and when the leader is killed the other takes over
//! within the Lease's duration without counting anything twice. `GET /drains` shows what the
//! leader counted; the follower says who leads.

#[path = "common/fake_api.rs"]
mod fake_api;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drain_webhook::drain_record::{DrainRecord, EndReason, RecordRole};
use drain_webhook::metrics::Metrics;
use drain_webhook::observe::{self, LeaseConfig, Limits, Observed, ObserverConfig};
use fake_api::{Call, FakeApi, Reply};
use hyper::Method;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tokio::sync::watch;

const LEASE: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(200);
/// Far above what each step takes (milliseconds), so a busy machine does not fail the test.
const PATIENCE: Duration = Duration::from_secs(30);

fn record(why: EndReason) -> DrainRecord {
    DrainRecord {
        role: RecordRole::App,
        floor_ms: 5_000,
        end_ms: 9_250,
        why,
        last_arrival_ms: Some(6_100),
        after_floor: 4,
        migrated_at_ms: None,
        signal_at_ms: Some(9_250),
        exit: 0,
    }
}

/// A planned pod of Deployment `web` whose app container terminated with `message`.
fn pod(uid: &str, message: &str, finished: Timestamp) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("web-5f6c7-{uid}"), "namespace": "shop", "uid": uid,
            "resourceVersion": "7",
            "labels": {"pod-template-hash": "5f6c7", "drain.io/planned": "true"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5f6c7",
                "uid": "rs", "controller": true}]},
        "status": {"containerStatuses": [{"name": "app", "image": "app", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0,
            "message": format!("user text\n{message}"), "finishedAt": finished.to_string()}}}]}
    })
}

/// The pods, listed whole; every watch ends at once with 410 Gone, so the watcher lists
/// again (after its backoff): every record comes back on every re-list.
fn routes(pods: Arc<Mutex<Vec<Value>>>) -> impl Fn(&fake_api::Seen<'_>) -> Option<Reply> {
    move |seen| {
        if seen.path != "/api/v1/pods" {
            return None;
        }
        if seen.query.contains("watch=true") {
            let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                "metadata": {}, "status": "Failure", "message": "too old resource version",
                "reason": "Expired", "code": 410}});
            return Some(Reply::json(200, gone));
        }
        let items = pods.lock().unwrap().clone();
        Some(Reply::json(
            200,
            json!({"kind": "PodList", "apiVersion": "v1",
                "metadata": {"resourceVersion": "7", "continue": ""}, "items": items}),
        ))
    }
}

fn config(identity: &str) -> ObserverConfig {
    config_for(identity, LEASE)
}

fn config_for(identity: &str, duration: Duration) -> ObserverConfig {
    ObserverConfig {
        lease: LeaseConfig {
            namespace: "drain-system".into(),
            name: "drain-webhook-observer".into(),
            identity: identity.into(),
            duration,
            retry: RETRY,
        },
        limits: Limits::default(),
        planner: None,
    }
}

/// One replica's registry and observer state, wired as `server::serve` wires them.
struct Replica {
    metrics: Metrics,
    observer: Arc<Observed>,
}

impl Replica {
    fn new() -> Arc<Self> {
        let observer = Arc::new(Observed::default());
        let metrics = Metrics::with_series(|registry| observer.register(registry));
        Arc::new(Self { metrics, observer })
    }

    fn encode(&self) -> String {
        self.metrics.encode()
    }
}

/// `drain_webhook_drains_total`, summed over its series.
fn counted(metrics: &Replica) -> u64 {
    metrics
        .encode()
        .lines()
        .filter(|line| line.starts_with("drain_webhook_drains_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn until(what: &str, check: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < PATIENCE,
            "{what}: not within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// Each request the observer made is one its API_CALLS list (so the chart's RBAC grants it).
fn check_calls(calls: &[Call]) {
    use drain_webhook::cluster;
    use drain_webhook::observe::{lease, run};
    for call in calls {
        let (verb, resource) = match (&call.method, call.path.as_str()) {
            (&Method::GET, "/api/v1/namespaces") if call.query.contains("watch=true") => {
                ("watch", "namespaces")
            }
            (&Method::GET, "/api/v1/namespaces") => ("list", "namespaces"),
            (&Method::GET, "/api/v1/pods") if call.query.contains("watch=true") => {
                ("watch", "pods")
            }
            (&Method::GET, "/api/v1/pods") => ("list", "pods"),
            (&Method::GET, p) if p.contains("/leases/") => ("get", "leases"),
            (&Method::POST, p) if p.ends_with("/leases") => ("create", "leases"),
            (&Method::PUT, p) if p.contains("/leases/") => ("update", "leases"),
            (&Method::POST, p) if p.ends_with("/events") => ("create", "events"),
            other => panic!("unexpected request {other:?} {}", call.url()),
        };
        assert!(
            lease::API_CALLS
                .iter()
                .chain(run::API_CALLS)
                .chain(cluster::API_CALLS)
                .any(|c| c.verb == verb && c.resource == resource),
            "{verb} {resource} is not in API_CALLS"
        );
        if resource == "pods" {
            assert!(
                call.query
                    .contains("labelSelector=drain.io%2Fplanned%3Dtrue")
                    || call.query.contains("labelSelector=%21drain.io%2Fplanned"),
                "{}",
                call.url()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_counts_each_record_once_and_a_successor_counts_nothing_twice() {
    let now = Timestamp::now();
    let earlier = now - SignedDuration::from_secs(5);
    let quiet = record(EndReason::Quiet).to_line();
    let capped = record(EndReason::Cap).to_line();
    let pods = Arc::new(Mutex::new(vec![
        pod("p1", &quiet, earlier),
        pod("p2", &quiet, earlier),
        pod("p3", &capped, earlier),
        // Not a drain record: the user's own message only.
        json!({"metadata": {"name": "x", "namespace": "shop", "uid": "p0"},
            "status": {"containerStatuses": [{"name": "app", "image": "", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": {"exitCode": 1, "message": "oom"}}}]}}),
    ]));
    let api = FakeApi::routes(routes(Arc::clone(&pods)));
    let (_stop_tx, stop) = watch::channel(false);
    let start = |identity: &str| {
        let metrics = Replica::new();
        let task = tokio::spawn(observe::run(
            api.client_in("drain-system"),
            config(identity),
            Arc::clone(&metrics.observer),
            stop.clone(),
        ));
        (metrics, task)
    };
    let (a, a_task) = start("a");
    let (b, b_task) = start("b");

    until("a leader counts the three records", || {
        counted(&a) + counted(&b) == 3
    })
    .await;
    let (leader, leader_task, other, other_task) = if counted(&a) == 3 {
        (a, a_task, b, b_task)
    } else {
        (b, b_task, a, a_task)
    };
    assert_eq!(counted(&other), 0);
    // The other one lost the race to create the Lease: it names the holder from its next read.
    until("the follower names the leader", || {
        other.observer.board.report().holder.is_some()
    })
    .await;
    let report = other.observer.board.report();
    assert!(!report.leader && report.message.unwrap().contains("the leader is"));

    // Re-lists bring every record back: still three.
    let lists = || {
        api.calls()
            .iter()
            .filter(|c| c.path == "/api/v1/pods" && !c.query.contains("watch=true"))
            .count()
    };
    let before = lists();
    until("the leader lists again", || lists() >= before + 2).await;
    assert_eq!(counted(&leader) + counted(&other), 3);
    let report = leader.observer.board.report();
    assert!(report.leader);
    assert_eq!(report.workloads.len(), 1);
    let web = &report.workloads[0];
    assert_eq!(
        (
            web.kind.as_str(),
            web.name.as_str(),
            web.drains,
            web.cap_hits
        ),
        ("Deployment", "web", 3, 1)
    );
    assert_eq!(web.lag_max_seconds, Some(6.1));
    let text = leader.encode();
    assert!(
        text.contains(r#"drain_webhook_drain_cap_hits_total{namespace="shop"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"drain_webhook_drain_lag_seconds_count{namespace="shop"} 3"#),
        "{text}"
    );
    assert!(text.contains("drain_webhook_observer_leader 1"), "{text}");

    // The leader dies without releasing the Lease; a pod finishes after that.
    leader_task.abort();
    let killed = Instant::now();
    let later = Timestamp::now() + SignedDuration::from_secs(1);
    pods.lock().unwrap().push(pod("p4", &quiet, later));
    until("the other replica takes over", || {
        other.observer.board.report().leader
    })
    .await;
    let takeover = killed.elapsed();
    until("the successor counts the new record", || {
        counted(&other) == 1
    })
    .await;
    // A few more re-lists: the three the first leader counted are never counted again.
    let before = lists();
    until("the successor lists again", || lists() >= before + 2).await;
    assert_eq!((counted(&leader), counted(&other)), (3, 1));
    eprintln!("takeover after {takeover:?} (Lease {LEASE:?}, retry {RETRY:?})");
    assert!(takeover < LEASE + Duration::from_secs(8), "{takeover:?}");

    // The cap warning went out once, on the Deployment.
    let events: Vec<Call> = api
        .calls()
        .into_iter()
        .filter(|c| c.path.ends_with("/events"))
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].path,
        "/apis/events.k8s.io/v1/namespaces/shop/events"
    );
    check_calls(&api.calls());
    other_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_stops_cleanly_hands_over_at_once() {
    // A long Lease: the handover must not wait for it to run out.
    const LONG: Duration = Duration::from_secs(60);
    let api = FakeApi::routes(routes(Arc::new(Mutex::new(Vec::new()))));
    let (stop_a, stop) = watch::channel(false);
    let a = Replica::new();
    let a_task = tokio::spawn(observe::run(
        api.client_in("drain-system"),
        config_for("a", LONG),
        Arc::clone(&a.observer),
        stop,
    ));
    until("a leads", || a.observer.board.report().leader).await;
    let (_stop_b, stop) = watch::channel(false);
    let b = Replica::new();
    let b_task = tokio::spawn(observe::run(
        api.client_in("drain-system"),
        config_for("b", LONG),
        Arc::clone(&b.observer),
        stop,
    ));
    until("b follows", || {
        b.observer.board.report().holder.as_deref() == Some("a")
    })
    .await;
    stop_a.send_replace(true);
    a_task.await.unwrap();
    let lease = api.stored(
        "/apis/coordination.k8s.io/v1/namespaces/drain-system/leases/drain-webhook-observer",
    );
    assert!(lease["spec"]["holderIdentity"].is_null(), "{lease}");
    // Released: b takes it at its next retry, not after the Lease's duration.
    let waited = until("b leads", || b.observer.board.report().leader).await;
    assert!(waited < LONG / 2, "{waited:?}");
    b_task.abort();
}

/// `GET /drains` on the admin router: the leader's aggregates; a follower names the leader;
/// a process without the observer says it is off.
#[tokio::test]
async fn the_admin_endpoint_shows_the_leaders_aggregates() {
    use drain_webhook::server::{AdminState, Readiness, admin_router};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(metrics: &Arc<Replica>) -> Value {
        let router = admin_router(AdminState {
            metrics: Arc::new(Metrics::new()),
            observed: Arc::clone(&metrics.observer),
            ready: Readiness::default(),
        });
        let request = hyper::Request::get("/drains")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&body).unwrap()
    }

    let metrics = Replica::new();
    let off = get(&metrics).await;
    assert_eq!(off["leader"], false);
    assert!(off["message"].as_str().unwrap().contains("off"), "{off}");

    metrics.observer.board.started("a");
    metrics.observer.board.following(Some("b".into()));
    let follower = get(&metrics).await;
    assert_eq!(follower["holder"], "b");
    assert!(
        follower["message"]
            .as_str()
            .unwrap()
            .contains("the leader is b"),
        "{follower}"
    );

    metrics.observer.board.leading(Limits::default());
    let window = observe::Window {
        after: None,
        through: Timestamp::now(),
    };
    let line = record(EndReason::Cap).to_line();
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod(
        "p1",
        &line,
        Timestamp::now() - SignedDuration::from_secs(1),
    ))
    .unwrap();
    let outcomes = metrics
        .observer
        .board
        .lock()
        .drains
        .as_mut()
        .unwrap()
        .observe_pod(&pod, &window, Instant::now());
    assert_eq!(outcomes.len(), 1);
    let leader = get(&metrics).await;
    assert_eq!(leader["leader"], true);
    assert_eq!(
        leader["workloads"],
        json!([{"namespace": "shop", "kind": "Deployment", "name": "web", "drains": 1,
            "capHits": 1, "lagMedianSeconds": 6.1, "lagMaxSeconds": 6.1,
            "recent": [{"pod": "web-5f6c7-p1", "role": "app", "floor": 5.0, "end": 9.25, "why": "cap",
                "lastArrival": 6.1, "afterFloor": 4, "migratedAt": null, "signalAt": 9.25,
                "exit": 0}]}])
    );
}

/// The leader's second watch: a pod in an opted-in namespace that admission did not plan (no
/// label, no `drain.io/status`) is reported once, by a metric and a Warning Event, whatever the
/// re-lists; pods in other namespaces are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_created_without_a_plan_in_opted_in_namespaces_are_reported_once() {
    let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
        "metadata": {}, "status": "Failure", "message": "too old resource version",
        "reason": "Expired", "code": 410}});
    let unplanned = |uid: &str, namespace: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("web-{uid}"), "namespace": namespace, "uid": uid,
                "resourceVersion": "7"},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27",
                "ports": [{"containerPort": 80}]}, {"name": "app", "image": "shop:1"}]},
            "status": {"phase": "Running"}})
    };
    let pods = vec![unplanned("u1", "shop"), unplanned("u2", "elsewhere")];
    let api = FakeApi::routes(move |seen| {
        let list = |kind: &str, items: Vec<Value>| {
            Reply::json(
                200,
                json!({"kind": format!("{kind}List"), "apiVersion": "v1",
                "metadata": {"resourceVersion": "7", "continue": ""}, "items": items}),
            )
        };
        if seen.query.contains("watch=true") {
            return Some(Reply::json(200, gone.clone()));
        }
        match seen.path {
            "/api/v1/namespaces" => {
                assert!(
                    seen.query
                        .contains("labelSelector=drain.io%2Finject%3Denabled"),
                    "{}",
                    seen.query
                );
                Some(Reply::json(
                    200,
                    json!({"kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "7"},
                    "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": {"name": "shop", "resourceVersion": "3"}}]}),
                ))
            }
            "/api/v1/pods" if seen.query.contains("%21drain.io") => Some(list("Pod", pods.clone())),
            "/api/v1/pods" => Some(list("Pod", Vec::new())),
            _ => None,
        }
    });
    let (_stop_tx, stop) = watch::channel(false);
    let metrics = Replica::new();
    let config = ObserverConfig {
        planner: Some(Arc::new(drain_webhook::admission::Reviewer::for_tests())),
        ..config("a")
    };
    let task = tokio::spawn(observe::run(
        api.client_in("drain-system"),
        config,
        Arc::clone(&metrics.observer),
        stop,
    ));
    let reported = || {
        metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with("drain_webhook_unplanned_pods_total{"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    until("the unplanned pod is reported", || !reported().is_empty()).await;
    let lists = || {
        api.calls()
            .iter()
            .filter(|c| {
                c.path == "/api/v1/pods"
                    && c.query.contains("%21drain.io")
                    && !c.query.contains("watch=true")
            })
            .count()
    };
    let before = lists();
    until("the pods are listed again", || lists() >= before + 2).await;
    assert_eq!(
        reported(),
        [r#"drain_webhook_unplanned_pods_total{namespace="shop"} 1"#]
    );
    let events = api
        .calls()
        .into_iter()
        .filter(|c| c.path == "/apis/events.k8s.io/v1/namespaces/shop/events")
        .count();
    assert_eq!(events, 1);
    check_calls(&api.calls());
    task.abort();
}
