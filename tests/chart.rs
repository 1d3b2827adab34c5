//! Chart tests: `helm lint` and `helm template` on charts/drain-webhook, every rendered object
//! checked against its Kubernetes type, the webhook's safety settings, Pod Security
//! "restricted", least RBAC, values schema, and drift of manifests/drain-webhook.yaml.
//!
//! helm comes from `.tools/bin/helm` (`make deps` installs it). Without it these tests fail,
//! they never skip.
#![cfg(feature = "webhook")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use drain_webhook::cluster;
use drain_webhook::cluster::ApiCall;
use drain_webhook::cluster::certs as certs_self_managed;
use drain_webhook::duration::parse_seconds;
use drain_webhook::observe;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, Namespace, PodSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rstest::rstest;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const RELEASE: &str = "drain-webhook";
const NAMESPACE: &str = "drain-webhook";
/// A version with matchConditions; `helm template` would otherwise use its own default.
const KUBE_VERSION: &str = "1.34.0";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    root().join("charts/drain-webhook")
}

fn helm() -> PathBuf {
    let helm = root().join(".tools/bin/helm");
    assert!(
        helm.is_file(),
        "{} is missing: run `make deps` (scripts/install-tools.sh) to install helm",
        helm.display()
    );
    helm
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn run(program: &Path, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; run `make deps`", program.display()));
    Output {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `helm template` with the fixed release, namespace and kube version plus `extra` arguments
/// (later `--kube-version` arguments win).
fn template(extra: &[&str]) -> Output {
    let chart = chart_dir();
    let mut args = vec![
        "template",
        RELEASE,
        chart.to_str().unwrap(),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        // A cluster that serves cert-manager's API (helm template asks no cluster); the
        // chart refuses cert-manager mode without it (tested without this flag below).
        "--api-versions",
        "cert-manager.io/v1",
    ];
    args.extend_from_slice(extra);
    run(&helm(), &args)
}

/// Renders and parses every document; panics with helm's message if rendering fails.
fn render(extra: &[&str]) -> Vec<Value> {
    let out = template(extra);
    assert!(out.ok, "helm template {extra:?} failed:\n{}", out.stderr);
    parse(&out.stdout)
}

fn parse(text: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}"));
    for doc in &docs {
        assert!(
            doc.get("kind").and_then(Value::as_str).is_some(),
            "document without kind: {doc}"
        );
    }
    docs
}

fn set(pairs: &[&'static str]) -> Vec<&'static str> {
    pairs.iter().flat_map(|pair| ["--set", *pair]).collect()
}

// --- Lookups -------------------------------------------------------------------------------

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn all_of_kind<'a>(docs: &'a [Value], wanted: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| kind(d) == wanted).collect()
}

fn typed<T: DeserializeOwned>(docs: &[Value], wanted: &str) -> T {
    let found = all_of_kind(docs, wanted);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {wanted}, got {}",
        found.len()
    );
    serde_json::from_value(found[0].clone())
        .unwrap_or_else(|e| panic!("{wanted} does not deserialize: {e}"))
}

fn webhook(docs: &[Value]) -> (MutatingWebhookConfiguration, MutatingWebhook) {
    let config: MutatingWebhookConfiguration = typed(docs, "MutatingWebhookConfiguration");
    let webhooks = config.webhooks.clone().unwrap_or_default();
    assert_eq!(webhooks.len(), 1, "one webhook expected");
    (config, webhooks[0].clone())
}

fn pod_spec(docs: &[Value]) -> PodSpec {
    let deployment: Deployment = typed(docs, "Deployment");
    deployment.spec.unwrap().template.spec.unwrap()
}

fn server_container(docs: &[Value]) -> Container {
    let spec = pod_spec(docs);
    assert_eq!(spec.containers.len(), 1, "one container expected");
    spec.containers[0].clone()
}

fn env(container: &Container, name: &str) -> Option<EnvVar> {
    container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .cloned()
}

fn env_value(container: &Container, name: &str) -> Option<String> {
    env(container, name).and_then(|e| e.value)
}

// --- Round trip through the typed objects ---------------------------------------------------

/// Removes what a typed round trip cannot keep: nulls, empty maps and empty lists.
fn normalize(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let map: serde_json::Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| normalize(v).map(|v| (k.clone(), v)))
                .collect();
            (!map.is_empty()).then_some(Value::Object(map))
        }
        Value::Array(items) => {
            let items: Vec<Value> = items.iter().filter_map(normalize).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        other => Some(other.clone()),
    }
}

/// Paths where `rendered` and `typed` differ: a field the type does not know vanishes.
fn differences(path: &str, rendered: Option<&Value>, typed: Option<&Value>, out: &mut Vec<String>) {
    match (rendered, typed) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                differences(&format!("{path}.{key}"), a.get(key), b.get(key), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), Some(x), Some(y), out);
            }
        }
        (Some(a), None) => out.push(format!("{path}: unknown field (rendered {a})")),
        (None, Some(b)) => out.push(format!("{path}: appeared in the round trip ({b})")),
        (a, b) if a != b => out.push(format!("{path}: rendered {a:?}, typed {b:?}")),
        _ => {}
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<(), String> {
    let object: T = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&object).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    differences(
        "",
        normalize(doc).as_ref(),
        normalize(&back).as_ref(),
        &mut out,
    );
    if out.is_empty() {
        Ok(())
    } else {
        Err(out.join("\n  "))
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// cert-manager and prometheus-operator kinds have no k8s-openapi type: check the fields
/// the chart sets by hand, and that nothing else is there.
fn check_structurally(doc: &Value) -> Result<(), String> {
    let spec = &doc["spec"];
    let allowed: &[&str] = match (doc["apiVersion"].as_str(), kind(doc)) {
        (Some("cert-manager.io/v1"), "Issuer") => &["selfSigned", "ca"],
        (Some("cert-manager.io/v1"), "Certificate") => &[
            "isCA",
            "commonName",
            "secretName",
            "duration",
            "renewBefore",
            "dnsNames",
            "usages",
            "privateKey",
            "issuerRef",
        ],
        (Some("monitoring.coreos.com/v1"), "ServiceMonitor") => {
            &["selector", "namespaceSelector", "endpoints"]
        }
        (Some("monitoring.coreos.com/v1"), "PrometheusRule") => &["groups"],
        (api, other) => return Err(format!("unexpected kind {other} ({api:?})")),
    };
    let fields = spec.as_object().ok_or("spec is not a map")?;
    for key in fields.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(format!("{}: unknown spec field {key}", kind(doc)));
        }
    }
    let metadata = doc["metadata"].as_object().ok_or("metadata is not a map")?;
    for key in metadata.keys() {
        if !["name", "namespace", "labels", "annotations"].contains(&key.as_str()) {
            return Err(format!("{}: unknown metadata field {key}", kind(doc)));
        }
    }
    if doc["metadata"]["namespace"] != NAMESPACE {
        return Err(format!("{} not in the release namespace", kind(doc)));
    }
    if kind(doc) == "Certificate" {
        let issuer = &spec["issuerRef"];
        if issuer["kind"] != "Issuer" || issuer["group"] != "cert-manager.io" {
            return Err(format!("Certificate issuerRef {issuer}"));
        }
        if spec["secretName"].as_str().is_none_or(str::is_empty) {
            return Err("Certificate without secretName".into());
        }
    }
    Ok(())
}

fn check_object(doc: &Value) -> Result<(), String> {
    match kind(doc) {
        "Deployment" => round_trip::<Deployment>(doc),
        "Service" => round_trip::<Service>(doc),
        "ServiceAccount" => round_trip::<ServiceAccount>(doc),
        "ClusterRole" => round_trip::<ClusterRole>(doc),
        "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(doc),
        "Role" => round_trip::<Role>(doc),
        "RoleBinding" => round_trip::<RoleBinding>(doc),
        "MutatingWebhookConfiguration" => round_trip::<MutatingWebhookConfiguration>(doc),
        "PodDisruptionBudget" => round_trip::<PodDisruptionBudget>(doc),
        "NetworkPolicy" => round_trip::<NetworkPolicy>(doc),
        "Secret" => round_trip::<Secret>(doc),
        "ConfigMap" => round_trip::<ConfigMap>(doc),
        "Namespace" => round_trip::<Namespace>(doc),
        _ => check_structurally(doc),
    }
}

