//! JSON Pointers (RFC 6901) into the pod: the `path` of every patch operation.

use std::borrow::Cow;

use serde::Serialize;

/// A JSON Pointer (RFC 6901), written token by token into one string: `~` as `~0`, `/` as
/// `~1`. (`jsonptr`'s `PointerBuf` grew its string and checked every token per push: 8 % of
/// a seed review's instructions, docs/benchmarks.md.) A pointer whose tokens are all fixed is
/// written once ([`fixed`]) and borrowed.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub(super) struct Path(Cow<'static, str>);

impl Path {
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Path(Cow::Owned(String::with_capacity(capacity)))
    }

    /// A pointer written by hand, already escaped (the [`fixed`] ones).
    const fn fixed(pointer: &'static str) -> Self {
        Path(Cow::Borrowed(pointer))
    }

    pub(super) fn push(&mut self, token: &str) {
        let path = self.0.to_mut();
        path.push('/');
        // By byte, copying the runs between: `str::contains` with a char pattern, then a
        // `push` per char, cost 200 to 300 instructions a token.
        let mut rest = token;
        while let Some(at) = rest.bytes().position(|b| b == b'~' || b == b'/') {
            path.push_str(&rest[..at]);
            path.push_str(if rest.as_bytes()[at] == b'~' {
                "~0"
            } else {
                "~1"
            });
            rest = &rest[at + 1..];
        }
        path.push_str(rest);
    }

    /// An array index.
    pub(super) fn push_index(&mut self, index: usize) {
        let path = self.0.to_mut();
        path.push('/');
        path.push_str(itoa::Buffer::new().format(index));
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

/// The pointers whose tokens are all fixed, escaped by hand: built token by token, each was an
/// allocation and an escape scan per review. A test checks each against [`pointer`] of its
/// tokens.
pub(super) mod fixed {
    use super::Path;

    pub(in crate::patch) const GRACE: Path = Path::fixed("/spec/terminationGracePeriodSeconds");
    pub(in crate::patch) const OS: Path = Path::fixed("/spec/os");
    pub(in crate::patch) const VOLUMES: Path = Path::fixed("/spec/volumes");
    pub(in crate::patch) const VOLUMES_END: Path = Path::fixed("/spec/volumes/-");
    pub(in crate::patch) const INIT_CONTAINERS: Path = Path::fixed("/spec/initContainers");
    pub(in crate::patch) const FIRST_INIT_CONTAINER: Path = Path::fixed("/spec/initContainers/0");
    pub(in crate::patch) const FIRST_CONTAINER: Path = Path::fixed("/spec/containers/0");
    pub(in crate::patch) const METADATA: Path = Path::fixed("/metadata");
    pub(in crate::patch) const ANNOTATIONS: Path = Path::fixed("/metadata/annotations");
    /// `drain.io/status`.
    pub(in crate::patch) const STATUS: Path = Path::fixed("/metadata/annotations/drain.io~1status");
    pub(in crate::patch) const LABELS: Path = Path::fixed("/metadata/labels");
    /// `drain.io/planned`.
    pub(in crate::patch) const PLANNED: Path = Path::fixed("/metadata/labels/drain.io~1planned");
    /// `kubectl.kubernetes.io/default-container`.
    pub(in crate::patch) const DEFAULT_CONTAINER: Path =
        Path::fixed("/metadata/annotations/kubectl.kubernetes.io~1default-container");
}

pub(super) fn pointer(tokens: &[&str]) -> Path {
    let mut path = Path::with_capacity(64);
    for token in tokens {
        path.push(token);
    }
    path
}

pub(super) fn child(base: &Path, tokens: &[&str]) -> Path {
    let mut path = Path::with_capacity(base.0.len() + 32);
    path.0.to_mut().push_str(&base.0);
    for token in tokens {
        path.push(token);
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations;
    use crate::patch::{DEFAULT_CONTAINER, PLANNED_LABEL};

    #[test]
    fn annotation_keys_are_escaped_in_pointers() {
        let path = pointer(&["metadata", "annotations", "drain.io/status"]);
        assert_eq!(path.as_str(), "/metadata/annotations/drain.io~1status");
        assert_eq!(pointer(&["a~b"]).as_str(), "/a~0b");
        let mut indexed = child(&pointer(&["spec", "containers"]), &[]);
        indexed.push_index(12);
        assert_eq!(
            child(&indexed, &["env", "-"]).as_str(),
            "/spec/containers/12/env/-"
        );
        assert_eq!(pointer(&["~/x/~"]).as_str(), "/~0~1x~1~0");
        // A fixed pointer grows into an owned one.
        let mut grown = fixed::METADATA;
        grown.push("a/b");
        grown.push_index(3);
        assert_eq!(grown.as_str(), "/metadata/a~1b/3");
        assert_eq!(fixed::METADATA.as_str(), "/metadata");
    }

    #[test]
    fn fixed_pointers_are_their_tokens() {
        for (fixed, tokens) in [
            (fixed::GRACE, &["spec", "terminationGracePeriodSeconds"][..]),
            (fixed::OS, &["spec", "os"]),
            (fixed::VOLUMES, &["spec", "volumes"]),
            (fixed::VOLUMES_END, &["spec", "volumes", "-"]),
            (fixed::INIT_CONTAINERS, &["spec", "initContainers"]),
            (
                fixed::FIRST_INIT_CONTAINER,
                &["spec", "initContainers", "0"],
            ),
            (fixed::FIRST_CONTAINER, &["spec", "containers", "0"]),
            (fixed::METADATA, &["metadata"]),
            (fixed::ANNOTATIONS, &["metadata", "annotations"]),
            (
                fixed::STATUS,
                &["metadata", "annotations", annotations::STATUS],
            ),
            (fixed::LABELS, &["metadata", "labels"]),
            (fixed::PLANNED, &["metadata", "labels", PLANNED_LABEL]),
            (
                fixed::DEFAULT_CONTAINER,
                &["metadata", "annotations", DEFAULT_CONTAINER],
            ),
        ] {
            assert_eq!(fixed.as_str(), pointer(tokens).as_str());
        }
    }
}
