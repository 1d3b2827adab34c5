//! The shutdown plan (DESIGN.md section 2): pure, from a pod's metadata and spec, its
//! namespace's annotations and the global settings to one decision per container and a grace
//! period. Nothing here touches JSON patches or the network.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::annotations::{self, Source};
use crate::helper::net::HttpUrl;
use crate::profiles::Profile;
use crate::settings::{KubeVersion, Settings};

mod chain;
mod choice;
mod contract;
mod delivery;
mod delivery_why;
mod env;
mod grace;
mod hold;
mod hooks;
mod injection;
mod json;
mod migrate;
mod native;
mod planned;
mod planner;
mod record;
mod resolve;
mod roles;
mod status;
mod timing;

pub use crate::helper::args::Migrate;
pub use crate::pod::image_name;
pub use delivery::{
    AfterInstall, Delivery, DeliveryChoice, Installer, choose as choose_delivery,
    describe as describe_delivery,
};
pub use delivery_why::DeliveryWhy;
pub use env::{DELAY_VAR, SHUTDOWN_BUDGET_VAR};
pub use injection::{HELPER_DIR, HELPER_IMAGE_PATH, HELPER_NAME, HELPER_PATH};
pub use migrate::known_migration;
pub use planned::PlannedHook;
pub use planner::plan_pod;
pub use record::RecordPlan;
use resolve::Resolved;
pub use roles::{MESH_PROXIES, graceful_signal, proxy_family};
pub use status::{RecordedContainer, Status};
pub use timing::Timing;

/// What a container is for, as far as shutdown order goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Front proxy (nginx and friends): stops first, at D.
    Proxy,
    /// Every other regular container: stops at D + S behind a proxy, else at D.
    App,
    /// Init container with `restartPolicy: Always`: stopped by the kubelet after the regular
    /// containers; no delay.
    NativeSidecar,
    /// istio-proxy or linkerd-proxy: its injector owns its drain.
    MeshProxy,
    /// Named in `drain.io/exclude`.
    Excluded,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Proxy => "proxy",
            Role::App => "app",
            Role::NativeSidecar => "native-sidecar",
            Role::MeshProxy => "mesh-proxy",
            Role::Excluded => "excluded",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The preStop mechanism a planned container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookKind {
    Sleep,
    Helper,
    /// The native sleep plus `lifecycle.stopSignal` (hook mode `native`, a front proxy with a
    /// known graceful signal).
    Native,
}

impl HookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Sleep => "sleep",
            HookKind::Helper => "helper",
            HookKind::Native => "native",
        }
    }
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The user's own preStop hook, kept and run after the drain delay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ChainedHook {
    Exec {
        command: Vec<String>,
    },
    HttpGet {
        #[serde(serialize_with = "as_text")]
        url: HttpUrl,
    },
    /// A native sleep of the user's: the two sleeps simply add up.
    Sleep {
        seconds: u32,
    },
}

/// As people write it: `exec /wait-shutdown`, `httpGet http://127.0.0.1:8090/shutdown`.
impl fmt::Display for ChainedHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainedHook::Exec { command } => {
                f.write_str("exec")?;
                for word in command {
                    // Quoted where a word would not read as one.
                    if word.is_empty() || word.contains(char::is_whitespace) || word.contains('"') {
                        write!(f, " {word:?}")?;
                    } else {
                        write!(f, " {word}")?;
                    }
                }
                Ok(())
            }
            ChainedHook::HttpGet { url } => write!(f, "httpGet {url}"),
            ChainedHook::Sleep { seconds } => write!(f, "sleep {seconds}s"),
        }
    }
}

