//! Roles: which container is a front proxy, an app, a native sidecar or a mesh proxy.

use std::collections::BTreeSet;

use super::injection::{HELPER_PATH, is_first_installer};
use super::timing::Timing;
use super::{Action, ContainerPlan, HookKind, Plan, Role, Status};
use crate::annotations::{self, Overrides};
use crate::pod::SpecShape;
use crate::pod::{ContainerShape, image_name};
use crate::settings::Settings;

/// Containers whose injector owns their drain.
pub const MESH_PROXIES: [&str; 2] = ["istio-proxy", "linkerd-proxy"];
pub(super) const MESH_NOTE: &str = "service-mesh proxy: its injector owns its drain";

/// Assigns roles; containers mutated by an earlier run are frozen.
pub(super) fn classify_containers(
    spec: &SpecShape,
    overrides: &Overrides,
    settings: &Settings,
    previous: Option<&Status>,
    plan: &mut Plan,
) {
    let proxies_named = overrides.proxies.as_ref().map(|p| &p.value);
    let excluded: BTreeSet<&str> = overrides
        .exclude
        .as_ref()
        .map(|e| e.value.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let is_proxy = |c: &ContainerShape| match proxies_named {
        Some(names) => names.iter().any(|n| n == &c.name),
        None => c
            .image
            .as_deref()
            .is_some_and(|image| proxy_family(image, &settings.proxy_images).is_some()),
    };

    // Sized once: a pod's plans are a few hundred bytes each, and growing the list from four
    // to eight would copy them into an allocation past the allocator's thread cache.
    plan.containers
        .reserve_exact(spec.containers.len() + spec.init_containers.as_ref().map_or(0, Vec::len));
    for (index, container) in spec.containers.iter().enumerate() {
        // The helper's own installer (an earlier run put it first): not the user's, no plan.
        if is_first_installer(container, previous) {
            continue;
        }
        let (role, untouched_because) = if excluded.contains(container.name.as_str()) {
            if is_proxy(container) {
                plan.excluded_proxies.push(index);
            }
            (
                Role::Excluded,
                Some(format!("excluded by {}", annotations::EXCLUDE)),
            )
        } else if MESH_PROXIES.contains(&container.name.as_str()) {
            (Role::MeshProxy, Some(MESH_NOTE.to_owned()))
        } else if is_proxy(container) {
            (Role::Proxy, None)
        } else {
            (Role::App, None)
        };
        let mut entry = ContainerPlan::new(&container.name, false, index, role);
        match untouched_because {
            Some(note) => {
                entry.action = Action::Untouched;
                entry.note = Some(note);
            }
            None => mark_earlier_runs(&mut entry, container, previous),
        }
        plan.containers.push(entry);
    }

    for (index, container) in spec.init_containers.iter().flatten().enumerate() {
        if container.restart_policy.as_deref() != Some("Always") {
            continue;
        }
        let mut entry = ContainerPlan::new(&container.name, true, index, Role::NativeSidecar);
        entry.action = Action::Untouched;
        entry.note = Some("native sidecar: stopped by the kubelet after the app".into());
        if MESH_PROXIES.contains(&container.name.as_str()) {
            entry.role = Role::MeshProxy;
            entry.note = Some(MESH_NOTE.to_owned());
        } else if is_proxy(container) && !excluded.contains(container.name.as_str()) {
            plan.warnings.push(format!(
                "front proxy {:?} is a native sidecar: the kubelet stops it after the app, so it cannot be stopped first; make it a regular container to get the staggered drain",
                container.name
            ));
        }
        plan.containers.push(entry);
    }

    warn_about_unknown_names(spec, overrides, plan);
}

/// A container an earlier run planned (recorded in `drain.io/status`, or already running
/// drain-helper) is frozen as it is; any other is to be planned.
fn mark_earlier_runs(
    entry: &mut ContainerPlan,
    container: &ContainerShape,
    previous: Option<&Status>,
) {
    if let Some(recorded) = previous.and_then(|s| s.container(&container.name)) {
        let recorded_timing = recorded.earliest_seconds.map(|earliest| Timing::Recorded {
            earliest,
            latest: recorded.latest_seconds.unwrap_or(earliest).max(earliest),
        });
        entry.action = Action::AlreadyPlanned(recorded_timing);
        entry.hook = recorded.hook;
    } else if has_helper_hook(container) {
        entry.action = Action::AlreadyPlanned(None);
        entry.hook = Some(HookKind::Helper);
        entry.note = Some("already runs drain-helper".into());
    } else {
        entry.action = Action::ToPlan;
    }
}

/// `drain.io/proxies` or `drain.io/exclude` naming a container the pod does not have.
fn warn_about_unknown_names(spec: &SpecShape, overrides: &Overrides, plan: &mut Plan) {
    let known: BTreeSet<&str> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.name.as_str())
        .collect();
    for sourced in [&overrides.proxies, &overrides.exclude]
        .into_iter()
        .flatten()
    {
        for name in &sourced.value {
            if !known.contains(name.as_str()) {
                plan.warnings.push(format!(
                    "{} names container {name:?}, which the pod does not have",
                    sourced.key
                ));
            }
        }
    }
}

