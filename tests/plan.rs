//! The planning engine on fixture pods: every role and every "decided on purpose" case of
//! DESIGN.md section 2, checked the way the API server would see the result.

mod common;

use std::collections::BTreeMap;

use common::timing::*;
use common::*;
use drain_webhook::mutate::{MutateError, PodContext, mutate_pod};
use drain_webhook::plan::{Action, Delivery, HookKind, Outcome, Role};
use drain_webhook::settings::{HelperDelivery, HookMode, Settings};
use rstest::rstest;
use serde_json::Value;

/// A fixture pod mutated with the default settings on Kubernetes 1.34.
fn mutate_fixture(name: &str) -> (Value, drain_webhook::mutate::Mutation) {
    let pod = fixture(&format!("pods/{name}"));
    let mutation = mutate(&pod, &Settings::default(), version("1.34"));
    (pod, mutation)
}

/// The default settings with the adaptive hold off (M at or below D): every hold is the fixed
/// D, the plan drain-webhook made before the adaptive hold.
fn fixed_hold() -> Settings {
    Settings {
        max_delay: 0,
        ..Settings::default()
    }
}

/// Applies, validates and checks idempotence; returns the typed result.
fn apply_checked(
    original: &Value,
    mutation: &drain_webhook::mutate::Mutation,
) -> k8s_openapi::api::core::v1::Pod {
    let (patched, pod) = apply(original, mutation);
    if let Err(errors) = validate(&pod) {
        panic!("API server validation would reject the pod: {errors:#?}");
    }
    let again = mutate(&patched, &Settings::default(), None);
    assert!(
        again.patch.is_empty(),
        "a second run must change nothing, got {:#?}",
        again.patch
    );
    pod
}

/// The seed case on the defaults: nginx holds from D while traffic arrives (until quiet for Q,
/// at most M), the app follows nginx's listeners and gets SIGTERM S after they close; the grace
/// period covers the latest case, M + S + B.
#[test]
fn seed_case_holds_adaptively_by_default() {
    let (original, mutation) = mutate_fixture("seed-nginx-app.yaml");
    let plan = &mutation.plan;
    assert_eq!((plan.delay, plan.quiet, plan.max_delay), (10, 3, 60));
    assert_eq!(plan.grace_after, 60 + 5 + 30);
    let nginx = &plan.containers[0];
    assert_eq!(nginx.hook, Some(HookKind::Helper));
    assert_eq!(
        nginx.timing(),
        Some(&migrating(held(10, 3, 60, 0, vec![]), "SIGHUP"))
    );
    let app = &plan.containers[1];
    assert_eq!(app.hook, Some(HookKind::Helper), "the app follows nginx");
    assert_eq!(app.timing(), Some(&following(10, vec![443], 60, 5)));
    // SIGTERM no earlier than today's D + S; B left after the latest signal.
    assert_eq!(app.earliest_signal(), Some(15));
    assert_eq!(app.budget_after_latest(plan.grace_seconds()), Some(30));
    // The helper's bound: the latest signal plus B, less the 2 s nginx gets for its fast stop
    // (SIGTERM) when long streams still keep its graceful stop going.
    assert_eq!(nginx.hook_max_seconds(), Some(88));
    assert_eq!(nginx.fast_signal(), Some("SIGTERM"));
    assert_eq!(plan.containers[1].fast_signal(), None);

    let pod = apply_checked(&original, &mutation);
    let nginx_args = helper_args(pre_stop(&pod, "nginx").unwrap());
    assert!(
        nginx_args
            .windows(4)
            .any(|w| w == ["--quiet", "3s", "--hold-max", "60s"]),
        "{nginx_args:?}"
    );
    let app_args = helper_args(pre_stop(&pod, "application").unwrap());
    assert!(
        app_args.windows(6).any(|w| w
            == [
                "--follow",
                "443",
                "--follow-until",
                "60s",
                "--stagger",
                "5s"
            ]),
        "{app_args:?}"
    );
    assert_eq!(hook_delay(pre_stop(&pod, "application").unwrap()), Some(15));
    let status = &pod.metadata.annotations.as_ref().unwrap()["drain.io/status"];
    assert!(
        status.contains("\"nginx\":\"proxy:helper:10:60\""),
        "{status}"
    );
    assert!(
        status.contains("\"application\":\"app:helper:15:65\""),
        "{status}"
    );
}

/// The seed case with the adaptive hold off: the fixed plan (nginx at D, the app at D + S).
#[test]
fn seed_case_nginx_then_app() {
    let original = fixture("pods/seed-nginx-app.yaml");
    let mutation = mutate(&original, &fixed_hold(), version("1.34"));
    let plan = &mutation.plan;
    assert_eq!(plan.outcome, Outcome::Mutate);
    assert_eq!(
        (plan.delay, plan.stagger, plan.shutdown_budget),
        (10, 5, 30)
    );
    assert_eq!(plan.grace_after, 45);
    let nginx = &plan.containers[0];
    assert_eq!(
        (nginx.role, nginx.earliest_signal()),
        (Role::Proxy, Some(10))
    );
    // nginx needs the helper to receive SIGQUIT, its graceful stop.
    assert_eq!(nginx.hook, Some(HookKind::Helper));
    assert_eq!(nginx.signal, Some("SIGQUIT"));
    let app = &plan.containers[1];
    assert_eq!((app.role, app.earliest_signal()), (Role::App, Some(15)));
    assert_eq!(app.hook, Some(HookKind::Sleep));
    assert_eq!(app.budget_after_latest(plan.grace_seconds()), Some(30));

    let pod = apply_checked(&original, &mutation);
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.termination_grace_period_seconds, Some(45));
    assert_eq!(hook_delay(pre_stop(&pod, "nginx").unwrap()), Some(10));
    assert_eq!(hook_delay(pre_stop(&pod, "application").unwrap()), Some(15));
    assert_eq!(
        pre_stop(&pod, "application")
            .unwrap()
            .sleep
            .as_ref()
            .map(|s| s.seconds),
        Some(15)
    );
    let nginx_args = helper_args(pre_stop(&pod, "nginx").unwrap());
    assert_eq!(
        &nginx_args[..4],
        ["/.drain/drain-helper", "prestop", "--delay", "10s"]
    );
    assert!(nginx_args.windows(2).any(|w| w == ["--signal", "SIGQUIT"]));
    // The helper arrives through a regular container placed first (a pod that restarts its
    // containers, on 1.34: tests/delivery.rs), restricted-compliant; no init container.
    assert!(spec.init_containers.is_none());
    let init = &spec.containers[0];
    assert_eq!(init.name, "drain-helper");
    assert_eq!(
        init.command.as_deref().unwrap(),
        ["/drain-helper", "install", "/.drain", "--then", "sleep"]
    );
    assert!(
        restricted_violations(init, None).is_empty(),
        "{:?}",
        restricted_violations(init, None)
    );
    // A BestEffort pod stays BestEffort: ephemeral storage only (tests/delivery.rs has the
    // Guaranteed and Burstable cases).
    let resources = init.resources.as_ref().unwrap();
    assert!(
        resources
            .requests
            .as_ref()
            .unwrap()
            .contains_key("ephemeral-storage")
    );
    assert!(resources.limits.is_none());
    let mount = &container(&pod, "nginx").volume_mounts.as_ref().unwrap()[0];
    assert_eq!(
        (mount.mount_path.as_str(), mount.read_only),
        ("/.drain", Some(true))
    );
    // The app needs no helper: no mount there.
    assert!(container(&pod, "application").volume_mounts.is_none());
    // The status annotation records the plan.
    let status = &pod.metadata.annotations.as_ref().unwrap()["drain.io/status"];
    assert!(
        status.contains("\"application\":\"app:sleep:15\""),
        "{status}"
    );
}

#[test]
fn seed_case_with_sleep_mode_uses_no_helper() {
    let original = fixture("pods/seed-nginx-app.yaml");
    let settings = Settings {
        hook_mode: HookMode::Sleep,
        ..Settings::default()
    };
    let mutation = mutate(&original, &settings, version("1.34"));
    assert!(mutation.plan.helper.is_none());
    assert!(
        mutation
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("graceful stop signal"))
    );
    let (_, pod) = apply(&original, &mutation);
    validate(&pod).unwrap();
    assert_eq!(
        pre_stop(&pod, "nginx")
            .unwrap()
            .sleep
            .as_ref()
            .unwrap()
            .seconds,
        10
    );
    assert_eq!(pod.spec.unwrap().termination_grace_period_seconds, Some(45));
}

/// A lone app: the helper where the native sleep may be missing, and then it holds adaptively
/// (M + B); the native sleep from 1.30, fixed at D (D + B). The pod's own 60 s grace is B.
#[rstest]
#[case::unknown_version(None, HookKind::Helper, 60 + 60)]
#[case::old_cluster(Some("1.29"), HookKind::Helper, 60 + 60)]
#[case::sleep_available(Some("1.30"), HookKind::Sleep, 10 + 60)]
fn auto_picks_the_helper_when_sleep_is_not_known_to_exist(
    #[case] kube: Option<&str>,
    #[case] expected: HookKind,
    #[case] grace: i64,
) {
    let original = fixture("pods/single-app.yaml");
    let mutation = mutate(&original, &Settings::default(), kube.and_then(version));
    let api = &mutation.plan.containers[0];
    assert_eq!(api.hook, Some(expected));
    assert_eq!(
        api.timing().map(|t| t.is_adaptive()),
        Some(expected == HookKind::Helper)
    );
    assert_eq!(mutation.plan.grace_after, grace);
    apply_checked(&original, &mutation);
}

