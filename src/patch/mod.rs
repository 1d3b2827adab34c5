//! Turns a [`Plan`] into the RFC 6902 JSON Patch that carries it out, against the original
//! object as the API server sent it: only the fields the plan changes are touched, so fields
//! this crate does not know survive. Which parents exist is read from the typed pod (absent
//! and `null` both read as `None`, and `add` replaces a `null`).
//! Pointers are built from tokens (`~0`/`~1` escaping is the pointer type's job) and a parent
//! is always added before its children.
//!
//! The values are typed and serialize straight to JSON: the admission server writes the patch
//! bytes without building a `serde_json::Value` tree per review (a third of the review time of
//! the seed pod, docs/benchmarks.md). [`PodPatch::to_json_patch`] gives the same operations as
//! a `json_patch::Patch` for the offline CLI and the tests.

use std::cell::RefCell;

use json_patch::jsonptr::PointerBuf;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::annotations;
use crate::helper::args::render_install;
use crate::plan::{EnvVar, HELPER_DIR, HELPER_IMAGE_PATH, HelperInjection, Plan};
use crate::pod::PodShape;
use crate::settings::HelperSettings;

mod container;

use container::container_ops;

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
        // Room for a typical patch up front (the seed pod's is 1.7 KB with 8 operations), so
        // the buffer is not grown and copied several times per review.
        let mut bytes = Vec::with_capacity(1024 + 192 * self.ops.len());
        serde_json::to_writer(&mut bytes, self)?;
        Ok(bytes)
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
    path: PointerBuf,
    value: PatchValue,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum PatchValue {
    Number(i64),
    Text(String),
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
    InitContainer(InitContainerValue),
    InitContainers([InitContainerValue; 1]),
    Annotations(StatusAnnotation),
    Metadata(Metadata),
}

/// A preStop handler: `{"sleep": {"seconds": N}}` or `{"exec": {"command": [...]}}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
enum Handler {
    Sleep { seconds: u32 },
    Exec { command: Vec<String> },
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

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Volume {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    empty_dir: Option<EmptyDir>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<ImageSource>,
}

/// `volumes[].image` (KEP-4639): the API requires `reference`; `pullPolicy` is one of Always,
/// Never, IfNotPresent, as for the helper's container image.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageSource {
    reference: String,
    pull_policy: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct EmptyDir {
    size_limit: &'static str,
}

/// The init container, serialized once ([`init_container_value`]).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum InitContainerValue {
    Serialized(Box<RawValue>),
    /// Only if serializing failed, which plain strings and numbers cannot.
    Typed(Box<InitContainer>),
}

/// The init container that installs drain-helper: Pod Security "restricted" compliant.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct InitContainer {
    name: String,
    image: String,
    image_pull_policy: String,
    command: Vec<String>,
    volume_mounts: [Mount; 1],
    resources: Resources,
    security_context: SecurityContext,
    termination_message_policy: &'static str,
}

#[derive(Debug, Clone, Serialize)]
struct Resources {
    requests: CpuMemory,
    limits: CpuMemory,
}

