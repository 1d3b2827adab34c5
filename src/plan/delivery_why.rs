//! Why a pod's helper comes the way it does, in words: kept as what decided it and written
//! only when shown (`explain`, `-o json`). A review never shows it, and writing it on every
//! review cost four `format!`s per pod (docs/benchmarks.md). Also the image-volume verdict
//! `auto` decides by (`no_image_volume`), so that `delivery.rs` imports from here only.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::annotations::{self, Source};
use crate::settings::{HelperDelivery, KubeVersion};

/// What decided a pod's delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryWhy {
    /// The helper is already in the pod.
    EarlierRun,
    /// The setting, where it came from, the cluster and the pod.
    Chosen {
        setting: HelperDelivery,
        /// `drain.io/delivery` on the pod or its namespace; `None`: `--helper-delivery`.
        source: Option<Source>,
        version: Option<KubeVersion>,
        image_volume_nodes: Option<bool>,
        /// The pod's `restartPolicy` (`None`: the API default, Always).
        restart_policy: Option<Cow<'static, str>>,
        pod_level_resources: bool,
    },
}

impl DeliveryWhy {
    /// A restart policy as kept: the three the API server takes are not copied.
    pub(super) fn policy(policy: Option<&str>) -> Option<Cow<'static, str>> {
        policy.map(|p| match p {
            "Always" => Cow::Borrowed("Always"),
            "OnFailure" => Cow::Borrowed("OnFailure"),
            "Never" => Cow::Borrowed("Never"),
            other => Cow::Owned(other.to_owned()),
        })
    }
}

impl Serialize for DeliveryWhy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Who chose the delivery setting: `--helper-delivery` (`None`), or `drain.io/delivery` on the
/// pod or its namespace.
struct SetBy(HelperDelivery, Option<Source>);

impl fmt::Display for SetBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            None => write!(f, "--helper-delivery {}", self.0),
            Some(source) => write!(f, "{}: {} ({source})", annotations::DELIVERY, self.0),
        }
    }
}

impl fmt::Display for DeliveryWhy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let &DeliveryWhy::Chosen {
            setting,
            source,
            version,
            image_volume_nodes,
            ref restart_policy,
            pod_level_resources,
        } = self
        else {
            return f.write_str("added by an earlier run");
        };
        let restarts = restart_policy.as_deref().is_none_or(|p| p == "Always");
        let policy = restart_policy.as_deref().unwrap_or("Always");
        let by = SetBy(setting, source);
        match setting {
            HelperDelivery::ImageVolume | HelperDelivery::InitContainer => {
                write!(f, "set by {by}")
            }
            HelperDelivery::FirstContainer => write!(
                f,
                "set by {by}; restartPolicy {policy}: it {} after installing",
                if restarts { "sleeps" } else { "exits" }
            ),
            HelperDelivery::Auto => {
                // `auto` from an annotation says so; from the flag it is the default, unnamed.
                if source.is_some() {
                    write!(f, "{by}: ")?;
                }
                let Some(reason) = no_image_volume(version, image_volume_nodes) else {
                    return write!(
                        f,
                        "Kubernetes {} mounts image volumes by default and every node's runtime can",
                        version.map_or_else(String::new, |v| v.to_string())
                    );
                };
                if pod_level_resources {
                    // The API server rejects a pod whose pod-level requests are below its
                    // containers' aggregate requests (KEP-2837 "Pod Level Resource
                    // Specifications", validation of `spec.resources`), where regular
                    // containers add up and an init container counts only as a maximum
                    // (KEP-753's formula): an init container cannot turn a valid pod into a
                    // rejected one.
                    write!(
                        f,
                        "no image volume ({reason}); the pod sets pod-level resources (spec.resources), which the containers' summed requests must stay within: an init container counts only as a maximum, so the helper comes from one"
                    )
                } else if restarts {
                    write!(
                        f,
                        "no image volume ({reason}); restartPolicy {policy}: a first container that installs and sleeps does not delay the pod's start as an init container does"
                    )
                } else {
                    write!(
                        f,
                        "no image volume ({reason}); restartPolicy {policy}: the pod runs to completion (a Job), so its containers stay as written and the helper comes from an init container"
                    )
                }
            }
        }
    }
}

/// Why `auto` gives no image volume, or `None` when it may: the API server's gate is on by
/// default (1.35+) and every node's kubelet (1.35+) and runtime mount them (unknown counts as
/// no: a pod whose volume cannot be mounted never starts).
pub(super) fn no_image_volume(
    version: Option<KubeVersion>,
    nodes: Option<bool>,
) -> Option<NoImageVolume> {
    match (version, nodes) {
        (None, _) => Some(NoImageVolume::VersionUnknown),
        (Some(v), _) if !v.image_volumes_on_by_default() => Some(NoImageVolume::OffByDefault(v)),
        (_, None) => Some(NoImageVolume::NodesUnknown),
        (_, Some(false)) => Some(NoImageVolume::NotEveryNode),
        (_, Some(true)) => None,
    }
}

/// Why `auto` gives no image volume; written only when shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NoImageVolume {
    VersionUnknown,
    /// The cluster's version, before image volumes are on by default.
    OffByDefault(KubeVersion),
    NodesUnknown,
    NotEveryNode,
}

impl fmt::Display for NoImageVolume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VersionUnknown => f.write_str("the API server's version is not known"),
            Self::OffByDefault(v) => write!(
                f,
                "they are on by default from {}, the cluster runs {v}",
                KubeVersion::IMAGE_VOLUMES_BY_DEFAULT
            ),
            Self::NodesUnknown => {
                f.write_str("the nodes' kubelets and container runtimes are not known")
            }
            Self::NotEveryNode => f.write_str(
                "not every node can mount them: kubelet 1.35+ and containerd 2.1+ or CRI-O 1.31+ (drain-webhook check names the nodes)",
            ),
        }
    }
}
