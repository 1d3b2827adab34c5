//! Resolving a pod's D, S, B and hook mode from its annotations, its namespace's, the
//! settings and an earlier run's record; the traffic-path profile's floors on top.

use std::collections::BTreeMap;

use super::choice::HookChoice;
use super::delivery::{self, DeliveryChoice};
use super::{Plan, PlanError, PodContext, Status};
use crate::annotations::{self, Overrides, Sourced};
use crate::pod::SpecShape;
use crate::settings::{HelperDelivery, HookMode, KubeVersion, Settings};

/// D, S, B and how hooks are chosen, resolved once per pod, with an earlier run's record.
pub(super) struct Resolved {
    pub(super) delay: u32,
    pub(super) stagger: u32,
    pub(super) budget: u32,
    /// Q and M of the adaptive hold.
    pub(super) quiet: u32,
    pub(super) max_delay: u32,
    /// The grace period before the first run of the webhook.
    pub(super) original_grace: Option<i64>,
    pub(super) previous: Option<Status>,
    pub(super) choice: HookChoice,
    /// How the helper would come (settings, cluster, the pod's restartPolicy).
    pub(super) delivery: DeliveryChoice,
    /// Said once per pod: the operator's `--hook-mode native` fell back to `auto`.
    pub(super) mode_warning: Option<String>,
}

/// D, S and B from annotations (pod, then namespace), then settings; B defaults to the grace
/// period the pod had before any run; the hook mode and what the cluster offers.
pub(super) fn resolve(
    spec: &SpecShape,
    pod_annotations: Option<&BTreeMap<String, String>>,
    overrides: &Overrides,
    ctx: &PodContext<'_>,
) -> Result<Resolved, PlanError> {
    let settings = ctx.settings;
    let previous = pod_annotations
        .and_then(|a| a.get(annotations::STATUS))
        .and_then(|raw| Status::parse(raw));
    let original_grace = match &previous {
        Some(status) => status.grace_before,
        None => spec.termination_grace_period_seconds,
    };
    let budget = match &overrides.shutdown_budget {
        Some(budget) => budget.value,
        None => original_grace
            .map(|g| u32::try_from(g).unwrap_or(u32::MAX))
            .unwrap_or(settings.shutdown_budget),
    };
    let mut mode = overrides
        .hook
        .as_ref()
        .map(|h| h.value)
        .unwrap_or(settings.hook_mode);
    // The operator's `--hook-mode native` on a cluster without `lifecycle.stopSignal`: a proxy
    // would get its image's stop signal after the sleep (for nginx a fast shutdown that drops
    // connections), so such pods are planned as in `auto`, where drain-helper sends the
    // graceful signal. The annotation is a denial below (the pod's owner asked for it).
    let mut mode_warning = None;
    if mode == HookMode::Native
        && overrides.hook.is_none()
        && let Some(version) = ctx.kube_version
        && !version.has_stop_signals()
    {
        mode = HookMode::Auto;
        mode_warning = Some(format!(
            "--hook-mode native needs Kubernetes 1.33 or later for lifecycle.stopSignal, and this cluster runs {version}: the pod is planned as in auto (drain-helper sends a proxy's graceful signal)"
        ));
    }
    // The pod's own annotation asked for a mechanism this cluster does not have: a denial.
    if let (Some(version), Some(hook)) = (ctx.kube_version, &overrides.hook) {
        let (key, origin) = (annotations::HOOK, hook.source);
        match mode {
            HookMode::Sleep if !version.supports_sleep_action() => {
                return Err(PlanError::SleepUnsupported {
                    key,
                    origin,
                    version,
                });
            }
            HookMode::Native if !version.has_stop_signals() => {
                return Err(PlanError::NativeUnsupported {
                    key,
                    origin,
                    version,
                });
            }
            _ => {}
        }
    }
    // `drain.io/delivery: image-volume` on a server without the field: the API server would
    // drop it and reject the volume as having no source, with a message that names neither.
    if let (Some(version), Some(asked)) = (ctx.kube_version, &overrides.delivery)
        && asked.value == HelperDelivery::ImageVolume
        && version < KubeVersion::IMAGE_VOLUME_FIELD
    {
        return Err(PlanError::ImageVolumeUnsupported {
            key: annotations::DELIVERY,
            origin: asked.source,
            version,
        });
    }
    let delay = value_or(&overrides.delay, settings.delay);
    Ok(Resolved {
        delay,
        stagger: value_or(&overrides.stagger, settings.stagger),
        budget,
        quiet: value_or(&overrides.quiet, settings.quiet).max(1),
        max_delay: max_delay_for(delay, overrides, settings),
        original_grace,
        previous,
        delivery: delivery::choose_for_pod(
            overrides
                .delivery
                .as_ref()
                .map_or(settings.helper.delivery, |d| d.value),
            overrides.delivery.as_ref().map(|d| d.source),
            ctx.kube_version,
            ctx.image_volume_nodes,
            delivery::PodTraits {
                restart_policy: spec.restart_policy.clone(),
                pod_level_resources: crate::qos::has_pod_level_resources(spec),
            },
        ),
        mode_warning,
        choice: HookChoice {
            mode,
            windows: spec.is_windows(),
            version: ctx.kube_version,
            share_process_namespace: spec.share_process_namespace == Some(true),
        },
    })
}

