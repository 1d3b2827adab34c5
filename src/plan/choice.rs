//! Sleep, helper or native per container: what the hook mode asks for and what the cluster
//! and the pod offer (DESIGN.md section 3).

use super::chain::chainable;
use super::roles::graceful_signal;
use super::timing::{HoldRequest, Timing};
use super::{ChainedHook, HookKind, Role, native};
use crate::annotations::Overrides;
use crate::helper::net::HttpUrl;
use crate::pod::ContainerShape;
use crate::settings::{HookMode, KubeVersion};

pub(super) struct ChosenHook {
    pub(super) kind: HookKind,
    /// When the stop signal comes: fixed, or the adaptive hold's range.
    pub(super) timing: Timing,
    pub(super) signal: Option<&'static str>,
    pub(super) notify: Vec<HttpUrl>,
    pub(super) wait_idle: Vec<u16>,
    pub(super) chained: Option<ChainedHook>,
    /// Said in the plan next to the container (hook mode native keeping the user's signal).
    pub(super) note: Option<String>,
}

pub(super) struct HookRequest {
    /// The floor (D, or the latest proxy floor for an app behind the proxies): the signal
    /// never comes before it.
    pub(super) floor: u32,
    pub(super) hold: HoldRequest,
    pub(super) chained: Result<Option<ChainedHook>, String>,
    pub(super) signal: Option<&'static str>,
    pub(super) notify: Vec<HttpUrl>,
    pub(super) wait_idle: Vec<u16>,
}

impl HookRequest {
    /// The floor and hold its role asks for, the user's own hook and the proxy's graceful
    /// signal; no notify and no wait-idle.
    pub(super) fn new(
        role: Role,
        container: &ContainerShape,
        overrides: &Overrides,
        (floor, hold): (u32, HoldRequest),
    ) -> Self {
        // The user vouches that the image's STOPSIGNAL is already graceful: no signal to send.
        let image_stops_gracefully = overrides.graceful_stop.is_some();
        HookRequest {
            floor,
            hold,
            chained: chainable(container),
            signal: (role == Role::Proxy && !image_stops_gracefully)
                .then(|| graceful_signal(container.image.as_deref().unwrap_or_default()))
                .flatten(),
            notify: Vec::new(),
            wait_idle: Vec::new(),
        }
    }
}

pub(super) struct HookChoice {
    pub(super) mode: HookMode,
    pub(super) windows: bool,
    pub(super) version: Option<KubeVersion>,
    pub(super) share_process_namespace: bool,
}

/// Why a container is left as it is (its `note` in the plan), and the warning that says so.
pub(super) struct Untouched {
    pub(super) reason: String,
    pub(super) warning: Option<String>,
}

impl Untouched {
    /// Nothing to warn about (no delay is needed).
    fn quietly(reason: impl Into<String>) -> Self {
        Untouched {
            reason: reason.into(),
            warning: None,
        }
    }

    fn warned(name: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Untouched {
            warning: Some(format!("container {name:?} left untouched: {reason}")),
            reason,
        }
    }

    /// The user's own hook stays: said so in the warning.
    fn keeping_its_hook(name: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Untouched {
            warning: Some(format!(
                "container {name:?} left untouched: {reason}; its hook is kept as it is"
            )),
            reason,
        }
    }
}

