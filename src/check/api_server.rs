//! The `api-server` step: `GET /version`, and what the planner uses on that version.

use kube::Client;

use super::{Outcome, Step, StepResult, pass, request_failed, result};
use crate::settings::KubeVersion;

pub const API_SERVER: Step = Step {
    name: "api-server",
    description: "the API server answers; what the plan uses on its version",
    fatal: true,
};

/// What the planner uses on `version` (the same rules as serve: settings' thresholds).
pub fn plan_summary(version: Option<KubeVersion>) -> String {
    let hooks = if version.is_some_and(KubeVersion::supports_sleep_action) {
        "native sleep where a sleep is enough, else the helper".to_string()
    } else {
        format!(
            "the helper for every hook (the native sleep needs {})",
            KubeVersion::SLEEP_ACTION
        )
    };
    let signals = match version {
        Some(v) if v.has_stop_signals() => {
            "native stop signals: the field exists (ContainerStopSignals gate, off by default; drain.io/hook: native only)"
                .to_string()
        }
        _ => format!(
            "native stop signals: not available (need {} and the ContainerStopSignals gate)",
            KubeVersion::STOP_SIGNALS
        ),
    };
    format!("hooks: {hooks}; {signals}")
}

/// `GET /version`. The bool is false when the API server could not be reached at all.
pub(super) async fn api_server(client: &Client) -> (StepResult, bool, Option<KubeVersion>) {
    match client.apiserver_version().await {
        Ok(info) => match KubeVersion::from_parts(&info.major, &info.minor) {
            Some(version) => (
                pass(
                    API_SERVER,
                    format!(
                        "Kubernetes {version} ({}); {}",
                        info.git_version,
                        plan_summary(Some(version))
                    ),
                ),
                true,
                Some(version),
            ),
            None => (
                result(
                    API_SERVER,
                    Outcome::Warn,
                    format!(
                        "cannot read the version {:?}: the webhook plans as for an unknown version; {}",
                        info.git_version,
                        plan_summary(None)
                    ),
                    Some(
                        "set settings.kubeVersion in the chart to plan for the real version".into(),
                    ),
                ),
                true,
                None,
            ),
        },
        Err(err) => {
            let reachable = matches!(err, kube::Error::Api(_));
            (
                request_failed(API_SERVER, "GET /version", &err, "get on /version"),
                reachable,
                None,
            )
        }
    }
}
