//! Sizing the grace period and the timeline it leaves each container.

use super::{Action, Plan};
use crate::annotations::Overrides;

/// The annotations that make the grace period grow, for the "above maximum" message.
pub(super) fn grace_causes(overrides: &Overrides) -> Vec<String> {
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
pub(super) fn finish_timeline(mut plan: Plan) -> Plan {
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
