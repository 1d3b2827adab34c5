//! `drain-webhook check` against a fake API server (tests/common/fake_api.rs): the pass path,
//! one test per failure (no configuration, wrong caBundle, no ready endpoints, a dry run
//! answered unmutated, no opted-in namespace), `--wait` turning a pending step into a pass, the
//! JSON shape, the exit codes, and that every request is one check::API_CALLS lists (so the
//! chart's check ClusterRole grants it, tests/chart.rs).
#![cfg(feature = "webhook")]

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use drain_webhook::check::{self, API_CALLS, CheckOptions, Outcome, Report};
use drain_webhook::cluster::ApiCall;
use drain_webhook::cluster::certs::generate;
use hyper::Method;
use serde_json::{Value, json};

#[path = "common/fake_api.rs"]
mod fake_api;
use fake_api::{Call, FakeApi, Reply, list, status, version};

const NAMESPACE: &str = "drain-webhook";
const SERVICE: &str = "drain-webhook";
const CONFIGURATION: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/drain-webhook/endpointslices";
const PROXY: &str =
    "/api/v1/namespaces/drain-webhook/services/https:drain-webhook:443/proxy/certificate";
const SETTINGS: &str =
    "/api/v1/namespaces/drain-webhook/services/https:drain-webhook:443/proxy/settings";
/// What Kyverno's require-pod-probes answers for a container without probes (the API server
/// prefixes the webhook's name).
const KYVERNO: &str = "admission webhook \"validate.kyverno.svc-fail\" denied the request: \n\nresource Pod/shop/drain-webhook-check-x1 was blocked due to the following policies \n\nrequire-pod-probes:\n  validate-probes: 'Liveness, readiness, or startup probes are required for all containers.'";

/// What the fake's policy engine rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Pods with a container without probes (of the check's Pods, only what the webhook adds).
    RequireProbes,
    /// Every pod.
    RejectAll,
}

/// The cluster the fake API server shows; tests change it, also while check waits.
#[derive(Debug, Clone)]
struct Cluster {
    configuration: bool,
    failure_policy: &'static str,
    ca_bundle: String,
    served: String,
    /// `ready` of each endpoint of the Service.
    endpoints: Vec<bool>,
    /// After this many EndpointSlice lists, every endpoint turns ready.
    ready_after: Option<usize>,
    opted_in: Vec<&'static str>,
    /// Whether the webhook answers the dry-run create (adds drain.io/status).
    mutates: bool,
    /// The opted-in namespaces carry `drain.io/delay: "0"`: the lone app is left unplanned,
    /// nginx still gets its graceful signal (and the helper).
    delay_zero: bool,
    /// A policy engine behind the webhook, answering as Kyverno's require-pod-probes does.
    policy: Option<Policy>,
    /// The webhook's `GET /settings` (`--helper-delivery`), `None`: 404 (an older webhook).
    helper_delivery: Option<&'static str>,
    /// The API server's minor version (1.x).
    minor: &'static str,
    /// Each node's `status.nodeInfo` `(containerRuntimeVersion, kubeletVersion)`; `None`:
    /// listing nodes is forbidden.
    nodes: Option<Vec<(&'static str, &'static str)>>,
}

impl Cluster {
    /// A working install: the CA in the caBundle signed what the webhook serves.
    fn working() -> Cluster {
        let pair = generate(SERVICE, NAMESPACE).unwrap();
        Cluster {
            configuration: true,
            failure_policy: "Fail",
            ca_bundle: pair.ca_pem,
            served: pair.cert_pem,
            endpoints: vec![true, false],
            ready_after: None,
            opted_in: vec!["shop"],
            mutates: true,
            delay_zero: false,
            policy: None,
            helper_delivery: Some("auto"),
            minor: "32",
            nodes: Some(vec![("containerd://1.7.27", "v1.32.4")]),
        }
    }
}

