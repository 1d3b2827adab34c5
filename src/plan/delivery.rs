//! How drain-helper reaches the containers whose hooks exec it (DESIGN.md section 3,
//! docs/decisions.md "The helper's delivery"): the choice, pure, once per pod, and the form the
//! `drain.io/status` record keeps it in.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::HelperInjection;
use super::delivery_why::{AutoChoice, DeliveryWhy, restarts};
use crate::annotations::Source;
use crate::capabilities::ImageVolumeNodes;
pub use crate::helper::args::AfterInstall;
use crate::settings::{HelperDelivery, KubeVersion};

/// Where the binary comes from. One enum, so that no combination of flags can ask for an image
/// volume that is also installed by a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The helper image mounted read-only at `/.drain`: nothing runs, nothing is copied.
    ImageVolume,
    /// An init container copies the binary into an emptyDir: every container waits for it
    /// (about a second of pod start: the kubelet notices its exit on its next relist).
    InitContainer,
    /// A regular container placed first copies the binary into an emptyDir and then sleeps
    /// (restartPolicy Always) or exits (Never, OnFailure); the others start with it.
    FirstContainer(AfterInstall),
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ImageVolume => "image-volume",
            Self::InitContainer => "init-container",
            Self::FirstContainer(_) => "first-container",
        }
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FirstContainer(then) => write!(f, "first-container (then {})", then.as_str()),
            other => f.write_str(other.as_str()),
        }
    }
}

/// The container that installs the binary, if any, and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installer {
    /// An image volume: nothing to install.
    None,
    /// First of `initContainers`.
    Init(String),
    /// First of `containers`.
    First { name: String, then: AfterInstall },
}

impl HelperInjection {
    pub fn delivery(&self) -> Delivery {
        match &self.installer {
            Installer::None => Delivery::ImageVolume,
            Installer::Init(_) => Delivery::InitContainer,
            Installer::First { then, .. } => Delivery::FirstContainer(*then),
        }
    }

    /// The installer container's name (none for an image volume).
    pub fn installer_name(&self) -> Option<&str> {
        match &self.installer {
            Installer::None => None,
            Installer::Init(name) | Installer::First { name, .. } => Some(name),
        }
    }
}

/// The delivery of one pod and why (`explain`, `-o json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryChoice {
    #[serde(serialize_with = "delivery_text")]
    pub delivery: Delivery,
    pub why: DeliveryWhy,
}

