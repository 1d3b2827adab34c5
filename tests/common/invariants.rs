//! Invariants that hold for every input, shared by the bounded property tests
//! (`tests/fuzz_bounded.rs`, `tests/properties.rs`) and the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs` include this file by path). Each check returns the violation as
//! an error; a panic inside the code under test propagates (both proptest and libFuzzer
//! report it as a failure).
//!
//! Standalone on purpose: only `drain_webhook`, `serde`, `serde_json`, `json_patch`,
//! `k8s_openapi` and `base64`, no `super::`, so the fuzz crate can `#[path]`-include it.
#![allow(dead_code)]

use base64::Engine as _;
use drain_webhook::admission::{Answer, Reviewer};
use drain_webhook::mutate::{MutateError, Mutation, PodContext, mutate_pod};
use drain_webhook::plan::Role;
use k8s_openapi::api::core::v1::Pod;
use serde::de::IgnoredAny;
use serde_json::Value;

/// What one review answered, as far as the invariants are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewKind {
    /// 200 with a patch.
    Patched,
    /// 200 allowed, no patch.
    Allowed,
    /// 200 allowed: false.
    Denied,
    /// 4xx with `{"error": ...}`.
    Invalid,
    /// 500 with `{"error": "internal error"}`.
    Internal,
}

/// `body` in, `Reviewer::review` answer out:
/// - the status is 200, 4xx or 500;
/// - a 4xx or 500 body is `{"error": "<string>"}` (500: exactly "internal error", no cause);
/// - a 200 answer is an AdmissionReview v1 whose `response.uid` is the request's uid;
/// - a denial carries code 400 and a message;
/// - a patch is base64 of a JSONPatch, with `patchType: JSONPatch`; it applies to the
///   request's object, and when that object reads as a Pod, so does the result.
pub fn check_review(reviewer: &Reviewer, body: &[u8]) -> Result<ReviewKind, String> {
    let answer: Answer = reviewer.review(body);
    let text = || String::from_utf8_lossy(&answer.body).into_owned();
    let parsed: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("answer body is not JSON ({e}): {}", text()))?;
    match answer.status {
        200 => {}
        400..=500 => {
            let reason = parsed["error"].as_str().ok_or_else(|| {
                format!(
                    "status {} without an error string: {}",
                    answer.status,
                    text()
                )
            })?;
            if answer.status == 500 && reason != "internal error" {
                return Err(format!("a 500 leaks its cause: {reason}"));
            }
            return Ok(if answer.status == 500 {
                ReviewKind::Internal
            } else {
                ReviewKind::Invalid
            });
        }
        other => return Err(format!("status {other}: {}", text())),
    }

    // A 200 answer: the request was an AdmissionReview with a uid. RFC 8259 (section 8.2) lets
    // a string escape a code point that is no character (a lone surrogate); serde_json refuses
    // it only where it decodes that string, and the webhook decodes only the fields it reads.
    // Such a body is still JSON (the skimming read takes it), but it has no `Value`: its answer
    // is checked without the request's uid and without applying the patch.
    let request: Option<Value> = match serde_json::from_slice(body) {
        Ok(request) => Some(request),
        Err(e) if e.is_syntax() && serde_json::from_slice::<IgnoredAny>(body).is_ok() => None,
        Err(e) => return Err(format!("200 for a body that is not JSON: {e}")),
    };
    if parsed["apiVersion"] != "admission.k8s.io/v1" || parsed["kind"] != "AdmissionReview" {
        return Err(format!("not an AdmissionReview v1: {}", text()));
    }
    let response = &parsed["response"];
    if let Some(request) = &request {
        let uid = request["request"]["uid"]
            .as_str()
            .ok_or("200 for a request without a string uid")?;
        if response["uid"] != uid {
            return Err(format!("uid {} answered for {uid}", response["uid"]));
        }
    }
    match response["allowed"] {
        Value::Bool(true) => {}
        Value::Bool(false) => {
            if response["status"]["code"] != 400
                || response["status"]["message"]
                    .as_str()
                    .is_none_or(str::is_empty)
            {
                return Err(format!(
                    "a denial without code 400 and a message: {response}"
                ));
            }
            if response.get("patch").is_some() {
                return Err("a denial with a patch".into());
            }
            return Ok(ReviewKind::Denied);
        }
        ref other => return Err(format!("allowed is {other}")),
    }
    let Some(encoded) = response.get("patch") else {
        return Ok(ReviewKind::Allowed);
    };
    if response["patchType"] != "JSONPatch" {
        return Err(format!("patch without patchType JSONPatch: {response}"));
    }
    let encoded = encoded.as_str().ok_or("patch is not a base64 string")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("patch is not base64: {e}"))?;
    let patch: json_patch::Patch =
        serde_json::from_slice(&bytes).map_err(|e| format!("patch is not a JSONPatch: {e}"))?;
    let Some(request) = request else {
        return Ok(ReviewKind::Patched);
    };
    let original = &request["request"]["object"];
    let mut patched = original.clone();
    json_patch::patch(&mut patched, &patch.0)
        .map_err(|e| format!("patch does not apply to the request's object: {e}"))?;
    if serde_json::from_value::<Pod>(original.clone()).is_ok() {
        serde_json::from_value::<Pod>(patched.clone())
            .map_err(|e| format!("the patched object is no longer a Pod: {e}"))?;
    }
    check_helper_commands(original, &patched)?;
    check_stop_signals(original, &patched)?;
    check_env(original, &patched)?;
    check_qos(original, &patched)?;
    Ok(ReviewKind::Patched)
}

