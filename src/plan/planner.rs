//! `plan_pod`: the planner's phases in the order of DESIGN.md section 2, from a pod and its
//! context to its plan; the vocabulary they fill is in the module above.

use super::delivery::DeliveryChoice;
use super::delivery_why::DeliveryWhy;
use super::grace::{
    GraceGrowth, Sized, check_lowered_grace, hard_limit_warnings, probe_warnings, size_grace,
};
use super::hooks::choose_hooks;
use super::resolve::{Resolved, apply_profile, resolve};
use super::roles::classify_containers;
use super::{
    Action, HookKind, Outcome, Plan, PlanError, PodContext, Role, Status, env, migrate, native,
};
use crate::annotations::{self, Overrides};
use crate::pod::{PodShape, SpecShape};
use crate::settings::KUBERNETES_DEFAULT_GRACE;

/// Plans the shutdown of one pod, in the order of DESIGN.md section 2: resolve the settings,
/// classify the containers, choose their hooks, size the grace period, conclude.
pub fn plan_pod(pod: &PodShape, ctx: &PodContext<'_>) -> Result<Plan, PlanError> {
    let pod_annotations = pod.metadata.as_ref().and_then(|m| m.annotations.as_ref());
    let overrides = Overrides::resolve(
        pod_annotations,
        ctx.namespace_annotations,
        ctx.settings.profiles,
    )?;
    let mut plan = Plan::unplanned(pod, ctx);
    let spec = match plannable_spec(pod, &overrides) {
        Ok(spec) => spec,
        Err(skip) => {
            if skip.warn {
                plan.warnings.push(format!(
                    "drain-webhook left the pod untouched: {}",
                    skip.reason
                ));
            }
            plan.reason = Some(skip.reason);
            return Ok(plan);
        }
    };
    let mut resolved = resolve(spec, pod_annotations, &overrides, ctx)?;
    plan.warnings.extend(resolved.mode_warning.take());
    let raised = apply_profile(&mut plan, &mut resolved, &overrides, ctx.settings);
    plan.grace_before = resolved.original_grace;
    plan.delay = resolved.delay;
    plan.stagger = resolved.stagger;
    plan.shutdown_budget = resolved.budget;
    plan.quiet = resolved.quiet;
    plan.max_delay = resolved.max_delay;
    plan.hold_adapts = super::hold::hold_adapts(&resolved, spec);

    let settings = ctx.settings;
    classify_containers(
        spec,
        &overrides,
        settings,
        resolved.previous.as_ref(),
        &mut plan,
    );
    plan.has_front_proxy = plan
        .containers
        .iter()
        .any(|c| c.role == Role::Proxy && !c.init_container);
    let chosen = choose_hooks(spec, &overrides, &resolved, &mut plan);
    migrate::plan_migrations(
        &mut plan,
        spec,
        &overrides,
        resolved.choice.share_process_namespace,
    );
    let spec_grace = spec.termination_grace_period_seconds;
    let growth = GraceGrowth {
        needed: chosen.needed,
        overrides: &overrides,
        raised,
    };
    if size_grace(&mut plan, spec_grace, &growth, settings)? == Sized::TooLong {
        return Ok(plan);
    }
    plan.helper = chosen.helper.filter(|_| {
        plan.containers
            .iter()
            .any(|c| c.planned_hook().is_some() && c.hook == Some(HookKind::Helper))
    });
    plan.delivery = plan.helper.as_ref().map(|helper| match helper.present {
        true => DeliveryChoice {
            delivery: helper.delivery(),
            why: DeliveryWhy::EarlierRun,
        },
        false => resolved.delivery.clone(),
    });
    check_lowered_grace(&mut plan, spec, resolved.previous.as_ref())?;
    native::finish(&mut plan, spec, ctx.kube_version);
    env::plan_env(&mut plan, spec, &overrides);
    probe_warnings(&mut plan, spec);
    if plan.planned().next().is_some() {
        hard_limit_warnings(&mut plan, spec, chosen.needed);
    }
    conclude(&mut plan, resolved);
    Ok(plan)
}

impl Plan {
    /// A plan that changes nothing yet: the settings' D, S and B, the pod's own grace.
    fn unplanned(pod: &PodShape, ctx: &PodContext<'_>) -> Plan {
        let settings = ctx.settings;
        let spec_grace = pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds);
        Plan {
            outcome: Outcome::Skipped,
            reason: None,
            delay: settings.delay,
            stagger: settings.stagger,
            shutdown_budget: settings.shutdown_budget,
            quiet: settings.quiet,
            max_delay: settings.max_delay,
            hold_adapts: false,
            profile: None,
            has_front_proxy: false,
            excluded_proxies: Vec::new(),
            grace_before: spec_grace,
            grace_after: spec_grace.unwrap_or(i64::from(KUBERNETES_DEFAULT_GRACE)),
            kube_version: ctx.kube_version,
            containers: Vec::new(),
            helper: None,
            delivery: None,
            warnings: Vec::new(),
            set_grace: false,
            adds_os_linux: false,
            status: None,
        }
    }
}

/// Why a whole pod is left alone, and whether that deserves a warning.
struct Skip {
    reason: String,
    warn: bool,
}

/// The pod's spec when the pod is to be planned at all: not opted out, a spec, a grace
/// period that is not an explicit request for immediate kill.
fn plannable_spec<'p>(pod: &'p PodShape, overrides: &Overrides) -> Result<&'p SpecShape, Skip> {
    let skip = |reason: String, warn| Err(Skip { reason, warn });
    if let Some(source) = overrides.opted_out {
        return skip(
            format!("opted out by {}=\"false\" ({source})", annotations::INJECT),
            false,
        );
    }
    let Some(spec) = pod.spec.as_ref() else {
        return skip("the object has no pod spec".into(), false);
    };
    match spec.termination_grace_period_seconds {
        Some(0) => skip(
            "terminationGracePeriodSeconds is 0, an explicit request for immediate kill".into(),
            true,
        ),
        Some(negative) if negative < 0 => skip(
            format!("terminationGracePeriodSeconds {negative} is negative"),
            false,
        ),
        _ => Ok(spec),
    }
}

/// The outcome and, when anything changes, the record to write.
fn conclude(plan: &mut Plan, resolved: Resolved) {
    if plan.planned().next().is_some() {
        plan.outcome = Outcome::Mutate;
        plan.status = Some(Status::record(
            plan,
            resolved.previous,
            resolved.original_grace,
        ));
    } else if plan
        .containers
        .iter()
        .any(|c| matches!(c.action, Action::AlreadyPlanned(_)))
    {
        plan.outcome = Outcome::Unchanged;
        plan.reason = Some("already mutated by an earlier run".into());
    } else {
        plan.outcome = Outcome::Skipped;
        plan.reason = Some("no container needs a drain hook".into());
    }
}