fn delivery_text<S: serde::Serializer>(d: &Delivery, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

/// The delivery `--helper-delivery` gives a pod without pod-level resources, by its
/// `restartPolicy` (`None`: the API default, Always): the startup log and `/metrics`.
pub fn choose(
    setting: HelperDelivery,
    version: Option<KubeVersion>,
    image_volume_nodes: Option<bool>,
    restart_policy: Option<&'static str>,
) -> DeliveryChoice {
    let pod = PodTraits {
        restart_policy: restart_policy.map(Cow::Borrowed),
        pod_level_resources: false,
    };
    choose_for_pod(setting, None, version, image_volume_nodes, pod)
}

/// What of the pod decides its delivery: its `restartPolicy` (`None`: the API default, Always)
/// and whether it sets pod-level resources (`spec.resources`, `crate::qos`).
#[derive(Debug, Clone, Default)]
pub struct PodTraits {
    pub restart_policy: Option<Cow<'static, str>>,
    pub pod_level_resources: bool,
}

/// The pod's delivery from the setting (`drain.io/delivery` on the pod, else on its namespace,
/// else `--helper-delivery`; `source` says which annotation, `None` the flag), the API
/// server's version, whether every node mounts image volumes (`None`: not known) and the pod.
pub fn choose_for_pod(
    setting: HelperDelivery,
    source: Option<Source>,
    version: Option<KubeVersion>,
    image_volume_nodes: Option<bool>,
    pod: PodTraits,
) -> DeliveryChoice {
    let restart_policy = pod.restart_policy;
    let restarting = restarts(&restart_policy);
    let (delivery, why) = match setting {
        HelperDelivery::Auto => {
            let choice = AutoChoice::decide(
                version,
                image_volume_nodes,
                pod.pod_level_resources,
                restarting,
            );
            let why = DeliveryWhy::Auto {
                source,
                restart_policy,
                choice,
            };
            (choice.delivery(), why)
        }
        named => {
            let delivery = match named {
                HelperDelivery::ImageVolume => Delivery::ImageVolume,
                HelperDelivery::InitContainer => Delivery::InitContainer,
                _ => Delivery::FirstContainer(if restarting {
                    AfterInstall::Sleep
                } else {
                    AfterInstall::Exit
                }),
            };
            let why = DeliveryWhy::Set {
                setting: named,
                source,
                restart_policy,
            };
            (delivery, why)
        }
    };
    DeliveryChoice { delivery, why }
}

impl AutoChoice {
    fn delivery(self) -> Delivery {
        match self {
            AutoChoice::ImageVolume(_) => Delivery::ImageVolume,
            AutoChoice::Restarts(_) => Delivery::FirstContainer(AfterInstall::Sleep),
            AutoChoice::PodLevelResources(_) | AutoChoice::Completes(_) => Delivery::InitContainer,
        }
    }
}

/// What the setting gives on this cluster, for the startup log and `check`: the image-volume
/// verdict, then the delivery of pods that restart and of pods that complete.
pub fn describe(
    setting: HelperDelivery,
    version: Option<KubeVersion>,
    nodes: &ImageVolumeNodes,
) -> String {
    let restarting = choose(setting, version, nodes.can_mount(), None).delivery;
    let completing = choose(setting, version, nodes.can_mount(), Some("Never")).delivery;
    format!(
        "helper delivery ({setting}): restartPolicy Always pods get {restarting}, Never/OnFailure pods {completing}; image volumes on every node: {nodes}"
    )
}

/// The helper as `drain.io/status` keeps it. Version 1 records (before the first container)
/// have `initContainer` or `imageVolume: true` and read as they were written. Written from a
/// borrowed [`HelperInjection`] ([`HelperRecord::of`]): copying it into an owned record cost
/// three allocations per review.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HelperRecord<'a> {
    #[serde(default, skip_serializing_if = "str::is_empty")]
    init_container: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "str::is_empty")]
    first_container: Cow<'a, str>,
    /// With `firstContainer`: `sleep` or `exit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    then: Option<Cow<'a, str>>,
    volume: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    image_volume: bool,
}

impl From<HelperRecord<'static>> for HelperInjection {
    fn from(record: HelperRecord<'static>) -> Self {
        let installer = if !record.first_container.is_empty() {
            Installer::First {
                name: record.first_container.into_owned(),
                then: match record.then.as_deref() {
                    Some("exit") => AfterInstall::Exit,
                    _ => AfterInstall::Sleep,
                },
            }
        } else if record.image_volume {
            Installer::None
        } else {
            Installer::Init(record.init_container.into_owned())
        };
        HelperInjection {
            volume: record.volume.into_owned(),
            installer,
            present: false,
        }
    }
}

