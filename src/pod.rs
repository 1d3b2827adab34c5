//! The pod as the webhook reads it: only the spec and container fields the planner and the
//! patch use, decoded from JSON objects only. Shared by `plan`, `patch`, `limits` and `mutate`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{
    Affinity, ContainerPort, ImageVolumeSource, Lifecycle, PodOS, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde::de::IgnoredAny;

/// The parts of a Pod (or of a pod template) the planner reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(remote = "Self")]
pub struct PodShape {
    /// `None` when absent (a pod template may have none): the patch then adds it.
    #[serde(default)]
    pub metadata: Option<ObjectMeta>,
    #[serde(default)]
    pub spec: Option<SpecShape>,
}

/// The fields of a `PodSpec` the planner and the patch read, with the `k8s-openapi` types and
/// names. Every other field (env, resources, probes, ...) is skipped unread: decoding the whole
/// spec into `k8s_openapi::PodSpec` built and dropped a 2 KB container struct per container on
/// every review (docs/benchmarks.md). The patch applies to the object as sent, so nothing
/// skipped here is lost.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(remote = "Self", default, rename_all = "camelCase")]
pub struct SpecShape {
    #[serde(deserialize_with = "null_as_default")]
    pub containers: Vec<ContainerShape>,
    pub init_containers: Option<Vec<ContainerShape>>,
    /// Only their names matter: they share the container namespace.
    pub ephemeral_containers: Option<Vec<Named>>,
    /// Their names (the helper volume must not collide) and, for image volumes, the image (an
    /// earlier run's helper volume is recognised by it).
    pub volumes: Option<Vec<VolumeShape>>,
    pub share_process_namespace: Option<bool>,
    /// A pod on the node's network namespace: the adaptive hold cannot tell its own traffic
    /// from the node's, so it holds for the fixed D (docs/decisions.md).
    pub host_network: Option<bool>,
    /// Always (the default), OnFailure or Never: chooses how the helper is installed.
    #[serde(deserialize_with = "known_text::restart_policy")]
    pub restart_policy: Option<Cow<'static, str>>,
    pub termination_grace_period_seconds: Option<i64>,
    /// Windows pods are left alone.
    pub os: Option<PodOS>,
    /// Windows markers besides `os` (DESIGN.md section 2): a node selector, a required node
    /// affinity, or `windowsOptions` in a security context.
    pub node_selector: Option<BTreeMap<String, String>>,
    pub affinity: Option<Affinity>,
    pub security_context: Option<SecurityContextShape>,
    /// Pod-level resources (`spec.resources`): they decide the QoS class (`crate::qos`) and
    /// bound the containers' sum. Kept as text, as a container's.
    pub resources: Option<Box<serde_json::value::RawValue>>,
}

/// The fields of a `Container` the planner and the patch read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(remote = "Self", default, rename_all = "camelCase")]
pub struct ContainerShape {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    pub image: Option<String>,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub ports: Option<Vec<ContainerPort>>,
    /// Boxed, as the probes below: k8s-openapi's `Lifecycle` is 440 bytes and most containers
    /// have none, and serde moves a container several times while reading it
    /// (docs/benchmarks.md, "The seed review in the server").
    pub lifecycle: Option<Box<Lifecycle>>,
    pub volume_mounts: Option<Vec<VolumeMount>>,
    #[serde(deserialize_with = "known_text::restart_policy")]
    pub restart_policy: Option<Cow<'static, str>>,
    pub security_context: Option<SecurityContextShape>,
    /// A failing liveness or startup probe kills with its own grace period, if it sets one.
    /// Only readiness probes keep running during termination (kubernetes#110191); liveness and
    /// startup probes stop at deletion ([`SpecShape::connecting_probes`]).
    pub readiness_probe: Option<Box<ProbeShape>>,
    pub liveness_probe: Option<Box<ProbeShape>>,
    pub startup_probe: Option<Box<ProbeShape>>,
    /// Requests and limits: the pod's QoS class, which the installer keeps (`crate::qos`).
    /// Kept as text, decoded only for a pod that gets the installer, as `env` is.
    pub resources: Option<Box<serde_json::value::RawValue>>,
    /// Kept as text, decoded only when `drain.io/env` asks for it ([`ContainerShape::env_list`]):
    /// decoding every container's env into a `Value` on every review tripled the cost of a
    /// 40-container pod (docs/benchmarks.md).
    pub env: Option<Box<serde_json::value::RawValue>>,
    /// Where the helper appends its drain record (`crate::plan::RecordPlan`), unless the
    /// policy is `FallbackToLogsOnError`.
    #[serde(deserialize_with = "known_text::message_path")]
    pub termination_message_path: Option<Cow<'static, str>>,
    #[serde(deserialize_with = "known_text::message_policy")]
    pub termination_message_policy: Option<Cow<'static, str>>,
}