fn check_all(docs: &[Value]) {
    let errors: Vec<String> = docs
        .iter()
        .filter_map(|doc| {
            check_object(doc).err().map(|e| {
                let name = doc["metadata"]["name"].as_str().unwrap_or("?");
                format!("{} {name}:\n  {e}", kind(doc))
            })
        })
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

// --- The values combinations every check runs on -------------------------------------------

const DEFAULTS: &[&str] = &[];
const CERT_MANAGER: &[&str] = &["certificates.mode=cert-manager"];
const SELF_MANAGED: &[&str] = &["certificates.mode=self-managed"];
const NO_OBSERVER: &[&str] = &["observer.enabled=false"];
const MONITORING: &[&str] = &[
    "metrics.serviceMonitor.enabled=true",
    "metrics.serviceMonitor.labels.release=prometheus",
    "metrics.prometheusRule.enabled=true",
    "metrics.prometheusRule.labels.release=prometheus",
];
const NETWORK_POLICY: &[&str] = &["networkPolicy.enabled=true"];
const FAIL_CLOSED: &[&str] = &["webhook.failurePolicy=Fail"];
const HELPER: &[&str] = &["settings.hookMode=helper", "settings.kubeVersion=1.29"];
/// An operator's own profile, made the default.
const PROFILES: &[&str] = &[
    "settings.profiles[0].name=corp-f5",
    "settings.profiles[0].delayFloor=45",
    "settings.profiles[0].budgetFloor=20",
    "settings.profiles[0].note=F5 pool sync measured at 38 s",
    "settings.profile=corp-f5",
];

// --- Tests ----------------------------------------------------------------------------------

#[rstest]
#[case::defaults(DEFAULTS)]
#[case::chart_certificates(&["certificates.mode=chart"])]
#[case::self_managed(SELF_MANAGED)]
#[case::everything_on(&["metrics.serviceMonitor.enabled=true", "networkPolicy.enabled=true"])]
#[case::audit_rbac(&["audit.rbac.create=true"])]
#[case::check_rbac(&["check.rbac.create=true"])]
#[case::profiles(PROFILES)]
// No cert-manager case: helm lint cannot be told that the cluster serves cert-manager.io/v1,
// so it meets the chart's own "install cert-manager first" (tested below).
fn helm_lint_strict_is_clean(#[case] values: &[&'static str]) {
    let chart = chart_dir();
    let mut args = vec!["lint", "--strict", chart.to_str().unwrap()];
    args.extend(set(values));
    let out = run(&helm(), &args);
    assert!(
        out.ok,
        "helm lint --strict {values:?} failed:\n{}{}",
        out.stdout, out.stderr
    );
    assert!(
        !out.stdout.contains("[WARNING]") && !out.stdout.contains("[ERROR]"),
        "helm lint {values:?} reported problems:\n{}",
        out.stdout
    );
}

#[rstest]
#[case::defaults(DEFAULTS)]
#[case::cert_manager(CERT_MANAGER)]
#[case::self_managed(SELF_MANAGED)]
#[case::monitoring(MONITORING)]
#[case::network_policy(NETWORK_POLICY)]
#[case::fail_closed(FAIL_CLOSED)]
#[case::helper_hooks(HELPER)]
#[case::one_replica(&["replicaCount=1"])]
#[case::profiles(PROFILES)]
#[case::everything_overridden(&[
    "settings.delay=1m30s", "settings.stagger=500ms", "settings.shutdownBudget=45",
    "settings.maxGrace=2h", "settings.proxyImages={nginx,my-proxy}",
    "settings.helper.image.tag=9.9.9", "settings.helper.runAsUser=1000",
    "server.logFormat=text", "server.logLevel=debug", "server.bindAddress=[::]",
    "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "webhook.objectSelector.matchLabels.tier=web", "webhook.extraExcludedNamespaces={istio-system}",
    "podAnnotations.team=platform", "nodeSelector.kubernetes\\.io/os=linux",
])]
fn every_rendered_object_matches_its_type(#[case] values: &[&'static str]) {
    let docs = render(&set(values));
    assert!(docs.len() >= 6, "too few objects: {}", docs.len());
    check_all(&docs);
}

#[rstest]
fn old_kubernetes_renders_without_match_conditions() {
    let mut args = vec!["--kube-version", "1.27.0"];
    args.extend(set(DEFAULTS));
    let docs = render(&args);
    check_all(&docs);
    let (_, hook) = webhook(&docs);
    assert_eq!(
        hook.match_conditions, None,
        "matchConditions need Kubernetes 1.28"
    );
}

#[rstest]
#[case::v1_27("1.27.9", false)]
#[case::v1_28("1.28.0", true)]
#[case::v1_34("1.34.2", true)]
fn match_conditions_follow_the_cluster_version(#[case] version: &str, #[case] present: bool) {
    let docs = render(&["--kube-version", version]);
    let (_, hook) = webhook(&docs);
    assert_eq!(hook.match_conditions.is_some(), present, "kube {version}");
    if present {
        let conditions = hook.match_conditions.unwrap();
        assert_eq!(conditions.len(), 1);
        let expression = &conditions[0].expression;
        assert!(
            expression.contains("drain.io/inject") && expression.contains("'false'"),
            "the condition must skip pods annotated drain.io/inject: \"false\": {expression}"
        );
    }
}

#[rstest]
fn match_conditions_can_be_turned_off() {
    let docs = render(&set(&["webhook.matchConditions=false"]));
    assert_eq!(webhook(&docs).1.match_conditions, None);
}

#[rstest]
#[case::defaults(DEFAULTS)]
#[case::cert_manager(CERT_MANAGER)]
#[case::self_managed(SELF_MANAGED)]
fn webhook_configuration_is_safe_by_default(#[case] values: &[&'static str]) {
    let docs = render(&set(values));
    let (config, hook) = webhook(&docs);
    assert_eq!(config.metadata.name.as_deref(), Some(RELEASE));

    assert_eq!(hook.failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(hook.side_effects, "None");
    assert_eq!(hook.admission_review_versions, vec!["v1".to_string()]);
    assert_eq!(hook.reinvocation_policy.as_deref(), Some("IfNeeded"));
    let timeout = hook.timeout_seconds.expect("timeoutSeconds must be set");
    assert!(
        (1..=10).contains(&timeout),
        "timeoutSeconds {timeout} is not small"
    );

    let rules = hook.rules.expect("rules");
    assert_eq!(rules.len(), 1, "one rule: {rules:?}");
    let rule = &rules[0];
    assert_eq!(
        rule.operations.as_deref(),
        Some(&["CREATE".to_string()][..])
    );
    assert_eq!(rule.api_groups.as_deref(), Some(&[String::new()][..]));
    assert_eq!(rule.api_versions.as_deref(), Some(&["v1".to_string()][..]));
    assert_eq!(rule.resources.as_deref(), Some(&["pods".to_string()][..]));
    assert_eq!(rule.scope.as_deref(), Some("Namespaced"));

    let service = hook.client_config.service.expect("clientConfig.service");
    assert_eq!(service.name, RELEASE);
    assert_eq!(service.namespace, NAMESPACE);
    assert_eq!(service.path.as_deref(), Some("/mutate"));
    assert_eq!(service.port, Some(443));
    assert_eq!(hook.client_config.url, None);

    let selector = hook.namespace_selector.expect("namespaceSelector");
    assert_eq!(
        selector
            .match_labels
            .unwrap_or_default()
            .get("drain.io/inject")
            .map(String::as_str),
        Some("enabled"),
        "namespaces opt in with drain.io/inject=enabled"
    );
    let expressions = selector.match_expressions.unwrap_or_default();
    let excluded = expressions
        .iter()
        .find(|e| e.key == "kubernetes.io/metadata.name" && e.operator == "NotIn")
        .expect("a NotIn on kubernetes.io/metadata.name");
    let excluded = excluded.values.clone().unwrap_or_default();
    for namespace in [NAMESPACE, "kube-system"] {
        assert!(
            excluded.iter().any(|n| n == namespace),
            "{namespace} not excluded: {excluded:?}"
        );
    }
    assert!(
        hook.match_conditions.is_some(),
        "matchConditions on {KUBE_VERSION}"
    );
    assert_eq!(hook.match_policy.as_deref(), Some("Equivalent"));
}

#[rstest]
fn webhook_settings_follow_values() {
    let docs = render(&set(&[
        "webhook.failurePolicy=Fail",
        "webhook.timeoutSeconds=3",
        "webhook.reinvocationPolicy=Never",
        "webhook.extraExcludedNamespaces={istio-system,kube-system}",
    ]));
    let (_, hook) = webhook(&docs);
    assert_eq!(hook.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(hook.timeout_seconds, Some(3));
    assert_eq!(hook.reinvocation_policy.as_deref(), Some("Never"));
    let expressions = hook.namespace_selector.unwrap().match_expressions.unwrap();
    assert_eq!(
        expressions[0].values.as_deref().unwrap(),
        &[NAMESPACE, "kube-system", "istio-system"].map(String::from)[..],
        "release namespace and kube-system stay excluded, without duplicates"
    );
}

#[rstest]
#[case::defaults(DEFAULTS)]
#[case::cert_manager(CERT_MANAGER)]
#[case::self_managed(SELF_MANAGED)]
#[case::helper_hooks(HELPER)]
#[case::profiles_self_managed(&[PROFILES, SELF_MANAGED].concat())]
fn deployment_passes_pod_security_restricted(#[case] values: &[&'static str]) {
    let docs = render(&set(values));
    let spec = pod_spec(&docs);
    let pod = spec.security_context.clone().expect("pod securityContext");
    assert_eq!(pod.run_as_non_root, Some(true));
    let pod_seccomp = pod.seccomp_profile.expect("pod seccompProfile");
    assert_eq!(pod_seccomp.type_, "RuntimeDefault");
    assert!(spec.host_network.is_none() && spec.host_pid.is_none() && spec.host_ipc.is_none());
    assert_eq!(
        spec.automount_service_account_token,
        Some(true),
        "it needs the API"
    );

    for container in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let name = &container.name;
        let sc = container
            .security_context
            .clone()
            .expect("container securityContext");
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{name}");
        assert_eq!(sc.privileged, Some(false), "{name}");
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{name}");
        assert_eq!(sc.run_as_non_root, Some(true), "{name}");
        let user = sc.run_as_user.or(pod.run_as_user).expect("numeric user");
        assert!(user > 0, "{name} runs as root");
        let capabilities = sc.capabilities.expect("capabilities");
        assert_eq!(capabilities.drop, Some(vec!["ALL".to_string()]), "{name}");
        assert!(
            capabilities.add.unwrap_or_default().is_empty(),
            "{name} adds capabilities"
        );
        assert_eq!(
            sc.seccomp_profile.expect("seccompProfile").type_,
            "RuntimeDefault"
        );
        assert!(container.resources.is_some(), "{name} has no resources");
        assert!(
            container.lifecycle.is_none(),
            "no shell in the image, so no preStop"
        );
    }
    for volume in spec.volumes.iter().flatten() {
        assert!(
            volume.host_path.is_none(),
            "hostPath volume {}",
            volume.name
        );
    }
}

#[rstest]
fn deployment_runs_two_spread_replicas_kept_by_a_budget() {
    let docs = render(&[]);
    let deployment: Deployment = typed(&docs, "Deployment");
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
    let selector = spec.selector.match_labels.unwrap();
    assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));

    let pod = spec.template.spec.unwrap();
    let anti = pod
        .affinity
        .unwrap()
        .pod_anti_affinity
        .expect("podAntiAffinity");
    let preferred = anti
        .preferred_during_scheduling_ignored_during_execution
        .expect("preferred anti-affinity");
    assert_eq!(
        preferred[0].pod_affinity_term.topology_key,
        "kubernetes.io/hostname"
    );
    assert!(
        anti.required_during_scheduling_ignored_during_execution
            .is_none(),
        "required anti-affinity would block scheduling on small clusters"
    );

    let pdb: PodDisruptionBudget = typed(&docs, "PodDisruptionBudget");
    let pdb = pdb.spec.unwrap();
    assert_eq!(pdb.min_available, Some(IntOrString::Int(1)));
    assert_eq!(pdb.selector.unwrap().match_labels.unwrap(), selector);

    let single = render(&set(&["replicaCount=1"]));
    assert!(
        all_of_kind(&single, "PodDisruptionBudget").is_empty(),
        "with one replica a minAvailable 1 budget would block node drains"
    );
}

