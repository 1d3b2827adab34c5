//! The `dry-run` step: a Pod created with `dryRun=All` in an opted-in namespace comes back
//! with `drain.io/status` (nothing is stored).

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};

use super::{Configured, FIELD_MANAGER, Step, StepResult, fail, pass, request_failed};
use crate::annotations::{INJECT, STATUS};

pub const DRY_RUN: Step = Step {
    name: "dry-run",
    description: "a Pod created with dryRun=All in an opted-in namespace gets drain.io/status",
    fatal: false,
};

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

pub(super) async fn dry_run(
    client: &Client,
    namespace: Option<&str>,
    configured: &Configured,
) -> StepResult {
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
