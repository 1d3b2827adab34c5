//! The shared real-world corpus (`../shared/realworld/`, 25 manifests written by other projects,
//! sources in its INDEX.md), read at test time: every workload goes through `inject` and
//! `explain -o json` at every Kubernetes version the planner distinguishes, and holds the
//! design's invariants. Skipped, with a message, where the folder is absent.

mod common;

use std::path::PathBuf;

use common::*;
use drain_webhook::mutate::{PodContext, mutate_pod};
use drain_webhook::offline::{OutputFormat, explain, inject};
use drain_webhook::settings::{KubeVersion, Settings};
use serde_json::Value;

/// Unknown, before the native sleep action (1.28, 1.29), with it (1.30+), the lab's 1.32 and
/// a current one.
const VERSIONS: [Option<&str>; 6] = [
    None,
    Some("1.28"),
    Some("1.29"),
    Some("1.30"),
    Some("1.32"),
    Some("1.34"),
];

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("DRAIN_REALWORLD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/realworld"));
    dir.is_dir().then_some(dir)
}

/// The corpus as (file name, text), sorted; `None` (and a message) when it is absent.
fn corpus() -> Option<Vec<(String, String)>> {
    let Some(dir) = corpus_dir() else {
        eprintln!(
            "skipped: no real-world corpus at ../shared/realworld (set DRAIN_REALWORLD_DIR to run it)"
        );
        return None;
    };
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("corpus folder reads")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("corpus file reads");
            (name, text)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "the corpus holds 25 manifests, found {} in {}",
        files.len(),
        dir.display()
    );
    Some(files)
}

/// Each Pod or pod template of a file, with the name `explain` gives its object.
fn templates(text: &str) -> Vec<(String, Value)> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).expect("corpus YAML parses");
    let mut found = Vec::new();
    for document in documents.iter().filter(|d| !d.is_null()) {
        let kind = document["kind"].as_str().unwrap_or_default();
        let pointer = match kind {
            "Pod" => "",
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => "/spec/template",
            "CronJob" => "/spec/jobTemplate/spec/template",
            _ => continue,
        };
        let mut template = document.pointer(pointer).expect("a pod template").clone();
        // The StatefulSet controller adds a volume per claim template to each pod: so does the
        // test, or the validator would find its mounts dangling.
        if let Some(claims) = document
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
        {
            for claim in claims {
                let name = claim["metadata"]["name"].clone();
                let volume =
                    serde_json::json!({"name": name, "persistentVolumeClaim": {"claimName": name}});
                match template["spec"]["volumes"].as_array_mut() {
                    Some(volumes) => volumes.push(volume),
                    None => template["spec"]["volumes"] = serde_json::json!([volume]),
                }
            }
        }
        found.push((kind.to_string(), template));
    }
    found
}

fn kube(version: Option<&str>) -> Option<KubeVersion> {
    version.map(|v| v.parse().expect("a version"))
}

/// Patch paths drain-webhook owns: the status annotation, the grace period, a container's
/// preStop and mounts, and the helper's init container and volume. Anything else it writes
/// would change a field the user owns.
fn owned(path: &str) -> bool {
    let tokens: Vec<&str> = path.split('/').skip(1).collect();
    match tokens.as_slice() {
        ["metadata"] | ["metadata", "annotations"] | ["metadata", "labels"] => true,
        // The observer's selector (src/patch: PLANNED_LABEL).
        ["metadata", "labels", "drain.io~1planned"] => true,
        ["metadata", "annotations", key] => {
            key.starts_with("drain.io~1") || *key == "kubectl.kubernetes.io~1default-container"
        }
        ["spec", "terminationGracePeriodSeconds"] => true,
        ["spec", "initContainers", ..] | ["spec", "volumes", ..] => true,
        // The first-container installer, and the annotation that keeps `kubectl logs` on the
        // user's first container.
        ["spec", "containers", "0"] => true,
        ["spec", "containers", _, "lifecycle", ..] => true,
        ["spec", "containers", _, "volumeMounts", ..] => true,
        _ => false,
    }
}

