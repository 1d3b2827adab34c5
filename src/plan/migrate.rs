//! Moving pinned clients off at the floor (issue 30, docs/helper.md "Moving pinned clients"):
//! which planned container's helper, once the hold has reached D and still holds, asks its
//! process (or a URL) to end the existing client connections gracefully while it keeps
//! listening. Kept-alive and HTTP/2 clients pinned to the pod through the Service then
//! reconnect to live pods, and the hold ends at the later of L and D, plus Q, instead of M.

use super::roles::is_variant_of;
use super::{Action, ContainerPlan, HookKind, Plan, Role};
use crate::annotations::{MIGRATE, MigrateSetting, Overrides};
use crate::helper::args::{HoldArgs, Migrate};
use crate::pod::{SpecShape, image_name};

/// The migration a proxy's image is known to handle safely, for `auto`: nginx and openresty
/// reload on SIGHUP (new workers take over the listening sockets; the old ones close idle
/// kept-alive connections, answer requests in flight with `Connection: close`, send HTTP/2
/// GOAWAY and keep open streams until they end). No other family is signalled by `auto`: a
/// signal a process does not handle can kill it (a Go program dies on SIGHUP).
pub fn known_migration(image: &str) -> Option<Migrate> {
    let name = image_name(image);
    (is_variant_of(name, "nginx") || is_variant_of(name, "openresty"))
        .then_some(Migrate::Signal(libc::SIGHUP))
}

/// Writes each planned container's migration: `auto` gives the adaptive front proxies their
/// known mechanism; a signal goes to the adaptive front proxies, or to the apps holding alone
/// when the pod has none; a URL is called once per pod, by the first of those.
pub(super) fn plan_migrations(
    plan: &mut Plan,
    spec: &SpecShape,
    overrides: &Overrides,
    share_process_namespace: bool,
) {
    let holding = |c: &ContainerPlan| {
        !c.init_container
            && c.hook == Some(HookKind::Helper)
            && c.planned_hook()
                .and_then(|hook| hook.timing.hold())
                .is_some()
    };
    let proxies: Vec<usize> = (0..plan.containers.len())
        .filter(|&i| holding(&plan.containers[i]) && plan.containers[i].role == Role::Proxy)
        .collect();
    let lone_apps: Vec<usize> = (0..plan.containers.len())
        .filter(|&i| holding(&plan.containers[i]) && plan.containers[i].role == Role::App)
        .filter(|_| !plan.has_front_proxy)
        .collect();
    let targets = if proxies.is_empty() {
        &lone_apps
    } else {
        &proxies
    };
    let setting = overrides.migrate.as_ref();
    let chosen: Vec<(usize, Migrate)> = match setting.map(|s| &s.value) {
        None | Some(MigrateSetting::Auto) => proxies
            .iter()
            .filter_map(|&i| {
                let image = spec
                    .containers
                    .get(plan.containers[i].index)?
                    .image
                    .as_deref()?;
                Some((i, known_migration(image)?))
            })
            .collect(),
        Some(MigrateSetting::None) => Vec::new(),
        Some(MigrateSetting::Signal(signal)) => targets
            .iter()
            .map(|&i| (i, Migrate::Signal(*signal)))
            .collect(),
        Some(MigrateSetting::Post(url)) => targets
            .first()
            .map(|&i| (i, Migrate::Post(url.clone())))
            .into_iter()
            .collect(),
    };
    if let Some(set) = setting
        && matches!(
            set.value,
            MigrateSetting::Signal(_) | MigrateSetting::Post(_)
        )
        && chosen.is_empty()
    {
        plan.warnings.push(format!(
            "{MIGRATE}={:?} ({}) has no effect: no front proxy or lone app holds adaptively (the hold is off, or the containers do not run drain-helper)",
            set.raw, set.source
        ));
    }
    for (index, migration) in chosen {
        let entry = &mut plan.containers[index];
        // With a shared process namespace PID 1 is the pause process: a signal cannot reach
        // the proxy (as for its graceful signal).
        if share_process_namespace && matches!(migration, Migrate::Signal(_)) {
            plan.warnings.push(format!(
                "container {:?}: shareProcessNamespace is on, so drain-helper cannot send {migration} to its PID 1: pinned clients are not moved off and keep the hold toward drain.io/max-delay",
                entry.name
            ));
            continue;
        }
        let Some(hold) = planned_hold(entry) else {
            continue;
        };
        hold.migrate = Some(migration);
        // Last line of defence, as for every helper command: one its parser would refuse (a
        // migration signal that is also the container's stop signal) is not written.
        if let Some(reason) = entry.helper_rejection() {
            plan.warnings.push(format!(
                "container {:?}: no migration: {reason}",
                entry.name
            ));
            if let Some(hold) = planned_hold(entry) {
                hold.migrate = None;
            }
        }
    }
}

/// The adaptive hold this run plans for `entry`, when it plans one.
fn planned_hold(entry: &mut ContainerPlan) -> Option<&mut HoldArgs> {
    match &mut entry.action {
        Action::Planned(hook) => hook.hold_mut(),
        _ => None,
    }
}
