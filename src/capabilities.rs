//! What the cluster's nodes can do, from what they report: pure, so the planner, `check` and
//! the tests share it. Today one fact: whether every node can mount image volumes (KEP-4639),
//! which takes a kubelet whose `ImageVolume` gate is on (`status.nodeInfo.kubeletVersion`
//! 1.35+) and a runtime that implements them (`status.nodeInfo.containerRuntimeVersion`).
//!
//! Also the two lookups a review reads cluster facts through ([`NamespaceLookup`],
//! [`NodeLookup`]): admission asks, cluster/ answers from its watch caches, and neither
//! imports the other.

use std::collections::BTreeMap;
use std::fmt;

use crate::settings::KubeVersion;

/// A node's container runtime and its version, as in `containerd://2.1.3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    pub runtime: String,
    /// major, minor, patch; a part that is missing reads as 0.
    pub version: (u32, u32, u32),
}

impl RuntimeVersion {
    /// The lowest versions that mount image volumes: containerd 2.1 and CRI-O 1.31 (the
    /// kubernetes.io task "Use an Image Volume With a Pod": "The container runtime needs to
    /// support the image volumes feature"; containerd added it in 2.1, CRI-O in 1.31).
    const IMAGE_VOLUMES: [(&str, (u32, u32)); 2] = [("containerd", (2, 1)), ("cri-o", (1, 31))];

    /// Reads `RUNTIME://VERSION`. The version may carry a `v` prefix and a suffix after its
    /// numbers (`1.7.27-1`, `2.1.0-rc.1`, `1.31.2+abc`); anything else is `None`.
    pub fn parse(reported: &str) -> Option<Self> {
        let (runtime, version) = reported.trim().split_once("://")?;
        if runtime.is_empty()
            || !runtime
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return None;
        }
        let version = version.strip_prefix('v').unwrap_or(version);
        let numeric = version.split(['-', '+']).next().unwrap_or_default();
        let mut parts = numeric.split('.');
        let mut next = |required: bool| -> Option<u32> {
            match parts.next() {
                Some(part) => part.parse().ok(),
                None if required => None,
                None => Some(0),
            }
        };
        let parsed = (next(true)?, next(true)?, next(false)?);
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            runtime: runtime.to_ascii_lowercase(),
            version: parsed,
        })
    }

    pub fn supports_image_volumes(&self) -> bool {
        Self::IMAGE_VOLUMES.iter().any(|&(name, (major, minor))| {
            self.runtime == name && (self.version.0, self.version.1) >= (major, minor)
        })
    }
}

impl fmt::Display for RuntimeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor, patch) = self.version;
        write!(f, "{} {major}.{minor}.{patch}", self.runtime)
    }
}

/// The lowest kubelet whose `ImageVolume` gate is on by default: the same release as the API
/// server's (alpha in 1.31, beta but off by default in 1.33 and 1.34, on by default from 1.35:
/// kubernetes.io "Feature Gates" for v1.35, and the v1.33 beta post "the feature is still
/// disabled by default"). Control planes upgrade first: for a while a 1.35 API server admits
/// image volumes that 1.33/1.34 kubelets cannot mount, so the pod never starts.
pub const KUBELET_FOR_IMAGE_VOLUMES: KubeVersion = KubeVersion::IMAGE_VOLUMES_BY_DEFAULT;

/// What every node needs, for messages.
const NEED: &str = "kubelet 1.35+ and containerd 2.1+ or CRI-O 1.31+";

/// How many blocking nodes [`ImageVolumeNodes`]'s text names before it says "and N more".
const NAMED: usize = 10;

/// Whether a node's kubelet has the `ImageVolume` gate on by default (`v1.35.0`,
/// `v1.35.1-eks-4a1b`, `v1.35.0+k3s1`); an unreadable version counts as no.
pub fn kubelet_mounts_image_volumes(reported: &str) -> bool {
    reported
        .parse::<KubeVersion>()
        .is_ok_and(|v| v >= KUBELET_FOR_IMAGE_VOLUMES)
}

/// A node that cannot mount image volumes, and what it reported for each part that blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockingNode {
    pub name: String,
    /// `Some(reported kubeletVersion)` (empty when missing) when the kubelet blocks.
    pub kubelet: Option<String>,
    /// `Some(reported containerRuntimeVersion)` (empty when missing) when the runtime blocks.
    pub runtime: Option<String>,
}

/// The reasons a node blocks image volumes, as `/metrics` labels them.
pub const BLOCK_REASONS: [&str; 2] = ["kubelet", "runtime"];

impl fmt::Display for BlockingNode {
    /// `worker-1 (kubelet v1.34.2, containerd 1.7.27)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kubelet = self.kubelet.as_deref().map(|reported| match reported {
            "" => "no kubelet version".to_owned(),
            v if v.parse::<KubeVersion>().is_ok() => format!("kubelet {v}"),
            v => format!("kubelet {v:?}, which is not a version"),
        });
        let runtime =
            self.runtime
                .as_deref()
                .map(|reported| match RuntimeVersion::parse(reported) {
                    Some(runtime) => runtime.to_string(),
                    None if reported.is_empty() => "no runtime version".to_owned(),
                    None => format!("{reported:?}, which is not a known runtime version"),
                });
        let parts: Vec<String> = kubelet.into_iter().chain(runtime).collect();
        write!(f, "{} ({})", self.name, parts.join(", "))
    }
}

