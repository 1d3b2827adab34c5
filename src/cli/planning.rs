//! The planning flags every command shares (D, S, B, Q, M, the hook mode, the helper, the
//! profiles) and the settings they become.

use clap::Args;

use crate::profiles::{Catalogue, Origin, ProfilesFileError};
use crate::server::args::{duration_flag, quiet_flag};
use crate::settings::{
    DEFAULT_PROXY_IMAGES, HelperDelivery, HelperSettings, HookMode, KubeVersion, Settings,
};

/// Flags that decide the plan; shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct PlanningArgs {
    /// D: how long new traffic may still arrive after the pod is deleted.
    #[arg(long, env = "DRAIN_DELAY", default_value = "10s", value_parser = duration_flag, value_name = "DURATION")]
    pub delay: u32,
    /// S: how long a front proxy drains before the app behind it gets SIGTERM.
    #[arg(long, env = "DRAIN_STAGGER", default_value = "5s", value_parser = duration_flag, value_name = "DURATION")]
    pub stagger: u32,
    /// B: time every container keeps after its own SIGTERM when the pod sets no grace period.
    #[arg(long, env = "DRAIN_SHUTDOWN_BUDGET", default_value = "30s", value_parser = duration_flag, value_name = "DURATION")]
    pub shutdown_budget: u32,
    /// Q: the adaptive hold (a front proxy, the app behind it, a container with drain-helper)
    /// ends once no new connection and no request on an open one arrived in the pod for this long, never before D.
    #[arg(long, env = "DRAIN_QUIET", default_value = "3s", value_parser = quiet_flag, value_name = "DURATION")]
    pub quiet: u32,
    /// M: the adaptive hold ends at this time after deletion at the latest, with traffic still
    /// arriving; at or below D the hold is the fixed D.
    #[arg(long, env = "DRAIN_MAX_DELAY", default_value = "60s", value_parser = duration_flag, value_name = "DURATION")]
    pub max_delay: u32,
    /// Grace periods above this are refused.
    #[arg(long, env = "DRAIN_MAX_GRACE", default_value = "3600s", value_parser = duration_flag, value_name = "DURATION")]
    pub max_grace: u32,
    /// Image names that mark a container as a front proxy (comma-separated).
    #[arg(
        long,
        env = "DRAIN_PROXY_IMAGES",
        value_delimiter = ',',
        default_values_t = DEFAULT_PROXY_IMAGES.map(String::from),
        value_name = "NAMES"
    )]
    pub proxy_images: Vec<String>,
    /// Which preStop mechanism to use: auto, sleep, helper or native (opt-in: sleep plus
    /// lifecycle.stopSignal, needs the ContainerStopSignals gate).
    #[arg(long, env = "DRAIN_HOOK_MODE", default_value = "auto", value_parser = hook_mode_flag, value_name = "MODE")]
    pub hook_mode: HookMode,
    /// How drain-helper reaches pods: auto (an image volume from Kubernetes 1.35 where every
    /// node's kubelet (1.35+) and runtime mount them; else a first container that installs and sleeps for pods
    /// with restartPolicy Always, an init container for the others), init-container,
    /// first-container or image-volume (forced: whatever the nodes report).
    #[arg(long, env = "DRAIN_HELPER_DELIVERY", default_value = "auto", value_parser = helper_delivery_flag, value_name = "HOW")]
    pub helper_delivery: HelperDelivery,
    /// Image that carries the drain-helper binary.
    #[arg(long, env = "DRAIN_HELPER_IMAGE", default_value_t = HelperSettings::default().image)]
    pub helper_image: String,
    /// imagePullPolicy of the helper's installer container (or image volume).
    #[arg(long, env = "DRAIN_HELPER_IMAGE_PULL_POLICY", default_value_t = HelperSettings::default().image_pull_policy)]
    pub helper_image_pull_policy: String,
    #[arg(long, env = "DRAIN_HELPER_CPU_REQUEST", default_value_t = HelperSettings::default().cpu_request, value_parser = quantity_flag)]
    pub helper_cpu_request: String,
    #[arg(long, env = "DRAIN_HELPER_MEMORY_REQUEST", default_value_t = HelperSettings::default().memory_request, value_parser = quantity_flag)]
    pub helper_memory_request: String,
    #[arg(long, env = "DRAIN_HELPER_CPU_LIMIT", default_value_t = HelperSettings::default().cpu_limit, value_parser = quantity_flag)]
    pub helper_cpu_limit: String,
    #[arg(long, env = "DRAIN_HELPER_MEMORY_LIMIT", default_value_t = HelperSettings::default().memory_limit, value_parser = quantity_flag)]
    pub helper_memory_limit: String,
    /// Numeric, non-root user of the helper's installer container.
    #[arg(long, env = "DRAIN_HELPER_RUN_AS_USER", default_value_t = HelperSettings::default().run_as_user, value_parser = run_as_user_flag)]
    pub helper_run_as_user: i64,
    /// Traffic-path profile of pods that name none in drain.io/profile (docs/profiles.md):
    /// its floor raises the delay. Empty: none.
    /// Checked against the built-ins and --profiles-file when the command starts.
    #[arg(long, env = "DRAIN_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// JSON file of profiles to add to the built-ins or put in their place
    /// (docs/profiles.md); read and checked once, at startup. Empty: none.
    #[arg(long, env = "DRAIN_PROFILES_FILE", value_name = "PATH")]
    pub profiles_file: Option<String>,
    /// Kubernetes version (e.g. 1.34). Empty: ask the API server (serve) or unknown (offline).
    #[arg(long, env = "DRAIN_KUBE_VERSION", value_parser = kube_version_flag, value_name = "MAJOR.MINOR")]
    pub kube_version: Option<OptionalKubeVersion>,
}