#[derive(Debug, Clone, Serialize)]
struct CpuMemory {
    cpu: String,
    memory: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct SecurityContext {
    run_as_non_root: bool,
    run_as_user: i64,
    run_as_group: i64,
    allow_privilege_escalation: bool,
    read_only_root_filesystem: bool,
    privileged: bool,
    capabilities: Capabilities,
    seccomp_profile: SeccompProfile,
}

#[derive(Debug, Clone, Serialize)]
struct Capabilities {
    drop: [&'static str; 1],
}

#[derive(Debug, Clone, Serialize)]
struct SeccompProfile {
    #[serde(rename = "type")]
    type_: &'static str,
}

/// `{"drain.io/status": "..."}`.
#[derive(Debug, Clone, Serialize)]
struct StatusAnnotation {
    #[serde(rename = "drain.io/status")]
    status: String,
}

#[derive(Debug, Clone, Serialize)]
struct Metadata {
    annotations: StatusAnnotation,
}

/// The patch for `plan` against `pod` (a Pod, or a pod template: both have `metadata` and
/// `spec`). Empty when the plan changes nothing.
pub fn build(pod: &PodShape, plan: &Plan, helper: &HelperSettings) -> PodPatch {
    let mut patch = PodPatch::default();
    let Some(status) = plan.status.as_ref() else {
        return patch;
    };
    let spec = pod.spec.as_ref();

    if plan.set_grace {
        patch.add(
            pointer(&["spec", "terminationGracePeriodSeconds"]),
            PatchValue::Number(plan.grace_after),
        );
    }

    if plan.adds_os_linux && spec.is_some_and(|s| s.os.is_none()) {
        patch.add(
            pointer(&["spec", "os"]),
            PatchValue::Os(PodOs { name: "linux" }),
        );
    }

    let injection = plan.helper.as_ref().filter(|h| !h.present);
    if let Some(injection) = injection {
        let volume = if injection.image_volume {
            // The helper image itself, read-only at /.drain: no init container, no copy.
            Volume {
                name: injection.volume.clone(),
                empty_dir: None,
                image: Some(ImageSource {
                    reference: helper.image.clone(),
                    pull_policy: helper.image_pull_policy.clone(),
                }),
            }
        } else {
            Volume {
                name: injection.volume.clone(),
                empty_dir: Some(EmptyDir { size_limit: "8Mi" }),
                image: None,
            }
        };
        if spec.is_some_and(|s| s.volumes.is_some()) {
            patch.add(
                pointer(&["spec", "volumes", "-"]),
                PatchValue::Volume(volume),
            );
        } else {
            patch.add(pointer(&["spec", "volumes"]), PatchValue::Volumes([volume]));
        }
    }

    // The planner only plans regular containers (native sidecars are never delayed).
    for container in plan.planned() {
        let current = spec.and_then(|spec| spec.containers.get(container.index));
        container_ops(&mut patch, current, container, plan.helper.as_ref());
    }

    // Last of the spec changes, so the indices above are those of the original object.
    if let Some(injection) = injection.filter(|i| !i.image_volume) {
        let init = init_container_value(injection, helper);
        // First among initContainers, so the binary is there before any sidecar starts.
        if spec.is_some_and(|s| s.init_containers.is_some()) {
            let mut first = pointer(&["spec", "initContainers"]);
            first.push_back(0usize);
            patch.add(first, PatchValue::InitContainer(init));
        } else {
            patch.add(
                pointer(&["spec", "initContainers"]),
                PatchValue::InitContainers([init]),
            );
        }
    }

    // Compact JSON; serializing a plain struct of strings and numbers cannot fail.
    let status = StatusAnnotation {
        status: serde_json::to_string(status).unwrap_or_default(),
    };
    match pod.metadata.as_ref() {
        None => patch.add(
            pointer(&["metadata"]),
            PatchValue::Metadata(Metadata {
                annotations: status,
            }),
        ),
        Some(m) if m.annotations.is_none() => patch.add(
            pointer(&["metadata", "annotations"]),
            PatchValue::Annotations(status),
        ),
        Some(_) => patch.add(
            pointer(&["metadata", "annotations", annotations::STATUS]),
            PatchValue::Text(status.status),
        ),
    }
    patch
}

impl PodPatch {
    fn add(&mut self, path: PointerBuf, value: PatchValue) {
        self.ops.push(Operation {
            op: "add",
            path,
            value,
        });
    }

