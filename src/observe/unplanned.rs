//! Pods created unmutated in opted-in namespaces: admitted while the webhook was unreachable
//! (failurePolicy Ignore), or created before the namespace opted in. The leader watches the
//! pods without `drain.io/planned` (a second watch, selected server-side) and the namespaces
//! labelled `drain.io/inject=enabled`, and runs the planner on each such pod: a pod the
//! planner would change, without `drain.io/status`, is unprotected. Once per pod UID.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

use super::drains::{SeenKeys, key};
use super::workload::Workload;
use crate::admission::Reviewer;
use crate::annotations::{MIRROR_POD, STATUS};
use crate::mutate::{PodContext, mutate_pod};

/// The pods the second watch selects: every pod admission did not label.
pub const UNPLANNED_SELECTOR: &str = "!drain.io/planned";
/// The namespaces the webhook configuration selects (charts/.../webhook.yaml).
pub const OPTED_IN_SELECTOR: &str = "drain.io/inject=enabled";

/// What was reported, bounded like the drains.
#[derive(Debug)]
pub struct Unplanned {
    seen: SeenKeys,
    warned: HashMap<Workload, Instant>,
    warn_every: Duration,
}

impl Default for Unplanned {
    fn default() -> Self {
        Self {
            seen: SeenKeys::new(65_536),
            warned: HashMap::new(),
            warn_every: Duration::from_secs(600),
        }
    }
}

impl Unplanned {
    /// The pod's workload when it is an unprotected pod not reported before, with whether
    /// its workload gets a Warning now (one per workload every 10 minutes).
    pub fn check(
        &mut self,
        pod: &Pod,
        opted_in: &HashSet<String>,
        reviewer: &Reviewer,
        now: Instant,
    ) -> Option<(Workload, bool)> {
        let metadata = &pod.metadata;
        let namespace = metadata.namespace.as_deref()?;
        let annotations = metadata.annotations.as_ref();
        let finished = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|phase| phase == "Succeeded" || phase == "Failed");
        if !opted_in.contains(namespace)
            || reviewer.own_namespace.as_deref() == Some(namespace)
            || metadata.deletion_timestamp.is_some()
            || finished
            || annotations.is_some_and(|a| a.contains_key(STATUS) || a.contains_key(MIRROR_POD))
        {
            return None;
        }
        if !self.seen.insert(key(metadata.uid.as_deref()?, "")) {
            return None;
        }
        // The planner on the pod as stored: a plan that changes something is what admission
        // would have applied. A pod it leaves alone (opted out, nothing to plan) is fine.
        let object = serde_json::to_value(pod).ok()?;
        let namespace_annotations = reviewer.namespaces.annotations(namespace);
        let ctx = PodContext {
            settings: &reviewer.settings,
            namespace_annotations: namespace_annotations.as_ref(),
            kube_version: reviewer.kube_version,
            image_volume_nodes: reviewer.nodes.image_volume_nodes(),
        };
        let planned = mutate_pod(&object, &ctx).ok()?;
        if planned.patch.is_empty() {
            return None;
        }
        let workload = Workload::of(pod)?;
        if self.warned.len() >= 1024 {
            self.warned.clear();
        }
        let warn = self
            .warned
            .get(&workload)
            .is_none_or(|at| now.duration_since(*at) >= self.warn_every);
        if warn {
            self.warned.insert(workload.clone(), now);
        }
        Some((workload, warn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, namespace: &str, annotations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": format!("web-{uid}"), "namespace": namespace, "uid": uid,
                "annotations": annotations},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27",
                "ports": [{"containerPort": 80}]}, {"name": "app", "image": "shop:1"}]}
        }))
        .unwrap()
    }

    #[test]
    fn unplanned_pods_in_opted_in_namespaces_are_reported_once() {
        let reviewer = Reviewer::for_tests();
        let opted_in: HashSet<String> = ["shop".to_string(), "drain-system".into()].into();
        let mut unplanned = Unplanned::default();
        let now = Instant::now();
        let found = unplanned.check(&pod("u1", "shop", json!({})), &opted_in, &reviewer, now);
        let (workload, warn) = found.expect("an unprotected pod");
        assert_eq!((workload.kind.as_str(), warn), ("Pod", true));
        // Seen again (re-list, MODIFIED): not again.
        assert!(
            unplanned
                .check(&pod("u1", "shop", json!({})), &opted_in, &reviewer, now)
                .is_none()
        );
        for (uid, namespace, annotations) in [
            ("u2", "other", json!({})),
            ("u3", "shop", json!({"drain.io/status": "{}"})),
            ("u4", "shop", json!({"drain.io/inject": "disabled"})),
            ("u5", "drain-system", json!({})),
        ] {
            let p = pod(uid, namespace, annotations);
            assert!(
                unplanned.check(&p, &opted_in, &reviewer, now).is_none(),
                "{uid}"
            );
        }
    }
}
