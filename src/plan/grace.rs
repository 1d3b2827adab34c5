//! Sizing the grace period, and what it leaves each container after its latest signal.

use super::resolve::RaisedFloors;
use super::{Action, ContainerPlan, HookKind, Plan, PlanError, Status};
use crate::annotations::{self, Overrides};
use crate::pod::SpecShape;
use crate::profiles::Profile;
use crate::settings::{KUBERNETES_DEFAULT_GRACE, Settings};

/// How sizing the grace period ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sized {
    /// `plan.grace_after` holds the new grace period.
    Fits,
    /// Above the maximum because of the pod's own grace period: the pod is left untouched.
    TooLong,
}

/// What made the grace period grow: the planned containers' need and where D, S and B came
/// from, so that a denial can name it.
pub(super) struct GraceGrowth<'a> {
    /// The longest preStop plus budget (plus the wait for idle ports) of a planned container.
    pub(super) needed: u64,
    pub(super) overrides: &'a Overrides,
    /// The profile floors that raised D or B (see `apply_profile`).
    pub(super) raised: RaisedFloors,
}

/// Grace: never shortened, long enough for every planned container's delay plus B. Above the
/// maximum it is a denial naming the annotations that pushed it there, or, when the pod's own
/// grace period alone does, the pod is left as it is with a warning.
pub(super) fn size_grace(
    plan: &mut Plan,
    spec_grace: Option<i64>,
    growth: &GraceGrowth<'_>,
    settings: &Settings,
) -> Result<Sized, PlanError> {
    let effective_grace = spec_grace.unwrap_or(i64::from(KUBERNETES_DEFAULT_GRACE));
    let needed = i64::try_from(growth.needed).unwrap_or(i64::MAX);
    let grace_after = effective_grace.max(needed);
    if grace_after > i64::from(settings.max_grace) && grace_after > effective_grace {
        let causes = grace_causes(growth.overrides, plan.profile, growth.raised);
        if !causes.is_empty() {
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
        let reason = format!(
            "the grace period would become {grace_after}s, above the maximum of {}s, because the pod's own grace period is already {effective_grace}s",
            settings.max_grace
        );
        plan.warnings
            .push(format!("drain-webhook left the pod untouched: {reason}"));
        plan.reason = Some(reason);
        // Left as they are: none keeps the hook, signal or timing it was about to get.
        plan.containers
            .iter_mut()
            .filter(|c| c.planned_hook().is_some())
            .for_each(|c| {
                let untouched = ContainerPlan::new(&c.name, c.init_container, c.index, c.role);
                *c = ContainerPlan {
                    note: Some("grace period would exceed the maximum".into()),
                    ..untouched
                };
            });
        return Ok(Sized::TooLong);
    }
    plan.grace_after = grace_after;
    plan.set_grace = grace_after != effective_grace;
    Ok(Sized::Fits)
}

/// A liveness or startup probe that fails during the drain kills the container with the
/// probe's own `terminationGracePeriodSeconds`: when that is shorter than the container's
/// preStop plus B, a probe kill cuts the drain short. Warned, not changed: the probe is the
/// user's.
pub(super) fn probe_warnings(plan: &mut Plan, spec: &SpecShape) {
    for c in plan
        .containers
        .iter()
        .filter(|c| c.planned_hook().is_some())
    {
        let Some(container) = spec.container_at(c.init_container, c.index) else {
            continue;
        };
        let need = i64::from(c.latest_signal().unwrap_or(0)) + i64::from(plan.shutdown_budget);
        for (kind, probe) in [
            ("livenessProbe", &container.liveness_probe),
            ("startupProbe", &container.startup_probe),
        ] {
            if let Some(grace) = probe
                .as_ref()
                .and_then(|p| p.termination_grace_period_seconds)
                && grace < need
            {
                plan.warnings.push(format!(
                    "container {:?}: its {kind}.terminationGracePeriodSeconds ({grace}s) is shorter than its preStop plus shutdown budget ({need}s): a probe failure during the drain kills it early; raise it to at least {need} or remove it",
                    c.name
                ));
            }
        }
    }
}

/// On a reinvocation (DESIGN.md section 5) something that ran after us may have lowered the
/// grace period below the one we planned. The API server accepts a native preStop sleep only up
/// to the grace period (`validateSleepAction` in pkg/apis/core/validation: "must be greater
/// than 0 and less than terminationGracePeriodSeconds"), so a sleep of ours above it is a
/// denial that names the cause, rather than the API server's bare rejection; we do not shrink
/// hooks the user's pod already carries, nor raise the grace back over the later webhook's
/// decision (docs/decisions.md). A drain that still validates but lost part of B is warned.
pub(super) fn check_lowered_grace(
    plan: &mut Plan,
    spec: &SpecShape,
    previous: Option<&Status>,
) -> Result<(), PlanError> {
    let Some(ours) = previous.map(|s| s.grace) else {
        return Ok(());
    };
    let grace = plan.grace_after;
    if grace >= ours {
        return Ok(());
    }
    let budget = i64::from(plan.shutdown_budget);
    for c in plan
        .containers
        .iter()
        .filter(|c| matches!(c.action, Action::AlreadyPlanned(_)))
    {
        let sleep = spec
            .container_at(c.init_container, c.index)
            .and_then(|container| container.lifecycle.as_ref())
            .and_then(|l| l.pre_stop.as_ref())
            .and_then(|h| h.sleep.as_ref())
            .map(|s| s.seconds)
            .filter(|_| c.hook != Some(HookKind::Helper));
        if let Some(sleep) = sleep.filter(|&s| s > grace) {
            return Err(PlanError::GraceLoweredBelowSleep {
                container: c.name.clone(),
                sleep,
                grace,
                ours,
            });
        }
        let stop = i64::from(c.latest_signal().unwrap_or(0));
        if stop + budget > grace {
            plan.warnings.push(format!(
                "terminationGracePeriodSeconds was lowered to {grace}s after drain-webhook planned {ours}s: container {:?} now has {}s after its preStop instead of its shutdown budget of {budget}s",
                c.name,
                (grace - stop).max(0)
            ));
        }
    }
    Ok(())
}

/// Things that end a pod before its grace period does, whatever it says (docs/limits.md has
/// the sources). The spot notices apply to pods that ask for spot nodes; the scale-down bound
/// to every pod on an autoscaled node pool.
struct HardLimit {
    seconds: i64,
    what: &'static str,
    /// nodeSelector or required node-affinity labels (key, value), any of which marks the
    /// pod as running there; empty: every pod.
    markers: &'static [(&'static str, &'static str)],
}

const HARD_LIMITS: &[HardLimit] = &[
    // GKE: 30 s notice, the first 15 s for non-system pods (Spot VMs and preemptible VMs docs).
    HardLimit {
        seconds: 15,
        what: "GKE Spot and preemptible VMs give non-system pods after a preemption notice",
        markers: &[
            ("cloud.google.com/gke-spot", "true"),
            ("cloud.google.com/gke-preemptible", "true"),
        ],
    },
    // Azure Scheduled Events: Preempt has a minimum notice of 30 s.
    HardLimit {
        seconds: 30,
        what: "an Azure Spot eviction notice gives",
        markers: &[("kubernetes.azure.com/scalesetpriority", "spot")],
    },
    // EC2: "a warning that is issued two minutes before Amazon EC2 stops or terminates".
    HardLimit {
        seconds: 120,
        what: "an EC2 Spot interruption notice gives",
        markers: &[
            ("eks.amazonaws.com/capacityType", "SPOT"),
            ("karpenter.sh/capacity-type", "spot"),
        ],
    },
    // cluster-autoscaler FAQ: "at most 10 minutes graceful termination time by default";
    // GKE scale-down: "up to 10 minutes".
    HardLimit {
        seconds: 600,
        what: "cluster-autoscaler (and GKE) scale-down gives by default (--max-graceful-termination-sec)",
        markers: &[],
    },
];

/// The hard limits below what this plan needs, as warnings: the drain would be cut there.
pub(super) fn hard_limit_warnings(plan: &mut Plan, spec: &SpecShape, needed: u64) {
    let needed = i64::try_from(needed).unwrap_or(i64::MAX);
    // One warning is enough: the shortest limit that applies (the list is sorted).
    let cut = HARD_LIMITS.iter().find(|limit| {
        needed > limit.seconds
            && (limit.markers.is_empty()
                || limit
                    .markers
                    .iter()
                    .any(|(key, value)| spec.selects_node_label(key, value)))
    });
    if let Some(limit) = cut {
        plan.warnings.push(format!(
            "the plan needs a grace period of {needed}s, but {} pods at most {}s: the drain and the app's shutdown are cut there; lower drain.io/delay or drain.io/shutdown-budget, or accept it (docs/limits.md)",
            limit.what, limit.seconds
        ));
    }
}

/// The annotations, and the profile floors, that make the grace period grow, for the "above
/// maximum" message.
fn grace_causes(
    overrides: &Overrides,
    profile: Option<&Profile>,
    raised: RaisedFloors,
) -> Vec<String> {
    let mut causes = Vec::new();
    for sourced in [
        &overrides.delay,
        &overrides.max_delay,
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
    if let Some(profile) = profile {
        let origin = match &overrides.profile {
            Some(set) => format!("{}={:?} ({})", set.key, set.raw, set.source),
            None => format!("--profile {}", profile.name),
        };
        for (key, floor) in [
            (annotations::DELAY, raised.delay),
            (annotations::MAX_DELAY, raised.max_delay),
            (annotations::SHUTDOWN_BUDGET, raised.budget),
        ] {
            if let Some(floor) = floor {
                causes.push(format!("{origin}, whose floor raises {key} to {floor}s"));
            }
        }
    }
    causes
}
