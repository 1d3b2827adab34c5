//! `inject` and `explain` on manifests: workloads are planned through their pod templates,
//! other objects pass through, both commands agree, bad input is one clear error.

mod common;

use common::*;
use drain_webhook::offline::{OutputFormat, explain, inject};
use drain_webhook::settings::Settings;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use serde_json::Value;

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap()
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).unwrap()
}

fn grace(spec: &PodSpec) -> Option<i64> {
    spec.termination_grace_period_seconds
}

#[test]
fn inject_mutates_every_workload_template_and_passes_the_rest_through() {
    let settings = Settings::default();
    let input = read("manifests/workloads.yaml");
    let output = inject(&input, &pod_context(&settings)).unwrap();
    let before = documents(&input);
    let after = documents(&output.yaml);
    assert_eq!(before.len(), after.len());
    // Namespace and Service unchanged.
    assert_eq!(before[0], after[0]);
    assert_eq!(before[5], after[5]);

    let deployment: Deployment = serde_json::from_value(after[1].clone()).unwrap();
    let spec = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(grace(&spec), Some(95), "M + S + B");
    let pod = Pod {
        spec: Some(spec.clone()),
        ..Pod::default()
    };
    validate(&pod).unwrap();
    assert_eq!(hook_delay(pre_stop(&pod, "app").unwrap()), Some(15));
    assert_eq!(hook_delay(pre_stop(&pod, "nginx").unwrap()), Some(10));

    let statefulset: StatefulSet = serde_json::from_value(after[2].clone()).unwrap();
    let template = statefulset.spec.unwrap().template;
    // B is the pod's own 120 s, D the template's 3 s.
    assert_eq!(grace(template.spec.as_ref().unwrap()), Some(123));
    assert!(
        template.metadata.unwrap().annotations.unwrap()["drain.io/status"]
            .contains("\"grace\":123")
    );

    let daemonset: DaemonSet = serde_json::from_value(after[3].clone()).unwrap();
    // A template without metadata gets one for the status annotation.
    assert!(daemonset.spec.unwrap().template.metadata.is_some());

    // The CronJob's pod opted out: byte-for-byte the same.
    let cronjob: CronJob = serde_json::from_value(after[4].clone()).unwrap();
    assert_eq!(before[4], after[4]);
    assert!(cronjob.spec.is_some());
}

#[test]
fn inject_keeps_the_user_key_order() {
    let settings = Settings::default();
    let output = inject(&read("pods/seed-nginx-app.yaml"), &pod_context(&settings)).unwrap();
    let api_version = output.yaml.find("apiVersion").unwrap();
    let kind = output.yaml.find("kind").unwrap();
    let spec = output.yaml.find("spec:").unwrap();
    assert!(api_version < kind && kind < spec, "{}", output.yaml);
}

