//! The adaptive hold as the planner asks for it: on or off for the pod, what each role
//! requests, and the timing a helper hook gets (docs/decisions.md, "The adaptive hold").

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::resolve::Resolved;
use super::timing::{HoldRequest, Timing};
use super::{ContainerPlan, Plan, Role, latest_proxy_floor};
use crate::pod::{ContainerShape, ProbeTarget, SpecShape};

/// The adaptive hold as resolved for the pod: on when D > 0, M > D and the pod is not on the
/// host network ([`hold_adapts`]).
pub(super) struct HoldSettings {
    pub(super) enabled: bool,
    /// The hold would be on but the pod shares the node's network namespace: its counters and
    /// socket table are the node's (the kubelet, node exporters, every other hostNetwork pod),
    /// so it would practically never be quiet and every deletion would hold to M.
    pub(super) off_for_host_network: bool,
    pub(super) quiet: u32,
    pub(super) cap: u32,
    pub(super) probe_periods: Vec<u32>,
}

/// Whether the pod's helper holds adapt (up to M) rather than hold for the fixed D: D > 0,
/// M > D and the pod not on the node's network namespace.
pub(super) fn hold_adapts(resolved: &Resolved, spec: &SpecShape) -> bool {
    hold_wanted(resolved) && spec.host_network != Some(true)
}

/// D = 0 asks for no delay at all; M <= D leaves nothing to adapt.
fn hold_wanted(resolved: &Resolved) -> bool {
    resolved.delay > 0 && resolved.max_delay > resolved.delay
}

impl HoldSettings {
    pub(super) fn new(resolved: &Resolved, spec: &SpecShape, plan: &Plan) -> Self {
        // Decided once, by the planner (`Plan::hold_adapts`, which audit reads too): a hold
        // that is wanted but does not adapt is off for the host network, the one other reason.
        HoldSettings {
            enabled: plan.hold_adapts,
            off_for_host_network: hold_wanted(resolved) && !plan.hold_adapts,
            quiet: resolved.quiet,
            cap: resolved.max_delay,
            probe_periods: probe_schedule(spec, &plan.containers),
        }
    }

    /// What an app behind the pod's front proxies asks for, once they are planned: from the
    /// latest proxy floor, follow their listeners (or, when they declare no port, hold itself)
    /// at most until their latest signal, then S; behind fixed proxies, S after the last
    /// proxy's signal.
    pub(super) fn behind_proxy(&self, plan: &Plan, spec: &SpecShape) -> (u32, HoldRequest) {
        let stagger = plan.stagger;
        let hold = match adaptive_proxies(plan, spec) {
            Some((ports, until)) if ports.is_empty() => HoldRequest::Adaptive {
                quiet: self.quiet,
                cap: until,
                stagger,
                probe_periods: self.probe_periods.clone(),
                needs_helper: true,
            },
            Some((ports, until)) => HoldRequest::AfterProxy {
                ports,
                until,
                stagger,
            },
            None => HoldRequest::Fixed { stagger },
        };
        (latest_proxy_floor(&plan.containers, plan.delay), hold)
    }

    /// What an app asks for when the pod's only front proxies are excluded (they keep their
    /// user's own hooks): follow their declared ports from D until they close, at most until
    /// the cap (or D, the hold off) or the longest native sleep of theirs, then S. `Err` with
    /// the proxies' names when one declares no port: nothing to follow.
    pub(super) fn behind_excluded_proxy(
        &self,
        plan: &Plan,
        spec: &SpecShape,
    ) -> Result<(u32, HoldRequest), Vec<String>> {
        let proxies: Vec<&ContainerShape> = plan
            .excluded_proxies
            .iter()
            .filter_map(|&i| spec.containers.get(i))
            .collect();
        let unfollowable: Vec<String> = proxies
            .iter()
            .filter(|c| tcp_ports(c).next().is_none())
            .map(|c| c.name.clone())
            .collect();
        if !unfollowable.is_empty() {
            return Err(unfollowable);
        }
        let mut ports: Vec<u16> = proxies.iter().flat_map(|c| tcp_ports(c)).collect();
        ports.sort_unstable();
        ports.dedup();
        let own_sleep = proxies
            .iter()
            .filter_map(|c| c.lifecycle.as_ref()?.pre_stop.as_ref()?.sleep.as_ref())
            .map(|sleep| u32::try_from(sleep.seconds).unwrap_or(0))
            .max()
            .unwrap_or(0);
        let bound = if self.enabled { self.cap } else { plan.delay };
        let hold = HoldRequest::AfterProxy {
            ports,
            until: bound.max(own_sleep),
            stagger: plan.stagger,
        };
        Ok((plan.delay, hold))
    }

