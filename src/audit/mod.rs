//! `drain-webhook audit -f`: one row per workload saying whether drain-webhook protects it,
//! whether something changed its pods after the webhook (drift), what else would lose requests
//! on a rollout (risks), and what `inject` would change. Plans come from the real planner
//! ([`mutate_pod`]), so the "would change" column is exactly what the webhook would do.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::annotations::{INJECT, STATUS, is_opt_out};
use crate::mutate::{MutateError, PodContext, mutate_pod};
use crate::offline::{OfflineError, parse_documents, template_pointer};
use crate::plan::{ContainerPlan, RecordedContainer, proxy_family};
use crate::plan::{HELPER_PATH, HookKind, Outcome, Plan, Role, Status, graceful_signal};

mod findings;
mod live;
pub mod observed;
pub mod observed_read;
mod render;

use findings::*;
pub use live::{
    Cluster, PAGE_SIZE, audit_cluster, explain_cluster, kind_alias, read_cluster,
    read_webhook_namespace,
};
pub use observed::{ObservedSummary, PlannedHold};
pub use observed_read::{Unavailable, WebhookService, read_observed};
pub use render::render;

/// Coverage of one workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Coverage {
    /// Its pods (or template) carry `drain.io/status`.
    Protected,
    /// Opted in, but nothing carries `drain.io/status` yet: a rollout restart protects it.
    OptedInUnprotected,
    /// Neither the namespace (`--namespace-opted-in`) nor the object opts in.
    NotOptedIn,
    OptedOut,
    /// The planner leaves it alone; `reason` says why.
    Skipped,
    /// In the webhook's own namespace, which is never mutated (its pods must start without
    /// the webhook), whatever its labels say; never to be opted in.
    WebhookNamespace,
}

impl Coverage {
    fn label(&self) -> &'static str {
        match self {
            Coverage::Protected => "protected",
            Coverage::OptedInUnprotected => "opted-in-unprotected",
            Coverage::NotOptedIn => "not-opted-in",
            Coverage::OptedOut => "opted-out",
            Coverage::Skipped => "skipped",
            Coverage::WebhookNamespace => "webhook-namespace",
        }
    }
}

/// A risk: what goes wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: &'static str,
    pub message: String,
    pub fix: String,
}

/// What `inject` would change for one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerChange {
    pub container: String,
    pub hook: HookKind,
    pub delay_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub grace_before: Option<i64>,
    pub grace_after: i64,
    pub containers: Vec<ContainerChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// `Deployment shop/web`.
    pub workload: String,
    pub coverage: Coverage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Names of the input's Pods grouped under this workload.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<String>,
    pub drift: Vec<String>,
    pub risks: Vec<Finding>,
    /// `None`: `inject` would change nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_change: Option<Change>,
    /// What the drain observer saw (live audits, when the leader answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedSummary>,
    /// The hold the planner gives it now, which the observed lag is judged against.
    #[serde(skip)]
    pub planned_hold: Option<PlannedHold>,
}

/// How the input is judged where it cannot show it.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditOptions {
    /// Offline the namespace's `drain.io/inject=enabled` label is not in the input: this says
    /// the namespaces are opted in.
    pub namespace_opted_in: bool,
    /// The object is in the webhook's own namespace.
    pub webhook_namespace: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Any row with a risk.
    Risk,
    /// Any row not protected, or protected with drift.
    Unprotected,
}

/// Whether any row trips `--fail-on`.
pub fn fails(rows: &[Row], fail_on: FailOn) -> bool {
    rows.iter().any(|r| match fail_on {
        FailOn::Risk => !r.risks.is_empty(),
        // The webhook's own namespace is never protected, by design: not a finding.
        FailOn::Unprotected => {
            !matches!(r.coverage, Coverage::Protected | Coverage::WebhookNamespace)
                || !r.drift.is_empty()
        }
    })
}