#[test]
fn every_real_world_workload_holds_the_invariants() {
    let Some(files) = corpus() else { return };
    let settings = Settings::default();
    let mut planned_somewhere = 0;
    for (file, text) in &files {
        let found = templates(text);
        assert!(!found.is_empty(), "{file}: no workload found");
        // Nodes not known (no image volume from auto), and every node mounting them.
        for (version, nodes) in VERSIONS.iter().flat_map(|v| [(*v, None), (*v, Some(true))]) {
            let ctx = PodContext {
                settings: &settings,
                namespace_annotations: None,
                kube_version: kube(version),
                image_volume_nodes: nodes,
            };
            let at = format!(
                "{file} at {}, image volume nodes {nodes:?}",
                version.unwrap_or("an unknown version")
            );

            // The CLI paths accept every file.
            inject(text, &ctx).unwrap_or_else(|e| panic!("{at}: inject: {e}"));
            let explained = explain(text, &ctx, OutputFormat::Json)
                .unwrap_or_else(|e| panic!("{at}: explain: {e}"));
            let explained: Value = serde_json::from_str(&explained).expect("explain JSON");
            assert_eq!(
                explained.as_array().map(Vec::len),
                Some(found.len()),
                "{at}: one plan per workload"
            );

            for (kind, template) in &found {
                // Patch applies, result still a Pod, idempotent, grace never shorter, proxies
                // before apps, every helper command parses (tests/common/invariants.rs).
                let (mutation, patched) = invariants::check_mutation(template, &ctx)
                    .unwrap_or_else(|e| panic!("{at}: {kind}: {e}"))
                    .unwrap_or_else(|| panic!("{at}: {kind}: denied"));
                if !mutation.patch.is_empty() {
                    planned_somewhere += 1;
                }
                for op in &mutation.patch.to_json_patch().0 {
                    let path = op.path().to_string();
                    assert!(
                        owned(&path),
                        "{at}: {kind}: writes {path}, a field it does not own"
                    );
                }
                check_user_hooks_kept(&at, template, &patched);
                let spec = template.get("spec").expect("a spec");
                let windows = serde_json::from_value::<drain_webhook::pod::PodShape>(
                    serde_json::json!({"spec": spec}),
                )
                .expect("reads as a pod")
                .spec
                .is_some_and(|s| s.is_windows());
                if windows {
                    assert!(
                        mutation.plan.helper.is_none()
                            && !patched.to_string().contains("drain-helper"),
                        "{at}: {kind}: a Windows pod got the Linux helper"
                    );
                }
            }
        }
    }
    assert!(planned_somewhere > 0, "the corpus was planned nowhere");
}

/// A user's own exec or httpGet preStop is never dropped: the new hook either is the old one,
/// or runs it after the delay (exec words at the end, `--then-http-get`).
fn check_user_hooks_kept(at: &str, original: &Value, patched: &Value) {
    let before = original["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (index, container) in before.iter().enumerate() {
        let old = &container["lifecycle"]["preStop"];
        // By name: a first container of ours shifts the indices of the user's.
        let now = patched["spec"]["containers"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == container["name"]))
            .expect("the user's container is still there");
        let new = &now["lifecycle"]["preStop"];
        if old.is_null() || old == new {
            continue;
        }
        if let Some(command) = old["exec"]["command"].as_array() {
            let now = new["exec"]["command"]
                .as_array()
                .expect("still an exec hook");
            assert!(
                now.ends_with(command),
                "{at}: exec hook of #{index} dropped: {now:?}"
            );
        } else if old["httpGet"].is_object() {
            assert!(
                new.to_string().contains("--then-http-get"),
                "{at}: httpGet of #{index} dropped"
            );
        } else if let Some(seconds) = old["sleep"]["seconds"].as_i64() {
            // A user's sleep adds to the delay: a longer native sleep, or the helper's --delay.
            let delay = new["sleep"]["seconds"].as_i64().or_else(|| {
                let command = new["exec"]["command"].as_array()?;
                let at = command.iter().position(|w| w == "--delay")?;
                command
                    .get(at + 1)?
                    .as_str()?
                    .trim_end_matches('s')
                    .parse()
                    .ok()
            });
            assert!(
                delay >= Some(seconds),
                "{at}: sleep of #{index} shortened: {new}"
            );
        } else {
            panic!("{at}: a hook of #{index} was replaced: {old} -> {new}");
        }
    }
}

