//! The adaptive hold in the plan (issue 20, docs/decisions.md "The adaptive hold"): which
//! containers hold, what they are told about the probes, when the hold is fixed, and the grace
//! period it needs.

mod common;

use std::collections::BTreeMap;

use common::timing::*;
use common::*;
use drain_webhook::plan::{HookKind, Role, Timing};
use drain_webhook::settings::Settings;
use serde_json::{Value, json};

fn pod(containers: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": containers}
    })
}

fn annotated(mut pod: Value, annotations: &[(&str, &str)]) -> Value {
    let map: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    pod["metadata"]["annotations"] = Value::Object(map);
    pod
}

fn probe_every(args: &[String]) -> Option<&str> {
    let at = args.iter().position(|w| w == "--probe-every")?;
    args.get(at + 1).map(String::as_str)
}

/// The kubelet keeps readiness probes running during termination; the ones that connect into
/// the pod are passed to the helper so that they do not hold it: httpGet and tcpSocket without
/// a host, and grpc, from every regular container and native sidecar; not exec probes, not a
/// probe sent to another host, not liveness or startup probes (the kubelet stops them at
/// deletion: listed, they would excuse connections no probe opens).
#[test]
fn the_probes_that_connect_into_the_pod_are_passed_to_the_helper() {
    let original = pod(json!([
        {
            "name": "nginx", "image": "nginx:1.27",
            "ports": [{"containerPort": 8080}],
            "readinessProbe": {"httpGet": {"port": 8080}, "periodSeconds": 1},
            "startupProbe": {"httpGet": {"port": 8080}, "periodSeconds": 1}
        },
        {
            "name": "app", "image": "shop:1",
            "livenessProbe": {"tcpSocket": {"port": 9000}},
            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}
        },
        {
            "name": "worker", "image": "worker:1",
            "readinessProbe": {"httpGet": {"port": 8080, "path": "/ready"}, "periodSeconds": 7}
        },
        {
            "name": "metrics", "image": "exporter:1",
            "readinessProbe": {"httpGet": {"port": 80, "host": "10.0.0.9"}, "periodSeconds": 2},
            "livenessProbe": {"grpc": {"port": 9090}, "periodSeconds": 5}
        }
    ]));
    let mut original = original;
    original["spec"]["initContainers"] = json!([{
        "name": "sidecar", "image": "envoy-sidecar:1", "restartPolicy": "Always",
        "readinessProbe": {"tcpSocket": {"port": 15000}, "periodSeconds": 3}
    }]);
    let mutation = mutate(&original, &Settings::default(), version("1.34"));
    let nginx = &mutation.plan.containers[0];
    // nginx's readiness every 1 s and the worker's aimed at nginx's port every 7 s count twice
    // (nginx forwards them to the app over loopback, a second accepted connection); the
    // sidecar's 3 s once; the app's tcpSocket and the metrics grpc liveness probes not at all.
    assert_eq!(
        nginx.timing(),
        Some(&migrating(
            held(10, 3, 60, 0, vec![1, 1, 3, 7, 7]),
            "SIGHUP"
        ))
    );
    let (_, patched) = apply(&original, &mutation);
    validate(&patched).unwrap();
    let args = helper_args(pre_stop(&patched, "nginx").unwrap());
    assert_eq!(probe_every(&args), Some("1s,1s,3s,7s,7s"), "{args:?}");
}

/// `drain.io/max-delay` at or below D turns the hold off: the fixed plan, grace D + S + B.
#[test]
fn a_cap_at_or_below_the_delay_is_the_fixed_delay() {
    let seed = fixture("pods/seed-nginx-app.yaml");
    for cap in ["10s", "5", "0"] {
        let original = annotated(seed.clone(), &[("drain.io/max-delay", cap)]);
        let mutation = mutate(&original, &Settings::default(), version("1.34"));
        let plan = &mutation.plan;
        assert_eq!(plan.grace_after, 45, "max-delay {cap}");
        let nginx = &plan.containers[0];
        assert_eq!(nginx.timing(), Some(&helper_at(10)));
        // nginx still needs the helper for SIGQUIT; the app goes back to the native sleep.
        assert_eq!(nginx.hook, Some(HookKind::Helper));
        assert_eq!(plan.containers[1].hook, Some(HookKind::Sleep));
        let (_, patched) = apply(&original, &mutation);
        let args = helper_args(pre_stop(&patched, "nginx").unwrap());
        assert!(!args.iter().any(|a| a == "--quiet"), "{args:?}");
    }
}

