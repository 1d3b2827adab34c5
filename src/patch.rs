//! Turns a [`Plan`] into the RFC 6902 JSON Patch that carries it out, against the original
//! object as the API server sent it: only the fields the plan changes are touched, so fields
//! this crate does not know survive. Which parents exist is read from the typed pod (absent
//! and `null` both read as `None`, and `add` replaces a `null`).
//! Pointers are built from tokens (`~0`/`~1` escaping is the pointer type's job) and a parent
//! is always added before its children.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, ReplaceOperation};
use k8s_openapi::api::core::v1::Container;
use serde_json::{Value, json};

use crate::annotations;
use crate::duration::format_seconds;
use crate::plan::{
    Action, ChainedHook, ContainerPlan, HELPER_DIR, HELPER_PATH, HelperInjection, HookKind, Plan,
    PodShape,
};
use crate::settings::HelperSettings;

/// The patch for `plan` against `pod` (a Pod, or a pod template: both have `metadata` and
/// `spec`). Empty when the plan changes nothing.
pub fn build(pod: &PodShape, plan: &Plan, helper: &HelperSettings) -> Patch {
    let mut ops = Vec::new();
    let Some(status) = plan.status.as_ref() else {
        return Patch(ops);
    };

    if plan.set_grace {
        ops.push(add(
            pointer(&["spec", "terminationGracePeriodSeconds"]),
            json!(plan.grace_after),
        ));
    }

    if let Some(injection) = plan.helper.as_ref().filter(|h| !h.present) {
        let spec = pod.spec.as_ref();
        append(
            &mut ops,
            spec.is_some_and(|s| s.volumes.is_some()),
            &["spec", "volumes"],
            helper_volume(injection),
        );
    }

    for container in plan.planned() {
        let current = pod.spec.as_ref().and_then(|spec| {
            if container.init_container {
                spec.init_containers.as_ref()?.get(container.index)
            } else {
                spec.containers.get(container.index)
            }
        });
        container_ops(&mut ops, current, container, plan.helper.as_ref());
    }

    // Last of the spec changes, so the indices above are those of the original object.
    if let Some(injection) = plan.helper.as_ref().filter(|h| !h.present) {
        // First among initContainers, so the binary is there before any sidecar starts.
        prepend(
            &mut ops,
            pod.spec
                .as_ref()
                .is_some_and(|s| s.init_containers.is_some()),
            &["spec", "initContainers"],
            helper_init_container(injection, helper),
        );
    }

    // Compact JSON; serializing a plain struct of strings and numbers cannot fail.
    let status_json = serde_json::to_string(status).unwrap_or_default();
    let has_metadata = pod.metadata.is_some();
    let has_annotations = pod
        .metadata
        .as_ref()
        .is_some_and(|m| m.annotations.is_some());
    if !has_metadata {
        ops.push(add(
            pointer(&["metadata"]),
            json!({"annotations": {annotations::STATUS: status_json}}),
        ));
    } else if !has_annotations {
        ops.push(add(
            pointer(&["metadata", "annotations"]),
            json!({annotations::STATUS: status_json}),
        ));
    } else {
        ops.push(add(
            pointer(&["metadata", "annotations", annotations::STATUS]),
            json!(status_json),
        ));
    }
    Patch(ops)
}

fn container_ops(
    ops: &mut Vec<PatchOperation>,
    current: Option<&Container>,
    container: &ContainerPlan,
    helper: Option<&HelperInjection>,
) {
    debug_assert_eq!(container.action, Action::Planned);
    let list = if container.init_container {
        "initContainers"
    } else {
        "containers"
    };
    let mut base = pointer(&["spec", list]);
    base.push_back(container.index);

    let handler = pre_stop_handler(container);
    let lifecycle = current.and_then(|c| c.lifecycle.as_ref());
    match lifecycle {
        None => ops.push(add(
            child(&base, &["lifecycle"]),
            json!({"preStop": handler}),
        )),
        Some(l) if l.pre_stop.is_some() => {
            ops.push(PatchOperation::Replace(ReplaceOperation {
                path: child(&base, &["lifecycle", "preStop"]),
                value: handler,
            }));
        }
        Some(_) => ops.push(add(child(&base, &["lifecycle", "preStop"]), handler)),
    }

    if container.hook == Some(HookKind::Helper)
        && let Some(injection) = helper
    {
        let mounts = current.and_then(|c| c.volume_mounts.as_ref());
        let already_mounted = mounts.is_some_and(|mounts| {
            mounts
                .iter()
                .any(|m| m.mount_path == HELPER_DIR && m.name == injection.volume)
        });
        if !already_mounted {
            let mount =
                json!({"name": injection.volume, "mountPath": HELPER_DIR, "readOnly": true});
            let path = child(&base, &["volumeMounts"]);
            if mounts.is_some() {
                ops.push(add(child(&path, &["-"]), mount));
            } else {
                ops.push(add(path, json!([mount])));
            }
        }
    }
}

