//! How drain-helper reaches the pod: its volume and the container that installs it.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;

use super::{Mount, PatchValue, PodPatch, fixed};
use crate::helper::args::render_install;
use crate::plan::{HELPER_DIR, HELPER_IMAGE_PATH, HelperInjection, Installer};
use crate::pod::SpecShape;
use crate::qos::{InstallerQos, InstallerShape, installer_qos};
use crate::settings::HelperSettings;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Volume {
    pub(super) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) empty_dir: Option<EmptyDir>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) image: Option<ImageSource>,
}

/// `volumes[].image` (KEP-4639): the API requires `reference`; `pullPolicy` is one of Always,
/// Never, IfNotPresent, as for the helper's container image.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ImageSource {
    pub(super) reference: String,
    pub(super) pull_policy: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EmptyDir {
    pub(super) size_limit: &'static str,
}

/// The installer container, serialized once ([`installer_value`]).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(super) enum InstallerValue {
    Serialized(Box<RawValue>),
    /// Only if serializing failed, which plain strings and numbers cannot.
    Typed(Box<InstallerContainer>),
}

/// The container that installs drain-helper, first of `initContainers` or of `containers`
/// (the same fields serve both): Pod Security "restricted" compliant, small requests and
/// limits (namespaces with quotas reject containers without), no probes (a container without
/// a readiness probe is ready once running) and no `restartPolicy` (the API server allows it
/// on init containers only, and a regular container follows the pod's).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InstallerContainer {
    name: String,
    image: String,
    image_pull_policy: String,
    command: Vec<String>,
    volume_mounts: [Mount; 1],
    resources: Resources,
    security_context: SecurityContext,
    termination_message_policy: &'static str,
}

/// Requests and limits by resource name; cpu and memory only where they keep the pod's QoS
/// class (`crate::qos`).
#[derive(Debug, Clone, Serialize)]
struct Resources {
    requests: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    limits: BTreeMap<&'static str, String>,
}

/// The installer's ephemeral storage: its logs (the root filesystem is read-only), and where a
/// pod-wide limit exists, a share covering the helper's emptyDir (its `sizeLimit`, 8Mi), which
/// counts toward that limit. A request is harmless anywhere (no QoS resource, no cap) and lets
/// a namespace whose ResourceQuota covers `requests.ephemeral-storage` admit the pod.
const EPHEMERAL_STORAGE: &str = "16Mi";

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
    let volume = if injection.installer == Installer::None {
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
        patch.add(fixed::VOLUMES_END, PatchValue::Volume(volume));
    } else {
        patch.add(fixed::VOLUMES, PatchValue::Volumes([volume]));
    }
}

/// Adds the installer, if the delivery has one. The caller makes it the last of the spec
/// changes, so the indices of the container operations before it are those of the original
/// object.
pub(super) fn installer_op(
    patch: &mut PodPatch,
    spec: Option<&SpecShape>,
    injection: &HelperInjection,
    helper: &HelperSettings,
) {
    // Read from the pod's resources only where an installer is added (not for image volumes).
    let qos = || installer_qos(spec);
    let first = match &injection.installer {
        Installer::None => return,
        // First among initContainers, so the binary is there before any sidecar starts.
        Installer::Init(_) => {
            if spec.is_none_or(|s| s.init_containers.is_none()) {
                let value = installer_value(injection, helper, qos());
                patch.add(fixed::INIT_CONTAINERS, PatchValue::Installers([value]));
                return;
            }
            fixed::FIRST_INIT_CONTAINER
        }
        // First among containers: started before the others (the kubelet starts them in
        // order, without waiting), and `kubectl.kubernetes.io/default-container` keeps the
        // user's first container the one `kubectl logs` and `exec` pick.
        Installer::First { .. } => fixed::FIRST_CONTAINER,
    };
    patch.add(
        first,
        PatchValue::Installer(installer_value(injection, helper, qos())),
    );
}

