//! The steps of `check`, in order. Each returns its [`StepResult`] and what the steps after it
//! need (`None` when it failed).

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};

use super::{CheckOptions, FIELD_MANAGER, Outcome, Report, Step, StepResult};
use crate::annotations::{INJECT, STATUS};
use crate::settings::KubeVersion;

pub const API_SERVER: Step = Step {
    name: "api-server",
    description: "the API server answers; what the plan uses on its version",
    fatal: true,
};
pub use super::ca_bundle::CA_BUNDLE;
use super::ca_bundle::ca_bundle;
pub use super::nodes::NODES;
pub const CONFIGURATION: Step = Step {
    name: "webhook-configuration",
    description: "the MutatingWebhookConfiguration exists and names the webhook's Service",
    fatal: true,
};
pub const FAILURE_POLICY: Step = Step {
    name: "failure-policy",
    description: "what happens to pods created while the webhook is unreachable",
    fatal: false,
};
pub const ENDPOINTS: Step = Step {
    name: "endpoints",
    description: "the webhook's Service has a ready endpoint",
    fatal: true,
};
pub const DRY_RUN: Step = Step {
    name: "dry-run",
    description: "a Pod created with dryRun=All in an opted-in namespace gets drain.io/status",
    fatal: false,
};

/// Every step, in the order they run.
pub const STEPS: [Step; 7] = [
    API_SERVER,
    NODES,
    CONFIGURATION,
    FAILURE_POLICY,
    ENDPOINTS,
    CA_BUNDLE,
    DRY_RUN,
];

pub(super) fn result(
    step: Step,
    outcome: Outcome,
    detail: String,
    hint: Option<String>,
) -> StepResult {
    StepResult {
        step,
        outcome,
        detail,
        hint,
    }
}

pub(super) fn pass(step: Step, detail: String) -> StepResult {
    result(step, Outcome::Pass, detail, None)
}

pub(super) fn fail(step: Step, detail: String, hint: impl Into<String>) -> StepResult {
    result(step, Outcome::Fail, detail, Some(hint.into()))
}

/// A request the API server refused or could not answer, worded for the step; 403 names the
/// permission (docs/install.md lists them all).
pub(super) fn request_failed(
    step: Step,
    what: &str,
    err: &kube::Error,
    permission: &str,
) -> StepResult {
    match err {
        kube::Error::Api(status) if status.code == 403 => fail(
            step,
            format!("{what}: forbidden (403)"),
            format!(
                "grant {permission} (the chart's ClusterRole <release>-check, docs/install.md)"
            ),
        ),
        kube::Error::Api(status) => fail(
            step,
            format!(
                "{what}: the API server answered {} {}: {}",
                status.code, status.reason, status.message
            ),
            "run again; if it persists, see the API server's logs",
        ),
        other => fail(
            step,
            format!("{what}: {other}"),
            "check the kubeconfig (--kubeconfig, --context) and that the cluster is reachable",
        ),
    }
}

/// What [`webhook_configuration`] found: the Service the API server calls, and its caBundle.
#[derive(Debug, Clone)]
pub struct Configured {
    pub namespace: String,
    pub service: String,
    pub port: i32,
    pub ca_bundle: Vec<u8>,
    pub failure_policy: Option<String>,
}

impl Configured {
    /// The name the API server checks the served certificate against.
    pub(super) fn dns_name(&self) -> String {
        format!("{}.{}.svc", self.service, self.namespace)
    }
}

/// Runs the steps once; a fatal failure marks the rest skipped.
pub async fn run_once(client: &Client, options: &CheckOptions) -> Report {
    let mut steps = Vec::with_capacity(STEPS.len());
    let mut unreachable = false;
    let finished = async {
        let (version, reachable, kube_version) = api_server(client).await;
        unreachable = !reachable;
        steps.push(version);
        if unreachable {
            return;
        }
        steps.push(super::nodes::nodes(client, kube_version).await);
        let (found, configured) =
            webhook_configuration(client, &options.webhook_configuration).await;
        steps.push(found);
        let Some(configured) = configured else { return };
        steps.push(failure_policy(&configured));
        let ready = endpoints(client, &configured).await;
        let endpoints_failed = ready.outcome == Outcome::Fail;
        steps.push(ready);
        if endpoints_failed {
            return;
        }
        steps.push(ca_bundle(client, &configured).await);
        steps.push(dry_run(client, options.namespace.as_deref(), &configured).await);
    };
    finished.await;
    // The step that stopped the run is the last one that ran.
    let needed = steps.last().map_or("", |s: &StepResult| s.step.name);
    for step in STEPS.iter().skip(steps.len()) {
        steps.push(result(
            *step,
            Outcome::Skipped,
            format!("needs {needed}"),
            None,
        ));
    }
    Report {
        passed: steps
            .iter()
            .all(|s| matches!(s.outcome, Outcome::Pass | Outcome::Warn)),
        attempts: 1,
        waited_seconds: 0,
        steps,
        unreachable,
    }
}

