//! `drain-webhook audit -f` through the real binary: every coverage state, drift and each risk
//! on its own fixture (tests/fixtures/audit/), the exit codes of `--fail-on`, and the shared
//! real-world corpus.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_drain-webhook"))
        .arg("audit")
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("the binary ends")
}

/// The rows of `audit -o json` on one fixture under tests/fixtures/audit/.
fn rows(name: &str, extra: &[&str]) -> Vec<Value> {
    let path = fixture(&format!("audit/{name}"));
    let mut args = vec!["-f", path.to_str().unwrap(), "-o", "json"];
    args.extend_from_slice(extra);
    let out = run(&args, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("json output")
        .as_array()
        .expect("an array of rows")
        .clone()
}

fn only_row(name: &str) -> Value {
    let rows = rows(name, &[]);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    rows[0].clone()
}

fn risk_kinds(row: &Value) -> Vec<String> {
    row["risks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            // Every risk explains itself and says how to fix it.
            assert!(!r["message"].as_str().unwrap().is_empty(), "{r}");
            assert!(!r["fix"].as_str().unwrap().is_empty(), "{r}");
            r["kind"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn the_seed_case_is_not_opted_in_and_inject_would_plan_it() {
    let out = run(
        &[
            "-f",
            fixture("pods/seed-nginx-app.yaml").to_str().unwrap(),
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &rows[0];
    assert_eq!(row["workload"], "Pod shop/shop");
    assert_eq!(row["coverage"], "not-opted-in");
    assert!(risk_kinds(row).is_empty(), "{row:#}");
    let change = &row["wouldChange"];
    assert_eq!(change["graceBefore"], Value::Null);
    assert_eq!(change["graceAfter"], 95, "M + S + B");
    assert_eq!(
        change["containers"],
        serde_json::json!([
            {"container": "nginx", "hook": "helper", "delaySeconds": 10},
            {"container": "application", "hook": "helper", "delaySeconds": 15}
        ])
    );
}

#[test]
fn namespace_opted_in_turns_not_opted_in_into_opted_in_unprotected() {
    let seed = fixture("pods/seed-nginx-app.yaml");
    let out = run(
        &[
            "-f",
            seed.to_str().unwrap(),
            "-o",
            "json",
            "--namespace-opted-in",
        ],
        None,
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["coverage"], "opted-in-unprotected");
}

#[test]
fn every_coverage_state_has_its_fixture() {
    let protected = only_row("protected.yaml");
    assert_eq!(protected["coverage"], "protected");
    assert_eq!(protected["drift"], serde_json::json!([]));
    assert!(protected.get("wouldChange").is_none(), "{protected:#}");

    let opted_in = only_row("opted-in.yaml");
    assert_eq!(opted_in["coverage"], "opted-in-unprotected");
    assert!(
        opted_in["reason"]
            .as_str()
            .unwrap()
            .contains("rollout restart")
    );

    let opted_out = only_row("opted-out.yaml");
    assert_eq!(opted_out["coverage"], "opted-out");
    assert!(opted_out.get("wouldChange").is_none());

    let skipped = only_row("grace-zero.yaml");
    assert_eq!(skipped["coverage"], "skipped");
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("terminationGracePeriodSeconds is 0"),
        "{skipped:#}"
    );
}

#[test]
fn drift_on_a_pod_grouped_under_its_deployment() {
    // Deployment, its ReplicaSet and its Pod: one row, the pod listed under it.
    let row = only_row("drift.yaml");
    assert_eq!(row["workload"], "Deployment shop/web");
    assert_eq!(row["pods"], serde_json::json!(["web-5d8f-x2k"]));
    assert_eq!(row["coverage"], "protected");
    let drift = row["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{row:#}");
    let text = drift[0].as_str().unwrap();
    assert!(text.contains("50s") && text.contains("45s"), "{text}");
}

#[test]
fn each_risk_is_found_on_its_fixture() {
    for (file, kind) in [
        ("grace-zero.yaml", "grace-zero"),
        ("prestop-cut.yaml", "prestop-cut"),
        ("probe-grace.yaml", "probe-grace"),
        ("native-sidecar-proxy.yaml", "native-sidecar-proxy"),
        ("shared-pid.yaml", "shared-pid-proxy"),
    ] {
        let row = only_row(file);
        assert_eq!(risk_kinds(&row), vec![kind.to_owned()], "{file}: {row:#}");
    }
    // The protected fixture, with the same nginx as shared-pid.yaml, was planned before the
    // adaptive hold: its fixed holds are the one risk, gone where the hold is off (M <= D).
    assert_eq!(risk_kinds(&only_row("protected.yaml")), vec!["fixed-hold"]);
    let hold_off = rows("protected.yaml", &["--max-delay", "0"]);
    assert!(risk_kinds(&hold_off[0]).is_empty(), "{hold_off:#?}");
    // On the host network today's plan holds for the fixed D too: a restart would change
    // nothing, so its fixed holds are no risk.
    let text = std::fs::read_to_string(fixture("audit/protected.yaml")).unwrap();
    let on_host = text.replacen(
        "      terminationGracePeriodSeconds: 45",
        "      hostNetwork: true\n      terminationGracePeriodSeconds: 45",
        1,
    );
    assert_ne!(on_host, text, "the fixture still sets the grace period");
    let out = run(&["-f", "-", "-o", "json"], Some(&on_host));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json output");
    assert!(
        !risk_kinds(&rows[0]).contains(&"fixed-hold".to_owned()),
        "{rows:#?}"
    );
}

#[test]
fn a_load_balancer_service_only_flags_the_workload_it_selects() {
    let rows = rows("lb-lag.yaml", &[]);
    assert_eq!(rows.len(), 2, "the Service is not a workload: {rows:#?}");
    let edge = rows
        .iter()
        .find(|r| r["workload"] == "Deployment shop/edge");
    let other = rows
        .iter()
        .find(|r| r["workload"] == "Deployment shop/other");
    // The adaptive hold's cap (60 s) covers the NLB's 30 s; a cap below it does not.
    assert!(risk_kinds(edge.unwrap()).is_empty());
    assert!(risk_kinds(other.unwrap()).is_empty());
    let short = crate::rows("lb-lag.yaml", &["--max-delay", "20s"]);
    let edge = short
        .iter()
        .find(|r| r["workload"] == "Deployment shop/edge");
    assert_eq!(risk_kinds(edge.unwrap()), vec!["lb-lag"]);
    // With the hold off, a delay above the lag is enough.
    let fixed = crate::rows("lb-lag.yaml", &["--max-delay", "0"]);
    let edge = fixed
        .iter()
        .find(|r| r["workload"] == "Deployment shop/edge");
    assert_eq!(risk_kinds(edge.unwrap()), vec!["lb-lag"]);
    let rows = rows_with_delay("lb-lag.yaml", "60s");
    assert!(rows.iter().all(|r| risk_kinds(r).is_empty()), "{rows:#?}");
}

fn rows_with_delay(name: &str, delay: &str) -> Vec<Value> {
    rows(name, &["--delay", delay])
}

#[test]
fn fail_on_exits_2_only_when_a_row_trips_it() {
    let code = |file: &str, extra: &[&str]| {
        let path = fixture(&format!("audit/{file}"));
        let mut args = vec!["-f", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        run(&args, None).status.code()
    };
    assert_eq!(code("grace-zero.yaml", &[]), Some(0));
    assert_eq!(code("grace-zero.yaml", &["--fail-on", "risk"]), Some(2));
    assert_eq!(code("protected.yaml", &["--fail-on", "risk"]), Some(2));
    assert_eq!(
        code("protected.yaml", &["--fail-on", "risk", "--max-delay", "0"]),
        Some(0)
    );
    assert_eq!(
        code("protected.yaml", &["--fail-on", "unprotected"]),
        Some(0)
    );
    assert_eq!(
        code("opted-in.yaml", &["--fail-on", "unprotected"]),
        Some(2)
    );
    // Drift counts as unprotected: the pods no longer run the plan.
    assert_eq!(code("drift.yaml", &["--fail-on", "unprotected"]), Some(2));
    // Bad input is an error (1), not a finding (2), and names what is wrong.
    let out = run(&["-f", "-"], Some("kind: [unclosed"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid YAML"));
}

#[test]
fn text_yaml_and_colour() {
    let path = fixture("audit/grace-zero.yaml");
    let out = run(&["-f", path.to_str().unwrap()], None);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("WORKLOAD"), "{text}");
    assert!(
        text.contains("risk grace-zero") && text.contains("fix:"),
        "{text}"
    );
    // stdout is a pipe here: no escape codes.
    assert!(!text.contains('\x1b'), "{text}");
    let out = run(&["-f", path.to_str().unwrap(), "-o", "yaml"], None);
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.contains("coverage: skipped"), "{yaml}");
    assert!(yaml.contains("kind: grace-zero"), "{yaml}");
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("DRAIN_REALWORLD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/realworld"));
    dir.is_dir().then_some(dir)
}

#[test]
fn the_realworld_corpus_audits_every_workload_once() {
    let Some(dir) = corpus_dir() else {
        eprintln!(
            "skipped: no real-world corpus at ../shared/realworld (set DRAIN_REALWORLD_DIR to run it)"
        );
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{}", dir.display());
    // All of it as one stream, the way `kubectl get -o yaml` output arrives.
    let mut stream = String::new();
    for file in &files {
        stream.push_str("---\n");
        stream.push_str(&std::fs::read_to_string(file).unwrap());
        stream.push('\n');
    }
    let out = run(&["-f", "-", "-o", "json"], Some(&stream));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<&str> = rows
        .iter()
        .map(|r| r["workload"].as_str().unwrap())
        .collect();
    assert!(rows.iter().all(|r| r["coverage"].is_string()));
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "a workload listed twice: {names:?}");
    assert!(
        count >= files.len(),
        "{count} rows for {} files",
        files.len()
    );
    let grace_zero: Vec<&str> = rows
        .iter()
        .filter(|r| risk_kinds(r).iter().any(|k| k == "grace-zero"))
        .map(|r| r["workload"].as_str().unwrap())
        .collect();
    assert!(
        grace_zero.contains(&"Deployment metallb-system/controller")
            && grace_zero.contains(&"DaemonSet kube-system/calico-node"),
        "{grace_zero:?}"
    );
}

#[test]
fn a_replaced_pre_stop_hook_is_drift() {
    let protected = std::fs::read_to_string(fixture("audit/protected.yaml")).unwrap();
    // Another webhook rewrote nginx's hook (the first container's command).
    let rewritten = protected.replacen("- /.drain/drain-helper", "- /bin/true", 1);
    assert_ne!(rewritten, protected);
    let out = run(&["-f", "-", "-o", "json"], Some(&rewritten));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let drift = rows[0]["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{rows:#}");
    assert!(drift[0].as_str().unwrap().contains("nginx"), "{drift:?}");
}

#[test]
fn the_mixed_namespace_of_the_docs() {
    let rows = rows("mixed.yaml", &[]);
    let coverage: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["workload"].as_str().unwrap(),
                r["coverage"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        coverage,
        vec![
            ("Deployment shop/web", "protected"),
            ("Deployment shop/api", "opted-in-unprotected"),
            ("StatefulSet shop/db", "opted-out"),
            ("Deployment shop/edge", "not-opted-in"),
            ("Deployment shop/other", "not-opted-in"),
            ("CronJob shop/report", "skipped"),
        ]
    );
}

// --- Live: a fake API server (an in-process tower service behind a real kube::Client) ------

#[path = "common/fake_api.rs"]
mod fake_api;

mod live {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::fake_api::{FakeApi, Reply, list};
    use drain_webhook::audit::{PAGE_SIZE, audit_cluster, read_cluster};
    use drain_webhook::settings::Settings;
    use kube::Client;
    use serde_json::{Value, json};

    /// A Deployment as the live tests list it.
    pub(super) fn deployment(namespace: &str, name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": namespace},
               "spec": {"selector": {"matchLabels": {"app": name}},
                        "template": {"metadata": {"labels": {"app": name}},
                                     "spec": {"containers": [{"name": name, "image": "ghcr.io/acme/x:1"}]}}}})
    }

    /// Answers list calls: namespaces over two pages, shop's Deployments over two pages,
    /// `secret`'s Deployments with 403; records every request.
    fn answer(path: &str, query: &str) -> (u16, Value) {
        let token = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("continue="))
            .unwrap_or("");
        match path {
            "/version" => (
                200,
                json!({"major": "1", "minor": "34", "gitVersion": "v1.34.0",
                "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "",
                "compiler": "", "platform": ""}),
            ),
            "/api/v1/namespaces" if token.is_empty() => (
                200,
                list(
                    "Namespace",
                    vec![json!({"metadata": {"name": "shop",
                    "labels": {"drain.io/inject": "enabled"},
                    "annotations": {"drain.io/delay": "20s", "other": "x"}}})],
                    Some("ns2"),
                ),
            ),
            "/api/v1/namespaces/shop" => (
                200,
                json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "shop",
                    "labels": {"drain.io/inject": "enabled"},
                    "annotations": {"drain.io/delay": "20s"}}}),
            ),
            "/api/v1/namespaces" => (
                200,
                list(
                    "Namespace",
                    vec![json!({"metadata": {"name": "secret"}})],
                    None,
                ),
            ),
            "/apis/apps/v1/namespaces/shop/deployments" if token.is_empty() => (
                200,
                list("Deployment", vec![deployment("shop", "web")], Some("d2")),
            ),
            "/apis/apps/v1/namespaces/shop/deployments" => (
                200,
                list("Deployment", vec![deployment("shop", "api")], None),
            ),
            "/apis/apps/v1/namespaces/secret/deployments" => (
                403,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": "deployments.apps is forbidden", "reason": "Forbidden", "code": 403}),
            ),
            "/api/v1/namespaces/secret/pods" => (
                200,
                list(
                    "Pod",
                    vec![
                        json!({"metadata": {"name": "lonely", "namespace": "secret"},
                    "spec": {"containers": [{"name": "c", "image": "ghcr.io/acme/x:1"}]}}),
                    ],
                    None,
                ),
            ),
            _ => (200, list("X", vec![], None)),
        }
    }

    fn fake() -> (Client, Arc<FakeApi>) {
        let fake = FakeApi::routes(|seen| {
            let (status, body) = answer(seen.path, seen.query);
            Some(Reply::json(status, body))
        });
        (fake.client_in("default"), fake)
    }

    #[tokio::test]
    async fn all_namespaces_paginated_with_one_forbidden_list() {
        let (client, fake) = fake();
        let cluster = read_cluster(&client, None)
            .await
            .expect("the audit goes on");
        assert_eq!(cluster.denied.len(), 1, "{:?}", cluster.denied);
        assert!(
            cluster.denied[0].contains("deployments")
                && cluster.denied[0].contains("secret")
                && cluster.denied[0].contains("403"),
            "{}",
            cluster.denied[0]
        );
        let settings = Settings::default();
        let rows = audit_cluster(cluster, &settings, None).unwrap();
        let found: BTreeMap<String, (String, Option<i64>)> = rows
            .iter()
            .map(|r| {
                let row = serde_json::to_value(r).unwrap();
                (
                    row["workload"].as_str().unwrap().to_owned(),
                    (
                        row["coverage"].as_str().unwrap().to_owned(),
                        row["wouldChange"]["containers"][0]["delaySeconds"].as_i64(),
                    ),
                )
            })
            .collect();
        // Both pages of shop's Deployments; its label opts it in and its drain.io/delay
        // annotation reaches the planner. The forbidden namespace's Pods are still audited.
        assert_eq!(
            found,
            BTreeMap::from([
                (
                    "Deployment shop/web".into(),
                    ("opted-in-unprotected".into(), Some(20))
                ),
                (
                    "Deployment shop/api".into(),
                    ("opted-in-unprotected".into(), Some(20))
                ),
                (
                    "Pod secret/lonely".into(),
                    ("not-opted-in".into(), Some(10))
                ),
            ])
        );
        let calls: Vec<String> = fake.calls().iter().map(|c| c.url()).collect();
        let limit = format!("limit={PAGE_SIZE}");
        let lists: Vec<&String> = calls
            .iter()
            .filter(|c| !c.starts_with("/version"))
            .collect();
        assert!(lists.iter().all(|c| c.contains(&limit)), "{lists:?}");
        assert!(
            calls
                .iter()
                .any(|c| c.starts_with("/api/v1/namespaces?") && c.contains("continue=ns2"))
        );
        assert!(
            calls
                .iter()
                .any(|c| c.contains("shop/deployments") && c.contains("continue=d2"))
        );
        // One list per kind and page, never one request per object: 2 namespace pages,
        // 8 kinds in each of 2 namespaces, one more page of shop's Deployments.
        assert_eq!(lists.len(), 2 + 16 + 1, "{lists:?}");
    }

    /// The webhook's own namespace (its configuration's Service's) is `webhook-namespace`,
    /// never advised to opt in, whatever its labels say; `--fail-on unprotected` ignores it.
    #[tokio::test]
    async fn the_webhook_namespace_is_never_mutated_and_never_advised_to_opt_in() {
        use drain_webhook::audit::{FailOn, fails, read_webhook_namespace};
        let fake = FakeApi::routes(|seen| {
            Some(match seen.path {
                "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/drain-webhook" => {
                    Reply::json(
                        200,
                        json!({"metadata": {"name": "drain-webhook"},
                        "webhooks": [{"name": "pods.drain-webhook.drain.io",
                            "admissionReviewVersions": ["v1"], "sideEffects": "None",
                            "clientConfig": {"service": {"name": "drain-webhook", "namespace": "drain-system"}}}]}),
                    )
                }
                "/api/v1/namespaces" => Reply::json(
                    200,
                    list(
                        "Namespace",
                        vec![
                            json!({"metadata": {"name": "drain-system"}}),
                            json!({"metadata": {"name": "plain"}}),
                        ],
                        None,
                    ),
                ),
                "/apis/apps/v1/namespaces/drain-system/deployments" => Reply::json(
                    200,
                    list(
                        "Deployment",
                        vec![deployment("drain-system", "drain-webhook")],
                        None,
                    ),
                ),
                "/apis/apps/v1/namespaces/plain/deployments" => Reply::json(
                    200,
                    list("Deployment", vec![deployment("plain", "web")], None),
                ),
                _ => Reply::json(200, list("X", vec![], None)),
            })
        });
        let client = fake.client_in("default");
        let mut cluster = read_cluster(&client, None).await.unwrap();
        read_webhook_namespace(&client, "drain-webhook", &mut cluster)
            .await
            .unwrap();
        assert_eq!(cluster.webhook_namespace(), Some("drain-system"));
        let rows = audit_cluster(cluster, &Settings::default(), None).unwrap();
        let row = |workload: &str| {
            serde_json::to_value(rows.iter().find(|r| r.workload == workload).unwrap()).unwrap()
        };
        let own = row("Deployment drain-system/drain-webhook");
        assert_eq!(own["coverage"], "webhook-namespace");
        let reason = own["reason"].as_str().unwrap();
        assert!(
            reason.contains("never mutated") && !reason.contains("label the namespace"),
            "{reason}"
        );
        assert!(own.get("wouldChange").is_none(), "{own:#}");
        assert_eq!(row("Deployment plain/web")["coverage"], "not-opted-in");
        let own_only: Vec<_> = rows
            .iter()
            .filter(|r| r.workload.contains("drain-system"))
            .cloned()
            .collect();
        assert!(!fails(&own_only, FailOn::Unprotected));

        // Without the configuration (404), nothing is named and the audit goes on.
        let fake = FakeApi::routes(|_| None);
        let mut cluster = drain_webhook::audit::Cluster::default();
        read_webhook_namespace(&fake.client_in("default"), "drain-webhook", &mut cluster)
            .await
            .unwrap();
        assert_eq!(cluster.webhook_namespace(), None);
    }

    #[tokio::test]
    async fn explain_reads_one_object_or_the_whole_namespace() {
        use drain_webhook::audit::explain_cluster;
        use drain_webhook::offline::OutputFormat;
        let (client, _) = fake();
        let cluster = read_cluster(&client, Some("shop")).await.unwrap();
        let settings = Settings::default();
        let one = explain_cluster(
            &cluster,
            &settings,
            None,
            Some(("Deployment", "web")),
            OutputFormat::Json,
        )
        .unwrap();
        let one: Value = serde_json::from_str(&one).unwrap();
        assert_eq!(one.as_array().unwrap().len(), 1, "{one:#}");
        assert_eq!(one[0]["object"], "Deployment shop/web");
        // Planned with the namespace's drain.io/delay.
        assert_eq!(one[0]["plan"]["delay"], 20);
        let all = explain_cluster(&cluster, &settings, None, None, OutputFormat::Text).unwrap();
        assert!(
            all.contains("Deployment shop/web") && all.contains("Deployment shop/api"),
            "{all}"
        );
        let missing = explain_cluster(
            &cluster,
            &settings,
            None,
            Some(("Deployment", "nope")),
            OutputFormat::Text,
        )
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("nope") && missing.contains("-n"),
            "{missing}"
        );
    }
}

