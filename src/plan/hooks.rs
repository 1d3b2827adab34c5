//! Hooks: whether a user's own hook can be chained, and sleep or helper per container.

use k8s_openapi::api::core::v1::LifecycleHandler;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::injection::{HELPER_DIR, existing_helper, mount_conflict, new_helper_names};
use super::roles::graceful_signal;
use super::{
    Action, ChainedHook, ContainerPlan, HelperInjection, HookKind, Plan, Resolved, Role,
    last_proxy_stop, native,
};
use crate::annotations::Overrides;
use crate::helper::net::HttpUrl;
use crate::pod::{ContainerShape, SpecShape};
use crate::settings::{HookMode, KubeVersion};

/// The user's preStop hook, classified: `Ok(None)` none, `Ok(Some)` can be chained after the
/// delay, `Err` cannot be kept if we replace it.
pub(super) fn chainable(container: &ContainerShape) -> Result<Option<ChainedHook>, String> {
    let Some(handler) = container
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
    else {
        return Ok(None);
    };
    classify_handler(handler, container)
}

pub(super) fn classify_handler(
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
        // The helper's own URL rules decide: a path it would refuse (a fragment, a space)
        // leaves the container as it is instead of writing a hook that fails.
        let url = HttpUrl::parse(&format!("http://{host}:{port}{path}")).map_err(|reason| {
            format!("its preStop httpGet hook cannot be run by drain-helper ({reason})")
        })?;
        return Ok(Some(ChainedHook::HttpGet { url }));
    }
    if let Some(sleep) = &handler.sleep {
        let seconds = u32::try_from(sleep.seconds)
            .map_err(|_| "its preStop sleep has an invalid duration".to_string())?;
        return Ok(Some(ChainedHook::Sleep { seconds }));
    }
    Err("its preStop hook is of a kind drain-webhook cannot chain (tcpSocket)".into())
}

/// What choosing the hooks left for the later phases.
pub(super) struct Chosen {
    /// Names of the helper's init container and volume (existing ones reused), when a
    /// container takes the helper.
    pub(super) helper: Option<HelperInjection>,
    /// The longest preStop plus budget (plus the wait for idle ports) of a planned container.
    pub(super) needed: u64,
}

