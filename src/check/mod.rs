//! `drain-webhook check`: is the installation in the kubeconfig's cluster working, end to end?
//! One line per step, pass, warn or fail, with the fix on failure.
//!
//! Each step is an async function that returns what later steps need (the version, then the
//! webhook configuration and its Service), like the planner's phases; a fatal step that fails
//! skips the steps that need it. `--wait` runs every step again until all pass or the time
//! runs out (linkerd's `check --wait`).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cluster::ApiCall;

mod api_server;
mod ca_bundle;
mod configuration;
mod dry_run;
mod endpoints;
mod nodes;
mod pods;
mod rejection;
mod render;
mod served;
mod steps;

pub use render::{render_json, render_text};

/// Every request check makes besides `GET /version` (allowed to every authenticated user by
/// the default `system:discovery` role). The chart's `<fullname>-check` ClusterRole grants
/// exactly these (tests/chart.rs); tests/check.rs checks that no other request is made.
pub const API_CALLS: &[ApiCall] = &[
    ApiCall {
        verb: "get",
        group: "admissionregistration.k8s.io",
        resource: "mutatingwebhookconfigurations",
        named: true,
    },
    ApiCall {
        verb: "list",
        group: "discovery.k8s.io",
        resource: "endpointslices",
        named: false,
    },
    // The API server's service proxy to the webhook's `GET /certificate` and `GET /settings`.
    ApiCall {
        verb: "get",
        group: "",
        resource: "services/proxy",
        named: true,
    },
    // Without `-n`: finding an opted-in namespace; by name, when a dry-run Pod comes back
    // unplanned: its label and annotations.
    ApiCall {
        verb: "list",
        group: "",
        resource: "namespaces",
        named: false,
    },
    // What the nodes' kubelets and runtimes can mount (the webhook's own node watch decides
    // the same).
    ApiCall {
        verb: "list",
        group: "",
        resource: "nodes",
        named: false,
    },
    // Always with dryRun=All: nothing is stored (RBAC cannot tell a dry run from a real one).
    ApiCall {
        verb: "create",
        group: "",
        resource: "pods",
        named: false,
    },
];

/// Field manager of the dry-run create (shows in audit logs).
pub const FIELD_MANAGER: &str = "drain-webhook-check";

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Name of the MutatingWebhookConfiguration (the chart's full name).
    pub webhook_configuration: String,
    /// Namespace of the dry-run Pod; `None`: the first one labelled `drain.io/inject=enabled`.
    pub namespace: Option<String>,
    /// `--wait`: how long to keep trying until every step passes; `None`: once.
    pub wait: Option<Duration>,
    /// Pause between two attempts under `--wait`.
    pub retry_every: Duration,
}

/// The identity and meaning of one step (linkerd's checker metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Stable name, used in `-o json` and by scripts.
    pub name: &'static str,
    pub description: &'static str,
    /// A failure skips the steps after it (they need its result).
    #[serde(skip)]
    pub fatal: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    /// Works, with a consequence the user should know.
    Warn,
    Fail,
    /// Not run: an earlier fatal step failed.
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One step's result: what was found, and on warn or fail, what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepResult {
    #[serde(flatten)]
    pub step: Step,
    pub outcome: Outcome,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

// The toolkit every step uses.

fn result(step: Step, outcome: Outcome, detail: String, hint: Option<String>) -> StepResult {
    StepResult {
        step,
        outcome,
        detail,
        hint,
    }
}

fn pass(step: Step, detail: String) -> StepResult {
    result(step, Outcome::Pass, detail, None)
}

fn fail(step: Step, detail: String, hint: impl Into<String>) -> StepResult {
    result(step, Outcome::Fail, detail, Some(hint.into()))
}

/// A request the API server refused or could not answer, worded for the step; 403 names the
/// permission (docs/install.md lists them all).
fn request_failed(step: Step, what: &str, err: &kube::Error, permission: &str) -> StepResult {
    match err {
        kube::Error::Api(status) if status.code == 403 => fail(
            step,
            format!("{what}: forbidden (403)"),
            format!(
                "grant {permission} (the chart's ClusterRole <release>-check, docs/install.md)"
            ),
        ),
        kube::Error::Api(status) => fail(
            step,
            format!(
                "{what}: the API server answered {} {}: {}",
                status.code, status.reason, status.message
            ),
            "run again; if it persists, see the API server's logs",
        ),
        other => fail(
            step,
            format!("{what}: {other}"),
            "check the kubeconfig (--kubeconfig, --context) and that the cluster is reachable",
        ),
    }
}

/// What the `webhook-configuration` step found: the Service the API server calls, and its
/// caBundle.
#[derive(Debug, Clone)]
struct Configured {
    pub namespace: String,
    pub service: String,
    pub port: i32,
    pub ca_bundle: Vec<u8>,
    pub failure_policy: Option<String>,
}

impl Configured {
    /// The name the API server checks the served certificate against.
    fn dns_name(&self) -> String {
        format!("{}.{}.svc", self.service, self.namespace)
    }

    /// `GET path` on the webhook's HTTPS port through the API server's service proxy: the
    /// request path (for messages) and the answer.
    async fn served(
        &self,
        client: &kube::Client,
        path: &str,
    ) -> (String, Result<String, kube::Error>) {
        let port = self.port.to_string();
        let target = crate::cluster::proxy::ServicePort {
            namespace: &self.namespace,
            scheme: "https",
            service: &self.service,
            port: &port,
        };
        let answer = crate::cluster::proxy::get_text(client, &target, path).await;
        (target.proxy_path(path), answer)
    }
}

/// Every step of the last attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// No step failed (warnings allowed).
    pub passed: bool,
    /// How many times the steps ran (more than one under `--wait`).
    pub attempts: u32,
    pub waited_seconds: u64,
    pub steps: Vec<StepResult>,
    /// The API server could not be reached at all (a connection error, not an answer).
    #[serde(skip)]
    pub unreachable: bool,
}

/// Exit status of `drain-webhook check` (docs/install.md): every step passed.
pub const EXIT_PASSED: u8 = 0;
/// A step failed.
pub const EXIT_FAILED: u8 = 1;
/// The command could not run: bad usage (clap's own code), no kubeconfig, or an API server
/// that cannot be reached.
pub const EXIT_UNUSABLE: u8 = 2;

impl Report {
    pub fn exit_code(&self) -> u8 {
        if self.unreachable {
            EXIT_UNUSABLE
        } else if self.passed {
            EXIT_PASSED
        } else {
            EXIT_FAILED
        }
    }

    /// The first step that failed, if any.
    pub fn first_failure(&self) -> Option<&StepResult> {
        self.steps.iter().find(|s| s.outcome == Outcome::Fail)
    }
}

/// Runs every step once, or under `wait` until they all pass; `on_retry` sees each failed
/// attempt that will be tried again (for a progress line).
pub async fn check(
    client: &kube::Client,
    options: &CheckOptions,
    mut on_retry: impl FnMut(&Report),
) -> Report {
    let started = Instant::now();
    let deadline = options.wait.map(|wait| started + wait);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut report = steps::run_once(client, options).await;
        report.attempts = attempts;
        report.waited_seconds = started.elapsed().as_secs();
        let retry = !report.passed
            && deadline.is_some_and(|deadline| Instant::now() + options.retry_every < deadline);
        if !retry {
            return report;
        }
        on_retry(&report);
        tokio::time::sleep(options.retry_every).await;
    }
}