#[rstest]
#[case::defaults(DEFAULTS, "files", true)]
#[case::cert_manager(CERT_MANAGER, "files", true)]
#[case::self_managed(SELF_MANAGED, "self-managed", false)]
fn deployment_serves_on_the_right_ports_with_probes(
    #[case] values: &[&'static str],
    #[case] cert_mode: &str,
    #[case] mounts_tls: bool,
) {
    let docs = render(&set(values));
    let spec = pod_spec(&docs);
    let container = server_container(&docs);
    assert_eq!(
        container.image.as_deref(),
        Some("ghcr.io/drain-io/drain-webhook:0.1.0")
    );
    assert_eq!(container.args, Some(vec!["serve".to_string()]));

    let ports: Vec<(String, i32)> = container
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone().unwrap_or_default(), p.container_port))
        .collect();
    assert_eq!(ports, [("webhook".into(), 8443), ("admin".into(), 8080)]);
    for (probe, path) in [
        (container.liveness_probe.clone(), "/livez"),
        (container.readiness_probe.clone(), "/readyz"),
    ] {
        let get = probe.and_then(|p| p.http_get).expect("HTTP probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.port, IntOrString::String("admin".into()));
        assert_ne!(
            get.scheme.as_deref(),
            Some("HTTPS"),
            "the admin port is plain HTTP"
        );
    }

    let namespace = env(&container, "DRAIN_NAMESPACE").expect("DRAIN_NAMESPACE");
    assert_eq!(
        namespace
            .value_from
            .and_then(|v| v.field_ref)
            .map(|f| f.field_path),
        Some("metadata.namespace".into())
    );
    assert_eq!(
        env_value(&container, "DRAIN_CERT_MODE").as_deref(),
        Some(cert_mode)
    );
    assert_eq!(
        env_value(&container, "DRAIN_LISTEN").as_deref(),
        Some("0.0.0.0:8443")
    );
    assert_eq!(
        env_value(&container, "DRAIN_ADMIN_LISTEN").as_deref(),
        Some("0.0.0.0:8080")
    );

    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/tls");
    if mounts_tls {
        let mount = mount.expect("TLS Secret mounted at /tls");
        assert_eq!(mount.read_only, Some(true));
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .expect("the mounted volume");
        let secret = volume.secret.clone().expect("a Secret volume");
        assert_eq!(secret.secret_name.as_deref(), Some("drain-webhook-tls"));
        assert_eq!(
            env_value(&container, "DRAIN_TLS_CERT").as_deref(),
            Some("/tls/tls.crt")
        );
        assert_eq!(
            env_value(&container, "DRAIN_TLS_KEY").as_deref(),
            Some("/tls/tls.key")
        );
    } else {
        assert!(
            mount.is_none(),
            "self-managed keeps its certificate in memory"
        );
        assert_eq!(env_value(&container, "DRAIN_TLS_CERT"), None);
        for (name, value) in [
            ("DRAIN_TLS_SECRET_NAME", "drain-webhook-tls"),
            ("DRAIN_WEBHOOK_CONFIGURATION_NAME", RELEASE),
            ("DRAIN_SERVICE_NAME", RELEASE),
        ] {
            assert_eq!(
                env_value(&container, name).as_deref(),
                Some(value),
                "{name}"
            );
        }
    }

    let service: Service = typed(&docs, "Service");
    let https = service
        .spec
        .unwrap()
        .ports
        .unwrap()
        .into_iter()
        .find(|p| p.port == 443)
        .expect("Service port 443");
    assert_eq!(
        https.target_port,
        Some(IntOrString::String("webhook".into()))
    );
}

#[rstest]
#[case::defaults(DEFAULTS)]
#[case::long_delay(&["server.shutdownDelay=20s", "terminationGracePeriodSeconds=40"])]
#[case::slow_reviews(&["webhook.timeoutSeconds=30", "server.shutdownDelay=1m", "terminationGracePeriodSeconds=120"])]
fn grace_period_covers_shutdown_delay_and_drain(#[case] values: &[&'static str]) {
    let docs = render(&set(values));
    let spec = pod_spec(&docs);
    let container = server_container(&docs);
    let (_, hook) = webhook(&docs);
    // Read as the server reads it.
    let delay = env_value(&container, "DRAIN_SHUTDOWN_DELAY").expect("DRAIN_SHUTDOWN_DELAY");
    let delay = i64::from(parse_seconds(&delay).expect("a duration"));
    let drain = i64::from(hook.timeout_seconds.unwrap());
    let grace = spec
        .termination_grace_period_seconds
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace > delay + drain,
        "grace {grace}s does not cover shutdown delay {delay}s + reviews in flight {drain}s"
    );
}

#[rstest]
#[case::delay(&["settings.delay=15s"], "DRAIN_DELAY", "15s")]
#[case::delay_whole_seconds(&["settings.delay=15"], "DRAIN_DELAY", "15")]
#[case::stagger(&["settings.stagger=2s"], "DRAIN_STAGGER", "2s")]
#[case::budget(&["settings.shutdownBudget=1m"], "DRAIN_SHUTDOWN_BUDGET", "1m")]
#[case::quiet(&["settings.quiet=5s"], "DRAIN_QUIET", "5s")]
#[case::max_delay(&["settings.maxDelay=2m"], "DRAIN_MAX_DELAY", "2m")]
#[case::max_grace(&["settings.maxGrace=2h"], "DRAIN_MAX_GRACE", "2h")]
#[case::proxies(
    &["settings.proxyImages={nginx,my-proxy}"],
    "DRAIN_PROXY_IMAGES",
    "nginx,my-proxy"
)]
#[case::hook_mode(&["settings.hookMode=helper"], "DRAIN_HOOK_MODE", "helper")]
#[case::hook_mode_native(&["settings.hookMode=native"], "DRAIN_HOOK_MODE", "native")]
#[case::helper_image(
    &["settings.helper.image.tag=1.2.3"],
    "DRAIN_HELPER_IMAGE",
    "ghcr.io/drain-io/drain-helper:1.2.3"
)]
#[case::helper_pull(
    &["settings.helper.image.pullPolicy=Always"],
    "DRAIN_HELPER_IMAGE_PULL_POLICY",
    "Always"
)]
#[case::helper_cpu_request(
    &["settings.helper.resources.requests.cpu=20m"],
    "DRAIN_HELPER_CPU_REQUEST",
    "20m"
)]
#[case::helper_memory_request(
    &["settings.helper.resources.requests.memory=24Mi"],
    "DRAIN_HELPER_MEMORY_REQUEST",
    "24Mi"
)]
#[case::helper_cpu_limit(
    &["settings.helper.resources.limits.cpu=1"],
    "DRAIN_HELPER_CPU_LIMIT",
    "1"
)]
#[case::helper_memory_limit(
    &["settings.helper.resources.limits.memory=64Mi"],
    "DRAIN_HELPER_MEMORY_LIMIT",
    "64Mi"
)]
#[case::helper_user(&["settings.helper.runAsUser=1000"], "DRAIN_HELPER_RUN_AS_USER", "1000")]
#[case::kube_version(&["settings.kubeVersion=1.29"], "DRAIN_KUBE_VERSION", "1.29")]
#[case::listen(&["server.webhookPort=9443"], "DRAIN_LISTEN", "0.0.0.0:9443")]
#[case::admin_listen(&["server.adminPort=9090"], "DRAIN_ADMIN_LISTEN", "0.0.0.0:9090")]
#[case::ipv6(&["server.bindAddress=[::]"], "DRAIN_ADMIN_LISTEN", "[::]:8080")]
#[case::reload_interval(&["server.tlsReloadInterval=10s"], "DRAIN_TLS_RELOAD_INTERVAL", "10s")]
#[case::max_body(&["server.maxBodyBytes=4194304"], "DRAIN_MAX_BODY_BYTES", "4194304")]
#[case::max_connections(&["server.maxConnections=64"], "DRAIN_MAX_CONNECTIONS", "64")]
#[case::shutdown_delay(&["server.shutdownDelay=3s"], "DRAIN_SHUTDOWN_DELAY", "3s")]
#[case::log_format(&["server.logFormat=text"], "DRAIN_LOG_FORMAT", "text")]
#[case::log_level(&["server.logLevel=debug"], "DRAIN_LOG_LEVEL", "debug")]
#[case::secret_name(&["certificates.mode=self-managed", "certificates.secretName=my-tls"], "DRAIN_TLS_SECRET_NAME", "my-tls")]
fn settings_reach_the_server_environment(
    #[case] values: &[&'static str],
    #[case] variable: &str,
    #[case] expected: &str,
) {
    let container = server_container(&render(&set(values)));
    assert_eq!(
        env_value(&container, variable).as_deref(),
        Some(expected),
        "{values:?}"
    );
}

