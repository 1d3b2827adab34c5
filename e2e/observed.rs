//! What the webhook's drain observer saw, checked against the holds table the proxy logs give
//! (`holds.rs`): the same pods, each hold's end within [`END_SLACK_SECONDS`]. scripts/e2e.sh
//! fetches the leader's `GET /drains` through the API server's service proxy a few times
//! (`DIR/drains.jsonl`, one answer per line: the API server picks a replica at random and only
//! the leader answers with the aggregates); `drain-e2e results` runs [`check`] and results.json
//! carries the outcome; the verdict fails on a disagreement when records were expected.

use serde::{Deserialize, Serialize};

use drain_webhook::audit::observed::{DrainsReport, RecentDrain, WorkloadReport};

use crate::holds::PodHold;

/// The helper logs the hold's end with one decimal, the record with three: well within 1 s.
pub const END_SLACK_SECONDS: f64 = 1.0;

/// The demo's Deployment (scripts/e2e.sh names it `demo` in both namespaces).
pub const DEMO_DEPLOYMENT: &str = "demo";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every held pod was observed with its end, nothing else was observed.
    Agree,
    /// A pod missing on either side, or an end off by more than the slack.
    Disagree,
    /// No leader's answer: the observed drains could not be read.
    Unavailable,
    /// The webhook runs without its observer: nothing to compare (a finding, not a failure).
    ObserverOff,
}

/// One pod's hold and the observed drain paired with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Paired {
    pub pod: String,
    pub hold_end_seconds: f64,
    pub observed_end_seconds: f64,
}

/// The outcome of the comparison, as results.json carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservedCheck {
    pub outcome: Outcome,
    /// Pods whose proxy hold the helper logged: each should have left a record.
    pub expected: usize,
    /// The proxy drains the leader has for the demo Deployment.
    pub observed: usize,
    pub paired: Vec<Paired>,
    /// Pods held but not observed (or observed with an end too far off).
    pub missing: Vec<String>,
    /// Ends of observed drains no pod's hold accounts for.
    pub unaccounted_ends: Vec<f64>,
    pub message: String,
}

impl ObservedCheck {
    /// Fails the run: records were expected and the observer is on, but they do not agree or
    /// cannot be read.
    pub fn fails(&self) -> bool {
        self.expected > 0 && matches!(self.outcome, Outcome::Disagree | Outcome::Unavailable)
    }
}

/// The pairing of held pods and observed drains: by pod name where the server names the pod,
/// the rest by end (sorted, each hold with the first unpaired drain within the slack: on a
/// line, this pairs as many as any pairing can).
pub fn pair(
    holds: &[(String, f64)],
    drains: &[RecentDrain],
) -> (Vec<Paired>, Vec<String>, Vec<f64>) {
    let mut paired = Vec::new();
    let mut holds: Vec<(String, f64)> = holds.to_vec();
    let mut unnamed: Vec<f64> = Vec::new();
    let mut missing = Vec::new();
    let mut unaccounted = Vec::new();
    for drain in drains {
        let Some(pod) = &drain.pod else {
            unnamed.push(drain.end);
            continue;
        };
        match holds.iter().position(|(name, _)| name == pod) {
            Some(i) => {
                let (name, end) = holds.remove(i);
                if (end - drain.end).abs() <= END_SLACK_SECONDS {
                    paired.push(Paired {
                        pod: name,
                        hold_end_seconds: end,
                        observed_end_seconds: drain.end,
                    });
                } else {
                    missing.push(name);
                    unaccounted.push(drain.end);
                }
            }
            None => unaccounted.push(drain.end),
        }
    }
    holds.sort_by(|a, b| a.1.total_cmp(&b.1));
    unnamed.sort_by(f64::total_cmp);
    let (mut i, mut j) = (0, 0);
    while i < holds.len() && j < unnamed.len() {
        let (pod, end) = &holds[i];
        if (end - unnamed[j]).abs() <= END_SLACK_SECONDS {
            paired.push(Paired {
                pod: pod.clone(),
                hold_end_seconds: *end,
                observed_end_seconds: unnamed[j],
            });
            i += 1;
            j += 1;
        } else if *end < unnamed[j] {
            missing.push(pod.clone());
            i += 1;
        } else {
            unaccounted.push(unnamed[j]);
            j += 1;
        }
    }
    missing.extend(holds[i..].iter().map(|(pod, _)| pod.clone()));
    unaccounted.extend_from_slice(&unnamed[j..]);
    paired.sort_by(|a, b| a.pod.cmp(&b.pod));
    missing.sort();
    (paired, missing, unaccounted)
}

