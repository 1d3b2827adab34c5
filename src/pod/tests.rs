//! Unit tests of `pod`.
use super::*;

#[test]
fn image_names() {
    assert_eq!(image_name("nginx"), "nginx");
    assert_eq!(image_name("nginx:1.27"), "nginx");
    assert_eq!(image_name("registry:5000/library/nginx:1.27"), "nginx");
    assert_eq!(image_name("ghcr.io/a/envoy@sha256:abcd"), "envoy");
    assert_eq!(image_name("a/b:1@sha256:x/y:z@w"), "b");
    assert_eq!(image_name("/nginx:"), "nginx");
    assert_eq!(image_name(""), "");
    assert_eq!(image_name("registry:5000/"), "");
}

/// The shape reads what the planner needs, leaves the rest unread (even when it would not
/// decode as a `k8s-openapi` type), and takes only objects where the API has objects.
#[test]
fn the_pod_shape_reads_only_what_the_planner_needs() {
    let shape: PodShape = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{
                "name": "app", "image": "app:1", "ports": [{"containerPort": 8080}],
                "env": "not a list", "resources": {"limits": {"cpu": 1}},
                "lifecycle": {"preStop": {"sleep": {"seconds": 3}}},
            }],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "ephemeralContainers": null,
            "terminationGracePeriodSeconds": 20,
            "os": {"name": "linux"},
            "futureField": {"anything": [1, 2]},
        },
    }))
    .expect("fields the planner does not read are skipped");
    let spec = shape.spec.as_ref().unwrap();
    assert_eq!(spec.containers[0].name, "app");
    assert_eq!(
        spec.containers[0].ports.as_ref().unwrap()[0].container_port,
        8080
    );
    let pre_stop = spec.containers[0]
        .lifecycle
        .as_ref()
        .unwrap()
        .pre_stop
        .as_ref();
    assert_eq!(pre_stop.unwrap().sleep.as_ref().unwrap().seconds, 3);
    assert_eq!(spec.volumes.as_ref().unwrap()[0].name, "data");
    assert!(spec.ephemeral_containers.is_none());
    assert_eq!(spec.termination_grace_period_seconds, Some(20));

    let null_containers: PodShape =
        serde_json::from_value(serde_json::json!({"spec": {"containers": null}})).unwrap();
    assert!(null_containers.spec.unwrap().containers.is_empty());

    for not_objects in [
        serde_json::json!({"spec": {"containers": [["app", "nginx:1.27"]]}}),
        serde_json::json!({"spec": {"containers": [null]}}),
        serde_json::json!({"spec": ["containers"]}),
        serde_json::json!([{"name": "p"}, {"containers": []}]),
        serde_json::json!({"spec": {"volumes": [["data"]]}}),
    ] {
        let err = serde_json::from_value::<PodShape>(not_objects.clone()).unwrap_err();
        assert!(
            err.to_string().contains("a JSON object"),
            "{not_objects}: {err}"
        );
    }
}

#[test]
fn windows_is_recognised_by_every_usual_marker() {
    let windows = |spec: serde_json::Value| {
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = serde_json::json!([{"name": "app"}]);
        }
        serde_json::from_value::<PodShape>(serde_json::json!({"spec": spec}))
            .unwrap()
            .spec
            .unwrap()
            .is_windows()
    };
    use serde_json::json;
    assert!(windows(json!({"os": {"name": "windows"}})));
    assert!(windows(
        json!({"nodeSelector": {"kubernetes.io/os": "windows"}})
    ));
    assert!(windows(
        json!({"nodeSelector": {"beta.kubernetes.io/os": "Windows"}})
    ));
    assert!(windows(json!({"affinity": {"nodeAffinity": {
    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["windows"]}]}
    ]}}}})));
    assert!(windows(
        json!({"securityContext": {"windowsOptions": {"hostProcess": true}}})
    ));
    assert!(windows(json!({"containers": [
        {"name": "app", "securityContext": {"windowsOptions": {"runAsUserName": "ContainerUser"}}}
    ]})));

    assert!(!windows(json!({})));
    assert!(!windows(json!({"os": {"name": "linux"}})));
    assert!(!windows(
        json!({"nodeSelector": {"kubernetes.io/os": "linux"}})
    ));
    assert!(!windows(json!({"securityContext": {"runAsNonRoot": true}})));
    // A term that also admits Linux is not Windows-only, and a preference does not bind.
    assert!(!windows(json!({"affinity": {"nodeAffinity": {
    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux", "windows"]}]}
    ]}}}})));
    assert!(!windows(json!({"affinity": {"nodeAffinity": {
    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference":
        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["windows"]}]}}]
    }}})));
}

/// The API server's usual `terminationMessagePath`, `terminationMessagePolicy` and
/// `restartPolicy` are read without a copy; any other value as sent; `null` or absent as none;
/// another type refused.
#[test]
fn termination_message_fields_keep_the_usual_values_without_a_copy() {
    let read = |fields: serde_json::Value| {
        let mut container = serde_json::json!({"name": "app"});
        container
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        serde_json::from_value::<ContainerShape>(container)
    };
    let usual = read(serde_json::json!({
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "restartPolicy": "Always",
    }))
    .unwrap();
    assert!(matches!(
        usual.restart_policy,
        Some(Cow::Borrowed("Always"))
    ));
    assert!(matches!(
        usual.termination_message_path,
        Some(Cow::Borrowed("/dev/termination-log"))
    ));
    assert!(matches!(
        usual.termination_message_policy,
        Some(Cow::Borrowed("FallbackToLogsOnError"))
    ));
    let file = read(serde_json::json!({"terminationMessagePolicy": "File"})).unwrap();
    assert!(matches!(
        file.termination_message_policy,
        Some(Cow::Borrowed("File"))
    ));
    let custom = read(serde_json::json!({
        "terminationMessagePath": "/tmp/why",
        "terminationMessagePolicy": "file",
    }))
    .unwrap();
    assert!(matches!(
        custom.termination_message_path.as_ref(),
        Some(Cow::Owned(path)) if path == "/tmp/why"
    ));
    assert_eq!(custom.termination_message_policy.as_deref(), Some("file"));
    let none = read(serde_json::json!({"terminationMessagePath": null})).unwrap();
    assert_eq!(none.termination_message_path, None);
    assert_eq!(none.termination_message_policy, None);
    let wrong = read(serde_json::json!({"terminationMessagePath": 5})).unwrap_err();
    assert!(wrong.to_string().contains("a string or null"), "{wrong}");
}
