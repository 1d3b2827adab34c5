//! The `nodes` step: whether every node's runtime mounts image volumes, and so which helper
//! delivery `auto` gives pods, by the same rule the webhook applies to its node watch.

use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, ListParams};

use super::{Outcome, Step, StepResult, pass, result};
use crate::capabilities::ImageVolumeNodes;
use crate::plan::describe_delivery;
use crate::settings::{HelperDelivery, KubeVersion};

pub const NODES: Step = Step {
    name: "nodes",
    description: "the nodes' container runtimes; which helper delivery auto gives pods",
    fatal: false,
};

/// Lists nodes (in pages: a large cluster's list is large) and summarises them.
pub(super) async fn nodes(client: &Client, version: Option<KubeVersion>) -> StepResult {
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
    pass(
        NODES,
        describe_delivery(HelperDelivery::Auto, version, &summary),
    )
}
