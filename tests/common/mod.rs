//! Test support: fixtures, applying a patch the way the API server does, and the API server's
//! validation rules for the fields drain-webhook touches.
#![allow(dead_code)]

pub mod invariants;
pub mod timing;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use drain_webhook::mutate::{MutateError, Mutation, PodContext, mutate_pod};
use drain_webhook::settings::{KubeVersion, Settings};
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, PodSecurityContext};
use serde_json::Value;

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A YAML fixture as JSON, the form the API server sends.
pub fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture_path(name)).expect("fixture exists");
    serde_saphyr::from_str(&text).expect("fixture is valid YAML")
}

pub fn version(text: &str) -> Option<KubeVersion> {
    Some(text.parse().expect("valid version"))
}

pub fn mutate(pod: &Value, settings: &Settings, kube: Option<KubeVersion>) -> Mutation {
    mutate_with_namespace(pod, settings, kube, None)
}

pub fn mutate_with_namespace(
    pod: &Value,
    settings: &Settings,
    kube: Option<KubeVersion>,
    namespace: Option<&BTreeMap<String, String>>,
) -> Mutation {
    let ctx = PodContext {
        settings,
        namespace_annotations: namespace,
        kube_version: kube,
        image_volume_nodes: None,
    };
    mutate_pod(pod, &ctx).unwrap_or_else(|e| panic!("mutation failed: {e}"))
}

/// The context of a pod on 1.34 with `settings`, no namespace annotations and the nodes
/// unknown: what most tests plan in.
pub fn pod_context(settings: &Settings) -> PodContext<'_> {
    PodContext {
        settings,
        namespace_annotations: None,
        kube_version: version("1.34"),
        image_volume_nodes: None,
    }
}

/// The denial message for `pod` with the default settings on 1.34, `None` when it is admitted;
/// any other error fails the test.
pub fn denial(pod: &Value) -> Option<String> {
    let settings = Settings::default();
    let ctx = pod_context(&settings);
    match mutate_pod(pod, &ctx) {
        Err(MutateError::Denied(err)) => Some(err.to_string()),
        Ok(_) => None,
        Err(other) => panic!("not a denial: {other}"),
    }
}

/// With what the node cache says: whether every node's runtime mounts image volumes.
pub fn mutate_with_nodes(
    pod: &Value,
    settings: &Settings,
    kube: Option<KubeVersion>,
    nodes: Option<bool>,
) -> Mutation {
    let ctx = PodContext {
        settings,
        namespace_annotations: None,
        kube_version: kube,
        image_volume_nodes: nodes,
    };
    mutate_pod(pod, &ctx).unwrap_or_else(|e| panic!("mutation failed: {e}"))
}

/// What the API server does with a JSONPatch response: apply it to the object it sent, then
/// decode the result into the typed Pod.
pub fn apply(original: &Value, mutation: &Mutation) -> (Value, Pod) {
    let mut patched = original.clone();
    json_patch::patch(&mut patched, &mutation.patch.to_json_patch().0)
        .unwrap_or_else(|e| panic!("patch does not apply: {e}\n{:#?}", mutation.patch));
    let pod: Pod = serde_json::from_value(patched.clone())
        .unwrap_or_else(|e| panic!("patched object is not a Pod: {e}"));
    (patched, pod)
}