/// The corpus cases the design names: grace 0 is skipped on purpose, the Windows DaemonSet
/// (chosen by nodeSelector) never gets the helper at any version, a native-sidecar proxy is
/// warned about, and a planned pod passes the API server's validation rules.
#[test]
fn the_corpus_cases_the_design_names() {
    let Some(files) = corpus() else { return };
    let settings = Settings::default();
    let text = |prefix: &str| {
        &files
            .iter()
            .find(|(name, _)| name.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}* in the corpus"))
            .1
    };
    let plan_of = |prefix: &str, version: Option<&str>| {
        let (_, template) = templates(text(prefix)).remove(0);
        let ctx = PodContext {
            settings: &settings,
            namespace_annotations: None,
            kube_version: kube(version),
            image_volume_nodes: None,
        };
        (
            template.clone(),
            mutate_pod(&template, &ctx).expect("planned"),
        )
    };

    let (_, metallb) = plan_of("19-", Some("1.32"));
    assert!(metallb.patch.is_empty(), "grace 0 is left alone");
    assert!(
        metallb
            .plan
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("0")
    );

    for version in VERSIONS {
        let (_, windows) = plan_of("14-", version);
        assert!(
            windows.plan.helper.is_none(),
            "windows-exporter at {version:?}"
        );
    }

    // Where image volumes are on by default and every node mounts them, drain-webhook adds no
    // init container to any of them.
    for (file, text) in &files {
        for (kind, template) in templates(text) {
            let ctx = PodContext {
                settings: &settings,
                namespace_annotations: None,
                kube_version: kube(Some("1.35")),
                image_volume_nodes: Some(true),
            };
            let mutation = mutate_pod(&template, &ctx).expect("planned");
            let (_, pod) = apply(&template, &mutation);
            validate(&pod).unwrap_or_else(|e| panic!("{file} {kind} at 1.35: {e:?}"));
            let before = template["spec"]["initContainers"]
                .as_array()
                .map_or(0, Vec::len);
            let after = pod
                .spec
                .as_ref()
                .unwrap()
                .init_containers
                .as_ref()
                .map_or(0, Vec::len);
            assert_eq!(
                before, after,
                "{file} {kind}: an init container added at 1.35"
            );
        }
    }

    let (template, seedlike) = plan_of("16-", Some("1.32"));
    let (_, pod) = apply(&template, &seedlike);
    validate(&pod).unwrap_or_else(|e| panic!("nginx + php-fpm: {e:?}"));
    assert!(seedlike.plan.has_front_proxy, "nginx in front of php-fpm");
}

/// Every corpus workload keeps its QoS class (`ComputePodQOS`, written from the upstream rule
/// in tests/common/invariants.rs) under every delivery: the installer's requests equal its
/// limits in a Guaranteed pod and it has no cpu or memory in a BestEffort one.
#[test]
fn every_corpus_pod_keeps_its_qos_class() {
    use drain_webhook::settings::HelperDelivery;
    use k8s_openapi::api::core::v1::PodSpec;
    let Some(files) = corpus() else { return };
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    for (file, text) in &files {
        for (kind, template) in templates(text) {
            let spec: PodSpec = serde_json::from_value(template["spec"].clone())
                .unwrap_or_else(|e| panic!("{file} {kind}: {e}"));
            let class = invariants::qos_class(&spec);
            *seen.entry(class).or_default() += 1;
            for delivery in [
                HelperDelivery::Auto,
                HelperDelivery::InitContainer,
                HelperDelivery::FirstContainer,
            ] {
                let mut settings = Settings::default();
                settings.helper.delivery = delivery;
                let ctx = PodContext {
                    settings: &settings,
                    namespace_annotations: None,
                    kube_version: kube(Some("1.34")),
                    image_volume_nodes: None,
                };
                let mutation = mutate_pod(&template, &ctx).expect("planned");
                let mut patched = template.clone();
                json_patch::patch(&mut patched, &mutation.patch.to_json_patch().0)
                    .unwrap_or_else(|e| panic!("{file} {kind}: {e}"));
                let after: PodSpec = serde_json::from_value(patched["spec"].clone())
                    .unwrap_or_else(|e| panic!("{file} {kind}: {e}"));
                assert_eq!(
                    invariants::qos_class(&after),
                    class,
                    "{file} {kind} with {delivery}"
                );
            }
        }
    }
    // The corpus has pods of every class (counts printed with --nocapture).
    println!("QoS classes in the corpus: {seen:?}");
    assert_eq!(seen.len(), 3, "{seen:?}");
}
