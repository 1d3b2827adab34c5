//! The adaptive hold as the planner asks for it: on or off for the pod, what each role
//! requests, and the timing a helper hook gets (docs/decisions.md, "The adaptive hold").

use super::resolve::Resolved;
use super::timing::Timing;
use super::{Action, ContainerPlan, Plan, Role};
use crate::pod::SpecShape;

/// The adaptive hold as resolved for the pod: on when D > 0 and M > D.
pub(super) struct HoldSettings {
    pub(super) enabled: bool,
    pub(super) quiet: u32,
    pub(super) cap: u32,
    pub(super) probe_periods: Vec<u32>,
}

impl HoldSettings {
    pub(super) fn new(resolved: &Resolved, spec: &SpecShape) -> Self {
        HoldSettings {
            // D = 0 asks for no delay at all; M <= D leaves nothing to adapt.
            enabled: resolved.delay > 0 && resolved.max_delay > resolved.delay,
            quiet: resolved.quiet,
            cap: resolved.max_delay,
            probe_periods: spec.connecting_probe_periods(),
        }
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

/// How a container's stop signal is to be timed once its hook kind is known.
pub(super) enum HoldRequest {
    /// At the delay plus `stagger`.
    Fixed { stagger: u32 },
    /// The adaptive hold from the delay (when the hook is the helper); `needs_helper`: the role
    /// makes `auto` choose the helper for it (a front proxy and the app behind it), rather than
    /// only holding adaptively when the helper runs anyway (docs/decisions.md).
    Adaptive {
        quiet: u32,
        cap: u32,
        stagger: u32,
        probe_periods: Vec<u32>,
        needs_helper: bool,
    },
    /// An app behind an adaptive proxy: until the proxy's listeners are gone, then `stagger`.
    AfterProxy {
        ports: Vec<u16>,
        until: u32,
        stagger: u32,
    },
}

impl HoldRequest {
    pub(super) fn needs_helper(&self) -> bool {
        match self {
            HoldRequest::Fixed { .. } => false,
            HoldRequest::Adaptive { needs_helper, .. } => *needs_helper,
            HoldRequest::AfterProxy { .. } => true,
        }
    }

    pub(super) fn stagger(&self) -> u32 {
        match self {
            HoldRequest::Fixed { stagger }
            | HoldRequest::Adaptive { stagger, .. }
            | HoldRequest::AfterProxy { stagger, .. } => *stagger,
        }
    }

    /// The timing of a helper hook whose delay (the floor) is `floor`.
    pub(super) fn helper_timing(self, floor: u32) -> Timing {
        match self {
            HoldRequest::Adaptive {
                quiet,
                cap,
                stagger,
                probe_periods,
                ..
            } if cap > floor => Timing::Adaptive {
                floor,
                quiet,
                cap,
                stagger,
                probe_periods,
            },
            HoldRequest::AfterProxy {
                ports,
                until,
                stagger,
            } => Timing::AfterProxy {
                floor,
                ports,
                until: until.max(floor),
                stagger,
            },
            other => Timing::Fixed {
                seconds: floor.saturating_add(other.stagger()),
            },
        }
    }
}

/// The TCP ports the pod's adaptive front proxies declare, and the latest signal among them,
/// when any planned front proxy holds adaptively.
pub(super) fn adaptive_proxies(plan: &Plan, spec: &SpecShape) -> Option<(Vec<u16>, u32)> {
    let adaptive: Vec<&ContainerPlan> = plan
        .containers
        .iter()
        .filter(|c| c.role == Role::Proxy && !c.init_container)
        .filter(|c| matches!(c.action, Action::Planned | Action::AlreadyPlanned))
        .filter(|c| c.timing.as_ref().is_some_and(Timing::is_adaptive))
        .collect();
    let until = adaptive
        .iter()
        .filter_map(|c| c.timing.as_ref().map(Timing::latest))
        .max()?;
    let mut ports: Vec<u16> = adaptive
        .iter()
        .filter_map(|c| spec.containers.get(c.index))
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))
        .filter_map(|p| u16::try_from(p.container_port).ok().filter(|&p| p > 0))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    Some((ports, until))
}
