//! Choosing every container's hook, proxies first, and writing it into the plan.

use super::choice::{ChosenHook, HookRequest};
use super::hold::HoldSettings;
use super::injection::{HELPER_DIR, existing_helper, mount_conflict, new_helper_names};
use super::timing::HoldRequest;
use super::{
    Action, ContainerPlan, HelperInjection, HookKind, Plan, PlannedHook, RecordPlan, Resolved, Role,
};
use crate::annotations::Overrides;
use crate::helper::net::HttpUrl;
use crate::pod::SpecShape;

/// Seconds before the end of its budget at which a still-draining proxy gets its fast stop:
/// the kubelet's SIGKILL comes at the grace period's end, and the proxy needs a moment to
/// close what is left (docs/proof.md, "Long streams").
const FAST_STOP_MARGIN: u32 = 2;

/// What choosing the hooks left for the later phases.
pub(super) struct Chosen {
    /// Names of the helper's init container and volume (existing ones reused), when a
    /// container takes the helper.
    pub(super) helper: Option<HelperInjection>,
    /// The longest preStop plus budget (plus the wait for idle ports) of a planned container.
    pub(super) needed: u64,
}

/// Chooses and writes the hook of every container still to plan, proxies first: an app's floor
/// is the latest proxy floor, even when a proxy's own chained sleep raises it above D, and its
/// signal comes S after the proxies'.
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
    let hold = HoldSettings::new(resolved, spec, plan);
    let mut chosen = Chosen {
        helper: None,
        needed: 0,
    };
    let proxies = (0..plan.containers.len()).filter(|&i| plan.containers[i].role == Role::Proxy);
    let others = (0..plan.containers.len()).filter(|&i| plan.containers[i].role != Role::Proxy);
    let order: Vec<usize> = proxies.chain(others).collect();
    // What an app behind the front proxies asks for: the same for every app, known once the
    // proxies (first in the order) are planned.
    let mut behind_proxy = None;
    // Apps whose only front proxies are excluded follow those (known before the loop: the
    // excluded proxies are not planned).
    let apps_planned = plan
        .containers
        .iter()
        .any(|c| c.action == Action::ToPlan && c.role == Role::App);
    let behind_excluded =
        (!plan.has_front_proxy && !plan.excluded_proxies.is_empty() && apps_planned)
            .then(|| {
                let request = hold.behind_excluded_proxy(plan, spec);
                let warning = excluded_proxy_warning(plan, spec, &request);
                plan.warnings.push(warning);
                request.ok()
            })
            .flatten();
    for index in order {
        let planned = &plan.containers[index];
        if planned.action != Action::ToPlan {
            continue;
        }
        let Some(container) = spec.containers.get(planned.index) else {
            continue;
        };
        // A front proxy holds adaptively; an app behind it follows it (`behind_proxy`); a lone
        // app holds adaptively when it runs the helper anyway.
        let floor_and_hold = match planned.role {
            Role::Proxy => (plan.delay, hold.adaptive(0, true)),
            Role::App if plan.has_front_proxy => behind_proxy
                .get_or_insert_with(|| hold.behind_proxy(plan, spec))
                .clone(),
            Role::App if let Some(behind) = &behind_excluded => behind.clone(),
            Role::App => (plan.delay, hold.adaptive(0, false)),
            _ => (plan.delay, HoldRequest::Fixed { stagger: 0 }),
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
            ..HookRequest::new(planned.role, container, overrides, floor_and_hold)
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
            } else {
                // Before write_hook, whose last check parses the whole command, `--record`
                // included.
                plan.containers[index].record = Some(RecordPlan::of(container));
            }
        }
        if let Some(need) = write_hook(plan, index, decision, resolved.budget) {
            chosen.needed = chosen.needed.max(need);
        }
    }
    let helper_hooks = plan
        .containers
        .iter()
        .any(|c| c.planned_hook().is_some() && c.hook == Some(HookKind::Helper));
    if hold.off_for_host_network && helper_hooks {
        plan.warnings.push(format!(
            "hostNetwork pod: drain-helper holds for the fixed {}s (drain.io/delay), not adaptively up to {}s: on the node's network namespace it would count the node's connections (the kubelet, node exporters, other hostNetwork pods) as the pod's and hold every deletion to drain.io/max-delay",
            plan.delay, plan.max_delay
        ));
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
    let latest = hook.timing.latest();
    let need = u64::from(latest) + u64::from(extra_wait) + u64::from(budget);
    entry.hook = Some(hook.kind);
    entry.signal = hook.signal;
    // The helper may run until its latest signal plus up to B (waiting for idle ports, for the
    // proxy to exit after its signal, or for the user's chained hook); the grace period still
    // leaves B after that for wait-idle containers.
    // A proxy that gets a fast stop at `--max` gets it FAST_STOP_MARGIN before the end of B,
    // so that its last streams end before the kubelet's SIGKILL (grace >= latest + B).
    let margin = entry.fast_signal().map_or(0, |_| FAST_STOP_MARGIN);
    let max_seconds = (hook.kind == HookKind::Helper).then(|| {
        latest
            .saturating_add(budget.saturating_sub(margin))
            .max(latest)
    });
    entry.action = Action::Planned(PlannedHook {
        timing: hook.timing,
        max_seconds,
    });
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

/// What an app behind excluded front proxies gets, in words: it follows their ports, or it
/// cannot (a proxy declares none) and stops as a lone app while they may still forward to it.
fn excluded_proxy_warning(
    plan: &Plan,
    spec: &SpecShape,
    request: &Result<(u32, HoldRequest), Vec<String>>,
) -> String {
    let names: Vec<String> = plan
        .excluded_proxies
        .iter()
        .filter_map(|&i| spec.containers.get(i))
        .map(|c| format!("{:?}", c.name))
        .collect();
    let names = names.join(", ");
    match request {
        Ok((
            _,
            HoldRequest::AfterProxy {
                ports,
                until,
                stagger,
            },
        )) => format!(
            "front proxy {names} is excluded by drain.io/exclude (it keeps its own preStop): the apps behind it wait until its port(s) {} close, at most until {until}s after deletion, then {stagger}s, so that it never forwards to a stopped app",
            ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Ok(_) => format!("front proxy {names} is excluded by drain.io/exclude"),
        Err(unfollowable) => format!(
            "front proxy {names} is excluded by drain.io/exclude, and {} declares no containerPort: the apps behind it stop at drain.io/delay ({}s) as if alone, while it may still forward to them; declare its ports so that the apps follow it, or remove it from drain.io/exclude",
            unfollowable.join(", "),
            plan.delay
        ),
    }
}

/// The container that calls `drain.io/notify`: the first app to plan, else the first proxy to
/// plan (the URLs are on the pod's shared loopback: calling them once per pod is the intent).
pub(super) fn first_notify_target(containers: &[ContainerPlan]) -> Option<usize> {
    let planned = |role| {
        containers
            .iter()
            .position(|c| c.action == Action::ToPlan && c.role == role)
    };
    planned(Role::App).or_else(|| planned(Role::Proxy))
}

/// Containers that wait for idle ports: those declaring one of the ports, and with a front
/// proxy among them the apps behind it too; when no container declares any, every planned
/// app.
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
    let planned = |c: &&ContainerPlan| c.action == Action::ToPlan && !c.init_container;
    let declaring: Vec<usize> = containers
        .iter()
        .enumerate()
        .filter(|(_, c)| planned(c) && declares(c))
        .map(|(i, _)| i)
        .collect();
    // A front proxy's clients stay connected until the proxy has drained them, after its
    // signal: the apps behind it wait for the same ports before their SIGTERM, so nginx never
    // forwards to a stopped app (issue 27).
    let proxy_waits = declaring.iter().any(|&i| containers[i].role == Role::Proxy);
    if proxy_waits {
        let apps = containers
            .iter()
            .enumerate()
            .filter(|(i, c)| planned(c) && c.role == Role::App && !declaring.contains(i))
            .map(|(i, _)| i)
            .collect::<Vec<_>>();
        return declaring.into_iter().chain(apps).collect();
    }
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
