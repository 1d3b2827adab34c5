//! The observer's memory bound (issue 28, "a cluster with 100,000 pods must not cost the
//! webhook memory per pod"): 100,000 planned pods, 10,000 of them drained with a record, over
//! 3,000 workloads, streamed through the observer's handler (`Drains::observe_pod`, what the
//! leader runs per watch event; pure, no network), twice (a re-list). The state stays within
//! its limits and the process's RSS does not grow with the pods: docs/benchmarks.md has the
//! figures (`cargo test --test observe_memory -- --nocapture`).
//!
//! Its own test binary, one test: RSS is the process's.

use std::time::Instant;

use drain_webhook::drain_record::{DrainRecord, EndReason, RecordRole};
use drain_webhook::observe::{Drains, Limits, Window};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

const PODS: usize = 100_000;
const DRAINS_EVERY: usize = 10;
const WORKLOADS: usize = 3_000;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn template(message: Option<String>) -> Pod {
    let state = match message {
        Some(message) => json!({"terminated": {"exitCode": 0, "message": message,
            "finishedAt": "2026-01-01T00:00:00Z"}}),
        None => json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}}),
    };
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "shop", "uid": "u",
            "labels": {"drain.io/planned": "true", "pod-template-hash": "5f6c7"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "w-5f6c7",
                "uid": "rs", "controller": true}]},
        "status": {"containerStatuses": [{"name": "app", "image": "", "imageID": "",
            "ready": true, "restartCount": 0, "state": state}]}
    }))
    .unwrap()
}

/// Streams the pods once; returns the records counted.
fn stream(drains: &mut Drains, window: &Window) -> usize {
    let line = DrainRecord {
        role: RecordRole::App,
        floor_ms: 5_000,
        end_ms: 11_000,
        why: EndReason::Quiet,
        last_arrival_ms: Some(7_000),
        after_floor: 3,
        migrated_at_ms: None,
        signal_at_ms: Some(11_000),
        exit: 0,
    }
    .to_line();
    let running = template(None);
    let drained = template(Some(line));
    let now = Instant::now();
    let mut counted = 0;
    for i in 0..PODS {
        // Each event's pod is built, read and dropped, as the watch hands it over.
        let mut pod = if i.is_multiple_of(DRAINS_EVERY) {
            drained.clone()
        } else {
            running.clone()
        };
        pod.metadata.uid = Some(format!("uid-{i}"));
        // The drained ones spread over every workload (11 is prime to 3,000).
        let workload = (i / DRAINS_EVERY + i) % WORKLOADS;
        pod.metadata.name = Some(format!("w{workload}-5f6c7-{i}"));
        let owner = &mut pod.metadata.owner_references.as_mut().unwrap()[0];
        owner.name = format!("w{workload}-5f6c7");
        counted += drains.observe_pod(&pod, window, now).len();
    }
    counted
}

#[test]
fn the_observer_state_does_not_grow_with_the_pods() {
    let limits = Limits::default();
    let mut drains = Drains::new(limits);
    let window = Window {
        after: None,
        through: Timestamp::now(),
    };
    let start = rss_kib();
    let first = stream(&mut drains, &window);
    let after_first = rss_kib();
    let (workloads, kept, seen, pending) = drains.size();
    // A re-list: the same pods again, nothing counted twice.
    let second = stream(&mut drains, &window);
    let after_second = rss_kib();
    eprintln!(
        "{PODS} pods, {first} drains: {workloads} workloads, {kept} drains kept, {seen} keys, \
         {pending} pending; VmRSS {start} KiB at start, {after_first} KiB after, \
         {after_second} KiB after the re-list"
    );
    assert_eq!(first, PODS / DRAINS_EVERY);
    assert_eq!(second, 0);
    assert!(workloads <= limits.workloads && kept <= limits.workloads * limits.recent);
    assert!(seen <= limits.seen && pending == 0);
    // The bound: a few MiB for the aggregates, whatever the number of pods (the state's
    // worst case is ~1024 workloads x 32 records + 65,536 keys, under 4 MiB).
    assert!(
        after_first.saturating_sub(start) < 32 * 1024,
        "{start} -> {after_first} KiB"
    );
    assert!(
        after_second.saturating_sub(after_first) < 8 * 1024,
        "{after_first} -> {after_second} KiB"
    );
}
