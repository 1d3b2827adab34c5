//! The shutdown plan (DESIGN.md section 2): pure, from a pod's metadata and spec, its
//! namespace's annotations and the global settings to one decision per container and a grace
//! period. Nothing here touches JSON patches or the network.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::core::v1::LifecycleHandler;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

use crate::annotations::{self, Overrides, Source, Sourced};
use crate::pod::{ContainerShape, PodShape, SpecShape};
use crate::settings::{HookMode, KUBERNETES_DEFAULT_GRACE, KubeVersion, Settings};

/// Where the helper binary lives in every container that uses it.
pub const HELPER_DIR: &str = "/.drain";
pub const HELPER_PATH: &str = "/.drain/drain-helper";
/// Base name of the init container and the volume the webhook adds.
pub const HELPER_NAME: &str = "drain-helper";
/// Containers whose injector owns their drain.
pub const MESH_PROXIES: [&str; 2] = ["istio-proxy", "linkerd-proxy"];
const MESH_NOTE: &str = "service-mesh proxy: its injector owns its drain";

/// What a container is for, as far as shutdown order goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Front proxy (nginx and friends): stops first, at D.
    Proxy,
    /// Every other regular container: stops at D + S behind a proxy, else at D.
    App,
    /// Init container with `restartPolicy: Always`: stopped by the kubelet after the regular
    /// containers; no delay.
    NativeSidecar,
    /// istio-proxy or linkerd-proxy: its injector owns its drain.
    MeshProxy,
    /// Named in `drain.io/exclude`.
    Excluded,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Proxy => "proxy",
            Role::App => "app",
            Role::NativeSidecar => "native-sidecar",
            Role::MeshProxy => "mesh-proxy",
            Role::Excluded => "excluded",
        })
    }
}

/// The preStop mechanism a planned container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookKind {
    Sleep,
    Helper,
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookKind::Sleep => "sleep",
            HookKind::Helper => "helper",
        })
    }
}

/// The user's own preStop hook, kept and run after the drain delay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ChainedHook {
    Exec {
        command: Vec<String>,
    },
    HttpGet {
        url: String,
    },
    /// A native sleep of the user's: the two sleeps simply add up.
    Sleep {
        seconds: u32,
    },
}

/// What happens to one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Gets a new preStop hook from this plan.
    Planned,
    /// Mutated by an earlier run (listed in `drain.io/status`): left exactly as it is.
    AlreadyPlanned,
    /// Left as it is; `note` says why.
    Untouched,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPlan {
    pub name: String,
    /// `true` for containers listed under `initContainers` (native sidecars).
    pub init_container: bool,
    /// Position in `containers` or `initContainers` of the original object.
    pub index: usize,
    pub role: Role,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<HookKind>,
    /// Seconds the hook delays SIGTERM by (the drain delay, plus a chained sleep).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_stop_seconds: Option<u32>,
    /// When the container gets SIGTERM (or, for a proxy with a graceful signal, that signal),
    /// in seconds after T0, when the plan knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigterm_at: Option<u32>,
    /// Seconds between SIGTERM and SIGKILL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_after_sigterm: Option<u32>,
    /// Upper bound of the helper's run (`--max`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_max_seconds: Option<u32>,
    /// Graceful stop signal the helper sends to the proxy (nginx: SIGQUIT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wait_idle: Vec<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chained: Option<ChainedHook>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The init container and volume that carry drain-helper into the pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelperInjection {
    pub init_container: String,
    pub volume: String,
    /// Both exist already (an earlier run added them).
    #[serde(skip)]
    pub present: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The pod gets new hooks and/or a new grace period.
    Mutate,
    /// Nothing left to do (typically: already mutated).
    Unchanged,
    /// Deliberately left alone; `reason` says why.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// D, S and B as resolved from annotations and settings.
    pub delay: u32,
    pub stagger: u32,
    pub shutdown_budget: u32,
    pub has_front_proxy: bool,
    /// `terminationGracePeriodSeconds` as the pod had it before any run of the webhook.
    pub grace_before: Option<i64>,
    /// The effective grace period after this plan (Kubernetes' default 30 when unset).
    pub grace_after: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kube_version: Option<String>,
    pub containers: Vec<ContainerPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helper: Option<HelperInjection>,
    pub warnings: Vec<String>,
    /// Whether `terminationGracePeriodSeconds` must be written.
    #[serde(skip)]
    pub set_grace: bool,
    /// The `drain.io/status` value to write, when anything changes.
    #[serde(skip)]
    pub status: Option<Status>,
}

impl Plan {
    pub fn planned(&self) -> impl Iterator<Item = &ContainerPlan> {
        self.containers
            .iter()
            .filter(|c| c.action == Action::Planned)
    }
}