/// `pod` in, `mutate_pod` out:
/// - an internal error only for an object that does not read as a Pod;
/// - a denial names a `drain.io/` annotation;
/// - the patch applies to the original; when the original reads as a Pod, so does the result;
/// - mutating the result changes nothing (idempotence);
/// - the pod's QoS class stays what it was (`check_qos`);
/// - the grace period is never shortened;
/// - front proxies get SIGTERM no later than the apps, at the earliest and at the latest: an
///   app behind an adaptive proxy never stops before the proxy's hold can have ended;
/// - the grace period leaves every planned container B after its latest signal, and every
///   helper's `--max` reaches past its latest signal.
///
/// Returns the mutation and the patched object, or `None` when the pod was denied or is not
/// a Pod.
pub fn check_mutation(
    pod: &Value,
    ctx: &PodContext<'_>,
) -> Result<Option<(Mutation, Value)>, String> {
    let is_pod = serde_json::from_value::<Pod>(pod.clone()).is_ok();
    let mutation = match mutate_pod(pod, ctx) {
        Ok(mutation) => mutation,
        Err(MutateError::Denied(err)) => {
            let message = err.to_string();
            if !message.contains("drain.io/") {
                return Err(format!("a denial that names no annotation: {message}"));
            }
            return Ok(None);
        }
        // Not a Pod: an internal error is the documented answer (the API server never sends one).
        Err(MutateError::Internal(_)) if !is_pod => return Ok(None),
        Err(MutateError::Internal(cause)) => {
            return Err(format!("internal error on a valid Pod: {cause}"));
        }
    };
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &mutation.patch.to_json_patch().0)
        .map_err(|e| format!("patch does not apply: {e}\n{:?}", mutation.patch))?;
    if is_pod {
        serde_json::from_value::<Pod>(patched.clone())
            .map_err(|e| format!("the patched object is no longer a Pod: {e}"))?;
    }

    check_helper_commands(pod, &patched)?;
    check_stop_signals(pod, &patched)?;
    check_env(pod, &patched)?;
    check_qos(pod, &patched)?;

    let again = mutate_pod(&patched, ctx).map_err(|e| format!("second run failed: {e}"))?;
    if !again.patch.is_empty() {
        return Err(format!("second run patched again: {:?}", again.patch));
    }

    let grace = |v: &Value| {
        v.pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30)
    };
    if grace(&patched) < grace(pod) {
        return Err(format!(
            "grace shortened from {} to {}",
            grace(pod),
            grace(&patched)
        ));
    }

    let planned: Vec<_> = mutation.plan.planned().collect();
    let latest_proxy = planned
        .iter()
        .filter(|c| c.role == Role::Proxy)
        .filter_map(|c| c.earliest_signal())
        .max();
    let earliest_app = planned
        .iter()
        .filter(|c| c.role == Role::App)
        .filter_map(|c| c.earliest_signal())
        .min();
    if let (Some(proxy), Some(app)) = (latest_proxy, earliest_app)
        && proxy > app
    {
        return Err(format!(
            "a front proxy stops at {proxy}, after an app at {app}"
        ));
    }
    let latest_of = |role| {
        planned
            .iter()
            .filter(move |c| c.role == role)
            .filter_map(|c| c.latest_signal())
    };
    if let (Some(proxy), Some(app)) = (latest_of(Role::Proxy).max(), latest_of(Role::App).min())
        && proxy > app
    {
        return Err(format!(
            "a front proxy may hold until {proxy}, after an app stops at the latest at {app}"
        ));
    }
    let plan = &mutation.plan;
    for c in &planned {
        let latest = i64::from(c.latest_signal().unwrap_or(0));
        if latest + i64::from(plan.shutdown_budget) > plan.grace_after {
            return Err(format!(
                "container {:?}: latest signal {latest}s plus B {}s is past the grace period {}s",
                c.name, plan.shutdown_budget, plan.grace_after
            ));
        }
        if let Some(args) = c.helper_args()
            && args.max < args.window.latest()
        {
            return Err(format!(
                "container {:?}: --max {}s ends the helper before its latest signal {}s",
                c.name,
                args.max,
                args.window.latest()
            ));
        }
    }
    Ok(Some((mutation, patched)))
}