#[rstest]
fn default_settings_match_the_servers_defaults() {
    let container = server_container(&render(&[]));
    for (name, value) in [
        ("DRAIN_DELAY", "10s"),
        ("DRAIN_STAGGER", "5s"),
        ("DRAIN_SHUTDOWN_BUDGET", "30s"),
        ("DRAIN_MAX_GRACE", "3600s"),
        (
            "DRAIN_PROXY_IMAGES",
            "nginx,openresty,haproxy,envoy,traefik,caddy",
        ),
        ("DRAIN_HOOK_MODE", "auto"),
        ("DRAIN_HELPER_IMAGE", "ghcr.io/drain-io/drain-helper:0.1.0"),
        ("DRAIN_HELPER_IMAGE_PULL_POLICY", "IfNotPresent"),
        ("DRAIN_HELPER_CPU_REQUEST", "10m"),
        ("DRAIN_HELPER_MEMORY_REQUEST", "16Mi"),
        ("DRAIN_HELPER_CPU_LIMIT", "20m"),
        ("DRAIN_HELPER_MEMORY_LIMIT", "32Mi"),
        ("DRAIN_HELPER_RUN_AS_USER", "65532"),
        ("DRAIN_LISTEN", "0.0.0.0:8443"),
        ("DRAIN_ADMIN_LISTEN", "0.0.0.0:8080"),
        ("DRAIN_SHUTDOWN_DELAY", "5s"),
        ("DRAIN_TLS_RELOAD_INTERVAL", "2s"),
        ("DRAIN_MAX_BODY_BYTES", "3407872"),
        ("DRAIN_MAX_CONNECTIONS", "1024"),
        ("DRAIN_LOG_FORMAT", "json"),
        ("DRAIN_LOG_LEVEL", "info"),
    ] {
        assert_eq!(
            env_value(&container, name).as_deref(),
            Some(value),
            "{name}"
        );
    }
    assert_eq!(
        env(&container, "DRAIN_KUBE_VERSION"),
        None,
        "empty kube version: ask the API server"
    );
    let names: Vec<&str> = container
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(names.len(), unique.len(), "duplicate variables: {names:?}");
    assert!(names.iter().all(|n| n.starts_with("DRAIN_")), "{names:?}");
}

/// The `DRAIN_...` variables a subcommand of the server binary reads, from its `--help`.
fn server_variables(subcommand: &str) -> BTreeSet<String> {
    let out = run(
        Path::new(env!("CARGO_BIN_EXE_drain-webhook")),
        &[subcommand, "--help"],
    );
    assert!(
        out.ok,
        "drain-webhook {subcommand} --help failed:\n{}",
        out.stderr
    );
    out.stdout
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(['=', ']']).next())
        .map(str::to_string)
        .collect()
}

#[rstest]
fn the_server_reads_every_variable_the_chart_sets_and_the_chart_sets_all_it_reads() {
    let known = server_variables("serve");
    assert!(
        known.contains("DRAIN_DELAY"),
        "no env names in --help: {known:?}"
    );
    let mut rendered = BTreeSet::new();
    for values in [
        &[][..],
        SELF_MANAGED,
        &["settings.kubeVersion=1.29"][..],
        PROFILES,
    ] {
        let container = server_container(&render(&set(values)));
        rendered.extend(container.env.into_iter().flatten().map(|e| e.name));
    }
    let unknown: Vec<&String> = rendered.difference(&known).collect();
    assert!(unknown.is_empty(), "the server does not read {unknown:?}");
    // Local runs only: an in-cluster webhook always talks to the API server.
    let not_for_clusters = BTreeSet::from(["DRAIN_NO_CLUSTER".to_string()]);
    let unreachable: Vec<&String> = known
        .difference(&rendered)
        .filter(|name| !not_for_clusters.contains(*name))
        .collect();
    assert!(
        unreachable.is_empty(),
        "server settings not reachable from values.yaml: {unreachable:?}"
    );
}