/// Whether every node can mount image volumes, and if not, the nodes that cannot (named in the
/// log, `/metrics` and `check`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ImageVolumeNodes {
    /// No node list: no cluster, the watch has not synced, or offline.
    #[default]
    Unknown,
    /// The list is empty (nodes may still join, with any runtime).
    NoNodes,
    /// Every node's kubelet and runtime mount image volumes.
    All { nodes: usize },
    /// At least one node's kubelet or runtime does not (or cannot be read).
    NotAll {
        nodes: usize,
        /// Every node that blocks, by name.
        blocking: Vec<BlockingNode>,
    },
}

impl ImageVolumeNodes {
    /// Summarises `(name, containerRuntimeVersion, kubeletVersion)` of every node.
    pub fn summarise<'a>(
        nodes: impl IntoIterator<Item = (&'a str, Option<&'a str>, Option<&'a str>)>,
    ) -> Self {
        let mut count = 0;
        let mut blocking = Vec::new();
        for (name, runtime, kubelet) in nodes {
            count += 1;
            let runtime_able = runtime
                .and_then(RuntimeVersion::parse)
                .is_some_and(|r| r.supports_image_volumes());
            let kubelet_able = kubelet.is_some_and(kubelet_mounts_image_volumes);
            if !(runtime_able && kubelet_able) {
                blocking.push(BlockingNode {
                    name: name.to_owned(),
                    kubelet: (!kubelet_able).then(|| kubelet.unwrap_or_default().to_owned()),
                    runtime: (!runtime_able).then(|| runtime.unwrap_or_default().to_owned()),
                });
            }
        }
        blocking.sort_by(|a, b| a.name.cmp(&b.name));
        match count {
            0 => Self::NoNodes,
            nodes if blocking.is_empty() => Self::All { nodes },
            nodes => Self::NotAll { nodes, blocking },
        }
    }

    /// `Some(true)` only when every node is known to mount image volumes; `None` when the
    /// nodes are not known. The planner treats `None` like `Some(false)`.
    pub fn can_mount(&self) -> Option<bool> {
        match self {
            Self::Unknown => None,
            Self::NoNodes | Self::NotAll { .. } => Some(false),
            Self::All { .. } => Some(true),
        }
    }

    /// A bounded label for `/metrics`.
    pub fn state(&self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::NoNodes => "no-nodes",
            Self::All { .. } => "all",
            Self::NotAll { .. } => "not-all",
        }
    }

    /// The nodes that block image volumes (none unless `NotAll`).
    pub fn blocking(&self) -> &[BlockingNode] {
        match self {
            Self::NotAll { blocking, .. } => blocking,
            _ => &[],
        }
    }

    /// How many nodes block for each of [`BLOCK_REASONS`] (a node whose kubelet and runtime
    /// both block counts under both).
    pub fn blocking_by_reason(&self) -> [(&'static str, usize); 2] {
        let nodes = self.blocking();
        let [kubelet, runtime] = BLOCK_REASONS;
        [
            (
                kubelet,
                nodes.iter().filter(|n| n.kubelet.is_some()).count(),
            ),
            (
                runtime,
                nodes.iter().filter(|n| n.runtime.is_some()).count(),
            ),
        ]
    }
}

/// `yes: every node (3) ...` / `no: 1 of 2 nodes cannot mount them: x (kubelet v1.34.2) ...`.
impl fmt::Display for ImageVolumeNodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => write!(
                f,
                "no: the nodes are not known (needs {NEED} on every node)"
            ),
            Self::NoNodes => write!(f, "no: the cluster lists no node"),
            Self::All { nodes } => write!(
                f,
                "yes: every node ({nodes}) runs a kubelet and a runtime that mount image volumes ({NEED})"
            ),
            Self::NotAll { nodes, blocking } => {
                let named: Vec<String> =
                    blocking.iter().take(NAMED).map(|n| n.to_string()).collect();
                let more = match blocking.len().saturating_sub(NAMED) {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                write!(
                    f,
                    "no: {} of {nodes} nodes cannot mount them: {}{more} (image volumes need {NEED})",
                    blocking.len(),
                    named.join(", ")
                )
            }
        }
    }
}

/// Where a namespace's annotations come from (the watch cache, or nothing).
pub trait NamespaceLookup: Send + Sync {
    /// The namespace's annotations (at least its `drain.io/*` ones), or `None` when unknown
    /// (cache not synced, no cluster).
    fn annotations(&self, namespace: &str) -> Option<BTreeMap<String, String>>;
}

/// No cluster: namespace annotations are always unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNamespaces;

impl NamespaceLookup for NoNamespaces {
    fn annotations(&self, _namespace: &str) -> Option<BTreeMap<String, String>> {
        None
    }
}

/// Fixed annotations per namespace (tests, offline use).
impl NamespaceLookup for BTreeMap<String, BTreeMap<String, String>> {
    fn annotations(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.get(namespace).cloned()
    }
}

/// Whether every node's container runtime mounts image volumes (the node cache, or a fixed
/// answer).
pub trait NodeLookup: Send + Sync {
    /// `None` while unknown (no cluster, not synced): the planner then uses no image volume.
    fn image_volume_nodes(&self) -> Option<bool>;
}

/// A fixed summary (tests, no cluster: [`ImageVolumeNodes::Unknown`]).
impl NodeLookup for ImageVolumeNodes {
    fn image_volume_nodes(&self) -> Option<bool> {
        self.can_mount()
    }
}

#[cfg(test)]
mod tests;