/// Every drain-helper command the webhook wrote (a preStop exec or an installer container that
/// differs from the original and runs a `drain-helper` binary) is accepted by the helper's own
/// parser: `prestop` for hooks, `install` for installers (init or first container). A command the parser refuses
/// exits 2 before any delay, and the pod gets no drain at all.
pub fn check_helper_commands(original: &Value, patched: &Value) -> Result<(), String> {
    use drain_webhook::helper::args::{Command, parse};
    let runs_helper = |command: &[Value]| {
        command
            .first()
            .and_then(Value::as_str)
            .is_some_and(|program| program.rsplit('/').next() == Some("drain-helper"))
    };
    let parsed = |command: &[Value]| -> Result<Command, String> {
        let words: Vec<std::ffi::OsString> = command[1..]
            .iter()
            .map(|w| {
                w.as_str()
                    .map(Into::into)
                    .ok_or("a command word that is not a string")
            })
            .collect::<Result<_, _>>()?;
        parse(&words).map_err(|e| format!("drain-helper refuses {command:?}: {e}"))
    };
    for list in ["containers", "initContainers"] {
        let Some(containers) = patched
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        let before = original
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for container in containers {
            // Containers we did not change are the user's, whatever they hold.
            if before.contains(container) {
                continue;
            }
            let hook = container.pointer("/lifecycle/preStop/exec/command");
            if let Some(command) = hook.and_then(Value::as_array)
                && runs_helper(command)
            {
                match parsed(command)? {
                    Command::Prestop(_) => {}
                    other => return Err(format!("a preStop hook runs drain-helper {other:?}")),
                }
            }
            // The installer: an init container, or a regular container placed first.
            if let Some(command) = container.get("command").and_then(Value::as_array)
                && runs_helper(command)
            {
                match parsed(command)? {
                    Command::Install { .. } => {}
                    other => return Err(format!("{list} runs drain-helper {other:?}")),
                }
            }
        }
    }
    Ok(())
}

/// The Linux signals the API server accepts in `lifecycle.stopSignal` when `spec.os.name` is
/// `linux` (KEP-4960, "Cross validation with Pod spec.os.name": `supportedStopSignalsLinux`).
pub const LINUX_STOP_SIGNALS: [&str; 65] = [
    "SIGABRT",
    "SIGALRM",
    "SIGBUS",
    "SIGCHLD",
    "SIGCLD",
    "SIGCONT",
    "SIGFPE",
    "SIGHUP",
    "SIGILL",
    "SIGINT",
    "SIGIO",
    "SIGIOT",
    "SIGKILL",
    "SIGPIPE",
    "SIGPOLL",
    "SIGPROF",
    "SIGPWR",
    "SIGQUIT",
    "SIGSEGV",
    "SIGSTKFLT",
    "SIGSTOP",
    "SIGSYS",
    "SIGTERM",
    "SIGTRAP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGUSR1",
    "SIGUSR2",
    "SIGVTALRM",
    "SIGWINCH",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGRTMIN",
    "SIGRTMIN+1",
    "SIGRTMIN+2",
    "SIGRTMIN+3",
    "SIGRTMIN+4",
    "SIGRTMIN+5",
    "SIGRTMIN+6",
    "SIGRTMIN+7",
    "SIGRTMIN+8",
    "SIGRTMIN+9",
    "SIGRTMIN+10",
    "SIGRTMIN+11",
    "SIGRTMIN+12",
    "SIGRTMIN+13",
    "SIGRTMIN+14",
    "SIGRTMIN+15",
    "SIGRTMAX-14",
    "SIGRTMAX-13",
    "SIGRTMAX-12",
    "SIGRTMAX-11",
    "SIGRTMAX-10",
    "SIGRTMAX-9",
    "SIGRTMAX-8",
    "SIGRTMAX-7",
    "SIGRTMAX-6",
    "SIGRTMAX-5",
    "SIGRTMAX-4",
    "SIGRTMAX-3",
    "SIGRTMAX-2",
    "SIGRTMAX-1",
    "SIGRTMAX",
];

