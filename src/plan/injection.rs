//! Injection: the names and mounts of the helper's installer and volume.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::path::Path;

use super::delivery::{AfterInstall, Delivery, DeliveryChoice, Installer};
use super::{HelperInjection, Status};
use crate::helper::args::{Command, parse};
use crate::helper::install::INSTALLED_NAME;
use crate::pod::{ContainerShape, SpecShape, image_name};

/// Where the helper binary lives in every container that uses it.
pub const HELPER_DIR: &str = "/.drain";
pub const HELPER_PATH: &str = "/.drain/drain-helper";
/// Where the helper image holds the binary (at its root, so that an image mounted at
/// [`HELPER_DIR`] also puts it at [`HELPER_PATH`]).
pub const HELPER_IMAGE_PATH: &str = "/drain-helper";
/// Base name of the installer container and the volume the webhook adds.
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

/// The helper's installer and volume from an earlier run, if both are still there, or its
/// image volume.
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
        .filter(|h| h.installer == Installer::None)
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
        volume: volume.name.clone(),
        installer: Installer::None,
        present: true,
    })
}

/// The helper's installer (an init container, or a first regular container) and its emptyDir
/// from an earlier run, if both are still there.
fn existing_installer(spec: &SpecShape, previous: Option<&Status>) -> Option<HelperInjection> {
    let recorded = previous
        .and_then(|s| s.helper.as_ref())
        .and_then(HelperInjection::installer_name);
    let ours = |c: &&ContainerShape| recorded == Some(c.name.as_str()) || installs(c).is_some();
    let (container, installer) = match spec.init_containers.iter().flatten().find(ours) {
        Some(init) => (init, Installer::Init(init.name.clone())),
        None => {
            let first = spec.containers.iter().find(ours)?;
            let then = installs(first).unwrap_or(AfterInstall::Sleep);
            let name = first.name.clone();
            (first, Installer::First { name, then })
        }
    };
    let volume = container
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
        .then_some(HelperInjection {
            volume,
            installer,
            present: true,
        })
}

/// A regular container that an earlier run placed first to install the helper: never planned
/// itself (it has no shutdown of its own to protect).
pub(super) fn is_first_installer(container: &ContainerShape, previous: Option<&Status>) -> bool {
    let recorded = previous.and_then(|s| s.helper.as_ref()).is_some_and(
        |h| matches!(&h.installer, Installer::First { name, .. } if *name == container.name),
    );
    recorded || installs(container).is_some()
}

/// What a container that runs `drain-helper install /.drain [--then X]` does after installing,
/// read with the helper's own parser; `None` for any other container.
fn installs(container: &ContainerShape) -> Option<AfterInstall> {
    let words: Vec<OsString> = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .map(OsString::from)
        .collect();
    let (program, args) = words.split_first()?;
    if Path::new(program).file_name() != Some(OsStr::new(INSTALLED_NAME)) {
        return None;
    }
    match parse(args) {
        Ok(Command::Install { dir, then }) if dir == Path::new(HELPER_DIR) => Some(then),
        _ => None,
    }
}

/// Fresh names for the installer and the volume, never colliding with the user's. An image
/// volume needs no installer, so no container name is taken.
pub(super) fn new_helper_names(spec: &SpecShape, choice: &DeliveryChoice) -> HelperInjection {
    let containers = container_names(spec);
    let volumes: BTreeSet<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    let installer = match choice.delivery {
        Delivery::ImageVolume => Installer::None,
        Delivery::InitContainer => Installer::Init(unique_name(&containers)),
        Delivery::FirstContainer(then) => Installer::First {
            name: unique_name(&containers),
            then,
        },
    };
    HelperInjection {
        volume: unique_name(&volumes),
        installer,
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
