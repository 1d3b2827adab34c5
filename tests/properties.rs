//! Property tests over generated pods: whatever the pod, the patch applies, the result passes
//! the API server's validation, a second run changes nothing, grace is never shortened, every
//! container keeps its budget after SIGTERM, front proxies stop no later than apps, and what
//! the plan leaves alone is left byte-for-byte alone.

mod common;

use common::*;
use drain_webhook::mutate::PodContext;
use drain_webhook::plan::{AfterInstall, Delivery, HookKind};
use drain_webhook::settings::{HelperDelivery, KubeVersion, Settings};
use k8s_openapi::api::core::v1::Pod;
use proptest::prelude::*;
use serde_json::{Value, json};

const IMAGES: [&str; 8] = [
    "nginx:1.27",
    "envoyproxy/envoy:v1.31",
    "haproxy:2.9",
    "ghcr.io/acme/app:1",
    "gcr.io/distroless/java21",
    "python:3.12-slim",
    "nginx/nginx-prometheus-exporter:1.1",
    "traefik:v3",
];

/// Words of a user's exec hook: ordinary ones, and ones a parser may trip on.
fn exec_word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/bin/sh".to_string()),
        Just("--".to_string()),
        Just("--delay".to_string()),
        Just(String::new()),
        "[ -~]{0,12}",
        "\\PC{0,6}",
    ]
}

/// httpGet paths, including the ones drain-helper cannot send (fragments, spaces).
fn http_path() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        Just("/stop".to_string()),
        Just("stop?now=1&x=%20".to_string()),
        Just("/a#b".to_string()),
        Just("/a b".to_string()),
        Just("".to_string()),
        "/[ -~]{0,16}",
        "\\PC{0,8}",
    ])
}

fn pre_stop_strategy() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(json!({"exec": {"command": ["/bin/sh", "-c", "echo bye"]}}))),
        1 => prop::collection::vec(exec_word(), 1..4)
            .prop_map(|command| Some(json!({"exec": {"command": command}}))),
        1 => (http_path(), prop::sample::select(vec!["", "127.0.0.1", "::1", "10.1.2.3", "localhost"]))
            .prop_map(|(path, host)| {
                let mut get = json!({"port": 8080});
                if let Some(path) = path {
                    get["path"] = path.into();
                }
                if !host.is_empty() {
                    get["host"] = host.into();
                }
                Some(json!({"httpGet": get}))
            }),
        1 => Just(Some(json!({"httpGet": {"path": "/stop", "port": 8080}}))),
        1 => Just(Some(json!({"httpGet": {"path": "/stop", "port": "http", "scheme": "HTTPS"}}))),
        1 => (0i64..20).prop_map(|s| Some(json!({"sleep": {"seconds": s}}))),
        1 => Just(Some(json!({"tcpSocket": {"port": 9}}))),
    ]
}