#[test]
fn existing_hooks_are_chained_or_kept() {
    let (original, mutation) = mutate_fixture("existing-hooks.yaml");
    let plan = &mutation.plan;
    let by_name = |n: &str| plan.containers.iter().find(|c| c.name == n).unwrap();
    assert_eq!(by_name("exec-app").hook, Some(HookKind::Helper));
    assert_eq!(by_name("http-app").hook, Some(HookKind::Helper));
    // A user's native sleep of 5 s adds to the 10 s delay, no helper needed.
    assert_eq!(by_name("sleepy").hook, Some(HookKind::Sleep));
    assert_eq!(by_name("sleepy").earliest_signal(), Some(15));
    // tcpSocket cannot be chained: left as it is, with a warning.
    assert_eq!(by_name("tcp-app").action, Action::Untouched);
    assert!(mutation.plan.warnings.iter().any(|w| w.contains("tcp-app")));

    let pod = apply_checked(&original, &mutation);
    let exec = helper_args(pre_stop(&pod, "exec-app").unwrap());
    let tail = exec.iter().position(|w| w == "--then-exec").unwrap();
    assert_eq!(
        exec[tail..],
        [
            "--then-exec",
            "--",
            "/bin/sh",
            "-c",
            "curl -X POST localhost:8080/quiesce"
        ]
    );
    let http = helper_args(pre_stop(&pod, "http-app").unwrap());
    assert!(
        http.windows(2)
            .any(|w| w == ["--then-http-get", "http://127.0.0.1:9000/shutdown"])
    );
    assert_eq!(
        pre_stop(&pod, "tcp-app")
            .unwrap()
            .tcp_socket
            .as_ref()
            .unwrap()
            .port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(7000)
    );
    // The chaining containers run the helper, so they hold adaptively: M + B.
    assert_eq!(pod.spec.unwrap().termination_grace_period_seconds, Some(90));
}

#[test]
fn existing_exec_hook_is_kept_when_mode_is_sleep() {
    let original = fixture("pods/existing-hooks.yaml");
    let settings = Settings {
        hook_mode: HookMode::Sleep,
        ..Settings::default()
    };
    let mutation = mutate(&original, &settings, version("1.34"));
    let exec = mutation
        .plan
        .containers
        .iter()
        .find(|c| c.name == "exec-app")
        .unwrap();
    assert_eq!(exec.action, Action::Untouched);
    let (_, pod) = apply(&original, &mutation);
    validate(&pod).unwrap();
    assert_eq!(
        helper_args(pre_stop(&pod, "exec-app").unwrap())[0],
        "/bin/sh",
        "the user's hook is never dropped"
    );
}

#[test]
fn native_sidecar_mesh_and_excluded_containers_are_untouched() {
    let (original, mutation) = mutate_fixture("native-sidecar-mesh.yaml");
    let plan = &mutation.plan;
    let role = |n: &str| {
        let c = plan.containers.iter().find(|c| c.name == n).unwrap();
        (c.role, c.action.as_str())
    };
    assert_eq!(role("app"), (Role::App, "planned"));
    assert_eq!(role("istio-proxy"), (Role::MeshProxy, "untouched"));
    assert_eq!(role("metrics"), (Role::Excluded, "untouched"));
    assert_eq!(role("edge"), (Role::NativeSidecar, "untouched"));
    assert!(plan.containers.iter().all(|c| c.name != "migrate"));
    // The native sidecar proxy is not a front proxy for the stagger, and we say so.
    assert!(!plan.has_front_proxy);
    assert!(
        mutation
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("\"edge\"") && w.contains("native sidecar"))
    );
    let pod = apply_checked(&original, &mutation);
    assert!(pre_stop(&pod, "istio-proxy").is_none());
    assert!(pre_stop(&pod, "metrics").is_none());
    assert!(pre_stop(&pod, "edge").is_none());
    assert_eq!(hook_delay(pre_stop(&pod, "app").unwrap()), Some(10));
}

#[rstest]
#[case::new_cluster(Some("1.34"), true)]
#[case::old_cluster(Some("1.29"), false)]
#[case::unknown(None, false)]
fn windows_pods_get_native_sleep_only(#[case] kube: Option<&str>, #[case] mutated: bool) {
    let original = fixture("pods/windows.yaml");
    let mutation = mutate(&original, &Settings::default(), kube.and_then(version));
    assert!(
        mutation.plan.helper.is_none(),
        "drain-helper never goes into Windows pods"
    );
    if mutated {
        let (_, pod) = apply(&original, &mutation);
        validate(&pod).unwrap();
        assert_eq!(
            pre_stop(&pod, "iis")
                .unwrap()
                .sleep
                .as_ref()
                .unwrap()
                .seconds,
            10
        );
    } else {
        assert!(mutation.patch.is_empty());
        assert!(mutation.plan.warnings.iter().any(|w| w.contains("Windows")));
    }
}

#[test]
fn grace_zero_is_an_explicit_request_for_immediate_kill() {
    let (_, mutation) = mutate_fixture("grace-zero.yaml");
    assert_eq!(mutation.plan.outcome, Outcome::Skipped);
    assert!(mutation.patch.is_empty());
    assert!(
        mutation
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("immediate kill"))
    );
}

#[test]
fn opted_out_pods_are_untouched_even_with_bad_annotations() {
    let (_, mutation) = mutate_fixture("opted-out.yaml");
    assert_eq!(mutation.plan.outcome, Outcome::Skipped);
    assert!(mutation.patch.is_empty());
}

#[test]
fn names_we_add_never_collide() {
    // The init container (tests/delivery.rs: the first container).
    let original = fixture("pods/name-collision.yaml");
    let mut settings = Settings::default();
    settings.helper.delivery = HelperDelivery::InitContainer;
    let mutation = mutate(&original, &settings, version("1.34"));
    let helper = mutation.plan.helper.clone().unwrap();
    assert_eq!(helper.installer_name(), Some("drain-helper-2"));
    assert_eq!(helper.volume, "drain-helper-3");
    let pod = apply_checked(&original, &mutation);
    let init = pod.spec.as_ref().unwrap().init_containers.as_ref().unwrap();
    assert_eq!(init[0].name, "drain-helper-2");
    assert_eq!(
        init[1].name, "drain-helper",
        "the user's init container stays"
    );
}

#[test]
fn notify_and_wait_idle_go_through_the_helper() {
    let (original, mutation) = mutate_fixture("notify-wait-idle.yaml");
    let plan = &mutation.plan;
    let app = &plan.containers[0];
    assert_eq!(app.hook, Some(HookKind::Helper));
    let notify: Vec<String> = app.notify.iter().map(ToString::to_string).collect();
    assert_eq!(notify, ["http://127.0.0.1:8080/drain"]);
    assert_eq!(app.wait_idle, [8080]);
    // Only the container that declares the port waits for it; notify is sent once per pod.
    let worker = &plan.containers[1];
    assert!(worker.wait_idle.is_empty() && worker.notify.is_empty());
    assert_eq!(worker.hook, Some(HookKind::Sleep));
    // M=60 (the app runs the helper, so it holds adaptively), B=20 (the pod's own grace);
    // waiting for idle may take B more: 60 + 20 + 20.
    assert_eq!(plan.grace_after, 100);
    let pod = apply_checked(&original, &mutation);
    let args = helper_args(pre_stop(&pod, "app").unwrap());
    assert!(args.windows(2).any(|w| w == ["--wait-idle", "8080"]));
    // The helper never runs past M + B, so the app still gets B after SIGTERM.
    assert!(args.windows(2).any(|w| w == ["--max", "80s"]), "{args:?}");
}

#[test]
fn restricted_pod_with_shared_pid_namespace() {
    let (original, mutation) = mutate_fixture("restricted-haproxy.yaml");
    let plan = &mutation.plan;
    assert_eq!(plan.containers[0].role, Role::Proxy);
    // haproxy would get SIGUSR1, but with a shared PID namespace PID 1 is not haproxy.
    assert_eq!(plan.containers[0].signal, None);
    assert!(
        mutation
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("shareProcessNamespace"))
    );
    assert_eq!(plan.containers[1].earliest_signal(), Some(13));
    let pod = apply_checked(&original, &mutation);
    let spec = pod.spec.as_ref().unwrap();
    for c in spec.init_containers.iter().flatten() {
        assert!(restricted_violations(c, spec.security_context.as_ref()).is_empty());
    }
}