fn configuration(cluster: &Cluster) -> Value {
    let bundle = base64::engine::general_purpose::STANDARD.encode(&cluster.ca_bundle);
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "drain-webhook"},
        "webhooks": [{"name": "pods.drain-webhook.drain.io", "admissionReviewVersions": ["v1"],
            "sideEffects": "None", "failurePolicy": cluster.failure_policy,
            "clientConfig": {"caBundle": bundle,
                "service": {"name": SERVICE, "namespace": NAMESPACE, "path": "/mutate", "port": 443}}}]
    })
}

fn answer(cluster: &Mutex<Cluster>, lists: &Mutex<usize>, seen: &fake_api::Seen<'_>) -> Reply {
    let cluster = cluster.lock().unwrap().clone();
    let json = |(code, body): (u16, Value)| Reply::json(code, body);
    match (seen.method.as_str(), seen.path) {
        ("GET", "/version") => Reply::json(200, version("1", cluster.minor)),
        ("GET", "/api/v1/nodes") => match &cluster.nodes {
            None => json(status(403, "Forbidden")),
            Some(nodes) => {
                let items = nodes
                    .iter()
                    .enumerate()
                    .map(|(i, (runtime, kubelet))| {
                        json!({"metadata": {"name": format!("node-{i}")},
                               "status": {"nodeInfo": {"containerRuntimeVersion": runtime,
                                                       "kubeletVersion": kubelet}}})
                    })
                    .collect();
                Reply::json(200, list("Node", items, None))
            }
        },
        ("GET", p) if p == format!("{CONFIGURATION}/drain-webhook") => {
            if cluster.configuration {
                Reply::json(200, configuration(&cluster))
            } else {
                json(status(404, "NotFound"))
            }
        }
        ("GET", SLICES) => {
            assert!(
                seen.query
                    .contains("labelSelector=kubernetes.io%2Fservice-name%3Ddrain-webhook"),
                "{}",
                seen.query
            );
            let mut count = lists.lock().unwrap();
            *count += 1;
            let all_ready = cluster.ready_after.is_some_and(|n| *count > n);
            let endpoints: Vec<Value> = cluster
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, ready)| {
                    json!({"addresses": [format!("10.0.0.{i}")],
                           "conditions": {"ready": *ready || all_ready}})
                })
                .collect();
            let slices = if endpoints.is_empty() {
                vec![]
            } else {
                vec![
                    json!({"metadata": {"name": "drain-webhook-abc"}, "addressType": "IPv4",
                            "endpoints": endpoints}),
                ]
            };
            Reply::json(200, list("EndpointSlice", slices, None))
        }
        ("GET", PROXY) => Reply::text(200, &cluster.served),
        ("GET", SETTINGS) => match cluster.helper_delivery {
            Some(delivery) => Reply::json(
                200,
                json!({"helperDelivery": delivery, "hookMode": "auto",
                       "kubeVersion": format!("1.{}", cluster.minor), "delay": 10, "stagger": 5,
                       "shutdownBudget": 30, "quiet": 3, "maxDelay": 60}),
            ),
            None => json(status(404, "NotFound")),
        },
        ("GET", "/api/v1/namespaces") if seen.query.contains("fieldSelector") => {
            let name = seen
                .query
                .split("metadata.name%3D")
                .nth(1)
                .unwrap_or_default();
            let name = name.split('&').next().unwrap_or_default();
            let labels = if cluster.opted_in.contains(&name) {
                json!({"drain.io/inject": "enabled"})
            } else {
                json!({})
            };
            let annotations = if cluster.delay_zero {
                json!({"drain.io/delay": "0"})
            } else {
                json!({})
            };
            let item =
                json!({"metadata": {"name": name, "labels": labels, "annotations": annotations}});
            Reply::json(200, list("Namespace", vec![item], None))
        }
        ("GET", "/api/v1/namespaces") => {
            assert!(
                seen.query
                    .contains("labelSelector=drain.io%2Finject%3Denabled"),
                "{}",
                seen.query
            );
            let items = cluster
                .opted_in
                .iter()
                .map(|name| json!({"metadata": {"name": name}}))
                .collect();
            Reply::json(200, list("Namespace", items, None))
        }
        ("POST", path) if path.ends_with("/pods") => {
            assert!(seen.query.contains("dryRun=All"), "{}", seen.query);
            let mut pod = seen.body.clone();
            pod["metadata"]["name"] = json!("drain-webhook-check-x1");
            // The webhook: the lone app is planned unless D = 0, nginx always (with the helper).
            let opted_out = pod["metadata"]["annotations"]["drain.io/inject"] == "false";
            let with_proxy = pod["spec"]["containers"][0]["name"] == "nginx";
            if cluster.mutates && !opted_out && (with_proxy || !cluster.delay_zero) {
                let status = if with_proxy {
                    let containers = pod["spec"]["containers"].as_array_mut().unwrap();
                    containers.insert(0, json!({"name": "drain-helper", "image": "drain-helper"}));
                    r#"{"v":1,"c":{"nginx":"proxy:helper:10","app":"app:sleep:15"},"helper":{"firstContainer":"drain-helper","then":"sleep","volume":"drain-helper"}}"#
                } else {
                    r#"{"v":1,"c":{"app":"sleep:10"}}"#
                };
                pod["metadata"]["annotations"] = json!({ "drain.io/status": status });
            }
            // A policy engine after the webhook (validating admission runs after mutation).
            let unprobed = pod["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c.get("readinessProbe").is_none());
            match cluster.policy {
                Some(Policy::RejectAll) => {
                    let (code, mut body) = status(400, "BadRequest");
                    body["message"] = json!(KYVERNO);
                    json((code, body))
                }
                Some(Policy::RequireProbes) if unprobed => {
                    let (code, mut body) = status(400, "BadRequest");
                    body["message"] = json!(KYVERNO);
                    json((code, body))
                }
                _ => Reply::json(201, pod),
            }
        }
        _ => json(status(404, "NotFound")),
    }
}