/// `--kube-version`, where an empty value (e.g. an empty environment variable) means "unset".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalKubeVersion(pub Option<KubeVersion>);

/// Planning flags that could only be checked once the profiles file was read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read --profiles-file {path}: {source}")]
    ReadProfiles {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Profiles(#[from] ProfilesFileError),
    #[error(
        "--helper-{resource}-request {request} is above --helper-{resource}-limit {limit}: the API server rejects such a container, so every pod that gets the installer would be rejected; lower the request or raise the limit"
    )]
    HelperRequestAboveLimit {
        resource: &'static str,
        request: String,
        limit: String,
    },
    #[error("--profile {name:?}: no such profile; the known ones are {known}")]
    UnknownProfile { name: String, known: String },
    #[error(
        "profile {name:?} ({origin}) needs a grace period of at least {need}s for its floors alone, above --max-grace {max}s: every pod using it would be denied; lower its floors or raise --max-grace"
    )]
    FloorsAboveMaximum {
        name: &'static str,
        origin: &'static str,
        need: u64,
        max: u32,
    },
    #[error(
        "--max-delay {max_delay}s plus --stagger {stagger}s plus --shutdown-budget {budget}s is {need}s, above --max-grace {max}s: every pod with a front proxy would be denied; lower --max-delay (for example {example}s) or raise --max-grace"
    )]
    HoldAboveMaximum {
        max_delay: u32,
        stagger: u32,
        budget: u32,
        need: u64,
        max: u32,
        example: u32,
    },
}