/// The subset of the API server's Pod validation that concerns the fields drain-webhook
/// writes. Rules cite k8s.io/kubernetes pkg/apis/core/validation/validation.go.
pub fn validate(pod: &Pod) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let Some(spec) = pod.spec.as_ref() else {
        return Err(vec!["spec: Required value".into()]);
    };
    // validatePodSpec: "terminationGracePeriodSeconds: must be >= 0" (ValidateNonnegativeField).
    let grace = spec.termination_grace_period_seconds.unwrap_or(30);
    if grace < 0 {
        errors.push(format!("terminationGracePeriodSeconds {grace} is negative"));
    }

    // validateVolumes: each volume name must be unique ("Duplicate value"); one source per
    // volume ("may not specify more than 1 volume type"); validateImageVolumeSource (KEP-4639):
    // `reference` is required and `pullPolicy` one of Always, Never, IfNotPresent.
    let mut volumes = BTreeSet::new();
    let mut image_volumes = BTreeSet::new();
    for volume in spec.volumes.iter().flatten() {
        if !volumes.insert(volume.name.as_str()) {
            errors.push(format!("spec.volumes: Duplicate value {:?}", volume.name));
        }
        if volume.image.is_some() && volume.empty_dir.is_some() {
            errors.push(format!(
                "spec.volumes[{:?}]: may not specify more than 1 volume type",
                volume.name
            ));
        }
        if let Some(image) = &volume.image {
            image_volumes.insert(volume.name.as_str());
            if image.reference.as_deref().is_none_or(str::is_empty) {
                errors.push(format!(
                    "spec.volumes[{:?}].image.reference: Required value",
                    volume.name
                ));
            }
            if let Some(policy) = &image.pull_policy
                && !["Always", "Never", "IfNotPresent"].contains(&policy.as_str())
            {
                errors.push(format!(
                    "spec.volumes[{:?}].image.pullPolicy: Unsupported value {policy:?}",
                    volume.name
                ));
            }
        }
    }

    // validateContainers / validateInitContainers / validateEphemeralContainers: names are
    // unique across all three lists ("Duplicate value").
    let mut names = BTreeSet::new();
    let regular = spec.containers.iter();
    let init = spec.init_containers.iter().flatten();
    for container in regular.clone().chain(init.clone()) {
        if !names.insert(container.name.as_str()) {
            errors.push(format!(
                "container name {:?}: Duplicate value",
                container.name
            ));
        }
    }
    for container in spec.ephemeral_containers.iter().flatten() {
        if !names.insert(container.name.as_str()) {
            errors.push(format!(
                "ephemeral container {:?}: Duplicate value",
                container.name
            ));
        }
    }

    // validateInitContainers: restartPolicy may only be "Always" (native sidecar) or unset.
    for container in init.clone() {
        if let Some(policy) = &container.restart_policy
            && policy != "Always"
        {
            errors.push(format!(
                "initContainers[{}].restartPolicy: Unsupported value {policy:?}",
                container.name
            ));
        }
    }

    // validateRestartPolicy: the pod's is Always, OnFailure or Never (unset reads as Always).
    if let Some(policy) = &spec.restart_policy
        && !["Always", "OnFailure", "Never"].contains(&policy.as_str())
    {
        errors.push(format!("restartPolicy: Unsupported value {policy:?}"));
    }
    for container in regular.clone() {
        // validateContainers: "may not be set for non-init containers" (restartPolicy on a
        // regular container needs the ContainerRestartRules gate, alpha from 1.34).
        if container.restart_policy.is_some() {
            errors.push(format!(
                "containers[{}].restartPolicy: Forbidden: may not be set for non-init containers",
                container.name
            ));
        }
    }
    // validateContainers / validateInitContainers: every name is a DNS-1123 label
    // (ValidateDNS1123Label: lower-case alphanumerics and '-', at most 63 characters).
    for container in regular.clone().chain(init.clone()) {
        let name = container.name.as_str();
        let label = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !label {
            errors.push(format!("container name {name:?}: not a DNS-1123 label"));
        }
    }

    for container in regular.chain(init) {
        // validateVolumeMounts: the volume must exist ("not found") and mountPath must be
        // unique within the container ("must be unique").
        let mut paths = BTreeSet::new();
        for mount in container.volume_mounts.iter().flatten() {
            if !volumes.contains(mount.name.as_str()) {
                errors.push(format!(
                    "container {:?} volumeMounts {:?}: not found",
                    container.name, mount.name
                ));
            }
            // validateVolumeMounts: subPath and subPathExpr are not allowed on image volumes
            // before 1.33 (KEP-4639); the kubelet mounts them read-only, and drain-webhook
            // says so in the mount.
            if image_volumes.contains(mount.name.as_str()) {
                if mount.sub_path.as_deref().is_some_and(|p| !p.is_empty())
                    || mount
                        .sub_path_expr
                        .as_deref()
                        .is_some_and(|p| !p.is_empty())
                {
                    errors.push(format!(
                        "container {:?} volumeMounts {:?}: subPath not allowed in image volume sources",
                        container.name, mount.name
                    ));
                }
                if mount.read_only != Some(true) {
                    errors.push(format!(
                        "container {:?} volumeMounts {:?}: an image volume is mounted read-only",
                        container.name, mount.name
                    ));
                }
            }
            if !paths.insert(mount.mount_path.as_str()) {
                errors.push(format!(
                    "container {:?} mountPath {:?}: must be unique",
                    container.name, mount.mount_path
                ));
            }
        }
        // validateLifecycle -> validateHandler: exactly one handler type; exec needs a
        // command; validateSleepAction: 0 <= seconds <= terminationGracePeriodSeconds.
        if let Some(handler) = container
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
        {
            validate_handler(&container.name, handler, grace, &mut errors);
        }
    }
    // lifecycle.stopSignal needs spec.os.name and a signal of that OS (KEP-4960; the checker is
    // shared with the property and corpus tests).
    if let Ok(json) = serde_json::to_value(pod) {
        errors.extend(invariants::stop_signal_violations(&json));
    }
    errors.extend(pod_level_violations(spec));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Pod-level resources (KEP-2837, "Clarifying Tricky Cases" 2 and 5; the API server's
/// `spec.resources` validation): a pod-level request below the containers' aggregate request
/// is invalid, the aggregate being KEP-753's (regular containers and sidecars summed; an init
/// container counts as its own request plus the sidecars started before it, as a maximum).
/// Container requests default to their limits.
fn pod_level_violations(spec: &k8s_openapi::api::core::v1::PodSpec) -> Vec<String> {
    let Some(pod_requests) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) else {
        return Vec::new();
    };
    let request = |c: &k8s_openapi::api::core::v1::Container, name: &str| -> i128 {
        c.resources
            .as_ref()
            .and_then(|r| {
                let get = |l: &Option<BTreeMap<String, _>>| {
                    l.as_ref()
                        .and_then(
                            |l: &BTreeMap<
                                String,
                                k8s_openapi::apimachinery::pkg::api::resource::Quantity,
                            >| l.get(name),
                        )
                        .and_then(|q| invariants::quantity_nanos(&q.0))
                };
                get(&r.requests).or_else(|| get(&r.limits))
            })
            .unwrap_or(0)
    };
    let mut errors = Vec::new();
    for name in ["cpu", "memory"] {
        let Some(pod) = pod_requests
            .get(name)
            .and_then(|q| invariants::quantity_nanos(&q.0))
        else {
            continue;
        };
        let mut sidecars = 0;
        let mut init_max = 0;
        for c in spec.init_containers.iter().flatten() {
            if c.restart_policy.as_deref() == Some("Always") {
                sidecars += request(c, name);
            } else {
                init_max = init_max.max(sidecars + request(c, name));
            }
        }
        let regular: i128 = spec.containers.iter().map(|c| request(c, name)).sum();
        let aggregate = init_max.max(regular + sidecars);
        if pod < aggregate {
            errors.push(format!(
                "spec.resources.requests[{name}]: must be greater than or equal to aggregate container requests ({pod} < {aggregate} nanos)"
            ));
        }
    }
    errors
}