struct Fake {
    api: Arc<FakeApi>,
    cluster: Arc<Mutex<Cluster>>,
}

fn fake(cluster: Cluster) -> Fake {
    let cluster = Arc::new(Mutex::new(cluster));
    let lists = Arc::new(Mutex::new(0));
    let shown = Arc::clone(&cluster);
    let api = FakeApi::routes(move |seen| Some(answer(&shown, &lists, seen)));
    Fake { api, cluster }
}

fn options() -> CheckOptions {
    CheckOptions {
        webhook_configuration: "drain-webhook".into(),
        namespace: None,
        wait: None,
        retry_every: Duration::from_millis(10),
    }
}

async fn run(fake: &Fake, options: &CheckOptions) -> Report {
    let report = check::check(&fake.api.client_in("default"), options, |_| {}).await;
    assert_calls_are_listed(&fake.api.calls());
    report
}

fn outcome(report: &Report, name: &str) -> (Outcome, String, Option<String>) {
    let step = report
        .steps
        .iter()
        .find(|s| s.step.name == name)
        .unwrap_or_else(|| panic!("no step {name}: {report:#?}"));
    (step.outcome, step.detail.clone(), step.hint.clone())
}

/// Every request is one API_CALLS lists, so the check ClusterRole grants it.
fn assert_calls_are_listed(calls: &[Call]) {
    for call in calls {
        let path = call.path.as_str();
        if path == "/version" {
            continue;
        }
        let (verb, group, resource, named) = match (&call.method, path) {
            (&Method::GET, p) if p.starts_with(CONFIGURATION) => (
                "get",
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations",
                true,
            ),
            (&Method::GET, SLICES) => ("list", "discovery.k8s.io", "endpointslices", false),
            (&Method::GET, PROXY | SETTINGS) => ("get", "", "services/proxy", true),
            (&Method::GET, "/api/v1/namespaces") => ("list", "", "namespaces", false),
            (&Method::GET, "/api/v1/nodes") => ("list", "", "nodes", false),
            (&Method::POST, p) if p.ends_with("/pods") => ("create", "", "pods", false),
            (method, p) => panic!("unexpected request {method} {p}"),
        };
        let expected = ApiCall {
            verb,
            group,
            resource,
            named,
        };
        assert!(
            API_CALLS.contains(&expected),
            "{expected:?} is not in API_CALLS"
        );
    }
}

