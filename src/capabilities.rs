//! What the cluster's nodes can do, from what they report: pure, so the planner, `check` and
//! the tests share it. Today one fact: whether every node's container runtime mounts image
//! volumes (KEP-4639), read from `status.nodeInfo.containerRuntimeVersion`.

use std::fmt;

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

/// Whether every node can mount image volumes, and if not, a node that cannot (the reason
/// shown in the log, `/metrics` and `check`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ImageVolumeNodes {
    /// No node list: no cluster, the watch has not synced, or offline.
    #[default]
    Unknown,
    /// The list is empty (nodes may still join, with any runtime).
    NoNodes,
    /// Every node's runtime mounts image volumes.
    All { nodes: usize },
    /// At least one node's runtime does not (or cannot be read); `node` is the first by name.
    NotAll {
        nodes: usize,
        node: String,
        /// What it reported (`containerd://1.7.27`), or empty.
        reported: String,
    },
}

impl ImageVolumeNodes {
    /// Summarises `(name, containerRuntimeVersion)` of every node.
    pub fn summarise<'a>(nodes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Self {
        let mut count = 0;
        let mut first_unable: Option<(&str, &str)> = None;
        for (name, reported) in nodes {
            count += 1;
            let able = reported
                .and_then(RuntimeVersion::parse)
                .is_some_and(|r| r.supports_image_volumes());
            if !able && first_unable.is_none_or(|(first, _)| name < first) {
                first_unable = Some((name, reported.unwrap_or_default()));
            }
        }
        match (count, first_unable) {
            (0, _) => Self::NoNodes,
            (nodes, None) => Self::All { nodes },
            (nodes, Some((node, reported))) => Self::NotAll {
                nodes,
                node: node.to_owned(),
                reported: reported.to_owned(),
            },
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
}

/// `yes: all 3 nodes run ...` / `no: node x runs containerd 1.7.27`.
impl fmt::Display for ImageVolumeNodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NEED: &str = "containerd 2.1+ or CRI-O 1.31+";
        match self {
            Self::Unknown => write!(
                f,
                "no: the nodes are not known (needs {NEED} on every node)"
            ),
            Self::NoNodes => write!(f, "no: the cluster lists no node"),
            Self::All { nodes } => write!(
                f,
                "yes: every node ({nodes}) runs a runtime that mounts image volumes ({NEED})"
            ),
            Self::NotAll {
                nodes,
                node,
                reported,
            } => {
                let runtime = match RuntimeVersion::parse(reported) {
                    Some(runtime) => runtime.to_string(),
                    None if reported.is_empty() => "no runtime version".to_owned(),
                    None => format!("{reported:?}, which is not a known runtime version"),
                };
                write!(
                    f,
                    "no: node {node} reports {runtime} (of {nodes} nodes; image volumes need {NEED})"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_runtime_versions_parse() {
        let parsed = |s| RuntimeVersion::parse(s).map(|r| (r.runtime, r.version));
        assert_eq!(
            parsed("containerd://1.7.27"),
            Some(("containerd".into(), (1, 7, 27)))
        );
        assert_eq!(
            parsed("containerd://2.1.3"),
            Some(("containerd".into(), (2, 1, 3)))
        );
        assert_eq!(parsed("cri-o://1.31.2"), Some(("cri-o".into(), (1, 31, 2))));
        assert_eq!(
            parsed("docker://24.0.7"),
            Some(("docker".into(), (24, 0, 7)))
        );
        // Distribution builds: a v prefix, a package suffix, a pre-release.
        assert_eq!(
            parsed("containerd://v2.1.0-rc.1"),
            Some(("containerd".into(), (2, 1, 0)))
        );
        assert_eq!(
            parsed("containerd://1.7.27-1"),
            Some(("containerd".into(), (1, 7, 27)))
        );
        assert_eq!(parsed("cri-o://1.31"), Some(("cri-o".into(), (1, 31, 0))));
        for garbage in [
            "",
            "containerd",
            "containerd://",
            "://1.7.0",
            "containerd://latest",
            "containerd://1",
            "containerd://1.x.2",
            "containerd://1.7.2.9",
            "con tainerd://1.7.2",
        ] {
            assert_eq!(parsed(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn image_volumes_need_containerd_2_1_or_crio_1_31() {
        let supports = |s| RuntimeVersion::parse(s).unwrap().supports_image_volumes();
        assert!(!supports("containerd://1.6.36"));
        assert!(!supports("containerd://1.7.27"));
        assert!(!supports("containerd://2.0.5"));
        assert!(supports("containerd://2.1.3"));
        assert!(supports("containerd://3.0.0"));
        assert!(!supports("cri-o://1.30.9"));
        assert!(supports("cri-o://1.31.2"));
        assert!(!supports("docker://24.0.7"));
    }

    #[test]
    fn the_cluster_summary_needs_every_node() {
        let all = ImageVolumeNodes::summarise([
            ("a", Some("containerd://2.1.3")),
            ("b", Some("cri-o://1.31.2")),
        ]);
        assert_eq!(all, ImageVolumeNodes::All { nodes: 2 });
        assert_eq!(all.can_mount(), Some(true));

        let mixed = ImageVolumeNodes::summarise([
            ("c", Some("containerd://2.1.3")),
            ("worker-9", Some("containerd://1.7.27")),
            ("worker-1", Some("garbage")),
        ]);
        assert_eq!(
            mixed,
            ImageVolumeNodes::NotAll {
                nodes: 3,
                node: "worker-1".into(),
                reported: "garbage".into()
            }
        );
        assert_eq!(mixed.can_mount(), Some(false));
        let one_old = ImageVolumeNodes::summarise([
            ("a", Some("containerd://2.1.3")),
            ("x", Some("containerd://1.7.27")),
        ]);
        assert_eq!(
            one_old.to_string(),
            "no: node x reports containerd 1.7.27 (of 2 nodes; image volumes need containerd 2.1+ or CRI-O 1.31+)"
        );
        let missing = ImageVolumeNodes::summarise([("a", None)]);
        assert_eq!(missing.can_mount(), Some(false));
        assert!(missing.to_string().contains("no runtime version"));

        let none = ImageVolumeNodes::summarise([]);
        assert_eq!(none, ImageVolumeNodes::NoNodes);
        assert_eq!(none.can_mount(), Some(false));
        assert_eq!(ImageVolumeNodes::Unknown.can_mount(), None);
        assert_eq!(
            [all.state(), mixed.state(), none.state()],
            ["all", "not-all", "no-nodes"]
        );
    }
}