#[test]
fn live_audit_without_a_cluster_or_a_source_says_what_to_do() {
    let out = Command::new(env!("CARGO_BIN_EXE_drain-webhook"))
        .args(["audit", "-n", "shop"])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("-f FILE"), "{stderr}");
    // Neither -f, -n nor -A: clap names the choices.
    let out = run(&[], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--filename") && stderr.contains("--all-namespaces"),
        "{stderr}"
    );
}

/// A native hook whose `lifecycle.stopSignal` the API server dropped (gate off) is drift: the
/// proxy then gets SIGTERM after its sleep, not its graceful signal.
#[test]
fn a_dropped_native_stop_signal_is_drift() {
    let pod = r#"
apiVersion: v1
kind: Pod
metadata:
  name: shop
  namespace: shop
  annotations: {drain.io/inject: enabled, drain.io/hook: native}
spec:
  containers:
    - {name: nginx, image: "nginx:1.27"}
    - {name: application, image: "ghcr.io/acme/shop:2.3"}
"#;
    let mut inject = Command::new(env!("CARGO_BIN_EXE_drain-webhook"))
        .args(["inject", "-f", "-", "--kube-version", "1.34"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    inject
        .stdin
        .take()
        .unwrap()
        .write_all(pod.as_bytes())
        .unwrap();
    let out = inject.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mutated = String::from_utf8(out.stdout).unwrap();
    assert!(mutated.contains("stopSignal: SIGQUIT"), "{mutated}");
    let drift = |yaml: &str| -> Vec<Value> {
        let out = run(&["-f", "-", "-o", "json"], Some(yaml));
        let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
        rows[0]["drift"].as_array().unwrap().clone()
    };
    assert_eq!(drift(&mutated), Vec::<Value>::new());
    let dropped: String = mutated
        .lines()
        .filter(|line| !line.trim_start().starts_with("stopSignal:"))
        .map(|line| format!("{line}\n"))
        .collect();
    let found = drift(&dropped);
    assert_eq!(found.len(), 1, "{found:?}");
    let text = found[0].as_str().unwrap();
    assert!(
        text.contains("lifecycle.stopSignal")
            && text.contains("nginx")
            && text.contains("ContainerStopSignals"),
        "{text}"
    );
}

// --- Live: what the drain observer saw, read through the service proxy ---------------------

mod observed {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::fake_api::{FakeApi, Reply, list, status};
    use drain_webhook::audit::observed::attach;
    use drain_webhook::audit::{
        Unavailable, WebhookService, audit_cluster, read_cluster, read_observed,
        read_webhook_namespace, render,
    };
    use drain_webhook::offline::OutputFormat;
    use drain_webhook::settings::Settings;
    use serde_json::{Value, json};

    const PROXY: &str =
        "/api/v1/namespaces/drain-system/services/http:drain-webhook:admin/proxy/drains";

    fn service() -> WebhookService {
        WebhookService {
            namespace: "drain-system".into(),
            name: "drain-webhook".into(),
        }
    }

    fn leader() -> Value {
        json!({"leader": true, "identity": "drain-webhook-a_1_1", "holder": "drain-webhook-a_1_1",
            "workloads": [{"namespace": "shop", "kind": "Deployment", "name": "web",
                "drains": 24, "capHits": 0, "lagMedianSeconds": 6.1, "lagMaxSeconds": 16.2,
                "recent": [{"role": "proxy", "floor": 10.0, "end": 19.2, "why": "quiet",
                    "lastArrival": 16.2, "afterFloor": 9, "migratedAt": null,
                    "signalAt": 19.21, "exit": 0}]}]})
    }

    fn follower(holder: Option<&str>) -> Value {
        json!({"leader": false, "identity": "drain-webhook-b_1_1", "holder": holder,
            "message": "this replica does not observe drains", "workloads": []})
    }

    /// A fake whose proxy answers `answers[i]` to the i-th request (the last one after that).
    fn proxy_answers(answers: Vec<Reply>) -> (Arc<FakeApi>, Arc<AtomicUsize>) {
        let asked = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&asked);
        let fake = FakeApi::routes(move |seen| {
            (seen.path == PROXY).then(|| {
                let i = count.fetch_add(1, Ordering::SeqCst);
                answers[i.min(answers.len() - 1)].clone()
            })
        });
        (fake, asked)
    }

    fn status_reply(code: u16, reason: &str) -> Reply {
        let (code, body) = status(code, reason);
        Reply::json(code, body)
    }

    async fn read(answers: Vec<Reply>) -> (Result<usize, Unavailable>, usize) {
        let (fake, asked) = proxy_answers(answers);
        let read = read_observed(
            &fake.client_in("default"),
            Some(&service()),
            "drain-webhook",
        )
        .await
        .map(|w| w.len());
        (read, asked.load(Ordering::SeqCst))
    }

    /// The leader's aggregates come through the admin port's service proxy, asked again while a
    /// follower answers; they land beside the row of their workload, rendered in every format.
    #[tokio::test]
    async fn the_leaders_drains_are_shown_beside_their_workload() {
        let config =
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/drain-webhook";
        let asked = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&asked);
        let fake = FakeApi::routes(move |seen| {
            Some(match seen.path {
                p if p == config => Reply::json(
                    200,
                    json!({"metadata": {"name": "drain-webhook"},
                    "webhooks": [{"name": "pods.drain-webhook.drain.io",
                        "admissionReviewVersions": ["v1"], "sideEffects": "None",
                        "clientConfig": {"service": {"name": "drain-webhook",
                            "namespace": "drain-system", "port": 443}}}]}),
                ),
                PROXY => match count.fetch_add(1, Ordering::SeqCst) {
                    0 => Reply::json(200, follower(Some("drain-webhook-a_1_1"))),
                    _ => Reply::json(200, leader()),
                },
                "/api/v1/namespaces/shop" => Reply::json(
                    200,
                    json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "shop",
                        "labels": {"drain.io/inject": "enabled"}}}),
                ),
                "/apis/apps/v1/namespaces/shop/deployments" => Reply::json(
                    200,
                    list(
                        "Deployment",
                        vec![
                            super::live::deployment("shop", "web"),
                            super::live::deployment("shop", "api"),
                        ],
                        None,
                    ),
                ),
                _ => Reply::json(200, list("X", vec![], None)),
            })
        });
        let client = fake.client_in("default");
        let mut cluster = read_cluster(&client, Some("shop")).await.unwrap();
        read_webhook_namespace(&client, "drain-webhook", &mut cluster)
            .await
            .unwrap();
        assert_eq!(cluster.webhook_service, Some(service()));
        let observed = read_observed(&client, cluster.webhook_service.as_ref(), "drain-webhook")
            .await
            .unwrap();
        assert_eq!(
            asked.load(Ordering::SeqCst),
            2,
            "asked again after a follower"
        );
        let mut rows = audit_cluster(cluster, &Settings::default(), None).unwrap();
        attach(&mut rows, &observed);

        let json: Value =
            serde_json::from_str(&render(&rows, OutputFormat::Json, false).unwrap()).unwrap();
        let web = json
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["workload"] == "Deployment shop/web")
            .unwrap();
        assert_eq!(web["observed"]["drains"], 24);
        assert_eq!(web["observed"]["lagMaxSeconds"], 16.2);
        assert_eq!(web["observed"]["recommendation"]["verdict"], "enough");
        assert_eq!(
            web["observed"]["recommendation"]["message"],
            "max-delay 60 s is enough: lag at most 17 s over the last drain"
        );
        let api = json
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["workload"] == "Deployment shop/api")
            .unwrap();
        assert!(api.get("observed").is_none(), "{api:#}");

        let text = render(&rows, OutputFormat::Text, false).unwrap();
        assert!(
            text.contains(
                "\n  observed: 24 drains, 0 hit the cap; lag median 6.1 s, max 16.2 s (last 1)\n    enough: max-delay 60 s is enough"
            ) && text.matches("observed:").count() == 1,
            "{text}"
        );
        let yaml = render(&rows, OutputFormat::Yaml, false).unwrap();
        assert!(yaml.contains("verdict: enough"), "{yaml}");
    }

    /// Each way the aggregates can be out of reach is one line with its reason and fix, and
    /// the right number of requests.
    #[tokio::test]
    async fn each_missing_path_says_why_and_what_to_do() {
        let cases: Vec<(Vec<Reply>, usize, &[&str])> = vec![
            (
                vec![status_reply(403, "Forbidden")],
                1,
                &[
                    "services/proxy http:drain-webhook:admin",
                    "403",
                    "audit ClusterRole",
                ],
            ),
            (
                vec![status_reply(503, "ServiceUnavailable")],
                1,
                &[
                    "no webhook replica answers",
                    "503",
                    "kubectl -n drain-system get pods",
                ],
            ),
            (
                vec![status_reply(404, "NotFound")],
                1,
                &["no webhook replica answers", "404"],
            ),
            (
                vec![Reply::text(404, "404 page not found")],
                1,
                &["404: the webhook serves no drains", "upgrade drain-webhook"],
            ),
            (
                vec![Reply::text(
                    502,
                    "Error trying to reach service: dial tcp: i/o timeout",
                )],
                1,
                &["502", "i/o timeout", "networkPolicy.adminFrom"],
            ),
            (
                vec![Reply::text(200, "<html>not it</html>")],
                1,
                &["did not answer the observer's report", "targetPort"],
            ),
            (
                vec![Reply::json(
                    200,
                    json!({"leader": false, "identity": null, "holder": null, "workloads": []}),
                )],
                6,
                &["drain observer off", "observer.enabled=true"],
            ),
            (
                vec![Reply::json(200, follower(None))],
                6,
                &["no replica holds the observer's Lease", "run again"],
            ),
            (
                vec![Reply::json(200, follower(Some("drain-webhook-a_1_1")))],
                6,
                &[
                    "6 answers",
                    "the leader is drain-webhook-a_1_1",
                    "run again",
                ],
            ),
        ];
        for (answers, requests, wanted) in cases {
            let (read, asked) = read(answers).await;
            let line = read.unwrap_err().to_string();
            assert!(
                line.starts_with("observed drains not shown: ")
                    && line.contains("; fix: ")
                    && !line.contains('\n'),
                "{line}"
            );
            for w in wanted {
                assert!(line.contains(w), "{w:?} not in {line}");
            }
            assert_eq!(asked, requests, "{line}");
        }
        // A configuration that calls no Service: nothing asked.
        let (fake, asked) = proxy_answers(vec![Reply::json(200, leader())]);
        let line = read_observed(&fake.client_in("default"), None, "drain-webhook")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            line.contains("the webhook's Service is unknown")
                && line.contains("MutatingWebhookConfiguration drain-webhook")
                && line.contains("--webhook-configuration-name"),
            "{line}"
        );
        assert_eq!(asked.load(Ordering::SeqCst), 0);
        // And the leader at once: one request.
        let (read, asked) = read(vec![Reply::json(200, leader())]).await;
        assert_eq!((read, asked), (Ok(1), 1));
    }
}