/// The proxy pattern an image matches: the name equals it or is a variant of it
/// (`nginx-unprivileged`, `envoy-distroless`); exporters that only carry a proxy's name
/// (`nginx-prometheus-exporter`) are not proxies.
pub fn proxy_family<'p>(image: &str, patterns: &'p [String]) -> Option<&'p str> {
    const EXPORTER: &[u8] = b"-exporter";
    let name = image_name(image);
    let bytes = name.as_bytes();
    if bytes.len() >= EXPORTER.len()
        && bytes[bytes.len() - EXPORTER.len()..].eq_ignore_ascii_case(EXPORTER)
    {
        return None;
    }
    patterns
        .iter()
        .map(String::as_str)
        .find(|p| is_variant_of(name, p))
}

/// The signal that stops a proxy gracefully when its image's stop signal may not.
pub fn graceful_signal(image: &str) -> Option<&'static str> {
    let name = image_name(image);
    if is_variant_of(name, "nginx") || is_variant_of(name, "openresty") {
        Some("SIGQUIT")
    } else if is_variant_of(name, "haproxy") {
        Some("SIGUSR1")
    } else {
        None
    }
}

/// `name` in lower case is `family` or `family-<variant>`; read in lower case byte by byte,
/// so no lower-cased copy of every image name is made on every review.
pub(super) fn is_variant_of(name: &str, family: &str) -> bool {
    let (name, family) = (name.as_bytes(), family.as_bytes());
    name.len() >= family.len()
        && name
            .iter()
            .zip(family)
            .all(|(n, f)| n.to_ascii_lowercase() == *f)
        && name.get(family.len()).is_none_or(|&b| b == b'-')
}

pub(super) fn has_helper_hook(container: &ContainerShape) -> bool {
    container
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
        .and_then(|h| h.exec.as_ref())
        .and_then(|e| e.command.as_ref())
        .and_then(|c| c.first())
        .is_some_and(|first| first == HELPER_PATH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_families() {
        let patterns: Vec<String> = crate::settings::DEFAULT_PROXY_IMAGES
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            proxy_family("nginxinc/nginx-unprivileged:1.25", &patterns),
            Some("nginx")
        );
        assert_eq!(
            proxy_family("envoyproxy/envoy-distroless:v1.30", &patterns),
            Some("envoy")
        );
        assert_eq!(
            proxy_family("nginx/nginx-prometheus-exporter", &patterns),
            None
        );
        assert_eq!(proxy_family("mynginxapp", &patterns), None);
        assert_eq!(proxy_family("ghcr.io/acme/api:1.0", &patterns), None);
        assert_eq!(
            graceful_signal("openresty/openresty:alpine"),
            Some("SIGQUIT")
        );
        assert_eq!(graceful_signal("haproxy:2.9"), Some("SIGUSR1"));
        assert_eq!(graceful_signal("envoyproxy/envoy"), None);
        // Read in lower case, without a lower-cased copy: a prefix is not a family, and names
        // that are not ASCII are read byte by byte.
        assert_eq!(proxy_family("Library/NGINX:1.27", &patterns), Some("nginx"));
        assert_eq!(proxy_family("Nginx-Prometheus-EXPORTER", &patterns), None);
        assert_eq!(proxy_family("nginxx", &patterns), None);
        assert_eq!(proxy_family("ngin", &patterns), None);
        assert_eq!(proxy_family("nginx-é", &patterns), Some("nginx"));
        assert_eq!(proxy_family("é", &patterns), None);
        assert_eq!(graceful_signal("HAProxy:2.9"), Some("SIGUSR1"));
        assert_eq!(
            crate::plan::migrate::known_migration("OpenResty/OpenResty"),
            Some(crate::helper::args::Migrate::Signal(libc::SIGHUP))
        );
    }
}
