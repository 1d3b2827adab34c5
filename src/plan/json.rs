//! `explain -o json`: the plan in the shape and with the keys every earlier version wrote
//! (`preStopSeconds` and `sigtermAt` are the earliest signal, `budgetAfterSigterm` what is left
//! after the latest). Each container's times come from its action and the grace period.

use serde::Serialize;

use super::{
    Action, ChainedHook, ContainerPlan, DeliveryChoice, EnvVar, HelperInjection, HookKind, Migrate,
    Outcome, Plan, RecordPlan, Role, Timing, all_as_text, optional_as_text,
};
use crate::helper::net::HttpUrl;
use crate::profiles::Profile;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanJson<'a> {
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    delay: u32,
    stagger: u32,
    shutdown_budget: u32,
    quiet: u32,
    max_delay: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<&'static Profile>,
    has_front_proxy: bool,
    grace_before: Option<i64>,
    grace_after: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    kube_version: Option<String>,
    containers: Vec<ContainerJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    helper: Option<&'a HelperInjection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<&'a DeliveryChoice>,
    warnings: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    adds_os_linux: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerJson<'a> {
    name: &'a str,
    init_container: bool,
    index: usize,
    role: Role,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hook: Option<HookKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pre_stop_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sigterm_at: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    budget_after_sigterm: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timing: Option<&'a Timing>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hook_max_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<&'static str>,
    #[serde(
        skip_serializing_if = "<[_]>::is_empty",
        serialize_with = "all_as_text"
    )]
    notify: &'a [HttpUrl],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    wait_idle: &'a [u16],
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_as_text"
    )]
    migrate: Option<&'a Migrate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chained: Option<&'a ChainedHook>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a RecordPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    env: &'a [EnvVar],
}

impl Action {
    /// As `explain` writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::ToPlan | Action::Planned(_) => "planned",
            Action::AlreadyPlanned(_) => "alreadyPlanned",
            Action::Untouched => "untouched",
        }
    }
}

impl ContainerPlan {
    fn json(&self, grace: u32) -> ContainerJson<'_> {
        ContainerJson {
            name: &self.name,
            init_container: self.init_container,
            index: self.index,
            role: self.role,
            action: self.action.as_str(),
            hook: self.hook,
            pre_stop_seconds: self.timing().map(Timing::earliest),
            sigterm_at: self.earliest_signal(),
            budget_after_sigterm: self.budget_after_latest(grace),
            timing: self.timing(),
            hook_max_seconds: self.hook_max_seconds(),
            signal: self.signal,
            notify: &self.notify,
            wait_idle: &self.wait_idle,
            migrate: self.migrate(),
            chained: self.chained.as_ref(),
            record: self.record.as_ref(),
            note: self.note.as_deref(),
            env: &self.env,
        }
    }
}

impl Serialize for Plan {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let grace = self.grace_seconds();
        // Every field named, so that a new one is a compile error here until it is written
        // (or said to be internal).
        let Plan {
            outcome,
            reason,
            delay,
            stagger,
            shutdown_budget,
            quiet,
            max_delay,
            // The containers' hold arguments show it.
            hold_adapts: _,
            profile,
            has_front_proxy,
            excluded_proxies: _,
            grace_before,
            grace_after,
            kube_version,
            containers,
            helper,
            delivery,
            warnings,
            set_grace: _,
            adds_os_linux,
            status: _,
        } = self;
        PlanJson {
            outcome: *outcome,
            reason: reason.as_deref(),
            delay: *delay,
            stagger: *stagger,
            shutdown_budget: *shutdown_budget,
            quiet: *quiet,
            max_delay: *max_delay,
            profile: *profile,
            has_front_proxy: *has_front_proxy,
            grace_before: *grace_before,
            grace_after: *grace_after,
            kube_version: kube_version.map(|v| v.to_string()),
            containers: containers.iter().map(|c| c.json(grace)).collect(),
            helper: helper.as_ref(),
            delivery: delivery.as_ref(),
            warnings,
            adds_os_linux: *adds_os_linux,
        }
        .serialize(serializer)
    }
}