/// Checks the opted-in namespace's holds against the answers `GET /drains` gave
/// (`drains.jsonl`: one JSON answer per line; a line that is not one is skipped).
pub fn check(namespace: &str, holds: &[PodHold], answers: &str) -> ObservedCheck {
    let held: Vec<(String, f64)> = holds
        .iter()
        .filter_map(|h| Some((h.pod.clone(), h.hold_end_seconds?)))
        .collect();
    let answers: Vec<DrainsReport> = answers
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let result = |outcome, observed, message: String| ObservedCheck {
        outcome,
        expected: held.len(),
        observed,
        paired: Vec::new(),
        missing: Vec::new(),
        unaccounted_ends: Vec::new(),
        message,
    };
    let Some(leader) = answers.iter().find(|a| a.leader) else {
        // Every replica that answered runs without the observer: nothing was to be recorded.
        if !answers.is_empty() && answers.iter().all(|a| a.identity.is_none()) {
            return result(
                Outcome::ObserverOff,
                0,
                "the webhook's drain observer is off: no drains observed, nothing compared".into(),
            );
        }
        return result(
            Outcome::Unavailable,
            0,
            format!(
                "no leader's answer among {} from GET /drains (drains.jsonl; kubectl's errors in drains.err)",
                answers.len()
            ),
        );
    };
    let workload: Option<&WorkloadReport> = leader
        .workloads
        .iter()
        .find(|w| w.namespace == namespace && w.kind == "Deployment" && w.name == DEMO_DEPLOYMENT);
    let drains: Vec<RecentDrain> = workload
        .map(|w| {
            w.recent
                .iter()
                .filter(|d| d.role == "proxy")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    // The leader keeps a workload's last 32 drains (both roles): older ones may have gone.
    let dropped = workload.map_or(0, |w| w.drains.saturating_sub(w.recent.len() as u64));
    let (paired, missing, unaccounted) = pair(&held, &drains);
    let agree = unaccounted.is_empty() && (missing.len() as u64) <= dropped;
    let message = if agree {
        format!(
            "the webhook observed the {} held pods' drains, each end within {END_SLACK_SECONDS} s of the hold's",
            paired.len()
        )
    } else if drains.is_empty() {
        format!(
            "the webhook observed no drain of Deployment {namespace}/{DEMO_DEPLOYMENT}, but {} pods were held (does the helper write drain records?)",
            held.len()
        )
    } else {
        format!(
            "the webhook's drains disagree with the holds: {} paired; held but not observed within {END_SLACK_SECONDS} s: {}; observed ends no hold accounts for: {:?}",
            paired.len(),
            if missing.is_empty() {
                "none".to_string()
            } else {
                missing.join(", ")
            },
            unaccounted
        )
    };
    ObservedCheck {
        outcome: if agree {
            Outcome::Agree
        } else {
            Outcome::Disagree
        },
        expected: held.len(),
        observed: drains.len(),
        paired,
        missing,
        unaccounted_ends: unaccounted,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hold(pod: &str, end: Option<f64>) -> PodHold {
        PodHold {
            pod: pod.into(),
            hold_end_seconds: end,
            deleted_unix: Some(1.0),
            ..PodHold::default()
        }
    }

    fn drain(role: &str, end: f64) -> serde_json::Value {
        json!({"role": role, "floor": 10.0, "end": end, "why": "quiet", "lastArrival": 12.0,
            "afterFloor": 3, "migratedAt": null, "signalAt": end, "exit": 0})
    }

    /// A leader's answer for the demo in `on`, with `drains` in all and these recent ones.
    fn leader(drains: u64, recent: Vec<serde_json::Value>) -> String {
        json!({"leader": true, "identity": "a", "holder": "a", "workloads": [
            {"namespace": "on", "kind": "Deployment", "name": "demo", "drains": drains,
             "capHits": 0, "lagMedianSeconds": 12.0, "lagMaxSeconds": 12.0, "recent": recent},
            {"namespace": "other", "kind": "Deployment", "name": "demo", "drains": 1,
             "capHits": 0, "lagMedianSeconds": null, "lagMaxSeconds": null,
             "recent": [drain("proxy", 40.0)]}]})
        .to_string()
    }

    const FOLLOWER: &str =
        r#"{"leader":false,"identity":"b","holder":"a","message":"ask a","workloads":[]}"#;

    fn holds() -> Vec<PodHold> {
        vec![
            hold("demo-1", Some(16.2)),
            hold("demo-2", Some(13.0)),
            hold("demo-3", Some(60.0)),
            // No helper line: no record expected.
            hold("demo-4", None),
        ]
    }

    #[test]
    fn the_same_pods_and_ends_agree() {
        let answers = format!(
            "{FOLLOWER}\nnot json\n{}\n",
            leader(
                6,
                vec![
                    drain("proxy", 60.0),
                    drain("app", 21.0),
                    drain("proxy", 13.4),
                    drain("app", 18.0),
                    drain("proxy", 16.25),
                    drain("app", 65.0),
                ],
            )
        );
        let c = check("on", &holds(), &answers);
        assert_eq!(c.outcome, Outcome::Agree, "{}", c.message);
        assert_eq!((c.expected, c.observed), (3, 3));
        assert_eq!(
            c.paired
                .iter()
                .map(|p| (p.pod.as_str(), p.observed_end_seconds))
                .collect::<Vec<_>>(),
            [("demo-1", 16.25), ("demo-2", 13.4), ("demo-3", 60.0)]
        );
        assert!(!c.fails());
        assert!(c.message.contains("3 held pods"), "{}", c.message);
    }

    #[test]
    fn a_pod_missing_on_either_side_disagrees() {
        // demo-2's drain was not observed.
        let c = check(
            "on",
            &holds(),
            &leader(2, vec![drain("proxy", 16.2), drain("proxy", 60.0)]),
        );
        assert_eq!(c.outcome, Outcome::Disagree);
        assert_eq!(c.missing, ["demo-2"]);
        assert!(c.fails());
        assert!(
            c.message
                .contains("held but not observed within 1 s: demo-2"),
            "{}",
            c.message
        );
        // An observed drain no pod was held for.
        let c = check(
            "on",
            &holds(),
            &leader(
                4,
                vec![
                    drain("proxy", 16.2),
                    drain("proxy", 13.0),
                    drain("proxy", 60.0),
                    drain("proxy", 30.0),
                ],
            ),
        );
        assert_eq!(c.outcome, Outcome::Disagree);
        assert_eq!(
            (c.missing.len(), c.unaccounted_ends.as_slice()),
            (0, &[30.0][..])
        );
        assert!(c.fails());
        // Nothing observed at all while the observer runs: a failure, said plainly.
        let c = check("on", &holds(), &leader(0, vec![]));
        assert_eq!(c.outcome, Outcome::Disagree);
        assert!(c.fails());
        assert!(
            c.message
                .contains("observed no drain of Deployment on/demo"),
            "{}",
            c.message
        );
    }

    #[test]
    fn an_end_off_by_more_than_a_second_disagrees() {
        let c = check(
            "on",
            &holds(),
            &leader(
                3,
                vec![
                    drain("proxy", 16.2),
                    drain("proxy", 14.1),
                    drain("proxy", 60.0),
                ],
            ),
        );
        assert_eq!(c.outcome, Outcome::Disagree);
        assert_eq!(c.missing, ["demo-2"]);
        assert_eq!(c.unaccounted_ends, [14.1]);
        assert!(c.fails());
    }

    #[test]
    fn pods_named_by_the_server_pair_by_name() {
        let named = |pod: &str, end: f64| {
            let mut d = drain("proxy", end);
            d["pod"] = json!(pod);
            d
        };
        // demo-1 and demo-2 swapped ends: by end alone they would pair; by name they do not.
        let c = check(
            "on",
            &holds()[..2],
            &leader(2, vec![named("demo-1", 13.0), named("demo-2", 16.2)]),
        );
        assert_eq!(c.outcome, Outcome::Disagree);
        assert_eq!(c.missing, ["demo-1", "demo-2"]);
        let c = check(
            "on",
            &holds()[..2],
            &leader(2, vec![named("demo-1", 16.0), named("demo-2", 13.5)]),
        );
        assert_eq!(c.outcome, Outcome::Agree, "{}", c.message);
    }

    #[test]
    fn drains_past_the_kept_32_may_be_missing() {
        // 40 drains counted, 32 kept: up to 8 older ones gone, and demo-2's among them.
        let recent: Vec<_> = [16.2, 60.0]
            .into_iter()
            .map(|e| drain("proxy", e))
            .chain((0..30).map(|_| drain("app", 5.0)))
            .collect();
        let c = check("on", &holds(), &leader(40, recent));
        assert_eq!(c.outcome, Outcome::Agree, "{}", c.message);
        assert_eq!(c.missing, ["demo-2"]);
    }

    #[test]
    fn observer_off_is_a_finding_and_no_leader_is_a_failure() {
        let off =
            r#"{"leader":false,"identity":null,"holder":null,"message":"off","workloads":[]}"#;
        let c = check("on", &holds(), &format!("{off}\n{off}\n"));
        assert_eq!(c.outcome, Outcome::ObserverOff);
        assert!(!c.fails());
        for answers in [format!("{FOLLOWER}\n{FOLLOWER}\n"), String::new()] {
            let c = check("on", &holds(), &answers);
            assert_eq!(c.outcome, Outcome::Unavailable, "{answers}");
            assert!(c.fails());
        }
        // No helper hold, nothing expected: never a failure.
        let c = check("on", &[hold("demo-4", None)], "");
        assert_eq!((c.expected, c.fails()), (0, false));
        let c = check(
            "on",
            &[hold("demo-4", None)],
            &leader(1, vec![drain("proxy", 3.0)]),
        );
        assert_eq!(c.outcome, Outcome::Disagree);
        assert!(!c.fails());
    }
}
