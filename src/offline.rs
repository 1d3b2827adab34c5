//! `drain-webhook inject` and `explain`: the planning engine on manifests, without a cluster.
//! Pods and the pod templates of workloads are planned; every other document passes through.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde_json::Value;

use crate::mutate::{MutateError, Mutation, PodContext, mutate_pod};
use crate::plan::{Action, ContainerPlan, Plan};

/// Where each workload kind keeps its pod template.
pub(crate) fn template_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some(""),
        "PodTemplate" => Some("/template"),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => Some("/spec/template"),
        "CronJob" => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// One line naming the document and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("cannot read the input: {0}")]
    Parse(String),
    #[error("{object}: {message}")]
    Object { object: String, message: String },
    #[error("cannot write the output: {0}")]
    Output(String),
}

/// The mutated documents and the warnings the planner gave on the way.
#[derive(Debug)]
pub struct Injected {
    pub yaml: String,
    /// `"Deployment web: container ..."`, one per warning.
    pub warnings: Vec<String>,
}

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.yaml)
    }
}

/// Mutates every Pod and pod template in `input` (multi-document YAML, or JSON) and prints
/// the result as YAML; other documents are passed through unchanged.
pub fn inject(input: &str, ctx: &PodContext<'_>) -> Result<Injected, OfflineError> {
    let mut documents = parse_documents(input)?;
    let mut warnings = Vec::new();
    for document in &mut documents {
        for_each_template(document, &mut |object, template| {
            let mutation = plan_template(object, template, ctx)?;
            warnings.extend(
                mutation
                    .plan
                    .warnings
                    .iter()
                    .map(|w| format!("{object}: {w}")),
            );
            json_patch::patch(template, &mutation.patch.to_json_patch().0).map_err(|e| {
                OfflineError::Object {
                    object: object.to_owned(),
                    message: format!("internal error: the patch does not apply: {e}"),
                }
            })
        })?;
    }
    let yaml = serde_saphyr::to_string_multiple(&documents)
        .map_err(|e| OfflineError::Output(e.to_string()))?;
    Ok(Injected { yaml, warnings })
}

/// `-o` of every command that prints a report (explain, audit, check, profiles): a text for
/// people, or the same data as JSON or YAML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Yaml,
}

impl OutputFormat {
    /// `value` as JSON (pretty, with a final newline) or YAML; `None` for `Text`, which each
    /// command renders itself.
    pub fn structured<T: Serialize>(self, value: &T) -> Option<Result<String, String>> {
        match self {
            OutputFormat::Text => None,
            OutputFormat::Json => Some(
                serde_json::to_string_pretty(value)
                    .map(|mut text| {
                        text.push('\n');
                        text
                    })
                    .map_err(|e| e.to_string()),
            ),
            OutputFormat::Yaml => Some(serde_saphyr::to_string(value).map_err(|e| e.to_string())),
        }
    }
}

#[derive(Serialize)]
struct Explained<'a> {
    object: &'a str,
    plan: &'a Plan,
}

/// The shutdown timeline of every Pod and pod template in `input`.
pub fn explain(
    input: &str,
    ctx: &PodContext<'_>,
    format: OutputFormat,
) -> Result<String, OfflineError> {
    let mut documents = parse_documents(input)?;
    let mut plans: Vec<(String, Plan)> = Vec::new();
    for document in &mut documents {
        for_each_template(document, &mut |object, template| {
            let mutation = plan_template(object, template, ctx)?;
            plans.push((object.to_owned(), mutation.plan));
            Ok(())
        })?;
    }
    let explained: Vec<Explained<'_>> = plans
        .iter()
        .map(|(object, plan)| Explained { object, plan })
        .collect();
    match format.structured(&explained) {
        Some(rendered) => rendered.map_err(OfflineError::Output),
        None => {
            let mut out = String::new();
            for (object, plan) in &plans {
                render_timeline(&mut out, object, plan);
            }
            if plans.is_empty() {
                out.push_str("no Pod or pod template in the input\n");
            }
            Ok(out)
        }
    }
}

fn plan_template(
    object: &str,
    template: &Value,
    ctx: &PodContext<'_>,
) -> Result<Mutation, OfflineError> {
    mutate_pod(template, ctx).map_err(|err| OfflineError::Object {
        object: object.to_owned(),
        message: match err {
            MutateError::Denied(denial) => denial.to_string(),
            MutateError::Internal(message) => message,
        },
    })
}

