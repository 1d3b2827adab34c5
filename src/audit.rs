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
use crate::plan::{Action, HELPER_PATH, HookKind, Outcome, Plan, Role, Status, graceful_signal};
use crate::plan::{RecordedContainer, proxy_family};

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
}

impl Coverage {
    fn label(&self) -> &'static str {
        match self {
            Coverage::Protected => "protected",
            Coverage::OptedInUnprotected => "opted-in-unprotected",
            Coverage::NotOptedIn => "not-opted-in",
            Coverage::OptedOut => "opted-out",
            Coverage::Skipped => "skipped",
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
}

/// How the input is judged where it cannot show it.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditOptions {
    /// Offline the namespace's `drain.io/inject=enabled` label is not in the input: this says
    /// the namespaces are opted in.
    pub namespace_opted_in: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    Text,
    Json,
    Yaml,
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
        FailOn::Unprotected => r.coverage != Coverage::Protected || !r.drift.is_empty(),
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
    audit_objects(&objects, &|_| (*ctx, options.namespace_opted_in))
}

/// The context and opt-in of the namespace an object lives in.
type NamespaceContext<'a> = dyn Fn(&str) -> (PodContext<'a>, bool) + 'a;

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
        let (ctx, opted_in) = context(&object.namespace);
        let options = AuditOptions {
            namespace_opted_in: opted_in,
        };
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
    let (coverage, reason) = if inject.is_some_and(is_opt_out) {
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
    let would_change = (plan.outcome == Outcome::Mutate).then(|| Change {
        grace_before: plan.grace_before,
        grace_after: plan.grace_after,
        containers: plan
            .planned()
            .filter_map(|c| {
                Some(ContainerChange {
                    container: c.name.clone(),
                    hook: c.hook?,
                    delay_seconds: c.pre_stop_seconds.unwrap_or(0),
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
    })
}

/// The pod's stored grace and preStop hooks against what `drain.io/status` recorded.
fn drift_of(name: &str, pod: &Value, status: &Status, drift: &mut Vec<String>) {
    let grace = pod
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    if grace != Some(status.grace) {
        drift.push(format!(
            "{name}: terminationGracePeriodSeconds is {} but drain-webhook set {}s; something mutated the pod after it (another webhook or policy)",
            grace.map(|g| format!("{g}s")).unwrap_or_else(|| "unset".into()),
            status.grace
        ));
    }
    let containers = containers(pod.get("spec").unwrap_or(&Value::Null));
    for (container, recorded) in &status.containers {
        let recorded = RecordedContainer::decode(recorded);
        let Some(c) = containers
            .iter()
            .find(|c| str_at(c, "/name") == container.as_str())
        else {
            drift.push(format!(
                "{name}: container {container} recorded in drain.io/status is gone"
            ));
            continue;
        };
        let pre_stop = c.pointer("/lifecycle/preStop");
        let matches = match (recorded.hook, pre_stop) {
            (Some(HookKind::Sleep), Some(p)) => {
                p.pointer("/sleep/seconds").and_then(Value::as_u64)
                    == recorded.pre_stop_seconds.map(u64::from)
            }
            (Some(HookKind::Helper), Some(p)) => {
                p.pointer("/exec/command/0").and_then(Value::as_str) == Some(HELPER_PATH)
            }
            (None, _) => true,
            (_, None) => false,
        };
        if !matches {
            drift.push(format!(
                "{name}: the preStop hook of {container} is not the {} hook drain-webhook recorded",
                recorded.hook.map(|h| h.to_string()).unwrap_or_default()
            ));
        }
    }
}

fn containers(spec: &Value) -> Vec<&Value> {
    ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect()
}

/// Seconds a user's own preStop waits: a native sleep, or an exec of `sleep N`.
fn user_pre_stop_wait(container: &Value) -> Option<u64> {
    let pre_stop = container.pointer("/lifecycle/preStop")?;
    if let Some(seconds) = pre_stop.pointer("/sleep/seconds").and_then(Value::as_u64) {
        return Some(seconds);
    }
    let command: Vec<&str> = pre_stop
        .pointer("/exec/command")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // `["sleep", "20"]` or `["/bin/sh", "-c", "sleep 20"]`.
    let words: Vec<&str> = command.iter().flat_map(|w| w.split_whitespace()).collect();
    let at = words
        .iter()
        .position(|w| *w == "sleep" || w.ends_with("/sleep"))?;
    words.get(at + 1)?.trim_end_matches(';').parse().ok()
}

fn risks_of(spec: &Value, plan: &Plan, ctx: &PodContext<'_>, risks: &mut Vec<Finding>) {
    let grace = spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    if grace == Some(0) {
        risks.push(Finding {
            kind: "grace-zero",
            message: "terminationGracePeriodSeconds is 0: every container is killed at once and in-flight requests fail".into(),
            fix: "remove terminationGracePeriodSeconds (or set it to at least 30) so drain-webhook can plan a drain".into(),
        });
    }
    // Against the grace the pods run with today: where inject would raise it, `would_change`
    // shows the fix.
    let effective = grace.unwrap_or(30);
    let all = containers(spec);
    for c in &all {
        let name = str_at(c, "/name");
        if let Some(wait) = user_pre_stop_wait(c)
            && grace != Some(0)
            && i64::try_from(wait).unwrap_or(i64::MAX) >= effective
        {
            risks.push(Finding {
                kind: "prestop-cut",
                message: format!(
                    "container {name}'s preStop waits {wait}s but the grace period is {effective}s: the kubelet kills it before the hook ends"
                ),
                fix: format!(
                    "set terminationGracePeriodSeconds above {wait}s plus the time {name} needs to stop"
                ),
            });
        }
        let planned = plan.containers.iter().find(|p| p.name == name);
        let needed =
            planned.and_then(|p| Some(p.pre_stop_seconds.unwrap_or(0) + p.budget_after_sigterm?));
        for probe in ["livenessProbe", "startupProbe"] {
            let own = c
                .pointer(&format!("/{probe}/terminationGracePeriodSeconds"))
                .and_then(Value::as_i64);
            if let (Some(own), Some(needed)) = (own, needed)
                && own < i64::from(needed)
            {
                risks.push(Finding {
                    kind: "probe-grace",
                    message: format!(
                        "container {name}'s {probe} sets terminationGracePeriodSeconds {own}s, shorter than its preStop delay plus budget ({needed}s): a probe kill skips the drain"
                    ),
                    fix: format!(
                        "raise {probe}.terminationGracePeriodSeconds to at least {needed} or remove it"
                    ),
                });
            }
        }
    }
    for p in &plan.containers {
        let image = all
            .iter()
            .find(|c| str_at(c, "/name") == p.name)
            .map(|c| str_at(c, "/image"))
            .unwrap_or("");
        if p.role == Role::NativeSidecar
            && proxy_family(image, &ctx.settings.proxy_images).is_some()
        {
            risks.push(Finding {
                kind: "native-sidecar-proxy",
                message: format!(
                    "front proxy {} is a native sidecar: the kubelet stops it after the app, so it keeps accepting requests the app can no longer serve",
                    p.name
                ),
                fix: format!(
                    "move {} to containers (a regular container) so drain-webhook stops it first",
                    p.name
                ),
            });
        }
    }
    if spec.get("shareProcessNamespace").and_then(Value::as_bool) == Some(true) {
        for p in &plan.containers {
            let image = all
                .iter()
                .find(|c| str_at(c, "/name") == p.name)
                .map(|c| str_at(c, "/image"))
                .unwrap_or("");
            if p.role == Role::Proxy && graceful_signal(image).is_some() {
                risks.push(Finding {
                    kind: "shared-pid-proxy",
                    message: format!(
                        "shareProcessNamespace is on, so drain-helper cannot find proxy {}'s PID 1: it gets its image's stop signal (a fast stop) instead of {}",
                        p.name,
                        graceful_signal(image).unwrap_or("its graceful signal")
                    ),
                    fix: "turn shareProcessNamespace off so the proxy gets its graceful signal".into(),
                });
            }
        }
    }
}

/// A LoadBalancer Service in the same namespace selecting the workload's pods, whose known
/// lag exceeds the planned delay.
fn lb_risk(
    object: &Object,
    template: &Value,
    services: &[&Object],
    plan: &Plan,
    risks: &mut Vec<Finding>,
) {
    let labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    for service in services {
        if service.namespace != object.namespace
            || str_at(&service.doc, "/spec/type") != "LoadBalancer"
        {
            continue;
        }
        let Some(selector) = service
            .doc
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let selected = selector
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        if !selected {
            continue;
        }
        let annotations = service.doc.pointer("/metadata/annotations");
        let (which, lag) = LB_LAG
            .iter()
            .find(|(key, _, _)| annotations.and_then(|a| a.get(*key)).is_some())
            .map(|(_, which, lag)| (*which, *lag))
            .unwrap_or(("a cloud load balancer", LB_LAG_DEFAULT));
        let delay = if plan.outcome == Outcome::Skipped {
            0
        } else {
            plan.containers
                .iter()
                .filter(|c| matches!(c.action, Action::Planned | Action::AlreadyPlanned))
                .filter_map(|c| c.pre_stop_seconds)
                .max()
                .unwrap_or(0)
        };
        if lag > delay {
            risks.push(Finding {
                kind: "lb-lag",
                message: format!(
                    "Service {} (type LoadBalancer, {which}) may send new connections for about {lag}s after a pod is removed, but the pod stops taking them after {delay}s",
                    service.name
                ),
                fix: format!(
                    "set drain.io/delay to at least {lag}s on the workload or its namespace"
                ),
            });
        }
    }
}

/// Renders the rows: a table (coloured when `colour`), JSON or YAML.
pub fn render(rows: &[Row], format: AuditFormat, colour: bool) -> Result<String, OfflineError> {
    let output = |e: String| OfflineError::Output(e);
    match format {
        AuditFormat::Json => {
            let mut text = serde_json::to_string_pretty(rows).map_err(|e| output(e.to_string()))?;
            text.push('\n');
            Ok(text)
        }
        AuditFormat::Yaml => serde_saphyr::to_string(&rows).map_err(|e| output(e.to_string())),
        AuditFormat::Text => Ok(table(rows, colour)),
    }
}

fn table(rows: &[Row], colour: bool) -> String {
    if rows.is_empty() {
        return "no workload in the input\n".into();
    }
    let width = rows
        .iter()
        .map(|r| r.workload.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:width$}  {:20}  {:5}  {:5}  WOULD CHANGE",
        "WORKLOAD", "COVERAGE", "DRIFT", "RISKS"
    );
    for r in rows {
        let label = r.coverage.label();
        let painted = if colour {
            let code = match r.coverage {
                Coverage::Protected => "32",
                Coverage::OptedOut | Coverage::Skipped => "33",
                _ => "31",
            };
            format!("\x1b[{code}m{label:20}\x1b[0m")
        } else {
            format!("{label:20}")
        };
        let change = match &r.would_change {
            None => "nothing".to_owned(),
            Some(c) => {
                let hooks: Vec<String> = c
                    .containers
                    .iter()
                    .map(|c| format!("{} {}:{}s", c.container, c.hook, c.delay_seconds))
                    .collect();
                format!(
                    "grace {} -> {}s; {}",
                    c.grace_before
                        .map(|g| format!("{g}s"))
                        .unwrap_or_else(|| "unset".into()),
                    c.grace_after,
                    hooks.join(", ")
                )
            }
        };
        let _ = writeln!(
            out,
            "{:width$}  {painted}  {:5}  {:5}  {change}",
            r.workload,
            r.drift.len(),
            r.risks.len()
        );
    }
    for r in rows {
        if r.reason.is_none() && r.drift.is_empty() && r.risks.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}", r.workload);
        if let Some(reason) = &r.reason {
            let _ = writeln!(out, "  {}: {reason}", r.coverage.label());
        }
        for d in &r.drift {
            let _ = writeln!(out, "  drift: {d}");
        }
        for f in &r.risks {
            let _ = writeln!(out, "  risk {}: {}\n    fix: {}", f.kind, f.message, f.fix);
        }
    }
    out
}

/// What `audit -n NS` / `-A` read from the cluster.
#[derive(Debug, Default)]
pub struct Cluster {
    /// Workloads, Pods and Services, each with its `kind` set.
    pub objects: Vec<Value>,
    /// Namespace -> (its `drain.io/*` annotations, labelled `drain.io/inject=enabled`).
    pub namespaces: BTreeMap<String, (BTreeMap<String, String>, bool)>,
    /// One clear line per list the API refused (403), the rest still audited.
    pub denied: Vec<String>,
}

/// The kinds `audit` lists in each namespace: (group, version, kind).
const LISTED: [(&str, &str, &str); 8] = [
    ("apps", "v1", "Deployment"),
    ("apps", "v1", "StatefulSet"),
    ("apps", "v1", "DaemonSet"),
    ("apps", "v1", "ReplicaSet"),
    ("batch", "v1", "Job"),
    ("batch", "v1", "CronJob"),
    ("", "v1", "Pod"),
    ("", "v1", "Service"),
];

/// Objects per list request; continue tokens fetch the rest.
pub const PAGE_SIZE: u32 = 500;

fn forbidden(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 403)
}

/// Every page of one list, following continue tokens (one request per page, never per object).
async fn list_all(
    api: &kube::Api<kube::core::DynamicObject>,
) -> Result<Vec<kube::core::DynamicObject>, kube::Error> {
    let mut items = Vec::new();
    let mut params = kube::api::ListParams::default().limit(PAGE_SIZE);
    loop {
        let page = api.list(&params).await?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
}

/// Reads `namespace` (or every namespace) from the cluster. A list the API refuses (403) is
/// recorded in `denied` and skipped; any other error stops the audit.
pub async fn read_cluster(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Cluster, kube::Error> {
    use kube::api::{Api, ApiResource, GroupVersionKind};
    let started = std::time::Instant::now();
    let mut cluster = Cluster::default();
    let ns_resource = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"));
    let namespaces: Vec<kube::core::DynamicObject> = match namespace {
        Some(name) => {
            let api: Api<kube::core::DynamicObject> = Api::all_with(client.clone(), &ns_resource);
            match api.get(name).await {
                Ok(ns) => vec![ns],
                Err(err) if forbidden(&err) => {
                    cluster.denied.push(format!(
                        "cannot read namespace {name} (403): its drain.io annotations and opt-in label are unknown; grant get on namespaces (docs/audit.md, RBAC)"
                    ));
                    let mut ns = kube::core::DynamicObject::new(name, &ns_resource);
                    ns.metadata.name = Some(name.to_owned());
                    vec![ns]
                }
                Err(err) => return Err(err),
            }
        }
        None => list_all(&Api::all_with(client.clone(), &ns_resource)).await?,
    };
    for ns in &namespaces {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let annotations: BTreeMap<String, String> = ns
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k.starts_with("drain.io/"))
            .collect();
        let opted_in = ns
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(INJECT))
            .is_some_and(|v| v == "enabled");
        cluster
            .namespaces
            .insert(name.clone(), (annotations, opted_in));
        for (group, version, kind) in LISTED {
            let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
            let api = Api::namespaced_with(client.clone(), &name, &resource);
            match list_all(&api).await {
                Ok(items) => {
                    for item in items {
                        let mut value = serde_json::to_value(&item).unwrap_or(Value::Null);
                        value["kind"] = Value::from(kind);
                        cluster.objects.push(value);
                    }
                }
                Err(err) if forbidden(&err) => cluster.denied.push(format!(
                    "cannot list {} in namespace {name} (403): skipped; grant get/list with the chart's audit ClusterRole (docs/audit.md)",
                    resource.plural
                )),
                Err(err) => return Err(err),
            }
        }
        if started.elapsed() > std::time::Duration::from_secs(2) {
            eprintln!(
                "audit: read {} of {} namespaces, {} objects so far",
                cluster.namespaces.len(),
                namespaces.len(),
                cluster.objects.len()
            );
        }
    }
    Ok(cluster)
}

/// Audits what [`read_cluster`] read: each namespace planned with its own annotations and
/// opt-in label.
pub fn audit_cluster(
    cluster: Cluster,
    settings: &crate::settings::Settings,
    kube_version: Option<crate::settings::KubeVersion>,
) -> Result<Vec<Row>, OfflineError> {
    let mut objects = Vec::new();
    for doc in cluster.objects {
        flatten(doc, &mut objects);
    }
    let namespaces = &cluster.namespaces;
    audit_objects(&objects, &|namespace| {
        let known = namespaces.get(namespace);
        (
            PodContext {
                settings,
                namespace_annotations: known.map(|(a, _)| a),
                kube_version,
            },
            known.is_some_and(|(_, opted_in)| *opted_in),
        )
    })
}

/// `explain KIND/NAME`: the kind a user typed (`deploy`, `Deployment`, `sts`, ...).
pub fn kind_alias(kind: &str) -> Option<&'static str> {
    Some(match kind.to_ascii_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" => "Deployment",
        "statefulset" | "statefulsets" | "sts" => "StatefulSet",
        "daemonset" | "daemonsets" | "ds" => "DaemonSet",
        "replicaset" | "replicasets" | "rs" => "ReplicaSet",
        "job" | "jobs" => "Job",
        "cronjob" | "cronjobs" | "cj" => "CronJob",
        "pod" | "pods" | "po" => "Pod",
        _ => return None,
    })
}