/// What the webhook records in `drain.io/status`: enough to make a second run a no-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Status {
    /// Format version.
    pub v: u32,
    /// The grace period before the first run (`null`: unset), so B stays the user's.
    #[serde(rename = "graceBefore")]
    pub grace_before: Option<i64>,
    pub grace: i64,
    /// Planned containers: name -> "role:hook:preStopSeconds".
    pub containers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helper: Option<HelperInjection>,
    /// Containers left as they were: name -> role.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub untouched: BTreeMap<String, String>,
}

impl Status {
    pub const VERSION: u32 = 1;

    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_str::<Status>(raw)
            .ok()
            .filter(|s| s.v == Self::VERSION)
    }
}

/// A user's input the webhook refuses; the message names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "annotation {key}={value:?} ({origin}) is invalid: {reason}; use for example {key}: {example}"
    )]
    InvalidAnnotation {
        key: &'static str,
        value: String,
        origin: Source,
        reason: String,
        example: &'static str,
    },
    #[error(
        "terminationGracePeriodSeconds would become {grace}s, above the maximum of {max}s allowed by drain-webhook; it is pushed there by {causes}; lower it, for example {example}"
    )]
    GraceAboveMaximum {
        grace: i64,
        max: u32,
        causes: String,
        example: String,
    },
    #[error(
        "annotation {key}=\"sleep\" ({origin}) needs Kubernetes 1.30 or later for the native preStop sleep action, and this cluster runs {version}; use for example {key}: \"helper\" or \"auto\""
    )]
    SleepUnsupported {
        key: &'static str,
        origin: Source,
        version: KubeVersion,
    },
}

/// Everything besides the pod that decides its plan.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub settings: &'a Settings,
    pub namespace_annotations: Option<&'a BTreeMap<String, String>>,
    pub kube_version: Option<KubeVersion>,
}