/// On Windows only these (KEP-4960: `supportedStopSignalsWindows`).
pub const WINDOWS_STOP_SIGNALS: [&str; 2] = ["SIGKILL", "SIGTERM"];

/// The API server's rules for the fields hook mode native writes, on one pod as JSON
/// (KEP-4960 "Cross validation with Pod spec.os.name", implemented in k8s.io/kubernetes
/// pkg/apis/core/validation/validation.go):
/// - a container (regular, init or ephemeral) with `lifecycle.stopSignal` needs
///   `spec.os.name` ("linux" or "windows");
/// - with `linux` the signal is one of [`LINUX_STOP_SIGNALS`], with `windows` one of
///   [`WINDOWS_STOP_SIGNALS`].
///
/// `validate` (tests/common/mod.rs) runs this next to its own rules.
pub fn stop_signal_violations(pod: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let os = spec.pointer("/os/name").and_then(Value::as_str);
    for (list, container) in all_containers(spec) {
        let name = container.get("name").and_then(Value::as_str).unwrap_or("");
        let Some(signal) = container.pointer("/lifecycle/stopSignal") else {
            continue;
        };
        let signal = signal.as_str().unwrap_or("");
        match os {
            None => errors.push(format!(
                "{list}[{name:?}].lifecycle.stopSignal {signal}: may not be set for containers with empty `spec.os.name`"
            )),
            Some("linux") if !LINUX_STOP_SIGNALS.contains(&signal) => errors.push(format!(
                "{list}[{name:?}].lifecycle.stopSignal {signal:?}: not a Linux signal"
            )),
            Some("windows") if !WINDOWS_STOP_SIGNALS.contains(&signal) => {
                errors.push(format!(
                    "{list}[{name:?}].lifecycle.stopSignal {signal:?}: only SIGTERM and SIGKILL on Windows"
                ))
            }
            Some("linux") | Some("windows") => {}
            Some(other) => errors.push(format!("spec.os.name {other:?}: Unsupported value")),
        }
    }
    errors
}

/// validateSleepAction on a pod as JSON: `preStop.sleep.seconds` is between 0 and the pod's
/// `terminationGracePeriodSeconds` (30 when unset). The typed `validate` has the same rule; this
/// one serves the fuzz targets, which share only this file.
pub fn sleep_violations(pod: &Value) -> Vec<String> {
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let grace = spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    all_containers(spec)
        .filter_map(|(list, container)| {
            let seconds = container
                .pointer("/lifecycle/preStop/sleep/seconds")
                .and_then(Value::as_i64)?;
            let name = container.get("name").and_then(Value::as_str).unwrap_or("");
            (!(0..=grace).contains(&seconds)).then(|| format!(
                "{list}[{name:?}].lifecycle.preStop.sleep.seconds {seconds}: must be between 0 and terminationGracePeriodSeconds ({grace})"
            ))
        })
        .collect()
}

/// Every container of a pod spec, with the list it is in.
fn all_containers(spec: &Value) -> impl Iterator<Item = (&'static str, &Value)> {
    ["containers", "initContainers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |list| {
            spec.get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(move |container| (list, container))
        })
}

/// A pod that met the API server's stop-signal rules still meets them after the patch, and
/// every `lifecycle.stopSignal` the user set is still there, unchanged.
pub fn check_stop_signals(original: &Value, patched: &Value) -> Result<(), String> {
    let violations = |pod| {
        let mut errors = stop_signal_violations(pod);
        errors.extend(sleep_violations(pod));
        errors
    };
    if violations(original).is_empty() {
        let errors = violations(patched);
        if !errors.is_empty() {
            return Err(format!(
                "the patched pod breaks the API's rules: {errors:?}"
            ));
        }
    }
    for list in ["containers", "initContainers"] {
        let after = patched
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array);
        for container in original
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(own) = container.pointer("/lifecycle/stopSignal") else {
                continue;
            };
            let name = container.get("name");
            let now = after
                .into_iter()
                .flatten()
                .find(|c| c.get("name") == name)
                .and_then(|c| c.pointer("/lifecycle/stopSignal"));
            if now != Some(own) {
                return Err(format!("the stopSignal {own} of {name:?} became {now:?}"));
            }
        }
    }
    Ok(())
}

