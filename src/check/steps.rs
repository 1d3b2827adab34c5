//! The runner of `check`'s steps, in order: each step (one file each) returns its
//! [`StepResult`] and what the steps after it need (`None` when it failed).

use kube::Client;

use super::api_server::{API_SERVER, api_server};
use super::ca_bundle::{CA_BUNDLE, ca_bundle};
use super::configuration::{CONFIGURATION, FAILURE_POLICY, failure_policy, webhook_configuration};
use super::dry_run::{DRY_RUN, dry_run};
use super::endpoints::{ENDPOINTS, endpoints};
use super::nodes::{NODES, nodes};
use super::{CheckOptions, Outcome, Report, Step, StepResult, result};

/// Every step, in the order they run.
pub const STEPS: [Step; 7] = [
    API_SERVER,
    NODES,
    CONFIGURATION,
    FAILURE_POLICY,
    ENDPOINTS,
    CA_BUNDLE,
    DRY_RUN,
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
        steps.push(nodes(client, kube_version).await);
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
        steps.push(dry_run(client, options.namespace.as_deref(), &configured).await);
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
