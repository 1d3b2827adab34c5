//! A profiling driver: one review, many times, with nothing else in the process, so an
//! instruction-count profiler (`valgrind --tool=callgrind`) can attribute the cost of a seed
//! review whatever else runs on the machine (docs/benchmarks.md, "Where the seed review's
//! instructions go").
//!
//! ```text
//! CARGO_PROFILE_BENCH_DEBUG=line-tables-only CARGO_PROFILE_BENCH_STRIP=none \
//!     cargo build --profile bench --example profile_review
//! valgrind --tool=callgrind target/release/examples/profile_review review 2000
//! ```
//!
//! Modes: `review` (`Reviewer::review` on the body, as the server does), `mutate`
//! (`mutate_pod` on the parsed pod, as `benches/plan.rs` does) and `baseline` (what the
//! baseline server's handler does: parse into kube's `AdmissionReview<DynamicObject>`, answer
//! `allowed: true`). The body is tests/data/reviews/pod-create-nginx-app.json unless a third
//! argument names another review.

use std::hint::black_box;

use drain_webhook::admission::Reviewer;
use drain_webhook::mutate::{PodContext, mutate_pod};
use drain_webhook::settings::{KubeVersion, Settings};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};

/// The version `make bench` serves with (`--kube-version 1.34`).
const KUBE: KubeVersion = KubeVersion {
    major: 1,
    minor: 34,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "review".into());
    let iterations: usize = args
        .next()
        .map(|n| n.parse().expect("iterations: a number"))
        .unwrap_or(2000);
    let path = args.next().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/reviews/pod-create-nginx-app.json"
        )
        .into()
    });
    let body = std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    match mode.as_str() {
        "review" => {
            let reviewer = Reviewer {
                kube_version: Some(KUBE),
                ..Reviewer::for_tests()
            };
            let answer = reviewer.review(&body);
            assert!(answer.patch_operations > 0, "the review is patched");
            for _ in 0..iterations {
                black_box(reviewer.review(black_box(&body)));
            }
        }
        "mutate" => {
            let review: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
            let pod = &review["request"]["object"];
            let settings = Settings::default();
            let ctx = PodContext {
                settings: &settings,
                namespace_annotations: None,
                kube_version: Some(KUBE),
                image_volume_nodes: None,
            };
            mutate_pod(pod, &ctx).expect("the pod plans");
            for _ in 0..iterations {
                black_box(mutate_pod(black_box(pod), &ctx).ok());
            }
        }
        "baseline" => {
            for _ in 0..iterations {
                black_box(baseline(black_box(&body)));
            }
        }
        other => panic!("mode {other:?}: review, mutate or baseline"),
    }
}

/// The baseline server's handler without HTTP (examples/baseline_server.rs).
fn baseline(body: &[u8]) -> Vec<u8> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body).expect("review");
    let request: AdmissionRequest<DynamicObject> = review.try_into().expect("request");
    serde_json::to_vec(&AdmissionResponse::from(&request).into_review()).expect("answer")
}