impl<'a> HelperRecord<'a> {
    /// The record of `injection`, borrowing its names.
    pub(super) fn of(injection: &'a HelperInjection) -> Self {
        let mut record = HelperRecord {
            volume: Cow::Borrowed(&injection.volume),
            ..HelperRecord::default()
        };
        match &injection.installer {
            Installer::None => record.image_volume = true,
            Installer::Init(name) => record.init_container = Cow::Borrowed(name),
            Installer::First { name, then } => {
                record.first_container = Cow::Borrowed(name);
                record.then = Some(Cow::Borrowed(then.as_str()));
            }
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Option<KubeVersion> {
        text.parse().ok()
    }

    #[test]
    fn auto_uses_image_volumes_only_where_every_node_mounts_them() {
        let auto = |version, nodes, policy| {
            choose(HelperDelivery::Auto, v(version), nodes, policy).delivery
        };
        let sleeping = Delivery::FirstContainer(AfterInstall::Sleep);
        assert_eq!(auto("1.35", Some(true), None), Delivery::ImageVolume);
        assert_eq!(
            auto("1.36", Some(true), Some("Never")),
            Delivery::ImageVolume
        );
        // containerd 1.7 somewhere, or nodes not known: no image volume on any version.
        assert_eq!(auto("1.35", Some(false), None), sleeping);
        assert_eq!(auto("1.35", None, Some("Always")), sleeping);
        assert_eq!(auto("1.34", Some(true), None), sleeping);
        assert_eq!(auto("x", Some(true), None), sleeping);
        // Pods that run to completion keep the init container.
        assert_eq!(auto("1.32", None, Some("Never")), Delivery::InitContainer);
        assert_eq!(
            auto("1.35", Some(false), Some("OnFailure")),
            Delivery::InitContainer
        );
    }

    #[test]
    fn the_setting_decides_when_it_names_a_delivery() {
        let chosen = |setting, policy| choose(setting, v("1.32"), Some(false), policy);
        assert_eq!(
            chosen(HelperDelivery::ImageVolume, None).delivery,
            Delivery::ImageVolume
        );
        assert_eq!(
            chosen(HelperDelivery::InitContainer, None).delivery,
            Delivery::InitContainer
        );
        assert_eq!(
            chosen(HelperDelivery::FirstContainer, None).delivery,
            Delivery::FirstContainer(AfterInstall::Sleep)
        );
        assert_eq!(
            chosen(HelperDelivery::FirstContainer, Some("OnFailure")).delivery,
            Delivery::FirstContainer(AfterInstall::Exit)
        );
    }

    #[test]
    fn the_reason_names_what_decided() {
        let why = |version, nodes, policy| {
            choose(HelperDelivery::Auto, v(version), nodes, policy)
                .why
                .to_string()
        };
        assert!(why("1.32", None, None).contains("on by default from 1.35, the cluster runs 1.32"));
        assert!(why("1.35", Some(false), None).contains("not every node"));
        assert!(why("1.35", None, None).contains("not known"));
        assert!(why("1.35", Some(false), Some("Never")).contains("restartPolicy Never"));
        assert!(why("1.35", Some(true), None).contains("every node"));
    }

    #[test]
    fn the_cluster_description_names_both_kinds_of_pod() {
        let old =
            ImageVolumeNodes::summarise([("n1", Some("containerd://1.7.27"), Some("v1.35.0"))]);
        let text = describe(HelperDelivery::Auto, v("1.35"), &old);
        assert!(
            text.contains("Always pods get first-container (then sleep)"),
            "{text}"
        );
        assert!(
            text.contains("Never/OnFailure pods init-container"),
            "{text}"
        );
        assert!(
            text.contains("cannot mount them: n1 (containerd 1.7.27)"),
            "{text}"
        );
        let kubelet =
            ImageVolumeNodes::summarise([("n1", Some("containerd://2.1.3"), Some("v1.34.2"))]);
        let text = describe(HelperDelivery::Auto, v("1.35"), &kubelet);
        assert!(
            text.contains("Always pods get first-container (then sleep)"),
            "{text}"
        );
        assert!(text.contains("n1 (kubelet v1.34.2)"), "{text}");
        let new =
            ImageVolumeNodes::summarise([("n1", Some("containerd://2.1.3"), Some("v1.35.0"))]);
        let text = describe(HelperDelivery::Auto, v("1.35"), &new);
        assert!(
            text.contains("Always pods get image-volume, Never/OnFailure pods image-volume"),
            "{text}"
        );
    }

    #[test]
    fn records_of_every_version_read_back() {
        let read = |json: &str| serde_json::from_str::<HelperInjection>(json).unwrap();
        // Written before the first container existed.
        let init = read(r#"{"initContainer":"drain-helper","volume":"drain-helper"}"#);
        assert_eq!(init.installer, Installer::Init("drain-helper".into()));
        let image = read(r#"{"volume":"drain-helper","imageVolume":true}"#);
        assert_eq!(image.delivery(), Delivery::ImageVolume);
        for injection in [
            init,
            image,
            HelperInjection {
                volume: "drain-helper-2".into(),
                installer: Installer::First {
                    name: "drain-helper-3".into(),
                    then: AfterInstall::Exit,
                },
                present: false,
            },
        ] {
            let json = serde_json::to_string(&injection).unwrap();
            assert_eq!(read(&json), injection, "{json}");
        }
        // The init container's record is byte for byte what version 1 wrote.
        assert_eq!(
            serde_json::to_string(&read(r#"{"initContainer":"a","volume":"b"}"#)).unwrap(),
            r#"{"initContainer":"a","volume":"b"}"#
        );
    }
}