impl HookChoice {
    /// Picks sleep or helper for one container (DESIGN.md section 3); `Err` leaves it as it is.
    pub(super) fn decide(
        &self,
        container: &ContainerShape,
        request: HookRequest,
        warnings: &mut Vec<String>,
    ) -> Result<ChosenHook, Untouched> {
        let name = &container.name;
        let chained = request
            .chained
            .map_err(|reason| Untouched::keeping_its_hook(name, reason))?;
        let mut signal = request.signal;
        // Hook mode native on Linux: the kubelet sends the signal (`lifecycle.stopSignal`), so
        // it needs no helper and no PID 1 of its own.
        let native = self.mode == HookMode::Native && !self.windows;
        if let Some(wanted) = signal
            && self.windows
            && self.mode == HookMode::Native
        {
            warnings.push(format!(
                "container {name:?}: Windows pod, so hook mode native writes no lifecycle.stopSignal {wanted} (the API allows only SIGTERM and SIGKILL on Windows, and drain-helper does not run there): native sleep only"
            ));
            signal = None;
        }
        if let Some(wanted) = signal
            && self.share_process_namespace
            && !native
        {
            warnings.push(format!(
                "container {name:?}: shareProcessNamespace is on, so drain-helper cannot find the proxy's PID 1; it gets its image's stop signal instead of {wanted}"
            ));
            signal = None;
        }
        // A chained native sleep just raises the floor; it needs no helper.
        let (floor, chained) = match chained {
            Some(ChainedHook::Sleep { seconds }) => (request.floor.saturating_add(seconds), None),
            other => (request.floor, other),
        };
        let needs_helper = chained.is_some()
            || (signal.is_some() && !native)
            || !request.notify.is_empty()
            || !request.wait_idle.is_empty();
        // The adaptive hold makes `auto` pick the helper for a front proxy and the app behind
        // it, without the warnings of the features other modes drop.
        let holds = request.hold.needs_helper();
        let chains = chained.is_some();
        let kind = if self.windows {
            self.windows_kind(name, chains, needs_helper, warnings)?
        } else {
            self.linux_kind(name, chains, needs_helper, holds, warnings)?
        };
        let no_delay = || Untouched::quietly("no delay is needed (the delay is 0)");
        if kind == HookKind::Sleep {
            // Without the helper nothing can follow the traffic: the fixed delay plus stagger.
            let seconds = floor.saturating_add(request.hold.stagger());
            if seconds == 0 {
                return Err(no_delay());
            }
            let (kind, signal, note) = if native {
                native::stop_signal(container, signal, warnings)
            } else {
                (kind, None, None)
            };
            return Ok(ChosenHook {
                kind,
                timing: Timing::Fixed { seconds },
                signal,
                notify: Vec::new(),
                wait_idle: Vec::new(),
                chained: None,
                note,
            });
        }
        if floor == 0 && request.hold.stagger() == 0 && !needs_helper && !holds {
            return Err(no_delay());
        }
        Ok(ChosenHook {
            kind,
            timing: request.hold.helper_timing(floor),
            signal,
            notify: request.notify,
            wait_idle: request.wait_idle,
            chained,
            note: None,
        })
    }

    fn sleep_available(&self) -> Option<bool> {
        self.version.map(KubeVersion::supports_sleep_action)
    }

    /// Windows pods: the native sleep only (drain-helper is a Linux binary).
    fn windows_kind(
        &self,
        name: &str,
        chains: bool,
        needs_helper: bool,
        warnings: &mut Vec<String>,
    ) -> Result<HookKind, Untouched> {
        if self.sleep_available() != Some(true) {
            let reason = match self.version {
                Some(v) => format!(
                    "Windows pod on Kubernetes {v}: the native sleep action needs 1.30 and drain-helper does not run on Windows"
                ),
                None => "Windows pod and the Kubernetes version is unknown: the native sleep action needs 1.30 (pass --kube-version) and drain-helper does not run on Windows".into(),
            };
            return Err(Untouched::warned(name, reason));
        }
        if chains {
            return Err(Untouched::warned(
                name,
                "Windows pod: its own preStop hook cannot be chained without drain-helper, which does not run on Windows",
            ));
        }
        if needs_helper {
            warnings.push(format!(
                "container {name:?}: Windows pod, so only the native sleep is used (no notify, wait-idle or graceful signal)"
            ));
        }
        Ok(HookKind::Sleep)
    }

    /// Linux pods: what the hook mode asks for, and what the cluster offers.
    fn linux_kind(
        &self,
        name: &str,
        chains: bool,
        needs_helper: bool,
        holds: bool,
        warnings: &mut Vec<String>,
    ) -> Result<HookKind, Untouched> {
        let sleep_available = self.sleep_available();
        match self.mode {
            HookMode::Helper => Ok(HookKind::Helper),
            // Native is the native sleep too; `decide` adds its stop signal.
            HookMode::Sleep | HookMode::Native => {
                let mode = self.mode;
                if let Some(version) = self.version
                    && sleep_available == Some(false)
                {
                    return Err(Untouched::warned(
                        name,
                        format!(
                            "hook mode {mode} is set but Kubernetes {version} has no native sleep action (1.30+)"
                        ),
                    ));
                }
                if chains {
                    return Err(Untouched::keeping_its_hook(
                        name,
                        format!(
                            "its own preStop hook cannot be chained with hook mode {mode} (use helper or auto)"
                        ),
                    ));
                }
                if needs_helper {
                    let unused = if mode == HookMode::Native {
                        "notify and wait-idle are"
                    } else {
                        "notify, wait-idle and the graceful stop signal are"
                    };
                    warnings.push(format!(
                        "container {name:?}: hook mode {mode}, so {unused} not used"
                    ));
                }
                Ok(HookKind::Sleep)
            }
            HookMode::Auto if needs_helper || holds || sleep_available != Some(true) => {
                Ok(HookKind::Helper)
            }
            HookMode::Auto => Ok(HookKind::Sleep),
        }
    }
}
