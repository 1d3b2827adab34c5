//! The `drain.io/status` record: written after a plan, read on the next run of the same pod
//! (reinvocation, a re-applied manifest) so that the run changes nothing. Its wire format is
//! encoded and decoded here only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ContainerPlan, HelperInjection, HookKind, Plan, Timing};

/// What the webhook records in `drain.io/status`: enough to make a second run a no-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Status {
    /// Format version.
    pub v: u32,
    /// The grace period before the first run (`null`: unset), so B stays the user's.
    #[serde(rename = "graceBefore")]
    pub grace_before: Option<i64>,
    pub grace: i64,
    /// Planned containers: name -> "role:hook:preStopSeconds", plus ":latestSeconds" when
    /// the stop signal follows the traffic (the adaptive hold's range).
    pub containers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helper: Option<HelperInjection>,
    /// Containers left as they were: name -> role.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub untouched: BTreeMap<String, String>,
    /// The plan's warnings, kept with the pod: admission warnings go to whoever created it,
    /// which for a Deployment's pods is the ReplicaSet controller, so nobody reads them there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Status {
    pub const VERSION: u32 = 1;

    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_str::<Status>(raw)
            .ok()
            .filter(|s| s.v == Self::VERSION)
    }
}

/// One planned container as the record keeps it: `"role:hook:earliest"`, or
/// `"role:hook:earliest:latest"` for an adaptive hold (the times of its stop signal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedContainer {
    pub hook: Option<HookKind>,
    /// The earliest stop signal (the preStop's delay for a fixed one).
    pub earliest_seconds: Option<u32>,
    /// The latest stop signal of an adaptive hold; `None` for a fixed one.
    pub latest_seconds: Option<u32>,
}

impl RecordedContainer {
    pub fn encode(container: &ContainerPlan) -> String {
        // One buffer, written in place without the formatter: `format!` per part cost 2,500
        // instructions a container, `write!` 1,000 (docs/benchmarks.md).
        let mut digits = itoa::Buffer::new();
        let mut recorded = String::with_capacity(32);
        recorded.push_str(container.role.as_str());
        recorded.push(':');
        if let Some(hook) = container.hook {
            recorded.push_str(hook.as_str());
        }
        let timing = container.timing();
        recorded.push(':');
        recorded.push_str(digits.format(timing.map_or(0, Timing::earliest)));
        if let Some(timing) = timing.filter(|t| t.is_adaptive()) {
            recorded.push(':');
            recorded.push_str(digits.format(timing.latest()));
        }
        recorded
    }

    /// Reads what [`RecordedContainer::encode`] wrote; parts it does not know read as unknown.
    pub fn decode(recorded: &str) -> Self {
        let mut parts = recorded.split(':');
        let _role = parts.next();
        let hook = match parts.next() {
            Some("sleep") => Some(HookKind::Sleep),
            Some("helper") => Some(HookKind::Helper),
            Some("native") => Some(HookKind::Native),
            _ => None,
        };
        RecordedContainer {
            hook,
            earliest_seconds: parts.next().and_then(|s| s.parse().ok()),
            latest_seconds: parts.next().and_then(|s| s.parse().ok()),
        }
    }
}

impl Status {
    /// What the record of `plan` says, on top of an earlier run's record.
    pub fn record(plan: &Plan, previous: Option<Status>, original_grace: Option<i64>) -> Status {
        let mut status = previous.unwrap_or_default();
        status.v = Status::VERSION;
        status.grace_before = original_grace;
        status.grace = plan.grace_after;
        for c in plan.planned() {
            status
                .containers
                .insert(c.name.clone(), RecordedContainer::encode(c));
        }
        if status.helper.is_none() {
            status.helper.clone_from(&plan.helper);
        }
        status.untouched = plan
            .containers
            .iter()
            .filter(|c| c.action == super::Action::Untouched)
            .map(|c| (c.name.clone(), c.role.to_string()))
            .collect();
        for warning in &plan.warnings {
            if !status.warnings.contains(warning) {
                status.warnings.push(warning.clone());
            }
        }
        status
    }

    /// The recorded plan of one container, if the record has it.
    pub fn container(&self, name: &str) -> Option<RecordedContainer> {
        self.containers
            .get(name)
            .map(|recorded| RecordedContainer::decode(recorded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helper::args::{HoldArgs, SignalWindow, Wait};
    use crate::plan::{Action, PlannedHook, Role};

    #[test]
    fn a_recorded_container_decodes_as_encoded() {
        let planned = |timing| {
            Action::Planned(PlannedHook {
                timing,
                max_seconds: None,
            })
        };
        let mut container = ContainerPlan::new("nginx", false, 0, Role::Proxy);
        container.hook = Some(HookKind::Helper);
        container.action = planned(Timing::Helper(SignalWindow::fixed(10)));
        let encoded = RecordedContainer::encode(&container);
        assert_eq!(encoded, "proxy:helper:10");
        assert_eq!(
            RecordedContainer::decode(&encoded),
            RecordedContainer {
                hook: Some(HookKind::Helper),
                earliest_seconds: Some(10),
                latest_seconds: None
            }
        );
        // An adaptive hold records its range: earliest, then latest.
        let hold = HoldArgs {
            quiet: 3,
            cap: 60,
            probe_periods: vec![],
            migrate: None,
        };
        container.action = planned(Timing::Helper(SignalWindow {
            floor: 10,
            wait: Wait::Hold(hold),
            stagger: 0,
        }));
        let encoded = RecordedContainer::encode(&container);
        assert_eq!(encoded, "proxy:helper:10:60");
        assert_eq!(RecordedContainer::decode(&encoded).latest_seconds, Some(60));
        container.action = planned(Timing::Fixed { seconds: 10 });
        container.hook = Some(HookKind::Native);
        let encoded = RecordedContainer::encode(&container);
        assert_eq!(encoded, "proxy:native:10");
        assert_eq!(
            RecordedContainer::decode(&encoded).hook,
            Some(HookKind::Native)
        );
        // Records written before hook mode native still read as they were.
        assert_eq!(
            RecordedContainer::decode("app:sleep:15"),
            RecordedContainer {
                hook: Some(HookKind::Sleep),
                earliest_seconds: Some(15),
                latest_seconds: None
            }
        );
        assert_eq!(
            RecordedContainer::decode("app:future:x"),
            RecordedContainer {
                hook: None,
                earliest_seconds: None,
                latest_seconds: None
            }
        );
    }
}