/// D = 0 asks for no delay: no hold either, and nothing to plan for a lone app.
#[test]
fn no_delay_means_no_hold() {
    let seed = annotated(
        fixture("pods/seed-nginx-app.yaml"),
        &[("drain.io/delay", "0")],
    );
    let mutation = mutate(&seed, &Settings::default(), version("1.34"));
    let nginx = &mutation.plan.containers[0];
    assert_eq!(nginx.timing(), Some(&helper_at(0)));
    let app = &mutation.plan.containers[1];
    assert_eq!(app.timing(), Some(&Timing::Fixed { seconds: 5 }));
}

/// `auto` holds adaptively wherever the helper runs: a front proxy and the app behind it
/// always; a lone app on 1.30+ keeps the native sleep (no helper to deliver, a faster start)
/// unless `drain.io/hook: helper` asks for it.
#[test]
fn a_lone_app_holds_adaptively_only_with_the_helper() {
    let single = fixture("pods/single-app.yaml");
    let native = mutate(&single, &Settings::default(), version("1.34"));
    let app = &native.plan.containers[0];
    assert_eq!(app.hook, Some(HookKind::Sleep));
    assert_eq!(app.timing(), Some(&Timing::Fixed { seconds: 10 }));

    let asked = annotated(single.clone(), &[("drain.io/hook", "helper")]);
    let mutation = mutate(&asked, &Settings::default(), version("1.34"));
    let app = &mutation.plan.containers[0];
    assert_eq!(app.hook, Some(HookKind::Helper));
    assert_eq!(app.timing().and_then(hold_range), Some((10, 60, 0)));
    // The pod's own 60 s grace is B: M + B.
    assert_eq!(mutation.plan.grace_after, 60 + 60);
    let (_, patched) = apply(&asked, &mutation);
    validate(&patched).unwrap();
}

/// A proxy that declares no port gives the app nothing to follow: the app holds adaptively
/// itself from the proxy's floor and adds S, so it never signals before the proxy can have.
#[test]
fn an_app_behind_a_proxy_without_ports_holds_itself_then_staggers() {
    let original = pod(json!([
        {"name": "nginx", "image": "nginx:1.27"},
        {"name": "app", "image": "shop:1", "ports": [{"containerPort": 8080}]}
    ]));
    let mutation = mutate(&original, &Settings::default(), version("1.34"));
    let app = &mutation.plan.containers[1];
    assert_eq!(app.role, Role::App);
    assert_eq!(app.timing(), Some(&held(10, 3, 60, 5, vec![])));
    assert_eq!(mutation.plan.grace_after, 95);
    let (_, patched) = apply(&original, &mutation);
    let args = helper_args(pre_stop(&patched, "app").unwrap());
    assert!(
        args.windows(6)
            .any(|w| w == ["--quiet", "3s", "--hold-max", "60s", "--stagger", "5s"]),
        "{args:?}"
    );
}

/// Several proxies where only some declare ports (issue 27): following the declared ones
/// alone would stop the app while the undeclared proxy may still forward to it, so the app
/// holds itself as behind a proxy without ports.
#[test]
fn an_app_behind_proxies_of_which_one_declares_no_port_holds_itself() {
    let original = pod(json!([
        {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 443}]},
        {"name": "envoy", "image": "envoyproxy/envoy:v1.30"},
        {"name": "app", "image": "shop:1", "ports": [{"containerPort": 8080}]}
    ]));
    let mutation = mutate(&original, &Settings::default(), version("1.34"));
    let app = &mutation.plan.containers[2];
    assert_eq!(app.role, Role::App);
    assert!(
        app.timing()
            .cloned()
            .as_ref()
            .and_then(hold_range)
            .is_some_and(|(_, _, stagger)| stagger == 5),
        "{:?}",
        app.timing()
    );
    let (_, patched) = apply(&original, &mutation);
    validate(&patched).unwrap();
    let args = helper_args(pre_stop(&patched, "app").unwrap());
    assert!(!args.iter().any(|a| a == "--follow"), "{args:?}");
    // With both proxies' ports declared, the app follows both.
    let mut declared = original.clone();
    declared["spec"]["containers"][1]["ports"] = json!([{"containerPort": 10000}]);
    let mutation = mutate(&declared, &Settings::default(), version("1.34"));
    assert!(
        mutation.plan.containers[2]
            .timing()
            .cloned()
            .as_ref()
            .and_then(followed_ports)
            == Some(&[443, 10000][..]),
        "{:?}",
        mutation.plan.containers[2].timing()
    );
}