/// `drain.io/env` only appends: a container's env list keeps every variable it had, in order,
/// and no name the webhook adds (`DRAIN_DELAY_SECONDS`, `DRAIN_SHUTDOWN_BUDGET_SECONDS`) appears
/// twice unless it already did.
pub fn check_env(original: &Value, patched: &Value) -> Result<(), String> {
    const ADDED: [&str; 2] = ["DRAIN_DELAY_SECONDS", "DRAIN_SHUTDOWN_BUDGET_SECONDS"];
    let count = |env: Option<&Value>, name: &str| {
        env.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| v.get("name").and_then(Value::as_str) == Some(name))
            .count()
    };
    for list in ["containers", "initContainers"] {
        let before = original
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array);
        let after = patched
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array);
        for container in after.into_iter().flatten() {
            let name = container.get("name");
            let old = before
                .into_iter()
                .flatten()
                .find(|c| c.get("name") == name)
                .and_then(|c| c.get("env"));
            let new = container.get("env");
            match (old, new) {
                (Some(Value::Array(old)), Some(Value::Array(new))) if !new.starts_with(old) => {
                    return Err(format!("the env of {name:?} lost or reordered variables"));
                }
                (Some(old), new) if !old.is_array() && !old.is_null() && new != Some(old) => {
                    return Err(format!("the env of {name:?} was not a list and changed"));
                }
                _ => {}
            }
            for added in ADDED {
                if count(new, added) > count(old, added).max(1) {
                    return Err(format!("{added} appears twice in the env of {name:?}"));
                }
            }
        }
    }
    Ok(())
}

