//! Moving pinned clients off at the floor in the plan (issue 30, `drain.io/migrate`): who gets
//! a migration, which one, what is refused, and what explain says where nothing migrates.

mod common;

use std::collections::BTreeMap;

use common::*;
use drain_webhook::offline::{OutputFormat, explain};
use drain_webhook::plan::Role;
use drain_webhook::settings::Settings;
use serde_json::{Value, json};

fn pod(containers: Value, annotations: &[(&str, &str)]) -> Value {
    let map: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "annotations": map},
        "spec": {"containers": containers}
    })
}

fn nginx_and_app(annotations: &[(&str, &str)]) -> Value {
    pod(
        json!([
            {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 443}]},
            {"name": "app", "image": "shop:1", "ports": [{"containerPort": 8080}]}
        ]),
        annotations,
    )
}

fn lone_app(annotations: &[(&str, &str)]) -> Value {
    pod(
        json!([{"name": "app", "image": "shop:1", "ports": [{"containerPort": 8080}]}]),
        annotations,
    )
}

/// Each container's migration as explain says it, checked against what the patch writes: the
/// helper's `--migrate` with the same value (a signal's name, or the URL).
fn migrations(pod: &Value) -> Vec<(String, Option<String>)> {
    let mutation = mutate(pod, &Settings::default(), version("1.34"));
    let (_, patched) = apply(pod, &mutation);
    validate(&patched).unwrap();
    mutation
        .plan
        .containers
        .iter()
        .map(|c| {
            let written = pre_stop(&patched, &c.name)
                .filter(|h| h.exec.is_some())
                .map(helper_args)
                .and_then(|args| {
                    let at = args.iter().position(|a| a == "--migrate")?;
                    args.get(at + 1).cloned()
                });
            let planned = c.migrate().map(ToString::to_string);
            assert_eq!(
                written,
                planned
                    .as_ref()
                    .map(|p| p.trim_start_matches("POST ").to_owned()),
                "{}: the patch writes what the plan says",
                c.name
            );
            (c.name.clone(), planned)
        })
        .collect()
}

fn sighup() -> Option<String> {
    Some("SIGHUP".into())
}

/// `auto` (the default): nginx and openresty reload on SIGHUP, which moves their pinned
/// clients off without closing the listeners; the app behind them gets nothing (its clients
/// are the proxy's). Other proxies get nothing: a signal they do not handle can kill them.
#[test]
fn auto_moves_nginx_and_openresty_off_with_sighup_and_nothing_else() {
    assert_eq!(
        migrations(&nginx_and_app(&[])),
        [("nginx".into(), sighup()), ("app".into(), None)]
    );
    let openresty = pod(
        json!([
            {"name": "edge", "image": "openresty/openresty:alpine", "ports": [{"containerPort": 80}]},
            {"name": "app", "image": "shop:1"}
        ]),
        &[],
    );
    assert_eq!(migrations(&openresty)[0].1, sighup());
    for image in [
        "envoyproxy/envoy:v1.30",
        "traefik:3",
        "caddy:2",
        "haproxy:2.9",
    ] {
        let other = pod(
            json!([
                {"name": "proxy", "image": image, "ports": [{"containerPort": 80}]},
                {"name": "app", "image": "shop:1"}
            ]),
            &[],
        );
        assert_eq!(migrations(&other)[0].1, None, "{image}");
    }
    // A lone app is never signalled by auto.
    assert_eq!(
        migrations(&lone_app(&[("drain.io/hook", "helper")]))[0].1,
        None
    );
}

/// A signal or a URL the user declares: to the adaptive front proxies, else to the apps
/// holding alone (an app that can stop keep-alive itself, e.g. Go's
/// `Server.SetKeepAlivesEnabled(false)` behind an endpoint); `none` turns it off.
#[test]
fn a_declared_signal_or_url_goes_to_the_front_proxies_else_to_a_lone_app() {
    assert_eq!(
        migrations(&nginx_and_app(&[("drain.io/migrate", "USR2")])),
        [
            ("nginx".into(), Some("SIGUSR2".into())),
            ("app".into(), None)
        ]
    );
    assert_eq!(
        migrations(&nginx_and_app(&[("drain.io/migrate", "none")])),
        [("nginx".into(), None), ("app".into(), None)]
    );
    let post = migrations(&lone_app(&[
        ("drain.io/hook", "helper"),
        ("drain.io/migrate", "http://127.0.0.1:8080/keepalive-off"),
    ]));
    assert_eq!(
        post[0].1.as_deref(),
        Some("POST http://127.0.0.1:8080/keepalive-off")
    );
    let signal = migrations(&lone_app(&[
        ("drain.io/hook", "helper"),
        ("drain.io/migrate", "SIGHUP"),
    ]));
    assert_eq!(signal[0].1, sighup());
}

