//! The dry-run steps: Pods created with `dryRun=All` (nothing is stored) in an opted-in
//! namespace. `dry-run`: a lone app comes back with `drain.io/status`. `dry-run-helper`: a Pod
//! with a front proxy, which needs drain-helper, is admitted with what drain-webhook adds (a
//! policy engine, a quota, a LimitRange or an image volume the API server refuses shows here,
//! with the rejecting component's message). A Pod that comes back unplanned is explained: a
//! namespace whose settings plan nothing (D = 0) is said as such.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};

use super::pods::{Probe, helper_delivery, probe_pod};
use super::rejection::rejection;
use super::result as step_result;
use super::served::Served;
use super::{Configured, FIELD_MANAGER, Outcome, Step, StepResult, fail, pass, request_failed};
use crate::annotations::{INJECT, STATUS};
use crate::mutate::{PodContext, mutate_pod};
use crate::plan::Outcome as PlanOutcome;

pub const DRY_RUN: Step = Step {
    name: "dry-run",
    description: "a Pod created with dryRun=All in an opted-in namespace gets drain.io/status",
    fatal: false,
};
pub const DRY_RUN_HELPER: Step = Step {
    name: "dry-run-helper",
    description: "a Pod with a front proxy (nginx + app), which needs drain-helper, is admitted with it (policy engines, quotas, LimitRanges, image volumes)",
    fatal: false,
};

/// The namespace of the dry runs: `-n`, else the first labelled `drain.io/inject=enabled`
/// other than the webhook's own; `Err`: the failure, worded for `step`.
pub(super) async fn namespace(
    client: &Client,
    namespace: Option<&str>,
    configured: &Configured,
    step: Step,
) -> Result<String, StepResult> {
    if let Some(namespace) = namespace {
        return Ok(namespace.to_owned());
    }
    let api: Api<Namespace> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().labels(&format!("{INJECT}=enabled")))
        .await
        .map_err(|err| {
            request_failed(
                step,
                "finding an opted-in namespace",
                &err,
                "list on namespaces (or pass -n NS)",
            )
        })?;
    let own = configured.namespace.as_str();
    list.items
        .into_iter()
        .filter_map(|ns| ns.metadata.name)
        .find(|name| name != own && name != "kube-system")
        .ok_or_else(|| {
            fail(
                step,
                format!("no namespace is labelled {INJECT}=enabled, so no pod is ever mutated"),
                format!("kubectl label namespace NS {INJECT}=enabled (or pass -n NS)"),
            )
        })
}

/// Creates the `probe` Pod in `namespace` with `dryRun=All`.
async fn create(
    client: &Client,
    namespace: &str,
    probe: Probe,
    opted_out: bool,
) -> Result<Pod, kube::Error> {
    let pod: Pod =
        serde_json::from_value(probe_pod(probe, opted_out)).map_err(kube::Error::SerdeError)?;
    let params = PostParams {
        dry_run: true,
        field_manager: Some(FIELD_MANAGER.into()),
    };
    Api::namespaced(client.clone(), namespace)
        .create(&params, &pod)
        .await
}

/// One dry run and what it shows.
pub(super) async fn dry_run(
    client: &Client,
    step: Step,
    probe: Probe,
    namespace: &str,
    configured: &Configured,
    served: &Served,
) -> StepResult {
    let what = match probe {
        Probe::App => "a Pod",
        Probe::Helper => "a Pod with a front proxy",
    };
    let created = match create(client, namespace, probe, false).await {
        Ok(created) => created,
        Err(err) => return refused(client, step, probe, namespace, &err).await,
    };
    let status = created
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(STATUS));
    match (status, probe) {
        (Some(status), Probe::Helper) => match helper_delivery(status) {
            Some(delivery) => pass(
                step,
                format!(
                    "{what} created in {namespace} (dryRun=All) was admitted with drain-helper from {delivery}; {STATUS}: {status}"
                ),
            ),
            None => step_result(
                step,
                Outcome::Warn,
                format!(
                    "{what} created in {namespace} (dryRun=All) came back planned without drain-helper, so the helper's admission was not tried; {STATUS}: {status}"
                ),
                Some("the server's settings (hook mode) or the namespace's annotations plan no helper for nginx".into()),
            ),
        },
        (Some(status), Probe::App) => pass(
            step,
            format!("{what} created in {namespace} (dryRun=All) came back with {STATUS}: {status}"),
        ),
        (None, _) => unplanned(client, step, probe, namespace, configured, served).await,
    }
}