#[test]
fn inject_and_explain_agree() {
    let settings = Settings::default();
    for name in [
        "pods/seed-nginx-app.yaml",
        "pods/existing-hooks.yaml",
        "pods/native-sidecar-mesh.yaml",
        "pods/notify-wait-idle.yaml",
        "pods/restricted-haproxy.yaml",
        "manifests/workloads.yaml",
    ] {
        let input = read(name);
        let injected = documents(&inject(&input, &pod_context(&settings)).unwrap().yaml);
        let explained: Vec<Value> = serde_json::from_str(
            &explain(&input, &pod_context(&settings), OutputFormat::Json).unwrap(),
        )
        .unwrap();
        let templates: Vec<&Value> = injected
            .iter()
            .filter_map(|d| match d["kind"].as_str() {
                Some("Pod") => Some(d),
                Some("CronJob") => d.pointer("/spec/jobTemplate/spec/template"),
                Some("Deployment" | "StatefulSet" | "DaemonSet") => d.pointer("/spec/template"),
                _ => None,
            })
            .collect();
        assert_eq!(templates.len(), explained.len(), "{name}");
        for (template, explained) in templates.iter().zip(&explained) {
            let plan = &explained["plan"];
            let grace = template["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(30);
            assert_eq!(plan["graceAfter"].as_i64(), Some(grace), "{name}");
            for container in plan["containers"].as_array().unwrap() {
                if container["action"] != "planned" {
                    continue;
                }
                // By name: a first container of ours shifts the indices of the user's.
                let name = &container["name"];
                let handler = &template["spec"]["containers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| &c["name"] == name)
                    .unwrap()["lifecycle"]["preStop"];
                let typed: k8s_openapi::api::core::v1::LifecycleHandler =
                    serde_json::from_value(handler.clone()).unwrap();
                assert_eq!(
                    hook_delay(&typed).map(u64::from),
                    container["preStopSeconds"].as_u64(),
                    "{name} {}",
                    container["name"]
                );
            }
        }
    }
}

#[test]
fn explain_draws_one_bar_per_container_in_stop_order() {
    let settings = Settings::default();
    let text = explain(
        &read("pods/seed-nginx-app.yaml"),
        &pod_context(&settings),
        OutputFormat::Text,
    )
    .unwrap();
    let bar_of = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name} in\n{text}"))
            .to_owned()
    };
    let nginx = bar_of("nginx");
    let app = bar_of("application");
    // The SIGTERM mark of nginx comes before the app's, and both end in SIGKILL.
    assert!(nginx.find('|').unwrap() < app.find('|').unwrap(), "{text}");
    assert!(nginx.contains('X') && app.contains('X'));
    assert!(text.contains("grace unset (30s) -> 95s"), "{text}");
    assert!(text.contains("D=10s Q=3s M=60s S=5s B=30s"), "{text}");
    // The adaptive hold shows as a range: drawn with `~` up to the latest signal.
    assert!(
        nginx.contains("SIGQUIT 10-60s (held until quiet for 3s)"),
        "{text}"
    );
    assert!(nginx.contains("=|~") && app.contains("=|~"), "{text}");
    assert!(
        app.contains("SIGTERM 15-65s (after the proxy's listeners close, then 5s)")
            && app.contains("30s to stop"),
        "{text}"
    );
}

/// A chained hook reads as people write it in the text timeline; the JSON keeps its structure.
#[test]
fn explain_shows_chained_hooks_as_people_write_them() {
    let settings = Settings::default();
    let input = read("pods/existing-hooks.yaml");
    let text = explain(&input, &pod_context(&settings), OutputFormat::Text).unwrap();
    assert!(
        text.contains(
            r#"then runs its own hook: exec /bin/sh -c "curl -X POST localhost:8080/quiesce""#
        ),
        "{text}"
    );
    assert!(
        text.contains("then runs its own hook: httpGet http://127.0.0.1:9000/shutdown"),
        "{text}"
    );
    assert!(
        !text.contains("Exec {") && !text.contains("HttpGet {"),
        "{text}"
    );
    let json: Value = serde_json::from_str(
        &explain(&input, &pod_context(&settings), OutputFormat::Json).unwrap(),
    )
    .unwrap();
    let containers = &json[0]["plan"]["containers"];
    assert_eq!(containers[0]["chained"]["kind"], "exec");
    assert_eq!(containers[0]["chained"]["command"][0], "/bin/sh");
    assert_eq!(
        containers[1]["chained"],
        serde_json::json!({"kind": "httpGet", "url": "http://127.0.0.1:9000/shutdown"})
    );
}

/// The offline CLI applies the same work bounds as the server: they live in the one entry point.
#[test]
fn inject_applies_the_work_bounds_of_the_server() {
    let settings = Settings::default();
    let containers: Vec<Value> = (0..=drain_webhook::limits::MAX_CONTAINERS)
        .map(|i| serde_json::json!({"name": format!("c{i}"), "image": "app:1"}))
        .collect();
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "huge"},
        "spec": {"containers": containers},
    });
    let err = inject(&pod.to_string(), &pod_context(&settings))
        .unwrap_err()
        .to_string();
    assert!(err.contains("at most 1000 containers"), "{err}");
    assert!(err.contains("drain.io/inject"), "{err}");
}

#[test]
fn json_input_and_lists_are_accepted() {
    let settings = Settings::default();
    let pod = fixture("pods/seed-nginx-app.yaml");
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [pod]});
    let output = inject(&list.to_string(), &pod_context(&settings)).unwrap();
    let docs = documents(&output.yaml);
    assert_eq!(
        docs[0]["items"][0]["spec"]["terminationGracePeriodSeconds"],
        95
    );
}