#[rstest]
#[case::unit("bad-annotation.yaml", "drain.io/delay", "\"10 seconds\"")]
#[case::above_maximum("over-maximum.yaml", "drain.io/shutdown-budget", "above the maximum")]
fn bad_input_is_denied_with_a_message_naming_the_annotation(
    #[case] name: &str,
    #[case] key: &str,
    #[case] detail: &str,
) {
    let pod = fixture(&format!("pods/{name}"));
    match denial(&pod) {
        Some(message) => {
            assert!(message.contains(key), "{message}");
            assert!(message.contains(detail), "{message}");
            assert!(message.contains("for example"), "{message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn namespace_annotations_apply_below_pod_annotations() {
    let original = fixture("pods/seed-nginx-app.yaml");
    let namespace: BTreeMap<String, String> = [
        ("drain.io/delay".to_string(), "20s".to_string()),
        ("drain.io/stagger".to_string(), "1".to_string()),
    ]
    .into();
    let mutation = mutate_with_namespace(
        &original,
        &Settings::default(),
        version("1.34"),
        Some(&namespace),
    );
    assert_eq!(mutation.plan.containers[1].earliest_signal(), Some(21));
    // The app's latest SIGTERM: M + S, M raised by as much as D (10 s more: 70); then B.
    assert_eq!(mutation.plan.max_delay, 70);
    assert_eq!(mutation.plan.grace_after, 70 + 1 + 30);
}

#[test]
fn grace_above_maximum_from_the_pods_own_grace_is_skipped_not_denied() {
    let mut pod = fixture("pods/single-app.yaml");
    pod["spec"]["terminationGracePeriodSeconds"] = 3599.into();
    let mutation = mutate(&pod, &Settings::default(), version("1.34"));
    assert_eq!(mutation.plan.outcome, Outcome::Skipped);
    assert!(mutation.patch.is_empty());
    assert!(mutation.plan.warnings.iter().any(|w| w.contains("maximum")));
}

#[test]
fn reinvocation_plans_containers_added_since() {
    let original = fixture("pods/seed-nginx-app.yaml");
    let first = mutate(&original, &Settings::default(), version("1.34"));
    let (mut patched, _) = apply(&original, &first);
    // Another webhook adds a regular container after our first run.
    patched["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "log-shipper", "image": "fluent/fluent-bit:3"}));
    let second = mutate(&patched, &Settings::default(), version("1.34"));
    let planned: Vec<&str> = second.plan.planned().map(|c| c.name.as_str()).collect();
    assert_eq!(planned, ["log-shipper"]);
    let (after, pod) = apply(&patched, &second);
    validate(&pod).unwrap();
    // Behind the adaptive proxy of the first run (its record keeps the range 10-60 s): it
    // follows the proxy's listeners from D, then S.
    let shipper = second.plan.planned().next().unwrap();
    assert_eq!(shipper.earliest_signal(), Some(15));
    assert_eq!(shipper.latest_signal(), Some(65));
    let args = helper_args(pre_stop(&pod, "log-shipper").unwrap());
    assert!(
        args.windows(2).any(|w| w == ["--follow", "443"]),
        "{args:?}"
    );
    // Earlier containers unchanged, B still the original 30 s: grace stays M + S + B.
    assert_eq!(
        pod.spec.as_ref().unwrap().termination_grace_period_seconds,
        Some(95)
    );
    assert_eq!(
        after["spec"]["containers"].as_array().unwrap()[..3],
        patched["spec"]["containers"].as_array().unwrap()[..3]
    );
    // Only one installer: the first container, not planned itself.
    assert!(
        !second
            .plan
            .containers
            .iter()
            .any(|c| c.name == "drain-helper")
    );
    let names: Vec<_> = pod
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        names,
        ["drain-helper", "nginx", "application", "log-shipper"]
    );
    let third = mutate(&after, &Settings::default(), version("1.34"));
    assert!(third.patch.is_empty());
}

#[test]
fn unknown_fields_survive_the_patch() {
    let mut pod = fixture("pods/seed-nginx-app.yaml");
    pod["spec"]["futureField"] = serde_json::json!({"x": 1});
    pod["spec"]["containers"][1]["futureContainerField"] = true.into();
    let mutation = mutate(&pod, &Settings::default(), version("1.34"));
    let (patched, _) = apply(&pod, &mutation);
    assert_eq!(patched["spec"]["futureField"]["x"], 1);
    // Index 2: the helper's installer came first.
    assert_eq!(patched["spec"]["containers"][2]["name"], "application");
    assert_eq!(
        patched["spec"]["containers"][2]["futureContainerField"],
        true
    );
}

#[test]
fn proxies_annotation_replaces_image_detection() {
    let mut pod = fixture("pods/seed-nginx-app.yaml");
    pod["metadata"]["annotations"] = serde_json::json!({"drain.io/proxies": "application"});
    let mutation = mutate(&pod, &Settings::default(), version("1.34"));
    let roles: Vec<Role> = mutation.plan.containers.iter().map(|c| c.role).collect();
    assert_eq!(roles, [Role::App, Role::Proxy]);
    assert_eq!(mutation.plan.containers[0].earliest_signal(), Some(15));
}

#[test]
fn a_container_that_cannot_mount_the_helper_does_not_grow_the_grace_period() {
    // "waiter" would wait for idle connections (delay + 2B of grace) through the helper, but
    // /.drain is taken in it; "plain" gets a native sleep (delay + B).
    let pod = serde_json::json!({
        "metadata": {"name": "taken", "annotations": {"drain.io/wait-idle": "8080"}},
        "spec": {
            "volumes": [{"name": "mine", "emptyDir": {}}],
            "containers": [
                {
                    "name": "waiter",
                    "image": "ghcr.io/acme/app:1",
                    "ports": [{"containerPort": 8080}],
                    "volumeMounts": [{"name": "mine", "mountPath": "/.drain"}],
                },
                {"name": "plain", "image": "ghcr.io/acme/worker:1"},
            ],
        },
    });
    let mutation = mutate(&pod, &Settings::default(), version("1.34"));
    assert_eq!(mutation.plan.containers[0].action, Action::Untouched);
    assert_eq!(mutation.plan.containers[1].hook, Some(HookKind::Sleep));
    // Only "plain" counts: 10 s + 30 s, not the 10 + 30 + 30 s "waiter" would have needed.
    assert_eq!(mutation.plan.grace_after, 40);
    assert!(mutation.plan.helper.is_none());
    assert!(mutation.plan.warnings.iter().any(|w| w.contains("/.drain")));
    let pod = apply_checked(&pod, &mutation);
    assert_eq!(pod.spec.unwrap().termination_grace_period_seconds, Some(40));
}

/// `drain.io/notify` values drain-helper's parser refuses are denials naming the annotation;
/// both of the first two were once admitted, and the injected hook exited 2 before any delay.
#[rstest]
#[case("http://127.0.0.1:8080/drain#now")]
#[case("http://127.0.0.1:+80/x")]
#[case("http://127.0.0.1:8080/a b")]
#[case("http://[::1:8080/x")]
#[case("http://10.0.0.1:8080/drain")]
fn notify_urls_the_helper_refuses_are_denied(#[case] url: &str) {
    let pod: Value = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "annotations": {"drain.io/notify": url}},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1"}]},
    });
    match denial(&pod) {
        Some(message) => {
            assert!(message.contains("drain.io/notify"), "{message}");
            assert!(message.contains("for example"), "{message}");
        }
        other => panic!("{url}: {other:?}"),
    }
}

/// A user's hook that drain-helper could not run after the delay leaves the container as it
/// is, with a warning, instead of a hook that fails: an httpGet path with a fragment or a
/// space, an exec command whose program is empty.
#[rstest]
#[case(serde_json::json!({"httpGet": {"path": "/stop#now", "port": 8080}}), "httpGet")]
#[case(serde_json::json!({"httpGet": {"path": "/stop now", "port": 8080}}), "httpGet")]
#[case(serde_json::json!({"exec": {"command": ["", "-c", "true"]}}), "drain-helper would refuse")]
fn user_hooks_the_helper_cannot_run_are_left_alone(#[case] handler: Value, #[case] expected: &str) {
    let pod: Value = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{
            "name": "app", "image": "ghcr.io/acme/app:1",
            "ports": [{"containerPort": 8080}],
            "lifecycle": {"preStop": handler},
        }]},
    });
    let mutation = mutate(&pod, &Settings::default(), version("1.34"));
    let app = &mutation.plan.containers[0];
    assert_eq!(app.action, Action::Untouched, "{:?}", mutation.plan);
    let warning = mutation.plan.warnings.join("\n");
    assert!(warning.contains("\"app\" left untouched"), "{warning}");
    assert!(warning.contains(expected), "{warning}");
    let (patched, _) = apply(&pod, &mutation);
    assert_eq!(
        patched["spec"]["containers"][0]["lifecycle"],
        pod["spec"]["containers"][0]["lifecycle"]
    );
}

/// The planned helper command is the helper's own rendering, and its parser reads back the
/// same arguments (seed case: the proxy's delay, --max, graceful signal, hold and migration,
/// and where its drain record goes).
#[test]
fn the_planned_helper_command_parses_as_planned() {
    use drain_webhook::helper::args::{Command, parse};
    let (_, mutation) = mutate_fixture("seed-nginx-app.yaml");
    let nginx = &mutation.plan.containers[0];
    let command = nginx.helper_command().expect("nginx runs the helper");
    assert_eq!(
        command,
        [
            "/.drain/drain-helper",
            "prestop",
            "--delay",
            "10s",
            "--max",
            "88s",
            "--signal",
            "SIGQUIT",
            "--fast-signal",
            "SIGTERM",
            "--quiet",
            "3s",
            "--hold-max",
            "60s",
            "--migrate",
            "SIGHUP",
            "--record",
            "/dev/termination-log",
            "--role",
            "proxy"
        ]
    );
    let words: Vec<std::ffi::OsString> = command[1..].iter().map(Into::into).collect();
    assert_eq!(
        parse(&words),
        Ok(Command::Prestop(nginx.helper_args().unwrap()))
    );
}