/// A pod's QoS class as Kubernetes computes it: `ComputePodQOS` (kubernetes
/// `pkg/apis/core/helper/qos/qos.go`, gates `PodLevelResources` and
/// `PodLevelResourcesFixKubeletQOSClass` on) over the pod as the API server stores it, after
/// its defaulting (`SetDefaults_Pod`: a container's missing request takes its limit;
/// `defaultPodRequests`: a missing pod-level request takes the pod-level limit, or the
/// containers' summed requests when some container sets one). Written from the upstream rule,
/// apart from the webhook's own (`src/qos.rs`), so that the two check each other.
pub fn qos_class(spec: &k8s_openapi::api::core::v1::PodSpec) -> &'static str {
    use std::collections::BTreeMap;
    type Sums = BTreeMap<&'static str, i128>;
    const QOS: [&str; 2] = ["cpu", "memory"];
    let get = |list: &Option<
        BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
               name: &str| {
        list.as_ref()
            .and_then(|l| l.get(name))
            .map(|q| quantity_nanos(&q.0).unwrap_or(0))
    };
    let mut requests = Sums::new();
    let mut limits = Sums::new();
    let mut guaranteed = true;
    let containers = || {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
    };
    let pod_level = spec.resources.as_ref().filter(|r| {
        [&r.requests, &r.limits].into_iter().flatten().any(|l| {
            l.keys()
                .any(|k| QOS.contains(&k.as_str()) || k.starts_with("hugepages-"))
        })
    });
    if let Some(pod) = pod_level {
        for name in QOS {
            let limit = get(&pod.limits, name);
            let request = get(&pod.requests, name).or_else(|| {
                limit?;
                let from_containers: Vec<i128> = spec
                    .containers
                    .iter()
                    .filter_map(|c| {
                        let r = c.resources.as_ref()?;
                        get(&r.requests, name).or_else(|| get(&r.limits, name))
                    })
                    .collect();
                if from_containers.is_empty() {
                    limit
                } else {
                    Some(from_containers.iter().sum())
                }
            });
            if let Some(v) = request.filter(|v| *v > 0) {
                requests.insert(name, v);
            }
            if let Some(v) = limit.filter(|v| *v > 0) {
                limits.insert(name, v);
            }
        }
        let any_limit = pod.limits.as_ref().is_some_and(|l| !l.is_empty());
        if any_limit && !QOS.iter().all(|n| limits.contains_key(n)) {
            guaranteed = false;
        }
    } else {
        for c in containers() {
            let (req, lim) = c
                .resources
                .as_ref()
                .map_or((&None, &None), |r| (&r.requests, &r.limits));
            let mut found = 0;
            for name in QOS {
                let limit = get(lim, name).filter(|v| *v > 0);
                let request = if get(req, name).is_some() {
                    get(req, name)
                } else {
                    limit
                };
                if let Some(v) = request.filter(|v| *v > 0) {
                    *requests.entry(name).or_default() += v;
                }
                if let Some(v) = limit {
                    *limits.entry(name).or_default() += v;
                    found += 1;
                }
            }
            if found < QOS.len() {
                guaranteed = false;
            }
        }
    }
    if requests.is_empty() && limits.is_empty() {
        "BestEffort"
    } else if guaranteed
        && requests.iter().all(|(n, r)| limits.get(n) == Some(r))
        && requests.len() == limits.len()
    {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// A resource quantity (`1`, `500m`, `1.5Gi`, `2e3`) in units of 10^-9, exact; `None` when it
/// does not read as one.
pub fn quantity_nanos(text: &str) -> Option<i128> {
    let split = text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(text.len(), |(i, _)| i);
    let (number, suffix) = text.split_at(split);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut value: i128 = 0;
    for digit in int.bytes().chain(frac.bytes()) {
        value = value
            .checked_mul(10)?
            .checked_add(i128::from(digit - b'0'))?;
    }
    // value * 10^(ten - frac digits) * 2^two, then in nanos (10^9).
    let (ten, two): (i64, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        other if other.starts_with(['e', 'E']) => (other[1..].parse().ok()?, 0),
        _ => return None,
    };
    value = value.checked_mul(2i128.checked_pow(two)?)?;
    let power = ten + 9 - frac.len() as i64;
    if power >= 0 {
        value.checked_mul(10i128.checked_pow(u32::try_from(power).ok()?)?)
    } else {
        let divisor = 10i128.checked_pow(u32::try_from(-power).ok()?)?;
        Some((value + divisor - 1) / divisor)
    }
}

/// The QoS class is the same before and after the patch (`qos_class`), whenever the original
/// spec reads as a `PodSpec`: the installer's resources must keep it.
pub fn check_qos(original: &Value, patched: &Value) -> Result<(), String> {
    use k8s_openapi::api::core::v1::PodSpec;
    let Ok(before) = serde_json::from_value::<PodSpec>(original["spec"].clone()) else {
        return Ok(());
    };
    let after = serde_json::from_value::<PodSpec>(patched["spec"].clone())
        .map_err(|e| format!("the patched spec is no longer a PodSpec: {e}"))?;
    let (was, is) = (qos_class(&before), qos_class(&after));
    if was != is {
        return Err(format!(
            "the QoS class changed from {was} to {is}: {:#}",
            patched["spec"]
        ));
    }
    Ok(())
}

/// Any bytes as a termination message, through the drain-record parser
/// (`drain_webhook::drain_record`): never a panic; a message over the kubelet's 4096 bytes is
/// an error; a record read back is written again as one line of at most `MAX_RECORD_BYTES`
/// that reads back to the same record (the helper writes exactly that line).
pub fn check_drain_record(bytes: &[u8]) -> Result<(), String> {
    use drain_webhook::drain_record::{MAX_MESSAGE_BYTES, MAX_RECORD_BYTES, parse_message};
    let Ok(message) = std::str::from_utf8(bytes) else {
        return Ok(());
    };
    match parse_message(message) {
        Ok(Some(record)) => {
            let line = record.to_line();
            if line.len() > MAX_RECORD_BYTES {
                return Err(format!(
                    "a record read back is {} bytes: {line}",
                    line.len()
                ));
            }
            match parse_message(&line) {
                Ok(Some(again)) if again == record => Ok(()),
                other => Err(format!("{line:?} reads back as {other:?}, not {record:?}")),
            }
        }
        Ok(None) if message.len() > MAX_MESSAGE_BYTES => {
            Err(format!("a {}-byte message was read", message.len()))
        }
        Ok(None) => Ok(()),
        Err(err) if err.to_string().is_empty() => Err("an error without a message".into()),
        Err(_) => Ok(()),
    }
}
