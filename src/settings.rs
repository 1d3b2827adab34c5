//! Global planning settings: the last link of the precedence chain pod annotation, namespace
//! annotation, global settings. The server and the offline CLI fill them from the same flags.

use std::fmt;
use std::str::FromStr;

/// Which preStop mechanism a container gets (DESIGN.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HookMode {
    /// Helper where the plan needs more than a sleep or the server is older than 1.30.
    #[default]
    Auto,
    /// The native `lifecycle.preStop.sleep` action only.
    Sleep,
    /// Exec of the injected drain-helper binary.
    Helper,
    /// Opt-in only: the native sleep, plus `lifecycle.stopSignal` with a front proxy's graceful
    /// signal (needs the `ContainerStopSignals` gate, alpha and off by default from 1.33).
    Native,
}

impl FromStr for HookMode {
    type Err = &'static str;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "auto" => Ok(Self::Auto),
            "sleep" => Ok(Self::Sleep),
            "helper" => Ok(Self::Helper),
            "native" => Ok(Self::Native),
            _ => Err("expected auto, sleep, helper or native"),
        }
    }
}

impl fmt::Display for HookMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Sleep => "sleep",
            Self::Helper => "helper",
            Self::Native => "native",
        })
    }
}

/// How drain-helper reaches the containers that exec it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HelperDelivery {
    /// An image volume where the cluster has them on by default (1.35+) and every node's
    /// runtime mounts them; else a first container for pods whose containers restart
    /// (restartPolicy Always), else the init container (plan/delivery.rs).
    #[default]
    Auto,
    /// An init container copies the binary into an emptyDir (any version; costs a start).
    InitContainer,
    /// A regular container placed first copies the binary into an emptyDir, then sleeps
    /// (restartPolicy Always) or exits: the other containers start without waiting for it.
    FirstContainer,
    /// The helper image mounted read-only at `/.drain` (Kubernetes image volumes, KEP-4639):
    /// no init container, no copy. Needs the `ImageVolume` gate (on by default from 1.35) and
    /// a runtime that supports it (containerd 2.1+, CRI-O 1.31+) on every node; forced, it is
    /// used whatever the nodes report.
    ImageVolume,
}

impl FromStr for HelperDelivery {
    type Err = &'static str;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "auto" => Ok(Self::Auto),
            "init-container" => Ok(Self::InitContainer),
            "first-container" => Ok(Self::FirstContainer),
            "image-volume" => Ok(Self::ImageVolume),
            _ => Err("expected auto, init-container, first-container or image-volume"),
        }
    }
}

impl fmt::Display for HelperDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::InitContainer => "init-container",
            Self::FirstContainer => "first-container",
            Self::ImageVolume => "image-volume",
        })
    }
}

/// A Kubernetes server version, major.minor (e.g. from `/version` or `--kube-version 1.34`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
}

impl KubeVersion {
    /// The native preStop sleep action is on by default from 1.30.
    pub const SLEEP_ACTION: KubeVersion = KubeVersion {
        major: 1,
        minor: 30,
    };

    /// Image volumes (`volumes[].image`, KEP-4639): alpha in 1.31, beta but off by default in
    /// 1.33 and 1.34, beta and on by default from 1.35 (docs/decisions.md).
    pub const IMAGE_VOLUMES_BY_DEFAULT: KubeVersion = KubeVersion {
        major: 1,
        minor: 35,
    };

    /// `volumes[].image` exists (alpha, gate `ImageVolume`); below it the API server drops the
    /// field and rejects the volume for having no source.
    pub const IMAGE_VOLUME_FIELD: KubeVersion = KubeVersion {
        major: 1,
        minor: 31,
    };

    /// `lifecycle.stopSignal` (KEP-4960, gate `ContainerStopSignals`): alpha from 1.33, off by
    /// default through 1.37 (beta planned for 1.38). Below 1.33 the API server has no such
    /// field at all.
    pub const STOP_SIGNALS: KubeVersion = KubeVersion {
        major: 1,
        minor: 33,
    };

    pub fn has_stop_signals(self) -> bool {
        self >= Self::STOP_SIGNALS
    }

    pub fn image_volumes_on_by_default(self) -> bool {
        self >= Self::IMAGE_VOLUMES_BY_DEFAULT
    }

    pub fn supports_sleep_action(self) -> bool {
        self >= Self::SLEEP_ACTION
    }

    /// Parses the fields of the API server's `/version` answer; minor may carry a `+` suffix
    /// on managed clusters (`"30+"`).
    pub fn from_parts(major: &str, minor: &str) -> Option<Self> {
        let digits = |s: &str| -> Option<u32> {
            let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            s[..end].parse().ok()
        };
        Some(Self {
            major: digits(major)?,
            minor: digits(minor)?,
        })
    }
}