#[tokio::test]
async fn a_working_install_passes_every_step() {
    let fake = fake(Cluster::working());
    let report = run(&fake, &options()).await;
    assert!(report.passed, "{}", check::render_text(&report));
    assert_eq!(report.exit_code(), check::EXIT_PASSED);
    let names: Vec<&str> = report.steps.iter().map(|s| s.step.name).collect();
    assert_eq!(
        names,
        [
            "api-server",
            "webhook-configuration",
            "failure-policy",
            "endpoints",
            "ca-bundle",
            "nodes",
            "dry-run",
            "dry-run-helper"
        ]
    );
    let (_, api, _) = outcome(&report, "api-server");
    assert!(
        api.contains("Kubernetes 1.32") && api.contains("native sleep"),
        "{api}"
    );
    let (outcome_nodes, nodes, _) = outcome(&report, "nodes");
    assert_eq!(outcome_nodes, Outcome::Pass);
    assert!(
        nodes.contains(
            "Always pods get first-container (then sleep), Never/OnFailure pods init-container"
        ) && nodes.contains("node-0 (kubelet v1.32.4, containerd 1.7.27)"),
        "{nodes}"
    );
    let (_, endpoints, _) = outcome(&report, "endpoints");
    assert!(endpoints.contains("1 of 2 endpoints ready"), "{endpoints}");
    let (_, dry_run, _) = outcome(&report, "dry-run");
    assert!(
        dry_run.contains("shop") && dry_run.contains("drain.io/status"),
        "{dry_run}"
    );
    // The dry run went to the first opted-in namespace, with check's field manager.
    let calls = fake.api.calls();
    let create = calls.iter().find(|c| c.method == Method::POST).unwrap();
    assert_eq!(create.path, "/api/v1/namespaces/shop/pods");
    assert!(
        create.query.contains("fieldManager=drain-webhook-check"),
        "{}",
        create.query
    );
}

#[tokio::test]
async fn no_webhook_configuration_fails_and_skips_the_rest() {
    let fake = fake(Cluster {
        configuration: false,
        ..Cluster::working()
    });
    let report = run(&fake, &options()).await;
    assert_eq!(report.exit_code(), check::EXIT_FAILED);
    let (state, detail, fix) = outcome(&report, "webhook-configuration");
    assert_eq!(state, Outcome::Fail);
    assert!(
        detail.contains("no MutatingWebhookConfiguration drain-webhook"),
        "{detail}"
    );
    assert!(fix.unwrap().contains("--webhook-configuration"));
    for later in [
        "failure-policy",
        "endpoints",
        "ca-bundle",
        "nodes",
        "dry-run",
        "dry-run-helper",
    ] {
        assert_eq!(outcome(&report, later).0, Outcome::Skipped, "{later}");
    }
}

