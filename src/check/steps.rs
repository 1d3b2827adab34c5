//! The runner of `check`'s steps, in order: each step (one file each) returns its
//! [`StepResult`] and what the steps after it need (`None` when it failed).

use kube::Client;

use super::api_server::{API_SERVER, api_server};
use super::ca_bundle::{CA_BUNDLE, ca_bundle};
use super::configuration::{CONFIGURATION, FAILURE_POLICY, failure_policy, webhook_configuration};
use super::dry_run::{DRY_RUN, DRY_RUN_HELPER, dry_run, namespace};
use super::endpoints::{ENDPOINTS, endpoints};
use super::nodes::{NODES, nodes};
use super::pods::Probe;
use super::served::served_settings;
use super::{CheckOptions, Outcome, Report, Step, StepResult, result};

/// Every step, in the order they run. `nodes` comes once the webhook answers: it describes the
/// delivery the server's own settings give (read from the webhook, like its certificate).
pub const STEPS: [Step; 8] = [
    API_SERVER,
    CONFIGURATION,
    FAILURE_POLICY,
    ENDPOINTS,
    CA_BUNDLE,
    NODES,
    DRY_RUN,
    DRY_RUN_HELPER,
];

/// Runs the steps once; a fatal failure marks the rest skipped.
pub async fn run_once(client: &Client, options: &CheckOptions) -> Report {
    let mut steps = Vec::with_capacity(STEPS.len());
    let mut unreachable = false;
    let finished = async {
        let (version, reachable, kube_version) = api_server(client).await;
        unreachable = !reachable;
        steps.push(version);
        if unreachable {
            return;
        }
        let (found, configured) =
            webhook_configuration(client, &options.webhook_configuration).await;
        steps.push(found);
        let Some(configured) = configured else { return };
        steps.push(failure_policy(&configured));
        let ready = endpoints(client, &configured).await;
        let endpoints_failed = ready.outcome == Outcome::Fail;
        steps.push(ready);
        if endpoints_failed {
            return;
        }
        steps.push(ca_bundle(client, &configured).await);
        let served = served_settings(client, &configured).await;
        steps.push(nodes(client, &served, kube_version).await);
        let namespace =
            match namespace(client, options.namespace.as_deref(), &configured, DRY_RUN).await {
                Ok(namespace) => namespace,
                Err(failed) => {
                    // Neither dry run has a namespace: the same failure for both.
                    let helper = StepResult {
                        step: DRY_RUN_HELPER,
                        ..failed.clone()
                    };
                    steps.extend([failed, helper]);
                    return;
                }
            };
        for (step, probe) in [(DRY_RUN, Probe::App), (DRY_RUN_HELPER, Probe::Helper)] {
            steps.push(dry_run(client, step, probe, &namespace, &configured, &served).await);
        }
    };
    finished.await;
    // The step that stopped the run is the last one that ran.
    let needed = steps.last().map_or("", |s: &StepResult| s.step.name);
    for step in STEPS.iter().skip(steps.len()) {
        steps.push(result(
            *step,
            Outcome::Skipped,
            format!("needs {needed}"),
            None,
        ));
    }
    Report {
        passed: steps
            .iter()
            .all(|s| matches!(s.outcome, Outcome::Pass | Outcome::Warn)),
        attempts: 1,
        waited_seconds: 0,
        steps,
        unreachable,
    }
}
