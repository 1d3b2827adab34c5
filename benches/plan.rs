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

/// What injection costs a pod start, as far as it can be computed without a cluster: the init
/// containers the patch adds, per shape and Kubernetes version (`auto` delivery). Each one cost
/// about 1.0 s of create-to-Ready on the lab node (docs/benchmarks.md); an image volume or a
/// native sleep adds none. Printed and written to `$DRAIN_BENCH_OUT/start-cost.json`.
fn start_cost(_: &mut Criterion) {
    let settings = Settings::default();
    let versions = ["1.29", "1.32", "1.34", "1.35"];
    let mut rows = Vec::new();
    println!("\npod start: init containers added by the patch (auto delivery)");
    println!(
        "{:8} {}",
        "shape",
        versions.map(|v| format!("{v:>6}")).join("")
    );
    for shape in common::shapes() {
        let mut line = format!("{:8} ", shape.name);
        for version in versions {
            let ctx = PodContext {
                settings: &settings,
                namespace_annotations: None,
                kube_version: version.parse().ok(),
            };
            let mutation = mutate_pod(&shape.pod, &ctx).expect("every shape plans");
            let added = mutation
                .plan
                .helper
                .as_ref()
                .filter(|h| !h.present && !h.image_volume)
                .map_or(0, |_| 1);
            line.push_str(&format!("{added:>6}"));
            rows.push(serde_json::json!({
                "shape": shape.name, "kubeVersion": version, "initContainersAdded": added,
                "helperAsImageVolume": mutation.plan.helper.as_ref().is_some_and(|h| h.image_volume),
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
