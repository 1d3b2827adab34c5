//! The hook this run plans for a container, and the times every container's plan implies:
//! its earliest and latest signal and what the grace period leaves after the latest.

use super::{Action, ContainerPlan, Migrate, Timing};
use crate::helper::args::{HoldArgs, SignalWindow, Wait};

/// The data of a hook this run plans ([`Action::Planned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedHook {
    /// When the stop signal comes: the native sleep's fixed time, or the helper's window
    /// (with the migration of its hold, `--migrate`, when it has one).
    pub timing: Timing,
    /// The helper's own bound (`--max`): its latest signal plus B, less the fast stop's
    /// margin. `None` for the native sleep.
    pub max_seconds: Option<u32>,
}

impl PlannedHook {
    /// The helper's signal window, when the hook is the helper.
    pub fn window(&self) -> Option<&SignalWindow> {
        self.timing.window()
    }

    /// The adaptive hold of the helper's window, to set its migration.
    pub(super) fn hold_mut(&mut self) -> Option<&mut HoldArgs> {
        match &mut self.timing {
            Timing::Helper(SignalWindow {
                wait: Wait::Hold(hold),
                ..
            }) => Some(hold),
            _ => None,
        }
    }
}

impl ContainerPlan {
    /// The hook this run plans for it.
    pub fn planned_hook(&self) -> Option<&PlannedHook> {
        match &self.action {
            Action::Planned(hook) => Some(hook),
            _ => None,
        }
    }

    /// When its stop signal comes, when the plan knows: planned now, or recorded by the run
    /// that planned it.
    pub fn timing(&self) -> Option<&Timing> {
        match &self.action {
            Action::Planned(hook) => Some(&hook.timing),
            Action::AlreadyPlanned(recorded) => recorded.as_ref(),
            Action::ToPlan | Action::Untouched => None,
        }
    }

    /// The earliest time of its stop signal (SIGTERM, or a proxy's graceful signal), in
    /// seconds after T0: a planned container's floor, and 0 for an untouched regular container
    /// (after its own preStop, if any). `None` when the plan does not know: a native sidecar
    /// stops after the regular containers, an earlier run's helper without a record.
    pub fn earliest_signal(&self) -> Option<u32> {
        match self.timing() {
            Some(timing) => Some(timing.earliest()),
            None if self.action == Action::Untouched && !self.init_container => Some(0),
            None => None,
        }
    }

    /// The latest time of its stop signal: the end of the adaptive hold's range, else its
    /// earliest. `None` where the plan holds no hook for it.
    pub fn latest_signal(&self) -> Option<u32> {
        self.timing().map(Timing::latest)
    }

    /// Seconds a grace period of `grace` leaves after its latest signal, when the plan knows
    /// when that is.
    pub fn budget_after_latest(&self, grace: u32) -> Option<u32> {
        let earliest = self.earliest_signal()?;
        let latest = self.latest_signal().unwrap_or(earliest).max(earliest);
        Some(grace.saturating_sub(latest))
    }

    /// How pinned clients are moved off at the floor (`--migrate`), when they are.
    pub fn migrate(&self) -> Option<&Migrate> {
        self.timing()?.hold()?.migrate.as_ref()
    }

    /// The helper's own bound (`--max`), when the plan gives it one.
    pub fn hook_max_seconds(&self) -> Option<u32> {
        self.planned_hook()?.max_seconds
    }
}