/// Q and M follow the usual precedence: the pod's annotation, the namespace's, the settings.
#[test]
fn quiet_and_cap_come_from_pod_then_namespace_then_settings() {
    let seed = fixture("pods/seed-nginx-app.yaml");
    let namespace: BTreeMap<String, String> = [
        ("drain.io/quiet".to_owned(), "5s".to_owned()),
        ("drain.io/max-delay".to_owned(), "2m".to_owned()),
    ]
    .into();
    let settings = Settings {
        quiet: 7,
        max_delay: 30,
        ..Settings::default()
    };
    let from_namespace = mutate_with_namespace(&seed, &settings, version("1.34"), Some(&namespace));
    assert_eq!(
        (from_namespace.plan.quiet, from_namespace.plan.max_delay),
        (5, 120)
    );
    assert_eq!(from_namespace.plan.grace_after, 120 + 5 + 30);
    let pod_says = annotated(seed.clone(), &[("drain.io/quiet", "2")]);
    let mutation = mutate_with_namespace(&pod_says, &settings, version("1.34"), Some(&namespace));
    assert_eq!((mutation.plan.quiet, mutation.plan.max_delay), (2, 120));
    let from_settings = mutate(&seed, &settings, version("1.34"));
    assert_eq!(
        (from_settings.plan.quiet, from_settings.plan.max_delay),
        (7, 30)
    );
    assert_eq!(from_settings.plan.grace_after, 30 + 5 + 30);
}

/// A quiet window of 0 would release at once; a cap past the maximum grace is refused with the
/// annotation that caused it.
#[test]
fn bad_quiet_and_cap_are_denials_that_say_what_to_set() {
    let seed = fixture("pods/seed-nginx-app.yaml");
    let message = denial(&annotated(seed.clone(), &[("drain.io/quiet", "0s")])).expect("a denial");
    assert!(
        message.contains("drain.io/quiet") && message.contains("at least 1s"),
        "{message}"
    );
    let message =
        denial(&annotated(seed.clone(), &[("drain.io/max-delay", "soon")])).expect("a denial");
    assert!(message.contains("drain.io/max-delay=\"soon\""), "{message}");
    let message = denial(&annotated(seed, &[("drain.io/max-delay", "2h")])).expect("a denial");
    assert!(
        message.contains("above the maximum") && message.contains("drain.io/max-delay=\"2h\""),
        "{message}"
    );
}

/// What the hold writes passes the API server's validation and the helper's parser, and the
/// record is what explain and a reinvocation read back.
#[test]
fn an_adaptive_plan_is_valid_and_idempotent() {
    let seed = fixture("pods/seed-nginx-app.yaml");
    let mutation = mutate(&seed, &Settings::default(), version("1.34"));
    let (patched, typed) = apply(&seed, &mutation);
    validate(&typed).unwrap();
    common::invariants::check_helper_commands(&seed, &patched).unwrap();
    let again = mutate(&patched, &Settings::default(), version("1.34"));
    assert!(again.patch.is_empty(), "{:?}", again.patch);
    let recorded: Vec<Option<Timing>> = again
        .plan
        .containers
        .iter()
        .map(|c| c.timing().cloned())
        .collect();
    assert_eq!(
        recorded,
        [
            Some(Timing::Recorded {
                earliest: 10,
                latest: 60
            }),
            Some(Timing::Recorded {
                earliest: 15,
                latest: 65
            }),
        ]
    );
}