/// From Kubernetes 1.35 (image volumes on by default), where every node's runtime mounts them,
/// the helper comes as its own image mounted read-only at /.drain: no installer, no emptyDir,
/// no copy. Elsewhere `auto` gives a first container (this pod restarts its containers). Forced
/// either way by the setting, whatever the version and the nodes.
#[rstest]
#[case(HelperDelivery::Auto, "1.35", Some(true), true)]
#[case(HelperDelivery::Auto, "1.35", Some(false), false)]
#[case(HelperDelivery::Auto, "1.35", None, false)]
#[case(HelperDelivery::Auto, "1.34", Some(true), false)]
#[case(HelperDelivery::ImageVolume, "1.32", None, true)]
#[case(HelperDelivery::InitContainer, "1.36", Some(true), false)]
fn the_helper_comes_as_an_image_volume_where_the_cluster_has_them(
    #[case] delivery: HelperDelivery,
    #[case] kube: &str,
    #[case] nodes: Option<bool>,
    #[case] image_volume: bool,
) {
    let original = fixture("pods/seed-nginx-app.yaml");
    let mut settings = Settings::default();
    settings.helper.delivery = delivery;
    let mutation = mutate_with_nodes(&original, &settings, version(kube), nodes);
    let helper = mutation
        .plan
        .helper
        .as_ref()
        .expect("nginx needs the helper");
    assert_eq!(helper.delivery() == Delivery::ImageVolume, image_volume);
    let (patched, pod) = apply(&original, &mutation);
    validate(&pod).unwrap_or_else(|e| panic!("{e:#?}"));
    let spec = pod.spec.as_ref().unwrap();
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == helper.volume)
        .expect("the helper volume");
    let init = spec.init_containers.iter().flatten().count();
    if image_volume {
        assert_eq!(init, 0, "no init container with an image volume");
        assert_eq!(spec.containers.len(), 2, "no first container either");
        let image = volume.image.as_ref().expect("an image volume");
        assert_eq!(
            image.reference.as_deref(),
            Some(settings.helper.image.as_str())
        );
        assert_eq!(image.pull_policy.as_deref(), Some("IfNotPresent"));
        assert!(volume.empty_dir.is_none());
    } else {
        let added = init + spec.containers.len() - 2;
        assert_eq!(added, 1, "one installer, init or first");
        assert!(volume.image.is_none() && volume.empty_dir.is_some());
    }
    let mount = container(&pod, "nginx")
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == helper.volume)
        .expect("nginx mounts the helper");
    assert_eq!(
        (mount.mount_path.as_str(), mount.read_only),
        ("/.drain", Some(true))
    );
    // The exec hook is the same either way: the image holds /drain-helper at its root.
    let hook = pre_stop(&pod, "nginx").unwrap().exec.as_ref().unwrap();
    assert_eq!(hook.command.as_ref().unwrap()[0], "/.drain/drain-helper");
    // A second run (any version, any delivery) recognises the helper and changes nothing.
    for again in [version("1.34"), version("1.35"), None] {
        let second = mutate(&patched, &Settings::default(), again);
        assert!(second.patch.is_empty(), "{:#?}", second.patch);
    }
}