impl PlanningArgs {
    /// The global settings these flags describe. Flags were validated while parsing; the
    /// profiles file and `--profile` are checked here, so a bad one stops the command before
    /// it serves or plans anything.
    pub fn settings(&self) -> Result<Settings, SettingsError> {
        let profiles = match self.profiles_file.as_deref() {
            Some(path) if !path.trim().is_empty() => {
                let shown = path.trim().to_owned();
                let text = std::fs::read_to_string(&shown).map_err(|source| {
                    SettingsError::ReadProfiles {
                        path: shown.clone(),
                        source,
                    }
                })?;
                Catalogue::load(&text, &shown)?
            }
            _ => Catalogue::BUILTIN,
        };
        let profile = match self.profile.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) => {
                Some(
                    profiles
                        .find(name)
                        .ok_or_else(|| SettingsError::UnknownProfile {
                            name: name.to_owned(),
                            known: profiles.known_names(),
                        })?,
                )
            }
        };
        // A floor no pod can meet is an operator's mistake: say so now, not in every denial.
        let from_file = profiles
            .profiles()
            .iter()
            .filter(|p| p.origin() != Origin::BuiltIn);
        for (p, origin) in from_file
            .map(|p| (p, "--profiles-file"))
            .chain(profile.map(|p| (p, "--profile")))
        {
            let need = u64::from(p.delay_floor) + u64::from(p.budget_floor.unwrap_or(0));
            if need > u64::from(self.max_grace) {
                return Err(SettingsError::FloorsAboveMaximum {
                    name: p.name,
                    origin,
                    need,
                    max: self.max_grace,
                });
            }
        }
        // The adaptive hold's worst case on the defaults, M + S + B, must fit the maximum.
        let need =
            u64::from(self.max_delay) + u64::from(self.stagger) + u64::from(self.shutdown_budget);
        if self.max_delay > self.delay && need > u64::from(self.max_grace) {
            return Err(SettingsError::HoldAboveMaximum {
                max_delay: self.max_delay,
                stagger: self.stagger,
                budget: self.shutdown_budget,
                need,
                max: self.max_grace,
                example: self
                    .max_grace
                    .saturating_sub(self.stagger.saturating_add(self.shutdown_budget))
                    .max(self.delay),
            });
        }
        for (resource, request, limit) in [
            ("cpu", &self.helper_cpu_request, &self.helper_cpu_limit),
            (
                "memory",
                &self.helper_memory_request,
                &self.helper_memory_limit,
            ),
        ] {
            if crate::qos::nanos(request) > crate::qos::nanos(limit) {
                return Err(SettingsError::HelperRequestAboveLimit {
                    resource,
                    request: request.clone(),
                    limit: limit.clone(),
                });
            }
        }
        Ok(Settings {
            delay: self.delay,
            stagger: self.stagger,
            shutdown_budget: self.shutdown_budget,
            quiet: self.quiet,
            max_delay: self.max_delay,
            max_grace: self.max_grace,
            proxy_images: self
                .proxy_images
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            hook_mode: self.hook_mode,
            helper: HelperSettings {
                image: self.helper_image.clone(),
                image_pull_policy: self.helper_image_pull_policy.clone(),
                cpu_request: self.helper_cpu_request.clone(),
                memory_request: self.helper_memory_request.clone(),
                cpu_limit: self.helper_cpu_limit.clone(),
                memory_limit: self.helper_memory_limit.clone(),
                run_as_user: self.helper_run_as_user,
                delivery: self.helper_delivery,
            },
            profile,
            profiles,
        })
    }

    /// The version given on the command line, if any.
    pub fn kube_version(&self) -> Option<KubeVersion> {
        self.kube_version.and_then(|v| v.0)
    }
}

fn hook_mode_flag(value: &str) -> Result<HookMode, String> {
    value
        .parse()
        .map_err(|err: &str| format!("{err} (for example auto)"))
}

fn helper_delivery_flag(value: &str) -> Result<HelperDelivery, String> {
    value
        .parse()
        .map_err(|err: &str| format!("{err} (for example auto)"))
}

/// A Kubernetes quantity above zero (`10m`, `0.5`, `32Mi`): the installer's requests and limits
/// go into every pod that gets one, and one the API server refuses would reject them all.
fn quantity_flag(value: &str) -> Result<String, String> {
    match crate::qos::nanos(value) {
        Some(n) if n > 0 => Ok(value.trim().to_owned()),
        _ => Err("expected a Kubernetes quantity above zero (for example 20m or 32Mi)".into()),
    }
}

fn run_as_user_flag(value: &str) -> Result<i64, String> {
    match value.trim().parse::<i64>() {
        Ok(uid) if uid > 0 => Ok(uid),
        _ => Err("expected a numeric, non-root user id (for example 65532)".into()),
    }
}

fn kube_version_flag(value: &str) -> Result<OptionalKubeVersion, String> {
    if value.trim().is_empty() {
        return Ok(OptionalKubeVersion(None));
    }
    value
        .parse()
        .map(|v| OptionalKubeVersion(Some(v)))
        .map_err(|err: &str| err.to_string())
}
