//! What the hold tells the drain record: the last arrival and the traffic after the floor.

use super::*;

#[test]
fn nothing_arrived_leaves_no_last_arrival() {
    let mut hold = Hold::new(10, 3, 60, &[]);
    let released = release(&mut hold, (0..=60).map(|s| (s * 1000, 5)));
    assert_eq!(released, Some((10_000, Release::Quiet)));
    assert_eq!(hold.last_arrival_ms(), None);
    assert_eq!(hold.after_floor(), 0);
}

#[test]
fn connections_before_and_after_the_floor() {
    // One connection per second until 14 s, D = 10: the last arrived by 14 s, four after D.
    let mut hold = Hold::new(10, 3, 60, &[]);
    let counter = |at: u64| at.min(14_000) / 1000;
    let released = release(&mut hold, (0..=60).map(|s| (s * 1000, counter(s * 1000))));
    assert_eq!(released, Some((17_000, Release::Quiet)));
    assert_eq!(hold.last_arrival_ms(), Some(14_000));
    // Samples at 11, 12, 13, 14 s each saw one; the one at 10 s saw what came before D.
    assert_eq!(hold.after_floor(), 4);
}

#[test]
fn a_request_period_counts_once_and_probes_not_at_all() {
    // A 10 s probe connects at 5 s and 15 s (excused); requests on an open connection in the
    // samples at 8, 9, 11 and 12 s (several bytes each): two periods after the floor D = 10.
    let mut hold = Hold::new(10, 3, 60, &[10]);
    let samples = (0..=60u64).map(|s| {
        let at = s * 1000;
        let passive_opens = u64::from(at >= 5_000) + u64::from(at >= 15_000);
        let reused_bytes = if [8_000, 9_000, 11_000, 12_000].contains(&at) {
            700
        } else {
            0
        };
        (
            at,
            Sample {
                passive_opens,
                reused_bytes,
            },
        )
    });
    let released = release_samples(&mut hold, samples);
    assert_eq!(released, Some((15_000, Release::Quiet)));
    assert_eq!(hold.last_arrival_ms(), Some(12_000));
    assert_eq!(hold.after_floor(), 2);
}

#[test]
fn traffic_to_the_cap_is_all_after_the_floor() {
    // Two connections a second all along: the cap at 20 s, 20 after D = 10 (samples 11..=20).
    let mut hold = Hold::new(10, 3, 20, &[]);
    let released = release(&mut hold, (0..=30).map(|s| (s * 1000, s * 2)));
    assert_eq!(released, Some((20_000, Release::Cap)));
    assert_eq!(hold.last_arrival_ms(), Some(20_000));
    assert_eq!(hold.after_floor(), 20);
}