#[tokio::test]
async fn a_ca_bundle_that_does_not_sign_the_served_certificate_fails() {
    let other = generate(SERVICE, NAMESPACE).unwrap();
    let fake = fake(Cluster {
        ca_bundle: other.ca_pem,
        ..Cluster::working()
    });
    let report = run(&fake, &options()).await;
    assert!(!report.passed);
    let (state, detail, fix) = outcome(&report, "ca-bundle");
    assert_eq!(state, Outcome::Fail);
    assert!(
        detail
            .contains("does not verify the certificate served for drain-webhook.drain-webhook.svc"),
        "{detail}"
    );
    assert!(fix.unwrap().contains("caBundle"));

    // A certificate for another Service's name, signed by the right CA, fails too.
    let elsewhere = generate("other", NAMESPACE).unwrap();
    let fake = fake_with_served(elsewhere);
    let report = run(&fake, &options()).await;
    assert_eq!(outcome(&report, "ca-bundle").0, Outcome::Fail);

    // An empty caBundle is named as such.
    let fake = self::fake(Cluster {
        ca_bundle: String::new(),
        ..Cluster::working()
    });
    let report = run(&fake, &options()).await;
    let (state, detail, _) = outcome(&report, "ca-bundle");
    assert_eq!(state, Outcome::Fail);
    assert!(detail.contains("empty"), "{detail}");
}

fn fake_with_served(pair: drain_webhook::cluster::certs::Generated) -> Fake {
    fake(Cluster {
        ca_bundle: pair.ca_pem,
        served: pair.cert_pem,
        ..Cluster::working()
    })
}

