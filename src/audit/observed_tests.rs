use super::*;

fn workload(drains: u64, cap_hits: u64, lag_max: Option<f64>, recent: usize) -> WorkloadReport {
    let drain = RecentDrain {
        pod: None,
        role: "proxy".into(),
        floor: 10.0,
        end: 13.0,
        why: "quiet".into(),
        last_arrival: lag_max,
        after_floor: 0,
        migrated_at: None,
        signal_at: Some(13.0),
        exit: 0,
    };
    WorkloadReport {
        namespace: "shop".into(),
        kind: "Deployment".into(),
        name: "web".into(),
        drains,
        cap_hits,
        lag_median_seconds: lag_max.map(|l| l / 2.0),
        lag_max_seconds: lag_max,
        recent: vec![drain; recent],
    }
}

const ADAPTIVE: PlannedHold = PlannedHold {
    delay: 10,
    quiet: 3,
    max_delay: 60,
    adapts: true,
};

#[test]
fn a_cap_hit_says_raise_whatever_the_count() {
    for drains in [1, 10] {
        let r = recommend(
            &workload(drains, 1, Some(58.0), drains as usize),
            Some(ADAPTIVE),
        );
        assert_eq!(r.verdict, Verdict::Raise);
        assert!(
            r.message.starts_with(&format!(
                "raise max-delay: 1 of {drains} drains hit the cap (60 s)"
            )) && r.message.contains("\"120s\""),
            "{}",
            r.message
        );
    }
    let r = recommend(&workload(10, 3, None, 10), None);
    assert_eq!(r.verdict, Verdict::Raise);
    assert!(
        r.message
            .starts_with("raise max-delay: 3 of 10 drains hit the cap with"),
        "{}",
        r.message
    );
}

#[test]
fn too_few_drains_say_so() {
    let r = recommend(&workload(MIN_DRAINS - 1, 0, Some(2.0), 4), Some(ADAPTIVE));
    assert_eq!(r.verdict, Verdict::TooFew);
    assert_eq!(
        r.message,
        "too few drains to tell: 4 of at least 5, none hit the cap"
    );
}

#[test]
fn lag_well_under_the_cap_is_enough() {
    let r = recommend(&workload(24, 0, Some(16.2), 24), Some(ADAPTIVE));
    assert_eq!(r.verdict, Verdict::Enough);
    assert_eq!(
        r.message,
        "max-delay 60 s is enough: lag at most 17 s over the last 24 drains"
    );
    // At the line: 42 + 3 = 45 = 75% of 60.
    let r = recommend(&workload(24, 0, Some(42.0), 24), Some(ADAPTIVE));
    assert_eq!(r.verdict, Verdict::Enough);
    // No arrival after deletion at all.
    let r = recommend(&workload(6, 0, None, 6), Some(ADAPTIVE));
    assert_eq!(r.verdict, Verdict::Enough);
    assert_eq!(
        r.message,
        "max-delay 60 s is enough: no arrival after deletion over the last 6 drains"
    );
    // Without a planned hold: no limit to compare with, only the facts.
    let r = recommend(&workload(6, 0, Some(3.0), 6), None);
    assert_eq!(r.verdict, Verdict::Enough);
    assert_eq!(
        r.message,
        "no hold hit its cap: lag at most 3 s over the last 6 drains"
    );
}

#[test]
fn lag_near_the_cap_is_close() {
    let r = recommend(&workload(24, 0, Some(42.5), 24), Some(ADAPTIVE));
    assert_eq!(r.verdict, Verdict::Close);
    assert!(
        r.message.starts_with(
            "max-delay 60 s is close: lag at most 43 s over the last 24 drains (plus 3 s quiet)"
        ),
        "{}",
        r.message
    );
    // A fixed hold (M at or below D) is judged against D, with no quiet window.
    let fixed = PlannedHold {
        delay: 10,
        quiet: 3,
        max_delay: 10,
        adapts: false,
    };
    let r = recommend(&workload(8, 0, Some(9.0), 8), Some(fixed));
    assert_eq!(r.verdict, Verdict::Close);
    assert_eq!(
        r.message,
        "delay 10 s is close: lag at most 9 s over the last 8 drains, over 75% of it; raise it before holds hit the cap"
    );
    let r = recommend(&workload(8, 0, Some(7.5), 8), Some(fixed));
    assert_eq!(r.verdict, Verdict::Enough);
    assert!(
        r.message.starts_with("delay 10 s is enough"),
        "{}",
        r.message
    );
}

#[test]
fn attach_matches_rows_by_workload() {
    let row = |workload: &str| Row {
        workload: workload.into(),
        coverage: crate::audit::Coverage::Protected,
        reason: None,
        pods: Vec::new(),
        drift: Vec::new(),
        risks: Vec::new(),
        would_change: None,
        observed: None,
        planned_hold: Some(ADAPTIVE),
    };
    let mut rows = vec![row("Deployment shop/web"), row("Deployment shop/api")];
    attach(&mut rows, &[workload(24, 2, Some(60.0), 24)]);
    let seen = rows[0].observed.as_ref().unwrap();
    assert_eq!((seen.drains, seen.cap_hits, seen.recent), (24, 2, 24));
    assert_eq!(seen.recommendation.verdict, Verdict::Raise);
    assert_eq!(rows[1].observed, None);
}

