//! The hold's decisions on synthetic samples: new connections here, bytes on open connections
//! in `bytes.rs`, the probes' tokens in `probes.rs`, the properties against a model of the
//! rules in `properties.rs`.

use super::*;

mod bytes;
mod migrate;
mod probes;
mod properties;
mod record;

/// A sample with the counter at `passive_opens` and no bytes on open connections.
fn opens(passive_opens: u64) -> Sample {
    Sample {
        passive_opens,
        reused_bytes: 0,
    }
}

/// Feeds full samples until the hold releases: when and why.
fn release_samples(
    hold: &mut Hold,
    samples: impl IntoIterator<Item = (u64, Sample)>,
) -> Option<(u64, Release)> {
    samples
        .into_iter()
        .find_map(|(at, sample)| match hold.observe(at, sample) {
            Verdict::Release(why) => Some((at, why)),
            Verdict::Hold { .. } => None,
        })
}

/// Feeds `(at_ms, counter)` samples, no bytes on open connections, until the hold releases.
fn release(
    hold: &mut Hold,
    samples: impl IntoIterator<Item = (u64, u64)>,
) -> Option<(u64, Release)> {
    release_samples(
        hold,
        samples
            .into_iter()
            .map(|(at, counter)| (at, opens(counter))),
    )
}

/// A sample every 250 ms from 0 to `until_ms`, the counter given by `counter(at)`.
fn every_250ms(until_ms: u64, counter: impl Fn(u64) -> u64) -> Vec<(u64, u64)> {
    (0..=until_ms / 250)
        .map(|i| (i * 250, counter(i * 250)))
        .collect()
}

/// Five new connections per sample up to `last_ms`, then none.
fn traffic_until(last_ms: u64) -> impl Fn(u64) -> u64 {
    move |at| 1_000 + 5 * (at.min(last_ms) / 250)
}

#[test]
fn released_q_after_the_traffic_stops() {
    let mut hold = Hold::new(1, 2, 30, &[]);
    let samples = every_250ms(60_000, traffic_until(3_000));
    assert_eq!(release(&mut hold, samples), Some((5_000, Release::Quiet)));
}

#[test]
fn never_before_the_floor_nor_before_q_was_observed() {
    // No traffic at all: held until the floor D.
    let mut hold = Hold::new(10, 2, 30, &[]);
    assert_eq!(
        release(&mut hold, every_250ms(60_000, |_| 7)),
        Some((10_000, Release::Quiet))
    );
    // D = 0: still a full quiet window must have been seen.
    let mut hold = Hold::new(0, 3, 30, &[]);
    assert_eq!(
        release(&mut hold, every_250ms(60_000, |_| 7)),
        Some((3_000, Release::Quiet))
    );
}

#[test]
fn a_gap_just_under_q_holds_and_just_over_q_releases() {
    // Bursts up to 1 s, then a gap of 1.75 s (under Q = 2 s), then one more connection.
    let under = |at: u64| match at {
        0..=1_000 => at / 250,
        1_001..=2_749 => 4,
        _ => 5,
    };
    let mut hold = Hold::new(1, 2, 30, &[]);
    assert_eq!(
        release(&mut hold, every_250ms(60_000, under)),
        Some((4_750, Release::Quiet))
    );
    // The same with a gap of 2.25 s: quiet at 1 s + Q, before the next burst.
    let over = |at: u64| match at {
        0..=1_000 => at / 250,
        1_001..=3_249 => 4,
        _ => 5,
    };
    let mut hold = Hold::new(1, 2, 30, &[]);
    assert_eq!(
        release(&mut hold, every_250ms(60_000, over)),
        Some((3_000, Release::Quiet))
    );
}

#[test]
fn a_counter_that_goes_down_is_no_arrival() {
    // Traffic until 1 s, then the counter drops (wrap, another namespace) and stays.
    let reset = |at: u64| if at <= 1_000 { 100 + at } else { 3 };
    let mut hold = Hold::new(1, 2, 30, &[]);
    assert_eq!(
        release(&mut hold, every_250ms(60_000, reset)),
        Some((3_000, Release::Quiet))
    );
    // After the drop it counts from the new value: arrivals until 2 s hold until 4 s.
    let reset_then_traffic = |at: u64| match at {
        0..=1_000 => u64::MAX - 10 + at / 250,
        _ => at.min(2_000) / 250,
    };
    let mut hold = Hold::new(1, 2, 30, &[]);
    let mut arrivals_seen = Vec::new();
    for (at, counter) in every_250ms(60_000, reset_then_traffic) {
        match hold.observe(at, opens(counter)) {
            Verdict::Hold { arrivals, .. } => arrivals_seen.push(arrivals),
            Verdict::Release(why) => {
                assert_eq!((at, why), (4_000, Release::Quiet));
                break;
            }
        }
    }
    // Never a huge number: at most the 4 counted before and the 4 after the drop.
    assert!(arrivals_seen.iter().all(|&n| n <= 8), "{arrivals_seen:?}");
}