/// Plans the shutdown of one pod.
pub fn plan_pod(pod: &PodShape, inputs: &Inputs<'_>) -> Result<Plan, PlanError> {
    let settings = inputs.settings;
    let pod_annotations = pod.metadata.as_ref().and_then(|m| m.annotations.as_ref());
    let spec_grace = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds);
    let mut plan = Plan {
        outcome: Outcome::Skipped,
        reason: None,
        delay: settings.delay,
        stagger: settings.stagger,
        shutdown_budget: settings.shutdown_budget,
        has_front_proxy: false,
        grace_before: spec_grace,
        grace_after: spec_grace.unwrap_or(i64::from(KUBERNETES_DEFAULT_GRACE)),
        kube_version: inputs.kube_version.map(|v| v.to_string()),
        containers: Vec::new(),
        helper: None,
        warnings: Vec::new(),
        set_grace: false,
        status: None,
    };

    let overrides = Overrides::resolve(pod_annotations, inputs.namespace_annotations)?;
    if let Some(source) = overrides.opted_out {
        plan.reason = Some(format!(
            "opted out by {}=\"false\" ({source})",
            annotations::INJECT
        ));
        return Ok(plan);
    }
    let Some(spec) = pod.spec.as_ref() else {
        plan.reason = Some("the object has no pod spec".into());
        return Ok(plan);
    };
    match spec_grace {
        Some(0) => {
            plan.reason = Some(
                "terminationGracePeriodSeconds is 0, an explicit request for immediate kill".into(),
            );
            plan.warnings.push(format!(
                "drain-webhook left the pod untouched: {}",
                plan.reason.as_deref().unwrap_or_default()
            ));
            return Ok(plan);
        }
        Some(negative) if negative < 0 => {
            plan.reason = Some(format!(
                "terminationGracePeriodSeconds {negative} is negative"
            ));
            return Ok(plan);
        }
        _ => {}
    }

    let previous = pod_annotations
        .and_then(|a| a.get(annotations::STATUS))
        .and_then(|raw| Status::parse(raw));
    let original_grace = match &previous {
        Some(status) => status.grace_before,
        None => spec_grace,
    };
    plan.grace_before = original_grace;
    plan.delay = value_or(&overrides.delay, settings.delay);
    plan.stagger = value_or(&overrides.stagger, settings.stagger);
    plan.shutdown_budget = match &overrides.shutdown_budget {
        Some(budget) => budget.value,
        None => original_grace
            .map(|g| u32::try_from(g).unwrap_or(u32::MAX))
            .unwrap_or(settings.shutdown_budget),
    };

    let windows = spec
        .os
        .as_ref()
        .is_some_and(|os| os.name.eq_ignore_ascii_case("windows"));
    let hook_mode = overrides
        .hook
        .as_ref()
        .map(|h| h.value)
        .unwrap_or(settings.hook_mode);
    if hook_mode == HookMode::Sleep
        && let (Some(version), Some(hook)) = (inputs.kube_version, &overrides.hook)
        && !version.supports_sleep_action()
    {
        return Err(PlanError::SleepUnsupported {
            key: annotations::HOOK,
            origin: hook.source,
            version,
        });
    }

    classify_containers(spec, &overrides, settings, previous.as_ref(), &mut plan);
    plan.has_front_proxy = plan
        .containers
        .iter()
        .any(|c| c.role == Role::Proxy && !c.init_container);

    let first_run = previous.is_none();
    let notify_target = if first_run && overrides.notify.is_some() {
        first_notify_target(&plan.containers)
    } else {
        None
    };
    let wait_idle_ports = overrides
        .wait_idle
        .as_ref()
        .map(|w| w.value.clone())
        .unwrap_or_default();
    let wait_idle_targets = wait_idle_targets(spec, &plan.containers, &wait_idle_ports);

    let choice = HookChoice {
        mode: hook_mode,
        windows,
        version: inputs.kube_version,
        share_process_namespace: spec.share_process_namespace == Some(true),
    };
    let budget = plan.shutdown_budget;
    // Names of the helper's init container and volume (existing ones are reused); only looked
    // up when a container takes the helper.
    let mut helper_names: Option<HelperInjection> = None;
    let mut needed: u64 = 0;
    // Proxies first: apps stop S after the last proxy got its signal, even when a proxy's own
    // chained sleep makes it stop later than D.
    let order: Vec<usize> = (0..plan.containers.len())
        .filter(|&i| plan.containers[i].role == Role::Proxy)
        .chain((0..plan.containers.len()).filter(|&i| plan.containers[i].role != Role::Proxy))
        .collect();
    for index in order {
        let container_plan = &plan.containers[index];
        if container_plan.action != Action::Planned {
            continue;
        }
        let Some(container) = spec.containers.get(container_plan.index) else {
            continue;
        };
        let role = container_plan.role;
        let delay = match role {
            Role::App if plan.has_front_proxy => {
                last_proxy_stop(&plan.containers, plan.delay).saturating_add(plan.stagger)
            }
            _ => plan.delay,
        };
        let request = HookRequest {
            delay,
            chained: chainable(container),
            signal: if role == Role::Proxy {
                graceful_signal(container.image.as_deref().unwrap_or_default())
            } else {
                None
            },
            notify: if notify_target == Some(index) {
                overrides
                    .notify
                    .as_ref()
                    .map(|n| n.value.clone())
                    .unwrap_or_default()
            } else {
                Vec::new()
            },
            wait_idle: if wait_idle_targets.contains(&index) {
                wait_idle_ports.clone()
            } else {
                Vec::new()
            },
        };
        let mut decision = choice.decide(container, request, &mut plan.warnings);
        if let Ok(hook) = &decision
            && hook.kind == HookKind::Helper
        {
            let names = helper_names.get_or_insert_with(|| {
                existing_helper(spec, previous.as_ref()).unwrap_or_else(|| new_helper_names(spec))
            });
            // A container whose /.drain path is taken by another volume cannot mount it.
            if mount_conflict(container, &names.volume) {
                plan.warnings.push(format!(
                    "container {:?} left untouched: {HELPER_DIR} is already mounted from another volume",
                    container.name
                ));
                decision = Err(format!(
                    "its mount path {HELPER_DIR} is already used by another volume"
                ));
            }
        }
        let entry = &mut plan.containers[index];
        match decision {
            Err(note) => {
                entry.action = Action::Untouched;
                entry.note = Some(note);
            }
            Ok(hook) => {
                let extra_wait = if hook.wait_idle.is_empty() { 0 } else { budget };
                let need =
                    u64::from(hook.pre_stop_seconds) + u64::from(extra_wait) + u64::from(budget);
                needed = needed.max(need);
                entry.hook = Some(hook.kind);
                entry.pre_stop_seconds = Some(hook.pre_stop_seconds);
                entry.sigterm_at = Some(hook.pre_stop_seconds);
                // The helper may run the delay plus up to B (waiting for idle ports, for the
                // proxy to exit after its signal, or for the user's chained hook); the grace
                // period still leaves B after that for wait-idle containers.
                entry.hook_max_seconds = (hook.kind == HookKind::Helper)
                    .then(|| hook.pre_stop_seconds.saturating_add(budget));
                entry.signal = hook.signal;
                entry.notify = hook.notify;
                entry.wait_idle = hook.wait_idle;
                entry.chained = hook.chained;
            }
        }
    }

    // Grace: never shortened, long enough for every planned container's delay plus B.
    let effective_grace = spec_grace.unwrap_or(i64::from(KUBERNETES_DEFAULT_GRACE));
    let needed = i64::try_from(needed).unwrap_or(i64::MAX);
    let grace_after = effective_grace.max(needed);
    if grace_after > i64::from(settings.max_grace) && grace_after > effective_grace {
        let causes = grace_causes(&overrides);
        if causes.is_empty() {
            plan.reason = Some(format!(
                "the grace period would become {grace_after}s, above the maximum of {}s, because the pod's own grace period is already {effective_grace}s",
                settings.max_grace
            ));
            plan.warnings.push(format!(
                "drain-webhook left the pod untouched: {}",
                plan.reason.as_deref().unwrap_or_default()
            ));
            plan.containers
                .iter_mut()
                .filter(|c| c.action == Action::Planned)
                .for_each(|c| {
                    c.action = Action::Untouched;
                    c.note = Some("grace period would exceed the maximum".into());
                });
            return Ok(finish_timeline(plan));
        }
        return Err(PlanError::GraceAboveMaximum {
            grace: grace_after,
            max: settings.max_grace,
            causes: causes.join(", "),
            example: format!(
                "{}: \"{}s\"",
                annotations::SHUTDOWN_BUDGET,
                (settings.max_grace / 2).max(1)
            ),
        });
    }
    plan.grace_after = grace_after;
    plan.set_grace = grace_after != effective_grace;

    plan.helper = helper_names.filter(|_| {
        plan.containers
            .iter()
            .any(|c| c.action == Action::Planned && c.hook == Some(HookKind::Helper))
    });

    let any_planned = plan.containers.iter().any(|c| c.action == Action::Planned);
    if any_planned {
        plan.outcome = Outcome::Mutate;
        let mut status = previous.unwrap_or_default();
        status.v = Status::VERSION;
        status.grace_before = original_grace;
        status.grace = plan.grace_after;
        for c in plan.planned() {
            status.containers.insert(
                c.name.clone(),
                format!(
                    "{}:{}:{}",
                    c.role,
                    c.hook.map(|h| h.to_string()).unwrap_or_default(),
                    c.pre_stop_seconds.unwrap_or(0)
                ),
            );
        }
        if status.helper.is_none() {
            status.helper.clone_from(&plan.helper);
        }
        status.untouched = plan
            .containers
            .iter()
            .filter(|c| c.action == Action::Untouched)
            .map(|c| (c.name.clone(), c.role.to_string()))
            .collect();
        plan.status = Some(status);
    } else {
        let already = plan
            .containers
            .iter()
            .any(|c| c.action == Action::AlreadyPlanned);
        if already {
            plan.outcome = Outcome::Unchanged;
            plan.reason = Some("already mutated by an earlier run".into());
        } else {
            plan.outcome = Outcome::Skipped;
            plan.reason = Some("no container needs a drain hook".into());
        }
    }
    Ok(finish_timeline(plan))
}

