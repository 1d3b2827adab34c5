//! The planning engine alone, per pod shape (`make bench-plan`):
//!
//! - `mutate_pod/<shape>`: plan + JSONPatch from an already parsed pod (what the server calls);
//! - `review/<shape>`: a whole AdmissionReview through `Reviewer::review` (parse, plan, patch,
//!   serialize the answer), without HTTP.
//!
//! Throughput is in bytes of the pod's JSON (`review`: of the whole body), so criterion's
//! MiB/s compares the cost per byte across shapes: linear growth shows as equal MiB/s.
//! scripts/bench.sh turns the estimates into ns per pod and per byte.

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use drain_webhook::admission::Reviewer;
use drain_webhook::mutate::{PodContext, mutate_pod};
use drain_webhook::plan::Delivery;
use drain_webhook::settings::{KubeVersion, Settings};

/// The version `make bench` serves with (`--kube-version 1.34`).
const KUBE: KubeVersion = KubeVersion {
    major: 1,
    minor: 34,
};

fn planner(c: &mut Criterion) {
    let settings = Settings::default();
    let ctx = PodContext {
        settings: &settings,
        namespace_annotations: None,
        kube_version: Some(KUBE),
        image_volume_nodes: None,
    };
    let mut group = c.benchmark_group("mutate_pod");
    for shape in common::shapes() {
        let mutation = mutate_pod(&shape.pod, &ctx).expect("every shape plans");
        assert!(!mutation.patch.is_empty(), "{} is patched", shape.name);
        group.throughput(Throughput::Bytes(shape.pod_bytes() as u64));
        group.bench_function(shape.name, |b| {
            b.iter(|| mutate_pod(black_box(&shape.pod), &ctx))
        });
    }
    group.finish();
}

fn review(c: &mut Criterion) {
    let reviewer = Reviewer {
        kube_version: Some(KUBE),
        ..Reviewer::for_tests()
    };
    let mut group = c.benchmark_group("review");
    for shape in common::shapes() {
        let body = common::review(&shape.pod);
        let answer = reviewer.review(&body);
        assert_eq!(answer.status, 200, "{}", shape.name);
        assert!(answer.patch_operations > 0, "{} is patched", shape.name);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(shape.name, |b| b.iter(|| reviewer.review(black_box(&body))));
    }
    group.finish();
}

/// What injection costs a pod start, as far as it can be computed without a cluster: how the
/// helper comes per shape and Kubernetes version (`auto` delivery), with the nodes not known
/// and, on 1.35, with every node mounting image volumes. Only an init container delays the
/// start (about 1.0 s of create-to-Ready on the lab node, docs/benchmarks.md); a first
/// container, an image volume or a native sleep add none. Printed and written to
/// `$DRAIN_BENCH_OUT/start-cost.json`.
fn start_cost(_: &mut Criterion) {
    let settings = Settings::default();
    // (version, every node mounts image volumes)
    let columns = [
        ("1.29", None),
        ("1.32", None),
        ("1.34", None),
        ("1.35", None),
        ("1.35", Some(true)),
    ];
    let mut rows = Vec::new();
    println!(
        "\npod start: what the patch adds (auto delivery; * = every node mounts image volumes)"
    );
    println!(
        "{:8} {}",
        "shape",
        columns
            .map(|(v, nodes)| format!(
                "{:>8}",
                format!("{v}{}", if nodes.is_some() { "*" } else { "" })
            ))
            .join("")
    );
    for shape in common::shapes() {
        let mut line = format!("{:8} ", shape.name);
        for (version, nodes) in columns {
            let ctx = PodContext {
                settings: &settings,
                namespace_annotations: None,
                kube_version: version.parse().ok(),
                image_volume_nodes: nodes,
            };
            let mutation = mutate_pod(&shape.pod, &ctx).expect("every shape plans");
            let added = mutation.plan.helper.as_ref().filter(|h| !h.present);
            let cell = match added.map(|h| h.delivery()) {
                None => "-",
                Some(Delivery::InitContainer) => "init",
                Some(Delivery::FirstContainer(_)) => "first",
                Some(Delivery::ImageVolume) => "image",
            };
            line.push_str(&format!("{cell:>8}"));
            rows.push(serde_json::json!({
                "shape": shape.name, "kubeVersion": version, "imageVolumeNodes": nodes,
                "delivery": added.map(|h| h.delivery().as_str()),
                "initContainersAdded": usize::from(cell == "init"),
                "containersAdded": usize::from(cell == "first"),
                "helperAsImageVolume": cell == "image",
            }));
        }
        println!("{line}");
    }
    if let Some(out) = std::env::var_os("DRAIN_BENCH_OUT") {
        let path = std::path::Path::new(&out).join("start-cost.json");
        let _ = std::fs::write(
            &path,
            serde_json::to_string_pretty(&rows).unwrap_or_default(),
        );
    }
}

criterion_group!(benches, start_cost, planner, review);
criterion_main!(benches);
