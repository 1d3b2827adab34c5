//! The user's own preStop hook: whether drain-helper can run it after the drain.

use k8s_openapi::api::core::v1::LifecycleHandler;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::ChainedHook;
use crate::helper::net::HttpUrl;
use crate::pod::ContainerShape;

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
