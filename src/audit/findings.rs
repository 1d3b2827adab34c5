//! What an audit finds in one workload: drift from the recorded plan, and risks.

use super::*;

/// The pod's stored grace and preStop hooks against what `drain.io/status` recorded.
pub(super) fn drift_of(name: &str, pod: &Value, status: &Status, drift: &mut Vec<String>) {
    let grace = pod
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    if grace != Some(status.grace) {
        drift.push(format!(
            "{name}: terminationGracePeriodSeconds is {} but drain-webhook set {}s; something mutated the pod after it (another webhook or policy)",
            grace.map(|g| format!("{g}s")).unwrap_or_else(|| "unset".into()),
            status.grace
        ));
    }
    let containers = containers(pod.get("spec").unwrap_or(&Value::Null));
    for (container, recorded) in &status.containers {
        let recorded = RecordedContainer::decode(recorded);
        let Some(c) = containers
            .iter()
            .find(|c| str_at(c, "/name") == container.as_str())
        else {
            drift.push(format!(
                "{name}: container {container} recorded in drain.io/status is gone"
            ));
            continue;
        };
        let pre_stop = c.pointer("/lifecycle/preStop");
        let matches = match (recorded.hook, pre_stop) {
            (Some(HookKind::Native), Some(p)) => {
                let sleeps = p.pointer("/sleep/seconds").and_then(Value::as_u64)
                    == recorded.earliest_seconds.map(u64::from);
                if sleeps && c.pointer("/lifecycle/stopSignal").is_none() {
                    drift.push(format!(
                        "{name}: the lifecycle.stopSignal drain-webhook wrote to {container} is gone; the API server drops it when the ContainerStopSignals gate is off"
                    ));
                }
                sleeps
            }
            (Some(HookKind::Sleep), Some(p)) => {
                p.pointer("/sleep/seconds").and_then(Value::as_u64)
                    == recorded.earliest_seconds.map(u64::from)
            }
            (Some(HookKind::Helper), Some(p)) => {
                p.pointer("/exec/command/0").and_then(Value::as_str) == Some(HELPER_PATH)
            }
            (None, _) => true,
            (_, None) => false,
        };
        if !matches {
            drift.push(format!(
                "{name}: the preStop hook of {container} is not the {} hook drain-webhook recorded",
                recorded.hook.map(|h| h.to_string()).unwrap_or_default()
            ));
        }
    }
}

pub(super) fn containers(spec: &Value) -> Vec<&Value> {
    ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect()
}

/// Seconds a user's own preStop waits: a native sleep, or an exec of `sleep N`.
pub(super) fn user_pre_stop_wait(container: &Value) -> Option<u64> {
    let pre_stop = container.pointer("/lifecycle/preStop")?;
    if let Some(seconds) = pre_stop.pointer("/sleep/seconds").and_then(Value::as_u64) {
        return Some(seconds);
    }
    let command: Vec<&str> = pre_stop
        .pointer("/exec/command")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // `["sleep", "20"]` or `["/bin/sh", "-c", "sleep 20"]`.
    let words: Vec<&str> = command.iter().flat_map(|w| w.split_whitespace()).collect();
    let at = words
        .iter()
        .position(|w| *w == "sleep" || w.ends_with("/sleep"))?;
    words.get(at + 1)?.trim_end_matches(';').parse().ok()
}

pub(super) fn risks_of(spec: &Value, plan: &Plan, ctx: &PodContext<'_>, risks: &mut Vec<Finding>) {
    let grace = spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    if grace == Some(0) {
        risks.push(Finding {
            kind: "grace-zero",
            message: "terminationGracePeriodSeconds is 0: every container is killed at once and in-flight requests fail".into(),
            fix: "remove terminationGracePeriodSeconds (or set it to at least 30) so drain-webhook can plan a drain".into(),
        });
    }
    // Against the grace the pods run with today: where inject would raise it, `would_change`
    // shows the fix.
    let effective = grace.unwrap_or(30);
    let all = containers(spec);
    for c in &all {
        let name = str_at(c, "/name");
        if let Some(wait) = user_pre_stop_wait(c)
            && grace != Some(0)
            && i64::try_from(wait).unwrap_or(i64::MAX) >= effective
        {
            risks.push(Finding {
                kind: "prestop-cut",
                message: format!(
                    "container {name}'s preStop waits {wait}s but the grace period is {effective}s: the kubelet kills it before the hook ends"
                ),
                fix: format!(
                    "set terminationGracePeriodSeconds above {wait}s plus the time {name} needs to stop"
                ),
            });
        }
        let planned = plan.containers.iter().find(|p| p.name == name);
        let needed = planned.and_then(|p| {
            Some(p.earliest_signal()? + p.budget_after_latest(plan.grace_seconds())?)
        });
        for probe in ["livenessProbe", "startupProbe"] {
            let own = c
                .pointer(&format!("/{probe}/terminationGracePeriodSeconds"))
                .and_then(Value::as_i64);
            if let (Some(own), Some(needed)) = (own, needed)
                && own < i64::from(needed)
            {
                risks.push(Finding {
                    kind: "probe-grace",
                    message: format!(
                        "container {name}'s {probe} sets terminationGracePeriodSeconds {own}s, shorter than its preStop delay plus budget ({needed}s): a probe kill skips the drain"
                    ),
                    fix: format!(
                        "raise {probe}.terminationGracePeriodSeconds to at least {needed} or remove it"
                    ),
                });
            }
        }
    }
    // The image of a planned container, by name (init containers included).
    let image_of = |name: &str| {
        all.iter()
            .find(|c| str_at(c, "/name") == name)
            .map_or("", |c| str_at(c, "/image"))
    };
    for p in &plan.containers {
        let image = image_of(&p.name);
        if p.role == Role::NativeSidecar
            && proxy_family(image, &ctx.settings.proxy_images).is_some()
        {
            risks.push(Finding {
                kind: "native-sidecar-proxy",
                message: format!(
                    "front proxy {} is a native sidecar: the kubelet stops it after the app, so it keeps accepting requests the app can no longer serve",
                    p.name
                ),
                fix: format!(
                    "move {} to containers (a regular container) so drain-webhook stops it first",
                    p.name
                ),
            });
        }
    }
    if spec.get("shareProcessNamespace").and_then(Value::as_bool) == Some(true) {
        for p in &plan.containers {
            let image = image_of(&p.name);
            if p.role == Role::Proxy && graceful_signal(image).is_some() {
                risks.push(Finding {
                    kind: "shared-pid-proxy",
                    message: format!(
                        "shareProcessNamespace is on, so drain-helper cannot find proxy {}'s PID 1: it gets its image's stop signal (a fast stop) instead of {}",
                        p.name,
                        graceful_signal(image).unwrap_or("its graceful signal")
                    ),
                    fix: "turn shareProcessNamespace off so the proxy gets its graceful signal".into(),
                });
            }
        }
    }
}