/// The preStop handler a planned container gets.
pub fn pre_stop_handler(container: &ContainerPlan) -> Value {
    let delay = container.pre_stop_seconds.unwrap_or(0);
    match container.hook {
        Some(HookKind::Helper) => json!({"exec": {"command": helper_command(container)}}),
        _ => json!({"sleep": {"seconds": delay}}),
    }
}

/// `["/.drain/drain-helper", "prestop", "--delay", "15s", ...]`, `--then-exec` last.
pub fn helper_command(container: &ContainerPlan) -> Vec<String> {
    let mut command = vec![
        HELPER_PATH.to_owned(),
        "prestop".to_owned(),
        "--delay".to_owned(),
        format_seconds(container.pre_stop_seconds.unwrap_or(0)),
    ];
    if let Some(max) = container.hook_max_seconds {
        command.extend(["--max".to_owned(), format_seconds(max)]);
    }
    for url in &container.notify {
        command.extend(["--notify".to_owned(), url.clone()]);
    }
    if !container.wait_idle.is_empty() {
        let ports: Vec<String> = container.wait_idle.iter().map(u16::to_string).collect();
        command.extend(["--wait-idle".to_owned(), ports.join(",")]);
    }
    if let Some(signal) = container.signal {
        command.extend(["--signal".to_owned(), signal.to_owned()]);
    }
    match &container.chained {
        Some(ChainedHook::HttpGet { url }) => {
            command.extend(["--then-http-get".to_owned(), url.clone()]);
        }
        Some(ChainedHook::Exec { command: original }) => {
            command.extend(["--then-exec".to_owned(), "--".to_owned()]);
            command.extend(original.iter().cloned());
        }
        // A chained sleep was folded into the delay by the planner.
        Some(ChainedHook::Sleep { .. }) | None => {}
    }
    command
}

fn helper_volume(injection: &HelperInjection) -> Value {
    json!({"name": injection.volume, "emptyDir": {"sizeLimit": "8Mi"}})
}

/// The init container that installs drain-helper: Pod Security "restricted" compliant.
pub fn helper_init_container(injection: &HelperInjection, helper: &HelperSettings) -> Value {
    json!({
        "name": injection.init_container,
        "image": helper.image,
        "imagePullPolicy": helper.image_pull_policy,
        "command": ["/drain-helper", "install", HELPER_DIR],
        "volumeMounts": [{"name": injection.volume, "mountPath": HELPER_DIR}],
        "resources": {
            "requests": {"cpu": helper.cpu_request, "memory": helper.memory_request},
            "limits": {"cpu": helper.cpu_limit, "memory": helper.memory_limit},
        },
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": helper.run_as_user,
            "runAsGroup": helper.run_as_user,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "privileged": false,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    })
}

/// Adds `value` at the end of the array at `path`, creating the array when absent.
fn append(ops: &mut Vec<PatchOperation>, exists: bool, path: &[&str], value: Value) {
    let list = pointer(path);
    if exists {
        ops.push(add(child(&list, &["-"]), value));
    } else {
        ops.push(add(list, json!([value])));
    }
}

/// Adds `value` at the front of the array at `path`, creating the array when absent.
fn prepend(ops: &mut Vec<PatchOperation>, exists: bool, path: &[&str], value: Value) {
    let list = pointer(path);
    if exists {
        let mut first = list;
        first.push_back(0usize);
        ops.push(add(first, value));
    } else {
        ops.push(add(list, json!([value])));
    }
}

fn pointer(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}

fn child(base: &PointerBuf, tokens: &[&str]) -> PointerBuf {
    let mut path = base.clone();
    for token in tokens {
        path.push_back(*token);
    }
    path
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_keys_are_escaped_in_pointers() {
        let path = pointer(&["metadata", "annotations", "drain.io/status"]);
        assert_eq!(path.as_str(), "/metadata/annotations/drain.io~1status");
        assert_eq!(pointer(&["a~b"]).as_str(), "/a~0b");
    }
}