/// Deregistration lag of cloud load balancers: how long one may still send new connections
/// to a pod after its endpoint goes away. Sources (or "unsourced estimate") in docs/audit.md.
pub const LB_LAG: &[(&str, &str, u32)] = &[
    (
        "service.beta.kubernetes.io/aws-load-balancer-type",
        "AWS NLB",
        30,
    ),
    (
        "service.beta.kubernetes.io/azure-load-balancer-internal",
        "Azure LB",
        15,
    ),
    ("cloud.google.com/l4-rbs", "GCP L4", 15),
];
/// A LoadBalancer Service with none of the annotations above.
pub const LB_LAG_DEFAULT: u32 = 15;

struct Object {
    kind: String,
    namespace: String,
    name: String,
    uid: Option<String>,
    doc: Value,
}

impl Object {
    fn id(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// Audits every workload in `input` (multi-document YAML or JSON, `List`s included).
pub fn audit(
    input: &str,
    ctx: &PodContext<'_>,
    options: AuditOptions,
) -> Result<Vec<Row>, OfflineError> {
    let mut objects = Vec::new();
    for doc in parse_documents(input)? {
        flatten(doc, &mut objects);
    }
    audit_objects(&objects, &|_| (*ctx, options))
}

/// The context of the namespace an object lives in, and how it is judged there.
type NamespaceContext<'a> = dyn Fn(&str) -> (PodContext<'a>, AuditOptions) + 'a;

fn flatten(doc: Value, out: &mut Vec<Object>) {
    let kind = str_at(&doc, "/kind").to_owned();
    if kind.ends_with("List") {
        if let Some(Value::Array(items)) = doc.get("items").cloned() {
            for item in items {
                flatten(item, out);
            }
        }
        return;
    }
    out.push(Object {
        namespace: str_at(&doc, "/metadata/namespace").to_owned(),
        name: str_at(&doc, "/metadata/name").to_owned(),
        uid: doc
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        kind,
        doc,
    });
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

const WORKLOADS: [&str; 7] = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Pod",
];

/// The index of the workload in `objects` that owns `object` (following owner references
/// through ReplicaSets and Jobs), if that owner is in the input.
fn owner_of(objects: &[Object], object: &Object) -> Option<usize> {
    let refs = object
        .doc
        .pointer("/metadata/ownerReferences")?
        .as_array()?;
    refs.iter().find_map(|r| {
        let kind = r.get("kind")?.as_str()?;
        let name = r.get("name")?.as_str()?;
        let uid = r.get("uid").and_then(Value::as_str);
        objects.iter().position(|o| {
            o.kind == kind
                && o.name == name
                && o.namespace == object.namespace
                && (uid.is_none() || o.uid.is_none() || o.uid.as_deref() == uid)
        })
    })
}

/// The topmost owner in the input: a Pod of a ReplicaSet of a Deployment lands on the
/// Deployment.
fn root_owner(objects: &[Object], index: usize) -> usize {
    let mut current = index;
    for _ in 0..8 {
        match owner_of(objects, &objects[current]) {
            Some(owner) if owner != current => current = owner,
            _ => break,
        }
    }
    current
}

fn audit_objects<'a>(
    objects: &[Object],
    context: &NamespaceContext<'a>,
) -> Result<Vec<Row>, OfflineError> {
    let mut grouped: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut rows = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        if !WORKLOADS.contains(&o.kind.as_str()) {
            continue;
        }
        let root = root_owner(objects, i);
        if root != i {
            if o.kind == "Pod" {
                grouped.entry(root).or_default().push(i);
            }
            continue;
        }
        grouped.entry(i).or_default();
    }
    let services: Vec<&Object> = objects.iter().filter(|o| o.kind == "Service").collect();
    for (workload, pods) in grouped {
        let object = &objects[workload];
        let pods: Vec<&Object> = pods.iter().map(|&p| &objects[p]).collect();
        let (ctx, options) = context(&object.namespace);
        rows.push(audit_one(object, &pods, &services, &ctx, options)?);
    }
    Ok(rows)
}

