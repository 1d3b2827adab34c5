//! How drain-helper reaches the pod: its volume and the container that installs it.

use std::cell::RefCell;

use serde::Serialize;
use serde_json::value::RawValue;

use super::{Mount, PatchValue, PodPatch, pointer};
use crate::helper::args::render_install;
use crate::plan::{HELPER_DIR, HELPER_IMAGE_PATH, HelperInjection};
use crate::pod::SpecShape;
use crate::settings::HelperSettings;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Volume {
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
pub(super) enum InitContainerValue {
    Serialized(Box<RawValue>),
    /// Only if serializing failed, which plain strings and numbers cannot.
    Typed(Box<InitContainer>),
}

/// The init container that installs drain-helper: Pod Security "restricted" compliant.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InitContainer {
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

/// Adds the helper's volume: an emptyDir the installer fills, or the helper image itself.
pub(super) fn volume_op(
    patch: &mut PodPatch,
    spec: Option<&SpecShape>,
    injection: &HelperInjection,
    helper: &HelperSettings,
) {
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

/// Adds the installer. The caller makes it the last of the spec changes, so the indices of
/// the container operations before it are those of the original object.
pub(super) fn installer_op(
    patch: &mut PodPatch,
    spec: Option<&SpecShape>,
    injection: &HelperInjection,
    helper: &HelperSettings,
) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