/// What the planner uses on `version` (the same rules as serve: settings' thresholds).
pub fn plan_summary(version: Option<KubeVersion>) -> String {
    let hooks = if version.is_some_and(KubeVersion::supports_sleep_action) {
        "native sleep where a sleep is enough, else the helper".to_string()
    } else {
        format!(
            "the helper for every hook (the native sleep needs {})",
            KubeVersion::SLEEP_ACTION
        )
    };
    let signals = match version {
        Some(v) if v.has_stop_signals() => {
            "native stop signals: the field exists (ContainerStopSignals gate, off by default; drain.io/hook: native only)"
                .to_string()
        }
        _ => format!(
            "native stop signals: not available (need {} and the ContainerStopSignals gate)",
            KubeVersion::STOP_SIGNALS
        ),
    };
    format!("hooks: {hooks}; {signals}")
}

/// `GET /version`. The bool is false when the API server could not be reached at all.
async fn api_server(client: &Client) -> (StepResult, bool, Option<KubeVersion>) {
    match client.apiserver_version().await {
        Ok(info) => match KubeVersion::from_parts(&info.major, &info.minor) {
            Some(version) => (
                pass(
                    API_SERVER,
                    format!(
                        "Kubernetes {version} ({}); {}",
                        info.git_version,
                        plan_summary(Some(version))
                    ),
                ),
                true,
                Some(version),
            ),
            None => (
                result(
                    API_SERVER,
                    Outcome::Warn,
                    format!(
                        "cannot read the version {:?}: the webhook plans as for an unknown version; {}",
                        info.git_version,
                        plan_summary(None)
                    ),
                    Some(
                        "set settings.kubeVersion in the chart to plan for the real version".into(),
                    ),
                ),
                true,
                None,
            ),
        },
        Err(err) => {
            let reachable = matches!(err, kube::Error::Api(_));
            (
                request_failed(API_SERVER, "GET /version", &err, "get on /version"),
                reachable,
                None,
            )
        }
    }
}

async fn webhook_configuration(client: &Client, name: &str) -> (StepResult, Option<Configured>) {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let found = match api.get_opt(name).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return (
                fail(
                    CONFIGURATION,
                    format!("no MutatingWebhookConfiguration {name}"),
                    "install drain-webhook (docs/install.md); if it is installed under another name, pass --webhook-configuration NAME (kubectl get mutatingwebhookconfigurations)",
                ),
                None,
            );
        }
        Err(err) => {
            return (
                request_failed(
                    CONFIGURATION,
                    &format!("reading MutatingWebhookConfiguration {name}"),
                    &err,
                    "get on mutatingwebhookconfigurations",
                ),
                None,
            );
        }
    };
    let with_service = found
        .webhooks
        .iter()
        .flatten()
        .find_map(|w| Some((w, w.client_config.service.as_ref()?)));
    let Some((webhook, service)) = with_service else {
        return (
            fail(
                CONFIGURATION,
                format!(
                    "MutatingWebhookConfiguration {name} names no Service (clientConfig.url is not what the chart installs)"
                ),
                "reinstall the chart, or pass --webhook-configuration NAME of drain-webhook's configuration",
            ),
            None,
        );
    };
    let configured = Configured {
        namespace: service.namespace.clone(),
        service: service.name.clone(),
        port: service.port.unwrap_or(443),
        ca_bundle: webhook
            .client_config
            .ca_bundle
            .as_ref()
            .map(|b| b.0.clone())
            .unwrap_or_default(),
        failure_policy: webhook.failure_policy.clone(),
    };
    let detail = format!(
        "{name}: webhook {} calls service {}/{}:{}{}",
        webhook.name,
        configured.namespace,
        configured.service,
        configured.port,
        service.path.as_deref().unwrap_or("/")
    );
    (pass(CONFIGURATION, detail), Some(configured))
}

fn failure_policy(configured: &Configured) -> StepResult {
    // The v1 API's default is Fail.
    match configured.failure_policy.as_deref().unwrap_or("Fail") {
        "Fail" => pass(
            FAILURE_POLICY,
            "Fail: pod creation in opted-in namespaces fails while the webhook is unreachable (no pod starts unprotected)".into(),
        ),
        other => result(
            FAILURE_POLICY,
            Outcome::Warn,
            format!(
                "{other}: pods created while the webhook is unreachable are not protected (they start without a drain plan, and nothing says so)"
            ),
            Some("run drain-webhook check --wait 2m after every install or upgrade before creating pods; or set webhook.failurePolicy=Fail (pod creation in opted-in namespaces then fails while the webhook is down)".into()),
        ),
    }
}

