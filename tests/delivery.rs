//! How drain-helper reaches the pod (plan/delivery.rs, docs/decisions.md "The helper's
//! delivery"): image volumes only where every node's kubelet and runtime mount them (also
//! through the node watch against a fake API server), a first container
//! that does not delay the start for pods that restart their containers, the init container
//! for pods that run to completion; names, reinvocation and the record, with pods mutated by
//! earlier versions.

mod common;
#[path = "common/fake_api.rs"]
mod fake_api;

use std::time::Duration;

use common::*;
use drain_webhook::capabilities::ImageVolumeNodes;
use drain_webhook::mutate::PodContext;
use drain_webhook::offline::{OutputFormat, explain};
use drain_webhook::plan::{AfterInstall, Delivery, Installer};
use drain_webhook::settings::{HelperDelivery, Settings};
use serde_json::{Value, json};

/// The seed pod with a restartPolicy (`None`: unset, the API's Always).
fn seed(restart_policy: Option<&str>) -> Value {
    let mut pod = fixture("pods/seed-nginx-app.yaml");
    if let Some(policy) = restart_policy {
        pod["spec"]["restartPolicy"] = policy.into();
    }
    pod
}

/// Nodes as the node cache summarises them, every kubelet 1.35.
fn nodes(runtimes: &[&str]) -> Option<bool> {
    ImageVolumeNodes::summarise(
        runtimes
            .iter()
            .enumerate()
            .map(|(i, r)| (["n0", "n1", "n2"][i], Some(*r), Some("v1.35.0"))),
    )
    .can_mount()
}

