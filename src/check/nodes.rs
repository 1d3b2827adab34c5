//! The `nodes` step: whether every node's kubelet and runtime mount image volumes, and so
//! which helper delivery the server's `--helper-delivery` gives pods, by the same rule the
//! webhook applies to its node watch.

use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, ListParams};

use super::served::Served;
use super::{Outcome, Step, StepResult, pass, result};
use crate::capabilities::ImageVolumeNodes;
use crate::plan::describe_delivery;
use crate::settings::{HelperDelivery, KubeVersion};

pub const NODES: Step = Step {
    name: "nodes",
    description: "the nodes' kubelets and runtimes; which helper delivery the server gives pods",
    fatal: false,
};

/// Lists nodes (in pages: a large cluster's list is large), summarises them and describes the
/// delivery the server's settings give (`version`: the API server's, for a server that does
/// not say its own).
pub(super) async fn nodes(
    client: &Client,
    served: &Served,
    version: Option<KubeVersion>,
) -> StepResult {
    let api: Api<Node> = Api::all(client.clone());
    // (name, containerRuntimeVersion, kubeletVersion)
    let mut reported: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = match api.list(&params).await {
            Ok(page) => page,
            // Not fatal: the webhook plans without image volumes when it cannot tell.
            Err(err) => {
                return result(
                    NODES,
                    Outcome::Warn,
                    format!("GET nodes: {err}: cannot tell whether the nodes mount image volumes"),
                    Some(
                        "grant list on nodes (the chart's ClusterRole <release>-check, docs/install.md)"
                            .into(),
                    ),
                );
            }
        };
        reported.extend(page.items.into_iter().map(|node| {
            let info = node.status.and_then(|s| s.node_info);
            let (runtime, kubelet) = info
                .map(|info| (info.container_runtime_version, info.kubelet_version))
                .unzip();
            (node.metadata.name.unwrap_or_default(), runtime, kubelet)
        }));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    let summary =
        ImageVolumeNodes::summarise(reported.iter().map(|(name, runtime, kubelet)| {
            (name.as_str(), runtime.as_deref(), kubelet.as_deref())
        }));
    match served.as_ref().map(|s| (s.helper_delivery(), s)) {
        Ok((Ok(setting), served)) => {
            let planned_for = served
                .kube_version()
                .map_or_else(|| "an unknown version".to_owned(), |v| format!("Kubernetes {v}"));
            let detail = format!(
                "{} (the server's --helper-delivery {setting}, planning for {planned_for})",
                describe_delivery(setting, served.kube_version(), &summary)
            );
            // Forced image volumes on nodes that cannot mount them: pods scheduled there never
            // start (their volume cannot be mounted), which no dry run shows.
            if setting == HelperDelivery::ImageVolume && summary.can_mount() != Some(true) {
                return result(
                    NODES,
                    Outcome::Fail,
                    detail,
                    Some("pods that need the helper and land on those nodes cannot mount its image volume and never start: upgrade them, or set --helper-delivery auto (chart settings.helper.delivery)".into()),
                );
            }
            pass(NODES, detail)
        }
        Ok((Err(unknown), _)) => result(
            NODES,
            Outcome::Warn,
            format!(
                "the server's settings name an {unknown}; assuming auto: {}",
                describe_delivery(HelperDelivery::Auto, version, &summary)
            ),
            Some("run a check of the same version as the webhook".into()),
        ),
        Err(why) => result(
            NODES,
            Outcome::Warn,
            format!(
                "{why}; assuming --helper-delivery auto: {}",
                describe_delivery(HelperDelivery::Auto, version, &summary)
            ),
            Some(
                "upgrade drain-webhook to this check's version; its startup log line \"helper delivery\" says what it gives pods".into(),
            ),
        ),
    }
}