/// A container added since an image-volume run (reinvocation) mounts the same helper volume;
/// an image volume of the drain-helper image is recognised even without the record.
#[test]
fn reinvocation_reuses_the_helpers_image_volume() {
    let original = fixture("pods/seed-nginx-app.yaml");
    let mutation = mutate_with_nodes(&original, &Settings::default(), version("1.35"), Some(true));
    let (mut patched, _) = apply(&original, &mutation);
    let mut added = patched["spec"]["containers"][0].clone();
    added["name"] = "edge".into();
    added.as_object_mut().unwrap().remove("lifecycle");
    added.as_object_mut().unwrap().remove("volumeMounts");
    patched["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(added);
    // The record and the volume decide, not the nodes of this run.
    let again = mutate_with_nodes(&patched, &Settings::default(), version("1.35"), None);
    let (_, pod) = apply(&patched, &again);
    validate(&pod).unwrap_or_else(|e| panic!("{e:#?}"));
    let volumes: Vec<_> = pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .iter()
        .flatten()
        .collect();
    assert_eq!(volumes.len(), 1, "one helper volume: {volumes:#?}");
    let edge_mounts = container(&pod, "edge").volume_mounts.as_ref().unwrap();
    assert_eq!(edge_mounts[0].name, volumes[0].name);
}

/// `drain.io/graceful-stop: image` on the pod or its namespace: the official nginx image's
/// STOPSIGNAL (SIGQUIT) is graceful, so with a fixed hold nginx needs no helper where the
/// native sleep exists (the adaptive hold always runs the helper in a front proxy).
#[rstest]
#[case::sleep_available(Some("1.30"), true, false)]
#[case::newer(Some("1.34"), false, false)]
#[case::old_cluster(Some("1.29"), false, true)]
#[case::unknown_version(None, true, true)]
fn graceful_stop_image_drops_the_helper_where_the_sleep_action_exists(
    #[case] kube: Option<&str>,
    #[case] on_namespace: bool,
    #[case] helper: bool,
) {
    let mut pod = fixture("pods/seed-nginx-app.yaml");
    let annotation: BTreeMap<String, String> =
        [("drain.io/graceful-stop".to_string(), "image".to_string())].into();
    if !on_namespace {
        pod["metadata"]["annotations"] = serde_json::json!(annotation);
    }
    let mutation = mutate_with_namespace(
        &pod,
        &fixed_hold(),
        kube.and_then(version),
        on_namespace.then_some(&annotation),
    );
    let nginx = &mutation.plan.containers[0];
    assert_eq!(nginx.role, Role::Proxy);
    assert_eq!(
        nginx.signal, None,
        "no --signal: the image's own is graceful"
    );
    let (_, patched) = apply(&pod, &mutation);
    validate(&patched).unwrap();
    // The installer: a first container (this pod restarts its containers).
    let init: Vec<_> = patched
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .filter(|c| c.name == "drain-helper")
        .collect();
    let handler = pre_stop(&patched, "nginx").unwrap();
    assert_eq!(hook_delay(handler), Some(10));
    if helper {
        assert_eq!(nginx.hook, Some(HookKind::Helper));
        assert!(!helper_args(handler).iter().any(|a| a == "--signal"));
        assert_eq!(init.len(), 1);
    } else {
        assert_eq!(nginx.hook, Some(HookKind::Sleep));
        assert_eq!(handler.sleep.as_ref().map(|s| s.seconds), Some(10));
        assert!(init.is_empty(), "no init container: {init:?}");
    }
}

#[test]
fn graceful_stop_with_another_value_is_denied_with_an_example() {
    let mut pod = fixture("pods/seed-nginx-app.yaml");
    pod["metadata"]["annotations"] = serde_json::json!({"drain.io/graceful-stop": "SIGQUIT"});
    match denial(&pod) {
        Some(message) => {
            assert!(message.contains("drain.io/graceful-stop"), "{message}");
            assert!(
                message.contains("for example drain.io/graceful-stop: \"image\""),
                "{message}"
            );
        }
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// `drain.io/profile: aws-nlb`: D becomes the profile's documented floor (120 s); a lower
/// explicit delay is kept and warned about; the plan names the profile.
#[test]
fn aws_nlb_profile_raises_the_delay_to_its_floor() {
    let mut pod = fixture("pods/single-app.yaml");
    pod["metadata"]["annotations"] = serde_json::json!({"drain.io/profile": "aws-nlb"});
    let mutation = mutate(&pod, &Settings::default(), version("1.34"));
    assert_eq!(mutation.plan.delay, 120);
    assert_eq!(mutation.plan.profile.map(|p| p.name), Some("aws-nlb"));
    assert!(
        mutation.plan.warnings.is_empty(),
        "{:?}",
        mutation.plan.warnings
    );
    let (_, patched) = apply(&pod, &mutation);
    validate(&patched).unwrap();
    let name = &patched.spec.as_ref().unwrap().containers[0].name;
    assert_eq!(hook_delay(pre_stop(&patched, name).unwrap()), Some(120));
    assert_eq!(mutation.plan.grace_after, 180);

    // The profile from the namespace, a lower delay on the pod: kept, with a warning.
    let namespace: BTreeMap<String, String> =
        [("drain.io/profile".to_string(), "aws-nlb".to_string())].into();
    pod["metadata"]["annotations"] = serde_json::json!({"drain.io/delay": "20s"});
    let mutation = mutate_with_namespace(
        &pod,
        &Settings::default(),
        version("1.34"),
        Some(&namespace),
    );
    assert_eq!(mutation.plan.delay, 20);
    assert!(
        mutation
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("drain.io/delay") && w.contains("120s") && w.contains("aws-nlb")),
        "{:?}",
        mutation.plan.warnings
    );
}

#[test]
fn an_unknown_profile_is_denied_listing_the_known_ones() {
    let mut pod = fixture("pods/single-app.yaml");
    pod["metadata"]["annotations"] = serde_json::json!({"drain.io/profile": "aws"});
    match denial(&pod) {
        Some(message) => {
            assert!(message.contains("drain.io/profile"), "{message}");
            assert!(message.contains("\"aws\""), "{message}");
            assert!(message.contains("aws-nlb, gke-neg"), "{message}");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// `--profile` is the default of pods and namespaces that name none; theirs wins.
#[test]
fn the_global_profile_applies_below_the_annotation() {
    let settings = Settings {
        profile: drain_webhook::profiles::Catalogue::BUILTIN.find("gke-neg"),
        ..Settings::default()
    };
    let mut pod = fixture("pods/single-app.yaml");
    let mutation = mutate(&pod, &settings, version("1.34"));
    assert_eq!(mutation.plan.delay, 30);
    assert_eq!(mutation.plan.profile.map(|p| p.name), Some("gke-neg"));
    pod["metadata"]["annotations"] = serde_json::json!({"drain.io/profile": "in-cluster"});
    let mutation = mutate(&pod, &settings, version("1.34"));
    // The floor (5 s) is below the default D (10 s): D stays 10.
    assert_eq!(mutation.plan.delay, 10);
    assert_eq!(mutation.plan.profile.map(|p| p.name), Some("in-cluster"));
}

/// When only a profile's floor pushes the grace period above `--max-grace`, the denial names
/// the profile and where it was set, not the pod's own grace period (which is below it).
#[test]
fn a_profile_floor_above_the_maximum_is_denied_naming_the_profile() {
    let denied = |pod: &Value, settings: &Settings| {
        let ctx = pod_context(settings);
        match mutate_pod(pod, &ctx) {
            Err(MutateError::Denied(err)) => err.to_string(),
            Ok(m) => panic!(
                "expected a denial, got {:?} {:?}",
                m.plan.outcome, m.plan.reason
            ),
            Err(other) => panic!("not a denial: {other}"),
        }
    };
    // Grace 60 s (= B) plus the aws-nlb floor of 120 s is 180 s, above a maximum of 150 s.
    let settings = Settings {
        max_grace: 150,
        ..Settings::default()
    };
    let mut pod = fixture("pods/single-app.yaml");
    pod["metadata"]["annotations"] = serde_json::json!({"drain.io/profile": "aws-nlb"});
    let message = denied(&pod, &settings);
    assert!(
        message.contains("180s") && message.contains("150s"),
        "{message}"
    );
    assert!(
        message.contains(
            "drain.io/profile=\"aws-nlb\" (on the pod), whose floor raises drain.io/delay to 120s"
        ),
        "{message}"
    );
    assert!(!message.contains("own grace"), "{message}");
    // The global default names the flag.
    let settings = Settings {
        profile: settings.profiles.find("aws-nlb"),
        ..settings
    };
    let message = denied(&fixture("pods/single-app.yaml"), &settings);
    assert!(
        message.contains("--profile aws-nlb, whose floor"),
        "{message}"
    );
}

/// A pod whose own grace period already makes the plan's exceed the maximum is left as it is:
/// its containers are untouched, and the plan shows none of the hooks, signals or timings they
/// were about to get (they get SIGTERM at T0 and the whole grace period).
#[test]
fn a_pod_whose_own_grace_is_too_long_shows_no_planned_hook() {
    let mut pod = fixture("pods/seed-nginx-app.yaml");
    pod["spec"]["terminationGracePeriodSeconds"] = serde_json::json!(3590);
    let mutation = mutate(&pod, &Settings::default(), version("1.34"));
    let plan = &mutation.plan;
    assert_eq!(plan.outcome, Outcome::Skipped);
    assert!(plan.reason.as_deref().unwrap().contains("own grace period"));
    for c in &plan.containers {
        assert_eq!(c.action, Action::Untouched, "{}", c.name);
        assert_eq!(
            c.note.as_deref(),
            Some("grace period would exceed the maximum")
        );
        assert_eq!((c.hook, c.signal, c.timing()), (None, None, None));
        assert_eq!((c.latest_signal(), c.hook_max_seconds()), (None, None));
        let budget = c.budget_after_latest(plan.grace_seconds());
        assert_eq!((c.earliest_signal(), budget), (Some(0), Some(3590)));
        assert!(c.migrate().is_none() && c.chained.is_none() && c.notify.is_empty());
    }
}

/// Profiles from `--profiles-file` are named like the built-ins, and may replace one.
#[test]
fn a_profile_from_the_file_sets_the_floors() {
    let profiles = drain_webhook::profiles::Catalogue::load(
        r#"{"profiles": [
            {"name": "corp-f5", "delayFloor": 45, "budgetFloor": 90, "note": "F5 pool sync"},
            {"name": "in-cluster", "delayFloor": 12, "note": "our API server is slow"}
        ]}"#,
        "test",
    )
    .unwrap();
    let settings = Settings {
        profiles,
        ..Settings::default()
    };
    let mut pod = fixture("pods/single-app.yaml");
    pod["metadata"]["annotations"] = serde_json::json!({"drain.io/profile": "corp-f5"});
    let mutation = mutate(&pod, &settings, version("1.34"));
    assert_eq!(
        (mutation.plan.delay, mutation.plan.shutdown_budget),
        (45, 90)
    );
    assert_eq!(mutation.plan.grace_after, 135);
    let (patched, typed) = apply(&pod, &mutation);
    validate(&typed).expect("the API server accepts it");
    assert_eq!(
        typed.spec.unwrap().termination_grace_period_seconds,
        Some(135)
    );
    assert!(
        mutate(&patched, &settings, version("1.34"))
            .patch
            .is_empty()
    );
    pod["metadata"]["annotations"] = serde_json::json!({"drain.io/profile": "in-cluster"});
    assert_eq!(mutate(&pod, &settings, version("1.34")).plan.delay, 12);
    // The built-in catalogue does not know the file's names.
    pod["metadata"]["annotations"] = serde_json::json!({"drain.io/profile": "corp-f5"});
    let message = denial(&pod).expect("unknown with the built-ins only");
    assert!(message.contains("no such profile"), "{message}");
}

/// A later webhook lowered the grace period after our first run (reinvocation): a native sleep
/// of ours above it is a denial naming the cause (the API server would refuse the pod anyway);
/// a drain that still validates but lost part of B is admitted with a warning.
#[test]
fn a_grace_lowered_after_us_is_denied_when_a_sleep_no_longer_fits() {
    let settings = Settings {
        hook_mode: HookMode::Sleep,
        ..Settings::default()
    };
    let pod = fixture("pods/seed-nginx-app.yaml");
    let first = mutate(&pod, &settings, version("1.34"));
    // nginx sleeps D = 10 s, the application D + S = 15 s; grace 15 + 30.
    assert_eq!(first.plan.grace_after, 45);
    let (patched, _) = apply(&pod, &first);
    let rerun = |grace: i64| {
        let mut lowered = patched.clone();
        lowered["spec"]["terminationGracePeriodSeconds"] = grace.into();
        let ctx = pod_context(&settings);
        (lowered.clone(), mutate_pod(&lowered, &ctx))
    };
    match rerun(12) {
        (_, Err(MutateError::Denied(err))) => {
            let message = err.to_string();
            assert!(
                message.contains("lowered to 12s after drain-webhook planned 45s")
                    && message.contains("\"application\" has the 15s preStop sleep"),
                "{message}"
            );
        }
        (_, other) => panic!("expected a denial, got {:?}", other.map(|m| m.plan.outcome)),
    }
    // 20 s still validates (every sleep <= 20) but leaves the application 5 s, not 30.
    let (lowered, result) = rerun(20);
    let mutation = result.expect("admitted");
    assert!(
        mutation.patch.is_empty(),
        "nothing rewritten: {:?}",
        mutation.patch
    );
    assert!(
        mutation.plan.warnings.iter().any(|w| w.contains("lowered to 20s")
            && w.contains("\"application\" now has 5s after its preStop instead of its shutdown budget of 30s")),
        "{:?}",
        mutation.plan.warnings
    );
    let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(lowered).unwrap();
    validate(&typed).expect("valid with every sleep below 20 s");
    // Not lowered: no warning.
    let (_, result) = rerun(45);
    assert!(
        result
            .unwrap()
            .plan
            .warnings
            .iter()
            .all(|w| !w.contains("lowered"))
    );
}

/// Planned grace periods above what spot notices and autoscaler scale-down leave a pod are
/// warned about, for the pods that ask for such nodes (docs/limits.md).
#[test]
fn grace_periods_above_hard_limits_are_warned_about() {
    let warnings = |pod: &Value| {
        mutate(pod, &Settings::default(), version("1.34"))
            .plan
            .warnings
    };
    let limit_warning = |warnings: &[String], what: &str| {
        warnings
            .iter()
            .any(|w| w.contains("the plan needs a grace period") && w.contains(what))
    };
    // single-app: B = its 60 s, D = 10 s: needs 70 s.
    let mut pod = fixture("pods/single-app.yaml");
    assert!(
        !warnings(&pod).iter().any(|w| w.contains("the plan needs")),
        "{:?}",
        warnings(&pod)
    );
    pod["spec"]["nodeSelector"] = serde_json::json!({"cloud.google.com/gke-spot": "true"});
    let found = warnings(&pod);
    assert!(
        limit_warning(&found, "GKE Spot and preemptible VMs give non-system pods")
            && limit_warning(&found, "at most 15s"),
        "{found:?}"
    );
    pod["spec"]["nodeSelector"] = serde_json::json!({"cloud.google.com/gke-preemptible": "true"});
    assert!(limit_warning(&warnings(&pod), "at most 15s"));
    // EC2 spot through Karpenter's label in a required affinity: 120 s, so 70 s is fine ...
    let mut pod = fixture("pods/single-app.yaml");
    pod["spec"]["affinity"] = serde_json::json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}]}]}}});
    assert!(!limit_warning(&warnings(&pod), "EC2 Spot"));
    // ... but not with the aws-nlb floor of 120 s (needs 180 s).
    pod["metadata"]["annotations"] = serde_json::json!({"drain.io/profile": "aws-nlb"});
    assert!(limit_warning(
        &warnings(&pod),
        "an EC2 Spot interruption notice gives pods at most 120s"
    ));
    // Any pod above cluster-autoscaler's default 600 s.
    let mut pod = fixture("pods/single-app.yaml");
    pod["metadata"]["annotations"] = serde_json::json!({"drain.io/shutdown-budget": "10m"});
    assert!(limit_warning(&warnings(&pod), "cluster-autoscaler"));
    // An affinity that merely prefers... or admits on-demand too is not a spot pod.
    let mut pod = fixture("pods/single-app.yaml");
    pod["spec"]["affinity"] = serde_json::json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "cloud.google.com/gke-spot", "operator": "In", "values": ["true", "false"]}]}]}}});
    assert!(!limit_warning(&warnings(&pod), "GKE"));
}