/// What happens to one container, with the data only that case has (kube-runtime's watcher
/// `State` is the model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// To get a new preStop hook, not chosen yet: no finished plan keeps one.
    ToPlan,
    /// Gets a new preStop hook from this plan.
    Planned(PlannedHook),
    /// Mutated by an earlier run (listed in `drain.io/status`, or already running drain-helper):
    /// left exactly as it is. The range of its signal its record keeps ([`Timing::Recorded`]);
    /// `None` without a record.
    AlreadyPlanned(Option<Timing>),
    /// Left as it is; `note` says why.
    Untouched,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPlan {
    pub name: String,
    /// `true` for containers listed under `initContainers` (native sidecars).
    pub init_container: bool,
    /// Position in `containers` or `initContainers` of the original object.
    pub index: usize,
    pub role: Role,
    pub action: Action,
    /// The preStop mechanism: planned now, or by the earlier run that planned it.
    pub hook: Option<HookKind>,
    /// Graceful stop signal of the proxy (nginx: SIGQUIT): sent by the helper (hook `helper`),
    /// or written as `lifecycle.stopSignal` for the kubelet to send (hook `native`).
    pub signal: Option<&'static str>,
    /// `drain.io/notify` URLs the helper calls first (one container per pod).
    pub notify: Vec<HttpUrl>,
    /// `drain.io/wait-idle` ports the helper waits on.
    pub wait_idle: Vec<u16>,
    /// The user's own preStop hook, run after the drain.
    pub chained: Option<ChainedHook>,
    /// Where a helper hook appends its drain record (`--record`), or why it does not.
    pub record: Option<RecordPlan>,
    /// Why it is left as it is, or what else to know about it.
    pub note: Option<String>,
    /// Env vars the patch adds (`drain.io/env: "true"`), in order.
    pub env: Vec<EnvVar>,
}

/// One env var of the plan's timings (`drain.io/env`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    pub name: &'static str,
    pub value: String,
}

/// The volume that carries drain-helper into the pod and the container that installs it there
/// (none for an image volume). `drain.io/status` keeps it in its own wire form
/// ([`delivery::HelperRecord`]), which reads the records of every earlier version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "delivery::HelperRecord<'static>")]
pub struct HelperInjection {
    pub volume: String,
    pub installer: Installer,
    /// Both exist already (an earlier run added them); never recorded.
    pub present: bool,
}

impl Serialize for HelperInjection {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        delivery::HelperRecord::of(self).serialize(serializer)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The pod gets new hooks and/or a new grace period.
    Mutate,
    /// Nothing left to do (typically: already mutated).
    Unchanged,
    /// Deliberately left alone; `reason` says why.
    Skipped,
}

/// `explain -o json` writes it through `json::PlanJson` (the containers' timeline needs the
/// grace period).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// D, S and B as resolved from annotations and settings.
    pub delay: u32,
    pub stagger: u32,
    pub shutdown_budget: u32,
    /// Q and M of the adaptive hold as resolved (M at or below D: every hold is fixed).
    pub quiet: u32,
    pub max_delay: u32,
    /// Whether the helper's holds adapt up to M; `false` when M <= D, D = 0 or the pod is on
    /// the host network (its holds are the fixed D whatever M is).
    pub hold_adapts: bool,
    /// The traffic-path profile whose floors applied (`drain.io/profile`).
    pub profile: Option<&'static Profile>,
    pub has_front_proxy: bool,
    /// Regular containers that would be front proxies but are named in `drain.io/exclude`:
    /// the apps follow them when no planned proxy is left (indices into the spec's
    /// `containers`).
    pub excluded_proxies: Vec<usize>,
    /// `terminationGracePeriodSeconds` as the pod had it before any run of the webhook.
    pub grace_before: Option<i64>,
    /// The effective grace period after this plan (Kubernetes' default 30 when unset).
    pub grace_after: i64,
    /// Shown by explain; kept as the version, formatted only when shown.
    pub kube_version: Option<KubeVersion>,
    pub containers: Vec<ContainerPlan>,
    pub helper: Option<HelperInjection>,
    /// How the helper comes, and why (with `helper`).
    pub delivery: Option<DeliveryChoice>,
    pub warnings: Vec<String>,
    /// Whether `terminationGracePeriodSeconds` must be written.
    pub set_grace: bool,
    /// Whether `spec.os: {name: linux}` must be written: a `lifecycle.stopSignal` is planned
    /// and the pod names no OS (the API server requires one for it).
    pub adds_os_linux: bool,
    /// The `drain.io/status` value to write, when anything changes.
    pub status: Option<Status>,
}

impl Plan {
    pub fn planned(&self) -> impl Iterator<Item = &ContainerPlan> {
        self.containers
            .iter()
            .filter(|c| c.planned_hook().is_some())
    }