/// Calls `f(object name, pod template)` for each pod or pod template in `document`
/// (recursing into `kind: List`).
fn for_each_template(
    document: &mut Value,
    f: &mut dyn FnMut(&str, &mut Value) -> Result<(), OfflineError>,
) -> Result<(), OfflineError> {
    let kind = document
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if kind == "List" || kind.ends_with("List") {
        if let Some(items) = document.get_mut("items").and_then(Value::as_array_mut) {
            for item in items {
                for_each_template(item, f)?;
            }
        }
        return Ok(());
    }
    let Some(pointer) = template_pointer(&kind) else {
        return Ok(());
    };
    let name = describe(document, &kind);
    let Some(template) = document.pointer_mut(pointer) else {
        return Err(OfflineError::Object {
            object: name,
            message: format!("has no pod template at {pointer}"),
        });
    };
    if !template.is_object() {
        return Err(OfflineError::Object {
            object: name,
            message: format!("{pointer} is not an object"),
        });
    }
    f(&name, template)
}

/// `Deployment shop/web`, `Pod web`.
fn describe(document: &Value, kind: &str) -> String {
    let meta = document.get("metadata");
    let name = meta
        .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)");
    match meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
    {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    }
}

pub(crate) fn parse_documents(input: &str) -> Result<Vec<Value>, OfflineError> {
    let trimmed = input.trim_start();
    let documents: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut documents = Vec::new();
        for item in serde_json::Deserializer::from_str(input).into_iter::<Value>() {
            match item.map_err(|e| OfflineError::Parse(format!("invalid JSON: {e}")))? {
                Value::Array(items) => documents.extend(items),
                other => documents.push(other),
            }
        }
        documents
    } else {
        serde_saphyr::from_multiple::<Value>(input).map_err(|e| {
            OfflineError::Parse(format!("invalid YAML: {}", one_line(&e.to_string())))
        })?
    };
    Ok(documents.into_iter().filter(|d| !d.is_null()).collect())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

const BAR_WIDTH: usize = 48;

/// A bar per container from T0 to SIGKILL: `=` serving through the preStop delay, `|` the
/// SIGTERM (or graceful signal), `-` the shutdown budget, `X` SIGKILL.
fn render_timeline(out: &mut String, object: &str, plan: &Plan) {
    let grace = plan.grace_seconds();
    let before = plan
        .grace_before
        .map(|g| format!("{g}s"))
        .unwrap_or_else(|| "unset (30s)".into());
    let _ = writeln!(out, "{object}");
    let _ = writeln!(
        out,
        "  outcome {}{}; grace {before} -> {}s; D={}s Q={}s M={}s S={}s B={}s; kubernetes {}",
        serde_json::to_value(plan.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        plan.reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        plan.grace_after,
        plan.delay,
        plan.quiet,
        plan.max_delay,
        plan.stagger,
        plan.shutdown_budget,
        plan.kube_version
            .map_or_else(|| "unknown".to_owned(), |v| v.to_string()),
    );
    if let Some(profile) = plan.profile {
        let _ = writeln!(
            out,
            "  profile {}: D at least {}s; {}",
            profile.name, profile.delay_floor, profile.note
        );
    }
    if plan.adds_os_linux {
        let _ = writeln!(
            out,
            "  adds spec.os.name: linux (the API server requires it for lifecycle.stopSignal)"
        );
    }
    if let Some(choice) = &plan.delivery {
        let _ = writeln!(out, "  helper delivery {}: {}", choice.delivery, choice.why);
    }
    let name_width = plan
        .containers
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0)
        .clamp(4, 24);
    let _ = writeln!(
        out,
        "  {:name_width$}  {:20}  {}",
        "",
        "",
        axis(grace),
        name_width = name_width
    );
    for c in &plan.containers {
        let label = format!("{} {}", c.role, describe_action(c));
        let latest = c.latest_signal().unwrap_or(0);
        let bar = match c.earliest_signal() {
            Some(at) if grace > 0 => bar(at, latest.max(at), grace),
            _ => " ".repeat(BAR_WIDTH + 1),
        };
        let _ = writeln!(
            out,
            "  {:name_width$}  {:20}  {bar}  {}",
            truncate(&c.name, name_width),
            truncate(&label, 20),
            details(c, plan.has_front_proxy, grace),
            name_width = name_width
        );
    }
    for warning in &plan.warnings {
        let _ = writeln!(out, "  warning: {warning}");
    }
    let _ = writeln!(
        out,
        "  legend: = serving through the preStop delay  | SIGTERM  ~ held while traffic arrives (signal comes in this range)  - shutdown budget  X SIGKILL at {grace}s\n"
    );
}

