use super::*;
use crate::drain_record::{EndReason, RecordRole};
use serde_json::json;

fn record(why: EndReason, after_floor: u64) -> DrainRecord {
    DrainRecord {
        role: RecordRole::App,
        floor_ms: 5_000,
        end_ms: 12_000,
        why,
        last_arrival_ms: Some(9_000),
        after_floor,
        migrated_at_ms: None,
        signal_at_ms: Some(12_000),
        exit: 0,
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn pod(uid: &str, deployment: &str, message: &str, finished: i64) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{deployment}-abc-{uid}"), "namespace": "shop", "uid": uid,
            "labels": {"pod-template-hash": "abc"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("{deployment}-abc"), "uid": "rs", "controller": true}]},
        "status": {"containerStatuses": [{"name": "app", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": {"exitCode": 0, "message": message,
            "finishedAt": at(finished).to_string()}}}]}
    }))
    .unwrap()
}

fn window(after: Option<i64>, through: i64) -> Window {
    Window {
        after: after.map(at),
        through: at(through),
    }
}

fn counted(outcomes: &[Outcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Counted { .. }))
        .count()
}

#[test]
fn each_record_is_counted_once_whatever_the_events_repeat() {
    let mut drains = Drains::new(Limits::default());
    let now = Instant::now();
    let line = record(EndReason::Quiet, 0).to_line();
    let p = pod("u1", "web", &line, 10);
    let all = window(None, 100);
    assert_eq!(counted(&drains.observe_pod(&p, &all, now)), 1);
    // MODIFIED again, DELETED, then a re-list: nothing more.
    for _ in 0..3 {
        assert!(drains.observe_pod(&p, &all, now).is_empty());
    }
    let workloads = drains.workloads();
    assert_eq!(workloads.len(), 1);
    assert_eq!(workloads[0].0.kind, "Deployment");
    assert_eq!(workloads[0].0.name, "web");
    assert_eq!(workloads[0].1.drains, 1);
}

#[test]
fn malformed_records_are_reported_once_and_messages_without_one_ignored() {
    let mut drains = Drains::new(Limits::default());
    let now = Instant::now();
    let bad = pod("u1", "web", "{\"v\":1,\"role\":\"app\"}", 10);
    let all = window(None, 100);
    assert_eq!(
        drains.observe_pod(&bad, &all, now),
        vec![Outcome::Malformed("json")]
    );
    assert!(drains.observe_pod(&bad, &all, now).is_empty());
    assert!(
        drains
            .observe_pod(&pod("u2", "web", "user text", 10), &all, now)
            .is_empty()
    );
    assert_eq!(drains.size().0, 0);
}

#[test]
fn the_window_splits_records_between_leaders() {
    let line = record(EndReason::Quiet, 0).to_line();
    let now = Instant::now();
    // The previous leader renewed at 50: it counted what finished up to there.
    let mut drains = Drains::new(Limits::default());
    let before = pod("u1", "web", &line, 40);
    let later = pod("u2", "web", &line, 70);
    let ours = window(Some(50), 60);
    assert!(drains.observe_pod(&before, &ours, now).is_empty());
    // Finished after our own last renewal: waits for the next one.
    assert!(drains.observe_pod(&later, &ours, now).is_empty());
    assert_eq!(drains.size().3, 1);
    assert!(drains.release(&window(Some(50), 65), now).is_empty());
    assert_eq!(counted(&drains.release(&window(Some(50), 75), now)), 1);
    assert_eq!(drains.size().3, 0);
}

#[test]
fn cap_warnings_are_rate_limited_per_workload() {
    let mut drains = Drains::new(Limits::default());
    let start = Instant::now();
    let capped = record(EndReason::Cap, 12).to_line();
    let all = window(None, 100);
    let warned = |outcomes: Vec<Outcome>| {
        outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Counted { warn: true, .. }))
            .count()
    };
    assert_eq!(
        warned(drains.observe_pod(&pod("u1", "web", &capped, 1), &all, start)),
        1
    );
    let soon = start + Duration::from_secs(60);
    assert_eq!(
        warned(drains.observe_pod(&pod("u2", "web", &capped, 2), &all, soon)),
        0
    );
    assert_eq!(
        warned(drains.observe_pod(&pod("u3", "api", &capped, 2), &all, soon)),
        1
    );
    let later = start + Duration::from_secs(601);
    assert_eq!(
        warned(drains.observe_pod(&pod("u4", "web", &capped, 3), &all, later)),
        1
    );
    // A cap without traffic after the floor is no warning.
    let quiet_cap = record(EndReason::Cap, 0).to_line();
    assert_eq!(
        warned(drains.observe_pod(&pod("u5", "db", &quiet_cap, 3), &all, later)),
        0
    );
    let web = drains
        .workloads()
        .into_iter()
        .find(|(w, _)| w.name == "web")
        .unwrap()
        .1;
    assert_eq!((web.drains, web.cap_hits), (3, 3));
}

#[test]
fn the_state_stays_within_its_limits() {
    let limits = Limits {
        workloads: 4,
        recent: 3,
        seen: 10,
        pending: 2,
        warn_every: Duration::from_secs(600),
    };
    let mut drains = Drains::new(limits);
    let now = Instant::now();
    let line = record(EndReason::Quiet, 0).to_line();
    for i in 0..100 {
        let p = pod(&format!("u{i}"), &format!("w{}", i % 7), &line, 10 + i);
        drains.observe_pod(&p, &window(None, 60), now);
    }
    let (workloads, kept, seen, pending) = drains.size();
    assert!(workloads <= 4 && kept <= 12 && seen <= 10 && pending <= 2);
    // The most recently drained workload is kept.
    assert!(drains.workloads().iter().any(|(w, _)| w.name == "w1"));
}