    /// The grace period after this plan, in whole seconds as the timeline counts them.
    pub fn grace_seconds(&self) -> u32 {
        u32::try_from(self.grace_after.max(0)).unwrap_or(u32::MAX)
    }
}

/// A user's input the webhook refuses; the message names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    InvalidAnnotation(#[from] annotations::AnnotationError),
    #[error(
        "terminationGracePeriodSeconds would become {grace}s, above the maximum of {max}s allowed by drain-webhook; it is pushed there by {causes}; lower it, for example {example}"
    )]
    GraceAboveMaximum {
        grace: i64,
        max: u32,
        causes: String,
        example: String,
    },
    #[error(
        "terminationGracePeriodSeconds was lowered to {grace}s after drain-webhook planned {ours}s (recorded in drain.io/status), by something that changed the pod after drain-webhook (another mutating webhook); container {container:?} has the {sleep}s preStop sleep drain-webhook wrote, and the API server accepts a sleep only up to the grace period; let the later webhook leave at least {ours}s, set drain.io/delay lower, or exclude the container with drain.io/exclude"
    )]
    GraceLoweredBelowSleep {
        container: String,
        sleep: i64,
        grace: i64,
        ours: i64,
    },
    #[error(
        "annotation {key}=\"sleep\" ({origin}) needs Kubernetes 1.30 or later for the native preStop sleep action, and this cluster runs {version}; use for example {key}: \"helper\" or \"auto\""
    )]
    SleepUnsupported {
        key: &'static str,
        origin: Source,
        version: KubeVersion,
    },
    #[error(
        "annotation {key}=\"native\" ({origin}) needs Kubernetes 1.33 or later for lifecycle.stopSignal (the ContainerStopSignals feature gate), and this cluster runs {version}; use for example {key}: \"helper\" (drain-helper sends the graceful signal) or \"auto\""
    )]
    NativeUnsupported {
        key: &'static str,
        origin: Source,
        version: KubeVersion,
    },
    #[error(
        "annotation {key}=\"image-volume\" ({origin}) needs Kubernetes 1.31 or later for image volumes (volumes[].image, on by default from 1.35), and this cluster runs {version}; use for example {key}: \"auto\" or \"init-container\""
    )]
    ImageVolumeUnsupported {
        key: &'static str,
        origin: Source,
        version: KubeVersion,
    },
}

/// Everything besides the pod that decides its plan.
#[derive(Debug, Clone, Copy)]
pub struct PodContext<'a> {
    pub settings: &'a Settings,
    /// Annotations of the pod's namespace (from the watch cache); `None` when unknown.
    pub namespace_annotations: Option<&'a BTreeMap<String, String>>,
    /// The API server's version; `None` when unknown (then `auto` picks the helper).
    pub kube_version: Option<KubeVersion>,
    /// Whether every node's runtime mounts image volumes (the node cache); `None` when unknown,
    /// which `auto` treats as no.
    pub image_volume_nodes: Option<bool>,
}

/// The latest floor of the planned (or earlier-planned) regular proxies' signals, at least D:
/// an app behind them begins its own wait there.
fn latest_proxy_floor(containers: &[ContainerPlan], delay: u32) -> u32 {
    containers
        .iter()
        .filter(|c| c.role == Role::Proxy && !c.init_container)
        .filter_map(|c| c.timing().map(Timing::earliest))
        .fold(delay, u32::max)
}

impl ContainerPlan {
    fn new(name: &str, init_container: bool, index: usize, role: Role) -> Self {
        Self {
            name: name.to_owned(),
            init_container,
            index,
            role,
            action: Action::Untouched,
            hook: None,
            signal: None,
            notify: Vec::new(),
            wait_idle: Vec::new(),
            chained: None,
            record: None,
            note: None,
            env: Vec::new(),
        }
    }
}

/// Values as text in `explain -o json` (URLs and migrations as the helper renders them).
fn as_text<S: serde::Serializer, T: fmt::Display>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn all_as_text<S: serde::Serializer>(urls: &[HttpUrl], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(urls.iter().map(ToString::to_string))
}

fn optional_as_text<S: serde::Serializer, T: fmt::Display>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => as_text(value, serializer),
        None => serializer.serialize_none(),
    }
}