/// Chooses and writes the hook of every container still to plan, proxies first: apps stop S
/// after the last proxy got its signal, even when a proxy's own chained sleep makes it stop
/// later than D.
pub(super) fn choose_hooks(
    spec: &SpecShape,
    overrides: &Overrides,
    resolved: &Resolved,
    plan: &mut Plan,
) -> Chosen {
    let notify_target = (resolved.previous.is_none() && overrides.notify.is_some())
        .then(|| first_notify_target(&plan.containers))
        .flatten();
    let notify: Vec<HttpUrl> = overrides
        .notify
        .as_ref()
        .map(|n| n.value.clone())
        .unwrap_or_default();
    let wait_idle_ports = overrides
        .wait_idle
        .as_ref()
        .map(|w| w.value.clone())
        .unwrap_or_default();
    let waiting = wait_idle_targets(spec, &plan.containers, &wait_idle_ports);
    let mut chosen = Chosen {
        helper: None,
        needed: 0,
    };
    let proxies = (0..plan.containers.len()).filter(|&i| plan.containers[i].role == Role::Proxy);
    let others = (0..plan.containers.len()).filter(|&i| plan.containers[i].role != Role::Proxy);
    let order: Vec<usize> = proxies.chain(others).collect();
    for index in order {
        let planned = &plan.containers[index];
        if planned.action != Action::Planned {
            continue;
        }
        let Some(container) = spec.containers.get(planned.index) else {
            continue;
        };
        let request = HookRequest {
            notify: if notify_target == Some(index) {
                notify.clone()
            } else {
                Vec::new()
            },
            wait_idle: if waiting.contains(&index) {
                wait_idle_ports.clone()
            } else {
                Vec::new()
            },
            ..HookRequest::new(plan, planned.role, container, overrides)
        };
        let mut decision = resolved
            .choice
            .decide(container, request, &mut plan.warnings)
            .map_err(|untouched| {
                plan.warnings.extend(untouched.warning);
                untouched.reason
            });
        if let Ok(hook) = &decision
            && hook.kind == HookKind::Helper
        {
            let names = chosen.helper.get_or_insert_with(|| {
                existing_helper(spec, resolved.previous.as_ref())
                    .unwrap_or_else(|| new_helper_names(spec, &resolved.delivery))
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
        if let Some(need) = write_hook(plan, index, decision, resolved.budget) {
            chosen.needed = chosen.needed.max(need);
        }
    }
    chosen
}

/// Writes one container's decision into the plan; returns the grace period it needs when it
/// is planned.
fn write_hook(
    plan: &mut Plan,
    index: usize,
    decision: Result<ChosenHook, String>,
    budget: u32,
) -> Option<u64> {
    let entry = &mut plan.containers[index];
    let hook = match decision {
        Ok(hook) => hook,
        Err(note) => {
            entry.action = Action::Untouched;
            entry.note = Some(note);
            return None;
        }
    };
    let extra_wait = if hook.wait_idle.is_empty() { 0 } else { budget };
    let need = u64::from(hook.pre_stop_seconds) + u64::from(extra_wait) + u64::from(budget);
    entry.hook = Some(hook.kind);
    entry.pre_stop_seconds = Some(hook.pre_stop_seconds);
    entry.sigterm_at = Some(hook.pre_stop_seconds);
    // The helper may run the delay plus up to B (waiting for idle ports, for the proxy to exit
    // after its signal, or for the user's chained hook); the grace period still leaves B after
    // that for wait-idle containers.
    entry.hook_max_seconds =
        (hook.kind == HookKind::Helper).then(|| hook.pre_stop_seconds.saturating_add(budget));
    entry.signal = hook.signal;
    entry.notify = hook.notify;
    entry.wait_idle = hook.wait_idle;
    entry.chained = hook.chained;
    entry.note = hook.note;
    // Last line of defence: a helper command its own parser would refuse fails at run time and
    // the pod gets no drain at all; such a container stays as it is.
    if let Some(reason) = entry.helper_rejection() {
        plan.warnings.push(format!(
            "container {:?} left untouched: {reason}",
            entry.name
        ));
        let untouched = ContainerPlan::new(&entry.name, false, entry.index, entry.role);
        *entry = ContainerPlan {
            note: Some(reason),
            ..untouched
        };
        return None;
    }
    Some(need)
}

/// The container that calls `drain.io/notify`: the first planned app, else the first planned
/// proxy (the URLs are on the pod's shared loopback: calling them once per pod is the intent).
pub(super) fn first_notify_target(containers: &[ContainerPlan]) -> Option<usize> {
    let planned = |role| {
        containers
            .iter()
            .position(|c| c.action == Action::Planned && c.role == role)
    };
    planned(Role::App).or_else(|| planned(Role::Proxy))
}

/// Containers that wait for idle ports: those declaring one of the ports; when no container
/// declares any, every planned app.
pub(super) fn wait_idle_targets(
    spec: &SpecShape,
    containers: &[ContainerPlan],
    ports: &[u16],
) -> Vec<usize> {
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

pub(super) struct HookRequest {
    pub(super) delay: u32,
    pub(super) chained: Result<Option<ChainedHook>, String>,
    pub(super) signal: Option<&'static str>,
    pub(super) notify: Vec<HttpUrl>,
    pub(super) wait_idle: Vec<u16>,
}

impl HookRequest {
    /// The delay of its role (apps S after the last proxy), the user's own hook and the
    /// proxy's graceful signal; no notify and no wait-idle.
    fn new(plan: &Plan, role: Role, container: &ContainerShape, overrides: &Overrides) -> Self {
        // The user vouches that the image's STOPSIGNAL is already graceful: no signal to send.
        let image_stops_gracefully = overrides.graceful_stop.is_some();
        HookRequest {
            delay: match role {
                Role::App if plan.has_front_proxy => {
                    last_proxy_stop(&plan.containers, plan.delay).saturating_add(plan.stagger)
                }
                _ => plan.delay,
            },
            chained: chainable(container),
            signal: (role == Role::Proxy && !image_stops_gracefully)
                .then(|| graceful_signal(container.image.as_deref().unwrap_or_default()))
                .flatten(),
            notify: Vec::new(),
            wait_idle: Vec::new(),
        }
    }
}

pub(super) struct ChosenHook {
    pub(super) kind: HookKind,
    pub(super) pre_stop_seconds: u32,
    pub(super) signal: Option<&'static str>,
    pub(super) notify: Vec<HttpUrl>,
    pub(super) wait_idle: Vec<u16>,
    pub(super) chained: Option<ChainedHook>,
    /// Said in the plan next to the container (hook mode native keeping the user's signal).
    pub(super) note: Option<String>,
}

pub(super) struct HookChoice {
    pub(super) mode: HookMode,
    pub(super) windows: bool,
    pub(super) version: Option<KubeVersion>,
    pub(super) share_process_namespace: bool,
}

/// Why a container is left as it is (its `note` in the plan), and the warning that says so.
pub(super) struct Untouched {
    pub(super) reason: String,
    pub(super) warning: Option<String>,
}

impl Untouched {
    /// Nothing to warn about (no delay is needed).
    fn quietly(reason: impl Into<String>) -> Self {
        Untouched {
            reason: reason.into(),
            warning: None,
        }
    }

    fn warned(name: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Untouched {
            warning: Some(format!("container {name:?} left untouched: {reason}")),
            reason,
        }
    }

    /// The user's own hook stays: said so in the warning.
    fn keeping_its_hook(name: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Untouched {
            warning: Some(format!(
                "container {name:?} left untouched: {reason}; its hook is kept as it is"
            )),
            reason,
        }
    }
}

impl HookChoice {
    /// Picks sleep or helper for one container (DESIGN.md section 3); `Err` leaves it as it is.
    pub(super) fn decide(
        &self,
        container: &ContainerShape,
        request: HookRequest,
        warnings: &mut Vec<String>,
    ) -> Result<ChosenHook, Untouched> {
        let name = &container.name;
        let chained = request
            .chained
            .map_err(|reason| Untouched::keeping_its_hook(name, reason))?;
        let mut signal = request.signal;
        // Hook mode native on Linux: the kubelet sends the signal (`lifecycle.stopSignal`), so
        // it needs no helper and no PID 1 of its own.
        let native = self.mode == HookMode::Native && !self.windows;
        if let Some(wanted) = signal
            && self.windows
            && self.mode == HookMode::Native
        {
            warnings.push(format!(
                "container {name:?}: Windows pod, so hook mode native writes no lifecycle.stopSignal {wanted} (the API allows only SIGTERM and SIGKILL on Windows, and drain-helper does not run there): native sleep only"
            ));
            signal = None;
        }
        if let Some(wanted) = signal
            && self.share_process_namespace
            && !native
        {
            warnings.push(format!(
                "container {name:?}: shareProcessNamespace is on, so drain-helper cannot find the proxy's PID 1; it gets its image's stop signal instead of {wanted}"
            ));
            signal = None;
        }
        // A chained native sleep just adds to the delay; it needs no helper.
        let (pre_stop_seconds, chained) = match chained {
            Some(ChainedHook::Sleep { seconds }) => (request.delay.saturating_add(seconds), None),
            other => (request.delay, other),
        };
        let needs_helper = chained.is_some()
            || (signal.is_some() && !native)
            || !request.notify.is_empty()
            || !request.wait_idle.is_empty();
        let chains = chained.is_some();
        let kind = if self.windows {
            self.windows_kind(name, chains, needs_helper, warnings)?
        } else {
            self.linux_kind(name, chains, needs_helper, warnings)?
        };
        let no_delay = || Untouched::quietly("no delay is needed (the delay is 0)");
        if kind == HookKind::Sleep {
            if pre_stop_seconds == 0 {
                return Err(no_delay());
            }
            let (kind, signal, note) = if native {
                native::stop_signal(container, signal, warnings)
            } else {
                (kind, None, None)
            };
            return Ok(ChosenHook {
                kind,
                pre_stop_seconds,
                signal,
                notify: Vec::new(),
                wait_idle: Vec::new(),
                chained: None,
                note,
            });
        }
        if pre_stop_seconds == 0 && !needs_helper {
            return Err(no_delay());
        }
        Ok(ChosenHook {
            kind,
            pre_stop_seconds,
            signal,
            notify: request.notify,
            wait_idle: request.wait_idle,
            chained,
            note: None,
        })
    }

    fn sleep_available(&self) -> Option<bool> {
        self.version.map(KubeVersion::supports_sleep_action)
    }

    /// Windows pods: the native sleep only (drain-helper is a Linux binary).
    fn windows_kind(
        &self,
        name: &str,
        chains: bool,
        needs_helper: bool,
        warnings: &mut Vec<String>,
    ) -> Result<HookKind, Untouched> {
        if self.sleep_available() != Some(true) {
            let reason = match self.version {
                Some(v) => format!(
                    "Windows pod on Kubernetes {v}: the native sleep action needs 1.30 and drain-helper does not run on Windows"
                ),
                None => "Windows pod and the Kubernetes version is unknown: the native sleep action needs 1.30 (pass --kube-version) and drain-helper does not run on Windows".into(),
            };
            return Err(Untouched::warned(name, reason));
        }
        if chains {
            return Err(Untouched::warned(
                name,
                "Windows pod: its own preStop hook cannot be chained without drain-helper, which does not run on Windows",
            ));
        }
        if needs_helper {
            warnings.push(format!(
                "container {name:?}: Windows pod, so only the native sleep is used (no notify, wait-idle or graceful signal)"
            ));
        }
        Ok(HookKind::Sleep)
    }

    /// Linux pods: what the hook mode asks for, and what the cluster offers.
    fn linux_kind(
        &self,
        name: &str,
        chains: bool,
        needs_helper: bool,
        warnings: &mut Vec<String>,
    ) -> Result<HookKind, Untouched> {
        let sleep_available = self.sleep_available();
        match self.mode {
            HookMode::Helper => Ok(HookKind::Helper),
            // Native is the native sleep too; `decide` adds its stop signal.
            HookMode::Sleep | HookMode::Native => {
                let mode = self.mode;
                if let Some(version) = self.version
                    && sleep_available == Some(false)
                {
                    return Err(Untouched::warned(
                        name,
                        format!(
                            "hook mode {mode} is set but Kubernetes {version} has no native sleep action (1.30+)"
                        ),
                    ));
                }
                if chains {
                    return Err(Untouched::keeping_its_hook(
                        name,
                        format!(
                            "its own preStop hook cannot be chained with hook mode {mode} (use helper or auto)"
                        ),
                    ));
                }
                if needs_helper {
                    let unused = if mode == HookMode::Native {
                        "notify and wait-idle are"
                    } else {
                        "notify, wait-idle and the graceful stop signal are"
                    };
                    warnings.push(format!(
                        "container {name:?}: hook mode {mode}, so {unused} not used"
                    ));
                }
                Ok(HookKind::Sleep)
            }
            HookMode::Auto if needs_helper || sleep_available != Some(true) => Ok(HookKind::Helper),
            HookMode::Auto => Ok(HookKind::Sleep),
        }
    }
}