/// The client reads what the server writes: the Board's own report (a leader with one
/// counted drain, then the answers of a follower and of a process without the observer).
#[test]
fn the_answer_is_the_boards_report() {
    use crate::drain_record::{DrainRecord, EndReason, RecordRole};
    use crate::observe::{Board, Limits, Window};
    let record = DrainRecord {
        role: RecordRole::Proxy,
        floor_ms: 10_000,
        end_ms: 16_200,
        why: EndReason::Quiet,
        last_arrival_ms: Some(13_150),
        after_floor: 4,
        migrated_at_ms: None,
        signal_at_ms: Some(16_210),
        exit: 0,
    };
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web-abc-x1", "namespace": "shop", "uid": "u1",
            "labels": {"pod-template-hash": "abc"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "web-abc", "uid": "rs", "controller": true}]},
        "status": {"containerStatuses": [{"name": "proxy", "image": "i", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0,
            "message": record.to_line(), "finishedAt": "2027-01-01T00:00:00Z"}}}]}
    }))
    .unwrap();
    let board = Board::default();
    board.started("drain-webhook-0_1_a");
    board.leading(Limits::default());
    let through = "2027-01-01T00:01:00Z".parse().unwrap();
    let counted = board.lock().drains.as_mut().unwrap().observe_pod(
        &pod,
        &Window {
            after: None,
            through,
        },
        std::time::Instant::now(),
    );
    assert_eq!(counted.len(), 1);
    let text = serde_json::to_string(&board.report()).unwrap();
    let answer: DrainsReport = serde_json::from_str(&text).unwrap();
    assert!(answer.leader);
    assert_eq!(answer.workloads.len(), 1, "{text}");
    let web = &answer.workloads[0];
    assert_eq!(web.id(), "Deployment shop/web");
    assert_eq!((web.drains, web.cap_hits), (1, 0));
    assert_eq!(web.lag_max_seconds, Some(13.15));
    assert_eq!(web.recent.len(), 1);
    let drain = &web.recent[0];
    assert_eq!(
        (
            drain.role.as_str(),
            drain.end,
            drain.why.as_str(),
            drain.after_floor
        ),
        ("proxy", 16.2, "quiet", 4)
    );

    board.following(Some("drain-webhook-1_1_b".into()));
    let answer: DrainsReport =
        serde_json::from_str(&serde_json::to_string(&board.report()).unwrap()).unwrap();
    assert!(!answer.leader);
    assert_eq!(answer.holder.as_deref(), Some("drain-webhook-1_1_b"));
    assert!(answer.identity.is_some());
    let off: DrainsReport =
        serde_json::from_str(&serde_json::to_string(&Board::default().report()).unwrap()).unwrap();
    assert_eq!((off.leader, off.identity, off.holder), (false, None, None));
}

/// A hostNetwork pod holds for the fixed D whatever M is (`plan/hold.rs`): its observed lag is
/// judged against D, with no quiet window, and it is no fixed-hold risk.
#[test]
fn a_host_network_workload_is_judged_against_its_fixed_delay() {
    use crate::mutate::PodContext;
    use crate::settings::Settings;
    let settings = Settings::default();
    assert!(settings.max_delay > settings.delay, "the defaults adapt");
    let ctx = PodContext {
        settings: &settings,
        namespace_annotations: None,
        kube_version: None,
        image_volume_nodes: None,
    };
    let workload_on = |host_network: bool| {
        let input = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"template": {"spec": {
                "hostNetwork": host_network,
                "containers": [{"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]}],
            }}},
        });
        let options = crate::audit::AuditOptions {
            namespace_opted_in: true,
            webhook_namespace: false,
        };
        let rows = crate::audit::audit(&input.to_string(), &ctx, options).expect("audits");
        rows[0].planned_hold.expect("a planned hold")
    };
    let pod_network = workload_on(false);
    assert!(pod_network.adapts, "{pod_network:?}");
    let host = workload_on(true);
    assert_eq!(
        host,
        PlannedHold {
            adapts: false,
            ..pod_network
        }
    );
    // Lag 9 s of D = 10 s: close for the fixed hold; far under M for the adaptive one.
    let seen = workload(8, 0, Some(9.0), 8);
    let r = recommend(&seen, Some(host));
    assert_eq!(r.verdict, Verdict::Close);
    assert!(
        r.message.starts_with("delay 10 s is close"),
        "{}",
        r.message
    );
    assert_eq!(recommend(&seen, Some(pod_network)).verdict, Verdict::Enough);
}