/// A profile raises D to its floor and M with it, so the hold keeps its headroom above D on a
/// path known to lag longer; `drain.io/max-delay` still decides where it is set.
#[test]
fn a_profile_raises_the_cap_with_the_floor() {
    let seed = annotated(
        fixture("pods/seed-nginx-app.yaml"),
        &[("drain.io/profile", "aws-nlb")],
    );
    let mutation = mutate(&seed, &Settings::default(), version("1.34"));
    let plan = &mutation.plan;
    let floor = plan.profile.unwrap().delay_floor;
    assert_eq!(plan.delay, floor);
    assert_eq!(plan.max_delay, 60 + (floor - 10));
    let held = plan.containers[0].timing().and_then(hold_range);
    assert_eq!(held, Some((floor, plan.max_delay, 0)));
    assert_eq!(
        plan.grace_after,
        i64::from(plan.max_delay + plan.stagger + plan.shutdown_budget)
    );
    let capped = annotated(
        fixture("pods/seed-nginx-app.yaml"),
        &[
            ("drain.io/profile", "aws-nlb"),
            ("drain.io/max-delay", "2m"),
        ],
    );
    let mutation = mutate(&capped, &Settings::default(), version("1.34"));
    assert_eq!(mutation.plan.max_delay, 120);
    assert_eq!(
        mutation.plan.containers[0].timing(),
        Some(&helper_at(floor))
    );
}

/// A hostNetwork pod sees the node's connections as its own (issue 27): it gets the fixed hold,
/// as with drain.io/max-delay at or below D, and a warning that says why.
#[test]
fn a_host_network_pod_holds_for_the_fixed_delay() {
    let mut original = fixture("pods/seed-nginx-app.yaml");
    original["spec"]["hostNetwork"] = json!(true);
    let mutation = mutate(&original, &Settings::default(), version("1.34"));
    let plan = &mutation.plan;
    let nginx = &plan.containers[0];
    assert_eq!(nginx.timing(), Some(&helper_at(10)));
    assert_eq!(nginx.hook, Some(HookKind::Helper));
    assert_eq!(plan.containers[1].hook, Some(HookKind::Sleep));
    assert_eq!(plan.grace_after, 45);
    let warning = plan
        .warnings
        .iter()
        .find(|w| w.contains("hostNetwork"))
        .expect("a warning names hostNetwork");
    assert!(warning.contains("fixed 10s"), "{warning}");
    let (_, patched) = apply(&original, &mutation);
    validate(&patched).unwrap();
    let args = helper_args(pre_stop(&patched, "nginx").unwrap());
    assert!(!args.iter().any(|a| a == "--quiet"), "{args:?}");
    // The same pod off the host network holds adaptively, without the warning.
    let mut plain = original.clone();
    plain["spec"]["hostNetwork"] = json!(false);
    let mutation = mutate(&plain, &Settings::default(), version("1.34"));
    assert!(
        mutation.plan.containers[0]
            .timing()
            .cloned()
            .as_ref()
            .unwrap()
            .is_adaptive()
    );
    assert!(
        !mutation
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("hostNetwork"))
    );
}

/// `drain.io/wait-idle` on a front proxy's port (issue 27): the proxy waits after its signal
/// (the helper's order), and the app behind it waits for the same port before its SIGTERM, so
/// nginx never forwards to a stopped app; both have the wait in their grace.
#[test]
fn wait_idle_on_a_proxy_port_is_waited_for_by_the_app_behind_it() {
    let original = annotated(
        fixture("pods/seed-nginx-app.yaml"),
        &[("drain.io/wait-idle", "443")],
    );
    let mutation = mutate(&original, &Settings::default(), version("1.34"));
    let plan = &mutation.plan;
    let (nginx, app) = (&plan.containers[0], &plan.containers[1]);
    assert_eq!((nginx.role, app.role), (Role::Proxy, Role::App));
    assert_eq!(nginx.wait_idle, [443]);
    assert_eq!(
        app.wait_idle,
        [443],
        "the app waits for the proxy's clients"
    );
    // The app's signal follows the proxy's (not delayed by its wait): M + S, then its own wait
    // and budget: 60 + 5 + 30 + 30.
    assert_eq!(app.timing().unwrap().latest(), 65);
    assert_eq!(plan.grace_after, 125);
    let (_, patched) = apply(&original, &mutation);
    validate(&patched).unwrap();
    for name in ["nginx", "application"] {
        let args = helper_args(pre_stop(&patched, name).unwrap());
        assert!(
            args.windows(2).any(|w| w == ["--wait-idle", "443"]),
            "{name}: {args:?}"
        );
    }
}