/// A liveness or startup probe whose own grace period is shorter than preStop plus B would
/// cut the drain: warned, per probe; a long enough one is not.
#[test]
fn a_probe_grace_shorter_than_the_drain_is_warned_about() {
    let mut pod = fixture("pods/single-app.yaml");
    // preStop 10 s + B 60 s = 70 s.
    pod["spec"]["containers"][0]["livenessProbe"] =
        serde_json::json!({"tcpSocket": {"port": 8080}, "terminationGracePeriodSeconds": 20});
    pod["spec"]["containers"][0]["startupProbe"] =
        serde_json::json!({"tcpSocket": {"port": 8080}, "terminationGracePeriodSeconds": 70});
    let mutation = mutate(&pod, &Settings::default(), version("1.34"));
    let warned: Vec<&String> = mutation
        .plan
        .warnings
        .iter()
        .filter(|w| w.contains("terminationGracePeriodSeconds"))
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", mutation.plan.warnings);
    assert!(
        warned[0].contains("livenessProbe")
            && warned[0].contains("(20s)")
            && warned[0].contains("70s"),
        "{}",
        warned[0]
    );
}

// ---------------------------------------------------------------------------------------------
// Hook mode native (`drain.io/hook: native`, `--hook-mode native`): the native sleep, plus
// `lifecycle.stopSignal` with a front proxy's graceful signal. The API server's rules for the
// field (KEP-4960 "Cross validation with Pod spec.os.name", k8s.io/kubernetes
// pkg/apis/core/validation/validation.go) are checked on every patched pod by `validate`
// (tests/common/invariants.rs `stop_signal_violations`): a stopSignal needs `spec.os.name`; the
// signal must be a Linux one for `linux`, SIGTERM or SIGKILL for `windows`; and
// validateSleepAction keeps `preStop.sleep.seconds` within terminationGracePeriodSeconds.

/// `pod` with `drain.io/hook: native` (and the other annotations given) on the pod.
fn with_annotations(mut pod: Value, pairs: &[(&str, &str)]) -> Value {
    let annotations = pod["metadata"]
        .as_object_mut()
        .unwrap()
        .entry("annotations")
        .or_insert_with(|| serde_json::json!({}));
    for (key, value) in pairs {
        annotations[*key] = (*value).into();
    }
    pod
}

fn native(pod: Value) -> Value {
    with_annotations(pod, &[("drain.io/hook", "native")])
}

/// Applies and validates, and checks that a second run with the same settings and version
/// changes nothing.
fn apply_native(
    original: &Value,
    mutation: &drain_webhook::mutate::Mutation,
    settings: &Settings,
    kube: Option<&str>,
) -> (Value, k8s_openapi::api::core::v1::Pod) {
    let (patched, pod) = apply(original, mutation);
    if let Err(errors) = validate(&pod) {
        panic!("API server validation would reject the pod: {errors:#?}\n{patched:#}");
    }
    let again = mutate(&patched, settings, kube.and_then(version));
    assert!(
        again.patch.is_empty(),
        "a second run must change nothing, got {:#?}",
        again.patch
    );
    (patched, pod)
}

fn stop_signal_of(pod: &k8s_openapi::api::core::v1::Pod, name: &str) -> Option<String> {
    container(pod, name)
        .lifecycle
        .as_ref()
        .and_then(|l| l.stop_signal.clone())
}

fn sleep_of(pod: &k8s_openapi::api::core::v1::Pod, name: &str) -> Option<i64> {
    pre_stop(pod, name)
        .and_then(|h| h.sleep.as_ref())
        .map(|s| s.seconds)
}

#[test]
fn native_gives_the_proxy_its_graceful_stop_signal_and_needs_no_helper() {
    let original = native(fixture("pods/seed-nginx-app.yaml"));
    let settings = Settings::default();
    let mutation = mutate(&original, &settings, version("1.34"));
    let plan = &mutation.plan;
    let nginx = &plan.containers[0];
    assert_eq!(
        (nginx.hook, nginx.earliest_signal(), nginx.signal),
        (Some(HookKind::Native), Some(10), Some("SIGQUIT"))
    );
    let app = &plan.containers[1];
    assert_eq!(
        (app.hook, app.earliest_signal(), app.signal),
        (Some(HookKind::Sleep), Some(15), None)
    );
    assert!(plan.helper.is_none());
    assert!(plan.adds_os_linux);
    assert_eq!(plan.grace_after, 45);
    // The gate warning, every time a stopSignal is written.
    assert!(
        plan.warnings.iter().any(|w| w.contains("nginx SIGQUIT")
            && w.contains("ContainerStopSignals is alpha and off by default")
            && w.contains("silently drops")
            && w.contains("containerd 2.3+ or CRI-O 1.33+")),
        "{:#?}",
        plan.warnings
    );

    let (patched, pod) = apply_native(&original, &mutation, &settings, Some("1.34"));
    let spec = pod.spec.as_ref().unwrap();
    // k8s-openapi 0.29 (v1_34) has `Lifecycle::stop_signal`: the typed Pod shows the field.
    assert_eq!(stop_signal_of(&pod, "nginx").as_deref(), Some("SIGQUIT"));
    assert_eq!(sleep_of(&pod, "nginx"), Some(10));
    assert_eq!(stop_signal_of(&pod, "application"), None);
    assert_eq!(sleep_of(&pod, "application"), Some(15));
    assert_eq!(spec.os.as_ref().map(|os| os.name.as_str()), Some("linux"));
    assert!(spec.init_containers.is_none() && spec.volumes.is_none());
    assert!(
        patched.to_string().find("drain-helper").is_none(),
        "no helper anywhere: {patched:#}"
    );
    assert_eq!(spec.termination_grace_period_seconds, Some(45));
    let status = &pod.metadata.annotations.as_ref().unwrap()["drain.io/status"];
    assert!(status.contains("\"nginx\":\"proxy:native:10\""), "{status}");
    // Reinvocation reads the record back: native stays native, as it is.
    let again = mutate(&patched, &settings, version("1.34"));
    assert_eq!(again.plan.outcome, Outcome::Unchanged);
    assert!(matches!(
        again.plan.containers[0].action,
        Action::AlreadyPlanned(_)
    ));
    assert_eq!(again.plan.containers[0].hook, Some(HookKind::Native));
}

/// The operator's `--hook-mode native` does the same for every pod; haproxy gets SIGUSR1, and a
/// shared PID namespace does not matter (the kubelet signals the container, not a PID 1 found by
/// the helper).
#[test]
fn native_from_the_flag_gives_haproxy_sigusr1_even_with_a_shared_pid_namespace() {
    let mut original = fixture("pods/restricted-haproxy.yaml");
    original["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("drain.io/hook");
    let settings = Settings {
        hook_mode: HookMode::Native,
        ..Settings::default()
    };
    let mutation = mutate(&original, &settings, version("1.34"));
    let lb = &mutation.plan.containers[0];
    assert_eq!(
        (lb.hook, lb.signal, lb.earliest_signal()),
        (Some(HookKind::Native), Some("SIGUSR1"), Some(10))
    );
    assert!(
        !mutation
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("shareProcessNamespace"))
    );
    let (_, pod) = apply_native(&original, &mutation, &settings, Some("1.34"));
    assert_eq!(stop_signal_of(&pod, "lb").as_deref(), Some("SIGUSR1"));
    // app behind the proxy: D + S (3 s here).
    assert_eq!(sleep_of(&pod, "app"), Some(13));
}

#[test]
fn native_keeps_an_existing_os_name_and_chains_a_user_sleep() {
    let mut original = native(fixture("pods/seed-nginx-app.yaml"));
    original["spec"]["os"] = serde_json::json!({"name": "linux"});
    original["spec"]["containers"][0]["lifecycle"] =
        serde_json::json!({"preStop": {"sleep": {"seconds": 3}}});
    let settings = Settings::default();
    let mutation = mutate(&original, &settings, version("1.34"));
    assert!(!mutation.plan.adds_os_linux);
    let ops = serde_json::to_value(&mutation.patch).unwrap();
    assert!(
        !ops.to_string().contains("\"/spec/os\""),
        "os is the user's: {ops:#}"
    );
    let (_, pod) = apply_native(&original, &mutation, &settings, Some("1.34"));
    // The user's 3 s add up with D; the app follows the proxy by S.
    assert_eq!(sleep_of(&pod, "nginx"), Some(13));
    assert_eq!(stop_signal_of(&pod, "nginx").as_deref(), Some("SIGQUIT"));
    assert_eq!(sleep_of(&pod, "application"), Some(18));
    assert_eq!(
        pod.spec.as_ref().unwrap().termination_grace_period_seconds,
        Some(48)
    );
}