/// The pod's or namespace's profile, else `--profile`. Raises D (and B) to its floors where
/// no annotation set them; an annotation below a floor is kept (the user may know their path
/// better) but warned about. Returns what it raised, for the "above maximum" message (worded
/// only when that message is given, not on every review).
pub(super) fn apply_profile(
    plan: &mut Plan,
    resolved: &mut Resolved,
    overrides: &Overrides,
    settings: &Settings,
) -> RaisedFloors {
    let mut raised = RaisedFloors::default();
    let named = overrides.profile.as_ref().map(|p| p.value);
    let Some(profile) = named.or(settings.profile) else {
        return raised;
    };
    plan.profile = Some(profile);
    let delay_before = resolved.delay;
    let floors = [
        (
            &overrides.delay,
            &mut resolved.delay,
            Some(profile.delay_floor),
            annotations::DELAY,
            &mut raised.delay,
        ),
        (
            &overrides.shutdown_budget,
            &mut resolved.budget,
            profile.budget_floor,
            annotations::SHUTDOWN_BUDGET,
            &mut raised.budget,
        ),
    ];
    for (set, value, floor, key, raised) in floors {
        let Some(floor) = floor else { continue };
        match set {
            Some(set) if set.value < floor => plan.warnings.push(format!(
                "{key}={:?} ({}) is below the {floor}s that profile {} needs: traffic may still arrive after it ({})",
                set.raw, set.source, profile.name, profile.note
            )),
            Some(_) => {}
            None if *value < floor => {
                *value = floor;
                *raised = Some(floor);
            }
            None => {}
        }
    }
    // A path known to lag longer keeps the hold's headroom above D: M rises with D, unless
    // drain.io/max-delay says otherwise (an adaptive hold stays adaptive under a profile).
    if let Some(floor) = raised.delay
        && overrides.max_delay.is_none()
        && resolved.max_delay > delay_before
    {
        resolved.max_delay = resolved
            .max_delay
            .saturating_add(floor.saturating_sub(delay_before));
        raised.max_delay = Some(resolved.max_delay);
    }
    raised
}

/// The floors the profile raised D (`drain.io/delay`) and B (`drain.io/shutdown-budget`) to.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RaisedFloors {
    pub(super) delay: Option<u32>,
    pub(super) budget: Option<u32>,
    /// M, raised with D to keep the hold's headroom.
    pub(super) max_delay: Option<u32>,
}

/// M: `drain.io/max-delay`, else the setting raised by as much as `drain.io/delay` raises D
/// above its setting, as a profile's floor raises it: the hold keeps the operator's headroom,
/// and a D at or above the setting's M does not silently turn the hold off (issue 27). An M
/// the settings keep at or below D (the hold off) stays off.
fn max_delay_for(delay: u32, overrides: &Overrides, settings: &Settings) -> u32 {
    if let Some(set) = &overrides.max_delay {
        return set.value;
    }
    let hold_on = settings.max_delay > settings.delay;
    match overrides.delay.is_some() && hold_on && delay > settings.delay {
        true => settings.max_delay.saturating_add(delay - settings.delay),
        false => settings.max_delay,
    }
}

fn value_or(sourced: &Option<Sourced<u32>>, default: u32) -> u32 {
    sourced.as_ref().map(|s| s.value).unwrap_or(default)
}
