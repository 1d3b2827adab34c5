//! Bounds on the work one review may cause, checked on the decoded pod before planning.
//!
//! The body size limit bounds the bytes; these bound what the planner does with them: the
//! number of containers it plans (and names it compares) and the length of the `drain.io/*`
//! values it parses (lists of names, URLs, ports). Past a bound the pod is denied with a
//! message that names the bound and the way out (`drain.io/inject: "false"`), instead of a
//! review that takes long enough for the API server to time out.
//!
//! Only annotations the planner reads are bounded: any other annotation (for example
//! `kubectl.kubernetes.io/last-applied-configuration`) is never parsed here, and the API
//! server already caps all annotations of an object at 256 KiB together.

use std::collections::BTreeMap;

use crate::annotations::{self, Source};
use crate::pod::PodShape;

/// Containers of all kinds (regular, init, ephemeral) a pod may have to be planned.
pub const MAX_CONTAINERS: usize = 1000;
/// Longest `drain.io/*` annotation value read, in bytes.
pub const MAX_ANNOTATION_BYTES: usize = 64 * 1024;

/// A bound the pod is above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error(
        "drain-webhook plans pods with at most {limit} containers (init and ephemeral included); this pod has {count}. Set the annotation drain.io/inject: \"false\" on the pod to create it without a drain plan"
    )]
    TooManyContainers { count: usize, limit: usize },
    #[error(
        "annotation {key} {origin} is {len} bytes long; drain-webhook reads at most {limit} bytes of a drain.io/* value (for example drain.io/proxies: \"nginx,envoy\")"
    )]
    AnnotationTooLong {
        key: String,
        origin: Source,
        len: usize,
        limit: usize,
    },
}

/// Checks the pod and its namespace's annotations against the bounds. An opted-out pod or
/// namespace is never refused for its size: the planner does nothing with it.
pub fn check_pod(
    pod: &PodShape,
    namespace_annotations: Option<&BTreeMap<String, String>>,
) -> Result<(), LimitError> {
    let pod_annotations = pod.metadata.as_ref().and_then(|m| m.annotations.as_ref());

    // The pod's drain.io/inject wins over its namespace's, as in the planner.
    let inject = pod_annotations
        .and_then(|a| a.get(annotations::INJECT))
        .or_else(|| namespace_annotations.and_then(|a| a.get(annotations::INJECT)));
    if inject.is_some_and(|value| annotations::is_opt_out(value)) {
        return Ok(());
    }

    for (origin, values) in [
        (Source::Pod, pod_annotations),
        (Source::Namespace, namespace_annotations),
    ] {
        for (key, value) in values.into_iter().flatten() {
            if key.starts_with("drain.io/") && value.len() > MAX_ANNOTATION_BYTES {
                return Err(LimitError::AnnotationTooLong {
                    key: key.clone(),
                    origin,
                    len: value.len(),
                    limit: MAX_ANNOTATION_BYTES,
                });
            }
        }
    }

    let count = pod.spec.as_ref().map_or(0, |spec| {
        spec.containers.len()
            + spec.init_containers.as_ref().map_or(0, Vec::len)
            + spec.ephemeral_containers.as_ref().map_or(0, Vec::len)
    });
    if count > MAX_CONTAINERS {
        return Err(LimitError::TooManyContainers {
            count,
            limit: MAX_CONTAINERS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pod_with(containers: usize, annotations: Value) -> PodShape {
        let list: Vec<Value> = (0..containers)
            .map(|i| json!({"name": format!("c{i}"), "image": "app"}))
            .collect();
        shape(json!({"metadata": {"annotations": annotations}, "spec": {"containers": list}}))
    }

    fn shape(pod: Value) -> PodShape {
        serde_json::from_value(pod).unwrap()
    }

    #[test]
    fn a_usual_pod_is_within_bounds() {
        let pod = pod_with(3, json!({"drain.io/delay": "10s"}));
        assert_eq!(check_pod(&pod, None), Ok(()));
        assert_eq!(check_pod(&shape(json!({})), None), Ok(()));
    }

    #[test]
    fn too_many_containers_counts_every_kind() {
        assert_eq!(
            check_pod(&pod_with(MAX_CONTAINERS, json!({})), None),
            Ok(())
        );
        let mut pod = pod_with(MAX_CONTAINERS, json!({}));
        pod.spec.as_mut().unwrap().init_containers = Some(vec![
            serde_json::from_value(json!({"name": "i", "image": "x"})).unwrap(),
        ]);
        let err = check_pod(&pod, None).unwrap_err();
        assert_eq!(
            err,
            LimitError::TooManyContainers {
                count: MAX_CONTAINERS + 1,
                limit: MAX_CONTAINERS
            }
        );
        let message = err.to_string();
        assert!(
            message.contains("1000") && message.contains("1001"),
            "{message}"
        );
        assert!(message.contains("drain.io/inject"), "{message}");
    }

    #[test]
    fn long_drain_annotations_are_refused_others_are_not_read() {
        let long = "x".repeat(MAX_ANNOTATION_BYTES + 1);
        let pod = pod_with(
            1,
            json!({"kubectl.kubernetes.io/last-applied-configuration": long}),
        );
        assert_eq!(check_pod(&pod, None), Ok(()));
        let pod = pod_with(1, json!({"drain.io/proxies": long}));
        let message = check_pod(&pod, None).unwrap_err().to_string();
        assert!(message.contains("drain.io/proxies"), "{message}");
        assert!(message.contains("65536"), "{message}");
        assert!(message.contains("on the pod"), "{message}");
        let namespace = BTreeMap::from([("drain.io/notify".to_string(), long.clone())]);
        let message = check_pod(&pod_with(1, json!({})), Some(&namespace))
            .unwrap_err()
            .to_string();
        assert!(message.contains("on the namespace"), "{message}");
    }

    #[test]
    fn opted_out_pods_are_never_refused_for_their_size() {
        let long = "x".repeat(MAX_ANNOTATION_BYTES + 1);
        let pod = pod_with(
            MAX_CONTAINERS + 5,
            json!({"drain.io/inject": "false", "drain.io/proxies": long}),
        );
        assert_eq!(check_pod(&pod, None), Ok(()));
        let namespace = BTreeMap::from([("drain.io/inject".to_string(), "disabled".to_string())]);
        assert_eq!(
            check_pod(&pod_with(MAX_CONTAINERS + 5, json!({})), Some(&namespace)),
            Ok(())
        );
        // The pod's own value wins over its namespace's.
        let pod = pod_with(MAX_CONTAINERS + 5, json!({"drain.io/inject": "true"}));
        assert!(check_pod(&pod, Some(&namespace)).is_err());
    }
}
