//! Hooks: whether a user's own hook can be chained, and sleep or helper per container.

use k8s_openapi::api::core::v1::LifecycleHandler;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Action, ChainedHook, ContainerPlan, HookKind, Role};
use crate::helper::net::HttpUrl;
use crate::pod::{ContainerShape, SpecShape};
use crate::settings::{HookMode, KubeVersion};

/// The user's preStop hook, classified: `Ok(None)` none, `Ok(Some)` can be chained after the
/// delay, `Err` cannot be kept if we replace it.
pub(super) fn chainable(container: &ContainerShape) -> Result<Option<ChainedHook>, String> {
    let Some(handler) = container
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
    else {
        return Ok(None);
    };
    classify_handler(handler, container)
}

pub(super) fn classify_handler(
    handler: &LifecycleHandler,
    container: &ContainerShape,
) -> Result<Option<ChainedHook>, String> {
    if let Some(exec) = &handler.exec {
        let command = exec.command.clone().unwrap_or_default();
        if command.is_empty() {
            return Err("its preStop exec hook has an empty command".into());
        }
        return Ok(Some(ChainedHook::Exec { command }));
    }
    if let Some(get) = &handler.http_get {
        if get
            .scheme
            .as_deref()
            .is_some_and(|s| !s.eq_ignore_ascii_case("HTTP"))
        {
            return Err(
                "its preStop httpGet hook uses HTTPS, which drain-helper cannot call".into(),
            );
        }
        if get.http_headers.as_ref().is_some_and(|h| !h.is_empty()) {
            return Err(
                "its preStop httpGet hook sends custom headers, which drain-helper cannot send"
                    .into(),
            );
        }
        let port = match &get.port {
            IntOrString::Int(port) => u16::try_from(*port).ok().filter(|p| *p > 0),
            IntOrString::String(name) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok()),
        }
        .ok_or_else(|| {
            "its preStop httpGet hook names a port the container does not declare".to_string()
        })?;
        // The helper runs in the pod's network namespace: the pod IP is loopback-reachable.
        let host = match get.host.as_deref() {
            None | Some("") => "127.0.0.1".to_string(),
            Some(host) if host.parse::<std::net::Ipv4Addr>().is_ok() => host.to_string(),
            Some(host) if host.parse::<std::net::Ipv6Addr>().is_ok() => format!("[{host}]"),
            Some(_) => {
                return Err(
                    "its preStop httpGet hook targets a host name, which drain-helper cannot resolve"
                        .into(),
                );
            }
        };
        let path = get.path.as_deref().unwrap_or("/");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        // The helper's own URL rules decide: a path it would refuse (a fragment, a space)
        // leaves the container as it is instead of writing a hook that fails.
        let url = HttpUrl::parse(&format!("http://{host}:{port}{path}")).map_err(|reason| {
            format!("its preStop httpGet hook cannot be run by drain-helper ({reason})")
        })?;
        return Ok(Some(ChainedHook::HttpGet { url }));
    }
    if let Some(sleep) = &handler.sleep {
        let seconds = u32::try_from(sleep.seconds)
            .map_err(|_| "its preStop sleep has an invalid duration".to_string())?;
        return Ok(Some(ChainedHook::Sleep { seconds }));
    }
    Err("its preStop hook is of a kind drain-webhook cannot chain (tcpSocket)".into())
}

/// The container that calls `drain.io/notify`: the first planned app, else the first planned
/// proxy (the URLs are on the pod's shared loopback: calling them once per pod is the intent).
pub(super) fn first_notify_target(containers: &[ContainerPlan]) -> Option<usize> {
    let planned = |role| {
        containers
            .iter()
            .position(|c| c.action == Action::Planned && c.role == role)
    };
    planned(Role::App).or_else(|| planned(Role::Proxy))
}

/// Containers that wait for idle ports: those declaring one of the ports; when no container
/// declares any, every planned app.
pub(super) fn wait_idle_targets(
    spec: &SpecShape,
    containers: &[ContainerPlan],
    ports: &[u16],
) -> Vec<usize> {
    if ports.is_empty() {
        return Vec::new();
    }
    let declares =
        |c: &ContainerPlan| {
            spec.containers.get(c.index).is_some_and(|container| {
                container.ports.iter().flatten().any(|p| {
                    u16::try_from(p.container_port).is_ok_and(|port| ports.contains(&port))
                })
            })
        };
    let planned = |c: &&ContainerPlan| c.action == Action::Planned && !c.init_container;
    let declaring: Vec<usize> = containers
        .iter()
        .enumerate()
        .filter(|(_, c)| planned(c) && declares(c))
        .map(|(i, _)| i)
        .collect();
    if !declaring.is_empty() {
        return declaring;
    }
    containers
        .iter()
        .enumerate()
        .filter(|(_, c)| planned(c) && c.role == Role::App)
        .map(|(i, _)| i)
        .collect()
}

