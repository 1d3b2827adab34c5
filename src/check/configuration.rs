//! The `webhook-configuration` and `failure-policy` steps: the MutatingWebhookConfiguration
//! exists, names the webhook's Service, and what its failurePolicy means.

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::Client;
use kube::api::Api;

use super::{Configured, Outcome, Step, StepResult, fail, pass, request_failed, result};

pub const CONFIGURATION: Step = Step {
    name: "webhook-configuration",
    description: "the MutatingWebhookConfiguration exists and names the webhook's Service",
    fatal: true,
};
pub const FAILURE_POLICY: Step = Step {
    name: "failure-policy",
    description: "what happens to pods created while the webhook is unreachable",
    fatal: false,
};

pub(super) async fn webhook_configuration(
    client: &Client,
    name: &str,
) -> (StepResult, Option<Configured>) {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let found = match api.get_opt(name).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return (
                fail(
                    CONFIGURATION,
                    format!("no MutatingWebhookConfiguration {name}"),
                    "install drain-webhook (docs/install.md); if it is installed under another name, pass --webhook-configuration NAME (kubectl get mutatingwebhookconfigurations)",
                ),
                None,
            );
        }
        Err(err) => {
            return (
                request_failed(
                    CONFIGURATION,
                    &format!("reading MutatingWebhookConfiguration {name}"),
                    &err,
                    "get on mutatingwebhookconfigurations",
                ),
                None,
            );
        }
    };
    let with_service = found
        .webhooks
        .iter()
        .flatten()
        .find_map(|w| Some((w, w.client_config.service.as_ref()?)));
    let Some((webhook, service)) = with_service else {
        return (
            fail(
                CONFIGURATION,
                format!(
                    "MutatingWebhookConfiguration {name} names no Service (clientConfig.url is not what the chart installs)"
                ),
                "reinstall the chart, or pass --webhook-configuration NAME of drain-webhook's configuration",
            ),
            None,
        );
    };
    let configured = Configured {
        namespace: service.namespace.clone(),
        service: service.name.clone(),
        port: service.port.unwrap_or(443),
        ca_bundle: webhook
            .client_config
            .ca_bundle
            .as_ref()
            .map(|b| b.0.clone())
            .unwrap_or_default(),
        failure_policy: webhook.failure_policy.clone(),
    };
    let detail = format!(
        "{name}: webhook {} calls service {}/{}:{}{}",
        webhook.name,
        configured.namespace,
        configured.service,
        configured.port,
        service.path.as_deref().unwrap_or("/")
    );
    (pass(CONFIGURATION, detail), Some(configured))
}

pub(super) fn failure_policy(configured: &Configured) -> StepResult {
    // The v1 API's default is Fail.
    match configured.failure_policy.as_deref().unwrap_or("Fail") {
        "Fail" => pass(
            FAILURE_POLICY,
            "Fail: pod creation in opted-in namespaces fails while the webhook is unreachable (no pod starts unprotected)".into(),
        ),
        other => result(
            FAILURE_POLICY,
            Outcome::Warn,
            format!(
                "{other}: pods created while the webhook is unreachable are not protected (they start without a drain plan, and nothing says so)"
            ),
            Some("run drain-webhook check --wait 2m after every install or upgrade before creating pods; or set webhook.failurePolicy=Fail (pod creation in opted-in namespaces then fails while the webhook is down)".into()),
        ),
    }
}