/// The settings and names an installer was serialized from, and its JSON.
struct SerializedInstaller {
    helper: HelperSettings,
    qos: InstallerShape,
    installer: Installer,
    volume: String,
    json: Box<RawValue>,
}

/// The installer as JSON. It is the same for every pod with the same delivery (it depends only
/// on the settings, the delivery, the two names and how the pod's QoS class shapes its
/// resources), so each thread keeps the last one it serialized and copies it: building and
/// serializing it anew was a tenth of a seed-pod review (docs/benchmarks.md).
fn installer_value(
    injection: &HelperInjection,
    helper: &HelperSettings,
    qos: InstallerShape,
) -> InstallerValue {
    thread_local! {
        static LAST: RefCell<Option<SerializedInstaller>> = const { RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        if let Some(last) = last.as_ref().filter(|last| {
            last.installer == injection.installer
                && last.volume == injection.volume
                && last.helper == *helper
                && last.qos == qos
        }) {
            return InstallerValue::Serialized(last.json.clone());
        }
        let typed = installer_container(injection, helper, qos);
        match serde_json::value::to_raw_value(&typed) {
            Ok(json) => {
                *last = Some(SerializedInstaller {
                    helper: helper.clone(),
                    qos,
                    installer: injection.installer.clone(),
                    volume: injection.volume.clone(),
                    json: json.clone(),
                });
                InstallerValue::Serialized(json)
            }
            Err(_) => InstallerValue::Typed(Box::new(typed)),
        }
    })
}

/// `["/drain-helper", "install", "/.drain"]` (and `--then sleep|exit` for a first container):
/// the binary where the helper image has it, and the helper's own rendering of `install`.
fn installer_command(installer: &Installer) -> Vec<String> {
    let then = match installer {
        Installer::First { then, .. } => Some(*then),
        Installer::Init(_) | Installer::None => None,
    };
    let mut command = vec![HELPER_IMAGE_PATH.to_owned()];
    command.extend(render_install(HELPER_DIR, then));
    command
}

/// Requests and limits that keep the pod's QoS class (docs/decisions.md "The installer keeps
/// the pod's QoS class"): none of cpu and memory in a BestEffort pod or where pod-level
/// resources decide, requests raised to the limits in a Guaranteed pod (the class needs them
/// equal in every container, init containers included), the operator's values otherwise.
fn installer_resources(helper: &HelperSettings, shape: InstallerShape) -> Resources {
    let mut requests = BTreeMap::from([("ephemeral-storage", EPHEMERAL_STORAGE.to_owned())]);
    let mut limits = BTreeMap::new();
    if shape.storage_limit {
        limits.insert("ephemeral-storage", EPHEMERAL_STORAGE.to_owned());
    }
    let (cpu, memory) = match shape.cpu_memory {
        InstallerQos::NoCpuMemory => return Resources { requests, limits },
        InstallerQos::RequestsAtLimits => (&helper.cpu_limit, &helper.memory_limit),
        InstallerQos::AsConfigured => (&helper.cpu_request, &helper.memory_request),
    };
    requests.insert("cpu", cpu.clone());
    requests.insert("memory", memory.clone());
    limits.insert("cpu", helper.cpu_limit.clone());
    limits.insert("memory", helper.memory_limit.clone());
    Resources { requests, limits }
}

