//! `--cert-mode self-managed` against a fake API server (an in-process tower service behind a
//! real `kube::Client`): two replicas starting at the same moment converge on one CA, through
//! the `AlreadyExists` path and through a conflicting update; every write carries the
//! `drain-webhook` field manager; no request is made that API_CALLS (and so the chart's RBAC,
//! tests/chart.rs) does not list.
#![cfg(feature = "webhook")]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drain_webhook::certs_self_managed::{
    self, API_CALLS, ApiCall, FIELD_MANAGER, SelfManagedConfig, ensure,
};
use http_body_util::BodyExt;
use hyper::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::Barrier;

const NAMESPACE: &str = "drain-webhook";
const SECRET: &str = "drain-webhook-tls";
const CONFIGURATION: &str = "drain-webhook";
const SECRETS: &str = "/api/v1/namespaces/drain-webhook/secrets";
const CONFIGURATIONS: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: String,
    query: String,
    status: u16,
}

/// One stored object per path, with resourceVersion checks like the API server's.
struct Fake {
    objects: Mutex<Vec<(String, Value)>>,
    version: Mutex<u64>,
    calls: Mutex<Vec<Call>>,
    /// The answers to the first GETs wait here until this many have been answered, so that
    /// concurrent replicas all read before any of them writes.
    first_gets: Barrier,
    gets: Mutex<usize>,
    hold_gets: usize,
}

fn status(code: u16, reason: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("fake: {reason}"), "reason": reason, "code": code}),
    )
}

impl Fake {
    fn new(hold_gets: usize, objects: Vec<(String, Value)>) -> Arc<Fake> {
        Arc::new(Fake {
            objects: Mutex::new(objects),
            version: Mutex::new(10),
            calls: Mutex::new(Vec::new()),
            first_gets: Barrier::new(hold_gets.max(1)),
            gets: Mutex::new(0),
            hold_gets,
        })
    }

    fn client(self: &Arc<Fake>) -> Client {
        let fake = Arc::clone(self);
        let service = tower::service_fn(move |request: Request<Body>| {
            let fake = Arc::clone(&fake);
            async move { Ok::<_, Infallible>(fake.answer(request).await) }
        });
        Client::new(service, NAMESPACE)
    }