/// When the last planned (or earlier-planned) regular proxy stops, at least D.
fn last_proxy_stop(containers: &[ContainerPlan], delay: u32) -> u32 {
    containers
        .iter()
        .filter(|c| c.role == Role::Proxy && !c.init_container)
        .filter(|c| matches!(c.action, Action::Planned | Action::AlreadyPlanned))
        .filter_map(|c| c.pre_stop_seconds)
        .fold(delay, u32::max)
}

fn value_or(sourced: &Option<Sourced<u32>>, default: u32) -> u32 {
    sourced.as_ref().map(|s| s.value).unwrap_or(default)
}

/// The annotations that make the grace period grow, for the "above maximum" message.
fn grace_causes(overrides: &Overrides) -> Vec<String> {
    let mut causes = Vec::new();
    for sourced in [
        &overrides.delay,
        &overrides.stagger,
        &overrides.shutdown_budget,
    ]
    .into_iter()
    .flatten()
    {
        causes.push(format!(
            "{}={:?} ({})",
            sourced.key, sourced.raw, sourced.source
        ));
    }
    if let Some(wait) = &overrides.wait_idle {
        causes.push(format!("{}={:?} ({})", wait.key, wait.raw, wait.source));
    }
    causes
}

/// Fills SIGTERM times and budgets once the grace period is known.
fn finish_timeline(mut plan: Plan) -> Plan {
    let grace = u32::try_from(plan.grace_after.max(0)).unwrap_or(u32::MAX);
    for c in &mut plan.containers {
        // Untouched regular containers get SIGTERM at T0 (after their own preStop, if any);
        // native sidecars after the regular containers, at a time the plan does not know.
        if c.action == Action::Untouched && !c.init_container && c.sigterm_at.is_none() {
            c.sigterm_at = Some(0);
        }
        c.budget_after_sigterm = c.sigterm_at.map(|at| grace.saturating_sub(at));
    }
    plan
}