#[test]
fn traffic_that_never_stops_is_released_at_the_cap_exactly() {
    let mut hold = Hold::new(1, 1, 4, &[]);
    let samples = every_250ms(60_000, |at| at / 250);
    assert_eq!(release(&mut hold, samples), Some((4_000, Release::Cap)));
    // The cap equal to the floor: released at D whatever arrives.
    let mut hold = Hold::new(3, 5, 3, &[]);
    assert_eq!(
        release(&mut hold, every_250ms(60_000, |at| at)),
        Some((3_000, Release::Cap))
    );
}

#[test]
fn a_probe_every_second_alone_is_released_at_the_later_of_d_and_q() {
    // One connection per second at 0.1 s, 1.1 s, ...: the kubelet's probe.
    let probe = |at: u64| (at + 900) / 1_000;
    for (floor, quiet) in [(1, 3), (5, 2), (2, 2), (0, 1)] {
        let mut hold = Hold::new(floor, quiet, 60, &[1]);
        let expected = u64::from(floor.max(quiet)) * 1_000;
        assert_eq!(
            release(&mut hold, every_250ms(120_000, probe)),
            Some((expected, Release::Quiet)),
            "D={floor} Q={quiet}"
        );
    }
    // Without the discount the same probe holds the pod until the cap.
    let mut hold = Hold::new(1, 3, 60, &[]);
    assert_eq!(
        release(&mut hold, every_250ms(120_000, probe)),
        Some((60_000, Release::Cap))
    );
}

#[test]
fn probes_and_traffic_together_release_after_the_traffic() {
    // Two probes (every 1 s and every 10 s) and traffic until 5 s. The traffic took the 1 s
    // probe's token, so its connection at 5.1 s (seen at 5.25 s) is not excused: released the
    // longest period plus its tolerance (11 s) after it.
    let counter = |at: u64| (at + 900) / 1_000 + (at + 9_000) / 10_000 + 3 * (at.min(5_000) / 250);
    let mut hold = Hold::new(1, 3, 60, &[1, 10]);
    let mut still_receiving = 0;
    for (at, n) in every_250ms(120_000, counter) {
        match hold.observe(at, opens(n)) {
            Verdict::Hold {
                arrivals, excused, ..
            } => {
                still_receiving += u32::from(arrivals > excused);
            }
            Verdict::Release(why) => {
                assert_eq!((at, why), (16_250, Release::Quiet));
                break;
            }
        }
    }
    assert!(still_receiving > 0);
}

#[test]
fn reports_the_arrivals_in_the_window() {
    let mut hold = Hold::new(10, 3, 60, &[]);
    assert_eq!(
        hold.observe(0, opens(500)),
        Verdict::Hold {
            arrivals: 0,
            excused: 0,
            bytes: 0,
            migrate: false,
        }
    );
    assert_eq!(
        hold.observe(1_000, opens(537)),
        Verdict::Hold {
            arrivals: 37,
            excused: 0,
            bytes: 0,
            migrate: false,
        }
    );
    assert_eq!(
        hold.observe(3_000, opens(540)),
        Verdict::Hold {
            arrivals: 40,
            excused: 0,
            bytes: 0,
            migrate: false,
        }
    );
    // The baseline moves: the window (1 s, 4 s] holds the 3 that arrived after 1 s.
    assert_eq!(
        hold.observe(4_000, opens(540)),
        Verdict::Hold {
            arrivals: 3,
            excused: 0,
            bytes: 0,
            migrate: false,
        }
    );
    // A time that goes back is taken as the previous one.
    assert_eq!(
        hold.observe(3_500, opens(540)),
        Verdict::Hold {
            arrivals: 3,
            excused: 0,
            bytes: 0,
            migrate: false,
        }
    );
}

#[test]
fn keeps_only_the_last_window_of_samples() {
    let mut hold = Hold::new(0, 2, 3_600, &[]);
    for i in 0..10_000u64 {
        hold.observe(i * 250, opens(i));
    }
    // Q / 250 ms plus the baseline.
    assert!(hold.kept() <= 10, "{}", hold.kept());
}
