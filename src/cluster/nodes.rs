//! Nodes from a watch cache, kept only for what the planner asks of them: whether every node's
//! kubelet and container runtime mount image volumes. The summary is recomputed per watch event into a
//! shared cell, so a review reads one value and never walks nodes.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Node, NodeStatus};
use kube::api::ObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::capabilities::{ImageVolumeNodes, NodeLookup};

use super::health::WatchHealth;

/// The summary, and the one bit a review reads ([`NodeLookup`]) without a lock.
#[derive(Clone, Default)]
pub struct NodeCache {
    summary: Arc<RwLock<ImageVolumeNodes>>,
    /// 0 unknown, 1 no, 2 yes.
    can_mount: Arc<AtomicU8>,
}

impl std::fmt::Debug for NodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCache")
            .field("summary", &self.summary())
            .finish()
    }
}

impl NodeLookup for NodeCache {
    fn image_volume_nodes(&self) -> Option<bool> {
        match self.can_mount.load(Ordering::Acquire) {
            1 => Some(false),
            2 => Some(true),
            _ => None,
        }
    }
}

impl NodeCache {
    /// The current summary (logs, tests).
    pub fn summary(&self) -> ImageVolumeNodes {
        self.summary
            .read()
            .map(|s| s.clone())
            .unwrap_or(ImageVolumeNodes::Unknown)
    }

    /// Stores a new summary; true when it differs from the last one.
    fn update(&self, summary: ImageVolumeNodes) -> bool {
        let bit = match summary.can_mount() {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        };
        let Ok(mut current) = self.summary.write() else {
            return false;
        };
        if *current == summary {
            return false;
        }
        *current = summary;
        self.can_mount.store(bit, Ordering::Release);
        true
    }

    /// Starts watching Nodes (needs list and watch on nodes); `on_change` sees every new
    /// summary (the log line and the metrics). Until the first full list the summary is
    /// unknown, which plans as "no image volume". The watch retries with backoff until
    /// `shutdown`; while it fails, the last summary stays.
    pub fn start(
        client: Client,
        mut shutdown: watch::Receiver<bool>,
        on_change: impl Fn(&ImageVolumeNodes) + Send + 'static,
    ) -> Self {
        let cache = NodeCache::default();
        let (store, writer) = reflector::store::<Node>();
        let api: Api<Node> = Api::all(client);
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(keep_node_info_only)
            .reflect(writer);
        let shared = cache.clone();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut health = WatchHealth::new("node", "the image-volume decision may be stale");
            loop {
                let item = tokio::select! {
                    item = stream.next() => item,
                    _ = shutdown.wait_for(|stop| *stop) => return,
                };
                match item {
                    // Mid-relist the store still holds the previous list: wait for its end.
                    Some(Ok(watcher::Event::Init | watcher::Event::InitApply(_))) => {}
                    Some(Ok(_)) => {
                        health.ok();
                        if shared.update(summary_of(&store)) {
                            on_change(&shared.summary());
                        }
                    }
                    Some(Err(err)) => health.failed(&err),
                    None => return health.ended(),
                }
            }
        });
        cache
    }
}

fn summary_of(store: &Store<Node>) -> ImageVolumeNodes {
    let nodes = store.state();
    ImageVolumeNodes::summarise(nodes.iter().map(|node| {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let info = node.status.as_ref().and_then(|s| s.node_info.as_ref());
        let runtime = info.map(|info| info.container_runtime_version.as_str());
        let kubelet = info.map(|info| info.kubelet_version.as_str());
        (name, runtime, kubelet)
    }))
}

/// Drops everything but the name and `status.nodeInfo` (the kubelet's and the runtime's
/// versions) at ingest: a Node's images list and managed fields are most of its size, and the
/// cache holds one per node.
fn keep_node_info_only(node: &mut Node) {
    node.metadata = ObjectMeta {
        name: node.metadata.name.take(),
        resource_version: node.metadata.resource_version.take(),
        ..ObjectMeta::default()
    };
    node.spec = None;
    node.status = node.status.take().map(|status| NodeStatus {
        node_info: status.node_info,
        ..NodeStatus::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerImage, NodeSystemInfo};

    fn node(name: &str, runtime: &str, kubelet: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([("a".to_string(), "b".to_string())].into()),
                ..ObjectMeta::default()
            },
            status: Some(NodeStatus {
                node_info: Some(NodeSystemInfo {
                    container_runtime_version: runtime.into(),
                    kubelet_version: kubelet.into(),
                    ..NodeSystemInfo::default()
                }),
                images: Some(vec![ContainerImage::default(); 3]),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    #[test]
    fn the_summary_follows_every_event() {
        let (store, mut writer) = reflector::store::<Node>();
        let cache = NodeCache::default();
        assert_eq!(cache.image_volume_nodes(), None);
        let mut apply = |node: Node| {
            let mut node = node;
            keep_node_info_only(&mut node);
            writer.apply_watcher_event(&watcher::Event::Apply(node));
            cache.update(summary_of(&store))
        };
        assert!(apply(node("a", "containerd://2.1.3", "v1.35.0")));
        assert_eq!(cache.image_volume_nodes(), Some(true));
        assert!(apply(node("b", "containerd://1.7.27", "v1.35.0")));
        assert_eq!(cache.image_volume_nodes(), Some(false));
        assert!(
            cache
                .summary()
                .to_string()
                .contains("cannot mount them: b (containerd 1.7.27)")
        );
        // Node b's runtime upgraded: every node mounts them again.
        assert!(apply(node("b", "cri-o://1.31.2", "v1.35.0")));
        assert_eq!(cache.image_volume_nodes(), Some(true));
        // The same summary again is no change (no log line, no metric update).
        assert!(!apply(node("b", "cri-o://1.31.3", "v1.35.1")));
        // A node joins with a 1.34 kubelet on containerd 2.1: no image volume, and it is named.
        assert!(apply(node("c", "containerd://2.1.3", "v1.34.2")));
        assert_eq!(cache.image_volume_nodes(), Some(false));
        assert!(
            cache
                .summary()
                .to_string()
                .contains("cannot mount them: c (kubelet v1.34.2)"),
            "{}",
            cache.summary()
        );
    }

    #[test]
    fn only_the_node_info_is_kept() {
        let mut kept = node("a", "containerd://2.1.3", "v1.35.0");
        keep_node_info_only(&mut kept);
        assert_eq!(kept.metadata.labels, None);
        let status = kept.status.unwrap();
        assert_eq!(status.images, None);
        let info = status.node_info.unwrap();
        assert_eq!(info.container_runtime_version, "containerd://2.1.3");
        assert_eq!(info.kubelet_version, "v1.35.0");
    }
}