/// Assigns roles; containers mutated by an earlier run are frozen.
fn classify_containers(
    spec: &SpecShape,
    overrides: &Overrides,
    settings: &Settings,
    previous: Option<&Status>,
    plan: &mut Plan,
) {
    let proxies_named = overrides.proxies.as_ref().map(|p| &p.value);
    let excluded: BTreeSet<&str> = overrides
        .exclude
        .as_ref()
        .map(|e| e.value.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let is_proxy = |c: &ContainerShape| match proxies_named {
        Some(names) => names.iter().any(|n| n == &c.name),
        None => c
            .image
            .as_deref()
            .is_some_and(|image| proxy_family(image, &settings.proxy_images).is_some()),
    };

    for (index, container) in spec.containers.iter().enumerate() {
        let (role, untouched_because) = if excluded.contains(container.name.as_str()) {
            (
                Role::Excluded,
                Some(format!("excluded by {}", annotations::EXCLUDE)),
            )
        } else if MESH_PROXIES.contains(&container.name.as_str()) {
            (Role::MeshProxy, Some(MESH_NOTE.to_owned()))
        } else if is_proxy(container) {
            (Role::Proxy, None)
        } else {
            (Role::App, None)
        };
        let mut entry = ContainerPlan::new(&container.name, false, index, role);
        match untouched_because {
            Some(note) => {
                entry.action = Action::Untouched;
                entry.note = Some(note);
            }
            None => {
                let recorded = previous.and_then(|s| s.containers.get(&container.name));
                if let Some(recorded) = recorded {
                    entry.action = Action::AlreadyPlanned;
                    let mut parts = recorded.split(':');
                    let _role = parts.next();
                    entry.hook = match parts.next() {
                        Some("sleep") => Some(HookKind::Sleep),
                        Some("helper") => Some(HookKind::Helper),
                        _ => None,
                    };
                    entry.pre_stop_seconds = parts.next().and_then(|s| s.parse().ok());
                    entry.sigterm_at = entry.pre_stop_seconds;
                } else if has_helper_hook(container) {
                    entry.action = Action::AlreadyPlanned;
                    entry.hook = Some(HookKind::Helper);
                    entry.note = Some("already runs drain-helper".into());
                } else {
                    entry.action = Action::Planned;
                }
            }
        }
        plan.containers.push(entry);
    }

    for (index, container) in spec.init_containers.iter().flatten().enumerate() {
        if container.restart_policy.as_deref() != Some("Always") {
            continue;
        }
        let mut entry = ContainerPlan::new(&container.name, true, index, Role::NativeSidecar);
        entry.action = Action::Untouched;
        entry.note = Some("native sidecar: stopped by the kubelet after the app".into());
        if MESH_PROXIES.contains(&container.name.as_str()) {
            entry.role = Role::MeshProxy;
            entry.note = Some(MESH_NOTE.to_owned());
        } else if is_proxy(container) && !excluded.contains(container.name.as_str()) {
            plan.warnings.push(format!(
                "front proxy {:?} is a native sidecar: the kubelet stops it after the app, so it cannot be stopped first; make it a regular container to get the staggered drain",
                container.name
            ));
        }
        plan.containers.push(entry);
    }

    let known: BTreeSet<&str> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.name.as_str())
        .collect();
    for sourced in [&overrides.proxies, &overrides.exclude]
        .into_iter()
        .flatten()
    {
        for name in &sourced.value {
            if !known.contains(name.as_str()) {
                plan.warnings.push(format!(
                    "{} names container {name:?}, which the pod does not have",
                    sourced.key
                ));
            }
        }
    }
}

impl ContainerPlan {
    fn new(name: &str, init_container: bool, index: usize, role: Role) -> Self {
        Self {
            name: name.to_owned(),
            init_container,
            index,
            role,
            action: Action::Untouched,
            hook: None,
            pre_stop_seconds: None,
            sigterm_at: None,
            budget_after_sigterm: None,
            hook_max_seconds: None,
            signal: None,
            notify: Vec::new(),
            wait_idle: Vec::new(),
            chained: None,
            note: None,
        }
    }
}

/// The repository name of an image without registry, path, tag or digest:
/// `registry:5000/library/nginx:1.27@sha256:..` -> `nginx`.
pub fn image_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next().unwrap_or(last)
}