/// `explain` on what [`read_cluster`] read: the timeline (or JSON) of `explain -f` for each
/// workload not owned by another one (or only `target`, kind and name), each planned with its
/// namespace's annotations.
pub fn explain_cluster(
    cluster: &Cluster,
    settings: &crate::settings::Settings,
    kube_version: Option<crate::settings::KubeVersion>,
    target: Option<(&str, &str)>,
    format: crate::offline::ExplainFormat,
) -> Result<String, OfflineError> {
    let mut by_namespace: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for object in &cluster.objects {
        let kind = str_at(object, "/kind");
        let name = str_at(object, "/metadata/name");
        let owned = object
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| refs.iter().any(|r| WORKLOADS.contains(&str_at(r, "/kind"))));
        let wanted = match target {
            Some((k, n)) => k == kind && n == name,
            None => WORKLOADS.contains(&kind) && !owned,
        };
        if wanted {
            by_namespace
                .entry(str_at(object, "/metadata/namespace"))
                .or_default()
                .push(object);
        }
    }
    if by_namespace.is_empty() {
        return Err(OfflineError::Parse(match target {
            Some((kind, name)) => {
                format!("{kind} {name} not found (check the name and -n NAMESPACE)")
            }
            None => "no workload found".into(),
        }));
    }
    let mut text = String::new();
    let mut json = Vec::new();
    for (namespace, objects) in by_namespace {
        let input =
            serde_json::to_string(&objects).map_err(|e| OfflineError::Output(e.to_string()))?;
        let ctx = PodContext {
            settings,
            namespace_annotations: cluster.namespaces.get(namespace).map(|(a, _)| a),
            kube_version,
        };
        let out = crate::offline::explain(&input, &ctx, format)?;
        match format {
            crate::offline::ExplainFormat::Text => text.push_str(&out),
            crate::offline::ExplainFormat::Json => {
                if let Ok(Value::Array(items)) = serde_json::from_str(&out) {
                    json.extend(items);
                }
            }
        }
    }
    if format == crate::offline::ExplainFormat::Json {
        text =
            serde_json::to_string_pretty(&json).map_err(|e| OfflineError::Output(e.to_string()))?;
        text.push('\n');
    }
    Ok(text)
}
