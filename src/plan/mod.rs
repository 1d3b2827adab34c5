//! The shutdown plan (DESIGN.md section 2): pure, from a pod's metadata and spec, its
//! namespace's annotations and the global settings to one decision per container and a grace
//! period. Nothing here touches JSON patches or the network.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::annotations::{self, Overrides, Source, Sourced};
use crate::helper::args::{Command, DEFAULT_MAX_EXTRA_SECONDS, PrestopArgs, parse};
use crate::helper::net::HttpUrl;
use crate::helper::signal::parse_signal;
use crate::pod::PodShape;
use crate::settings::{HookMode, KUBERNETES_DEFAULT_GRACE, KubeVersion, Settings};

mod grace;
mod hooks;
mod injection;
mod roles;
mod status;

use grace::{finish_timeline, grace_causes};
use hooks::{HookChoice, HookRequest, chainable, first_notify_target, wait_idle_targets};
pub use injection::{HELPER_DIR, HELPER_IMAGE_PATH, HELPER_NAME, HELPER_PATH};
use injection::{existing_helper, mount_conflict, new_helper_names};
use roles::classify_containers;
pub use roles::{MESH_PROXIES, graceful_signal, image_name, proxy_family};
pub use status::Status;

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
        #[serde(serialize_with = "as_text")]
        url: HttpUrl,
    },
    /// A native sleep of the user's: the two sleeps simply add up.
    Sleep {
        seconds: u32,
    },
}

/// As people write it: `exec /wait-shutdown`, `httpGet http://127.0.0.1:8090/shutdown`.
impl fmt::Display for ChainedHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainedHook::Exec { command } => {
                f.write_str("exec")?;
                for word in command {
                    // Quoted where a word would not read as one.
                    if word.is_empty() || word.contains(char::is_whitespace) || word.contains('"') {
                        write!(f, " {word:?}")?;
                    } else {
                        write!(f, " {word}")?;
                    }
                }
                Ok(())
            }
            ChainedHook::HttpGet { url } => write!(f, "httpGet {url}"),
            ChainedHook::Sleep { seconds } => write!(f, "sleep {seconds}s"),
        }
    }
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
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "all_as_text")]
    pub notify: Vec<HttpUrl>,
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

/// A user's input the webhook refuses; the message names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    InvalidAnnotation(#[from] annotations::AnnotationError),
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

    let windows = spec.is_windows();
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
                // Last line of defence: a helper command its own parser would refuse fails at
                // run time and the pod gets no drain at all; such a container stays as it is.
                if let Some(reason) = entry.helper_rejection() {
                    plan.warnings.push(format!(
                        "container {:?} left untouched: {reason}",
                        entry.name
                    ));
                    *entry = ContainerPlan::new(&entry.name, false, entry.index, entry.role);
                    entry.note = Some(reason);
                } else {
                    needed = needed.max(need);
                }
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

impl ContainerPlan {
    /// The helper's own typed arguments for this container's preStop hook, when it runs the
    /// helper: the patch renders them with the helper's [`PrestopArgs::to_args`], so what the
    /// webhook writes is what the helper parses.
    pub fn helper_args(&self) -> Option<PrestopArgs> {
        if self.action != Action::Planned || self.hook != Some(HookKind::Helper) {
            return None;
        }
        let delay = self.pre_stop_seconds.unwrap_or(0);
        Some(PrestopArgs {
            delay,
            notify: self.notify.clone(),
            wait_idle: self.wait_idle.clone(),
            max: self
                .hook_max_seconds
                .unwrap_or(delay.saturating_add(DEFAULT_MAX_EXTRA_SECONDS)),
            // The planner's signal names come from a fixed list the helper knows (tested).
            signal: self.signal.and_then(|name| parse_signal(name).ok()),
            then_http_get: match &self.chained {
                Some(ChainedHook::HttpGet { url }) => Some(url.clone()),
                _ => None,
            },
            then_exec: match &self.chained {
                Some(ChainedHook::Exec { command }) => {
                    Some(command.iter().map(std::ffi::OsString::from).collect())
                }
                _ => None,
            },
        })
    }

    /// Why drain-helper's own parser would refuse this container's command, if it would.
    pub fn helper_rejection(&self) -> Option<String> {
        let args = self.helper_args()?;
        let rendered: Vec<std::ffi::OsString> =
            args.to_args().into_iter().map(Into::into).collect();
        match parse(&rendered) {
            Ok(Command::Prestop(parsed)) if parsed == args => None,
            Ok(_) => Some("drain-helper would read its planned command differently".into()),
            Err(err) => Some(format!(
                "drain-helper would refuse its planned command ({err})"
            )),
        }
    }

    /// The whole preStop exec command: the installed helper, then its arguments.
    pub fn helper_command(&self) -> Option<Vec<String>> {
        let args = self.helper_args()?;
        let mut command = vec![HELPER_PATH.to_owned()];
        command.extend(args.to_args());
        Some(command)
    }
}

/// URLs as text in `explain -o json` (the helper's own rendering).
fn as_text<S: serde::Serializer>(url: &HttpUrl, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(url)
}

fn all_as_text<S: serde::Serializer>(urls: &[HttpUrl], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(urls.iter().map(ToString::to_string))
}
