//! Hook mode `native` (opt-in): a front proxy with a known graceful signal gets the native
//! preStop sleep of D and `lifecycle.stopSignal` with that signal, so the kubelet itself stops
//! it gracefully; no helper, no init container. Everything else gets the native sleep as in
//! hook mode `sleep`.
//!
//! The API server's rules for the field (KEP-4960 "Cross validation with Pod spec.os.name",
//! pkg/apis/core/validation/validation.go): it needs `spec.os.name`; with `linux` the signal is
//! one of the Linux signals, with `windows` only SIGTERM or SIGKILL. Before 1.33 the field does
//! not exist, and from 1.33 it sits behind the `ContainerStopSignals` gate (alpha, off by
//! default through 1.37): with the gate off the API server drops it without a word.

use super::{HookKind, Plan};
use crate::pod::{ContainerShape, SpecShape};
use crate::settings::KubeVersion;

/// Said on every pod that gets a `lifecycle.stopSignal` from us.
pub(super) const GATE_WARNING: &str = "ContainerStopSignals is alpha and off by default in Kubernetes 1.33 to 1.37 (beta planned for 1.38); with the gate off the API server silently drops the field and the proxy gets SIGTERM after its preStop sleep (for nginx a fast shutdown that drops connections); it needs the gate on the API server and the kubelet, and containerd 2.3+ or CRI-O 1.33+ on the nodes";

/// The stop signal a container planned with the native sleep gets in hook mode `native`:
/// `(Native, Some(signal), None)` when the plan writes `lifecycle.stopSignal`, else
/// `(Sleep, None, note)`. A stop signal the container already sets is never replaced. The
/// cluster has the field: below 1.33 the mode never reaches here (`resolve` denies the
/// annotation and plans the flag as `auto`).
pub(super) fn stop_signal(
    container: &ContainerShape,
    wanted: Option<&'static str>,
    warnings: &mut Vec<String>,
) -> (HookKind, Option<&'static str>, Option<String>) {
    let Some(wanted) = wanted else {
        return (HookKind::Sleep, None, None);
    };
    let name = &container.name;
    let own = container
        .lifecycle
        .as_ref()
        .and_then(|l| l.stop_signal.as_deref());
    if let Some(own) = own {
        if own != wanted {
            warnings.push(format!(
                "container {name:?} keeps its own lifecycle.stopSignal {own}, not its graceful {wanted}: it gets {own} after its preStop sleep"
            ));
        }
        return (
            HookKind::Sleep,
            None,
            Some(format!("keeps its own lifecycle.stopSignal {own}")),
        );
    }
    (HookKind::Native, Some(wanted), None)
}

/// What a pod with native stop signals needs besides its hooks: `spec.os.name: linux` when it
/// names no OS (a Windows pod never gets one), and the warnings that the field may be dropped.
pub(super) fn finish(plan: &mut Plan, spec: &SpecShape, version: Option<KubeVersion>) {
    let signals: Vec<String> = plan
        .planned()
        .filter(|c| c.hook == Some(HookKind::Native))
        .filter_map(|c| c.signal.map(|s| format!("{} {s}", c.name)))
        .collect();
    if signals.is_empty() {
        return;
    }
    plan.adds_os_linux = spec.os.is_none();
    plan.warnings.push(format!(
        "hook mode native writes lifecycle.stopSignal ({}): {GATE_WARNING}",
        signals.join(", ")
    ));
    if version.is_none() {
        plan.warnings.push(
            "the Kubernetes version is unknown (pass --kube-version): lifecycle.stopSignal needs 1.33 or later, and an older API server drops it".into(),
        );
    }
}