pub(super) struct HookRequest {
    pub(super) delay: u32,
    pub(super) chained: Result<Option<ChainedHook>, String>,
    pub(super) signal: Option<&'static str>,
    pub(super) notify: Vec<HttpUrl>,
    pub(super) wait_idle: Vec<u16>,
}

pub(super) struct ChosenHook {
    pub(super) kind: HookKind,
    pub(super) pre_stop_seconds: u32,
    pub(super) signal: Option<&'static str>,
    pub(super) notify: Vec<HttpUrl>,
    pub(super) wait_idle: Vec<u16>,
    pub(super) chained: Option<ChainedHook>,
}

pub(super) struct HookChoice {
    pub(super) mode: HookMode,
    pub(super) windows: bool,
    pub(super) version: Option<KubeVersion>,
    pub(super) share_process_namespace: bool,
}

impl HookChoice {
    /// Picks sleep or helper for one container (DESIGN.md section 3); `Err` leaves it as it is.
    pub(super) fn decide(
        &self,
        container: &ContainerShape,
        request: HookRequest,
        warnings: &mut Vec<String>,
    ) -> Result<ChosenHook, String> {
        let name = &container.name;
        let chained = match request.chained {
            Ok(chained) => chained,
            Err(reason) => {
                warnings.push(format!(
                    "container {name:?} left untouched: {reason}; its hook is kept as it is"
                ));
                return Err(reason);
            }
        };
        let mut signal = request.signal;
        if signal.is_some() && self.share_process_namespace {
            warnings.push(format!(
                "container {name:?}: shareProcessNamespace is on, so drain-helper cannot find the proxy's PID 1; it gets its image's stop signal instead of {}",
                signal.unwrap_or_default()
            ));
            signal = None;
        }
        // A chained native sleep just adds to the delay; it needs no helper.
        let (pre_stop_seconds, chained) = match chained {
            Some(ChainedHook::Sleep { seconds }) => (request.delay.saturating_add(seconds), None),
            other => (request.delay, other),
        };
        let needs_helper = chained.is_some()
            || signal.is_some()
            || !request.notify.is_empty()
            || !request.wait_idle.is_empty();
        let sleep_available = self.version.map(KubeVersion::supports_sleep_action);

        let kind = if self.windows {
            // Windows pods: native sleep only.
            if sleep_available != Some(true) {
                let reason = match self.version {
                    Some(v) => format!(
                        "Windows pod on Kubernetes {v}: the native sleep action needs 1.30 and drain-helper does not run on Windows"
                    ),
                    None => "Windows pod and the Kubernetes version is unknown: the native sleep action needs 1.30 (pass --kube-version) and drain-helper does not run on Windows".into(),
                };
                warnings.push(format!("container {name:?} left untouched: {reason}"));
                return Err(reason);
            }
            if chained.is_some() {
                let reason = "Windows pod: its own preStop hook cannot be chained without drain-helper, which does not run on Windows".to_string();
                warnings.push(format!("container {name:?} left untouched: {reason}"));
                return Err(reason);
            }
            if needs_helper {
                warnings.push(format!(
                    "container {name:?}: Windows pod, so only the native sleep is used (no notify, wait-idle or graceful signal)"
                ));
            }
            HookKind::Sleep
        } else {
            match self.mode {
                HookMode::Helper => HookKind::Helper,
                HookMode::Sleep => {
                    if self.version.is_some() && sleep_available == Some(false) {
                        let reason = format!(
                            "hook mode sleep is set but Kubernetes {} has no native sleep action (1.30+)",
                            self.version.map(|v| v.to_string()).unwrap_or_default()
                        );
                        warnings.push(format!("container {name:?} left untouched: {reason}"));
                        return Err(reason);
                    }
                    if chained.is_some() {
                        let reason = "its own preStop hook cannot be chained with hook mode sleep (use helper or auto)".to_string();
                        warnings.push(format!(
                            "container {name:?} left untouched: {reason}; its hook is kept as it is"
                        ));
                        return Err(reason);
                    }
                    if needs_helper {
                        warnings.push(format!(
                            "container {name:?}: hook mode sleep, so notify, wait-idle and the graceful stop signal are not used"
                        ));
                    }
                    HookKind::Sleep
                }
                HookMode::Auto => {
                    if needs_helper || sleep_available != Some(true) {
                        HookKind::Helper
                    } else {
                        HookKind::Sleep
                    }
                }
            }
        };
        if kind == HookKind::Sleep {
            if pre_stop_seconds == 0 {
                return Err("no delay is needed (the delay is 0)".into());
            }
            return Ok(ChosenHook {
                kind,
                pre_stop_seconds,
                signal: None,
                notify: Vec::new(),
                wait_idle: Vec::new(),
                chained: None,
            });
        }
        if pre_stop_seconds == 0 && !needs_helper {
            return Err("no delay is needed (the delay is 0)".into());
        }
        Ok(ChosenHook {
            kind,
            pre_stop_seconds,
            signal,
            notify: request.notify,
            wait_idle: request.wait_idle,
            chained,
        })
    }
}
