//! The decision against a model of the rules written out, on generated sample sequences.

use super::*;
use proptest::prelude::*;

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