/// What the webhook's node watch (cluster::NodeCache) concludes from a fake API server whose
/// nodes run `(containerRuntimeVersion, kubeletVersion)`: its first summary, after the list.
async fn watched(nodes: &[(&str, &str)]) -> (ImageVolumeNodes, Option<bool>) {
    use fake_api::{FakeApi, Reply, status};
    let items: Vec<Value> = nodes
        .iter()
        .enumerate()
        .map(|(i, (runtime, kubelet))| {
            json!({"metadata": {"name": format!("node-{i}"), "resourceVersion": "7"},
                   "status": {"nodeInfo": {"containerRuntimeVersion": runtime,
                                           "kubeletVersion": kubelet}}})
        })
        .collect();
    let api = FakeApi::routes(move |seen| {
        (seen.path == "/api/v1/nodes").then(|| {
            if seen.query.contains("watch=true") {
                // The watch after the list: refused, so the watcher backs off and retries.
                let (code, body) = status(503, "ServiceUnavailable");
                Reply::json(code, body)
            } else {
                Reply::json(
                    200,
                    json!({"kind": "NodeList", "apiVersion": "v1",
                           "metadata": {"resourceVersion": "7"}, "items": items.clone()}),
                )
            }
        })
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let cache = drain_webhook::cluster::NodeCache::start(
        api.client_in("default"),
        stop_rx,
        move |summary: &ImageVolumeNodes| {
            let _ = seen_tx.send(summary.clone());
        },
    );
    // Generous: the list is answered at once; only a stalled runtime could take longer.
    let summary = tokio::time::timeout(Duration::from_secs(60), seen_rx.recv())
        .await
        .expect("the node watch summarised the list")
        .expect("the watch is running");
    let _ = stop_tx.send(true);
    use drain_webhook::capabilities::NodeLookup;
    (summary, cache.image_volume_nodes())
}

/// The acceptance case of a control plane upgraded first: a 1.35 API server whose nodes run
/// containerd 2.1 with 1.34 kubelets (gate `ImageVolume` off there) gets no image volume; with
/// 1.35 kubelets it does. Through the node watch against a fake API server, then the planner.
#[tokio::test]
async fn a_1_34_kubelet_on_containerd_2_1_blocks_image_volumes() {
    let settings = Settings::default();
    let pod = seed(None);
    for (kubelet, image_volume) in [("v1.34.2", false), ("v1.35.0", true)] {
        let (summary, can_mount) = watched(&[
            ("containerd://2.1.3", "v1.35.0"),
            ("containerd://2.1.3", kubelet),
        ])
        .await;
        assert_eq!(can_mount, Some(image_volume), "{summary}");
        if !image_volume {
            assert!(
                summary.to_string().contains("node-1 (kubelet v1.34.2)"),
                "{summary}"
            );
            assert_eq!(
                summary.blocking_by_reason(),
                [("kubelet", 1), ("runtime", 0)]
            );
        }
        let mutation = mutate_with_nodes(&pod, &settings, version("1.35"), can_mount);
        let helper = mutation
            .plan
            .helper
            .as_ref()
            .expect("nginx needs the helper");
        assert_eq!(
            helper.delivery() == Delivery::ImageVolume,
            image_volume,
            "kubelet {kubelet}: {summary}"
        );
        let (patched, typed) = apply(&pod, &mutation);
        validate(&typed).unwrap_or_else(|e| panic!("{e:?}"));
        let has_image_volume = patched["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.get("image").is_some());
        assert_eq!(has_image_volume, image_volume, "kubelet {kubelet}");
    }
}

/// On 1.35 a node with containerd 1.7 means no pod gets an image volume; with containerd 2.1
/// (or CRI-O 1.31) on every node, every pod that needs the helper does.
#[test]
fn image_volumes_only_where_every_node_mounts_them() {
    let settings = Settings::default();
    for (runtimes, image_volume) in [
        (&["containerd://1.7.27"][..], false),
        (&["containerd://2.1.3", "containerd://1.7.27"][..], false),
        (&["docker://24.0.7"][..], false),
        (&["containerd://2.1.3"][..], true),
        (&["containerd://2.1.3", "cri-o://1.31.2"][..], true),
    ] {
        for policy in [None, Some("Never")] {
            let pod = seed(policy);
            let mutation = mutate_with_nodes(&pod, &settings, version("1.35"), nodes(runtimes));
            let helper = mutation
                .plan
                .helper
                .as_ref()
                .expect("nginx needs the helper");
            assert_eq!(
                helper.delivery() == Delivery::ImageVolume,
                image_volume,
                "{runtimes:?} {policy:?}"
            );
            let (patched, typed) = apply(&pod, &mutation);
            validate(&typed).unwrap_or_else(|e| panic!("{e:?}"));
            let has_image_volume = patched["spec"]["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v.get("image").is_some());
            assert_eq!(has_image_volume, image_volume, "{runtimes:?}");
        }
    }
}

/// A pod that restarts its containers gets a first container that installs and sleeps; the
/// app does not wait for it. A Job's pod keeps the init container under `auto`, and gets
/// `--then exit` when the operator forces `first-container`.
#[test]
fn the_installer_follows_the_restart_policy() {
    let auto = Settings::default();
    let mut forced = Settings::default();
    forced.helper.delivery = HelperDelivery::FirstContainer;
    for (settings, policy, expected) in [
        (&auto, None, Delivery::FirstContainer(AfterInstall::Sleep)),
        (
            &auto,
            Some("Always"),
            Delivery::FirstContainer(AfterInstall::Sleep),
        ),
        (&auto, Some("Never"), Delivery::InitContainer),
        (&auto, Some("OnFailure"), Delivery::InitContainer),
        (
            &forced,
            Some("Never"),
            Delivery::FirstContainer(AfterInstall::Exit),
        ),
        (
            &forced,
            Some("OnFailure"),
            Delivery::FirstContainer(AfterInstall::Exit),
        ),
    ] {
        let pod = seed(policy);
        let mutation = mutate(&pod, settings, version("1.32"));
        let helper = mutation.plan.helper.as_ref().unwrap();
        assert_eq!(helper.delivery(), expected, "{policy:?}");
        let choice = mutation.plan.delivery.as_ref().expect("the plan says why");
        assert_eq!(choice.delivery, expected);
        let (patched, typed) = apply(&pod, &mutation);
        validate(&typed).unwrap_or_else(|e| panic!("{e:?}"));
        let spec = typed.spec.as_ref().unwrap();
        match expected {
            Delivery::FirstContainer(then) => {
                let first = &spec.containers[0];
                assert_eq!(first.name, "drain-helper");
                assert_eq!(
                    first.command.as_deref().unwrap(),
                    [
                        "/drain-helper",
                        "install",
                        "/.drain",
                        "--then",
                        then_word(then)
                    ]
                );
                assert!(restricted_violations(first, None).is_empty());
                // The seed pod is BestEffort: no cpu or memory, ephemeral storage requested.
                let resources = first.resources.as_ref().unwrap();
                let requests = resources.requests.as_ref().unwrap();
                assert_eq!(requests.keys().collect::<Vec<_>>(), ["ephemeral-storage"]);
                assert!(resources.limits.is_none());
                assert!(first.readiness_probe.is_none() && first.liveness_probe.is_none());
                assert!(
                    first.lifecycle.is_none(),
                    "never planned itself: no preStop"
                );
                assert_eq!(
                    first.volume_mounts.as_ref().unwrap()[0].mount_path,
                    "/.drain"
                );
                assert!(spec.init_containers.is_none());
                // `kubectl logs` without -c still shows the user's first container.
                assert_eq!(
                    patched["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"],
                    "nginx"
                );
                assert!(
                    !mutation
                        .plan
                        .containers
                        .iter()
                        .any(|c| c.name == "drain-helper")
                );
            }
            _ => {
                assert_eq!(spec.containers.len(), 2);
                assert_eq!(
                    spec.init_containers.as_ref().unwrap()[0].name,
                    "drain-helper"
                );
                assert!(
                    patched["metadata"]["annotations"]
                        .get("kubectl.kubernetes.io/default-container")
                        .is_none()
                );
            }
        }
        // Reinvocation changes nothing, whatever the nodes say by then.
        for nodes in [None, Some(true)] {
            let again = mutate_with_nodes(&patched, settings, version("1.35"), nodes);
            assert!(again.patch.is_empty(), "{policy:?}: {:#?}", again.patch);
        }
    }
}

fn then_word(then: AfterInstall) -> &'static str {
    match then {
        AfterInstall::Sleep => "sleep",
        AfterInstall::Exit => "exit",
    }
}

/// The first container's name avoids every name of the pod, and a default container the user
/// chose is kept.
#[test]
fn the_first_container_never_collides_and_keeps_the_users_default() {
    let mut pod = fixture("pods/name-collision.yaml");
    pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] = "app".into();
    let mutation = mutate(&pod, &Settings::default(), version("1.34"));
    let helper = mutation.plan.helper.clone().unwrap();
    assert!(matches!(helper.installer, Installer::First { .. }));
    let (patched, typed) = apply(&pod, &mutation);
    validate(&typed).unwrap_or_else(|e| panic!("{e:?}"));
    let first = &typed.spec.as_ref().unwrap().containers[0];
    assert_eq!(Some(first.name.as_str()), helper.installer_name());
    assert_eq!(
        patched["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"],
        "app"
    );
    // A container added since (another webhook) is planned; the installer still is not.
    let mut later = patched.clone();
    later["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "shipper", "image": "fluent/fluent-bit:3"}));
    let again = mutate(&later, &Settings::default(), version("1.34"));
    let planned: Vec<_> = again.plan.planned().map(|c| c.name.as_str()).collect();
    assert_eq!(planned, ["shipper"]);
    let (_, typed) = apply(&later, &again);
    validate(&typed).unwrap_or_else(|e| panic!("{e:?}"));
}

/// A pod mutated by an earlier version (an init container and its record) is recognised: this
/// version adds no first container next to it.
#[test]
fn pods_mutated_with_an_init_container_by_earlier_versions_stay_as_they_are() {
    let pod = seed(None);
    let mut init = Settings::default();
    init.helper.delivery = HelperDelivery::InitContainer;
    let old = mutate(&pod, &init, version("1.34"));
    let (patched, _) = apply(&pod, &old);
    let status = patched["metadata"]["annotations"]["drain.io/status"]
        .as_str()
        .unwrap();
    // The record is the one earlier versions wrote, byte for byte in its helper part.
    assert!(
        status.contains(r#""helper":{"initContainer":"drain-helper","volume":"drain-helper"}"#),
        "{status}"
    );
    let now = mutate(&patched, &Settings::default(), version("1.34"));
    assert!(now.patch.is_empty(), "{:#?}", now.patch);
    let names: Vec<_> = patched["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, ["nginx", "application"], "no first container added");
}

/// `explain -o json` says which delivery and why; offline the nodes count as unknown unless
/// `--image-volume-nodes` says otherwise.
#[test]
fn explain_says_which_delivery_and_why() {
    let input = serde_json::to_string(&seed(None)).unwrap();
    let settings = Settings::default();
    let explained = |nodes| {
        let ctx = PodContext {
            settings: &settings,
            namespace_annotations: None,
            kube_version: version("1.35"),
            image_volume_nodes: nodes,
        };
        let out: Value =
            serde_json::from_str(&explain(&input, &ctx, OutputFormat::Json).unwrap()).unwrap();
        out[0]["plan"]["delivery"].clone()
    };
    let unknown = explained(None);
    assert_eq!(unknown["delivery"], "first-container (then sleep)");
    assert!(
        unknown["why"]
            .as_str()
            .unwrap()
            .contains("the nodes' kubelets and container runtimes are not known"),
        "{unknown}"
    );
    assert_eq!(explained(Some(true))["delivery"], "image-volume");
    let ctx = PodContext {
        settings: &settings,
        namespace_annotations: None,
        kube_version: version("1.35"),
        image_volume_nodes: None,
    };
    let text = explain(&input, &ctx, OutputFormat::Text).unwrap();
    assert!(text.contains("helper delivery first-container"), "{text}");
}

/// The installer keeps the pod's QoS class under every delivery that has one: a Guaranteed
/// pod's installer has requests equal to its limits (the settings' limits), a Burstable pod's
/// the settings' requests and limits, and pod-level resources leave it no cpu or memory of its
/// own. An ephemeral-storage limit only where a container has one already (else it would cap
/// the whole pod: docs/decisions.md).
#[test]
fn the_installer_keeps_the_pods_qos_class() {
    use k8s_openapi::api::core::v1::PodSpec;
    let quantity = |r: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
                    name: &str| {
        r.as_ref().and_then(|r| r.get(name)).map(|q| q.0.clone())
    };
    let cases = [
        ("pods/guaranteed-nginx-app.yaml", "Guaranteed"),
        ("pods/pod-level-resources.yaml", "Burstable"),
        ("pods/seed-nginx-app.yaml", "BestEffort"),
    ];
    for (file, class) in cases {
        let pod = fixture(file);
        let spec: PodSpec = serde_json::from_value(pod["spec"].clone()).unwrap();
        assert_eq!(invariants::qos_class(&spec), class, "{file}");
        for delivery in [
            HelperDelivery::InitContainer,
            HelperDelivery::FirstContainer,
        ] {
            let mut settings = Settings::default();
            settings.helper.delivery = delivery;
            let mutation = mutate(&pod, &settings, version("1.34"));
            let (patched, typed) = apply(&pod, &mutation);
            validate(&typed).unwrap_or_else(|e| panic!("{file} {delivery}: {e:?}"));
            let after = typed.spec.as_ref().unwrap();
            assert_eq!(
                invariants::qos_class(after),
                class,
                "{file} {delivery}: {patched:#}"
            );
            let installer = after
                .containers
                .iter()
                .chain(after.init_containers.iter().flatten())
                .find(|c| c.name == "drain-helper")
                .unwrap();
            let resources = installer.resources.as_ref().unwrap();
            let (requests, limits) = (&resources.requests, &resources.limits);
            match file {
                "pods/guaranteed-nginx-app.yaml" => {
                    for name in ["cpu", "memory", "ephemeral-storage"] {
                        assert_eq!(quantity(requests, name), quantity(limits, name), "{name}");
                    }
                    assert_eq!(quantity(requests, "cpu").as_deref(), Some("20m"));
                    assert_eq!(quantity(requests, "memory").as_deref(), Some("32Mi"));
                }
                "pods/pod-level-resources.yaml" => {
                    assert_eq!(quantity(requests, "cpu"), None);
                    assert_eq!(quantity(limits, "memory"), None);
                    assert!(
                        limits.is_none(),
                        "no container has an ephemeral-storage limit"
                    );
                }
                _ => assert_eq!(quantity(requests, "cpu"), None),
            }
            assert_eq!(
                quantity(requests, "ephemeral-storage").as_deref(),
                Some("16Mi")
            );
        }
    }
    // The operator's own values: used as set in a Burstable pod, the requests raised to the
    // limits in a Guaranteed one.
    let mut settings = Settings::default();
    settings.helper.delivery = HelperDelivery::InitContainer;
    settings.helper.cpu_request = "5m".into();
    settings.helper.cpu_limit = "50m".into();
    let mut burstable = fixture("pods/guaranteed-nginx-app.yaml");
    burstable["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "100m"}});
    for (pod, request) in [
        (burstable, "5m"),
        (fixture("pods/guaranteed-nginx-app.yaml"), "50m"),
    ] {
        let (_, typed) = apply(&pod, &mutate(&pod, &settings, version("1.34")));
        let installer = &typed
            .spec
            .as_ref()
            .unwrap()
            .init_containers
            .as_ref()
            .unwrap()[0];
        let resources = installer.resources.as_ref().unwrap();
        assert_eq!(
            quantity(&resources.requests, "cpu").as_deref(),
            Some(request)
        );
        assert_eq!(quantity(&resources.limits, "cpu").as_deref(), Some("50m"));
    }
}

/// `drain.io/delivery` on the pod beats the namespace's, which beats `--helper-delivery`; the
/// reason names what decided.
#[test]
fn the_delivery_annotation_goes_pod_then_namespace_then_flag() {
    let mut settings = Settings::default();
    settings.helper.delivery = HelperDelivery::ImageVolume;
    let namespace: std::collections::BTreeMap<String, String> = [(
        "drain.io/delivery".to_string(),
        "init-container".to_string(),
    )]
    .into();
    let chosen = |pod: &Value, namespace| {
        let mutation = mutate_with_namespace(pod, &settings, version("1.34"), namespace);
        let choice = mutation.plan.delivery.clone().unwrap();
        (choice.delivery, choice.why.to_string())
    };
    let mut pod = seed(None);
    assert_eq!(
        chosen(&pod, None),
        (
            Delivery::ImageVolume,
            "set by --helper-delivery image-volume".into()
        )
    );
    assert_eq!(
        chosen(&pod, Some(&namespace)),
        (
            Delivery::InitContainer,
            "set by drain.io/delivery: init-container (on the namespace)".into()
        )
    );
    pod["metadata"]["annotations"] = json!({"drain.io/delivery": "first-container"});
    assert_eq!(
        chosen(&pod, Some(&namespace)),
        (
            Delivery::FirstContainer(AfterInstall::Sleep),
            "set by drain.io/delivery: first-container (on the pod); restartPolicy Always: it sleeps after installing".into()
        )
    );
    // `auto` on the pod overrides a namespace's named delivery and says so.
    pod["metadata"]["annotations"] = json!({"drain.io/delivery": "auto"});
    let (delivery, why) = chosen(&pod, Some(&namespace));
    assert_eq!(delivery, Delivery::FirstContainer(AfterInstall::Sleep));
    assert!(
        why.starts_with("drain.io/delivery: auto (on the pod): no image volume"),
        "{why}"
    );
}

/// An unknown value is a denial naming the annotation, the value and valid ones, on the pod
/// and on the namespace alike.
#[test]
fn an_unknown_delivery_is_denied_with_the_valid_values() {
    use drain_webhook::mutate::{MutateError, mutate_pod};
    let settings = Settings::default();
    let denial = |pod: &Value, namespace| {
        let ctx = PodContext {
            settings: &settings,
            namespace_annotations: namespace,
            kube_version: version("1.34"),
            image_volume_nodes: None,
        };
        match mutate_pod(pod, &ctx) {
            Err(MutateError::Denied(err)) => err.to_string(),
            other => panic!("not denied: {:?}", other.map(|m| m.patch)),
        }
    };
    let mut pod = seed(None);
    pod["metadata"]["annotations"] = json!({"drain.io/delivery": "sidecar"});
    let message = denial(&pod, None);
    assert!(
        message.contains("drain.io/delivery=\"sidecar\" (on the pod)"),
        "{message}"
    );
    assert!(
        message.contains("expected auto, init-container, first-container or image-volume"),
        "{message}"
    );
    assert!(
        message.contains("for example drain.io/delivery: \"auto\""),
        "{message}"
    );
    let namespace: std::collections::BTreeMap<String, String> =
        [("drain.io/delivery".to_string(), "InitContainer".to_string())].into();
    let message = denial(&seed(None), Some(&namespace));
    assert!(message.contains("(on the namespace)"), "{message}");

    // An image volume asked of a server that has no `volumes[].image` (before 1.31): the API
    // server would reject the pod with a message naming neither; denied here, saying why.
    let mut pod = seed(None);
    pod["metadata"]["annotations"] = json!({"drain.io/delivery": "image-volume"});
    let ctx = |kube| PodContext {
        settings: &settings,
        namespace_annotations: None,
        kube_version: version(kube),
        image_volume_nodes: None,
    };
    match mutate_pod(&pod, &ctx("1.30")) {
        Err(MutateError::Denied(err)) => {
            let message = err.to_string();
            assert!(
                message.contains(
                    "drain.io/delivery=\"image-volume\" (on the pod) needs Kubernetes 1.31"
                ),
                "{message}"
            );
            assert!(message.contains("this cluster runs 1.30"), "{message}");
        }
        other => panic!("not denied: {:?}", other.map(|m| m.patch)),
    }
    let asked =
        mutate_pod(&pod, &ctx("1.31")).expect("1.31 has the field (the gate is the owner's)");
    assert_eq!(asked.plan.delivery.unwrap().delivery, Delivery::ImageVolume);
}

/// `auto` gives a pod with pod-level resources the init container (a regular container would
/// add to the sum its pod-level requests must cover), and every delivery the annotation names
/// gives a patch that applies, reads as a Pod and passes the API server's rules (the
/// pod-level one included: `validate`), keeping the QoS class.
#[test]
fn pod_level_resources_get_the_init_container_and_every_delivery_applies() {
    let settings = Settings::default();
    let pod = fixture("pods/pod-level-resources.yaml");
    let mutation = mutate(&pod, &settings, version("1.34"));
    let choice = mutation.plan.delivery.clone().unwrap();
    assert_eq!(choice.delivery, Delivery::InitContainer);
    let why = choice.why.to_string();
    assert!(why.contains("pod-level resources"), "{why}");
    // An image volume adds no container at all: it still comes first; a named delivery is
    // used as named.
    let image = mutate_with_nodes(&pod, &settings, version("1.35"), Some(true));
    assert_eq!(image.plan.delivery.unwrap().delivery, Delivery::ImageVolume);
    let mut forced = settings.clone();
    forced.helper.delivery = HelperDelivery::FirstContainer;
    assert_eq!(
        mutate(&pod, &forced, version("1.34"))
            .plan
            .delivery
            .unwrap()
            .delivery,
        Delivery::FirstContainer(AfterInstall::Sleep)
    );
    // Without them, the same pod gets the first container.
    let mut plain = pod.clone();
    plain["spec"].as_object_mut().unwrap().remove("resources");
    let plain_choice = mutate(&plain, &settings, version("1.34"))
        .plan
        .delivery
        .unwrap();
    assert_eq!(
        plain_choice.delivery,
        Delivery::FirstContainer(AfterInstall::Sleep)
    );

    // A pod-level request below the containers' sum is what the API server rejects; the
    // validator the tests use knows the rule.
    let mut tight = pod.clone();
    tight["spec"]["resources"]["requests"]["cpu"] = "900m".into();
    let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(tight).unwrap();
    assert!(validate(&typed).is_err_and(|e| e[0].contains("aggregate container requests")));

    for (value, expected) in [
        ("auto", Delivery::InitContainer),
        ("init-container", Delivery::InitContainer),
        (
            "first-container",
            Delivery::FirstContainer(AfterInstall::Sleep),
        ),
        ("image-volume", Delivery::ImageVolume),
    ] {
        for base in [
            &pod,
            &seed(None),
            &fixture("pods/guaranteed-nginx-app.yaml"),
        ] {
            let mut annotated = base.clone();
            annotated["metadata"]["annotations"] = json!({"drain.io/delivery": value});
            let mutation = mutate(&annotated, &settings, version("1.34"));
            if base == &pod {
                assert_eq!(mutation.plan.delivery.as_ref().unwrap().delivery, expected);
            }
            let (patched, typed) = apply(&annotated, &mutation);
            validate(&typed).unwrap_or_else(|e| panic!("{value}: {e:?}\n{patched:#}"));
            invariants::check_qos(&annotated, &patched).unwrap_or_else(|e| panic!("{value}: {e}"));
        }
    }
}
