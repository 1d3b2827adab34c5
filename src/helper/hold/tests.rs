use super::*;
use proptest::prelude::*;

/// A sample with the counter at `passive_opens` and no bytes on open connections.
fn opens(passive_opens: u64) -> Sample {
    Sample {
        passive_opens,
        reused_bytes: 0,
    }
}

/// Feeds `(at_ms, counter)` samples until the hold releases: when and why.
fn release(
    hold: &mut Hold,
    samples: impl IntoIterator<Item = (u64, u64)>,
) -> Option<(u64, Release)> {
    samples
        .into_iter()
        .find_map(|(at, counter)| match hold.observe(at, opens(counter)) {
            Verdict::Release(why) => Some((at, why)),
            Verdict::Hold { .. } => None,
        })
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
    // Two probes (every 1 s and every 10 s) and traffic until 5 s.
    let counter = |at: u64| (at + 900) / 1_000 + (at + 9_000) / 10_000 + 3 * (at.min(5_000) / 250);
    let mut hold = Hold::new(1, 3, 60, &[1, 10]);
    let mut still_receiving = 0;
    for (at, n) in every_250ms(120_000, counter) {
        match hold.observe(at, opens(n)) {
            Verdict::Hold {
                arrivals,
                allowance,
                ..
            } => {
                still_receiving += u32::from(arrivals > allowance);
            }
            Verdict::Release(why) => {
                assert_eq!((at, why), (8_000, Release::Quiet));
                break;
            }
        }
    }
    assert!(still_receiving > 0);
}

#[test]
fn allowance_is_floor_of_the_window_over_the_period_plus_one_per_probe() {
    let hold = Hold::new(0, 3, 60, &[1, 2, 10]);
    assert_eq!(hold.allowance(3_000), 4 + 2 + 1);
    assert_eq!(hold.allowance(3_250), 4 + 2 + 1);
    assert_eq!(hold.allowance(4_000), 5 + 3 + 1);
    assert_eq!(Hold::new(0, 3, 60, &[]).allowance(3_000), 0);
}

