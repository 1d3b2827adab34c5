//! A pod's QoS class as Kubernetes computes it, and the resources the helper's installer gets so
//! that adding it never changes that class (docs/decisions.md "The installer keeps the pod's QoS
//! class").
//!
//! The rule is upstream's `ComputePodQOS` (kubernetes `pkg/apis/core/helper/qos/qos.go`): only
//! cpu and memory count, and only quantities above zero; requests and limits are summed over
//! regular and init containers; a pod is BestEffort when nothing is set, Guaranteed when every
//! container has cpu and memory limits and the summed requests equal the summed limits,
//! Burstable otherwise. With pod-level resources (`spec.resources` setting cpu or memory, gate
//! `PodLevelResources`, beta and on from 1.34) the pod-level values alone decide.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::value::RawValue;

use crate::pod::SpecShape;

/// The resources that decide the QoS class (upstream `supportedQoSComputeResources`).
const QOS_RESOURCES: [&str; 2] = ["cpu", "memory"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    BestEffort,
    Burstable,
    Guaranteed,
}

/// A quantity in units of 10^-9 (exact for every suffix Kubernetes accepts), or `None` when it
/// does not parse or does not fit (the API server rejects such a pod anyway).
pub fn nanos(text: &str) -> Option<i128> {
    let text = text.trim();
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (binary_power, decimal_power): (u32, i32) = match suffix {
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "" => (0, 0),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        exponent => (0, exponent.strip_prefix(['e', 'E'])?.parse().ok()?),
    };
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    let mantissa: i128 = if significant.is_empty() {
        0
    } else {
        significant.parse().ok()?
    };
    // value = mantissa * 2^binary * 10^(decimal - fraction digits), in units of 10^-9.
    let scale = decimal_power + 9 - i32::try_from(fraction.len()).ok()?;
    let mut value = mantissa.checked_mul(1i128.checked_shl(binary_power)?)?;
    if scale >= 0 {
        value = value.checked_mul(10i128.checked_pow(u32::try_from(scale).ok()?)?)?;
    } else {
        // Below a nano: Kubernetes rounds up to its smallest unit.
        let divisor = 10i128.checked_pow(scale.unsigned_abs())?;
        value = (value + divisor - 1) / divisor;
    }
    Some(if negative { -value } else { value })
}

fn positive(list: Option<&BTreeMap<String, Quantity>>, name: &str) -> Option<i128> {
    list?.get(name).and_then(|q| nanos(&q.0)).filter(|&v| v > 0)
}

/// `resources` as the pod carries it (kept as text by `crate::pod`); `None` when absent or not
/// a `ResourceRequirements` (the API server rejects such a pod anyway).
fn requirements(raw: Option<&RawValue>) -> Option<ResourceRequirements> {
    serde_json::from_str(raw?.get()).ok()
}

/// Whether `spec.resources` sets a pod-level resource (upstream `isPodLevelResourcesSet`:
/// cpu, memory and hugepages are the supported ones).
pub fn has_pod_level_resources(spec: &SpecShape) -> bool {
    let Some(resources) = requirements(spec.resources.as_deref()) else {
        return false;
    };
    let supported =
        |name: &String| QOS_RESOURCES.contains(&name.as_str()) || name.starts_with("hugepages-");
    [&resources.requests, &resources.limits]
        .into_iter()
        .flatten()
        .any(|list| list.keys().any(supported))
}

/// The class from the containers' resources alone (regular and init), after the API server's
/// defaulting (`SetDefaults_Pod`: a request missing where a limit is set takes the limit).
pub fn containers_class(spec: &SpecShape) -> QosClass {
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    class_of(all.map(|c| requirements(c.resources.as_deref())))
}

/// `ComputePodQOS` over containers' requirements (container-level branch).
fn class_of(containers: impl Iterator<Item = Option<ResourceRequirements>>) -> QosClass {
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    for resources in containers {
        let (set_requests, set_limits) = match &resources {
            Some(r) => (r.requests.as_ref(), r.limits.as_ref()),
            None => (None, None),
        };
        let mut limits_found = 0;
        for name in QOS_RESOURCES {
            let limit = positive(set_limits, name);
            let explicit = set_requests.and_then(|r| r.get(name));
            let request = match explicit {
                Some(_) => positive(set_requests, name),
                None => limit,
            };
            if let Some(request) = request {
                *requests.entry(name).or_default() += request;
            }
            if let Some(limit) = limit {
                *limits.entry(name).or_default() += limit;
                limits_found += 1;
            }
        }
        if limits_found < QOS_RESOURCES.len() {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        QosClass::BestEffort
    } else if guaranteed && requests == limits {
        QosClass::Guaranteed
    } else {
        QosClass::Burstable
    }
}

/// What the installer's cpu and memory are, from the pod's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallerQos {
    /// BestEffort pods, and pods whose pod-level resources decide (the installer draws on the
    /// pod's budget; requests of its own could push the containers' sum above the pod's
    /// requests, which the API server rejects).
    NoCpuMemory,
    /// Guaranteed pods: requests raised to the limits.
    RequestsAtLimits,
    /// Burstable pods: the operator's requests and limits as set.
    AsConfigured,
}