/// The proxy pattern an image matches: the name equals it or is a variant of it
/// (`nginx-unprivileged`, `envoy-distroless`); exporters that only carry a proxy's name
/// (`nginx-prometheus-exporter`) are not proxies.
pub fn proxy_family<'p>(image: &str, patterns: &'p [String]) -> Option<&'p str> {
    let name = image_name(image).to_ascii_lowercase();
    if name.ends_with("-exporter") {
        return None;
    }
    patterns
        .iter()
        .map(String::as_str)
        .find(|p| is_variant_of(&name, p))
}

/// The signal that stops a proxy gracefully when its image's stop signal may not.
pub fn graceful_signal(image: &str) -> Option<&'static str> {
    let name = image_name(image).to_ascii_lowercase();
    if is_variant_of(&name, "nginx") || is_variant_of(&name, "openresty") {
        Some("SIGQUIT")
    } else if is_variant_of(&name, "haproxy") {
        Some("SIGUSR1")
    } else {
        None
    }
}

/// `name` is `family` or `family-<variant>`.
fn is_variant_of(name: &str, family: &str) -> bool {
    name.strip_prefix(family)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
}

fn has_helper_hook(container: &ContainerShape) -> bool {
    container
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
        .and_then(|h| h.exec.as_ref())
        .and_then(|e| e.command.as_ref())
        .and_then(|c| c.first())
        .is_some_and(|first| first == HELPER_PATH)
}

/// The user's preStop hook, classified: `Ok(None)` none, `Ok(Some)` can be chained after the
/// delay, `Err` cannot be kept if we replace it.
fn chainable(container: &ContainerShape) -> Result<Option<ChainedHook>, String> {
    let Some(handler) = container
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
    else {
        return Ok(None);
    };
    classify_handler(handler, container)
}

fn classify_handler(
    handler: &LifecycleHandler,
    container: &ContainerShape,
) -> Result<Option<ChainedHook>, String> {
    if let Some(exec) = &handler.exec {
        let command = exec.command.clone().unwrap_or_default();
        if command.is_empty() {
            return Err("its preStop exec hook has an empty command".into());
        }
        return Ok(Some(ChainedHook::Exec { command }));
    }
    if let Some(get) = &handler.http_get {
        if get
            .scheme
            .as_deref()
            .is_some_and(|s| !s.eq_ignore_ascii_case("HTTP"))
        {
            return Err(
                "its preStop httpGet hook uses HTTPS, which drain-helper cannot call".into(),
            );
        }
        if get.http_headers.as_ref().is_some_and(|h| !h.is_empty()) {
            return Err(
                "its preStop httpGet hook sends custom headers, which drain-helper cannot send"
                    .into(),
            );
        }
        let port = match &get.port {
            IntOrString::Int(port) => u16::try_from(*port).ok().filter(|p| *p > 0),
            IntOrString::String(name) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok()),
        }
        .ok_or_else(|| {
            "its preStop httpGet hook names a port the container does not declare".to_string()
        })?;
        // The helper runs in the pod's network namespace: the pod IP is loopback-reachable.
        let host = match get.host.as_deref() {
            None | Some("") => "127.0.0.1".to_string(),
            Some(host) if host.parse::<std::net::Ipv4Addr>().is_ok() => host.to_string(),
            Some(host) if host.parse::<std::net::Ipv6Addr>().is_ok() => format!("[{host}]"),
            Some(_) => {
                return Err(
                    "its preStop httpGet hook targets a host name, which drain-helper cannot resolve"
                        .into(),
                );
            }
        };
        let path = get.path.as_deref().unwrap_or("/");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        return Ok(Some(ChainedHook::HttpGet {
            url: format!("http://{host}:{port}{path}"),
        }));
    }
    if let Some(sleep) = &handler.sleep {
        let seconds = u32::try_from(sleep.seconds)
            .map_err(|_| "its preStop sleep has an invalid duration".to_string())?;
        return Ok(Some(ChainedHook::Sleep { seconds }));
    }
    Err("its preStop hook is of a kind drain-webhook cannot chain (tcpSocket)".into())
}

/// The container that calls `drain.io/notify`: the first planned app, else the first planned
/// proxy (the URLs are on the pod's shared loopback: calling them once per pod is the intent).
fn first_notify_target(containers: &[ContainerPlan]) -> Option<usize> {
    let planned = |role| {
        containers
            .iter()
            .position(|c| c.action == Action::Planned && c.role == role)
    };
    planned(Role::App).or_else(|| planned(Role::Proxy))
}