/// The create failed: a rejection of the Pod names who refused it and, for the helper Pod,
/// whether the same Pod without drain-webhook's changes is admitted (then the helper is what
/// is refused); anything else is worded as before (permission, API server).
async fn refused(
    client: &Client,
    step: Step,
    probe: Probe,
    namespace: &str,
    err: &kube::Error,
) -> StepResult {
    let Some(rejected) = rejection(err) else {
        return request_failed(
            step,
            &format!("creating a Pod in {namespace} with dryRun=All"),
            err,
            &format!("create on pods in {namespace} (dry run only: nothing is stored)"),
        );
    };
    let said = format!(
        "{} ({}): {}",
        rejected.component, rejected.code, rejected.message
    );
    if probe == Probe::App {
        return fail(
            step,
            format!("the API server rejected the check's Pod in {namespace}: {said}"),
            format!(
                "{} refuses the check's own Pod (one app container, Pod Security restricted, probes, requests and limits); see its message, or pass -n NS of a namespace where it is admitted",
                rejected.component
            ),
        );
    }
    match create(client, namespace, probe, true).await {
        Ok(_) => fail(
            step,
            format!(
                "the API server rejected a Pod with a front proxy in {namespace} once drain-webhook had added drain-helper: {said}"
            ),
            format!(
                "the same Pod with {INJECT}: \"false\" is admitted, so every pod that needs the helper in {namespace} is rejected the same way: let {} admit what drain-webhook adds (the container drain-helper with its volume, or the image volume; docs/install.md), or choose a --helper-delivery it admits (init-container: policies on spec.containers do not see it)",
                rejected.component
            ),
        ),
        Err(_) => fail(
            step,
            format!(
                "the API server rejected the check's Pod with a front proxy in {namespace}, with or without drain-webhook's changes: {said}"
            ),
            format!(
                "{} refuses the check's own Pod (nginx + app, Pod Security restricted, probes, requests and limits), so the helper could not be tried; pass -n NS of a namespace where it is admitted",
                rejected.component
            ),
        ),
    }
}

/// The Pod came back without `drain.io/status`. Where the server's settings and the
/// namespace's annotations plan nothing for it (D = 0), that is what happened; a namespace
/// without the label is not sent to the webhook at all; else the webhook was not called, or
/// its failure was ignored.
async fn unplanned(
    client: &Client,
    step: Step,
    probe: Probe,
    namespace: &str,
    configured: &Configured,
    served: &Served,
) -> StepResult {
    let not_called = format!(
        "a Pod created in {namespace} (dryRun=All) came back without {STATUS}: the API server did not call the webhook, or ignored a failed call"
    );
    let not_called_hint = format!(
        "is {namespace} labelled {INJECT}=enabled (kubectl get namespace {namespace} --show-labels)? If so, look for \"failed calling webhook\" in the API server's log and at kubectl -n {} logs -l app.kubernetes.io/name=drain-webhook",
        configured.namespace
    );
    // The namespace's labels and annotations (a list filtered by name: the permission check
    // already has; without it, plan with the server's settings alone).
    let api: Api<Namespace> = Api::all(client.clone());
    let found = api
        .list(&ListParams::default().fields(&format!("metadata.name={namespace}")))
        .await
        .ok()
        .and_then(|list| list.items.into_iter().next());
    if let Some(ns) = &found {
        let labelled = ns
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(INJECT))
            .is_some_and(|v| v == "enabled");
        if !labelled {
            return fail(
                step,
                format!(
                    "namespace {namespace} is not labelled {INJECT}=enabled: the API server does not send its pods to the webhook"
                ),
                format!("kubectl label namespace {namespace} {INJECT}=enabled"),
            );
        }
    }
    let annotations: BTreeMap<String, String> = found
        .and_then(|ns| ns.metadata.annotations)
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| key.starts_with("drain.io/"))
        .collect();
    let Ok(served) = served else {
        return fail(step, not_called, not_called_hint);
    };
    let settings = served.planning_settings();
    let ctx = PodContext {
        settings: &settings,
        namespace_annotations: Some(&annotations),
        kube_version: served.kube_version(),
        image_volume_nodes: None,
    };
    let plan = match mutate_pod(&probe_pod(probe, false), &ctx) {
        Ok(mutation) if mutation.plan.outcome == PlanOutcome::Skipped => mutation.plan,
        _ => return fail(step, not_called, not_called_hint),
    };
    let reason = plan.reason.as_deref().unwrap_or("nothing to plan");
    let source = match annotations.get("drain.io/delay") {
        Some(value) => format!("namespace {namespace} has drain.io/delay: {value:?}"),
        None => "the server's --delay".to_owned(),
    };
    step_result(
        step,
        Outcome::Warn,
        format!(
            "a Pod created in {namespace} (dryRun=All) came back without {STATUS}, as the settings there plan it: {reason} (D = {}s: {source})",
            plan.delay
        ),
        Some(format!(
            "pods in {namespace} like this one get no drain plan; if that is not meant, remove or raise drain.io/delay (kubectl annotate namespace {namespace} drain.io/delay-)"
        )),
    )
}