#[tokio::test]
async fn no_ready_endpoint_fails_with_the_fix() {
    for endpoints in [vec![], vec![false, false]] {
        let fake = fake(Cluster {
            endpoints: endpoints.clone(),
            ..Cluster::working()
        });
        let report = run(&fake, &options()).await;
        assert_eq!(report.exit_code(), check::EXIT_FAILED);
        let (state, detail, fix) = outcome(&report, "endpoints");
        assert_eq!(state, Outcome::Fail, "{endpoints:?}");
        assert!(detail.contains("drain-webhook/drain-webhook"), "{detail}");
        assert!(fix.unwrap().contains("kubectl -n drain-webhook"));
        let (skipped, why, _) = outcome(&report, "dry-run");
        assert_eq!(
            (skipped, why.as_str()),
            (Outcome::Skipped, "needs endpoints")
        );
        let text = check::render_text(&report);
        assert!(
            text.contains("[FAIL] endpoints: ") && text.contains("       fix: "),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_dry_run_answered_unmutated_fails() {
    let fake = fake(Cluster {
        mutates: false,
        ..Cluster::working()
    });
    let report = run(&fake, &options()).await;
    let (state, detail, fix) = outcome(&report, "dry-run");
    assert_eq!(state, Outcome::Fail);
    assert!(detail.contains("without drain.io/status"), "{detail}");
    assert!(fix.unwrap().contains("failed calling webhook"));
}

#[tokio::test]
async fn no_opted_in_namespace_fails_with_the_label_command_and_n_skips_the_lookup() {
    let fake = fake(Cluster {
        opted_in: vec![],
        ..Cluster::working()
    });
    let report = run(&fake, &options()).await;
    let (state, _, fix) = outcome(&report, "dry-run");
    assert_eq!(state, Outcome::Fail);
    assert_eq!(
        fix.as_deref(),
        Some("kubectl label namespace NS drain.io/inject=enabled (or pass -n NS)")
    );
    // -n NS: no namespace list, the create goes there.
    let fake = self::fake(Cluster::working());
    let report = run(
        &fake,
        &CheckOptions {
            namespace: Some("web".into()),
            ..options()
        },
    )
    .await;
    assert!(report.passed);
    let calls = fake.api.calls();
    assert!(
        !calls.iter().any(|c| c.path == "/api/v1/namespaces"),
        "{calls:#?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.path == "/api/v1/namespaces/web/pods")
    );
}

#[tokio::test]
async fn failure_policy_ignore_is_a_warning_with_its_consequence() {
    let fake = fake(Cluster {
        failure_policy: "Ignore",
        ..Cluster::working()
    });
    let report = run(&fake, &options()).await;
    assert!(report.passed, "a warning does not fail the check");
    let (state, detail, hint) = outcome(&report, "failure-policy");
    assert_eq!(state, Outcome::Warn);
    assert!(detail.contains("not protected"), "{detail}");
    assert!(hint.unwrap().contains("--wait"));
}

#[tokio::test]
async fn wait_turns_a_pending_step_into_a_pass() {
    let fake = fake(Cluster {
        endpoints: vec![false],
        ready_after: Some(3),
        ..Cluster::working()
    });
    // Once: the endpoint is not ready yet.
    let report = run(&fake, &options()).await;
    assert_eq!(outcome(&report, "endpoints").0, Outcome::Fail);
    let mut retried = Vec::new();
    let report = check::check(
        &fake.api.client_in("default"),
        &CheckOptions {
            wait: Some(Duration::from_secs(30)),
            ..options()
        },
        |attempt| retried.push(attempt.first_failure().unwrap().step.name),
    )
    .await;
    assert!(report.passed, "{}", check::render_text(&report));
    assert_eq!(report.attempts, 3, "two more lists until ready");
    assert_eq!(retried, ["endpoints", "endpoints"]);
    assert!(check::render_text(&report).contains("after 3 attempts"));

    // A step that never passes: the wait ends with the failure.
    fake.cluster.lock().unwrap().mutates = false;
    let report = check::check(
        &fake.api.client_in("default"),
        &CheckOptions {
            wait: Some(Duration::from_millis(200)),
            ..options()
        },
        |_| {},
    )
    .await;
    assert!(!report.passed);
    assert!(report.attempts > 1, "{}", report.attempts);
    assert_eq!(outcome(&report, "dry-run").0, Outcome::Fail);
}

#[tokio::test]
async fn json_output_has_one_object_per_step() {
    let fake = fake(Cluster {
        endpoints: vec![],
        ..Cluster::working()
    });
    let report = run(&fake, &options()).await;
    let json: Value = serde_json::from_str(&check::render_json(&report).unwrap()).unwrap();
    assert_eq!(json["passed"], false);
    assert_eq!(json["attempts"], 1);
    assert!(json["waitedSeconds"].is_u64());
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 8);
    for step in steps {
        let keys: Vec<&str> = step
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in ["name", "description", "outcome", "detail"] {
            assert!(keys.contains(&key), "{step}");
        }
    }
    assert_eq!(steps[0]["outcome"], "pass");
    assert_eq!(steps[3]["name"], "endpoints");
    assert_eq!(steps[3]["outcome"], "fail");
    assert!(steps[3]["hint"].is_string());
    assert_eq!(steps[6]["outcome"], "skipped");
    assert!(steps[0].get("hint").is_none());
}

#[test]
fn the_binary_exits_2_when_it_cannot_reach_a_cluster() {
    let out = Command::new(env!("CARGO_BIN_EXE_drain-webhook"))
        .args(["check", "--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--kubeconfig /nonexistent/kubeconfig"),
        "{stderr}"
    );
    // A bad --wait is a usage error (clap's 2), naming the flag and an example.
    let out = Command::new(env!("CARGO_BIN_EXE_drain-webhook"))
        .args(["check", "--wait", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--wait") && stderr.contains("1m30s"),
        "{stderr}"
    );
}

/// On 1.35 the nodes decide: containerd 1.7 on one node, or a 1.34 kubelet on containerd 2.1
/// (a control plane upgraded first), means no image volume, and the blocking node is named
/// with what blocks it; a 1.35 kubelet on containerd 2.1 (or CRI-O 1.31) on every node means
/// image volumes; a forbidden node list is a warning, not a failure (the webhook then plans
/// without image volumes).
#[tokio::test]
async fn the_nodes_step_says_whether_auto_uses_image_volumes() {
    for (nodes, expected) in [
        (
            vec![
                ("containerd://2.1.3", "v1.35.0"),
                ("containerd://1.7.27", "v1.35.0"),
            ],
            "Always pods get first-container (then sleep)",
        ),
        (
            vec![
                ("containerd://2.1.3", "v1.35.0"),
                ("containerd://2.1.3", "v1.34.2"),
            ],
            "no: 1 of 2 nodes cannot mount them: node-1 (kubelet v1.34.2)",
        ),
        (
            vec![
                ("containerd://2.1.3", "v1.35.0"),
                ("cri-o://1.31.2", "v1.35.1"),
            ],
            "Always pods get image-volume, Never/OnFailure pods image-volume",
        ),
    ] {
        let mut cluster = Cluster::working();
        cluster.minor = "35";
        cluster.nodes = Some(nodes);
        let report = run(&fake(cluster), &options()).await;
        let (outcome_nodes, detail, _) = outcome(&report, "nodes");
        assert_eq!(outcome_nodes, Outcome::Pass, "{detail}");
        assert!(detail.contains(expected), "{detail}");
    }
    let mut forbidden = Cluster::working();
    forbidden.nodes = None;
    let report = run(&fake(forbidden), &options()).await;
    let (outcome_nodes, detail, hint) = outcome(&report, "nodes");
    assert_eq!(outcome_nodes, Outcome::Warn, "{detail}");
    assert!(hint.unwrap().contains("list on nodes"));
    assert!(report.passed, "a warning does not fail check");
}

/// The helper Pod (nginx + app) is rejected by a policy engine once drain-webhook has added
/// drain-helper: check names the webhook and the policy (the API server's message, whole), and
/// says that the same Pod without drain-webhook's changes is admitted. A policy that rejects
/// the check's own Pod as well is said as such.
#[tokio::test]
async fn a_policy_rejecting_the_helper_pod_is_named() {
    let fake = fake(Cluster {
        policy: Some(Policy::RequireProbes),
        ..Cluster::working()
    });
    let report = run(&fake, &options()).await;
    assert!(!report.passed);
    assert_eq!(report.exit_code(), check::EXIT_FAILED);
    // The lone app gets no helper: admitted.
    assert_eq!(outcome(&report, "dry-run").0, Outcome::Pass);
    let (state, detail, fix) = outcome(&report, "dry-run-helper");
    assert_eq!(state, Outcome::Fail);
    assert!(
        detail.contains("once drain-webhook had added drain-helper")
            && detail.contains(r#"the admission webhook "validate.kyverno.svc-fail" (400)"#)
            && detail.contains("require-pod-probes"),
        "{detail}"
    );
    let fix = fix.unwrap();
    assert!(
        fix.contains(r#"drain.io/inject: "false" is admitted"#) && fix.contains("init-container"),
        "{fix}"
    );
    let text = check::render_text(&report);
    assert!(text.contains("[FAIL] dry-run-helper: "), "{text}");
    // The second create, opted out, went to the same namespace, also as a dry run.
    let creates: Vec<Call> = fake
        .api
        .calls()
        .into_iter()
        .filter(|c| c.method == Method::POST)
        .collect();
    assert_eq!(creates.len(), 3, "{creates:#?}");
    assert!(
        creates
            .iter()
            .all(|c| c.path == "/api/v1/namespaces/shop/pods")
    );

    let fake = self::fake(Cluster {
        policy: Some(Policy::RejectAll),
        ..Cluster::working()
    });
    let report = run(&fake, &options()).await;
    let (state, detail, fix) = outcome(&report, "dry-run");
    assert_eq!(state, Outcome::Fail);
    assert!(detail.contains("validate.kyverno.svc-fail"), "{detail}");
    assert!(fix.unwrap().contains("the check's own Pod"));
    let (state, detail, _) = outcome(&report, "dry-run-helper");
    assert_eq!(state, Outcome::Fail);
    assert!(
        detail.contains("with or without drain-webhook's changes"),
        "{detail}"
    );
}

/// A namespace whose settings plan nothing for the lone app (`drain.io/delay: "0"`) is a
/// warning that says so, not "the API server did not call the webhook"; the Pod with a front
/// proxy is still planned there (its graceful signal needs the helper).
#[tokio::test]
async fn a_namespace_with_delay_zero_is_reported_as_planning_nothing() {
    let fake = fake(Cluster {
        delay_zero: true,
        ..Cluster::working()
    });
    let report = run(&fake, &options()).await;
    assert!(report.passed, "{}", check::render_text(&report));
    let (state, detail, hint) = outcome(&report, "dry-run");
    assert_eq!(state, Outcome::Warn, "{detail}");
    assert!(
        detail.contains("no container needs a drain hook")
            && detail.contains(r#"D = 0s: namespace shop has drain.io/delay: "0""#),
        "{detail}"
    );
    assert!(!detail.contains("did not call the webhook"), "{detail}");
    assert!(hint.unwrap().contains("drain.io/delay-"));
    let (state, detail, _) = outcome(&report, "dry-run-helper");
    assert_eq!(state, Outcome::Pass, "{detail}");
    assert!(
        detail.contains("drain-helper from the first container drain-helper"),
        "{detail}"
    );

    // Unplanned where D is not 0 is still the webhook not called; and a namespace given with
    // -n that lacks the label is named as such.
    let fake = self::fake(Cluster {
        mutates: false,
        ..Cluster::working()
    });
    let report = run(
        &fake,
        &CheckOptions {
            namespace: Some("web".into()),
            ..options()
        },
    )
    .await;
    let (state, detail, fix) = outcome(&report, "dry-run");
    assert_eq!(state, Outcome::Fail);
    assert!(detail.contains("namespace web is not labelled"), "{detail}");
    assert_eq!(
        fix.as_deref(),
        Some("kubectl label namespace web drain.io/inject=enabled")
    );
}

/// The nodes step describes the delivery the server is configured for (its GET /settings):
/// `--helper-delivery init-container` gives every pod the init container, whatever the nodes;
/// a webhook that does not show its settings is a warning that assumes auto.
#[tokio::test]
async fn the_nodes_step_follows_the_servers_helper_delivery() {
    let mut cluster = Cluster::working();
    cluster.minor = "35";
    cluster.nodes = Some(vec![("containerd://2.1.3", "v1.35.0")]);
    cluster.helper_delivery = Some("init-container");
    let report = run(&fake(cluster.clone()), &options()).await;
    let (state, detail, _) = outcome(&report, "nodes");
    assert_eq!(state, Outcome::Pass, "{detail}");
    assert!(
        detail.contains(
            "helper delivery (init-container): restartPolicy Always pods get init-container"
        ) && detail.contains(
            "the server's --helper-delivery init-container, planning for Kubernetes 1.35"
        ),
        "{detail}"
    );
    // Forced image volumes with a node that cannot mount them: a failure naming the node.
    let mut forced = cluster.clone();
    forced.helper_delivery = Some("image-volume");
    forced.nodes = Some(vec![
        ("containerd://2.1.3", "v1.35.0"),
        ("containerd://2.1.3", "v1.34.2"),
    ]);
    let report = run(&fake(forced), &options()).await;
    let (state, detail, fix) = outcome(&report, "nodes");
    assert_eq!(state, Outcome::Fail, "{detail}");
    assert!(detail.contains("node-1 (kubelet v1.34.2)"), "{detail}");
    assert!(fix.unwrap().contains("never start"));

    cluster.helper_delivery = None;
    let report = run(&fake(cluster), &options()).await;
    let (state, detail, hint) = outcome(&report, "nodes");
    assert_eq!(state, Outcome::Warn, "{detail}");
    assert!(
        detail.contains("does not show its settings")
            && detail.contains("assuming --helper-delivery auto")
            && detail.contains("Always pods get image-volume"),
        "{detail}"
    );
    assert!(hint.unwrap().contains("upgrade drain-webhook"));
    assert!(report.passed);
}