/// Containers that wait for idle ports: those declaring one of the ports; when no container
/// declares any, every planned app.
fn wait_idle_targets(spec: &SpecShape, containers: &[ContainerPlan], ports: &[u16]) -> Vec<usize> {
    if ports.is_empty() {
        return Vec::new();
    }
    let declares =
        |c: &ContainerPlan| {
            spec.containers.get(c.index).is_some_and(|container| {
                container.ports.iter().flatten().any(|p| {
                    u16::try_from(p.container_port).is_ok_and(|port| ports.contains(&port))
                })
            })
        };
    let planned = |c: &&ContainerPlan| c.action == Action::Planned && !c.init_container;
    let declaring: Vec<usize> = containers
        .iter()
        .enumerate()
        .filter(|(_, c)| planned(c) && declares(c))
        .map(|(i, _)| i)
        .collect();
    if !declaring.is_empty() {
        return declaring;
    }
    containers
        .iter()
        .enumerate()
        .filter(|(_, c)| planned(c) && c.role == Role::App)
        .map(|(i, _)| i)
        .collect()
}

struct HookRequest {
    delay: u32,
    chained: Result<Option<ChainedHook>, String>,
    signal: Option<&'static str>,
    notify: Vec<String>,
    wait_idle: Vec<u16>,
}

struct ChosenHook {
    kind: HookKind,
    pre_stop_seconds: u32,
    signal: Option<&'static str>,
    notify: Vec<String>,
    wait_idle: Vec<u16>,
    chained: Option<ChainedHook>,
}

struct HookChoice {
    mode: HookMode,
    windows: bool,
    version: Option<KubeVersion>,
    share_process_namespace: bool,
}

impl HookChoice {
    /// Picks sleep or helper for one container (DESIGN.md section 3); `Err` leaves it as it is.
    fn decide(
        &self,
        container: &ContainerShape,
        request: HookRequest,
        warnings: &mut Vec<String>,
    ) -> Result<ChosenHook, String> {
        let name = &container.name;
        let chained = match request.chained {
            Ok(chained) => chained,
            Err(reason) => {
                warnings.push(format!(
                    "container {name:?} left untouched: {reason}; its hook is kept as it is"
                ));
                return Err(reason);
            }
        };
        let mut signal = request.signal;
        if signal.is_some() && self.share_process_namespace {
            warnings.push(format!(
                "container {name:?}: shareProcessNamespace is on, so drain-helper cannot find the proxy's PID 1; it gets its image's stop signal instead of {}",
                signal.unwrap_or_default()
            ));
            signal = None;
        }
        // A chained native sleep just adds to the delay; it needs no helper.
        let (pre_stop_seconds, chained) = match chained {
            Some(ChainedHook::Sleep { seconds }) => (request.delay.saturating_add(seconds), None),
            other => (request.delay, other),
        };
        let needs_helper = chained.is_some()
            || signal.is_some()
            || !request.notify.is_empty()
            || !request.wait_idle.is_empty();
        let sleep_available = self.version.map(KubeVersion::supports_sleep_action);

        let kind = if self.windows {
            // Windows pods: native sleep only.
            if sleep_available != Some(true) {
                let reason = match self.version {
                    Some(v) => format!(
                        "Windows pod on Kubernetes {v}: the native sleep action needs 1.30 and drain-helper does not run on Windows"
                    ),
                    None => "Windows pod and the Kubernetes version is unknown: the native sleep action needs 1.30 (pass --kube-version) and drain-helper does not run on Windows".into(),
                };
                warnings.push(format!("container {name:?} left untouched: {reason}"));
                return Err(reason);
            }
            if chained.is_some() {
                let reason = "Windows pod: its own preStop hook cannot be chained without drain-helper, which does not run on Windows".to_string();
                warnings.push(format!("container {name:?} left untouched: {reason}"));
                return Err(reason);
            }
            if needs_helper {
                warnings.push(format!(
                    "container {name:?}: Windows pod, so only the native sleep is used (no notify, wait-idle or graceful signal)"
                ));
            }
            HookKind::Sleep
        } else {
            match self.mode {
                HookMode::Helper => HookKind::Helper,
                HookMode::Sleep => {
                    if self.version.is_some() && sleep_available == Some(false) {
                        let reason = format!(
                            "hook mode sleep is set but Kubernetes {} has no native sleep action (1.30+)",
                            self.version.map(|v| v.to_string()).unwrap_or_default()
                        );
                        warnings.push(format!("container {name:?} left untouched: {reason}"));
                        return Err(reason);
                    }
                    if chained.is_some() {
                        let reason = "its own preStop hook cannot be chained with hook mode sleep (use helper or auto)".to_string();
                        warnings.push(format!(
                            "container {name:?} left untouched: {reason}; its hook is kept as it is"
                        ));
                        return Err(reason);
                    }
                    if needs_helper {
                        warnings.push(format!(
                            "container {name:?}: hook mode sleep, so notify, wait-idle and the graceful stop signal are not used"
                        ));
                    }
                    HookKind::Sleep
                }
                HookMode::Auto => {
                    if needs_helper || sleep_available != Some(true) {
                        HookKind::Helper
                    } else {
                        HookKind::Sleep
                    }
                }
            }
        };
        if kind == HookKind::Sleep {
            if pre_stop_seconds == 0 {
                return Err("no delay is needed (the delay is 0)".into());
            }
            return Ok(ChosenHook {
                kind,
                pre_stop_seconds,
                signal: None,
                notify: Vec::new(),
                wait_idle: Vec::new(),
                chained: None,
            });
        }
        if pre_stop_seconds == 0 && !needs_helper {
            return Err("no delay is needed (the delay is 0)".into());
        }
        Ok(ChosenHook {
            kind,
            pre_stop_seconds,
            signal,
            notify: request.notify,
            wait_idle: request.wait_idle,
            chained,
        })
    }
}