/// A container's `env`, as `drain.io/env` sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvList {
    /// No `env` (or `null`).
    Absent,
    /// A list of objects (the variables, as they are).
    Vars(Vec<serde_json::Value>),
    /// Anything else: left alone, never a reason to refuse the pod.
    NotAList,
}

impl ContainerShape {
    /// Decodes `env` (kept as text while the pod was read).
    pub fn env_list(&self) -> EnvList {
        let Some(raw) = &self.env else {
            return EnvList::Absent;
        };
        match serde_json::from_str::<serde_json::Value>(raw.get()) {
            Ok(serde_json::Value::Null) => EnvList::Absent,
            Ok(serde_json::Value::Array(vars)) if vars.iter().all(serde_json::Value::is_object) => {
                EnvList::Vars(vars)
            }
            _ => EnvList::NotAList,
        }
    }
}

/// A probe, as far as the planner cares: the grace period of the kill it triggers, and
/// whether (and how often) it opens a connection into the pod, which the adaptive hold must not
/// take for traffic.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProbeShape {
    pub termination_grace_period_seconds: Option<i64>,
    pub period_seconds: Option<i32>,
    pub http_get: Option<ProbeTarget>,
    pub tcp_socket: Option<ProbeTarget>,
    pub grpc: Option<ProbeTarget>,
}

/// Where a probe connects: the pod's IP unless `host` names another (httpGet, tcpSocket;
/// grpc has no host), on `port` (a number, or for httpGet and tcpSocket a named port of the
/// container).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProbeTarget {
    pub host: Option<String>,
    pub port: Option<IntOrString>,
}

/// Kubernetes' default `periodSeconds` of a probe.
const DEFAULT_PROBE_PERIOD: u32 = 10;

impl ProbeShape {
    /// The period in seconds and the target of a probe whose every run opens a TCP connection
    /// into the pod: an httpGet or tcpSocket probe without a `host` (which would send it
    /// elsewhere), or a grpc probe (always the pod's IP). Exec probes open none.
    pub fn connection(&self) -> Option<(u32, &ProbeTarget)> {
        fn into_pod(target: &Option<ProbeTarget>) -> Option<&ProbeTarget> {
            target
                .as_ref()
                .filter(|t| t.host.as_deref().is_none_or(str::is_empty))
        }
        let target = into_pod(&self.http_get)
            .or_else(|| into_pod(&self.tcp_socket))
            .or(self.grpc.as_ref())?;
        let period = self
            .period_seconds
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p > 0)
            .unwrap_or(DEFAULT_PROBE_PERIOD);
        Some((period, target))
    }
}

/// A pod's or a container's security context, as far as the planner cares: whether it sets
/// Windows options (read unparsed).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(remote = "Self", default, rename_all = "camelCase")]
pub struct SecurityContextShape {
    pub windows_options: Option<IgnoredAny>,
}

/// The node label that names a node's operating system, and its pre-1.14 spelling.
const OS_LABELS: [&str; 2] = ["kubernetes.io/os", "beta.kubernetes.io/os"];

