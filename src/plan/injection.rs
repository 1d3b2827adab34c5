//! Injection: the names and mounts of the helper's init container and volume.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::path::Path;

use super::roles::image_name;
use super::{HelperInjection, Status};
use crate::helper::args::{Command, parse};
use crate::helper::install::INSTALLED_NAME;
use crate::pod::{ContainerShape, SpecShape};

/// Where the helper binary lives in every container that uses it.
pub const HELPER_DIR: &str = "/.drain";
pub const HELPER_PATH: &str = "/.drain/drain-helper";
/// Where the helper image holds the binary (at its root, so that an image mounted at
/// [`HELPER_DIR`] also puts it at [`HELPER_PATH`]).
pub const HELPER_IMAGE_PATH: &str = "/drain-helper";
/// Base name of the init container and the volume the webhook adds.
pub const HELPER_NAME: &str = "drain-helper";

/// Every name in the pod's container namespace (containers, init and ephemeral containers share
/// one: API validation rejects duplicates across them).
pub(super) fn container_names(spec: &SpecShape) -> BTreeSet<&str> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.name.as_str())
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| c.name.as_str()),
        )
        .collect()
}

/// The helper init container and volume from an earlier run, if both are still there.
pub(super) fn existing_helper(
    spec: &SpecShape,
    previous: Option<&Status>,
) -> Option<HelperInjection> {
    existing_installer(spec, previous).or_else(|| existing_image_volume(spec, previous))
}

/// The helper's image volume from an earlier run: the one the record names, or an image volume
/// of the drain-helper image.
fn existing_image_volume(spec: &SpecShape, previous: Option<&Status>) -> Option<HelperInjection> {
    let recorded = previous
        .and_then(|s| s.helper.as_ref())
        .filter(|h| h.image_volume)
        .map(|h| h.volume.as_str());
    let volume = spec.volumes.iter().flatten().find(|v| {
        let helper_image = v
            .image
            .as_ref()
            .and_then(|image| image.reference.as_deref())
            .is_some_and(|reference| image_name(reference) == INSTALLED_NAME);
        v.image.is_some() && (recorded == Some(v.name.as_str()) || helper_image)
    })?;
    Some(HelperInjection {
        init_container: String::new(),
        volume: volume.name.clone(),
        image_volume: true,
        present: true,
    })
}

/// The helper's init container and emptyDir from an earlier run, if both are still there.
fn existing_installer(spec: &SpecShape, previous: Option<&Status>) -> Option<HelperInjection> {
    let init = spec.init_containers.iter().flatten().find(|c| {
        let recorded = previous
            .and_then(|s| s.helper.as_ref())
            .is_some_and(|h| h.init_container == c.name);
        recorded || is_helper_installer(c)
    })?;
    let volume = init
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == HELPER_DIR)?
        .name
        .clone();
    spec.volumes
        .iter()
        .flatten()
        .any(|v| v.name == volume)
        .then(|| HelperInjection {
            init_container: init.name.clone(),
            volume,
            image_volume: false,
            present: true,
        })
}

/// An init container that runs `drain-helper install /.drain`, read with the helper's parser.
pub(super) fn is_helper_installer(container: &ContainerShape) -> bool {
    let words: Vec<OsString> = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .map(OsString::from)
        .collect();
    let Some((program, args)) = words.split_first() else {
        return false;
    };
    Path::new(program).file_name() == Some(OsStr::new(INSTALLED_NAME))
        && matches!(parse(args), Ok(Command::Install { dir }) if dir == Path::new(HELPER_DIR))
}

/// Fresh names for the init container and the volume, never colliding with the user's.
/// An image volume needs no init container, so no init container name is taken.
pub(super) fn new_helper_names(spec: &SpecShape, image_volume: bool) -> HelperInjection {
    let containers = container_names(spec);
    let volumes: BTreeSet<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    HelperInjection {
        init_container: if image_volume {
            String::new()
        } else {
            unique_name(&containers)
        },
        volume: unique_name(&volumes),
        image_volume,
        present: false,
    }
}

pub(super) fn unique_name(taken: &BTreeSet<&str>) -> String {
    if !taken.contains(HELPER_NAME) {
        return HELPER_NAME.to_owned();
    }
    (2..)
        .map(|n| format!("{HELPER_NAME}-{n}"))
        .find(|candidate| !taken.contains(candidate.as_str()))
        .unwrap_or_else(|| HELPER_NAME.to_owned())
}

/// The container already mounts something else at /.drain.
pub(super) fn mount_conflict(container: &ContainerShape, helper_volume: &str) -> bool {
    container
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| m.mount_path.trim_end_matches('/') == HELPER_DIR && m.name != helper_volume)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helper_paths_are_the_helpers_own() {
        assert_eq!(HELPER_PATH, format!("{HELPER_DIR}/{INSTALLED_NAME}"));
        assert_eq!(HELPER_IMAGE_PATH, format!("/{INSTALLED_NAME}"));
    }

    #[test]
    fn unique_names_skip_taken_ones() {
        let taken: BTreeSet<&str> = ["drain-helper", "drain-helper-2"].into_iter().collect();
        assert_eq!(unique_name(&taken), "drain-helper-3");
        assert_eq!(unique_name(&BTreeSet::new()), "drain-helper");
    }
}