#[rstest]
#[case::defaults(DEFAULTS)]
#[case::helper_hooks(HELPER)]
#[case::everything_overridden(&[
    "settings.delay=1m30s", "settings.stagger=500ms", "settings.shutdownBudget=45",
    "settings.maxGrace=2h", "settings.proxyImages={nginx,my-proxy}", "settings.hookMode=sleep",
    "settings.helper.image.pullPolicy=Always", "settings.helper.runAsUser=1000",
    "settings.helper.resources.limits.cpu=1", "settings.kubeVersion=v1.30.1-eks-1234",
])]
fn the_server_accepts_the_planning_settings_the_chart_renders(#[case] values: &[&'static str]) {
    let planning = server_variables("explain");
    let container = server_container(&render(&set(values)));
    let mut command = Command::new(env!("CARGO_BIN_EXE_drain-webhook"));
    command.env_clear().args(["explain", "-f", "/dev/null"]);
    let mut passed = Vec::new();
    for var in container.env.into_iter().flatten() {
        if let (true, Some(value)) = (planning.contains(&var.name), var.value) {
            command.env(&var.name, value);
            passed.push(var.name);
        }
    }
    assert!(passed.len() >= 13, "too few planning variables: {passed:?}");
    let output = command.output().expect("run drain-webhook explain");
    assert!(
        output.status.success(),
        "drain-webhook rejects the chart's settings {values:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `settings.profiles` becomes a ConfigMap mounted where `DRAIN_PROFILES_FILE` points, in
/// the format the server reads, and the server starts with it (and its default profile).
#[rstest]
fn operator_profiles_reach_the_server_as_a_file_it_accepts() {
    let docs = render(&set(PROFILES));
    let configmaps = all_of_kind(&docs, "ConfigMap");
    let [configmap] = configmaps.as_slice() else {
        panic!("expected one ConfigMap, got {}", configmaps.len());
    };
    let name = configmap["metadata"]["name"].as_str().unwrap();
    let json = configmap["data"]["profiles.json"].as_str().unwrap();
    let catalogue = drain_webhook::profiles::Catalogue::load(json, name).expect("server format");
    let f5 = catalogue.find("corp-f5").expect("the profile");
    assert_eq!((f5.delay_floor, f5.budget_floor), (45, Some(20)));

    let container = server_container(&docs);
    let file = env_value(&container, "DRAIN_PROFILES_FILE").expect("DRAIN_PROFILES_FILE");
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == "profiles")
        .expect("profiles mount");
    assert_eq!(file, format!("{}/profiles.json", mount.mount_path));
    assert_eq!(mount.read_only, Some(true));
    let spec = pod_spec(&docs);
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "profiles")
        .expect("profiles volume");
    assert_eq!(
        volume.config_map.as_ref().map(|c| c.name.as_str()),
        Some(name)
    );

    // The server reads the rendered file and the default that names it.
    let dir = std::env::temp_dir().join(format!("drain-chart-profiles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("profiles.json");
    std::fs::write(&path, json).unwrap();
    let explain = |profile: &str| {
        Command::new(env!("CARGO_BIN_EXE_drain-webhook"))
            .env_clear()
            .env("DRAIN_PROFILES_FILE", &path)
            .env("DRAIN_PROFILE", profile)
            .args(["explain", "-f", "/dev/null"])
            .output()
            .expect("run drain-webhook explain")
    };
    let output = explain(&env_value(&container, "DRAIN_PROFILE").unwrap());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = explain("corp-f6");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("corp-f5"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // A change of the profiles rolls the pods (the file is read at startup only).
    let checksum = |docs: &[Value]| {
        let deployment = all_of_kind(docs, "Deployment")[0];
        deployment["spec"]["template"]["metadata"]["annotations"]["checksum/profiles"].clone()
    };
    let mut other = PROFILES.to_vec();
    other[1] = "settings.profiles[0].delayFloor=50";
    assert!(checksum(&docs).is_string());
    assert_ne!(checksum(&docs), checksum(&render(&set(&other))));
    // Without profiles: no ConfigMap, no variable, no volume.
    let docs = render(&[]);
    assert!(all_of_kind(&docs, "ConfigMap").is_empty());
    assert_eq!(env(&server_container(&docs), "DRAIN_PROFILES_FILE"), None);
}

/// The chart's schema refuses a profile the server would refuse, before anything is installed.
#[rstest]
#[case::misspelt_field(&["settings.profiles[0].name=a", "settings.profiles[0].delayfloor=4", "settings.profiles[0].note=n"], "delayfloor")]
#[case::bad_name(&["settings.profiles[0].name=Corp", "settings.profiles[0].delayFloor=4", "settings.profiles[0].note=n"], "name")]
#[case::no_note(&["settings.profiles[0].name=a", "settings.profiles[0].delayFloor=4"], "note")]
fn the_schema_refuses_bad_profiles(#[case] values: &[&'static str], #[case] named: &str) {
    let out = template(&set(values));
    assert!(!out.ok, "helm accepted {values:?}");
    assert!(out.stderr.contains(named), "{}", out.stderr);
}

fn assert_no_wildcards(rules: &[PolicyRule], owner: &str) {
    for rule in rules {
        for list in [
            &rule.verbs,
            rule.resources.as_ref().unwrap_or(&vec![]),
            rule.api_groups.as_ref().unwrap_or(&vec![]),
        ] {
            assert!(
                !list.iter().any(|s| s.contains('*')),
                "{owner}: wildcard in {rule:?}"
            );
        }
        assert!(
            rule.non_resource_urls.is_none(),
            "{owner}: nonResourceURLs in {rule:?}"
        );
    }
}

#[rstest]
#[case::defaults(DEFAULTS, false)]
#[case::cert_manager(CERT_MANAGER, false)]
#[case::self_managed(SELF_MANAGED, true)]
#[case::no_observer(NO_OBSERVER, false)]
fn rbac_is_least_privilege(#[case] values: &[&'static str], #[case] self_managed: bool) {
    let observer = values != NO_OBSERVER;
    let docs = render(&set(values));
    let cluster_role: ClusterRole = typed(&docs, "ClusterRole");
    let rules = cluster_role.rules.unwrap_or_default();
    assert_no_wildcards(&rules, "ClusterRole");

    let namespaces: Vec<&PolicyRule> = rules
        .iter()
        .filter(|r| r.resources.as_deref() == Some(&["namespaces".to_string()][..]))
        .collect();
    assert_eq!(namespaces.len(), 1, "one namespaces rule");
    assert_eq!(
        namespaces[0].verbs,
        ["list", "watch"],
        "namespaces are read-only"
    );
    assert_eq!(
        namespaces[0].api_groups.as_deref(),
        Some(&[String::new()][..])
    );

    // Nodes, read-only, for their runtime's version (helper delivery, src/cluster/nodes.rs).
    let nodes: Vec<&PolicyRule> = rules
        .iter()
        .filter(|r| r.resources.as_deref() == Some(&["nodes".to_string()][..]))
        .collect();
    assert_eq!(nodes.len(), 1, "one nodes rule");
    assert_eq!(nodes[0].verbs, ["list", "watch"], "nodes are read-only");
    assert!(nodes[0].resource_names.is_none());

    // The drain observer: planned pods read-only, Events written (src/observe/run.rs).
    let only = |resource: &str| {
        let resource = [resource.to_string()];
        rules
            .iter()
            .filter(|r| r.resources.as_deref() == Some(&resource[..]))
            .collect::<Vec<_>>()
    };
    if observer {
        let pods = only("pods");
        assert_eq!(pods.len(), 1, "one pods rule");
        assert_eq!(pods[0].verbs, ["list", "watch"], "pods are read-only");
        let events = only("events");
        assert_eq!(events.len(), 1, "one events rule");
        assert_eq!(
            events[0].api_groups.as_deref(),
            Some(&["events.k8s.io".to_string()][..])
        );
        assert_eq!(events[0].verbs, ["create", "patch"]);
    } else {
        assert!(only("pods").is_empty() && only("events").is_empty());
    }

    let others: Vec<&PolicyRule> = rules
        .iter()
        .filter(|r| {
            let resources = r.resources.as_deref();
            !["namespaces", "nodes", "pods", "events"]
                .iter()
                .any(|known| resources == Some(&[known.to_string()][..]))
        })
        .collect();
    if self_managed {
        assert_eq!(others.len(), 1, "one more cluster-wide rule: {others:?}");
        let rule = others[0];
        assert_eq!(
            rule.resources.as_deref(),
            Some(&["mutatingwebhookconfigurations".to_string()][..])
        );
        assert_eq!(
            rule.resource_names.as_deref(),
            Some(&[RELEASE.to_string()][..])
        );
        assert_eq!(rule.verbs, ["get", "update"]);
    } else {
        assert!(others.is_empty(), "nothing else cluster-wide: {others:?}");
    }

    let binding: ClusterRoleBinding = typed(&docs, "ClusterRoleBinding");
    assert_eq!(binding.role_ref.name, cluster_role.metadata.name.unwrap());
    let account: ServiceAccount = typed(&docs, "ServiceAccount");
    let subjects = binding.subjects.unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(Some(&subjects[0].name), account.metadata.name.as_ref());
    assert_eq!(subjects[0].namespace.as_deref(), Some(NAMESPACE));

    let roles = all_of_kind(&docs, "Role");
    if !self_managed && !observer {
        assert!(
            roles.is_empty(),
            "no namespaced Role without self-managed mode or the observer"
        );
        assert!(all_of_kind(&docs, "RoleBinding").is_empty());
        return;
    }
    let role: Role = typed(&docs, "Role");
    assert_eq!(role.metadata.namespace.as_deref(), Some(NAMESPACE));
    let binding: RoleBinding = typed(&docs, "RoleBinding");
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(binding.role_ref.name, role.metadata.name.clone().unwrap());
    let rules = role.rules.unwrap();
    assert_no_wildcards(&rules, "Role");
    // The observer's Lease: get and update by name, create (never by name).
    let (leases, rules): (Vec<PolicyRule>, Vec<PolicyRule>) = rules
        .into_iter()
        .partition(|r| r.resources.as_deref() == Some(&["leases".to_string()][..]));
    if observer {
        assert_eq!(leases.len(), 2, "{leases:?}");
        for rule in &leases {
            assert_eq!(
                rule.api_groups.as_deref(),
                Some(&["coordination.k8s.io".to_string()][..])
            );
            if rule.verbs == ["create"] {
                assert_eq!(rule.resource_names, None);
            } else {
                assert_eq!(rule.verbs, ["get", "update"]);
                assert_eq!(
                    rule.resource_names.as_deref(),
                    Some(&[format!("{RELEASE}-observer")][..])
                );
            }
        }
    } else {
        assert!(leases.is_empty());
    }
    if !self_managed {
        assert!(
            rules.is_empty(),
            "no Secret access outside self-managed mode: {rules:?}"
        );
        return;
    }
    for rule in &rules {
        assert_eq!(
            rule.resources.as_deref(),
            Some(&["secrets".to_string()][..]),
            "{rule:?}"
        );
        if rule.verbs == ["create"] {
            // RBAC cannot limit create by name.
            assert_eq!(rule.resource_names, None);
        } else {
            assert_eq!(
                rule.resource_names.as_deref(),
                Some(&["drain-webhook-tls".to_string()][..])
            );
            assert_eq!(rule.verbs, ["get", "update"]);
        }
    }
    assert!(
        rules.iter().any(|r| r.verbs == ["create"]),
        "the server creates its Secret"
    );
    assert!(
        rules
            .iter()
            .all(|r| !r.verbs.iter().any(|v| v == "list" || v == "watch")),
        "listing Secrets would expose every Secret in the namespace"
    );
}

#[rstest]
fn chart_certificates_are_generated_and_trusted() {
    let docs = render(&[]);
    let secret: Secret = typed(&docs, "Secret");
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(secret.metadata.name.as_deref(), Some("drain-webhook-tls"));
    let data = secret.data.expect("Secret data");
    for key in ["ca.crt", "tls.crt"] {
        let pem = String::from_utf8(data[key].0.clone()).unwrap();
        assert!(
            pem.starts_with("-----BEGIN CERTIFICATE-----"),
            "{key}: {pem}"
        );
    }
    let key = String::from_utf8(data["tls.key"].0.clone()).unwrap();
    assert!(key.contains("PRIVATE KEY-----"), "tls.key: {key}");

    let (config, hook) = webhook(&docs);
    let ca_bundle = hook
        .client_config
        .ca_bundle
        .expect("caBundle in chart mode");
    assert_eq!(
        ca_bundle, data["ca.crt"],
        "caBundle must be the CA that signed tls.crt"
    );
    assert_eq!(config.metadata.annotations, None);
    assert!(all_of_kind(&docs, "Certificate").is_empty());
}

#[rstest]
fn cert_manager_mode_issues_a_ca_and_a_serving_certificate() {
    let docs = render(&set(CERT_MANAGER));
    assert!(
        all_of_kind(&docs, "Secret").is_empty(),
        "cert-manager writes the Secret"
    );
    let issuers = all_of_kind(&docs, "Issuer");
    let certificates = all_of_kind(&docs, "Certificate");
    assert_eq!((issuers.len(), certificates.len()), (2, 2));

    let self_signed = issuers
        .iter()
        .find(|i| i["spec"].get("selfSigned").is_some())
        .expect("self-signed Issuer");
    let ca = certificates
        .iter()
        .find(|c| c["spec"]["isCA"] == true)
        .expect("CA Certificate");
    assert_eq!(
        ca["spec"]["issuerRef"]["name"],
        self_signed["metadata"]["name"]
    );
    let ca_issuer = issuers
        .iter()
        .find(|i| i["spec"]["ca"]["secretName"] == ca["spec"]["secretName"])
        .expect("CA Issuer using the CA Certificate's Secret");
    let serving = certificates
        .iter()
        .find(|c| c["spec"]["isCA"] != true)
        .expect("serving Certificate");
    assert_eq!(
        serving["spec"]["issuerRef"]["name"],
        ca_issuer["metadata"]["name"]
    );
    assert_eq!(serving["spec"]["secretName"], "drain-webhook-tls");
    let names = strings(&serving["spec"]["dnsNames"]);
    for name in [
        "drain-webhook.drain-webhook.svc",
        "drain-webhook.drain-webhook.svc.cluster.local",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }

    let (config, hook) = webhook(&docs);
    let annotations = config.metadata.annotations.expect("annotations");
    assert_eq!(
        annotations
            .get("cert-manager.io/inject-ca-from")
            .map(String::as_str),
        Some(
            format!(
                "{NAMESPACE}/{}",
                serving["metadata"]["name"].as_str().unwrap()
            )
            .as_str()
        )
    );
    assert_eq!(
        hook.client_config.ca_bundle, None,
        "cainjector fills caBundle"
    );
}

#[rstest]
fn self_managed_mode_leaves_certificates_to_the_server() {
    let docs = render(&set(SELF_MANAGED));
    assert!(
        all_of_kind(&docs, "Secret").is_empty(),
        "the server creates the Secret"
    );
    assert!(all_of_kind(&docs, "Certificate").is_empty());
    assert!(all_of_kind(&docs, "Issuer").is_empty());
    let (config, hook) = webhook(&docs);
    // Left out, not "": an upgrade must not wipe the CA the server patched in.
    assert_eq!(hook.client_config.ca_bundle, None);
    assert_eq!(config.metadata.annotations, None);
}

#[rstest]
fn service_monitor_scrapes_the_admin_port_when_enabled() {
    assert!(
        all_of_kind(&render(&[]), "ServiceMonitor").is_empty(),
        "off by default"
    );
    let docs = render(&set(MONITORING));
    let monitors = all_of_kind(&docs, "ServiceMonitor");
    assert_eq!(monitors.len(), 1);
    let monitor = monitors[0];
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(endpoint["scheme"], "http");

    let service: Service = typed(&docs, "Service");
    let service_labels = service.metadata.labels.unwrap();
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap();
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(
            service_labels.get(key).map(String::as_str),
            value.as_str(),
            "{key}"
        );
    }
    let port = service
        .spec
        .unwrap()
        .ports
        .unwrap()
        .into_iter()
        .find(|p| Some(p.name.as_deref().unwrap_or_default()) == endpoint["port"].as_str())
        .expect("the ServiceMonitor's port on the Service");
    assert_eq!(port.target_port, Some(IntOrString::String("admin".into())));
}

/// The optional PrometheusRule: off by default; its alerts query only series the server
/// exports (`Metrics::encode`), and the observer's own alert only when it runs.
#[rstest]
fn prometheus_rule_alerts_on_the_observers_series() {
    assert!(
        all_of_kind(&render(&[]), "PrometheusRule").is_empty(),
        "off by default"
    );
    use drain_webhook::drain_record::{DrainRecord, EndReason, RecordRole};
    // Families show in the output once they have a series: one capped drain, one unplanned pod.
    let observed = drain_webhook::observe::Observed::default();
    let metrics = drain_webhook::metrics::Metrics::with_series(|r| observed.register(r));
    let capped = DrainRecord {
        role: RecordRole::App,
        floor_ms: 10_000,
        end_ms: 60_000,
        why: EndReason::Cap,
        last_arrival_ms: Some(59_000),
        after_floor: 40,
        migrated_at_ms: None,
        signal_at_ms: None,
        exit: 0,
    };
    observed.series.drain("shop", &capped);
    observed.series.unplanned("shop");
    let exported = metrics.encode();
    for (values, observer) in [
        (MONITORING.to_vec(), true),
        ([MONITORING, NO_OBSERVER].concat(), false),
    ] {
        let docs = render(&set(&values));
        let rules = all_of_kind(&docs, "PrometheusRule");
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0]["metadata"]["labels"]["release"], "prometheus");
        let alerts = rules[0]["spec"]["groups"][0]["rules"].as_array().unwrap();
        let names: Vec<&str> = alerts
            .iter()
            .map(|a| a["alert"].as_str().unwrap())
            .collect();
        assert_eq!(
            names.contains(&"DrainObserverNotLeading"),
            observer,
            "{names:?}"
        );
        assert!(names.contains(&"DrainHoldHitCap") && names.contains(&"PodsWithoutDrainPlan"));
        for alert in alerts {
            let expr = alert["expr"].as_str().unwrap();
            let series: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| word.starts_with("drain_webhook_"))
                .collect();
            assert!(!series.is_empty(), "{expr}");
            for name in series {
                let family = name.trim_end_matches("_total");
                assert!(
                    exported.contains(&format!("# TYPE {family} ")),
                    "{expr}: {family} is not exported"
                );
            }
            assert!(alert["annotations"]["summary"].is_string(), "{alert}");
        }
    }
}