async fn endpoints(client: &Client, configured: &Configured) -> StepResult {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &configured.namespace);
    let selector = format!("kubernetes.io/service-name={}", configured.service);
    let pods_hint = format!(
        "wait for the webhook's pods to be Ready (check --wait 2m), or see why they are not: kubectl -n {ns} get endpointslices -l {selector}; kubectl -n {ns} describe pods -l app.kubernetes.io/name=drain-webhook",
        ns = configured.namespace
    );
    let slices = match api.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => list.items,
        Err(err) => {
            return request_failed(
                ENDPOINTS,
                &format!("listing the EndpointSlices of {}", configured.service),
                &err,
                &format!("list on endpointslices in {}", configured.namespace),
            );
        }
    };
    let all: Vec<_> = slices.iter().flat_map(|s| s.endpoints.iter()).collect();
    // The API's rule: a missing `ready` condition means ready.
    let ready = all
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .count();
    let service = format!("{}/{}", configured.namespace, configured.service);
    match (ready, all.len()) {
        (0, 0) => fail(
            ENDPOINTS,
            format!("service {service} has no endpoints (no EndpointSlice lists a pod)"),
            pods_hint,
        ),
        (0, total) => fail(
            ENDPOINTS,
            format!("service {service} has no ready endpoint ({total} not ready)"),
            pods_hint,
        ),
        (ready, total) => pass(
            ENDPOINTS,
            format!("service {service}: {ready} of {total} endpoints ready"),
        ),
    }
}

/// The Pod of the dry run: passes Pod Security "restricted" and quotas (requests and limits);
/// never stored, so its image is never pulled.
fn probe_pod() -> Result<Pod, serde_json::Error> {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "drain-webhook-check-",
            "labels": {"app.kubernetes.io/name": "drain-webhook-check"}
        },
        "spec": {
            "securityContext": {
                "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"}
            },
            "containers": [{
                "name": "app",
                "image": "registry.k8s.io/pause:3.10",
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]}
                },
                "resources": {
                    "requests": {"cpu": "1m", "memory": "8Mi"},
                    "limits": {"cpu": "10m", "memory": "16Mi"}
                }
            }]
        }
    }))
}

/// The first namespace labelled `drain.io/inject=enabled`, other than the webhook's own.
async fn opted_in_namespace(client: &Client, own: &str) -> Result<Option<String>, kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().labels(&format!("{INJECT}=enabled")))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|ns| ns.metadata.name)
        .find(|name| name != own && name != "kube-system"))
}

async fn dry_run(client: &Client, namespace: Option<&str>, configured: &Configured) -> StepResult {
    let namespace = match namespace {
        Some(namespace) => namespace.to_owned(),
        None => match opted_in_namespace(client, &configured.namespace).await {
            Ok(Some(namespace)) => namespace,
            Ok(None) => {
                return fail(
                    DRY_RUN,
                    format!("no namespace is labelled {INJECT}=enabled, so no pod is ever mutated"),
                    format!("kubectl label namespace NS {INJECT}=enabled (or pass -n NS)"),
                );
            }
            Err(err) => {
                return request_failed(
                    DRY_RUN,
                    "finding an opted-in namespace",
                    &err,
                    "list on namespaces (or pass -n NS)",
                );
            }
        },
    };
    let pod = match probe_pod() {
        Ok(pod) => pod,
        Err(err) => {
            return fail(
                DRY_RUN,
                format!("cannot build the probe pod: {err}"),
                "a fault of drain-webhook check; please report it",
            );
        }
    };
    let params = PostParams {
        dry_run: true,
        field_manager: Some(FIELD_MANAGER.into()),
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let created = match api.create(&params, &pod).await {
        Ok(created) => created,
        Err(err) => {
            return request_failed(
                DRY_RUN,
                &format!("creating a Pod in {namespace} with dryRun=All"),
                &err,
                &format!("create on pods in {namespace} (dry run only: nothing is stored)"),
            );
        }
    };
    let status = created
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(STATUS));
    match status {
        Some(status) => pass(
            DRY_RUN,
            format!("a Pod created in {namespace} (dryRun=All) came back with {STATUS}: {status}"),
        ),
        None => fail(
            DRY_RUN,
            format!(
                "a Pod created in {namespace} (dryRun=All) came back without {STATUS}: the API server did not call the webhook, or ignored a failed call"
            ),
            format!(
                "is {namespace} labelled {INJECT}=enabled (kubectl get namespace {namespace} --show-labels)? If so, look for \"failed calling webhook\" in the API server's log and at kubectl -n {} logs -l app.kubernetes.io/name=drain-webhook",
                configured.namespace
            ),
        ),
    }
}
