//! Why a pod's helper comes the way it does, in words: kept as what decided it and written
//! only when shown (`explain`, `-o json`). A review never shows it, and writing it on every
//! review cost four `format!`s per pod (docs/benchmarks.md). `auto`'s decision is made here
//! ([`AutoChoice::decide`]) and kept, so the text never decides again; `delivery.rs` imports
//! from here only.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::annotations::{self, Source};
use crate::settings::{HelperDelivery, KubeVersion};

/// What decided a pod's delivery: the branch [`super::delivery::choose_for_pod`] took, kept
/// so that the text names it without deciding again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryWhy {
    /// The helper is already in the pod.
    EarlierRun,
    /// A delivery named by `--helper-delivery` or `drain.io/delivery` (never `auto`).
    Set {
        setting: HelperDelivery,
        /// `drain.io/delivery` on the pod or its namespace; `None`: `--helper-delivery`.
        source: Option<Source>,
        /// The pod's `restartPolicy` (`None`: the API default, Always).
        restart_policy: Option<Cow<'static, str>>,
    },
    /// `auto`, and what it decided.
    Auto {
        source: Option<Source>,
        restart_policy: Option<Cow<'static, str>>,
        choice: AutoChoice,
    },
}

/// What `auto` gives a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoChoice {
    /// Image volumes work on this cluster (its version, as the reason names it).
    ImageVolume(Option<KubeVersion>),
    /// No image volume, and the pod sets pod-level resources: an init container.
    PodLevelResources(NoImageVolume),
    /// No image volume, and the pod restarts: a first container that sleeps.
    Restarts(NoImageVolume),
    /// No image volume, and the pod runs to completion: an init container.
    Completes(NoImageVolume),
}

impl AutoChoice {
    /// The decision: image volumes where the API server and every node take them, else an
    /// init container for a pod with pod-level resources or one that completes, a first
    /// container for one that restarts.
    pub(super) fn decide(
        version: Option<KubeVersion>,
        image_volume_nodes: Option<bool>,
        pod_level_resources: bool,
        restarts: bool,
    ) -> Self {
        match no_image_volume(version, image_volume_nodes) {
            None => AutoChoice::ImageVolume(version),
            // The API server rejects a pod whose pod-level requests are below its containers'
            // aggregate requests (KEP-2837 "Pod Level Resource Specifications", validation of
            // `spec.resources`), where regular containers add up and an init container counts
            // only as a maximum (KEP-753's formula): an init container cannot turn a valid pod
            // into a rejected one.
            Some(reason) if pod_level_resources => AutoChoice::PodLevelResources(reason),
            Some(reason) if restarts => AutoChoice::Restarts(reason),
            Some(reason) => AutoChoice::Completes(reason),
        }
    }
}

impl Serialize for DeliveryWhy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A restart policy as the reason names it (`None`: the API default).
fn policy<'a>(restart_policy: &'a Option<Cow<'static, str>>) -> &'a str {
    restart_policy.as_deref().unwrap_or("Always")
}

/// Whether a pod with this `restartPolicy` restarts its containers (Always, the default): its
/// first-container installer then sleeps instead of exiting.
pub(super) fn restarts(restart_policy: &Option<Cow<'static, str>>) -> bool {
    policy(restart_policy) == "Always"
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
        match self {
            DeliveryWhy::EarlierRun => f.write_str("added by an earlier run"),
            DeliveryWhy::Set {
                setting,
                source,
                restart_policy,
            } => {
                let by = SetBy(*setting, *source);
                if *setting != HelperDelivery::FirstContainer {
                    return write!(f, "set by {by}");
                }
                let then = if restarts(restart_policy) {
                    "sleeps"
                } else {
                    "exits"
                };
                write!(
                    f,
                    "set by {by}; restartPolicy {}: it {then} after installing",
                    policy(restart_policy)
                )
            }
            DeliveryWhy::Auto {
                source,
                restart_policy,
                choice,
            } => {
                // `auto` from an annotation says so; from the flag it is the default, unnamed.
                if source.is_some() {
                    write!(f, "{}: ", SetBy(HelperDelivery::Auto, *source))?;
                }
                let policy = policy(restart_policy);
                match choice {
                    AutoChoice::ImageVolume(version) => write!(
                        f,
                        "Kubernetes {} mounts image volumes by default and every node's runtime can",
                        version.map_or_else(String::new, |v| v.to_string())
                    ),
                    AutoChoice::PodLevelResources(reason) => write!(
                        f,
                        "no image volume ({reason}); the pod sets pod-level resources (spec.resources), which the containers' summed requests must stay within: an init container counts only as a maximum, so the helper comes from one"
                    ),
                    AutoChoice::Restarts(reason) => write!(
                        f,
                        "no image volume ({reason}); restartPolicy {policy}: a first container that installs and sleeps does not delay the pod's start as an init container does"
                    ),
                    AutoChoice::Completes(reason) => write!(
                        f,
                        "no image volume ({reason}); restartPolicy {policy}: the pod runs to completion (a Job), so its containers stay as written and the helper comes from an init container"
                    ),
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
pub enum NoImageVolume {
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
