//! The drain record in the plan (issue 28): each helper hook gets `--record` with its
//! container's `terminationMessagePath` and `--role`, except under `FallbackToLogsOnError` or
//! for a path the helper cannot take; the written command is read back by the helper's own
//! parser, and explain says what was decided.

mod common;

use std::ffi::OsString;

use common::*;
use drain_webhook::drain_record::RecordRole;
use drain_webhook::helper::args::{Command, RecordArgs, parse};
use drain_webhook::offline::{OutputFormat, explain};
use drain_webhook::plan::RecordPlan;
use drain_webhook::settings::Settings;
use serde_json::{Value, json};

fn nginx_and_app(nginx: Value, app: Value) -> Value {
    let mut nginx_container =
        json!({"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 443}]});
    let mut app_container =
        json!({"name": "app", "image": "shop:1", "ports": [{"containerPort": 8080}]});
    for (container, extra) in [(&mut nginx_container, nginx), (&mut app_container, app)] {
        for (key, value) in extra.as_object().unwrap() {
            container[key] = value.clone();
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": [nginx_container, app_container]}
    })
}

/// Each container's `--record` as the helper parses the command the patch wrote (the pod is
/// validated as the API server would), checked against the plan.
fn records(pod: &Value) -> Vec<(String, Option<RecordArgs>)> {
    let mutation = mutate(pod, &Settings::default(), version("1.34"));
    let (_, patched) = apply(pod, &mutation);
    validate(&patched).unwrap();
    mutation
        .plan
        .containers
        .iter()
        .map(|c| {
            let words = helper_args(pre_stop(&patched, &c.name).expect("a preStop hook"));
            assert_eq!(words[0], "/.drain/drain-helper");
            let args: Vec<OsString> = words[1..].iter().map(OsString::from).collect();
            let Ok(Command::Prestop(parsed)) = parse(&args) else {
                panic!("the helper refuses {words:?}");
            };
            match (&c.record, &parsed.record) {
                (Some(RecordPlan::Path(planned)), Some(written)) => {
                    assert_eq!(planned, &written.path)
                }
                (Some(RecordPlan::Skipped(_)), None) => {}
                other => panic!("{}: plan and patch disagree: {other:?}", c.name),
            }
            (c.name.clone(), parsed.record)
        })
        .collect()
}

fn record(path: &str, role: RecordRole) -> Option<RecordArgs> {
    Some(RecordArgs {
        path: path.to_owned().into(),
        role,
    })
}

#[test]
fn the_default_path_and_each_containers_own_with_its_role() {
    assert_eq!(
        records(&nginx_and_app(json!({}), json!({}))),
        [
            (
                "nginx".into(),
                record("/dev/termination-log", RecordRole::Proxy)
            ),
            (
                "app".into(),
                record("/dev/termination-log", RecordRole::App)
            ),
        ]
    );
    // Paths as odd as the API server accepts: spaces, quotes, `=`, `--`, unicode, the longest
    // a path can be.
    let longest = format!("/{}", "x".repeat(4094));
    for path in [
        "/var/log/term ination.log",
        "/tmp/--role=proxy \"x\"",
        "/données/終了/💥",
        longest.as_str(),
    ] {
        let pod = nginx_and_app(
            json!({"terminationMessagePath": path, "terminationMessagePolicy": "File"}),
            json!({}),
        );
        assert_eq!(
            records(&pod)[0].1,
            record(path, RecordRole::Proxy),
            "{path}"
        );
    }
}

#[test]
fn no_record_under_fallback_to_logs_on_error_nor_for_a_path_the_helper_cannot_take() {
    let cases = [
        (
            json!({"terminationMessagePolicy": "FallbackToLogsOnError"}),
            "no drain record: terminationMessagePolicy FallbackToLogsOnError (a record would replace the log tail the kubelet reports on failure)",
        ),
        (
            json!({"terminationMessagePath": "termination-log"}),
            "no drain record: terminationMessagePath \"termination-log\" is not an absolute path",
        ),
        (
            json!({"terminationMessagePath": "/dev/term\u{0}ination"}),
            "no drain record: terminationMessagePath \"/dev/term\\0ination\" contains a NUL byte",
        ),
        (
            json!({"terminationMessagePath": format!("/{}", "x".repeat(4095))}),
            "is 4096 bytes long, over the 4095 a path can have",
        ),
    ];
    for (app, said) in cases {
        let pod = nginx_and_app(json!({}), app.clone());
        let found = records(&pod);
        assert_eq!(found[1], ("app".into(), None), "{app}");
        // The proxy keeps its record: the decision is per container.
        assert_eq!(
            found[0].1,
            record("/dev/termination-log", RecordRole::Proxy)
        );
        let settings = Settings::default();
        let ctx = pod_context(&settings);
        let text = explain(&pod.to_string(), &ctx, OutputFormat::Text).unwrap();
        let app_line = text.lines().find(|l| l.contains(" app ")).unwrap();
        assert!(app_line.contains(said), "{app_line}");
    }
}
