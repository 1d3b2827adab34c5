//! Turns a [`Plan`] into the RFC 6902 JSON Patch that carries it out, against the original
//! object as the API server sent it: only the fields the plan changes are touched, so fields
//! this crate does not know survive. Which parents exist is read from the typed pod (absent
//! and `null` both read as `None`, and `add` replaces a `null`).
//! Every pointer has fixed tokens, escaped by hand as RFC 6901 says and checked against
//! their tokens (path.rs), and a parent is always added before its children.
//!
//! The values are typed and serialize straight to JSON: the admission server writes the patch
//! bytes without building a `serde_json::Value` tree per review (a third of the review time of
//! the seed pod, docs/benchmarks.md). [`PodPatch::to_json_patch`] gives the same operations as
//! a `json_patch::Patch` for the offline CLI and the tests.

use serde::Serialize;

use crate::plan::{EnvVar, Installer, Plan};
use crate::pod::PodShape;
use crate::settings::HelperSettings;

mod container;
mod delivery;
mod json;
mod path;

use container::container_ops;
use delivery::{InstallerValue, Volume};
/// A JSON string with serde_json's exact escaping, written by hand (the answer's uid too).
pub(crate) use json::write_str as write_json_str;
use path::{Path, fixed};

/// The operations of one mutation, in order.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct PodPatch {
    ops: Vec<Operation>,
}

impl PodPatch {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// The patch as JSON text (an RFC 6902 array).
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = Vec::new();
        self.write_into(&mut bytes)?;
        Ok(bytes)
    }

    /// Appends the patch as JSON text (an RFC 6902 array) to `bytes`: the bytes serde_json
    /// writes for this type, written by hand (json.rs).
    pub fn write_into(&self, bytes: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        // Room for a typical patch up front (the seed pod's is 2 KB with 10 operations), so
        // the buffer is not grown and copied several times per review.
        bytes.reserve(1024 + 192 * self.ops.len());
        json::write_patch(bytes, &self.ops)
    }

    /// The same operations as a `json_patch::Patch`, to apply them.
    pub fn to_json_patch(&self) -> json_patch::Patch {
        // Our own plain types always serialize, and their JSON is a valid RFC 6902 patch.
        serde_json::to_value(self)
            .and_then(serde_json::from_value)
            .unwrap_or_else(|_| json_patch::Patch(Vec::new()))
    }
}