    pub(super) fn adaptive(&self, stagger: u32, needs_helper: bool) -> HoldRequest {
        if !self.enabled {
            return HoldRequest::Fixed { stagger };
        }
        HoldRequest::Adaptive {
            quiet: self.quiet,
            cap: self.cap,
            stagger,
            probe_periods: self.probe_periods.clone(),
            needs_helper,
        }
    }
}

/// The TCP ports the pod's adaptive front proxies declare, and the latest signal among them,
/// when any planned front proxy holds adaptively.
fn adaptive_proxies(plan: &Plan, spec: &SpecShape) -> Option<(Vec<u16>, u32)> {
    // Walked twice rather than collected: this runs on every review of a pod with a proxy.
    let adaptive = || {
        plan.containers
            .iter()
            .filter(|c| c.role == Role::Proxy && !c.init_container)
            .filter(|c| c.timing().is_some_and(Timing::is_adaptive))
    };
    let until = adaptive().filter_map(|c| c.latest_signal()).max()?;
    let mut ports = Vec::new();
    for proxy in adaptive() {
        let before = ports.len();
        if let Some(container) = spec.containers.get(proxy.index) {
            ports.extend(tcp_ports(container));
        }
        // A proxy that declares no port cannot be followed: its listeners could close long
        // after the others'. Then the app holds itself (an empty list), never follows only
        // some proxies.
        if ports.len() == before {
            return Some((Vec::new(), until));
        }
    }
    ports.sort_unstable();
    ports.dedup();
    Some((ports, until))
}

/// The TCP ports a container declares.
fn tcp_ports(container: &ContainerShape) -> impl Iterator<Item = u16> + '_ {
    container
        .ports
        .iter()
        .flatten()
        .filter(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))
        .filter_map(|p| u16::try_from(p.container_port).ok().filter(|&p| p > 0))
}

/// The periods of the probes that connect into the pod, each listed once per connection one
/// of its runs opens there (`--probe-every`): a probe a front proxy answers (defined on the
/// proxy, or aimed at a port the proxy declares) is also forwarded by it to the app behind it
/// over loopback, a second accepted connection in the pod, since nginx opens a new upstream
/// connection per request by default. Sorted.
pub(super) fn probe_schedule(spec: &SpecShape, containers: &[ContainerPlan]) -> Vec<u32> {
    let probes = spec.connecting_probes();
    // Most pods have no probe that connects: nothing to list, nothing to collect for it.
    if probes.is_empty() {
        return Vec::new();
    }
    let proxies: Vec<&ContainerShape> = containers
        .iter()
        .filter(|c| c.role == Role::Proxy && !c.init_container)
        .filter_map(|c| spec.containers.get(c.index))
        .collect();
    let proxy_ports: Vec<i32> = proxies
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .map(|p| p.container_port)
        .collect();
    let mut periods = Vec::new();
    for (init, index, container, period, target) in probes {
        let on_proxy = containers
            .iter()
            .any(|c| c.init_container == init && c.index == index && c.role == Role::Proxy);
        let at_proxy = target_port(container, target).is_some_and(|p| proxy_ports.contains(&p));
        let connections = if on_proxy || at_proxy { 2 } else { 1 };
        periods.extend(std::iter::repeat_n(period, connections));
    }
    periods.sort_unstable();
    periods
}

/// A probe's port as a number: given as one, or named after one of its container's ports.
fn target_port(container: &ContainerShape, target: &ProbeTarget) -> Option<i32> {
    match target.port.as_ref()? {
        IntOrString::Int(port) => Some(*port),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port),
    }
}