#[test]
fn reports_the_arrivals_in_the_window() {
    let mut hold = Hold::new(10, 3, 60, &[]);
    assert_eq!(
        hold.observe(0, opens(500)),
        Verdict::Hold {
            arrivals: 0,
            allowance: 0,
            bytes: 0
        }
    );
    assert_eq!(
        hold.observe(1_000, opens(537)),
        Verdict::Hold {
            arrivals: 37,
            allowance: 0,
            bytes: 0
        }
    );
    assert_eq!(
        hold.observe(3_000, opens(540)),
        Verdict::Hold {
            arrivals: 40,
            allowance: 0,
            bytes: 0
        }
    );
    // The baseline moves: the window (1 s, 4 s] holds the 3 that arrived after 1 s.
    assert_eq!(
        hold.observe(4_000, opens(540)),
        Verdict::Hold {
            arrivals: 3,
            allowance: 0,
            bytes: 0
        }
    );
    // A time that goes back is taken as the previous one.
    assert_eq!(
        hold.observe(3_500, opens(540)),
        Verdict::Hold {
            arrivals: 3,
            allowance: 0,
            bytes: 0
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

/// A sample every 250 ms to 60 s: `opens(at)` accepted so far, `bytes(at)` on open connections
/// since the previous sample.
fn every_250ms_with_bytes(
    opens: impl Fn(u64) -> u64,
    bytes: impl Fn(u64) -> u64,
) -> Vec<(u64, Sample)> {
    (0..=240)
        .map(|i| {
            let at = i * 250;
            let sample = Sample {
                passive_opens: opens(at),
                reused_bytes: bytes(at),
            };
            (at, sample)
        })
        .collect()
}

#[test]
fn keep_alive_requests_without_new_connections_hold_until_they_stop_then_q() {
    // One kept-alive connection with a request (300 bytes) every sample until 4 s; no accept.
    let requests_until = |last: u64| move |at: u64| if at <= last { 300 } else { 0 };
    let mut hold = Hold::new(1, 2, 20, &[]);
    let samples = every_250ms_with_bytes(|_| 500, requests_until(4_000));
    assert_eq!(
        release_samples(&mut hold, samples),
        Some((6_000, Release::Quiet))
    );
    // Counted connections alone (what the hold saw before) release at the later of D and Q.
    let mut hold = Hold::new(1, 2, 20, &[]);
    assert_eq!(
        release_samples(&mut hold, every_250ms_with_bytes(|_| 500, |_| 0)),
        Some((2_000, Release::Quiet))
    );
    // With a probe every second beside them: the probe is discounted, the bytes are not.
    let probe = |at: u64| 500 + (at + 900) / 1_000;
    let mut hold = Hold::new(1, 2, 20, &[1]);
    let samples = every_250ms_with_bytes(probe, requests_until(4_000));
    assert_eq!(
        release_samples(&mut hold, samples),
        Some((6_000, Release::Quiet))
    );
    // Requests that never stop: the cap.
    let mut hold = Hold::new(1, 2, 20, &[1]);
    let samples = every_250ms_with_bytes(probe, |_| 17);
    assert_eq!(
        release_samples(&mut hold, samples),
        Some((20_000, Release::Cap))
    );
}

#[test]
fn a_single_byte_in_the_window_holds() {
    // No byte allowance: one byte at 3 s (an HTTP/2 PING is 17) holds until 3 s + Q.
    let mut hold = Hold::new(1, 2, 20, &[]);
    let samples = every_250ms_with_bytes(|_| 0, |at| u64::from(at == 3_000));
    // Quiet from 2 s on (D 1, Q 2), before the byte.
    assert_eq!(
        release_samples(&mut hold, samples),
        Some((2_000, Release::Quiet))
    );
    let mut hold = Hold::new(4, 2, 20, &[]);
    let samples = every_250ms_with_bytes(|_| 0, |at| u64::from(at == 3_000));
    assert_eq!(
        release_samples(&mut hold, samples),
        Some((5_000, Release::Quiet))
    );
}

#[test]
fn bytes_at_the_first_sample_are_before_the_hold() {
    // The first sample has nothing to compare with: whatever it carries is not in the window.
    let mut hold = Hold::new(0, 1, 20, &[]);
    let samples = every_250ms_with_bytes(|_| 0, |at| if at == 0 { 1_000 } else { 0 });
    assert_eq!(
        release_samples(&mut hold, samples),
        Some((1_000, Release::Quiet))
    );
}

#[test]
fn reports_the_bytes_in_the_window() {
    let mut hold = Hold::new(10, 2, 60, &[]);
    let sample = |passive_opens, reused_bytes| Sample {
        passive_opens,
        reused_bytes,
    };
    hold.observe(0, sample(7, 0));
    assert_eq!(
        hold.observe(1_000, sample(8, 40)),
        Verdict::Hold {
            arrivals: 1,
            allowance: 0,
            bytes: 40
        }
    );
    hold.observe(2_000, sample(8, 2));
    // The window (1 s, 3 s]: the 2 bytes at 2 s and the 5 at 3 s, not the 40 at 1 s.
    assert_eq!(
        hold.observe(3_000, sample(8, 5)),
        Verdict::Hold {
            arrivals: 0,
            allowance: 0,
            bytes: 7
        }
    );
}

#[test]
fn a_probes_new_connection_is_not_counted_again_as_bytes() {
    use crate::helper::sock_diag::{Inbound, TcpSocket};
    // The kubelet's probe: a new connection every second with a 100-byte request, closed before
    // the next; a kept-alive client idle all along (TCP keepalive probes carry no payload).
    let socket = |state, cookie, bytes_received| TcpSocket {
        state,
        local_port: 8080,
        remote_loopback: false,
        cookie,
        bytes_received: Some(bytes_received),
    };
    let mut inbound = Inbound::new(None);
    let mut hold = Hold::new(1, 3, 30, &[1]);
    let mut released = None;
    for i in 0..=120u64 {
        let at = i * 250;
        let probes = at / 1_000 + 1;
        let mut sockets = vec![socket(10, 1, 0), socket(1, 2, 5_000)];
        if at % 1_000 == 0 {
            // This probe's connection is seen open by one sample only.
            sockets.push(socket(1, 100 + probes, 100));
        }
        let sample = Sample {
            passive_opens: 40 + probes,
            reused_bytes: inbound.sample(&sockets).unwrap(),
        };
        if let Verdict::Release(why) = hold.observe(at, sample) {
            released = Some((at, why));
            break;
        }
    }
    assert_eq!(released, Some((3_000, Release::Quiet)));
}

/// Sample times from 0 in steps of 1 ms to 1.5 s, with the increment at each sample.
fn sequence() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec(
        (
            1u64..=1_500,
            prop_oneof![3 => Just(0u64), 2 => 1u64..5, 1 => 5u64..200],
        ),
        1..200,
    )
    .prop_map(|steps| {
        let mut at = 0;
        let mut out = vec![(0, 0)];
        for (step, increment) in steps {
            at += step;
            out.push((at, increment));
        }
        out
    })
}

/// Turns increments into counter values, with an optional drop to `reset_to` at sample `reset_at`.
fn counters(increments: &[(u64, u64)], reset: Option<(usize, u64)>) -> Vec<(u64, u64)> {
    let mut counter = 1_000u64;
    increments
        .iter()
        .enumerate()
        .map(|(i, &(at, increment))| {
            counter += increment;
            if let Some((reset_at, value)) = reset
                && i == reset_at
            {
                counter = value.min(counter.saturating_sub(1));
            }
            (at, counter)
        })
        .collect()
}

/// The rules written out directly (no probes): quiet at the first sample at or after D where Q
/// has been observed and no increment was seen at a sample in the last Q; else the cap.
fn model(samples: &[(u64, u64)], floor: u64, quiet: u64, cap: u64) -> Option<(u64, Release)> {
    let first = samples.first()?.0;
    let increments: Vec<(u64, bool)> = samples
        .iter()
        .enumerate()
        .map(|(i, &(at, c))| (at, i > 0 && c > samples[i - 1].1))
        .collect();
    for &(at, _) in samples {
        let quiet_now = at >= floor
            && at - first >= quiet
            && !increments
                .iter()
                .any(|&(at_j, arrived)| arrived && at_j <= at && at_j + quiet > at);
        if quiet_now {
            return Some((at, Release::Quiet));
        }
        if at >= cap {
            return Some((at, Release::Cap));
        }
    }
    None
}

/// Samples with bytes on open connections beside the counter: `(at, increment, bytes)`.
fn sequence_with_bytes() -> impl Strategy<Value = Vec<(u64, u64, u64)>> {
    prop::collection::vec(
        (
            1u64..=1_500,
            prop_oneof![3 => Just(0u64), 1 => 1u64..5],
            prop_oneof![3 => Just(0u64), 1 => 1u64..20, 1 => 20u64..100_000],
        ),
        1..200,
    )
    .prop_map(|steps| {
        let mut at = 0;
        let mut out = vec![(0, 0, 0)];
        for (step, increment, bytes) in steps {
            at += step;
            out.push((at, increment, bytes));
        }
        out
    })
}

fn with_bytes(steps: &[(u64, u64, u64)]) -> Vec<(u64, Sample)> {
    let mut counter = 1_000;
    steps
        .iter()
        .map(|&(at, increment, bytes)| {
            counter += increment;
            let sample = Sample {
                passive_opens: counter,
                reused_bytes: bytes,
            };
            (at, sample)
        })
        .collect()
}

/// The rules with both signals: a sample after the first is an arrival when the counter grew
/// or bytes came on open connections.
fn model_with_bytes(
    samples: &[(u64, Sample)],
    floor: u64,
    quiet: u64,
    cap: u64,
) -> Option<(u64, Release)> {
    let first = samples.first()?.0;
    let arrived: Vec<(u64, bool)> = samples
        .iter()
        .enumerate()
        .map(|(i, (at, s))| {
            let grew = i > 0 && s.passive_opens > samples[i - 1].1.passive_opens;
            (*at, i > 0 && (grew || s.reused_bytes > 0))
        })
        .collect();
    for &(at, _) in samples {
        let quiet_now = at >= floor
            && at - first >= quiet
            && !arrived
                .iter()
                .any(|&(at_j, a)| a && at_j <= at && at_j + quiet > at);
        if quiet_now {
            return Some((at, Release::Quiet));
        }
        if at >= cap {
            return Some((at, Release::Cap));
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn matches_the_rules(
        increments in sequence(),
        floor in 0u32..20,
        quiet in 1u32..8,
        extra in 0u32..40,
        reset in prop::option::of((0usize..200, 0u64..2_000)),
    ) {
        let samples = counters(&increments, reset);
        let mut hold = Hold::new(floor, quiet, floor + extra, &[]);
        let expected = model(&samples, u64::from(floor) * 1000, u64::from(quiet) * 1000, u64::from(floor + extra) * 1000);
        prop_assert_eq!(release(&mut hold, samples), expected);
    }

    #[test]
    fn never_before_d_never_after_m(
        increments in sequence(),
        floor in 0u32..20,
        quiet in 1u32..8,
        extra in 0u32..40,
        probes in prop::collection::vec(1u32..15, 0..3),
        reset in prop::option::of((0usize..200, 0u64..2_000)),
    ) {
        let samples = counters(&increments, reset);
        let cap = u64::from(floor + extra) * 1000;
        let first_at_cap = samples.iter().map(|s| s.0).find(|&at| at >= cap);
        let mut hold = Hold::new(floor, quiet, floor + extra, &probes);
        match release(&mut hold, samples) {
            Some((at, _)) => {
                prop_assert!(at >= u64::from(floor) * 1000);
                prop_assert!(first_at_cap.is_none_or(|cap_at| at <= cap_at));
            }
            None => prop_assert!(first_at_cap.is_none()),
        }
    }

    #[test]
    fn more_arrivals_never_release_earlier(
        increments in sequence(),
        more in prop::collection::vec(0u64..4, 201),
        floor in 0u32..20,
        quiet in 1u32..8,
        extra in 0u32..40,
        probes in prop::collection::vec(1u32..15, 0..3),
    ) {
        let busier: Vec<(u64, u64)> = increments
            .iter()
            .zip(&more)
            .map(|(&(at, n), &m)| (at, n + m))
            .collect();
        let when = |increments: &[(u64, u64)]| {
            let mut hold = Hold::new(floor, quiet, floor + extra, &probes);
            release(&mut hold, counters(increments, None)).map_or(u64::MAX, |(at, _)| at)
        };
        prop_assert!(when(&busier) >= when(&increments));
    }

    #[test]
    fn probes_alone_are_released_at_the_later_of_d_and_q(
        periods in prop::collection::vec((1u64..=10, 0u64..10_000), 1..4),
        step in 50u64..=1_000,
        floor in 0u32..20,
        quiet in 1u32..10,
    ) {
        // Each probe connects every P seconds from an arbitrary phase.
        let probes_by = |at: u64| -> u64 {
            periods
                .iter()
                .map(|&(p, phase)| {
                    let (p, phase) = (p * 1_000, phase % (p * 1_000));
                    if at < phase { 0 } else { (at - phase) / p + 1 }
                })
                .sum()
        };
        let list: Vec<u32> = periods.iter().map(|&(p, _)| p as u32).collect();
        let mut hold = Hold::new(floor, quiet, 300, &list);
        let samples = (0..).map(|i| i * step).take_while(|&at| at <= 400_000).map(|at| (at, probes_by(at)));
        let later = u64::from(floor.max(quiet)) * 1000;
        let expected = later.div_ceil(step) * step;
        prop_assert_eq!(release(&mut hold, samples), Some((expected, Release::Quiet)));
    }

    #[test]
    fn both_signals_match_the_rules(
        steps in sequence_with_bytes(),
        floor in 0u32..20,
        quiet in 1u32..8,
        extra in 0u32..40,
    ) {
        let samples = with_bytes(&steps);
        let mut hold = Hold::new(floor, quiet, floor + extra, &[]);
        let ms = |s: u32| u64::from(s) * 1000;
        let expected = model_with_bytes(&samples, ms(floor), ms(quiet), ms(floor + extra));
        prop_assert_eq!(release_samples(&mut hold, samples), expected);
    }

    #[test]
    fn more_bytes_never_release_earlier(
        steps in sequence_with_bytes(),
        more in prop::collection::vec(prop_oneof![2 => Just(0u64), 1 => 1u64..1_000], 201),
        floor in 0u32..20,
        quiet in 1u32..8,
        extra in 0u32..40,
        probes in prop::collection::vec(1u32..15, 0..3),
    ) {
        let busier: Vec<(u64, u64, u64)> = steps
            .iter()
            .zip(&more)
            .map(|(&(at, n, b), &m)| (at, n, b + m))
            .collect();
        let when = |steps: &[(u64, u64, u64)]| {
            let mut hold = Hold::new(floor, quiet, floor + extra, &probes);
            release_samples(&mut hold, with_bytes(steps)).map_or(u64::MAX, |(at, _)| at)
        };
        prop_assert!(when(&busier) >= when(&steps));
    }
}