    fn replace(&mut self, path: PointerBuf, value: PatchValue) {
        self.ops.push(Operation {
            op: "replace",
            path,
            value,
        });
    }
}

/// The settings and names an init container was serialized from, and its JSON.
struct SerializedInitContainer {
    helper: HelperSettings,
    init_container: String,
    volume: String,
    json: Box<RawValue>,
}

/// The init container as JSON. It is the same for every pod that gets the helper (it depends
/// only on the settings and the two names), so each thread keeps the last one it serialized and
/// copies it: building and serializing it anew was a tenth of a seed-pod review
/// (docs/benchmarks.md).
fn init_container_value(
    injection: &HelperInjection,
    helper: &HelperSettings,
) -> InitContainerValue {
    thread_local! {
        static LAST: RefCell<Option<SerializedInitContainer>> = const { RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        if let Some(last) = last.as_ref().filter(|last| {
            last.init_container == injection.init_container
                && last.volume == injection.volume
                && last.helper == *helper
        }) {
            return InitContainerValue::Serialized(last.json.clone());
        }
        let typed = init_container(injection, helper);
        match serde_json::value::to_raw_value(&typed) {
            Ok(json) => {
                *last = Some(SerializedInitContainer {
                    helper: helper.clone(),
                    init_container: injection.init_container.clone(),
                    volume: injection.volume.clone(),
                    json: json.clone(),
                });
                InitContainerValue::Serialized(json)
            }
            Err(_) => InitContainerValue::Typed(Box::new(typed)),
        }
    })
}

/// `["/drain-helper", "install", "/.drain"]`: the binary where the helper image has it, and the
/// helper's own rendering of `install`.
fn helper_installer_command() -> Vec<String> {
    let mut command = vec![HELPER_IMAGE_PATH.to_owned()];
    command.extend(render_install(HELPER_DIR));
    command
}

fn init_container(injection: &HelperInjection, helper: &HelperSettings) -> InitContainer {
    InitContainer {
        name: injection.init_container.clone(),
        image: helper.image.clone(),
        image_pull_policy: helper.image_pull_policy.clone(),
        command: helper_installer_command(),
        volume_mounts: [Mount {
            name: injection.volume.clone(),
            mount_path: HELPER_DIR,
            read_only: None,
        }],
        resources: Resources {
            requests: CpuMemory {
                cpu: helper.cpu_request.clone(),
                memory: helper.memory_request.clone(),
            },
            limits: CpuMemory {
                cpu: helper.cpu_limit.clone(),
                memory: helper.memory_limit.clone(),
            },
        },
        security_context: SecurityContext {
            run_as_non_root: true,
            run_as_user: helper.run_as_user,
            run_as_group: helper.run_as_user,
            allow_privilege_escalation: false,
            read_only_root_filesystem: true,
            privileged: false,
            capabilities: Capabilities { drop: ["ALL"] },
            seccomp_profile: SeccompProfile {
                type_: "RuntimeDefault",
            },
        },
        termination_message_policy: "FallbackToLogsOnError",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_keys_are_escaped_in_pointers() {
        let path = pointer(&["metadata", "annotations", "drain.io/status"]);
        assert_eq!(path.as_str(), "/metadata/annotations/drain.io~1status");
        assert_eq!(pointer(&["a~b"]).as_str(), "/a~0b");
    }

    /// The per-thread copy of the init container never outlives a change of the settings or
    /// the names it was written from.
    #[test]
    fn the_serialized_init_container_follows_settings_and_names() {
        let json = |injection: &HelperInjection, helper: &HelperSettings| {
            serde_json::to_value(init_container_value(injection, helper)).unwrap()
        };
        let fresh = |injection: &HelperInjection, helper: &HelperSettings| {
            serde_json::to_value(init_container(injection, helper)).unwrap()
        };
        let default_names = HelperInjection {
            init_container: "drain-helper".into(),
            volume: "drain-helper".into(),
            image_volume: false,
            present: false,
        };
        let other_names = HelperInjection {
            init_container: "drain-helper-2".into(),
            volume: "drain-helper-vol-2".into(),
            image_volume: false,
            present: false,
        };
        let helper = HelperSettings::default();
        let other_image = HelperSettings {
            image: "registry.example/drain-helper:9".into(),
            run_as_user: 1000,
            ..HelperSettings::default()
        };
        for (names, settings) in [
            (&default_names, &helper),
            (&default_names, &helper),
            (&other_names, &helper),
            (&other_names, &other_image),
            (&default_names, &helper),
        ] {
            assert_eq!(json(names, settings), fresh(names, settings));
        }
        let value = json(&other_names, &other_image);
        assert_eq!(value["image"], "registry.example/drain-helper:9");
        assert_eq!(value["name"], "drain-helper-2");
        assert_eq!(value["volumeMounts"][0]["name"], "drain-helper-vol-2");
        assert_eq!(value["securityContext"]["runAsUser"], 1000);
    }

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