#[rstest]
#[case::another_signal("SIGTERM", true)]
#[case::the_graceful_one("SIGQUIT", false)]
fn native_never_overrides_the_users_stop_signal(#[case] own: &str, #[case] warned: bool) {
    let mut original = native(fixture("pods/seed-nginx-app.yaml"));
    original["spec"]["os"] = serde_json::json!({"name": "linux"});
    original["spec"]["containers"][0]["lifecycle"] = serde_json::json!({"stopSignal": own});
    let settings = Settings::default();
    let mutation = mutate(&original, &settings, version("1.34"));
    let nginx = &mutation.plan.containers[0];
    assert_eq!((nginx.hook, nginx.signal), (Some(HookKind::Sleep), None));
    assert_eq!(
        nginx.note.as_deref(),
        Some(format!("keeps its own lifecycle.stopSignal {own}").as_str())
    );
    let warning = mutation.plan.warnings.iter().any(|w| {
        w.contains("keeps its own lifecycle.stopSignal SIGTERM, not its graceful SIGQUIT")
    });
    assert_eq!(warning, warned, "{:#?}", mutation.plan.warnings);
    let (_, pod) = apply_native(&original, &mutation, &settings, Some("1.34"));
    assert_eq!(stop_signal_of(&pod, "nginx").as_deref(), Some(own));
    assert_eq!(sleep_of(&pod, "nginx"), Some(10));
}

/// Windows: no stopSignal (the API allows only SIGTERM and SIGKILL there) and no helper: the
/// native sleep, as the Windows path always does, with a warning that says why.
#[test]
fn native_on_windows_is_the_native_sleep_only() {
    let mut original = native(fixture("pods/windows.yaml"));
    original["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .insert(
            0,
            serde_json::json!({"name": "nginx", "image": "nginx:1.27"}),
        );
    let settings = Settings::default();
    let mutation = mutate(&original, &settings, version("1.34"));
    let plan = &mutation.plan;
    assert!(plan.helper.is_none() && !plan.adds_os_linux);
    assert_eq!(plan.containers[0].hook, Some(HookKind::Sleep));
    assert!(
        plan.warnings.iter().any(|w| w.contains("Windows pod")
            && w.contains("no lifecycle.stopSignal SIGQUIT")
            && w.contains("only SIGTERM and SIGKILL")),
        "{:#?}",
        plan.warnings
    );
    let (_, pod) = apply_native(&original, &mutation, &settings, Some("1.34"));
    assert_eq!(stop_signal_of(&pod, "nginx"), None);
    assert_eq!(sleep_of(&pod, "nginx"), Some(10));
    assert_eq!(sleep_of(&pod, "iis"), Some(15));
    assert_eq!(pod.spec.unwrap().os.unwrap().name, "windows");
}

/// The annotation on a cluster without the field is the user's to fix: denied, naming the
/// annotation, where it was set, the version and what to use instead.
#[rstest]
#[case::pod(false, "on the pod")]
#[case::namespace(true, "on the namespace")]
fn native_below_1_33_is_denied(#[case] on_namespace: bool, #[case] origin: &str) {
    let seed = fixture("pods/seed-nginx-app.yaml");
    let namespace: BTreeMap<String, String> =
        [("drain.io/hook".to_string(), "native".to_string())].into();
    let (pod, namespace) = if on_namespace {
        (seed, Some(&namespace))
    } else {
        (native(seed), None)
    };
    let settings = Settings::default();
    let ctx = PodContext {
        settings: &settings,
        namespace_annotations: namespace,
        kube_version: version("1.32"),
        image_volume_nodes: None,
    };
    let message = match mutate_pod(&pod, &ctx) {
        Err(MutateError::Denied(err)) => err.to_string(),
        other => panic!("expected a denial, got {other:?}"),
    };
    for part in [
        "drain.io/hook=\"native\"",
        origin,
        "1.33 or later",
        "runs 1.32",
        "for example drain.io/hook: \"helper\"",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
}

/// The operator's flag on an older cluster denies nothing (that would be every pod), and does
/// not leave nginx to a fast shutdown either: such pods are planned as in auto (the helper
/// sends SIGQUIT), with a warning. Exactly what auto plans.
#[test]
fn native_from_the_flag_below_1_33_plans_as_auto_and_warns() {
    let original = fixture("pods/seed-nginx-app.yaml");
    let settings = Settings {
        hook_mode: HookMode::Native,
        ..Settings::default()
    };
    let mutation = mutate(&original, &settings, version("1.32"));
    let nginx = &mutation.plan.containers[0];
    assert_eq!(
        (nginx.hook, nginx.signal),
        (Some(HookKind::Helper), Some("SIGQUIT"))
    );
    assert!(!mutation.plan.adds_os_linux);
    assert!(
        mutation
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("--hook-mode native needs Kubernetes 1.33")
                && w.contains("runs 1.32: the pod is planned as in auto")),
        "{:#?}",
        mutation.plan.warnings
    );
    // The same spec changes as auto (the status differs by the warning).
    let spec_ops = |m: &drain_webhook::mutate::Mutation| -> Vec<Value> {
        m.patch
            .to_json_patch()
            .0
            .iter()
            .map(|op| serde_json::to_value(op).unwrap())
            .filter(|op| op["path"].as_str().unwrap().starts_with("/spec"))
            .collect()
    };
    let auto = mutate(&original, &Settings::default(), version("1.32"));
    assert!(!spec_ops(&auto).is_empty());
    assert_eq!(spec_ops(&mutation), spec_ops(&auto));
    let (_, pod) = apply_native(&original, &mutation, &settings, Some("1.32"));
    assert_eq!(stop_signal_of(&pod, "nginx"), None);
    assert!(pod.spec.unwrap().os.is_none());
}

#[test]
fn native_with_an_unknown_version_is_planned_and_warned_about() {
    let original = native(fixture("pods/seed-nginx-app.yaml"));
    let settings = Settings::default();
    let mutation = mutate(&original, &settings, None);
    assert_eq!(mutation.plan.containers[0].hook, Some(HookKind::Native));
    assert!(
        mutation
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("version is unknown") && w.contains("1.33")),
        "{:#?}",
        mutation.plan.warnings
    );
    let (_, pod) = apply_native(&original, &mutation, &settings, None);
    assert_eq!(stop_signal_of(&pod, "nginx").as_deref(), Some("SIGQUIT"));
}

/// `auto` never picks native, whatever the version: it stays opt-in.
#[rstest]
fn auto_never_picks_native(#[values(None, Some("1.33"), Some("1.36"))] kube: Option<&str>) {
    let original = fixture("pods/seed-nginx-app.yaml");
    let mutation = mutate(&original, &Settings::default(), kube.and_then(version));
    assert!(
        mutation
            .plan
            .containers
            .iter()
            .all(|c| c.hook != Some(HookKind::Native))
    );
    assert!(!mutation.plan.adds_os_linux);
}

/// The test-side checker of the API server's stop-signal rules refuses what the API server
/// refuses (KEP-4960 "Cross validation with Pod spec.os.name").
#[rstest]
#[case::no_os(None, "SIGQUIT", "empty `spec.os.name`")]
#[case::not_a_linux_signal(Some("linux"), "SIGFOO", "not a Linux signal")]
#[case::windows_takes_only_term_and_kill(Some("windows"), "SIGQUIT", "only SIGTERM and SIGKILL")]
fn the_stop_signal_checker_refuses_what_the_api_server_refuses(
    #[case] os: Option<&str>,
    #[case] signal: &str,
    #[case] expected: &str,
) {
    let mut pod = fixture("pods/seed-nginx-app.yaml");
    if let Some(os) = os {
        pod["spec"]["os"] = serde_json::json!({"name": os});
    }
    pod["spec"]["containers"][0]["lifecycle"] = serde_json::json!({"stopSignal": signal});
    let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod).unwrap();
    let errors = validate(&typed).unwrap_err();
    assert!(errors.iter().any(|e| e.contains(expected)), "{errors:?}");
}

// ---------------------------------------------------------------------------------------------
// `drain.io/env: "true"`: planned regular containers get DRAIN_DELAY_SECONDS (their preStop
// seconds: when they get SIGTERM after T0) and DRAIN_SHUTDOWN_BUDGET_SECONDS (B).

fn env_of(pod: &k8s_openapi::api::core::v1::Pod, name: &str) -> Vec<(String, Option<String>)> {
    container(pod, name)
        .env
        .iter()
        .flatten()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect()
}

fn var(name: &str, value: &str) -> (String, Option<String>) {
    (name.to_owned(), Some(value.to_owned()))
}

#[test]
fn env_gives_planned_containers_their_delay_and_budget() {
    let original = with_annotations(
        fixture("pods/seed-nginx-app.yaml"),
        &[("drain.io/env", "true")],
    );
    let mutation = mutate(&original, &Settings::default(), version("1.34"));
    let pod = apply_checked(&original, &mutation);
    assert_eq!(
        env_of(&pod, "nginx"),
        [
            var("DRAIN_DELAY_SECONDS", "10"),
            var("DRAIN_SHUTDOWN_BUDGET_SECONDS", "30")
        ]
    );
    assert_eq!(
        env_of(&pod, "application"),
        [
            var("DRAIN_DELAY_SECONDS", "15"),
            var("DRAIN_SHUTDOWN_BUDGET_SECONDS", "30")
        ]
    );
    // B is the shutdown budget, also when an annotation sets it.
    let budget = with_annotations(original, &[("drain.io/shutdown-budget", "1m")]);
    let mutation = mutate(&budget, &Settings::default(), version("1.34"));
    let pod = apply_checked(&budget, &mutation);
    assert!(env_of(&pod, "application").contains(&var("DRAIN_SHUTDOWN_BUDGET_SECONDS", "60")));
}