impl FromStr for KubeVersion {
    type Err = &'static str;
    /// Accepts `1.34`, `v1.34`, `1.34.2` and `v1.30.1-eks-1234`.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let text = value.trim().trim_start_matches('v');
        let mut parts = text.split('.');
        let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
            return Err("expected MAJOR.MINOR, for example 1.34");
        };
        Self::from_parts(major, minor).ok_or("expected MAJOR.MINOR, for example 1.34")
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The container that installs drain-helper, as the operator configured it. Its requests and
/// limits apply as set in Burstable pods; a Guaranteed pod's installer gets requests equal to
/// these limits, a BestEffort pod's none (`crate::qos`). The default CPU limit is twice the
/// request, within a LimitRange `maxLimitRequestRatio` of 2 or more (docs/decisions.md).
#[derive(Debug, Clone, PartialEq)]
pub struct HelperSettings {
    /// Image whose `/drain-helper` binary is copied into the pod.
    pub image: String,
    pub image_pull_policy: String,
    pub cpu_request: String,
    pub memory_request: String,
    pub cpu_limit: String,
    pub memory_limit: String,
    /// Numeric, non-root user the init container runs as (Pod Security "restricted").
    pub run_as_user: i64,
    /// Init container or image volume.
    pub delivery: HelperDelivery,
}

impl Default for HelperSettings {
    fn default() -> Self {
        Self {
            image: concat!("ghcr.io/drain-io/drain-helper:", env!("CARGO_PKG_VERSION")).into(),
            image_pull_policy: "IfNotPresent".into(),
            cpu_request: "10m".into(),
            memory_request: "16Mi".into(),
            cpu_limit: "20m".into(),
            memory_limit: "32Mi".into(),
            run_as_user: 65532,
            delivery: HelperDelivery::Auto,
        }
    }
}

/// Global settings; every duration is in whole seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// D: how long new traffic may still arrive after T0.
    pub delay: u32,
    /// S: how long a front proxy drains before the app behind it gets SIGTERM.
    pub stagger: u32,
    /// B when the pod sets no grace period of its own (Kubernetes' default grace is 30 s).
    pub shutdown_budget: u32,
    /// Q: the adaptive hold ends once no new connection and no request arrived for this long (at least 1).
    pub quiet: u32,
    /// M: the adaptive hold's cap, from the start of the hook; at or below D the hold is the
    /// fixed D.
    pub max_delay: u32,
    /// Grace periods above this are refused (DESIGN.md section 2).
    pub max_grace: u32,
    /// Image names that mark a container as a front proxy.
    pub proxy_images: Vec<String>,
    pub hook_mode: HookMode,
    pub helper: HelperSettings,
    /// The traffic-path profile of pods that name none (`--profile`).
    pub profile: Option<&'static crate::profiles::Profile>,
    /// Every profile `drain.io/profile` may name: the built-ins and `--profiles-file`.
    pub profiles: crate::profiles::Catalogue,
}

/// Kubernetes' default `terminationGracePeriodSeconds`.
pub const KUBERNETES_DEFAULT_GRACE: u32 = 30;

pub const DEFAULT_PROXY_IMAGES: [&str; 6] =
    ["nginx", "openresty", "haproxy", "envoy", "traefik", "caddy"];

impl Default for Settings {
    fn default() -> Self {
        Self {
            delay: 10,
            stagger: 5,
            shutdown_budget: KUBERNETES_DEFAULT_GRACE,
            quiet: 3,
            max_delay: 60,
            max_grace: 3600,
            proxy_images: DEFAULT_PROXY_IMAGES.iter().map(|s| s.to_string()).collect(),
            hook_mode: HookMode::Auto,
            helper: HelperSettings::default(),
            profile: None,
            profiles: crate::profiles::Catalogue::BUILTIN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_versions_parse_from_flags_and_version_endpoint() {
        let v134 = KubeVersion {
            major: 1,
            minor: 34,
        };
        assert_eq!("1.34".parse(), Ok(v134));
        assert_eq!("v1.34.2".parse(), Ok(v134));
        assert_eq!(KubeVersion::from_parts("1", "34+"), Some(v134));
        assert!("1".parse::<KubeVersion>().is_err());
        assert!("one.two".parse::<KubeVersion>().is_err());
        assert!(
            !"1.29"
                .parse::<KubeVersion>()
                .unwrap()
                .supports_sleep_action()
        );
        assert!(
            "1.30"
                .parse::<KubeVersion>()
                .unwrap()
                .supports_sleep_action()
        );
    }

    #[test]
    fn helper_deliveries_read_back_as_written() {
        for delivery in [
            HelperDelivery::Auto,
            HelperDelivery::InitContainer,
            HelperDelivery::FirstContainer,
            HelperDelivery::ImageVolume,
        ] {
            assert_eq!(delivery.to_string().parse(), Ok(delivery));
        }
    }

    #[test]
    fn hook_modes_parse() {
        assert_eq!("helper".parse(), Ok(HookMode::Helper));
        assert_eq!("native".parse(), Ok(HookMode::Native));
        assert!("Sleep!".parse::<HookMode>().is_err());
        for mode in [
            HookMode::Auto,
            HookMode::Sleep,
            HookMode::Helper,
            HookMode::Native,
        ] {
            assert_eq!(mode.to_string().parse(), Ok(mode));
        }
        let v = |text: &str| text.parse::<KubeVersion>().unwrap();
        assert!(!v("1.32").has_stop_signals());
        assert!(v("1.33").has_stop_signals());
    }
}