/// The command itself, against an API server on loopback (plain HTTP): with the leader's
/// drains the JSON rows carry them; with services/proxy forbidden one stderr line says why and
/// the audit is printed as without them (exit 0).
#[test]
fn the_command_shows_the_observed_drains_or_one_line_why() {
    use axum::http::{StatusCode, Uri};
    use serde_json::json;

    const PROXY: &str =
        "/api/v1/namespaces/drain-system/services/http:drain-webhook:admin/proxy/drains";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let serve = |proxy: (StatusCode, Value)| {
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let proxy = proxy.clone();
            async move {
                let (code, body) = match uri.path() {
                    "/version" => (StatusCode::OK, fake_api::version("1", "34")),
                    "/api/v1/namespaces/shop" => (StatusCode::OK, json!({"kind": "Namespace",
                        "apiVersion": "v1", "metadata": {"name": "shop",
                        "labels": {"drain.io/inject": "enabled"}}})),
                    "/apis/apps/v1/namespaces/shop/deployments" => (StatusCode::OK, json!({
                        "kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {},
                        "items": [live::deployment("shop", "web")]})),
                    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/drain-webhook" => {
                        (StatusCode::OK, json!({"metadata": {"name": "drain-webhook"},
                            "webhooks": [{"name": "pods.drain-webhook.drain.io",
                                "admissionReviewVersions": ["v1"], "sideEffects": "None",
                                "clientConfig": {"service": {"name": "drain-webhook",
                                    "namespace": "drain-system"}}}]}))
                    }
                    PROXY => proxy,
                    _ => (StatusCode::OK, json!({"kind": "List", "apiVersion": "v1",
                        "metadata": {}, "items": []})),
                };
                (code, axum::Json(body))
            }
        });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
        address
    };
    let audit = |address: std::net::SocketAddr| {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster: {{server: \"http://{address}\"}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake}}\nusers:\n- name: fake\n  user: {{}}\n"
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_drain-webhook"))
            .args(["audit", "-n", "shop", "-o", "json", "--kubeconfig"])
            .arg(&kubeconfig)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
        (rows, stderr)
    };

    let leader = json!({"leader": true, "identity": "a", "holder": "a", "workloads": [
        {"namespace": "shop", "kind": "Deployment", "name": "web", "drains": 10, "capHits": 3,
         "lagMedianSeconds": 40.0, "lagMaxSeconds": 60.0, "recent": []}]});
    let (rows, stderr) = audit(serve((StatusCode::OK, leader)));
    assert!(!stderr.contains("observed drains not shown"), "{stderr}");
    assert_eq!(rows[0]["workload"], "Deployment shop/web");
    assert_eq!(rows[0]["observed"]["capHits"], 3);
    assert_eq!(rows[0]["observed"]["recommendation"]["verdict"], "raise");

    let forbidden = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": "services \"http:drain-webhook:admin\" is forbidden",
        "reason": "Forbidden", "code": 403});
    let (rows, stderr) = audit(serve((StatusCode::FORBIDDEN, forbidden)));
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("observed drains not shown"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("audit: observed drains not shown: ")
            && lines[0].contains("403")
            && lines[0].contains("audit ClusterRole"),
        "{stderr}"
    );
    assert_eq!(rows[0]["workload"], "Deployment shop/web");
    assert!(rows[0].get("observed").is_none(), "{rows:#}");
}
