//! The migration at the floor (`--migrate`): when it is asked for, and that it changes nothing
//! else.

use super::*;

/// The times at which a hold `with_migration` asks to migrate, and when and why it ends.
fn migrations(
    mut hold: Hold,
    samples: impl IntoIterator<Item = (u64, Sample)>,
) -> (Vec<u64>, Option<(u64, Release)>) {
    let mut asked = Vec::new();
    for (at, sample) in samples {
        match hold.observe(at, sample) {
            Verdict::Hold { migrate: true, .. } => asked.push(at),
            Verdict::Hold { .. } => {}
            Verdict::Release(why) => return (asked, Some((at, why))),
        }
    }
    (asked, None)
}

fn counter_samples(samples: Vec<(u64, u64)>) -> Vec<(u64, Sample)> {
    samples.into_iter().map(|(at, n)| (at, opens(n))).collect()
}

#[test]
fn once_at_the_floor_when_traffic_still_arrives() {
    // Traffic until 20 s, D = 10: asked once, at 10 s, and the hold ends as without it.
    let samples = counter_samples(every_250ms(60_000, traffic_until(20_000)));
    let with = Hold::new(10, 3, 60, &[]).with_migration();
    let (asked, end) = migrations(with, samples.clone());
    assert_eq!(asked, [10_000]);
    let (none, end_without) = migrations(Hold::new(10, 3, 60, &[]), samples);
    assert!(none.is_empty());
    assert_eq!(end, end_without);
    assert_eq!(end, Some((23_000, Release::Quiet)));
}

#[test]
fn never_when_the_hold_ends_at_the_floor() {
    // Quiet at D: released there, no migration.
    let quiet = counter_samples(every_250ms(60_000, traffic_until(2_000)));
    let (asked, end) = migrations(Hold::new(10, 3, 60, &[]).with_migration(), quiet);
    assert!(asked.is_empty());
    assert_eq!(end, Some((10_000, Release::Quiet)));
    // Held past D only because Q = 3 s has not been observed yet, nothing arriving: no
    // migration (the first sample a little after the hook's start does the same to D = Q).
    let idle = counter_samples(every_250ms(60_000, |_| 7));
    let (asked, end) = migrations(Hold::new(1, 3, 60, &[]).with_migration(), idle);
    assert!(asked.is_empty());
    assert_eq!(end, Some((3_000, Release::Quiet)));
    let late_first: Vec<(u64, Sample)> = [(2, 7), (1_000, 7), (1_250, 7)]
        .into_iter()
        .map(|(at, n)| (at, opens(n)))
        .collect();
    let (asked, end) = migrations(Hold::new(1, 1, 60, &[]).with_migration(), late_first);
    assert!(asked.is_empty());
    assert_eq!(end, Some((1_250, Release::Quiet)));
    // Traffic that starts after D, before Q was observed (a connection at 2 s): migrated then.
    let later = counter_samples(every_250ms(60_000, |at| u64::from(at >= 2_000)));
    let (asked, _) = migrations(Hold::new(1, 3, 60, &[]).with_migration(), later);
    assert_eq!(asked, [2_000]);
    // The cap at the floor: released at D whatever arrives, no migration.
    let busy = counter_samples(every_250ms(60_000, |at| at));
    let (asked, end) = migrations(Hold::new(10, 3, 10, &[]).with_migration(), busy);
    assert!(asked.is_empty());
    assert_eq!(end, Some((10_000, Release::Cap)));
}

#[test]
fn clients_that_reconnect_after_the_migration_are_new_connections() {
    // Bytes on a kept-alive connection until the migration at D = 5 s; then the client
    // reconnects here (a load balancer that still routes to the pod): a new connection every
    // 500 ms from 5.5 s to 12 s, no bytes on open connections. Held until 12 s + Q, as without
    // it.
    let sample = |at: u64| Sample {
        passive_opens: 100 + (at.clamp(5_000, 12_000) - 5_000) / 500,
        reused_bytes: if at <= 5_000 { 300 } else { 0 },
    };
    let samples: Vec<(u64, Sample)> = (0..=240).map(|i| (i * 250, sample(i * 250))).collect();
    let (asked, end) = migrations(Hold::new(5, 3, 60, &[]).with_migration(), samples.clone());
    assert_eq!(asked, [5_000]);
    assert_eq!(end, Some((15_000, Release::Quiet)));
    let (_, end_without) = migrations(Hold::new(5, 3, 60, &[]), samples);
    assert_eq!(end, end_without);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

    /// Whatever arrives: at most one migration, never before the floor, only on a sample that
    /// holds, and the end is exactly the end without it.
    #[test]
    fn at_most_once_after_the_floor_and_the_end_unchanged(
        increments in proptest::collection::vec((1u64..=1_500, 0u64..4, 0u64..3), 1..200),
        floor in 0u32..20,
        quiet in 1u32..8,
        extra in 0u32..40,
        probes in proptest::collection::vec(1u32..15, 0..3),
    ) {
        let mut at = 0;
        let mut counter = 1_000;
        let samples: Vec<(u64, Sample)> = increments
            .iter()
            .map(|&(step, n, bytes)| {
                at += step;
                counter += n;
                (at, Sample { passive_opens: counter, reused_bytes: bytes })
            })
            .collect();
        let hold = || Hold::new(floor, quiet, floor + extra, &probes);
        let (asked, end) = migrations(hold().with_migration(), samples.clone());
        let (none, end_without) = migrations(hold(), samples);
        proptest::prop_assert!(none.is_empty());
        proptest::prop_assert!(asked.len() <= 1);
        proptest::prop_assert!(asked.iter().all(|&at| at >= u64::from(floor) * 1000));
        proptest::prop_assert!(asked.iter().all(|&at| end.is_none_or(|(end, _)| at < end)));
        proptest::prop_assert_eq!(end, end_without);
    }
}
