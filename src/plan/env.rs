//! `drain.io/env: "true"`: every planned regular container gets the plan's timings as env vars,
//! so the app (or a mesh setting) can align with them: the downward API cannot expose the grace
//! period. A variable the container already sets is never overridden.

use serde_json::Value;

use super::{EnvVar, Plan};
use crate::annotations::{self, Overrides};
use crate::pod::{EnvList, SpecShape};

/// Seconds after T0 at which the container gets SIGTERM (its preStop delay).
pub const DELAY_VAR: &str = "DRAIN_DELAY_SECONDS";
/// B: the seconds it keeps after its SIGTERM.
pub const SHUTDOWN_BUDGET_VAR: &str = "DRAIN_SHUTDOWN_BUDGET_SECONDS";

/// Fills `env` of every planned container when the annotation asks for it.
pub(super) fn plan_env(plan: &mut Plan, spec: &SpecShape, overrides: &Overrides) {
    if !overrides.env.as_ref().is_some_and(|e| e.value) {
        return;
    }
    let budget = plan.shutdown_budget.to_string();
    let mut warnings = Vec::new();
    for entry in plan
        .containers
        .iter_mut()
        .filter(|c| c.planned_hook().is_some() && !c.init_container)
    {
        let Some(container) = spec.containers.get(entry.index) else {
            continue;
        };
        let wanted = [
            (DELAY_VAR, entry.earliest_signal().unwrap_or(0).to_string()),
            (SHUTDOWN_BUDGET_VAR, budget.clone()),
        ];
        let list = container.env_list();
        let existing = match &list {
            EnvList::Absent => &[][..],
            EnvList::Vars(vars) => vars.as_slice(),
            EnvList::NotAList => {
                warnings.push(format!(
                    "container {:?}: its env does not read as a list of variables, so {} adds none to it",
                    entry.name,
                    annotations::ENV
                ));
                continue;
            }
        };
        for (name, value) in wanted {
            let set = existing
                .iter()
                .find(|v| v.get("name").and_then(Value::as_str) == Some(name));
            match set {
                None => entry.env.push(EnvVar { name, value }),
                Some(var) => {
                    // No `value` and no `valueFrom` is the empty string.
                    let own = match var.get("value").and_then(Value::as_str) {
                        None if var.get("valueFrom").is_none() => Some(""),
                        own => own,
                    };
                    if own != Some(value.as_str()) {
                        let own = own.map_or_else(
                            || "from valueFrom".to_owned(),
                            |own| format!("to {own:?}"),
                        );
                        warnings.push(format!(
                            "container {:?} sets {name} {own} itself, which is kept; the plan's value is {value}",
                            entry.name
                        ));
                    }
                }
            }
        }
    }
    plan.warnings.extend(warnings);
}
