//! `--cert-mode self-managed` against a fake API server (an in-process tower service behind a
//! real `kube::Client`): two replicas starting at the same moment converge on one CA, through
//! the `AlreadyExists` path and through a conflicting update; every write carries the
//! `drain-webhook` field manager; no request is made that API_CALLS (and so the chart's RBAC,
//! tests/chart.rs) does not list.
#![cfg(feature = "webhook")]

use std::sync::Arc;
use std::time::Duration;

use drain_webhook::cluster::ApiCall;
use drain_webhook::cluster::certs::{
    self as certs_self_managed, API_CALLS, FIELD_MANAGER, SelfManagedConfig, ensure,
};
use hyper::Method;
use serde_json::json;

#[path = "common/fake_api.rs"]
mod fake_api;
use fake_api::{Call, FakeApi as Fake};

const NAMESPACE: &str = "drain-webhook";
const SECRET: &str = "drain-webhook-tls";
const CONFIGURATION: &str = "drain-webhook";
const SECRETS: &str = "/api/v1/namespaces/drain-webhook/secrets";
const CONFIGURATIONS: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

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
    let (a, b) = (fake.client_in(NAMESPACE), fake.client_in(NAMESPACE));
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
    let fake = Fake::store(2, Vec::new());
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
    let fake = Fake::store(2, vec![(format!("{SECRETS}/{SECRET}"), empty)]);
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
    let fake = Fake::store(0, vec![(path.clone(), configuration)]);
    let ca = certs_self_managed::generate("drain-webhook", NAMESPACE)
        .unwrap()
        .ca_pem;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(certs_self_managed::keep_ca_bundle(
        fake.client_in(NAMESPACE),
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