/// Every name in the pod's container namespace (containers, init and ephemeral containers share
/// one: API validation rejects duplicates across them).
fn container_names(spec: &SpecShape) -> BTreeSet<&str> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.name.as_str())
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| c.name.as_str()),
        )
        .collect()
}

/// The helper init container and volume from an earlier run, if both are still there.
fn existing_helper(spec: &SpecShape, previous: Option<&Status>) -> Option<HelperInjection> {
    let init = spec.init_containers.iter().flatten().find(|c| {
        let recorded = previous
            .and_then(|s| s.helper.as_ref())
            .is_some_and(|h| h.init_container == c.name);
        recorded || is_helper_installer(c)
    })?;
    let volume = init
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == HELPER_DIR)?
        .name
        .clone();
    spec.volumes
        .iter()
        .flatten()
        .any(|v| v.name == volume)
        .then(|| HelperInjection {
            init_container: init.name.clone(),
            volume,
            present: true,
        })
}

fn is_helper_installer(container: &ContainerShape) -> bool {
    let words: Vec<&str> = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .map(String::as_str)
        .collect();
    words.contains(&"install") && words.contains(&HELPER_DIR)
}

/// Fresh names for the init container and the volume, never colliding with the user's.
fn new_helper_names(spec: &SpecShape) -> HelperInjection {
    let containers = container_names(spec);
    let volumes: BTreeSet<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    HelperInjection {
        init_container: unique_name(&containers),
        volume: unique_name(&volumes),
        present: false,
    }
}

fn unique_name(taken: &BTreeSet<&str>) -> String {
    if !taken.contains(HELPER_NAME) {
        return HELPER_NAME.to_owned();
    }
    (2..)
        .map(|n| format!("{HELPER_NAME}-{n}"))
        .find(|candidate| !taken.contains(candidate.as_str()))
        .unwrap_or_else(|| HELPER_NAME.to_owned())
}

/// The container already mounts something else at /.drain.
fn mount_conflict(container: &ContainerShape, helper_volume: &str) -> bool {
    container
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| m.mount_path.trim_end_matches('/') == HELPER_DIR && m.name != helper_volume)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        assert_eq!(image_name("nginx"), "nginx");
        assert_eq!(image_name("nginx:1.27"), "nginx");
        assert_eq!(image_name("registry:5000/library/nginx:1.27"), "nginx");
        assert_eq!(image_name("ghcr.io/a/envoy@sha256:abcd"), "envoy");
    }

    #[test]
    fn proxy_families() {
        let patterns: Vec<String> = crate::settings::DEFAULT_PROXY_IMAGES
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            proxy_family("nginxinc/nginx-unprivileged:1.25", &patterns),
            Some("nginx")
        );
        assert_eq!(
            proxy_family("envoyproxy/envoy-distroless:v1.30", &patterns),
            Some("envoy")
        );
        assert_eq!(
            proxy_family("nginx/nginx-prometheus-exporter", &patterns),
            None
        );
        assert_eq!(proxy_family("mynginxapp", &patterns), None);
        assert_eq!(proxy_family("ghcr.io/acme/api:1.0", &patterns), None);
        assert_eq!(
            graceful_signal("openresty/openresty:alpine"),
            Some("SIGQUIT")
        );
        assert_eq!(graceful_signal("haproxy:2.9"), Some("SIGUSR1"));
        assert_eq!(graceful_signal("envoyproxy/envoy"), None);
    }

    #[test]
    fn unique_names_skip_taken_ones() {
        let taken: BTreeSet<&str> = ["drain-helper", "drain-helper-2"].into_iter().collect();
        assert_eq!(unique_name(&taken), "drain-helper-3");
        assert_eq!(unique_name(&BTreeSet::new()), "drain-helper");
    }
}
