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

criterion_group!(benches, planner, review);
criterion_main!(benches);