#[rstest]
fn network_policy_opens_the_webhook_port_and_guards_the_admin_port() {
    assert!(
        all_of_kind(&render(&[]), "NetworkPolicy").is_empty(),
        "off by default"
    );
    let open = render(&set(NETWORK_POLICY));
    let policy: NetworkPolicy = typed(&open, "NetworkPolicy");
    let spec = policy.spec.unwrap();
    assert_eq!(spec.policy_types, Some(vec!["Ingress".to_string()]));
    let ingress = spec.ingress.unwrap();
    assert_eq!(ingress.len(), 1, "no admin access without adminFrom");
    assert_eq!(
        ingress[0].from, None,
        "the API server's addresses are unknown"
    );
    let port = ingress[0].ports.as_ref().unwrap()[0].port.clone();
    assert_eq!(port, Some(IntOrString::String("webhook".into())));

    let guarded = render(&[
        "--set",
        "networkPolicy.enabled=true",
        "--set-json",
        r#"networkPolicy.adminFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]"#,
    ]);
    check_all(&guarded);
    let policy: NetworkPolicy = typed(&guarded, "NetworkPolicy");
    let ingress = policy.spec.unwrap().ingress.unwrap();
    assert_eq!(ingress.len(), 2);
    let admin = &ingress[1];
    assert_eq!(
        admin.ports.as_ref().unwrap()[0].port,
        Some(IntOrString::String("admin".into()))
    );
    let from = admin
        .from
        .as_ref()
        .expect("admin port limited to adminFrom");
    assert!(from[0].namespace_selector.is_some());
}

#[rstest]
#[case::top_level_typo("replicaCont=3", "replicaCont")]
#[case::unknown_mode("certificates.mode=bogus", "/certificates/mode")]
#[case::nested_typo("webhook.failurPolicy=Fail", "failurPolicy")]
#[case::policy_case("webhook.failurePolicy=ignore", "/webhook/failurePolicy")]
#[case::timeout_too_long("webhook.timeoutSeconds=31", "/webhook/timeoutSeconds")]
#[case::bad_duration("settings.delay=10x", "/settings/delay")]
#[case::duration_with_space("settings.stagger=5 s", "/settings/stagger")]
#[case::bad_hook_mode("settings.hookMode=sleepy", "/settings/hookMode")]
#[case::helper_typo("settings.helper.runAsUsr=1", "runAsUsr")]
#[case::root_helper("settings.helper.runAsUser=0", "/settings/helper/runAsUser")]
#[case::bad_log_format("server.logFormat=yaml", "/server/logFormat")]
#[case::bad_kube_version("settings.kubeVersion=latest", "/settings/kubeVersion")]
#[case::grace_too_short("server.shutdownDelay=30s", "terminationGracePeriodSeconds")]
#[case::same_ports("server.adminPort=8443", "server.adminPort")]
fn values_mistakes_fail_with_a_message_naming_them(#[case] value: &str, #[case] named: &str) {
    let out = template(&["--set", value]);
    assert!(
        !out.ok,
        "helm template --set {value} should fail, rendered:\n{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(named),
        "the error for --set {value} does not name {named}:\n{}",
        out.stderr
    );
}

#[rstest]
fn chart_app_version_is_the_crate_version() {
    let text = std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap();
    let chart: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
}

/// Renders the plain manifests into a temporary directory and checks that the committed
/// files are the same; returns each committed file's objects, by file name.
fn committed_manifests() -> Vec<(&'static str, Vec<Value>)> {
    helm();
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &root().join("scripts/render-manifests.sh"),
        &[dir.path().to_str().unwrap()],
    );
    assert!(
        out.ok,
        "scripts/render-manifests.sh failed:\n{}",
        out.stderr
    );
    let mut files = Vec::new();
    for name in MANIFESTS {
        let committed_path = root().join("manifests").join(name);
        let committed = std::fs::read_to_string(&committed_path)
            .unwrap_or_else(|e| panic!("{}: {e}; run `make manifests`", committed_path.display()));
        let fresh = std::fs::read_to_string(dir.path().join(name)).unwrap();
        if committed != fresh {
            let line = committed
                .lines()
                .zip(fresh.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()));
            panic!(
                "manifests/{name} is out of date with the chart (first difference at line {}): \
                 run `make manifests` and commit the result",
                line + 1
            );
        }
        files.push((name, parse(&committed)));
    }
    let rendered = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(
        rendered,
        MANIFESTS.len(),
        "the script writes exactly these files"
    );
    files
}

