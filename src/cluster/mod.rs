//! What the webhook learns from the cluster: the API server's version, namespace annotations
//! and what the nodes' runtimes can do, the latter two from watch caches (never an API call
//! per review).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::capabilities::NamespaceLookup;
use crate::settings::KubeVersion;
use health::WatchHealth;

pub mod certs;
mod health;
mod nodes;
pub mod proxy;

pub use nodes::NodeCache;

/// One kind of API request the process makes, for the RBAC it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiCall {
    pub verb: &'static str,
    /// API group; "" is the core group.
    pub group: &'static str,
    pub resource: &'static str,
    /// On the one configured object (RBAC can then limit it by `resourceNames`) rather than
    /// on the collection (create, list, watch).
    pub named: bool,
}

/// Every request this module makes besides `GET /version` (allowed to every authenticated
/// user by the default `system:discovery` role): the namespace and node watches (list, then
/// watch).
/// tests/chart.rs checks that the chart's RBAC grants each one.
pub const API_CALLS: &[ApiCall] = &[
    ApiCall {
        verb: "list",
        group: "",
        resource: "namespaces",
        named: false,
    },
    ApiCall {
        verb: "watch",
        group: "",
        resource: "namespaces",
        named: false,
    },
    // Whether every node's runtime mounts image volumes (nodes.rs).
    ApiCall {
        verb: "list",
        group: "",
        resource: "nodes",
        named: false,
    },
    ApiCall {
        verb: "watch",
        group: "",
        resource: "nodes",
        named: false,
    },
];

/// How long start-up waits for the API server's version.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// A client from the in-cluster config or kubeconfig, or `None` (logged once) without one.
pub async fn connect() -> Option<Client> {
    match Client::try_default().await {
        Ok(client) => Some(client),
        Err(err) => {
            tracing::warn!(error = %err, "no cluster access: running on flags alone");
            None
        }
    }
}

/// The API server's major.minor, or `None` when it cannot be asked or understood.
pub async fn server_version(client: &Client) -> Option<KubeVersion> {
    match tokio::time::timeout(VERSION_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(info)) => {
            let version = KubeVersion::from_parts(&info.major, &info.minor);
            if version.is_none() {
                tracing::warn!(major = %info.major, minor = %info.minor, git_version = %info.git_version,
                    "cannot read the API server's version; treating it as unknown");
            }
            version
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "cannot ask the API server's version; treating it as unknown");
            None
        }
        Err(_) => {
            tracing::warn!(timeout = ?VERSION_TIMEOUT, "the API server did not tell its version in time; treating it as unknown");
            None
        }
    }
}

/// Namespace metadata from a watch; annotations are unknown until the first full list.
#[derive(Clone)]
pub struct NamespaceCache {
    store: Store<PartialObjectMeta<Namespace>>,
    synced: Arc<AtomicBool>,
}

impl std::fmt::Debug for NamespaceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamespaceCache")
            .field("synced", &self.synced.load(Ordering::Relaxed))
            .field("namespaces", &self.store.len())
            .finish()
    }
}

impl NamespaceLookup for NamespaceCache {
    fn annotations(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        if !self.synced.load(Ordering::Acquire) {
            return None;
        }
        let object = self.store.get(&ObjectRef::new(namespace))?;
        // Only the planner's own keys: namespaces often carry large annotations (for example
        // kubectl's last-applied-configuration) that would be copied on every review.
        Some(
            object
                .metadata
                .annotations
                .iter()
                .flatten()
                .filter(|(key, _)| key.starts_with("drain.io/"))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        )
    }
}

impl NamespaceCache {
    /// Starts watching namespace metadata (needs list and watch on namespaces); the watch
    /// retries with backoff for as long as the process runs, until `shutdown`.
    pub fn start(client: Client, mut shutdown: watch::Receiver<bool>) -> Self {
        let (store, writer) = reflector::store::<PartialObjectMeta<Namespace>>();
        let synced = Arc::new(AtomicBool::new(false));
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .applied_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut health = WatchHealth::new("namespace", "namespace annotations may be stale");
            loop {
                let item = tokio::select! {
                    item = stream.next() => item,
                    _ = shutdown.wait_for(|stop| *stop) => return,
                };
                match item {
                    Some(Ok(_)) => health.ok(),
                    Some(Err(err)) => health.failed(&err),
                    None => return health.ended(),
                }
            }
        });
        let reader = store.clone();
        let flag = Arc::clone(&synced);
        tokio::spawn(async move {
            if reader.wait_until_ready().await.is_ok() {
                flag.store(true, Ordering::Release);
                tracing::info!(namespaces = reader.len(), "namespace cache synced");
            }
        });
        Self { store, synced }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn cache_with(annotations: &[(&str, &str)], synced: bool) -> NamespaceCache {
        let (store, mut writer) = reflector::store::<PartialObjectMeta<Namespace>>();
        let namespace = PartialObjectMeta::<Namespace> {
            metadata: ObjectMeta {
                name: Some("shop".into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..PartialObjectMeta::default()
        };
        writer.apply_watcher_event(&watcher::Event::Apply(namespace));
        NamespaceCache {
            store,
            synced: Arc::new(AtomicBool::new(synced)),
        }
    }

    #[test]
    fn lookups_copy_only_the_drain_annotations_and_wait_for_the_sync() {
        let big = "x".repeat(100_000);
        let cache = cache_with(
            &[
                ("drain.io/delay", "20s"),
                ("kubectl.kubernetes.io/last-applied-configuration", &big),
            ],
            true,
        );
        let annotations = cache.annotations("shop").unwrap();
        assert_eq!(
            annotations,
            BTreeMap::from([("drain.io/delay".to_string(), "20s".to_string())])
        );
        assert_eq!(cache.annotations("other"), None);
        assert_eq!(cache_with(&[], false).annotations("shop"), None);
    }
}
