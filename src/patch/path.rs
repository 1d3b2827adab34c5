//! JSON Pointers (RFC 6901) into the pod: the `path` of every patch operation.

use std::borrow::Cow;

use serde::Serialize;

/// A JSON Pointer (RFC 6901): `~` as `~0`, `/` as `~1` in its tokens. Every pointer the patch
/// writes has fixed tokens: the pod's are written once by hand ([`fixed`]) and borrowed; a
/// container's are its index between a fixed prefix and a fixed suffix ([`in_container`]),
/// written out only when the patch is. Built token by token into a string, each was an
/// allocation and an escape scan per operation (docs/benchmarks.md).
#[derive(Debug, Clone)]
pub(super) enum Path {
    /// The whole pointer, already escaped.
    Whole(Cow<'static, str>),
    /// `/spec/containers/<index><suffix>`, the suffix one of [`in_container`].
    InContainer { index: usize, suffix: &'static str },
}

/// Where a regular container's pointers begin.
const CONTAINERS: &str = "/spec/containers/";

impl Path {
    /// A pointer written by hand, already escaped (the [`fixed`] ones).
    const fn fixed(pointer: &'static str) -> Self {
        Path::Whole(Cow::Borrowed(pointer))
    }

    /// The pointer to `suffix` (one of [`in_container`]) in the regular container at `index`.
    pub(super) fn in_container(index: usize, suffix: &'static str) -> Self {
        Path::InContainer { index, suffix }
    }

    /// The pointer as text.
    pub(super) fn text(&self) -> Cow<'_, str> {
        match self {
            Path::Whole(text) => Cow::Borrowed(text),
            Path::InContainer { index, suffix } => {
                Cow::Owned(format!("{CONTAINERS}{index}{suffix}"))
            }
        }
    }

    /// Appends the pointer as a JSON string.
    pub(super) fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Path::Whole(text) => super::json::write_str(out, text),
            // Digits and the fixed tokens need no JSON escaping.
            Path::InContainer { index, suffix } => {
                out.push(b'"');
                out.extend_from_slice(CONTAINERS.as_bytes());
                out.extend_from_slice(itoa::Buffer::new().format(*index).as_bytes());
                out.extend_from_slice(suffix.as_bytes());
                out.push(b'"');
            }
        }
    }
}

impl Serialize for Path {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text())
    }
}

/// The suffixes of a container's pointers, escaped by hand (none needs it). A test checks each
/// against `pointer` (tests) of its tokens.
pub(super) mod in_container {
    pub(in crate::patch) const LIFECYCLE: &str = "/lifecycle";
    pub(in crate::patch) const PRE_STOP: &str = "/lifecycle/preStop";
    pub(in crate::patch) const STOP_SIGNAL: &str = "/lifecycle/stopSignal";
    pub(in crate::patch) const ENV: &str = "/env";
    pub(in crate::patch) const ENV_END: &str = "/env/-";
    pub(in crate::patch) const MOUNTS: &str = "/volumeMounts";
    pub(in crate::patch) const MOUNTS_END: &str = "/volumeMounts/-";
}

/// The pointers whose tokens are all fixed, escaped by hand: built token by token, each was an
/// allocation and an escape scan per review. A test checks each against `pointer` (tests) of its
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

/// The pointer of `tokens`, each escaped: the reference the hand-written pointers are checked
/// against, and the tests' way to name a pointer.
#[cfg(test)]
pub(super) fn pointer(tokens: &[&str]) -> Path {
    let mut path = String::new();
    for token in tokens {
        path.push('/');
        path.push_str(&token.replace('~', "~0").replace('/', "~1"));
    }
    Path::Whole(Cow::Owned(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations;
    use crate::patch::{DEFAULT_CONTAINER, PLANNED_LABEL};

    #[test]
    fn annotation_keys_are_escaped_in_pointers() {
        let path = pointer(&["metadata", "annotations", "drain.io/status"]);
        assert_eq!(path.text(), "/metadata/annotations/drain.io~1status");
        assert_eq!(pointer(&["a~b"]).text(), "/a~0b");
        assert_eq!(pointer(&["~/x/~"]).text(), "/~0~1x~1~0");
        assert_eq!(fixed::METADATA.text(), "/metadata");
    }

    /// A container's pointers, as text and as the patch writes them, are those of their
    /// tokens.
    #[test]
    fn container_pointers_are_their_tokens() {
        for (suffix, tokens) in [
            (in_container::LIFECYCLE, &["lifecycle"][..]),
            (in_container::PRE_STOP, &["lifecycle", "preStop"]),
            (in_container::STOP_SIGNAL, &["lifecycle", "stopSignal"]),
            (in_container::ENV, &["env"]),
            (in_container::ENV_END, &["env", "-"]),
            (in_container::MOUNTS, &["volumeMounts"]),
            (in_container::MOUNTS_END, &["volumeMounts", "-"]),
        ] {
            for index in [0, 7, 12, 1234] {
                let index_text = index.to_string();
                let mut all = vec!["spec", "containers", index_text.as_str()];
                all.extend_from_slice(tokens);
                let expected = pointer(&all);
                let path = Path::in_container(index, suffix);
                assert_eq!(path.text(), expected.text());
                let mut written = Vec::new();
                path.write_json(&mut written);
                assert_eq!(written, serde_json::to_vec(&expected.text()).unwrap());
                assert_eq!(
                    serde_json::to_value(&path).unwrap(),
                    serde_json::Value::from(expected.text().as_ref())
                );
            }
        }
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
            assert_eq!(fixed.text(), pointer(tokens).text());
        }
    }
}