fn installer_container(
    injection: &HelperInjection,
    helper: &HelperSettings,
    qos: InstallerShape,
) -> InstallerContainer {
    InstallerContainer {
        name: injection.installer_name().unwrap_or_default().to_owned(),
        image: helper.image.clone(),
        image_pull_policy: helper.image_pull_policy.clone(),
        command: installer_command(&injection.installer),
        volume_mounts: [Mount {
            name: injection.volume.clone(),
            mount_path: HELPER_DIR,
            read_only: None,
        }],
        resources: installer_resources(helper, qos),
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
    use crate::plan::AfterInstall;

    const BURSTABLE: InstallerShape = shape(InstallerQos::AsConfigured, false);

    const fn shape(cpu_memory: InstallerQos, storage_limit: bool) -> InstallerShape {
        InstallerShape {
            cpu_memory,
            storage_limit,
        }
    }

    /// The resources keep the pod's class: cpu and memory equal in a Guaranteed pod, absent in
    /// a BestEffort one, as configured in a Burstable one; ephemeral storage always requested,
    /// limited only where the pod already has a limit; and the per-thread copy follows.
    #[test]
    fn the_installer_resources_follow_the_pods_class() {
        let injection = HelperInjection {
            volume: "drain-helper".into(),
            installer: Installer::Init("drain-helper".into()),
            present: false,
        };
        let helper = HelperSettings::default();
        let resources = |qos| {
            serde_json::to_value(installer_value(&injection, &helper, qos)).unwrap()["resources"]
                .clone()
        };
        assert_eq!(
            resources(shape(InstallerQos::RequestsAtLimits, false)),
            serde_json::json!({"requests": {"cpu": "20m", "memory": "32Mi", "ephemeral-storage": "16Mi"}, "limits": {"cpu": "20m", "memory": "32Mi"}})
        );
        assert_eq!(
            resources(shape(InstallerQos::NoCpuMemory, false)),
            serde_json::json!({"requests": {"ephemeral-storage": "16Mi"}})
        );
        assert_eq!(
            resources(shape(InstallerQos::AsConfigured, true)),
            serde_json::json!({"requests": {"cpu": "10m", "memory": "16Mi", "ephemeral-storage": "16Mi"}, "limits": {"cpu": "20m", "memory": "32Mi", "ephemeral-storage": "16Mi"}})
        );
        assert_eq!(
            resources(shape(InstallerQos::NoCpuMemory, true)),
            serde_json::json!({"requests": {"ephemeral-storage": "16Mi"}, "limits": {"ephemeral-storage": "16Mi"}})
        );
    }

    /// The per-thread copy of the installer never outlives a change of the settings, the
    /// names or the delivery it was written from.
    #[test]
    fn the_serialized_installer_follows_settings_names_and_delivery() {
        let json = |injection: &HelperInjection, helper: &HelperSettings| {
            serde_json::to_value(installer_value(injection, helper, BURSTABLE)).unwrap()
        };
        let fresh = |injection: &HelperInjection, helper: &HelperSettings| {
            serde_json::to_value(installer_container(injection, helper, BURSTABLE)).unwrap()
        };
        let injection = |installer: Installer, volume: &str| HelperInjection {
            volume: volume.into(),
            installer,
            present: false,
        };
        let default_names = injection(Installer::Init("drain-helper".into()), "drain-helper");
        let other_names = injection(
            Installer::Init("drain-helper-2".into()),
            "drain-helper-vol-2",
        );
        let sleeping = injection(
            Installer::First {
                name: "drain-helper-2".into(),
                then: AfterInstall::Sleep,
            },
            "drain-helper-vol-2",
        );
        let exiting = injection(
            Installer::First {
                name: "drain-helper-2".into(),
                then: AfterInstall::Exit,
            },
            "drain-helper-vol-2",
        );
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
            (&sleeping, &other_image),
            (&exiting, &other_image),
            (&default_names, &helper),
        ] {
            assert_eq!(json(names, settings), fresh(names, settings));
        }
        let value = json(&other_names, &other_image);
        assert_eq!(value["image"], "registry.example/drain-helper:9");
        assert_eq!(value["name"], "drain-helper-2");
        assert_eq!(value["volumeMounts"][0]["name"], "drain-helper-vol-2");
        assert_eq!(value["securityContext"]["runAsUser"], 1000);
        assert_eq!(
            value["command"],
            serde_json::json!(["/drain-helper", "install", "/.drain"])
        );
        assert_eq!(
            json(&sleeping, &other_image)["command"],
            serde_json::json!(["/drain-helper", "install", "/.drain", "--then", "sleep"])
        );
        assert_eq!(
            json(&exiting, &other_image)["command"],
            serde_json::json!(["/drain-helper", "install", "/.drain", "--then", "exit"])
        );
    }
}