/// A LoadBalancer Service in the same namespace selecting the workload's pods, whose known
/// lag exceeds the planned delay.
pub(super) fn lb_risk(
    object: &Object,
    template: &Value,
    services: &[&Object],
    plan: &Plan,
    risks: &mut Vec<Finding>,
) {
    let labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    for service in services {
        if service.namespace != object.namespace
            || str_at(&service.doc, "/spec/type") != "LoadBalancer"
        {
            continue;
        }
        let Some(selector) = service
            .doc
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let selected = selector
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        if !selected {
            continue;
        }
        let annotations = service.doc.pointer("/metadata/annotations");
        let (which, lag) = LB_LAG
            .iter()
            .find(|(key, _, _)| annotations.and_then(|a| a.get(*key)).is_some())
            .map(|(_, which, lag)| (*which, *lag))
            .unwrap_or(("a cloud load balancer", LB_LAG_DEFAULT));
        // An adaptive hold keeps taking connections while they arrive, up to its cap.
        let delay = if plan.outcome == Outcome::Skipped {
            0
        } else {
            plan.containers
                .iter()
                .filter_map(ContainerPlan::latest_signal)
                .max()
                .unwrap_or(0)
        };
        if lag > delay {
            risks.push(Finding {
                kind: "lb-lag",
                message: format!(
                    "Service {} (type LoadBalancer, {which}) may send new connections for about {lag}s after a pod is removed, but the pod stops taking them after {delay}s",
                    service.name
                ),
                fix: format!(
                    "set drain.io/max-delay (the adaptive hold's cap) to at least {lag}s on the workload or its namespace"
                ),
            });
        }
    }
}

/// Pods whose record holds a container for a fixed D where the plan today would hold it
/// adaptively (the settings, the namespace or a profile put M above D): a container already
/// running drain-helper, or a front proxy. Planned before the adaptive hold, a load balancer
/// slower than D still reaches them after they stop taking connections; a rollout restart
/// plans them again.
pub(super) fn fixed_hold_risk(
    subjects: &[(&str, &Value)],
    statuses: &[Option<Status>],
    plan: &Plan,
    risks: &mut Vec<Finding>,
) {
    // Fixed holds are what today's plan gives too (M <= D, D = 0, the host network).
    if !plan.hold_adapts {
        return;
    }
    let mut fixed_pods = Vec::new();
    let mut fixed_containers = std::collections::BTreeSet::new();
    for ((name, _), status) in subjects.iter().zip(statuses) {
        let Some(status) = status else { continue };
        for (container, raw) in &status.containers {
            let recorded = RecordedContainer::decode(raw);
            let would_hold = recorded.hook == Some(HookKind::Helper)
                || (raw.starts_with("proxy:") && recorded.hook.is_some());
            if would_hold && recorded.latest_seconds.is_none() {
                if fixed_pods.last() != Some(name) {
                    fixed_pods.push(*name);
                }
                fixed_containers.insert(container.as_str());
            }
        }
    }
    if fixed_pods.is_empty() {
        return;
    }
    let containers: Vec<&str> = fixed_containers.into_iter().collect();
    risks.push(Finding {
        kind: "fixed-hold",
        message: format!(
            "{} hold{} {} for a fixed {}s, planned before the adaptive hold, which now keeps them serving while traffic still arrives (up to {}s): a load balancer slower than that still sends connections after they stop taking them",
            fixed_pods.join(", "),
            if fixed_pods.len() == 1 { "s" } else { "" },
            containers.join(", "),
            plan.delay,
            plan.max_delay,
        ),
        fix: "restart the workload (kubectl rollout restart) so that drain-webhook plans its pods again".into(),
    });
}
