//! The Pods of the dry runs. Never stored, so their images are never pulled. Each passes Pod
//! Security "restricted", has requests and limits (quotas) and probes on every container (the
//! policies that require probes, Kyverno's require-pod-probes or Gatekeeper's
//! K8sRequiredProbes, then refuse only what drain-webhook adds).

use serde_json::{Value, json};

use crate::annotations::INJECT;

/// Which Pod a dry run creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Probe {
    /// One app container: a native sleep on 1.30+, no helper.
    App,
    /// nginx in front of an app: the proxy's graceful signal needs drain-helper, so the Pod
    /// gets the helper's delivery (a container, an init container or an image volume).
    Helper,
}

/// The Pod; `opted_out` adds `drain.io/inject: "false"` (the same Pod as the webhook leaves it:
/// tells a rejection of the helper from one of the Pod itself).
pub(super) fn probe_pod(probe: Probe, opted_out: bool) -> Value {
    let container = |name: &str, image: &str, port: u16| {
        let probe = json!({"tcpSocket": {"port": port}, "periodSeconds": 10});
        json!({
            "name": name,
            "image": image,
            "ports": [{"containerPort": port, "name": name}],
            "readinessProbe": probe,
            "livenessProbe": probe,
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]}
            },
            "resources": {
                "requests": {"cpu": "10m", "memory": "16Mi"},
                "limits": {"cpu": "10m", "memory": "16Mi"}
            }
        })
    };
    let containers = match probe {
        Probe::App => vec![container("app", "registry.k8s.io/pause:3.10", 8080)],
        Probe::Helper => vec![
            container("nginx", "nginx:1.27", 8080),
            container("app", "registry.k8s.io/pause:3.10", 8081),
        ],
    };
    let mut metadata = json!({
        "generateName": "drain-webhook-check-",
        "labels": {"app.kubernetes.io/name": "drain-webhook-check"}
    });
    if opted_out {
        metadata["annotations"] = json!({ INJECT: "false" });
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "securityContext": {
                "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"}
            },
            "containers": containers
        }
    })
}

/// How the helper came back in a mutated Pod's `drain.io/status` (its `helper` record), e.g.
/// `first-container drain-helper`; `None` without one.
pub(super) fn helper_delivery(status: &str) -> Option<String> {
    let record: Value = serde_json::from_str(status).ok()?;
    let helper = record.get("helper")?;
    let name = |key: &str| {
        helper
            .get(key)
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
    };
    Some(if let Some(name) = name("firstContainer") {
        format!("the first container {name}")
    } else if let Some(name) = name("initContainer") {
        format!("the init container {name}")
    } else if helper.get("imageVolume").and_then(Value::as_bool) == Some(true) {
        "an image volume".to_owned()
    } else {
        "an unknown delivery".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutate::{PodContext, mutate_pod};
    use crate::settings::Settings;

    /// The helper Pod needs the helper (and the app Pod not) on the default settings; both
    /// decode as Pods.
    #[test]
    fn the_helper_pod_needs_the_helper() {
        let settings = Settings::default();
        let ctx = PodContext {
            settings: &settings,
            namespace_annotations: None,
            kube_version: "1.32".parse().ok(),
            image_volume_nodes: None,
        };
        let helper = mutate_pod(&probe_pod(Probe::Helper, false), &ctx).unwrap();
        assert!(helper.plan.helper.is_some(), "{:?}", helper.plan);
        let app = mutate_pod(&probe_pod(Probe::App, false), &ctx).unwrap();
        assert!(app.plan.helper.is_none(), "{:?}", app.plan);
        let opted_out = mutate_pod(&probe_pod(Probe::Helper, true), &ctx).unwrap();
        assert!(opted_out.plan.helper.is_none());
        for probe in [Probe::App, Probe::Helper] {
            serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(probe_pod(probe, true))
                .unwrap();
        }
    }

    #[test]
    fn the_delivery_reads_from_the_status() {
        let first = r#"{"v":1,"helper":{"firstContainer":"drain-helper","then":"sleep","volume":"drain-helper"}}"#;
        assert_eq!(
            helper_delivery(first).as_deref(),
            Some("the first container drain-helper")
        );
        let image = r#"{"v":1,"helper":{"volume":"drain-helper","imageVolume":true}}"#;
        assert_eq!(helper_delivery(image).as_deref(), Some("an image volume"));
        let init = r#"{"v":1,"helper":{"initContainer":"drain-helper","volume":"v"}}"#;
        assert_eq!(
            helper_delivery(init).as_deref(),
            Some("the init container drain-helper")
        );
        assert_eq!(helper_delivery(r#"{"v":1,"c":{}}"#), None);
        assert_eq!(helper_delivery("not json"), None);
    }
}