fn describe_action(c: &ContainerPlan) -> String {
    match (&c.action, c.hook) {
        (Action::Planned(_), Some(hook)) => hook.to_string(),
        (Action::AlreadyPlanned(_), _) => "done".into(),
        _ => "as-is".into(),
    }
}

fn details(c: &ContainerPlan, behind_proxy: bool, grace: u32) -> String {
    let mut parts = Vec::new();
    if let Some(timing) = c.timing() {
        parts.push(format!("preStop {}s", timing.earliest()));
    }
    match (c.timing(), c.earliest_signal()) {
        (Some(timing), _) if timing.is_adaptive() => {
            let what = c.signal.unwrap_or("SIGTERM");
            parts.push(format!("{what} {timing}"));
        }
        (_, Some(at)) => {
            let what = c.signal.unwrap_or("SIGTERM");
            parts.push(format!("{what} at {at}s"));
        }
        _ => {}
    }
    // Pinned clients (kept-alive, HTTP/2 through the Service) keep an adaptive hold going
    // unless something moves them off at the floor (drain.io/migrate).
    if let Some(window) = c.planned_hook().and_then(|hook| hook.window())
        && let Some(hold) = window.hold()
    {
        let (floor, cap) = (window.floor, hold.cap);
        match &hold.migrate {
            Some(migration) => parts.push(format!("{migration} at {floor}s moves pinned clients off")),
            // An app behind a proxy: the proxy's clients are the pinned ones.
            None if c.role == crate::plan::Role::Proxy || !behind_proxy => parts.push(format!(
                "nothing moves pinned clients off: kept-alive and HTTP/2 clients hold it toward {cap}s (drain.io/migrate)"
            )),
            None => {}
        }
    }
    if let Some(left) = c.budget_after_latest(grace) {
        parts.push(format!("{left}s to stop"));
    }
    if let (Some(fast), Some(max)) = (c.fast_signal(), c.hook_max_seconds()) {
        parts.push(format!("{fast} at {max}s if still draining"));
    }
    if !c.wait_idle.is_empty() {
        parts.push(format!("waits for idle ports {:?}", c.wait_idle));
    }
    if !c.notify.is_empty() {
        let urls: Vec<String> = c.notify.iter().map(ToString::to_string).collect();
        parts.push(format!("notifies {}", urls.join(",")));
    }
    if let Some(chained) = &c.chained {
        parts.push(format!("then runs its own hook: {chained}"));
    }
    parts.extend(c.record.as_ref().map(ToString::to_string));
    if !c.env.is_empty() {
        let vars: Vec<String> = c
            .env
            .iter()
            .map(|v| format!("{}={}", v.name, v.value))
            .collect();
        parts.push(format!("env {}", vars.join(" ")));
    }
    if c.role == crate::plan::Role::NativeSidecar {
        parts.push("stopped after the regular containers".into());
    }
    if let Some(note) = &c.note {
        parts.push(note.clone());
    }
    parts.join(", ")
}

fn column(seconds: u32, grace: u32) -> usize {
    let scaled = u64::from(seconds.min(grace)) * BAR_WIDTH as u64 / u64::from(grace.max(1));
    usize::try_from(scaled).unwrap_or(BAR_WIDTH)
}

/// `=` serving through the delay, `~` the adaptive hold's range (the signal comes somewhere
/// in it), `|` the earliest signal, `-` the budget, `X` SIGKILL.
fn bar(earliest: u32, latest: u32, grace: u32) -> String {
    let term = column(earliest, grace);
    let held = column(latest, grace);
    let mut bar = String::with_capacity(BAR_WIDTH + 1);
    for i in 0..=BAR_WIDTH {
        bar.push(if i == BAR_WIDTH {
            'X'
        } else if i == term {
            '|'
        } else if i < term {
            '='
        } else if i < held {
            '~'
        } else {
            '-'
        });
    }
    bar
}

/// `0s` under the start of the bars and `<grace>s` under the end.
fn axis(grace: u32) -> String {
    let end = format!("{grace}s");
    let mut axis = String::from("0s");
    let width = (BAR_WIDTH + 1).saturating_sub(axis.len() + end.len() - 1);
    axis.push_str(&" ".repeat(width));
    axis.push_str(&end);
    axis
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}
