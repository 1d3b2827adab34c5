//! The observer's memory through its real watch (issue 28 item 5): a fake API server
//! (tests/common/fake_api.rs) lists 100,000 planned pods in pages of 500, 10,000 of them
//! terminated with a drain record, to a leader running `observe::run` (kube's watcher, the
//! handler, the metrics); every watch ends in 410 Gone, so it lists them all again. The
//! process's RSS after the second full list is within a few MiB of the first: nothing is kept
//! per pod. Figures: docs/benchmarks.md. About 50 s in a debug build on 2 cores, so not part of
//! `make test` (tests/observe_memory.rs runs the handler's bound there):
//! `cargo test --test observe_memory_api -- --ignored --nocapture`.
//!
//! Its own test binary, one test: RSS is the process's.

#[path = "common/fake_api.rs"]
mod fake_api;

use std::sync::Arc;
use std::time::{Duration, Instant};

use drain_webhook::drain_record::{DrainRecord, EndReason, RecordRole};
use drain_webhook::observe::{self, LeaseConfig, Limits, Observed, ObserverConfig};
use fake_api::{FakeApi, Reply};
use serde_json::{Value, json};
use tokio::sync::watch;

const PODS: usize = 100_000;
const PAGE: usize = 500;
const DRAINS_EVERY: usize = 10;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn pod(i: usize, record: &str) -> Value {
    let state = if i.is_multiple_of(DRAINS_EVERY) {
        json!({"terminated": {"exitCode": 0, "message": record,
            "finishedAt": "2020-01-01T00:00:00Z"}})
    } else {
        json!({"running": {"startedAt": "2020-01-01T00:00:00Z"}})
    };
    let workload = i % 3_000;
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("w{workload}-5f6c7-{i}"), "namespace": "shop",
            "uid": format!("uid-{i}"), "resourceVersion": "7",
            "labels": {"drain.io/planned": "true", "pod-template-hash": "5f6c7"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("w{workload}-5f6c7"), "uid": "rs", "controller": true}]},
        "status": {"containerStatuses": [{"name": "app", "image": "app", "imageID": "",
            "ready": true, "restartCount": 0, "state": state}]}})
}

/// The offset a `continue` token carries (this fake's tokens are offsets).
fn offset(query: &str) -> usize {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("continue="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: about 50 s; run with --ignored"]
async fn a_hundred_thousand_pods_cost_no_memory_per_pod() {
    let record = DrainRecord {
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
    let api = FakeApi::routes(move |seen| {
        if seen.path != "/api/v1/pods" {
            return None;
        }
        if seen.query.contains("watch=true") {
            return Some(Reply::json(
                200,
                json!({"type": "ERROR", "object": {"kind": "Status",
                "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "gone",
                "reason": "Expired", "code": 410}}),
            ));
        }
        let from = offset(seen.query);
        let to = (from + PAGE).min(PODS);
        let next = if to < PODS {
            to.to_string()
        } else {
            String::new()
        };
        let items: Vec<Value> = (from..to).map(|i| pod(i, &record)).collect();
        Some(Reply::json(
            200,
            json!({"kind": "PodList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "7", "continue": next}, "items": items}),
        ))
    });
    let observed = Arc::new(Observed::default());
    let (_stop_tx, stop) = watch::channel(false);
    let config = ObserverConfig {
        lease: LeaseConfig {
            namespace: "drain-system".into(),
            name: "drain-webhook-observer".into(),
            identity: "a".into(),
            // Long: the one observer never loses it while the machine is busy.
            duration: Duration::from_secs(60),
            retry: Duration::from_millis(500),
        },
        limits: Limits::default(),
        planner: None,
    };
    let start = rss_kib();
    let task = tokio::spawn(observe::run(
        api.client_in("drain-system"),
        config,
        Arc::clone(&observed),
        stop,
    ));
    let full_lists = || {
        api.calls()
            .iter()
            .filter(|c| {
                c.path == "/api/v1/pods" && c.query.contains(&format!("continue={}", PODS - PAGE))
            })
            .count()
    };
    let began = Instant::now();
    let wait = |n: usize| {
        let full_lists = &full_lists;
        async move {
            while full_lists() < n {
                assert!(
                    began.elapsed() < Duration::from_secs(300),
                    "not listed {n} times"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // The last page handled.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let counted = || -> u64 {
        observed
            .board
            .report()
            .workloads
            .iter()
            .map(|w| w.drains)
            .sum()
    };
    wait(1).await;
    let first = rss_kib();
    let drains = counted();
    wait(3).await;
    let third = rss_kib();
    let again = counted();
    eprintln!(
        "{PODS} pods listed 3 times in pages of {PAGE} in {:?}: {drains} drains counted; VmRSS \
         {start} KiB at start, {first} KiB after the first list, {third} KiB after the third",
        began.elapsed()
    );
    assert_eq!(drains, (PODS / DRAINS_EVERY) as u64);
    assert_eq!(again, drains, "a re-list counted again");
    assert!(
        third.saturating_sub(first) < 16 * 1024,
        "{first} -> {third} KiB"
    );
    task.abort();
}