/// A front proxy excluded to keep its user's own preStop (issue 27) still forwards to the app:
/// the app follows its declared ports (then S) instead of stopping at D as a lone app; a proxy
/// without declared ports cannot be followed, and the warning says what to do.
#[test]
fn an_app_behind_an_excluded_proxy_follows_its_ports_or_is_warned_about() {
    let original = annotated(
        pod(json!([
            {
                "name": "nginx", "image": "nginx:1.27",
                "ports": [{"containerPort": 443}],
                "lifecycle": {"preStop": {"exec": {"command": ["/usr/sbin/nginx", "-s", "quit"]}}}
            },
            {"name": "app", "image": "shop:1", "ports": [{"containerPort": 8080}]}
        ])),
        &[("drain.io/exclude", "nginx")],
    );
    let mutation = mutate(&original, &Settings::default(), version("1.34"));
    let plan = &mutation.plan;
    assert_eq!(plan.containers[0].role, Role::Excluded);
    let app = &plan.containers[1];
    assert_eq!(app.hook, Some(HookKind::Helper));
    assert_eq!(app.timing(), Some(&following(10, vec![443], 60, 5)));
    assert_eq!(plan.grace_after, 60 + 5 + 30);
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("\"nginx\" is excluded") && w.contains("port(s) 443 close")),
        "{:?}",
        plan.warnings
    );
    let (_, patched) = apply(&original, &mutation);
    validate(&patched).unwrap();
    let args = helper_args(pre_stop(&patched, "app").unwrap());
    assert!(
        args.windows(2).any(|w| w == ["--follow", "443"]),
        "{args:?}"
    );
    // The excluded proxy's own hook stays exactly as written.
    let nginx = pre_stop(&patched, "nginx").unwrap();
    assert_eq!(
        nginx.exec.as_ref().unwrap().command.as_deref().unwrap(),
        ["/usr/sbin/nginx", "-s", "quit"]
    );

    // Without declared ports: the app stops as a lone app, with a warning that says so.
    let mut portless = original.clone();
    portless["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("ports");
    let mutation = mutate(&portless, &Settings::default(), version("1.34"));
    let app = &mutation.plan.containers[1];
    assert_eq!(app.hook, Some(HookKind::Sleep));
    assert_eq!(app.timing(), Some(&Timing::Fixed { seconds: 10 }));
    assert!(
        mutation
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("declares no containerPort") && w.contains("drain.io/exclude")),
        "{:?}",
        mutation.plan.warnings
    );
}

/// `drain.io/delay` raises M by as much as it raises D (issue 27), as a profile's floor does:
/// a D at or above the setting's M no longer turns the hold off unnoticed. An explicit
/// `drain.io/max-delay` is kept as written, and a D below the setting leaves M alone.
#[test]
fn a_delay_annotation_raises_the_cap_with_it() {
    let seed = fixture("pods/seed-nginx-app.yaml");
    let timing_of = |annotations: &[(&str, &str)]| {
        let original = annotated(seed.clone(), annotations);
        let mutation = mutate(&original, &Settings::default(), version("1.34"));
        let (_, patched) = apply(&original, &mutation);
        validate(&patched).unwrap();
        (
            mutation.plan.containers[0].timing().cloned().unwrap(),
            mutation.plan.grace_after,
        )
    };
    let (nginx, grace) = timing_of(&[("drain.io/delay", "90s")]);
    assert!(
        hold_range(&nginx).is_some_and(|(floor, cap, _)| (floor, cap) == (90, 140)),
        "{nginx:?}"
    );
    assert_eq!(grace, 140 + 5 + 30);
    let (nginx, _) = timing_of(&[("drain.io/delay", "60")]);
    assert_eq!(
        hold_range(&nginx).map(|(floor, cap, _)| (floor, cap)),
        Some((60, 110))
    );
    let (nginx, _) = timing_of(&[("drain.io/delay", "5")]);
    assert_eq!(
        hold_range(&nginx).map(|(floor, cap, _)| (floor, cap)),
        Some((5, 60))
    );
    let (nginx, grace) = timing_of(&[("drain.io/delay", "90"), ("drain.io/max-delay", "60")]);
    assert_eq!(nginx, helper_at(90));
    assert_eq!(grace, 90 + 5 + 30);
}