fn validate_handler(name: &str, handler: &LifecycleHandler, grace: i64, errors: &mut Vec<String>) {
    let kinds = [
        handler.exec.is_some(),
        handler.http_get.is_some(),
        handler.tcp_socket.is_some(),
        handler.sleep.is_some(),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    if kinds != 1 {
        errors.push(format!(
            "container {name:?} preStop: must specify exactly one handler type (found {kinds})"
        ));
    }
    if let Some(exec) = &handler.exec
        && exec.command.as_ref().is_none_or(Vec::is_empty)
    {
        errors.push(format!(
            "container {name:?} preStop.exec.command: Required value"
        ));
    }
    if let Some(sleep) = &handler.sleep
        && (sleep.seconds < 0 || sleep.seconds > grace)
    {
        errors.push(format!(
            "container {name:?} preStop.sleep.seconds {}: must be greater than 0 and less than terminationGracePeriodSeconds ({grace})",
            sleep.seconds
        ));
    }
}

/// Pod Security Standards "restricted" (k8s.io/pod-security-admission policy checks
/// allowPrivilegeEscalation, capabilities_restricted, runAsNonRoot, runAsUser, seccompProfile,
/// privileged) for one container, taking the pod-level context into account.
pub fn restricted_violations(
    container: &Container,
    pod_context: Option<&PodSecurityContext>,
) -> Vec<String> {
    let mut violations = Vec::new();
    let sc = container.security_context.as_ref();
    if sc.and_then(|s| s.allow_privilege_escalation) != Some(false) {
        violations.push("allowPrivilegeEscalation != false".into());
    }
    if sc.and_then(|s| s.privileged) == Some(true) {
        violations.push("privileged".into());
    }
    let caps = sc.and_then(|s| s.capabilities.as_ref());
    let drops_all = caps
        .and_then(|c| c.drop.as_ref())
        .is_some_and(|d| d.iter().any(|c| c == "ALL"));
    if !drops_all {
        violations.push("capabilities.drop does not include ALL".into());
    }
    if caps
        .and_then(|c| c.add.as_ref())
        .is_some_and(|a| a.iter().any(|c| c != "NET_BIND_SERVICE"))
    {
        violations.push("capabilities.add beyond NET_BIND_SERVICE".into());
    }
    let non_root = sc
        .and_then(|s| s.run_as_non_root)
        .or(pod_context.and_then(|p| p.run_as_non_root));
    if non_root != Some(true) {
        violations.push("runAsNonRoot != true".into());
    }
    let user = sc
        .and_then(|s| s.run_as_user)
        .or(pod_context.and_then(|p| p.run_as_user));
    if user == Some(0) {
        violations.push("runAsUser = 0".into());
    }
    let seccomp = sc
        .and_then(|s| s.seccomp_profile.as_ref())
        .or(pod_context.and_then(|p| p.seccomp_profile.as_ref()))
        .map(|p| p.type_.as_str());
    if !matches!(seccomp, Some("RuntimeDefault") | Some("Localhost")) {
        violations.push("seccompProfile.type is not RuntimeDefault or Localhost".into());
    }
    violations
}

/// preStop of a container in a patched pod.
pub fn pre_stop<'a>(pod: &'a Pod, name: &str) -> Option<&'a LifecycleHandler> {
    container(pod, name)
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
}

pub fn container<'a>(pod: &'a Pod, name: &str) -> &'a Container {
    let spec = pod.spec.as_ref().expect("spec");
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// Seconds of a native sleep hook, or the `--delay` of a helper hook.
pub fn hook_delay(handler: &LifecycleHandler) -> Option<u32> {
    if let Some(sleep) = &handler.sleep {
        return u32::try_from(sleep.seconds).ok();
    }
    let command = handler.exec.as_ref()?.command.as_ref()?;
    let value = |flag: &str| {
        let at = command.iter().position(|w| w == flag)?;
        drain_webhook::duration::parse_seconds(command.get(at + 1)?).ok()
    };
    // The helper's earliest signal: the delay (the floor of a hold), then the stagger.
    Some(value("--delay")? + value("--stagger").unwrap_or(0))
}

pub fn helper_args(handler: &LifecycleHandler) -> Vec<String> {
    handler
        .exec
        .as_ref()
        .and_then(|e| e.command.clone())
        .unwrap_or_default()
}
