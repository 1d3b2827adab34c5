//! Turns a [`Plan`] into the RFC 6902 JSON Patch that carries it out, against the original
//! object as the API server sent it (so fields this crate does not know survive untouched).
//! Pointers are built from tokens (`~0`/`~1` escaping is the pointer type's job) and a parent
//! is always added before its children.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, ReplaceOperation};
use serde_json::{Value, json};

use crate::annotations;
use crate::duration::format_seconds;
use crate::plan::{
    Action, ChainedHook, ContainerPlan, HELPER_DIR, HELPER_PATH, HelperInjection, HookKind, Plan,
};
use crate::settings::HelperSettings;

/// The patch for `plan` against `object` (a Pod, or a pod template: both have `metadata` and
/// `spec`). Empty when the plan changes nothing.
pub fn build(object: &Value, plan: &Plan, helper: &HelperSettings) -> Patch {
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
        append(
            &mut ops,
            object,
            &["spec", "volumes"],
            helper_volume(injection),
        );
    }

    for container in plan.planned() {
        container_ops(&mut ops, object, container, plan.helper.as_ref());
    }

    // Last of the spec changes, so the indices above are those of the original object.
    if let Some(injection) = plan.helper.as_ref().filter(|h| !h.present) {
        // First among initContainers, so the binary is there before any sidecar starts.
        prepend(
            &mut ops,
            object,
            &["spec", "initContainers"],
            helper_init_container(injection, helper),
        );
    }

    // Compact JSON; serializing a plain struct of strings and numbers cannot fail.
    let status_json = serde_json::to_string(status).unwrap_or_default();
    let has_metadata = object.get("metadata").is_some_and(Value::is_object);
    let has_annotations = object
        .pointer("/metadata/annotations")
        .is_some_and(Value::is_object);
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
    object: &Value,
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
    let current = object.pointer(base.as_str()).unwrap_or(&Value::Null);

    let handler = pre_stop_handler(container);
    let lifecycle = current.get("lifecycle").filter(|l| l.is_object());
    match lifecycle {
        None => ops.push(add(
            child(&base, &["lifecycle"]),
            json!({"preStop": handler}),
        )),
        Some(l) if l.get("preStop").is_some_and(|p| !p.is_null()) => {
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
        let already_mounted = current
            .get("volumeMounts")
            .and_then(Value::as_array)
            .is_some_and(|mounts| {
                mounts.iter().any(|m| {
                    m.get("mountPath").and_then(Value::as_str) == Some(HELPER_DIR)
                        && m.get("name").and_then(Value::as_str) == Some(injection.volume.as_str())
                })
            });
        if !already_mounted {
            let mount =
                json!({"name": injection.volume, "mountPath": HELPER_DIR, "readOnly": true});
            let mounts = child(&base, &["volumeMounts"]);
            if current.get("volumeMounts").is_some_and(Value::is_array) {
                ops.push(add(child(&mounts, &["-"]), mount));
            } else {
                ops.push(add(mounts, json!([mount])));
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
fn append(ops: &mut Vec<PatchOperation>, object: &Value, path: &[&str], value: Value) {
    let list = pointer(path);
    if object.pointer(list.as_str()).is_some_and(Value::is_array) {
        ops.push(add(child(&list, &["-"]), value));
    } else {
        ops.push(add(list, json!([value])));
    }
}

/// Adds `value` at the front of the array at `path`, creating the array when absent.
fn prepend(ops: &mut Vec<PatchOperation>, object: &Value, path: &[&str], value: Value) {
    let list = pointer(path);
    if object.pointer(list.as_str()).is_some_and(Value::is_array) {
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