/// A variable the container sets is never overridden (warned when it differs from the plan);
/// the others are appended to its list.
#[test]
fn env_never_overrides_a_variable_the_container_sets() {
    let mut original = with_annotations(
        fixture("pods/seed-nginx-app.yaml"),
        &[("drain.io/env", "true")],
    );
    original["spec"]["containers"][1]["env"] = serde_json::json!([
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "DRAIN_DELAY_SECONDS", "value": "5"},
    ]);
    original["spec"]["containers"][0]["env"] =
        serde_json::json!([{"name": "DRAIN_SHUTDOWN_BUDGET_SECONDS", "value": "30"}]);
    let mutation = mutate(&original, &Settings::default(), version("1.34"));
    let warnings = &mutation.plan.warnings;
    assert!(
        warnings.iter().any(|w| w.contains(
            "container \"application\" sets DRAIN_DELAY_SECONDS to \"5\" itself, which is kept; the plan's value is 15"
        )),
        "{warnings:#?}"
    );
    // Same value as the plan: nothing to say.
    assert!(!warnings.iter().any(|w| w.contains("\"nginx\" sets")));
    let pod = apply_checked(&original, &mutation);
    assert_eq!(
        env_of(&pod, "application"),
        [
            var("LOG_LEVEL", "info"),
            var("DRAIN_DELAY_SECONDS", "5"),
            var("DRAIN_SHUTDOWN_BUDGET_SECONDS", "30")
        ]
    );
    assert_eq!(
        env_of(&pod, "nginx"),
        [
            var("DRAIN_SHUTDOWN_BUDGET_SECONDS", "30"),
            var("DRAIN_DELAY_SECONDS", "10")
        ]
    );
}

#[rstest]
#[case::absent(None)]
#[case::off(Some("false"))]
fn env_is_not_added_without_the_annotation(#[case] value: Option<&str>) {
    let mut original = fixture("pods/seed-nginx-app.yaml");
    if let Some(value) = value {
        original = with_annotations(original, &[("drain.io/env", value)]);
    }
    let mutation = mutate(&original, &Settings::default(), version("1.34"));
    assert!(mutation.plan.containers.iter().all(|c| c.env.is_empty()));
    let pod = apply_checked(&original, &mutation);
    assert!(env_of(&pod, "nginx").is_empty() && env_of(&pod, "application").is_empty());
}

#[rstest]
#[case("yes")]
#[case("True")]
#[case("")]
fn env_with_a_bad_value_is_denied(#[case] value: &str) {
    let pod = with_annotations(
        fixture("pods/seed-nginx-app.yaml"),
        &[("drain.io/env", value)],
    );
    let message = denial(&pod).expect("a denial");
    assert!(
        message.contains(&format!("drain.io/env={value:?}")),
        "{message}"
    );
    assert!(
        message.contains("for example drain.io/env: \"true\""),
        "{message}"
    );
}

/// Only planned regular containers: not excluded ones, mesh proxies or native sidecars. The
/// namespace's annotation counts as the pod's would.
#[test]
fn env_goes_to_planned_containers_only() {
    let original = fixture("pods/native-sidecar-mesh.yaml");
    let namespace: BTreeMap<String, String> =
        [("drain.io/env".to_string(), "true".to_string())].into();
    let mutation = mutate_with_namespace(
        &original,
        &Settings::default(),
        version("1.34"),
        Some(&namespace),
    );
    let (_, pod) = apply(&original, &mutation);
    validate(&pod).unwrap();
    assert_eq!(env_of(&pod, "app").len(), 2);
    for untouched in ["istio-proxy", "metrics", "edge", "migrate"] {
        assert!(env_of(&pod, untouched).is_empty(), "{untouched}");
    }
}

/// Reinvocation: a container added since gets the vars, the others are left as they are, and a
/// third run changes nothing.
#[test]
fn env_on_reinvocation_goes_to_containers_added_since() {
    let original = with_annotations(
        fixture("pods/seed-nginx-app.yaml"),
        &[("drain.io/env", "true")],
    );
    let first = mutate(&original, &Settings::default(), version("1.34"));
    let (mut patched, _) = apply(&original, &first);
    patched["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "log-shipper", "image": "fluent/fluent-bit:3"}));
    let second = mutate(&patched, &Settings::default(), version("1.34"));
    let (after, pod) = apply(&patched, &second);
    assert_eq!(
        env_of(&pod, "log-shipper"),
        [
            var("DRAIN_DELAY_SECONDS", "15"),
            var("DRAIN_SHUTDOWN_BUDGET_SECONDS", "30")
        ]
    );
    assert_eq!(env_of(&pod, "nginx").len(), 2);
    assert_eq!(
        after["spec"]["containers"][1],
        patched["spec"]["containers"][1]
    );
    assert!(
        mutate(&after, &Settings::default(), version("1.34"))
            .patch
            .is_empty()
    );
}

/// `env` is kept as text until `drain.io/env` asks for it, so an env the planner cannot decode
/// (here a lone-surrogate escape, which RFC 8259 allows and the API server never sends) never
/// makes the pod unreadable: the env is left as it is, with a warning; read from text, a
/// readable env is planned as from a value.
#[test]
fn env_is_read_only_when_drain_io_env_asks_for_it() {
    let text = r#"{"metadata": {"name": "p", "annotations": {"drain.io/env": "true"}},
        "spec": {"containers": [{"name": "app", "image": "app:1",
            "env": [{"name": "X", "value": "\ud800"}, {"name": "DRAIN_DELAY_SECONDS", "value": "4"}]}]}}"#;
    let shape = drain_webhook::mutate::read_pod(text).expect("readable");
    let settings = Settings::default();
    let ctx = pod_context(&settings);
    let mutation = drain_webhook::mutate::mutate_shape(&shape, &ctx).expect("planned");
    assert_eq!(mutation.plan.outcome, Outcome::Mutate);
    assert!(mutation.plan.containers[0].env.is_empty());
    assert!(
        mutation
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("\"app\": its env does not read as a list of variables")),
        "{:?}",
        mutation.plan.warnings
    );
    let readable = text.replace(r"\ud800", "x");
    let shape = drain_webhook::mutate::read_pod(&readable).unwrap();
    let mutation = drain_webhook::mutate::mutate_shape(&shape, &ctx).unwrap();
    assert_eq!(
        mutation.plan.containers[0]
            .env
            .iter()
            .map(|v| v.name)
            .collect::<Vec<_>>(),
        vec!["DRAIN_SHUTDOWN_BUDGET_SECONDS"],
        "the container's own DRAIN_DELAY_SECONDS is kept"
    );
    assert!(
        mutation
            .patch
            .to_json_patch()
            .0
            .iter()
            .any(|op| serde_json::to_value(op).unwrap()["path"] == "/spec/containers/0/env/-"),
        "appended to the readable list"
    );
}

/// The plan's warnings stay with the pod in `drain.io/status`: a Deployment's pods are created
/// by the ReplicaSet controller, which is all that sees admission warnings.
#[test]
fn the_plan_warnings_are_kept_in_the_status() {
    let recorded = |pod: &Value| -> Vec<String> {
        let raw = pod["metadata"]["annotations"]["drain.io/status"]
            .as_str()
            .expect("a status");
        drain_webhook::plan::Status::parse(raw)
            .expect("the status reads")
            .warnings
    };
    let mut pod = fixture("pods/single-app.yaml");
    pod["spec"]["nodeSelector"] = serde_json::json!({"cloud.google.com/gke-spot": "true"});
    let mutation = mutate(&pod, &Settings::default(), version("1.34"));
    assert!(!mutation.plan.warnings.is_empty());
    let (patched, _) = apply(&pod, &mutation);
    assert_eq!(recorded(&patched), mutation.plan.warnings);
    // Reinvocation changes nothing, the record included.
    assert!(
        mutate(&patched, &Settings::default(), version("1.34"))
            .patch
            .is_empty()
    );
    // No warnings, no field.
    let pod = fixture("pods/single-app.yaml");
    let mutation = mutate(&pod, &Settings::default(), version("1.34"));
    assert!(
        mutation.plan.warnings.is_empty(),
        "{:?}",
        mutation.plan.warnings
    );
    let (patched, _) = apply(&pod, &mutation);
    let raw = patched["metadata"]["annotations"]["drain.io/status"]
        .as_str()
        .unwrap();
    assert!(!raw.contains("warnings"), "{raw}");
}

/// Every planned pod gets `drain.io/planned: "true"` (the observer's watch selects it
/// server-side), whether its metadata has a labels map or none (no metadata at all: below); the
/// user's labels stay, and a second run adds nothing (`apply_checked`).
#[rstest]
#[case::labels(Some(serde_json::json!({"app": "web"})))]
#[case::no_labels(None)]
fn planned_pods_are_labelled(#[case] labels: Option<Value>) {
    let mut pod = fixture("pods/seed-nginx-app.yaml");
    let object = pod["metadata"].as_object_mut().unwrap();
    match labels {
        Some(labels) => {
            object.insert("labels".into(), labels);
        }
        None => {
            object.remove("labels");
        }
    }
    let mutation = mutate(&pod, &Settings::default(), version("1.34"));
    let result = apply_checked(&pod, &mutation);
    let labels = result.metadata.labels.unwrap();
    assert_eq!(
        labels
            .get(drain_webhook::patch::PLANNED_LABEL)
            .map(String::as_str),
        Some("true")
    );
    assert!(labels.len() <= 2, "{labels:?}");
}

#[test]
fn a_pod_without_metadata_is_labelled() {
    let mut pod = fixture("pods/seed-nginx-app.yaml");
    pod.as_object_mut().unwrap().remove("metadata");
    let mutation = mutate(&pod, &Settings::default(), version("1.34"));
    let (patched, _) = apply(&pod, &mutation);
    assert_eq!(patched["metadata"]["labels"]["drain.io/planned"], "true");
    assert!(patched["metadata"]["annotations"]["drain.io/status"].is_string());
}