/// The namespace's value applies where the pod sets none.
#[test]
fn the_pod_wins_over_the_namespace() {
    let namespace: BTreeMap<String, String> =
        [("drain.io/migrate".to_owned(), "none".to_owned())].into();
    let plain = nginx_and_app(&[]);
    let mutation = mutate_with_namespace(
        &plain,
        &Settings::default(),
        version("1.34"),
        Some(&namespace),
    );
    assert!(mutation.plan.containers[0].migrate().is_none());
    let asked = nginx_and_app(&[("drain.io/migrate", "auto")]);
    let mutation = mutate_with_namespace(
        &asked,
        &Settings::default(),
        version("1.34"),
        Some(&namespace),
    );
    assert_eq!(
        mutation.plan.containers[0]
            .migrate()
            .as_ref()
            .map(ToString::to_string),
        sighup()
    );
}

/// Values that would stop the process instead of moving its clients, or that the helper
/// cannot call, are denied with the annotation, the value and an example.
#[test]
fn stopping_signals_and_bad_urls_are_denied_with_an_example() {
    for (value, detail) in [
        ("SIGTERM", "stops the process"),
        ("QUIT", "stops the process"),
        ("9", "stops the process"),
        ("SIGBOGUS", "expected auto, none, a signal"),
        ("http://10.0.0.9:8080/x", "127.0.0.1"),
        ("", "expected auto, none, a signal"),
    ] {
        let message = denial(&nginx_and_app(&[("drain.io/migrate", value)])).expect("a denial");
        assert!(message.contains("drain.io/migrate"), "{message}");
        assert!(message.contains(detail), "{value}: {message}");
        assert!(message.contains("for example"), "{message}");
    }
}

/// Nothing holds adaptively (the hold is off): a declared migration has no effect, and a
/// warning says so; auto says nothing. With a shared process namespace no signal can reach
/// the proxy's PID 1: a warning, no migration.
#[test]
fn a_migration_nothing_can_carry_out_is_warned_about() {
    let fixed = nginx_and_app(&[("drain.io/max-delay", "0"), ("drain.io/migrate", "SIGHUP")]);
    let mutation = mutate(&fixed, &Settings::default(), version("1.34"));
    assert!(
        mutation
            .plan
            .containers
            .iter()
            .all(|c| c.migrate().is_none())
    );
    assert!(
        mutation
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("drain.io/migrate") && w.contains("no effect")),
        "{:?}",
        mutation.plan.warnings
    );
    let quiet = mutate(
        &nginx_and_app(&[("drain.io/max-delay", "0")]),
        &Settings::default(),
        version("1.34"),
    );
    assert!(!quiet.plan.warnings.iter().any(|w| w.contains("migrate")));

    let mut shared = nginx_and_app(&[]);
    shared["spec"]["shareProcessNamespace"] = json!(true);
    let mutation = mutate(&shared, &Settings::default(), version("1.34"));
    assert_eq!(mutation.plan.containers[0].role, Role::Proxy);
    assert!(mutation.plan.containers[0].migrate().is_none());
    assert!(
        mutation
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("cannot send SIGHUP")),
        "{:?}",
        mutation.plan.warnings
    );
}

/// explain says how pinned clients leave, or that nothing moves them and they hold the pod
/// toward M; `-o json` carries the migration as text.
#[test]
fn explain_says_whether_pinned_clients_are_moved_off() {
    let mutation = mutate(&nginx_and_app(&[]), &Settings::default(), version("1.34"));
    let json = serde_json::to_value(&mutation.plan).unwrap();
    assert_eq!(json["containers"][0]["migrate"], "SIGHUP");
    assert!(json["containers"][1].get("migrate").is_none());
    let envoy = pod(
        json!([
            {"name": "envoy", "image": "envoyproxy/envoy:v1.30", "ports": [{"containerPort": 80}]},
            {"name": "app", "image": "shop:1"}
        ]),
        &[],
    );
    let settings = Settings::default();
    let ctx = pod_context(&settings);
    let text = explain(&envoy.to_string(), &ctx, OutputFormat::Text).unwrap();
    assert!(
        text.contains(
            "nothing moves pinned clients off: kept-alive and HTTP/2 clients hold it toward 60s"
        ),
        "{text}"
    );
}

/// A declared migration signal that is also the proxy's graceful stop (haproxy's SIGUSR1)
/// would stop it at the floor: the helper's parser refuses such a command, so the planner
/// writes no migration and says why, and the hook stays one the helper runs.
#[test]
fn a_migration_signal_that_is_the_stop_signal_is_dropped_with_a_warning() {
    let haproxy = pod(
        json!([
            {"name": "haproxy", "image": "haproxy:2.9", "ports": [{"containerPort": 80}]},
            {"name": "app", "image": "shop:1"}
        ]),
        &[("drain.io/migrate", "SIGUSR1")],
    );
    let mutation = mutate(&haproxy, &Settings::default(), version("1.34"));
    let proxy = &mutation.plan.containers[0];
    assert_eq!(proxy.signal, Some("SIGUSR1"));
    assert!(proxy.migrate().is_none());
    assert!(
        mutation
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("\"haproxy\": no migration")),
        "{:?}",
        mutation.plan.warnings
    );
    assert_eq!(migrations(&haproxy)[0].1, None);
}