#[derive(Debug, Clone, Serialize)]
struct Operation {
    op: &'static str,
    path: Path,
    value: PatchValue,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum PatchValue {
    Number(i64),
    Text(String),
    /// Text already written as a JSON string (the status record).
    Literal(json::StringLiteral),
    Handler(Handler),
    Lifecycle(Lifecycle),
    Os(PodOs),
    /// `{"name": "DRAIN_DELAY_SECONDS", "value": "15"}` (`drain.io/env`): the plan's own type.
    Env(EnvVar),
    Envs(Vec<EnvVar>),
    Mount(Mount),
    Mounts([Mount; 1]),
    Volume(Volume),
    Volumes([Volume; 1]),
    Installer(InstallerValue),
    Installers([InstallerValue; 1]),
    Annotations(StatusAnnotation),
    Labels(PlannedLabel),
    Metadata(Metadata),
}

/// A preStop handler: `{"sleep": {"seconds": N}}` or `{"exec": {"command": [...]}}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
enum Handler {
    Sleep {
        seconds: u32,
    },
    Exec {
        command: Vec<String>,
    },
    /// `Exec` with the command already JSON (a helper hook, [`ContainerPlan::helper_command_json`]).
    ///
    /// [`ContainerPlan::helper_command_json`]: crate::plan::ContainerPlan::helper_command_json
    #[serde(rename = "exec")]
    ExecRendered {
        command: Box<serde_json::value::RawValue>,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Lifecycle {
    pre_stop: Handler,
    /// Hook mode native: the proxy's graceful signal, sent by the kubelet after preStop.
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_signal: Option<&'static str>,
}

/// `spec.os`: the API server requires its name for `lifecycle.stopSignal`.
#[derive(Debug, Clone, Serialize)]
struct PodOs {
    name: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Mount {
    name: String,
    mount_path: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_only: Option<bool>,
}

/// `{"drain.io/status": "..."}`.
#[derive(Debug, Clone, Serialize)]
struct StatusAnnotation {
    #[serde(rename = "drain.io/status")]
    status: json::StringLiteral,
}

/// `{"drain.io/planned": "true"}`: lets the observer's watch select planned pods server-side.
#[derive(Debug, Clone, Serialize)]
struct PlannedLabel {
    #[serde(rename = "drain.io/planned")]
    planned: &'static str,
}

const PLANNED: PlannedLabel = PlannedLabel { planned: "true" };

/// The label on every pod the webhook plans (with `drain.io/status`), and its value.
pub const PLANNED_LABEL: &str = "drain.io/planned";
/// `drain.io/planned=true`, the observer's label selector.
pub const PLANNED_SELECTOR: &str = "drain.io/planned=true";

#[derive(Debug, Clone, Serialize)]
struct Metadata {
    annotations: StatusAnnotation,
    labels: PlannedLabel,
}

/// The patch for `plan` against `pod` (a Pod, or a pod template: both have `metadata` and
/// `spec`). Empty when the plan changes nothing.
pub fn build(pod: &PodShape, plan: &Plan, helper: &HelperSettings) -> PodPatch {
    let Some(status) = plan.status.as_ref() else {
        return PodPatch::default();
    };
    // Room for every operation up front: at most seven for the pod, and a container's hook,
    // mount and env take about four. Grown one push at a time, the list was reallocated twice
    // per seed pod, and a reallocation of more than a kilobyte takes the allocator's arena
    // lock, which the other worker thread holds while it frees the previous answers
    // (docs/benchmarks.md, "The arena lock").
    let mut patch = PodPatch {
        ops: Vec::with_capacity(7 + 4 * plan.planned().count()),
    };
    let spec = pod.spec.as_ref();

    if plan.set_grace {
        patch.add(fixed::GRACE, PatchValue::Number(plan.grace_after));
    }

    if plan.adds_os_linux && spec.is_some_and(|s| s.os.is_none()) {
        patch.add(fixed::OS, PatchValue::Os(PodOs { name: "linux" }));
    }

    let injection = plan.helper.as_ref().filter(|h| !h.present);
    if let Some(injection) = injection {
        delivery::volume_op(&mut patch, spec, injection, helper);
    }

    // The planner only plans regular containers (native sidecars are never delayed).
    for container in plan.planned() {
        let current = spec.and_then(|spec| spec.containers.get(container.index));
        container_ops(&mut patch, current, container, plan.helper.as_ref());
    }

    // Last of the spec changes, so the indices above are those of the original object.
    if let Some(injection) = injection {
        delivery::installer_op(&mut patch, spec, injection, helper);
    }

    // The record's compact JSON, written straight as the annotation's JSON string.
    let status = StatusAnnotation {
        status: json::StringLiteral::of_json(status),
    };
    match pod.metadata.as_ref() {
        None => patch.add(
            fixed::METADATA,
            PatchValue::Metadata(Metadata {
                annotations: status,
                labels: PLANNED,
            }),
        ),
        Some(m) => {
            if m.annotations.is_none() {
                patch.add(fixed::ANNOTATIONS, PatchValue::Annotations(status));
            } else {
                patch.add(fixed::STATUS, PatchValue::Literal(status.status));
            }
            // The labels map first when the pod has none (a parent before its child).
            match &m.labels {
                None => patch.add(fixed::LABELS, PatchValue::Labels(PLANNED)),
                Some(labels) if labels.get(PLANNED_LABEL).map(String::as_str) == Some("true") => {}
                Some(_) => patch.add(
                    fixed::PLANNED,
                    PatchValue::Text(PLANNED.planned.to_string()),
                ),
            }
        }
    }
    // The annotations exist now (the status op added them if they were missing).
    if let Some(user_first) = injection
        .filter(|i| matches!(i.installer, Installer::First { .. }))
        .and_then(|_| spec?.containers.first())
    {
        let set = pod
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .is_some_and(|a| a.contains_key(DEFAULT_CONTAINER));
        if !set {
            patch.add(
                fixed::DEFAULT_CONTAINER,
                PatchValue::Text(user_first.name.clone()),
            );
        }
    }
    patch
}

/// The container `kubectl logs`, `exec` and `attach` pick without `-c`; unset, the first one,
/// which a first-container installer would otherwise become.
pub const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

impl PodPatch {
    fn add(&mut self, path: Path, value: PatchValue) {
        self.ops.push(Operation {
            op: "add",
            path,
            value,
        });
    }

    fn replace(&mut self, path: Path, value: PatchValue) {
        self.ops.push(Operation {
            op: "replace",
            path,
            value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use path::pointer;

    /// The per-thread copy of the init container never outlives a change of the settings or
    /// the names it was written from.
    #[test]
    fn typed_values_serialize_as_the_api_expects() {
        let mut patch = PodPatch::default();
        patch.add(
            pointer(&["a"]),
            PatchValue::Lifecycle(Lifecycle {
                pre_stop: Handler::Sleep { seconds: 10 },
                stop_signal: None,
            }),
        );
        patch.replace(
            pointer(&["b"]),
            PatchValue::Handler(Handler::Exec {
                command: vec!["x".into()],
            }),
        );
        let json: serde_json::Value = serde_json::from_slice(&patch.to_bytes().unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"op": "add", "path": "/a", "value": {"preStop": {"sleep": {"seconds": 10}}}},
                {"op": "replace", "path": "/b", "value": {"exec": {"command": ["x"]}}},
            ])
        );
        assert_eq!(patch.to_json_patch().0.len(), 2);
    }
}