/// The default plain manifests (a bare cluster) and the cert-manager variant.
const MANIFESTS: [&str; 2] = ["drain-webhook.yaml", "drain-webhook-cert-manager.yaml"];

#[rstest]
fn manifests_match_a_fresh_render() {
    for (name, docs) in committed_manifests() {
        check_all(&docs);
        assert_eq!(
            kind(&docs[0]),
            "Namespace",
            "{name}: the Namespace comes first"
        );
        assert_eq!(docs[0]["metadata"]["name"], NAMESPACE);
        let labels = &docs[0]["metadata"]["labels"];
        assert_eq!(
            labels["pod-security.kubernetes.io/enforce"], "restricted",
            "{name}"
        );
        for doc in &docs[1..] {
            let cluster_scoped = matches!(
                kind(doc),
                "ClusterRole" | "ClusterRoleBinding" | "MutatingWebhookConfiguration"
            );
            let namespace = doc["metadata"].get("namespace").and_then(Value::as_str);
            assert_eq!(
                namespace,
                (!cluster_scoped).then_some(NAMESPACE),
                "{name}: {} {}",
                kind(doc),
                doc["metadata"]["name"]
            );
        }
        assert!(
            all_of_kind(&docs, "Secret").is_empty(),
            "{name}: no private keys in the manifests"
        );
        let (_, hook) = webhook(&docs);
        assert_eq!(hook.failure_policy.as_deref(), Some("Ignore"));
        // Applied with kubectl, so no object claims a Helm release manages it.
        let managed_by: Vec<&str> = docs
            .iter()
            .filter_map(|doc| doc["metadata"]["labels"].get("app.kubernetes.io/managed-by"))
            .filter_map(Value::as_str)
            .collect();
        assert!(!managed_by.is_empty());
        assert!(
            managed_by.iter().all(|by| *by == "kubectl"),
            "{name}: managed-by labels of the plain manifests: {managed_by:?}"
        );
    }
}

#[rstest]
fn default_manifests_need_nothing_but_the_cluster() {
    let (name, docs) = committed_manifests().remove(0);
    assert_eq!(name, "drain-webhook.yaml");
    // Self-managed: no cert-manager kinds, the server makes its certificate and patches the
    // caBundle itself, so nothing waits for a Secret another component would write.
    for doc in &docs {
        let api = doc["apiVersion"].as_str().unwrap_or_default();
        assert!(
            !api.starts_with("cert-manager.io") && !api.starts_with("monitoring.coreos.com"),
            "{name}: {} {api} needs an add-on",
            kind(doc)
        );
    }
    let container = server_container(&docs);
    assert_eq!(
        env_value(&container, "DRAIN_CERT_MODE").as_deref(),
        Some("self-managed")
    );
    assert!(
        pod_spec(&docs)
            .volumes
            .iter()
            .flatten()
            .all(|v| v.secret.is_none()),
        "{name}: no Secret volume to wait for"
    );
    let (config, hook) = webhook(&docs);
    assert_eq!(
        config.metadata.annotations, None,
        "no cainjector annotation"
    );
    assert_eq!(
        hook.client_config.ca_bundle, None,
        "patched in by the server"
    );
    assert_eq!(all_of_kind(&docs, "Role").len(), 1, "the Secret's Role");
}

#[rstest]
fn cert_manager_manifests_keep_cert_manager() {
    let (name, docs) = committed_manifests().remove(1);
    assert_eq!(name, "drain-webhook-cert-manager.yaml");
    assert_eq!(
        all_of_kind(&docs, "Certificate").len(),
        2,
        "cert-manager mode"
    );
    assert_eq!(all_of_kind(&docs, "Issuer").len(), 2);
    let (config, _) = webhook(&docs);
    assert!(
        config
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("cert-manager.io/inject-ca-from")
    );
}

/// Runs helm with the fixed release and namespace but without `--api-versions`: a cluster
/// (or `helm template`) without cert-manager.
fn without_cert_manager(command: &[&str]) -> Output {
    let chart = chart_dir();
    let mut args = command.to_vec();
    args.extend([
        RELEASE,
        chart.to_str().unwrap(),
        "--namespace",
        NAMESPACE,
        "--set",
        "certificates.mode=cert-manager",
    ]);
    run(&helm(), &args)
}

#[rstest]
#[case::template(&["template"])]
#[case::install_dry_run(&["install", "--dry-run=client"])]
fn cert_manager_mode_without_cert_manager_fails_with_the_charts_message(#[case] command: &[&str]) {
    let out = without_cert_manager(command);
    assert!(!out.ok, "helm {command:?} should fail:\n{}", out.stdout);
    for words in [
        "certificates.mode=cert-manager",
        "does not serve cert-manager.io/v1",
        "install cert-manager first",
        "certificates.mode=self-managed",
        "certificates.mode=chart",
        "--api-versions cert-manager.io/v1",
    ] {
        assert!(
            out.stderr.contains(words),
            "helm {command:?}: {words:?} missing from:\n{}",
            out.stderr
        );
    }
    assert!(
        !out.stderr.contains("no matches for kind"),
        "Helm's generic message: {}",
        out.stderr
    );
    // The other modes need no cert-manager.
    for mode in ["certificates.mode=chart", "certificates.mode=self-managed"] {
        let chart = chart_dir();
        let out = run(
            &helm(),
            &["template", RELEASE, chart.to_str().unwrap(), "--set", mode],
        );
        assert!(out.ok, "{mode} without cert-manager: {}", out.stderr);
    }
}

/// Whether `rule` grants `call` on the object named `name` (for calls on one object).
fn grants(rule: &PolicyRule, call: &ApiCall, name: &str) -> bool {
    let has = |list: Option<&Vec<String>>, wanted: &str| {
        list.is_some_and(|l| l.iter().any(|s| s == wanted))
    };
    has(rule.api_groups.as_ref(), call.group)
        && has(rule.resources.as_ref(), call.resource)
        && rule.verbs.iter().any(|v| v == call.verb)
        && match (&rule.resource_names, call.named) {
            (None, _) => true,
            (Some(names), true) => names.iter().any(|n| n == name),
            // RBAC cannot match create/list/watch by name.
            (Some(_), false) => false,
        }
}

#[rstest]
#[case::defaults(DEFAULTS, false)]
#[case::cert_manager(CERT_MANAGER, false)]
#[case::self_managed(SELF_MANAGED, true)]
fn rbac_grants_exactly_the_calls_the_server_makes(
    #[case] values: &[&'static str],
    #[case] self_managed: bool,
) {
    let docs = render(&set(values));
    let cluster_role: ClusterRole = typed(&docs, "ClusterRole");
    let cluster_rules = cluster_role.rules.unwrap_or_default();
    let namespaced_rules: Vec<PolicyRule> = all_of_kind(&docs, "Role")
        .into_iter()
        .flat_map(|role| {
            serde_json::from_value::<Role>(role.clone())
                .unwrap()
                .rules
                .unwrap_or_default()
        })
        .collect();
    let container = server_container(&docs);
    let secret = "drain-webhook-tls";
    // The drain observer, on by default: its pod watch and Events, and its Lease.
    let lease = format!("{RELEASE}-observer");
    let mut calls: Vec<(ApiCall, &str)> = cluster::API_CALLS.iter().map(|c| (*c, "")).collect();
    assert_eq!(
        env_value(&container, "DRAIN_OBSERVE_LEASE_NAME").as_deref(),
        Some(lease.as_str())
    );
    calls.extend(observe::run::API_CALLS.iter().map(|c| (*c, "")));
    calls.extend(
        observe::lease::API_CALLS
            .iter()
            .map(|c| (*c, lease.as_str())),
    );
    if self_managed {
        assert_eq!(
            env_value(&container, "DRAIN_TLS_SECRET_NAME").as_deref(),
            Some(secret)
        );
        for call in certs_self_managed::API_CALLS {
            let name = match call.resource {
                "secrets" => secret,
                _ => RELEASE,
            };
            calls.push((*call, name));
        }
    }
    for (call, name) in &calls {
        // Secrets and the Lease are namespaced (the Role in the release namespace), the rest
        // cluster-wide.
        let rules = match call.resource {
            "secrets" | "leases" => &namespaced_rules,
            _ => &cluster_rules,
        };
        assert!(
            rules.iter().any(|rule| grants(rule, call, name)),
            "{values:?}: nothing grants {call:?} on {name:?}"
        );
    }
    // And nothing more: every granted verb is a call the server makes.
    for rule in cluster_rules.iter().chain(&namespaced_rules) {
        for resource in rule.resources.iter().flatten() {
            for verb in &rule.verbs {
                assert!(
                    calls
                        .iter()
                        .any(|(c, _)| c.resource == resource && c.verb == verb),
                    "{values:?}: {verb} on {resource} is granted but never used"
                );
            }
        }
    }
}