    fn next_version(&self) -> String {
        let mut version = self.version.lock().unwrap();
        *version += 1;
        version.to_string()
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let bytes = request.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let (code, answer) = self.apply(&method, &path, &body);
        let held = method == Method::GET && {
            let mut gets = self.gets.lock().unwrap();
            *gets += 1;
            *gets <= self.hold_gets
        };
        self.calls.lock().unwrap().push(Call {
            method,
            path,
            query,
            status: code,
        });
        // Answered, but not handed back until every held GET is answered too.
        if held {
            self.first_gets.wait().await;
        }
        Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&answer).unwrap()))
            .unwrap()
    }

    fn apply(&self, method: &Method, path: &str, body: &Value) -> (u16, Value) {
        let mut objects = self.objects.lock().unwrap();
        let position = |p: &str| objects.iter().position(|(stored, _)| stored == p);
        match *method {
            Method::GET => match position(path) {
                Some(i) => (200, objects[i].1.clone()),
                None => status(404, "NotFound"),
            },
            Method::POST => {
                let name = body["metadata"]["name"].as_str().unwrap_or_default();
                let target = format!("{path}/{name}");
                if position(&target).is_some() {
                    return status(409, "AlreadyExists");
                }
                let mut object = body.clone();
                object["metadata"]["resourceVersion"] = json!(self.next_version());
                objects.push((target, object.clone()));
                (201, object)
            }
            Method::PUT => {
                let Some(i) = position(path) else {
                    return status(404, "NotFound");
                };
                let stored = &objects[i].1["metadata"]["resourceVersion"];
                if body["metadata"]["resourceVersion"] != *stored {
                    return status(409, "Conflict");
                }
                let mut object = body.clone();
                object["metadata"]["resourceVersion"] = json!(self.next_version());
                objects[i].1 = object.clone();
                (200, object)
            }
            _ => status(405, "MethodNotAllowed"),
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn stored(&self, path: &str) -> Value {
        let objects = self.objects.lock().unwrap();
        objects.iter().find(|(p, _)| p == path).unwrap().1.clone()
    }
}

/// Every request is one that API_CALLS lists (so the chart grants it), and every write has
/// our field manager.
fn assert_calls_are_listed(calls: &[Call]) {
    for call in calls {
        let (collection, name) = match call.path.rsplit_once('/') {
            Some((collection, name)) if collection == SECRETS || collection == CONFIGURATIONS => {
                (collection, Some(name))
            }
            _ => (call.path.as_str(), None),
        };
        let (group, resource) = match collection {
            SECRETS => ("", "secrets"),
            CONFIGURATIONS => (
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations",
            ),
            other => panic!("unexpected request to {other}"),
        };
        let verb = match (&call.method, name.is_some()) {
            (&Method::GET, true) => "get",
            (&Method::POST, false) => "create",
            (&Method::PUT, true) => "update",
            (method, _) => panic!("unexpected {method} {}", call.path),
        };
        let expected = ApiCall {
            verb,
            group,
            resource,
            named: name.is_some(),
        };
        assert!(
            API_CALLS.contains(&expected),
            "{expected:?} is not in API_CALLS"
        );
        if let Some(name) = name {
            let configured = match resource {
                "secrets" => SECRET,
                _ => CONFIGURATION,
            };
            assert_eq!(name, configured, "RBAC limits {resource} to {configured}");
        }
        if call.method != Method::GET {
            assert!(
                call.query
                    .contains(&format!("fieldManager={FIELD_MANAGER}")),
                "{} {} without the field manager: {:?}",
                call.method,
                call.path,
                call.query
            );
        }
    }
}

fn config() -> SelfManagedConfig {
    SelfManagedConfig {
        namespace: NAMESPACE.into(),
        secret_name: SECRET.into(),
        service_name: "drain-webhook".into(),
    }
}

fn stored_ca(fake: &Fake) -> String {
    let secret = fake.stored(&format!("{SECRETS}/{SECRET}"));
    let encoded = secret["data"]["ca.crt"].as_str().expect("ca.crt");
    let decoded = base64_decode(encoded);
    String::from_utf8(decoded).unwrap()
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// Two replicas, each with its own client, started together.
async fn two_replicas(fake: &Arc<Fake>) -> (String, String) {
    let (a, b) = (fake.client(), fake.client());
    let config = config();
    let (first, second) = tokio::join!(ensure(a, &config), ensure(b, &config));
    (first.unwrap().ca_pem, second.unwrap().ca_pem)
}

fn statuses(calls: &[Call], method: Method) -> Vec<u16> {
    let mut statuses: Vec<u16> = calls
        .iter()
        .filter(|c| c.method == method)
        .map(|c| c.status)
        .collect();
    statuses.sort_unstable();
    statuses
}

#[tokio::test]
async fn two_replicas_creating_the_secret_at_once_converge_on_one_ca() {
    let fake = Fake::new(2, Vec::new());
    let (first, second) = tokio::time::timeout(Duration::from_secs(60), two_replicas(&fake))
        .await
        .expect("both replicas finish");
    assert_eq!(first, second, "both replicas serve with the same CA");
    assert_eq!(first, stored_ca(&fake), "and it is the one in the Secret");
    let calls = fake.calls();
    // Both saw no Secret, both created one: one won, the other got AlreadyExists and read
    // the winner's.
    assert_eq!(statuses(&calls, Method::POST), [201, 409], "{calls:#?}");
    assert_eq!(statuses(&calls, Method::GET), [200, 404, 404], "{calls:#?}");
    assert_calls_are_listed(&calls);
}

#[tokio::test]
async fn two_replicas_replacing_an_unusable_secret_at_once_converge_on_one_ca() {
    // Created by hand, empty: both replicas generate a certificate and replace it, guarded by
    // the resourceVersion they read; the second replace conflicts.
    let empty = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": SECRET, "namespace": NAMESPACE, "resourceVersion": "3"}});
    let fake = Fake::new(2, vec![(format!("{SECRETS}/{SECRET}"), empty)]);
    let (first, second) = tokio::time::timeout(Duration::from_secs(60), two_replicas(&fake))
        .await
        .expect("both replicas finish");
    assert_eq!(first, second);
    assert_eq!(first, stored_ca(&fake));
    let calls = fake.calls();
    assert_eq!(statuses(&calls, Method::PUT), [200, 409], "{calls:#?}");
    assert_eq!(statuses(&calls, Method::GET), [200, 200, 200], "{calls:#?}");
    assert!(statuses(&calls, Method::POST).is_empty());
    assert_calls_are_listed(&calls);
}

#[tokio::test]
async fn the_ca_bundle_is_written_with_the_drain_webhook_field_manager() {
    let configuration = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION, "resourceVersion": "5"},
        "webhooks": [{"name": "pods.drain-webhook.drain.io", "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "clientConfig": {"service": {"name": "drain-webhook", "namespace": NAMESPACE}}}]
    });
    let path = format!("{CONFIGURATIONS}/{CONFIGURATION}");
    let fake = Fake::new(0, vec![(path.clone(), configuration)]);
    let ca = certs_self_managed::generate("drain-webhook", NAMESPACE)
        .unwrap()
        .ca_pem;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(certs_self_managed::keep_ca_bundle(
        fake.client(),
        CONFIGURATION.into(),
        ca.clone(),
        stopped,
    ));
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while !fake.calls().iter().any(|c| c.method == Method::PUT) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    stop.send(true).unwrap();
    task.await.unwrap();
    waited.expect("the caBundle is written");
    let calls = fake.calls();
    assert_calls_are_listed(&calls);
    let stored = fake.stored(&path);
    let bundle = stored["webhooks"][0]["clientConfig"]["caBundle"]
        .as_str()
        .expect("caBundle");
    assert_eq!(String::from_utf8(base64_decode(bundle)).unwrap(), ca);
}
