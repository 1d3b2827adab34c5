//! The operations on one planned container: its preStop hook (and stop signal), its env
//! (`drain.io/env`) and its mount of the helper.

use super::path::{Path, in_container};
use super::{Handler, Lifecycle, Mount, PatchValue, PodPatch};
use crate::plan::{ContainerPlan, HELPER_DIR, HelperInjection, HookKind};
use crate::pod::{ContainerShape, EnvList};

pub(super) fn container_ops(
    patch: &mut PodPatch,
    current: Option<&ContainerShape>,
    container: &ContainerPlan,
    helper: Option<&HelperInjection>,
) {
    debug_assert!(container.planned_hook().is_some() && !container.init_container);
    let at = |suffix| Path::in_container(container.index, suffix);

    let handler = pre_stop_handler(container);
    let stop_signal = container
        .signal
        .filter(|_| container.hook == Some(HookKind::Native));
    match current.and_then(|c| c.lifecycle.as_ref()) {
        None => patch.add(
            at(in_container::LIFECYCLE),
            PatchValue::Lifecycle(Lifecycle {
                pre_stop: handler,
                stop_signal,
            }),
        ),
        Some(lifecycle) => {
            if lifecycle.pre_stop.is_some() {
                patch.replace(at(in_container::PRE_STOP), PatchValue::Handler(handler));
            } else {
                patch.add(at(in_container::PRE_STOP), PatchValue::Handler(handler));
            }
            // A stop signal the container sets is the user's: never replaced.
            if let Some(signal) = stop_signal
                && lifecycle.stop_signal.is_none()
            {
                patch.add(
                    at(in_container::STOP_SIGNAL),
                    PatchValue::Text(signal.to_owned()),
                );
            }
        }
    }

    // drain.io/env: appended to the container's env, or the list added when it has none (the
    // planner adds nothing to an env that is not a list).
    if !container.env.is_empty() {
        let vars = container.env.iter().cloned();
        match current.map(ContainerShape::env_list) {
            Some(EnvList::Vars(_)) => {
                for var in vars {
                    patch.add(at(in_container::ENV_END), PatchValue::Env(var));
                }
            }
            _ => patch.add(at(in_container::ENV), PatchValue::Envs(vars.collect())),
        }
    }

    if container.hook == Some(HookKind::Helper)
        && let Some(injection) = helper
    {
        let mounts = current.and_then(|c| c.volume_mounts.as_ref());
        let already_mounted = mounts.is_some_and(|mounts| {
            mounts
                .iter()
                .any(|m| m.mount_path == HELPER_DIR && m.name == injection.volume)
        });
        if !already_mounted {
            let mount = Mount {
                name: injection.volume.clone(),
                mount_path: HELPER_DIR,
                read_only: Some(true),
            };
            if mounts.is_some() {
                patch.add(at(in_container::MOUNTS_END), PatchValue::Mount(mount));
            } else {
                patch.add(at(in_container::MOUNTS), PatchValue::Mounts([mount]));
            }
        }
    }
}

/// The preStop handler a planned container gets.
fn pre_stop_handler(container: &ContainerPlan) -> Handler {
    match container.hook {
        // Rendered by the helper's own code from the plan's typed arguments.
        Some(HookKind::Helper) => match container.helper_command_json() {
            Some(command) => Handler::ExecRendered { command },
            None => Handler::Exec {
                command: container.helper_command().unwrap_or_default(),
            },
        },
        _ => Handler::Sleep {
            seconds: container.earliest_signal().unwrap_or(0),
        },
    }
}