impl SpecShape {
    /// Every readiness probe in the pod that connects into it, with the container that declares
    /// it (`true` for `initContainers`, its index): regular containers and native sidecars share
    /// the network namespace. Only readiness probes run while the pod terminates: once the pod
    /// has a deletionTimestamp the kubelet's probe worker sets liveness and startup results to
    /// success without probing (pkg/kubelet/prober/worker.go, "Pod deletion requested, setting
    /// %v probe result to success", kubernetes/kubernetes#98571, 1.21+), so listing them would
    /// excuse connections no probe opens.
    pub fn connecting_probes(&self) -> Vec<(bool, usize, &ContainerShape, u32, &ProbeTarget)> {
        let regular = self
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| (false, i, c));
        let sidecars = self
            .init_containers
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, c)| c.restart_policy.as_deref() == Some("Always"))
            .map(|(i, c)| (true, i, c));
        regular
            .chain(sidecars)
            .flat_map(|(init, index, c)| {
                let (period, target) = c.readiness_probe.as_ref()?.connection()?;
                Some((init, index, c, period, target))
            })
            .collect()
    }

    /// The container at `index` of `initContainers` (`init`) or `containers`.
    pub fn container_at(&self, init: bool, index: usize) -> Option<&ContainerShape> {
        if init {
            self.init_containers.as_deref()?.get(index)
        } else {
            self.containers.get(index)
        }
    }

    /// The pod asks for nodes labelled `key: value` (a spot pool): in its nodeSelector, or in
    /// a required node-affinity term that admits only that value.
    pub fn selects_node_label(&self, key: &str, value: &str) -> bool {
        let by_selector = self
            .node_selector
            .as_ref()
            .is_some_and(|selector| selector.get(key).is_some_and(|v| v == value));
        let by_affinity = self.required_node_term_admits_only(|label| label == key, |v| v == value);
        by_selector || by_affinity
    }

    /// A required node-affinity term has an `In` expression on a label `key` accepts whose
    /// values all pass `value` (the scheduler may only pick such nodes for that term).
    fn required_node_term_admits_only(
        &self,
        key: impl Fn(&str) -> bool,
        value: impl Fn(&str) -> bool,
    ) -> bool {
        self.affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .is_some_and(|required| {
                required.node_selector_terms.iter().any(|term| {
                    term.match_expressions.iter().flatten().any(|e| {
                        key(&e.key)
                            && e.operator == "In"
                            && e.values.as_ref().is_some_and(|values| {
                                !values.is_empty() && values.iter().all(|v| value(v))
                            })
                    })
                })
            })
    }

    /// The pod runs on Windows nodes, by any of the usual markers: `spec.os.name`, a node
    /// selector or a required node affinity on `kubernetes.io/os: windows`, or Windows options
    /// in the pod's or a container's security context (hostProcess pods set only these).
    pub fn is_windows(&self) -> bool {
        let windows = |value: &str| value.eq_ignore_ascii_case("windows");
        let by_os = self.os.as_ref().is_some_and(|os| windows(&os.name));
        let by_selector = self.node_selector.as_ref().is_some_and(|selector| {
            OS_LABELS
                .iter()
                .any(|label| selector.get(*label).is_some_and(|v| windows(v)))
        });
        // A term that admits Windows nodes only: the scheduler may pick it.
        let by_affinity =
            self.required_node_term_admits_only(|label| OS_LABELS.contains(&label), windows);
        let has_windows_options = |context: &Option<SecurityContextShape>| {
            context
                .as_ref()
                .is_some_and(|c| c.windows_options.is_some())
        };
        let by_security_context = has_windows_options(&self.security_context)
            || self
                .containers
                .iter()
                .chain(self.init_containers.iter().flatten())
                .any(|c| has_windows_options(&c.security_context));
        by_os || by_selector || by_affinity || by_security_context
    }
}

/// A volume: its name, and its image when it is an image volume.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(remote = "Self", default)]
pub struct VolumeShape {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    pub image: Option<ImageVolumeSource>,
}

/// Anything with a name (an ephemeral container, a volume).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(remote = "Self", default)]
pub struct Named {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
}

// The shapes read only from JSON objects, as `k8s-openapi`'s types do: a derived struct also
// takes an array as its fields in order, and a patch against such a "container" cannot apply.
// `remote = "Self"` makes the derived reader an inherent `deserialize`; the `Deserialize` impl
// hands it the fields of a JSON object and nothing else.
macro_rules! deserialize_from_objects_only {
    ($($shape:ty),*) => {$(
        impl<'de> Deserialize<'de> for $shape {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ObjectOnly;
                impl<'de> serde::de::Visitor<'de> for ObjectOnly {
                    type Value = $shape;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a JSON object")
                    }

                    fn visit_map<A>(self, map: A) -> Result<$shape, A::Error>
                    where
                        A: serde::de::MapAccess<'de>,
                    {
                        <$shape>::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }
                deserializer.deserialize_map(ObjectOnly)
            }
        }
    )*};
}
deserialize_from_objects_only!(
    PodShape,
    SpecShape,
    ContainerShape,
    SecurityContextShape,
    VolumeShape,
    Named
);

/// `null` reads as the empty value, as `k8s-openapi` reads a required field.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A DNS-1123 label (RFC 1123: lower-case alphanumerics and '-', at most 63 characters,
/// starting and ending alphanumeric): container names, and the names of profiles.
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// The repository name of an image without registry, path, tag or digest:
/// `registry:5000/library/nginx:1.27@sha256:..` -> `nginx`.
pub fn image_name(image: &str) -> &str {
    // Byte searches (memchr) rather than split iterators: read for every container, several
    // times per review.
    let without_digest = image.split_once('@').map_or(image, |(before, _)| before);
    let last = without_digest
        .rsplit_once('/')
        .map_or(without_digest, |(_, after)| after);
    last.split_once(':').map_or(last, |(name, _)| name)
}

mod known_text;
pub use known_text::{DEFAULT_TERMINATION_MESSAGE_PATH, TERMINATION_MESSAGE_POLICIES};

#[cfg(test)]
mod tests;
