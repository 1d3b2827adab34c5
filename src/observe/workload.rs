//! Which workload a pod belongs to, from its owner reference alone (no extra API call).

use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

/// A workload: Deployment, StatefulSet, DaemonSet, Job, another owner's kind, or the bare Pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Workload {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    /// For the Event's reference (`apps/v1`, `batch/v1`, `v1`).
    #[serde(skip)]
    pub api_version: String,
}

/// The Kubernetes name limit: an owner name longer than this came from no API server.
const MAX_NAME: usize = 253;

impl Workload {
    /// The pod's controller: a ReplicaSet named `<deployment>-<pod-template-hash>` is its
    /// Deployment (the Deployment controller's naming, kubernetes pkg/controller/deployment
    /// `util.GetReplicaSetHash`), other controllers as they are; a pod without one is itself.
    pub fn of(pod: &Pod) -> Option<Workload> {
        let metadata = &pod.metadata;
        let namespace = metadata.namespace.clone()?;
        let owner = metadata
            .owner_references
            .iter()
            .flatten()
            .find(|owner| owner.controller == Some(true));
        let Some(owner) = owner else {
            return Some(Workload {
                namespace,
                kind: "Pod".into(),
                name: metadata.name.clone()?,
                api_version: "v1".into(),
            });
        };
        if owner.name.len() > MAX_NAME || owner.kind.len() > MAX_NAME {
            return None;
        }
        let hash = metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get("pod-template-hash"));
        let deployment = (owner.kind == "ReplicaSet")
            .then(|| owner.name.strip_suffix(hash?.as_str())?.strip_suffix('-'))
            .flatten()
            .filter(|name| !name.is_empty());
        Some(match deployment {
            Some(name) => Workload {
                namespace,
                kind: "Deployment".into(),
                name: name.to_string(),
                api_version: "apps/v1".into(),
            },
            None => Workload {
                namespace,
                kind: owner.kind.clone(),
                name: owner.name.clone(),
                api_version: owner.api_version.clone(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(owner: Option<(&str, &str)>, hash: Option<&str>) -> Pod {
        let mut pod = json!({"metadata": {"name": "web-7d4b9-x2x", "namespace": "shop"}});
        if let Some((kind, name)) = owner {
            pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind,
                "name": name, "uid": "u", "controller": true}]);
        }
        if let Some(hash) = hash {
            pod["metadata"]["labels"] = json!({"pod-template-hash": hash});
        }
        serde_json::from_value(pod).unwrap()
    }

    #[test]
    fn owners_become_workloads() {
        let cases = [
            (
                Some(("ReplicaSet", "web-7d4b9")),
                Some("7d4b9"),
                "Deployment",
                "web",
            ),
            (
                Some(("ReplicaSet", "web-7d4b9")),
                None,
                "ReplicaSet",
                "web-7d4b9",
            ),
            (
                Some(("ReplicaSet", "web-7d4b9")),
                Some("other"),
                "ReplicaSet",
                "web-7d4b9",
            ),
            (
                Some(("ReplicaSet", "7d4b9")),
                Some("7d4b9"),
                "ReplicaSet",
                "7d4b9",
            ),
            (Some(("StatefulSet", "db")), None, "StatefulSet", "db"),
            (Some(("DaemonSet", "agent")), None, "DaemonSet", "agent"),
            (Some(("Job", "backup-29123")), None, "Job", "backup-29123"),
            (None, None, "Pod", "web-7d4b9-x2x"),
        ];
        for (owner, hash, kind, name) in cases {
            let workload = Workload::of(&pod(owner, hash)).unwrap();
            assert_eq!(
                (workload.kind.as_str(), workload.name.as_str()),
                (kind, name)
            );
            assert_eq!(workload.namespace, "shop");
        }
    }
}
