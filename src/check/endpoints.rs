//! The `endpoints` step: the webhook's Service has a ready endpoint (EndpointSlices).

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, ListParams};

use super::{Configured, Step, StepResult, fail, pass, request_failed};

pub const ENDPOINTS: Step = Step {
    name: "endpoints",
    description: "the webhook's Service has a ready endpoint",
    fatal: true,
};

pub(super) async fn endpoints(client: &Client, configured: &Configured) -> StepResult {
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