fn audit_one(
    object: &Object,
    pods: &[&Object],
    services: &[&Object],
    ctx: &PodContext<'_>,
    options: AuditOptions,
) -> Result<Row, OfflineError> {
    let id = object.id();
    let pointer = template_pointer(&object.kind).unwrap_or("");
    let Some(template) = object.doc.pointer(pointer).filter(|t| t.is_object()) else {
        return Err(OfflineError::Object {
            object: id,
            message: format!("has no pod template at {pointer}"),
        });
    };
    let plan = match mutate_pod(template, ctx) {
        Ok(mutation) => mutation.plan,
        Err(err) => {
            // A pod the webhook would deny is a finding, not a reason to stop the audit.
            let message = match err {
                MutateError::Denied(denial) => denial.to_string(),
                MutateError::Internal(message) => message,
            };
            return Ok(Row {
                workload: id,
                coverage: Coverage::Skipped,
                reason: Some(format!("the webhook would deny it: {message}")),
                pods: pods.iter().map(|p| p.name.clone()).collect(),
                drift: Vec::new(),
                risks: Vec::new(),
                would_change: None,
                observed: None,
                planned_hold: None,
            });
        }
    };
    // What runs: the grouped pods if the input has them, else the template.
    let subjects: Vec<(&str, &Value)> = if pods.is_empty() {
        vec![(id.as_str(), template)]
    } else {
        pods.iter().map(|p| (p.name.as_str(), &p.doc)).collect()
    };
    let statuses: Vec<Option<Status>> = subjects
        .iter()
        .map(|(_, s)| {
            s.pointer("/metadata/annotations")
                .and_then(|a| a.get(STATUS))
                .and_then(Value::as_str)
                .and_then(Status::parse)
        })
        .collect();
    let inject = template
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(INJECT))
        .and_then(Value::as_str);
    let own_namespace = "the webhook's own namespace: never mutated, whatever its labels say (its pods must start without the webhook); never opt it in";
    let (coverage, reason) = if options.webhook_namespace {
        (Coverage::WebhookNamespace, Some(own_namespace.into()))
    } else if inject.is_some_and(is_opt_out) {
        (Coverage::OptedOut, plan.reason.clone())
    } else if statuses.iter().all(Option::is_some) {
        (Coverage::Protected, None)
    } else if plan.outcome == Outcome::Skipped {
        (Coverage::Skipped, plan.reason.clone())
    } else if options.namespace_opted_in || inject.is_some() {
        (
            Coverage::OptedInUnprotected,
            Some(
                "opted in, but its pods predate the webhook: a rollout restart protects them"
                    .into(),
            ),
        )
    } else {
        (
            Coverage::NotOptedIn,
            Some("label the namespace drain.io/inject=enabled to opt in".into()),
        )
    };
    let mut drift = Vec::new();
    for ((name, subject), status) in subjects.iter().zip(&statuses) {
        if let Some(status) = status {
            drift_of(name, subject, status, &mut drift);
        }
    }
    let spec = template.get("spec").unwrap_or(&Value::Null);
    let mut risks = Vec::new();
    risks_of(spec, &plan, ctx, &mut risks);
    lb_risk(object, template, services, &plan, &mut risks);
    fixed_hold_risk(&subjects, &statuses, &plan, &mut risks);
    let would_change =
        (plan.outcome == Outcome::Mutate && !options.webhook_namespace).then(|| Change {
            grace_before: plan.grace_before,
            grace_after: plan.grace_after,
            containers: plan
                .planned()
                .filter_map(|c| {
                    Some(ContainerChange {
                        container: c.name.clone(),
                        hook: c.hook?,
                        delay_seconds: c.earliest_signal().unwrap_or(0),
                    })
                })
                .collect(),
        });
    Ok(Row {
        workload: id,
        coverage,
        reason,
        pods: pods.iter().map(|p| p.name.clone()).collect(),
        drift,
        risks,
        would_change,
        observed: None,
        planned_hold: Some(PlannedHold::of(&plan)),
    })
}