/// What the installer's resources are made from in one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallerShape {
    pub cpu_memory: InstallerQos,
    /// Whether it carries an ephemeral-storage limit: only where a container already sets one.
    pub storage_limit: bool,
}

/// How the installer's resources keep the class of the pod it joins, and whether it may carry
/// an ephemeral-storage limit: only where a container already sets one. The kubelet evicts a
/// pod whose whole ephemeral-storage use (every container's logs and writable layer, its
/// emptyDirs) exceeds the sum of the containers' limits as soon as any container has one
/// (`podEphemeralStorageLimitEviction`, pkg/kubelet/eviction), so the installer's limit alone
/// would cap the entire pod at it.
pub fn installer_qos(spec: Option<&SpecShape>) -> InstallerShape {
    let Some(spec) = spec else {
        return InstallerShape {
            cpu_memory: InstallerQos::NoCpuMemory,
            storage_limit: false,
        };
    };
    // Each container's resources read once, for both questions.
    let all: Vec<Option<ResourceRequirements>> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| requirements(c.resources.as_deref()))
        .collect();
    let storage_limited = all
        .iter()
        .flatten()
        .any(|r| positive(r.limits.as_ref(), "ephemeral-storage").is_some());
    let cpu_memory = if has_pod_level_resources(spec) {
        InstallerQos::NoCpuMemory
    } else {
        match class_of(all.into_iter()) {
            QosClass::BestEffort => InstallerQos::NoCpuMemory,
            QosClass::Guaranteed => InstallerQos::RequestsAtLimits,
            QosClass::Burstable => InstallerQos::AsConfigured,
        }
    };
    InstallerShape {
        cpu_memory,
        storage_limit: storage_limited,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_exactly() {
        assert_eq!(nanos("1"), nanos("1000m"));
        assert_eq!(nanos("0.5"), nanos("500m"));
        assert_eq!(nanos("1Gi"), nanos("1073741824"));
        assert_eq!(nanos("1e3"), nanos("1k"));
        assert_eq!(nanos("1E3"), nanos("1000"));
        assert_eq!(nanos("1.5Ki"), nanos("1536"));
        assert_eq!(nanos("100m"), Some(100_000_000));
        assert_eq!(nanos("1n"), Some(1));
        assert_ne!(nanos("128974848"), nanos("129e6"));
        for bad in ["", "m", "1x", "Mi", "1..2", "1Mi2"] {
            assert_eq!(nanos(bad), None, "{bad}");
        }
    }

    fn spec(value: serde_json::Value) -> SpecShape {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn classes_follow_compute_pod_qos() {
        let guaranteed = spec(serde_json::json!({"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
            {"name": "b", "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}, "limits": {"cpu": "0.5", "memory": "67108864"}}},
        ]}));
        assert_eq!(containers_class(&guaranteed), QosClass::Guaranteed);
        assert_eq!(
            installer_qos(Some(&guaranteed)).cpu_memory,
            InstallerQos::RequestsAtLimits
        );
        // An init container without limits makes the pod Burstable.
        let burstable = spec(serde_json::json!({
            "containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1m"}}}],
        }));
        assert_eq!(containers_class(&burstable), QosClass::Burstable);
        // Zero quantities and other resources do not count.
        let best_effort = spec(serde_json::json!({"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "0", "ephemeral-storage": "1Gi"}, "limits": {"ephemeral-storage": "2Gi"}}},
            {"name": "b"},
        ]}));
        assert_eq!(containers_class(&best_effort), QosClass::BestEffort);
        assert_eq!(
            installer_qos(Some(&best_effort)),
            InstallerShape {
                cpu_memory: InstallerQos::NoCpuMemory,
                storage_limit: true
            }
        );
        // Pod-level resources decide alone: the installer takes nothing of its own.
        let pod_level = spec(serde_json::json!({
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}],
        }));
        assert!(has_pod_level_resources(&pod_level));
        assert_eq!(
            installer_qos(Some(&pod_level)).cpu_memory,
            InstallerQos::NoCpuMemory
        );
    }
}