#[test]
fn bad_input_is_one_clear_line() {
    let settings = Settings::default();
    let cases = [
        (
            read("pods/bad-annotation.yaml"),
            "Pod typo: annotation drain.io/delay=\"10 seconds\"",
        ),
        ("kind: Pod\nspec: [".to_string(), "invalid YAML"),
        ("{\"kind\": \"Pod\",".to_string(), "invalid JSON"),
        (
            "kind: Deployment\nmetadata: {name: x}\nspec: {}\n".to_string(),
            "Deployment x: has no pod template",
        ),
        (
            "kind: Pod\nmetadata: {name: x}\nspec: {containers: 5}\n".to_string(),
            "Pod x: the object does not read as a pod",
        ),
    ];
    for (input, expected) in cases {
        let err = inject(&input, &pod_context(&settings))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let err = explain(&input, &pod_context(&settings), OutputFormat::Json)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn warnings_name_the_object() {
    let settings = Settings::default();
    let output = inject(&read("pods/existing-hooks.yaml"), &pod_context(&settings)).unwrap();
    assert!(
        output
            .warnings
            .iter()
            .any(|w| w.starts_with("Pod hooks: container \"tcp-app\" left untouched")),
        "{:?}",
        output.warnings
    );
}

fn run_cli(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_drain-webhook"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn the_cli_reports_a_bad_annotation_in_one_line_and_exits_non_zero() {
    let path = fixture_path("pods/bad-annotation.yaml");
    for command in ["inject", "explain"] {
        let out = run_cli(&[command, "-f", path.to_str().unwrap()], None);
        assert!(!out.status.success());
        assert!(out.stdout.is_empty(), "nothing half-done on stdout");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("drain.io/delay") && stderr.contains("for example"));
    }
}

/// A hold the settings cannot fit stops the command before it plans anything, with the fix.
#[test]
fn hold_flags_that_cannot_work_are_refused_with_the_fix() {
    let out = run_cli(&["explain", "-f", "-", "--quiet", "0"], Some(""));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 1s"), "{stderr}");
    let out = run_cli(
        &[
            "explain",
            "-f",
            "-",
            "--max-delay",
            "1h",
            "--max-grace",
            "1h",
        ],
        Some(""),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--max-delay 3600s") && stderr.contains("for example 3565s"),
        "{stderr}"
    );
}

#[test]
fn the_cli_reads_stdin_and_takes_the_planning_flags() {
    let input = read("pods/seed-nginx-app.yaml");
    let out = run_cli(
        &[
            "explain",
            "-f",
            "-",
            "-o",
            "json",
            "--kube-version",
            "1.34",
            "--delay",
            "20s",
            "--max-delay",
            "90s",
            "--quiet",
            "4s",
        ],
        Some(&input),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plans: Value = serde_json::from_slice(&out.stdout).unwrap();
    // M + S + B.
    assert_eq!(plans[0]["plan"]["graceAfter"], 90 + 5 + 30);
    assert_eq!(plans[0]["plan"]["containers"][1]["preStopSeconds"], 25);
    let timing = &plans[0]["plan"]["containers"][0]["timing"];
    assert_eq!(
        (
            &timing["kind"],
            &timing["floor"],
            &timing["quiet"],
            &timing["cap"]
        ),
        (&"adaptive".into(), &20.into(), &4.into(), &90.into()),
        "{timing}"
    );

    let out = run_cli(
        &[
            "inject",
            "-f",
            "-",
            "--hook-mode",
            "sleep",
            "--kube-version",
            "1.34",
        ],
        Some(&input),
    );
    assert!(out.status.success());
    let docs = documents(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(
        docs[0]["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        10
    );
    // The warning about the graceful signal goes to stderr, not into the YAML.
    assert!(String::from_utf8(out.stderr).unwrap().contains("warning:"));
}

/// explain cites the profile (text and JSON) and prints the below-the-floor warning.
#[test]
fn explain_cites_the_profile_and_warns_about_a_delay_below_its_floor() {
    let settings = Settings::default();
    let input = read("pods/single-app.yaml").replace(
        "  name: api\n",
        "  name: api\n  annotations: {drain.io/profile: aws-nlb}\n",
    );
    let text = explain(&input, &pod_context(&settings), OutputFormat::Text).unwrap();
    assert!(text.contains("D=120s"), "{text}");
    assert!(text.contains("profile aws-nlb: D at least 120s"), "{text}");
    assert!(text.contains("aws-load-balancer-controller#2366"), "{text}");
    let json: Value = serde_json::from_str(
        &explain(&input, &pod_context(&settings), OutputFormat::Json).unwrap(),
    )
    .unwrap();
    assert_eq!(json[0]["plan"]["profile"]["delayFloor"], 120);

    let lower = input.replace(
        "{drain.io/profile: aws-nlb}",
        "{drain.io/profile: aws-nlb, drain.io/delay: \"15\"}",
    );
    let text = explain(&lower, &pod_context(&settings), OutputFormat::Text).unwrap();
    assert!(text.contains("D=15s"), "{text}");
    assert!(text.contains("warning: drain.io/delay=\"15\""), "{text}");
}

/// explain shows the native hook, the stop signal the kubelet sends, the added os.name and the
/// gate warning (text), and the same in JSON.
#[test]
fn explain_shows_the_native_hook_and_its_warning() {
    let settings = Settings::default();
    let input = read("pods/seed-nginx-app.yaml").replace(
        "  namespace: shop\n",
        "  namespace: shop\n  annotations: {drain.io/hook: native}\n",
    );
    let text = explain(&input, &pod_context(&settings), OutputFormat::Text).unwrap();
    let nginx = text
        .lines()
        .find(|l| l.trim_start().starts_with("nginx"))
        .unwrap();
    assert!(nginx.contains("proxy native"), "{text}");
    assert!(nginx.contains("SIGQUIT at 10s"), "{text}");
    assert!(text.contains("adds spec.os.name: linux"), "{text}");
    assert!(
        text.contains("warning: hook mode native writes lifecycle.stopSignal (nginx SIGQUIT): ContainerStopSignals is alpha"),
        "{text}"
    );
    let json: Value = serde_json::from_str(
        &explain(&input, &pod_context(&settings), OutputFormat::Json).unwrap(),
    )
    .unwrap();
    let plan = &json[0]["plan"];
    assert_eq!(plan["containers"][0]["hook"], "native");
    assert_eq!(plan["containers"][0]["signal"], "SIGQUIT");
    assert_eq!(plan["addsOsLinux"], true);
}

/// explain lists the variables `drain.io/env` adds per container, leaves out one the container
/// sets itself, and warns about it.
#[test]
fn explain_shows_the_env_the_plan_adds() {
    let settings = Settings::default();
    let input = read("pods/seed-nginx-app.yaml").replace(
        "  namespace: shop\n",
        "  namespace: shop\n  annotations: {drain.io/env: \"true\"}\n",
    );
    let line = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap()
            .to_string()
    };
    let text = explain(&input, &pod_context(&settings), OutputFormat::Text).unwrap();
    assert!(
        line(&text, "nginx")
            .ends_with("env DRAIN_DELAY_SECONDS=10 DRAIN_SHUTDOWN_BUDGET_SECONDS=30"),
        "{text}"
    );
    assert!(
        line(&text, "application")
            .ends_with("env DRAIN_DELAY_SECONDS=15 DRAIN_SHUTDOWN_BUDGET_SECONDS=30"),
        "{text}"
    );
    let own = input.replace(
        "      ports: [{containerPort: 8080}]",
        "      ports: [{containerPort: 8080}]\n      env: [{name: DRAIN_DELAY_SECONDS, value: \"3\"}]",
    );
    assert_ne!(own, input);
    let text = explain(&own, &pod_context(&settings), OutputFormat::Text).unwrap();
    assert!(
        line(&text, "application").ends_with("env DRAIN_SHUTDOWN_BUDGET_SECONDS=30"),
        "{text}"
    );
    assert!(
        text.contains("warning: container \"application\" sets DRAIN_DELAY_SECONDS to \"3\" itself, which is kept; the plan's value is 15"),
        "{text}"
    );
    // Without the annotation: no env at all.
    let text = explain(
        &read("pods/seed-nginx-app.yaml"),
        &pod_context(&settings),
        OutputFormat::Text,
    )
    .unwrap();
    assert!(!text.contains("DRAIN_DELAY_SECONDS"), "{text}");
}

/// `drain-webhook profiles` lists the catalogue a server with the same flags would plan with
/// (where each profile comes from, the default marked) and refuses a bad file the way `serve`
/// would: the check to run on a profiles file before it goes into the chart.
#[test]
fn profiles_lists_the_catalogue_and_checks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles.json");
    std::fs::write(
        &file,
        r#"{"profiles": [
            {"name": "corp-f5", "delayFloor": 45, "budgetFloor": 20, "note": "F5 pool sync, measured"},
            {"name": "aws-nlb", "delayFloor": 150, "note": "our NLB, measured at 140 s"}]}"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = run_cli(
        &["profiles", "--profiles-file", path, "--profile", "corp-f5"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_string()
    };
    assert!(
        line("corp-f5 (default)").contains("45s      20s  file "),
        "{text}"
    );
    assert!(
        line("aws-nlb").contains("150s        -  file (replaces built-in)"),
        "{text}"
    );
    assert!(line("gke-neg").contains("30s        -  built-in"), "{text}");

    let out = run_cli(&["profiles", "--profiles-file", path, "-o", "json"], None);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let corp = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "corp-f5")
        .unwrap();
    assert_eq!(corp["origin"], "file");
    assert_eq!(corp["delayFloor"], 45);
    assert_eq!(corp["default"], false);

    std::fs::write(
        &file,
        r#"{"profiles": [{"name": "corp-f5", "delay": 45, "note": "n"}]}"#,
    )
    .unwrap();
    let out = run_cli(&["profiles", "--profiles-file", path], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad file is an error");
    assert!(
        stderr.contains(path) && stderr.contains("unknown field `delay`"),
        "{stderr}"
    );
}

/// Every `-o` takes the same formats: explain's YAML is its JSON, as YAML.
#[test]
fn explain_as_yaml_is_the_json_as_yaml() {
    let settings = Settings::default();
    let input = std::fs::read_to_string(fixture_path("pods/seed-nginx-app.yaml")).unwrap();
    let json: Value = serde_json::from_str(
        &explain(&input, &pod_context(&settings), OutputFormat::Json).unwrap(),
    )
    .unwrap();
    let yaml = explain(&input, &pod_context(&settings), OutputFormat::Yaml).unwrap();
    assert!(yaml.contains("migrate: SIGHUP"), "{yaml}");
    let read: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(read, json);
}

/// explain's JSON keeps the container keys, their order and their meaning of every earlier
/// version, now that the times come from the action (issue 29): `preStopSeconds` and
/// `sigtermAt` are the earliest signal, `budgetAfterSigterm` what the grace period leaves after
/// the latest, `migrate` beside the container although the hold carries it.
#[test]
fn explain_json_keeps_the_container_keys_and_their_order() {
    let settings = Settings::default();
    let input = read("pods/seed-nginx-app.yaml");
    let text = explain(&input, &pod_context(&settings), OutputFormat::Json).unwrap();
    let plans: Value = serde_json::from_str(&text).unwrap();
    let containers = &plans[0]["plan"]["containers"];
    let nginx = &containers[0];
    let app = &containers[1];
    let times = |c: &Value| {
        let keys = [
            "preStopSeconds",
            "sigtermAt",
            "budgetAfterSigterm",
            "hookMaxSeconds",
        ];
        keys.map(|key| c[key].as_u64())
    };
    // Grace 95 s: nginx may hold to 60 s, the app follows it to 65 s.
    assert_eq!(times(nginx), [Some(10), Some(10), Some(35), Some(88)]);
    assert_eq!(times(app), [Some(15), Some(15), Some(30), Some(95)]);
    assert_eq!(nginx["migrate"], "SIGHUP");
    assert_eq!(nginx["timing"]["kind"], "adaptive");
    assert_eq!(app["timing"]["kind"], "afterProxy");
    // The order, as written: the first container's keys appear in this sequence.
    let first = &text[text.find("\"containers\"").unwrap()..];
    let first = &first[..first.find('}').unwrap()];
    let order = [
        "\"name\"",
        "\"action\"",
        "\"hook\"",
        "\"preStopSeconds\"",
        "\"sigtermAt\"",
        "\"budgetAfterSigterm\"",
        "\"timing\"",
    ];
    let positions: Vec<usize> = order.iter().map(|key| first.find(key).unwrap()).collect();
    assert!(positions.is_sorted(), "{first}");
    let rest = &text[text.find("\"hookMaxSeconds\": 88").unwrap()..];
    let after: Vec<usize> = ["\"hookMaxSeconds\"", "\"signal\"", "\"migrate\""]
        .iter()
        .map(|key| rest.find(key).unwrap())
        .collect();
    assert!(after.is_sorted(), "{rest}");
}