fn container_strategy(index: usize) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(IMAGES.to_vec()),
        pre_stop_strategy(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.2),
        // A container's own env: none, other variables, or one of the names drain.io/env adds.
        prop_oneof![
            2 => Just(None),
            1 => Just(Some(json!([{"name": "LOG_LEVEL", "value": "info"}]))),
            1 => (0u32..40).prop_map(|s| Some(json!([{"name": "DRAIN_DELAY_SECONDS", "value": s.to_string()}]))),
            1 => Just(Some(json!([{"name": "DRAIN_SHUTDOWN_BUDGET_SECONDS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]))),
        ],
        // A readiness probe the adaptive hold must discount, or one it must not.
        prop_oneof![
            2 => Just(None),
            1 => (1i32..30).prop_map(|p| Some(json!({"httpGet": {"port": 8080}, "periodSeconds": p}))),
            1 => Just(Some(json!({"tcpSocket": {"port": 8080, "host": "10.0.0.1"}}))),
            1 => Just(Some(json!({"exec": {"command": ["true"]}, "periodSeconds": 1}))),
            1 => Just(Some(json!({"grpc": {"port": 9090}, "periodSeconds": -3}))),
        ],
    )
        .prop_map(move |(image, pre_stop, mesh, mounts, env, probe)| {
            let name = if mesh && index == 0 {
                "istio-proxy".to_string()
            } else {
                format!("c{index}")
            };
            let mut container = json!({
                "name": name,
                "image": image,
                "ports": [{"containerPort": 8080 + index, "name": "http"}],
            });
            if let Some(handler) = pre_stop {
                container["lifecycle"] = json!({"preStop": handler});
            }
            if let Some(probe) = probe {
                container["readinessProbe"] = probe;
            }
            if let Some(env) = env {
                container["env"] = env;
            }
            if mounts {
                container["volumeMounts"] = json!([{"name": "drain-helper", "mountPath": "/data"}]);
            }
            container
        })
}

fn annotations_strategy() -> impl Strategy<Value = Value> {
    (
        prop::option::of(0u32..120),
        prop::option::of(0u32..60),
        prop::option::of(0u32..900),
        // Native weighs more: few generated pods meet its conditions (a known proxy, 1.33+ or an
        // unknown version, no exec hook to chain), and 256 cases must still reach it.
        prop_oneof![
            3 => Just(None),
            1 => Just(Some("auto")),
            1 => Just(Some("sleep")),
            1 => Just(Some("helper")),
            4 => Just(Some("native")),
        ],
        prop::option::of(prop::sample::select(vec!["c0", "c1", "c0,c2", "nope"])),
        prop::option::of(prop::sample::select(vec!["c1", "c2,c3"])),
        prop::option::of(prop_oneof![
            prop::sample::select(vec!["8080", "8081,9999", "+80", "0", "65535", "8080,,80 "])
                .prop_map(str::to_owned),
            prop::collection::vec(1u32..70000, 1..4).prop_map(|ports| ports
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")),
        ]),
        prop::option::of(notify_strategy()),
        prop::option::of(prop::sample::select(vec!["true", "false", "yes"])),
        // Q and M of the adaptive hold: M below, at and above D; Q 0 is refused. And
        // drain.io/delivery, over the test's --helper-delivery ("sidecar" is denied).
        (
            prop::option::of(0u32..10),
            prop::option::of(0u32..300),
            prop::option::of(prop::sample::select(vec![
                "auto",
                "init-container",
                "first-container",
                "image-volume",
                "sidecar",
            ])),
        ),
    )
        .prop_map(
            |(delay, stagger, budget, hook, proxies, exclude, wait, notify, env, hold)| {
                let mut a = serde_json::Map::new();
                let mut put = |k: &str, v: String| {
                    a.insert(k.to_string(), Value::String(v));
                };
                if let Some(d) = delay {
                    put("drain.io/delay", format!("{d}s"));
                }
                if let Some(s) = stagger {
                    put("drain.io/stagger", s.to_string());
                }
                if let Some(b) = budget {
                    put("drain.io/shutdown-budget", format!("{b}s"));
                }
                if let Some(h) = hook {
                    put("drain.io/hook", h.into());
                }
                if let Some(p) = proxies {
                    put("drain.io/proxies", p.into());
                }
                if let Some(e) = exclude {
                    put("drain.io/exclude", e.into());
                }
                if let Some(w) = wait {
                    put("drain.io/wait-idle", w);
                }
                if let Some(notify) = notify {
                    put("drain.io/notify", notify);
                }
                if let Some(env) = env {
                    put("drain.io/env", env.into());
                }
                if let Some(quiet) = hold.0 {
                    put("drain.io/quiet", format!("{quiet}s"));
                }
                if let Some(cap) = hold.1 {
                    put("drain.io/max-delay", cap.to_string());
                }
                if let Some(delivery) = hold.2 {
                    put("drain.io/delivery", delivery.into());
                }
                Value::Object(a)
            },
        )
}

/// `drain.io/notify` values: loopback URLs with odd paths, query strings, IPv6, large and
/// signed ports, fragments, and lists of them; the ones the helper would refuse must be denied.
fn notify_strategy() -> impl Strategy<Value = String> {
    let url = (
        prop::sample::select(vec![
            "127.0.0.1",
            "[::1]",
            "127.1.2.3",
            "10.0.0.1",
            "[::1",
            "localhost",
        ]),
        prop::sample::select(vec!["", ":8080", ":65535", ":+80", ":0", ":70000", ":"]),
        prop_oneof![
            Just(String::new()),
            Just("/drain".to_string()),
            Just("/drain?now=1&x=%2F".to_string()),
            Just("/drain#now".to_string()),
            "/[ -~]{0,12}",
            "\\PC{0,6}",
        ],
    )
        .prop_map(|(host, port, path)| format!("http://{host}{port}{path}"));
    prop::collection::vec(url, 1..3).prop_map(|urls| urls.join(","))
}

/// A container's resources: none, Guaranteed-shaped (limits only, or requests equal to them in
/// another spelling), Burstable-shaped, zero quantities, or ephemeral storage only.
fn resources(choice: u8) -> Option<Value> {
    match choice {
        0 => None,
        1 => Some(json!({"limits": {"cpu": "250m", "memory": "64Mi"}})),
        2 => Some(
            json!({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1024Mi"}}),
        ),
        3 => Some(json!({"requests": {"cpu": "100m", "memory": "32Mi"}})),
        4 => Some(
            json!({"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "32Mi"}}),
        ),
        5 => Some(json!({"requests": {"cpu": "0"}, "limits": {"memory": "0"}})),
        _ => Some(
            json!({"requests": {"ephemeral-storage": "1Gi"}, "limits": {"ephemeral-storage": "2Gi"}}),
        ),
    }
}

/// How the pod's resources are set: per container at random (mostly Burstable), every
/// container Guaranteed-shaped, none at all (BestEffort), or pod-level resources.
fn resources_strategy() -> impl Strategy<Value = (u8, Vec<u8>)> {
    (0u8..4, prop::collection::vec(0u8..7, 8))
}

fn pod_strategy() -> impl Strategy<Value = Value> {
    (1usize..6)
        .prop_flat_map(|n| {
            (
                (0..n).map(container_strategy).collect::<Vec<_>>(),
                resources_strategy(),
                annotations_strategy(),
                prop::option::of(prop_oneof![Just(0i64), 1i64..600]),
                // No `spec.os`, Windows, or Linux with a stop signal of the user's.
                prop_oneof![
                    8 => Just(None),
                    1 => Just(Some(("windows", None))),
                    1 => prop::option::of(prop::sample::select(vec!["SIGTERM", "SIGQUIT", "SIGINT"]))
                        .prop_map(|signal| Some(("linux", signal))),
                ],
                prop::bool::weighted(0.1),
                0usize..3,
                prop::bool::weighted(0.3),
                // Unset (Always), or a pod that runs to completion (a Job's).
                prop::option::of(prop::sample::select(vec!["Always", "OnFailure", "Never"])),
            )
        })
        .prop_map(
            |(mut containers, (mode, choices), annotations, grace, os, share_pid, inits, collide, restart)| {
                // Mode 1: every container Guaranteed-shaped; 2: none; 3: pod-level resources.
                let pick = |i: usize| match mode {
                    1 => resources(1 + (choices[i % choices.len()] % 2)),
                    2 => None,
                    _ => resources(choices[i % choices.len()]),
                };
                if let Some((_, Some(signal))) = os {
                    let lifecycle = containers[0]
                        .as_object_mut()
                        .unwrap()
                        .entry("lifecycle")
                        .or_insert_with(|| json!({}));
                    lifecycle["stopSignal"] = signal.into();
                }
                for (i, container) in containers.iter_mut().enumerate() {
                    if let Some(r) = pick(i) {
                        container["resources"] = r;
                    }
                }
                let mut spec = json!({"containers": containers});
                if mode == 3 {
                    spec["resources"] = if choices[0] % 2 == 0 {
                        json!({"requests": {"cpu": "2", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}})
                    } else {
                        json!({"limits": {"cpu": "4", "memory": "4Gi"}})
                    };
                }
                if let Some(g) = grace {
                    spec["terminationGracePeriodSeconds"] = g.into();
                }
                if let Some((name, _)) = os {
                    spec["os"] = json!({"name": name});
                }
                if share_pid {
                    spec["shareProcessNamespace"] = true.into();
                }
                if let Some(policy) = restart {
                    spec["restartPolicy"] = policy.into();
                }
                let mut init = Vec::new();
                for i in 0..inits {
                    let mut c =
                        json!({"name": format!("init{i}"), "image": IMAGES[i * 3 % IMAGES.len()]});
                    if i == 1 {
                        c["restartPolicy"] = "Always".into();
                    }
                    if let Some(r) = pick(6 + i) {
                        c["resources"] = r;
                    }
                    init.push(c);
                }
                if collide {
                    init.push(json!({"name": "drain-helper", "image": "busybox"}));
                }
                if !init.is_empty() {
                    spec["initContainers"] = Value::Array(init);
                }
                spec["volumes"] = json!([{"name": "drain-helper", "emptyDir": {}}]);
                json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "p", "namespace": "ns", "annotations": annotations},
                    "spec": spec,
                })
            },
        )
}

fn version_strategy() -> impl Strategy<Value = Option<KubeVersion>> {
    prop::option::of(prop::sample::select(vec![
        "1.28", "1.29", "1.30", "1.32", "1.33", "1.34", "1.35",
    ]))
    .prop_map(|v| v.map(|v| v.parse().unwrap()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The webhook's quantity reader (src/qos.rs) and the test's (`invariants::quantity_nanos`)
    /// agree on every spelling Kubernetes accepts.
    #[test]
    fn quantities_read_alike(
        whole in 0u64..5000,
        fraction in prop::option::of(0u32..1000),
        suffix in prop::sample::select(vec!["", "n", "u", "m", "k", "M", "G", "Ki", "Mi", "Gi", "Ti", "e3", "E2", "e-3"]),
    ) {
        let text = match fraction {
            Some(f) => format!("{whole}.{f}{suffix}"),
            None => format!("{whole}{suffix}"),
        };
        let ours = drain_webhook::qos::nanos(&text);
        prop_assert!(ours.is_some(), "{}", text);
        prop_assert_eq!(ours, invariants::quantity_nanos(&text), "{}", text);
    }

    #[test]
    fn mutation_invariants(
        pod in pod_strategy(),
        kube in version_strategy(),
        nodes in prop::option::of(any::<bool>()),
        delivery in prop::sample::select(vec![
            HelperDelivery::Auto,
            HelperDelivery::InitContainer,
            HelperDelivery::FirstContainer,
            HelperDelivery::ImageVolume,
        ]),
    ) {
        // Only pods the API server would accept in the first place.
        let original: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod.clone()).unwrap();
        prop_assume!(validate(&original).is_ok());
        let mut settings = Settings::default();
        settings.helper.delivery = delivery;
        let ctx = PodContext { settings: &settings, namespace_annotations: None, kube_version: kube, image_volume_nodes: nodes };
        // The invariants shared with the fuzz targets (tests/common/invariants.rs): the patch
        // applies, a second run changes nothing, grace never shortened, proxies before apps.
        // Valid annotations can still ask for too much grace: a denial (None), never our fault.
        let Some((mutation, patched)) = invariants::check_mutation(&pod, &ctx).map_err(TestCaseError::fail)? else {
            return Ok(());
        };
        let typed: Pod = serde_json::from_value(patched.clone()).expect("the patched object is a Pod");
        if let Err(errors) = validate(&typed) {
            return Err(TestCaseError::fail(format!("{errors:?}\n{patched:#}")));
        }
        let after = patched["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
        prop_assert_eq!(after, mutation.plan.grace_after);

        let plan = &mutation.plan;
        let budget = i64::from(plan.shutdown_budget);
        let planned: Vec<_> = plan.planned().collect();
        for c in &planned {
            // Every planned container keeps its full budget after SIGTERM (and after the
            // longest wait for idle connections).
            let sigterm = i64::from(c.earliest_signal().unwrap());
            let wait = if c.wait_idle.is_empty() { 0 } else { budget };
            prop_assert!(after - sigterm - wait >= budget, "{} {} {} {}", c.name, after, sigterm, budget);
            // The helper gives up at --max; after that the container still keeps B when it
            // waits for idle ports, and never outlives the grace period otherwise.
            if let Some(max) = c.hook_max_seconds() {
                let max = i64::from(max);
                prop_assert!(max <= after);
                if wait > 0 {
                    prop_assert!(after - max >= budget);
                }
            }
        }
        // Hook mode native is opt-in: only where `drain.io/hook: native` asks for it. What it
        // plans is in the patched pod: the stop signal, and an OS the API server accepts it with
        // (the API's rules themselves are checked by `validate` and `check_mutation`).
        let native_asked = pod["metadata"]["annotations"]["drain.io/hook"] == "native";
        // A first container of ours shifts the user's containers by one in the patched pod.
        let first = usize::from(plan.helper.as_ref().is_some_and(|h| !h.present && matches!(h.delivery(), Delivery::FirstContainer(_))));
        for c in planned.iter().filter(|c| c.hook == Some(HookKind::Native)) {
            prop_assert!(native_asked);
            let container = &patched["spec"]["containers"][c.index + first];
            prop_assert_eq!(container["lifecycle"]["stopSignal"].as_str(), c.signal);
            prop_assert_eq!(patched["spec"]["os"]["name"].as_str(), Some("linux"));
            prop_assert!(plan.warnings.iter().any(|w| w.contains("ContainerStopSignals")));
        }
        if !native_asked {
            prop_assert!(!plan.adds_os_linux);
            prop_assert_eq!(&pod["spec"]["os"], &patched["spec"]["os"]);
        }
        // drain.io/env: every planned container has both variables, with the plan's values
        // unless it set them itself (what it had is kept: `check_env`).
        let env_asked = pod["metadata"]["annotations"]["drain.io/env"] == "true";
        for c in &planned {
            let env = patched["spec"]["containers"][c.index + first]["env"].as_array().cloned().unwrap_or_default();
            let own = |name: &str| pod["spec"]["containers"][c.index]["env"].as_array().into_iter().flatten().any(|v| v["name"] == name);
            for (name, value) in [("DRAIN_DELAY_SECONDS", c.earliest_signal().unwrap().to_string()), ("DRAIN_SHUTDOWN_BUDGET_SECONDS", plan.shutdown_budget.to_string())] {
                let ours = env.iter().any(|v| v["name"] == name && v["value"] == value.as_str());
                if env_asked && !own(name) {
                    prop_assert!(ours, "{} lacks {}={}: {:?}", c.name, name, value, env);
                }
                if !env_asked {
                    prop_assert!(c.env.is_empty());
                }
            }
        }
        // What the plan leaves alone stays exactly as it was.
        for c in plan.containers.iter().filter(|c| c.planned_hook().is_none()) {
            let list = if c.init_container { "initContainers" } else { "containers" };
            let original = &pod["spec"][list][c.index];
            // Our installer, added first to its list, shifts the user's containers there by one.
            let added = plan.helper.as_ref().filter(|h| !h.present).map(|h| h.delivery());
            let shifted = usize::from(match added {
                Some(Delivery::InitContainer) => c.init_container,
                Some(Delivery::FirstContainer(_)) => !c.init_container,
                _ => false,
            });
            prop_assert_eq!(original, &patched["spec"][list][c.index + shifted]);
        }
        // The user's own exec/httpGet hook is never dropped.
        for c in &planned {
            let original = &pod["spec"]["containers"][c.index]["lifecycle"]["preStop"];
            let now = &patched["spec"]["containers"][c.index + first]["lifecycle"]["preStop"];
            if let Some(command) = original["exec"]["command"].as_array() {
                let new: Vec<&Value> = now["exec"]["command"].as_array().unwrap().iter().collect();
                prop_assert!(new.ends_with(&command.iter().collect::<Vec<_>>()));
            }
            if original["httpGet"].is_object() {
                prop_assert!(now.to_string().contains("--then-http-get"));
            }
        }
        // Everything we add passes Pod Security "restricted".
        let spec = typed.spec.as_ref().unwrap();
        if let Some(helper) = &plan.helper {
            let count = |list: &str| pod["spec"][list].as_array().map_or(0, Vec::len);
            match helper.installer_name() {
                None => {
                    // Nothing runs from an image volume but the hooks: no container of ours.
                    prop_assert_eq!(spec.init_containers.as_ref().map_or(0, Vec::len), count("initContainers"));
                    prop_assert_eq!(spec.containers.len(), count("containers"));
                }
                Some(name) => {
                    let installer = spec.containers.iter().chain(spec.init_containers.iter().flatten()).find(|c| c.name == name).unwrap();
                    prop_assert!(restricted_violations(installer, None).is_empty());
                    // Requests at the limits in a Guaranteed pod, no cpu or memory in a
                    // BestEffort one (the class itself: `check_mutation`); ephemeral storage
                    // requested in every pod.
                    let resources = installer.resources.as_ref().unwrap();
                    prop_assert!(resources.requests.as_ref().is_some_and(|r| r.contains_key("ephemeral-storage")));
                    let class = invariants::qos_class(original.spec.as_ref().unwrap());
                    if class == "Guaranteed" && original.spec.as_ref().unwrap().resources.is_none() {
                        prop_assert_eq!(&resources.requests.as_ref().unwrap()["cpu"], &resources.limits.as_ref().unwrap()["cpu"]);
                        prop_assert_eq!(&resources.requests.as_ref().unwrap()["memory"], &resources.limits.as_ref().unwrap()["memory"]);
                    }
                    if class == "BestEffort" {
                        prop_assert!(!resources.requests.as_ref().unwrap().contains_key("cpu"));
                        prop_assert!(resources.limits.as_ref().is_none_or(|l| !l.contains_key("cpu") && !l.contains_key("memory")));
                    }
                    if let Delivery::FirstContainer(then) = helper.delivery() {
                        // First, without probes: ready once running, never restarted by one.
                        prop_assert_eq!(&spec.containers[0].name, name);
                        prop_assert!(installer.readiness_probe.is_none() && installer.liveness_probe.is_none() && installer.startup_probe.is_none());
                        let restarts = pod["spec"]["restartPolicy"].as_str().is_none_or(|p| p == "Always");
                        prop_assert_eq!(then == AfterInstall::Sleep, restarts);
                        prop_assert!(plan.containers.iter().all(|c| c.name != name), "the installer is not planned");
                    }
                }
            }
            prop_assert!(spec.os.as_ref().is_none_or(|os| os.name != "windows"), "no helper in Windows pods");
        }
    }

    /// A webhook after us lowers the grace period and we are called again (reinvocation):
    /// whatever the new value, the pod we admit never has a native sleep above its grace
    /// period, and we deny exactly when one of our sleeps would be.
    #[test]
    fn a_grace_lowered_after_us_never_leaves_a_sleep_above_it(
        pod in pod_strategy(),
        kube in version_strategy(),
        nodes in prop::option::of(any::<bool>()),
        lowered_to in 1i64..120,
    ) {
        let original: Pod = serde_json::from_value(pod.clone()).unwrap();
        prop_assume!(validate(&original).is_ok());
        let settings = Settings::default();
        let ctx = PodContext { settings: &settings, namespace_annotations: None, kube_version: kube, image_volume_nodes: nodes };
        let Some((mutation, mut patched)) = invariants::check_mutation(&pod, &ctx).map_err(TestCaseError::fail)? else {
            return Ok(());
        };
        prop_assume!(mutation.plan.status.is_some());
        let grace = lowered_to.min(mutation.plan.grace_after);
        patched["spec"]["terminationGracePeriodSeconds"] = grace.into();
        let sleeps = |pod: &Value| -> Vec<i64> {
            ["containers", "initContainers"]
                .iter()
                .flat_map(|list| pod["spec"][list].as_array().cloned().unwrap_or_default())
                .filter_map(|c| c["lifecycle"]["preStop"]["sleep"]["seconds"].as_i64())
                .collect()
        };
        let user_sleep_too_long = sleeps(&pod).iter().any(|&s| s > grace);
        let too_long = sleeps(&patched).iter().any(|&s| s > grace);
        match drain_webhook::mutate::mutate_pod(&patched, &ctx) {
            Ok(again) => {
                prop_assert!(!too_long || user_sleep_too_long, "admitted with a sleep above {grace}: {patched:#}");
                let mut result = patched.clone();
                json_patch::patch(&mut result, &again.patch.to_json_patch().0).unwrap();
                let final_grace = result["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap();
                prop_assert!(final_grace >= grace, "the later webhook's value is never lowered further");
                if !user_sleep_too_long {
                    prop_assert!(sleeps(&result).iter().all(|&s| s <= final_grace), "{result:#}");
                }
            }
            Err(drain_webhook::mutate::MutateError::Denied(err)) => {
                let message = err.to_string();
                prop_assert!(too_long, "denied although every sleep fits in {grace}s: {message}");
                prop_assert!(message.contains(&format!("lowered to {grace}s")), "{message}");
            }
            Err(other) => return Err(TestCaseError::fail(format!("{other}"))),
        }
    }
}