#[rstest]
#[case::defaults(DEFAULTS)]
#[case::self_managed(SELF_MANAGED)]
fn works_without_cluster_dns_and_without_a_registry(#[case] values: &[&'static str]) {
    let docs = render(&set(values));
    let spec = pod_spec(&docs);
    let container = server_container(&docs);
    // The API server is reached through KUBERNETES_SERVICE_HOST (set by the kubelet, an IP),
    // never by a cluster DNS name; the API server reaches the webhook through the Service
    // reference, which it resolves itself (no DNS in the pod).
    let rendered = serde_json::to_string(&docs).unwrap();
    assert!(
        !rendered.contains("kubernetes.default"),
        "an API server DNS name"
    );
    assert!(spec.dns_policy.is_none() && spec.dns_config.is_none() && spec.host_network.is_none());
    for var in container.env.iter().flatten() {
        let value = var.value.clone().unwrap_or_default();
        assert!(
            !value.contains(".svc"),
            "{} = {value}: a DNS name",
            var.name
        );
    }
    let (_, hook) = webhook(&docs);
    assert!(hook.client_config.url.is_none() && hook.client_config.service.is_some());
    // Images loaded into the node (make images, then ctr/kind load) are used without a pull:
    // IfNotPresent and a version tag, never :latest (which the kubelet always pulls).
    assert_eq!(container.image_pull_policy.as_deref(), Some("IfNotPresent"));
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        container.image.as_deref(),
        Some(format!("ghcr.io/drain-io/drain-webhook:{version}").as_str())
    );
    // The helper image the webhook injects comes from the chart's values, with its policy.
    assert_eq!(
        env_value(&container, "DRAIN_HELPER_IMAGE").as_deref(),
        Some(format!("ghcr.io/drain-io/drain-helper:{version}").as_str())
    );
    assert_eq!(
        env_value(&container, "DRAIN_HELPER_IMAGE_PULL_POLICY").as_deref(),
        Some("IfNotPresent")
    );
    let mut overridden = values.to_vec();
    overridden.extend([
        "settings.helper.image.repository=registry.local/drain-helper",
        "settings.helper.image.tag=dev",
        "settings.helper.image.pullPolicy=Never",
    ]);
    let container = server_container(&render(&set(&overridden)));
    assert_eq!(
        env_value(&container, "DRAIN_HELPER_IMAGE").as_deref(),
        Some("registry.local/drain-helper:dev")
    );
    assert_eq!(
        env_value(&container, "DRAIN_HELPER_IMAGE_PULL_POLICY").as_deref(),
        Some("Never")
    );
}

/// `make images` writes every image for linux/amd64 and linux/arm64 under one name, so
/// nothing in the chart ties the webhook's pods, or the helper image it injects into opted-in
/// pods, to one CPU: arm64 nodes and mixed clusters need no setting (issue 21). The plain
/// manifests are these renders (`manifests_match_a_fresh_render`).
#[rstest]
#[case::defaults(DEFAULTS)]
#[case::self_managed(SELF_MANAGED)]
fn schedules_on_any_architecture_with_nothing_set(#[case] values: &[&'static str]) {
    let docs = render(&set(values));
    let spec = pod_spec(&docs);
    assert!(
        spec.node_selector.is_none(),
        "nodeSelector {:?}",
        spec.node_selector
    );
    let node_affinity = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref());
    assert!(node_affinity.is_none(), "node affinity {node_affinity:?}");
    // Neither an architecture label nor a platform-specific image (tag or name) anywhere in the
    // Deployment: the helper's reference is the multi-platform tag.
    let deployment = serde_json::to_string(&all_of_kind(&docs, "Deployment")).unwrap();
    for word in ["kubernetes.io/arch", "amd64", "arm64", "x86_64", "aarch64"] {
        assert!(
            !deployment.contains(word),
            "the Deployment names {word}: {deployment}"
        );
    }
    let helper = env_value(&server_container(&docs), "DRAIN_HELPER_IMAGE").unwrap();
    assert!(
        !helper.contains('@'),
        "helper image pinned by digest: {helper}"
    );
}

#[rstest]
fn match_conditions_render_on_1_32() {
    let docs = render(&["--kube-version", "1.32.0"]);
    check_all(&docs);
    let (_, hook) = webhook(&docs);
    let conditions = hook
        .match_conditions
        .expect("matchConditions on 1.32 (GA since 1.30)");
    assert_eq!(conditions.len(), 1);
    assert!(conditions[0].expression.contains("drain.io/inject"));
}

/// The optional audit ClusterRole: absent by default; when asked for, read-only on what
/// `drain-webhook audit` reads, bound to nobody, and the webhook's own role is unchanged.
#[test]
fn audit_cluster_role_is_optional_read_only_and_unbound() {
    let audit_name = format!("{RELEASE}-audit");
    let named = |docs: &[Value]| -> Vec<ClusterRole> {
        all_of_kind(docs, "ClusterRole")
            .into_iter()
            .map(|d| serde_json::from_value::<ClusterRole>(d.clone()).unwrap())
            .filter(|r| r.metadata.name.as_deref() == Some(audit_name.as_str()))
            .collect()
    };
    let defaults = render(&set(DEFAULTS));
    assert!(named(&defaults).is_empty(), "no audit role by default");

    let docs = render(&set(&["audit.rbac.create=true"]));
    check_all(&docs);
    let roles = named(&docs);
    assert_eq!(roles.len(), 1);
    let rules = roles[0].rules.clone().unwrap_or_default();
    assert_no_wildcards(&rules, "audit ClusterRole");
    let mut granted = BTreeSet::new();
    for rule in &rules {
        let read_only = rule.verbs == ["get", "list"] || rule.verbs == ["get"];
        assert!(read_only, "read-only: {rule:?}");
        for group in rule.api_groups.clone().unwrap_or_default() {
            for resource in rule.resources.clone().unwrap_or_default() {
                granted.insert(format!("{group}/{resource}"));
            }
        }
    }
    let wanted: BTreeSet<String> = [
        "/pods",
        "/services",
        "/namespaces",
        "apps/deployments",
        "apps/statefulsets",
        "apps/daemonsets",
        "apps/replicasets",
        "batch/jobs",
        "batch/cronjobs",
        "admissionregistration.k8s.io/mutatingwebhookconfigurations",
        "/services/proxy",
    ]
    .map(String::from)
    .into();
    assert_eq!(granted, wanted);
    // The observed drains: only the Service's admin port, by the name the audit asks for
    // (src/audit/observed_read.rs), and the Service has a port of that name.
    let proxy = rules
        .iter()
        .find(|r| r.resources.as_ref().unwrap()[0] == "services/proxy")
        .unwrap();
    let admin = drain_webhook::audit::WebhookService {
        namespace: "ns".into(),
        name: RELEASE.into(),
    };
    assert_eq!(
        proxy.resource_names.as_deref(),
        Some(&[admin.admin_port().resource_name()][..])
    );
    let service = all_of_kind(&docs, "Service")
        .into_iter()
        .find(|s| s["metadata"]["name"] == RELEASE)
        .unwrap();
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == drain_webhook::audit::observed_read::ADMIN_PORT),
        "{service}"
    );
    // The webhook configuration only by name.
    let configuration = rules
        .iter()
        .find(|r| r.resources.as_ref().unwrap()[0] == "mutatingwebhookconfigurations")
        .unwrap();
    assert_eq!(
        configuration.resource_names.as_deref(),
        Some(&[RELEASE.to_string()][..])
    );
    // Nothing binds it, so the webhook's ServiceAccount is not widened.
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        for binding in all_of_kind(&docs, kind) {
            assert_ne!(binding["roleRef"]["name"], audit_name.as_str(), "{binding}");
        }
    }
    let webhook_role = |docs: &[Value]| {
        all_of_kind(docs, "ClusterRole")
            .into_iter()
            .find(|d| d["metadata"]["name"] == RELEASE)
            .cloned()
    };
    assert_eq!(webhook_role(&docs), webhook_role(&defaults));
}

/// The optional check ClusterRole grants exactly what `drain-webhook check` requests
/// (check::API_CALLS), named objects by name, and is bound to nobody.
#[test]
fn check_cluster_role_grants_exactly_the_calls_check_makes() {
    let check_name = format!("{RELEASE}-check");
    let find = |docs: &[Value]| -> Option<ClusterRole> {
        all_of_kind(docs, "ClusterRole")
            .into_iter()
            .map(|d| serde_json::from_value::<ClusterRole>(d.clone()).unwrap())
            .find(|r| r.metadata.name.as_deref() == Some(check_name.as_str()))
    };
    assert!(
        find(&render(&set(DEFAULTS))).is_none(),
        "no check role by default"
    );
    let docs = render(&set(&["check.rbac.create=true"]));
    check_all(&docs);
    let rules = find(&docs)
        .expect("the check ClusterRole")
        .rules
        .unwrap_or_default();
    assert_no_wildcards(&rules, "check ClusterRole");
    let proxy_name = format!("https:{RELEASE}:443");
    for call in drain_webhook::check::API_CALLS {
        let name = match call.resource {
            "services/proxy" => proxy_name.as_str(),
            _ => RELEASE,
        };
        assert!(
            rules.iter().any(|rule| grants(rule, call, name)),
            "nothing grants {call:?} on {name:?}"
        );
    }
    for rule in &rules {
        for resource in rule.resources.iter().flatten() {
            for verb in &rule.verbs {
                assert!(
                    drain_webhook::check::API_CALLS
                        .iter()
                        .any(|c| c.resource == resource && c.verb == verb),
                    "{verb} on {resource} is granted but check never uses it"
                );
            }
        }
    }
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        for binding in all_of_kind(&docs, kind) {
            assert_ne!(binding["roleRef"]["name"], check_name.as_str(), "{binding}");
        }
    }
}
