//! The probes' tokens: one excused connection per listed probe and period, so slow traffic
//! beside the probes is traffic (issue 30, item 4).

use super::*;

/// `(arrivals, excused)` in the quiet window after a sample.
fn window(verdict: Verdict) -> (u64, u64) {
    match verdict {
        Verdict::Hold {
            arrivals, excused, ..
        } => (arrivals, excused),
        Verdict::Release(why) => panic!("released ({why:?})"),
    }
}

#[test]
fn each_entry_excuses_one_connection_per_period() {
    // One 10 s probe (tolerance 1 s): token 0 usable until 11 s, token 1 from 9 s.
    let mut hold = Hold::new(60, 3, 600, &[10]);
    hold.observe(0, opens(100));
    assert_eq!(window(hold.observe(1_000, opens(101))), (1, 1));
    // A second connection in the same period is traffic, however the window slides.
    assert_eq!(window(hold.observe(2_000, opens(102))), (2, 1));
    assert_eq!(window(hold.observe(5_500, opens(102))), (0, 0));
    assert_eq!(window(hold.observe(6_000, opens(103))), (1, 0));
    // Token 1 from 9 s: one more, then nothing until token 2 (19 s).
    assert_eq!(window(hold.observe(9_500, opens(105))), (2, 1));
    assert_eq!(window(hold.observe(12_000, opens(106))), (3, 1));
    assert_eq!(window(hold.observe(19_000, opens(107))), (1, 1));
    // Two entries: two tokens per period.
    let mut hold = Hold::new(60, 3, 600, &[10, 10]);
    hold.observe(0, opens(100));
    assert_eq!(window(hold.observe(1_000, opens(103))), (3, 2));
}

#[test]
fn an_unused_token_expires_rather_than_saving_up() {
    // A 10 s probe that did not connect for 35 s: only the current period's token is left.
    let mut hold = Hold::new(60, 3, 600, &[10]);
    hold.observe(0, opens(100));
    hold.observe(35_000, opens(100));
    assert_eq!(window(hold.observe(35_250, opens(104))), (4, 1));
    // Within the tolerance of the next period, its token is usable too (a probe a little
    // early), and no more.
    let mut hold = Hold::new(60, 3, 600, &[10]);
    hold.observe(0, opens(100));
    hold.observe(39_000, opens(100));
    assert_eq!(window(hold.observe(39_250, opens(104))), (4, 2));
}

#[test]
fn a_probe_early_or_late_within_its_tolerance_keeps_its_token() {
    // A 10 s probe whose connections come 0.9 s early and 0.9 s late by turns: never held.
    let connections = [300u64, 9_400, 21_200, 29_400, 41_200, 49_400];
    let counter = |at: u64| 100 + connections.iter().filter(|&&c| c <= at).count() as u64;
    let mut hold = Hold::new(50, 3, 600, &[10]);
    for (at, n) in every_250ms(49_750, counter) {
        let (arrivals, excused) = window(hold.observe(at, opens(n)));
        assert_eq!(arrivals, excused, "at {at}");
    }
    assert_eq!(
        hold.observe(50_000, opens(counter(50_000))),
        Verdict::Release(Release::Quiet)
    );
}

/// A tiny deterministic generator for the probes' phases (no float, no dependency).
fn phases(seed: u64, count: usize, period_ms: u64) -> Vec<u64> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % period_ms
        })
        .collect()
}

/// The shapes: a lone app with two 10 s probes, and a front proxy whose readiness and
/// liveness probes on the proxy and the app make 6 entries of 10 s, where each request is two
/// accepts (the client's and the proxy's to the app). Traffic of 0.5 and 1 new request/s (and
/// slightly off those, so that it does not beat with the probes) from 0 to 30 s, D = 10,
/// Q = 3: held until the traffic stops, then released: Q after it at the earliest, and at
/// most two probe periods plus tolerances after it (a probe whose token the last requests
/// took is excused again one period later, and a connection no token excused holds for the
/// longest period plus its tolerance). The window-by-window allowance this replaced released
/// most of these at D, with the traffic still arriving.
#[test]
fn slow_traffic_beside_10s_probes_holds_until_it_stops() {
    let shapes: [(&str, usize, u64); 2] = [("lone app", 2, 1), ("front proxy", 6, 2)];
    for (shape, entries, accepts_per_request) in shapes {
        for interval_ms in [2_000u64, 2_100, 1_900, 1_000, 1_050, 950] {
            for seed in 0..40 {
                let probes = phases(seed, entries, 10_000);
                let first_request = phases(seed + 1_000, 1, interval_ms)[0];
                let requests: Vec<u64> = (0..)
                    .map(|i| first_request + i * interval_ms)
                    .take_while(|&at| at <= 30_000)
                    .collect();
                let last = *requests.last().unwrap();
                let counter = |at: u64| {
                    let traffic = requests.iter().filter(|&&r| r <= at).count() as u64;
                    let probed: u64 = probes
                        .iter()
                        .map(|&phase| {
                            if at < phase {
                                0
                            } else {
                                (at - phase) / 10_000 + 1
                            }
                        })
                        .sum();
                    1_000 + accepts_per_request * traffic + probed
                };
                let periods = vec![10; entries];
                let mut hold = Hold::new(10, 3, 120, &periods);
                let released = release(&mut hold, every_250ms(120_000, counter));
                let (at, why) = released.expect("released by the cap");
                let case = format!("{shape}, a request every {interval_ms} ms, seed {seed}");
                assert_eq!(why, Release::Quiet, "{case}");
                assert!(
                    at >= last + 3_000,
                    "{case}: released at {at}, last request {last}"
                );
                assert!(
                    at <= last + 2 * 11_000 + 250,
                    "{case}: released at {at}, last request {last}"
                );
            }
        }
    }
}

#[test]
fn without_traffic_probes_of_any_phase_release_at_the_later_of_d_and_q() {
    for seed in 0..40 {
        let probes = phases(seed, 6, 10_000);
        let counter = |at: u64| {
            probes
                .iter()
                .map(|&phase| {
                    if at < phase {
                        0
                    } else {
                        (at - phase) / 10_000 + 1
                    }
                })
                .sum::<u64>()
        };
        let mut hold = Hold::new(10, 3, 120, &[10; 6]);
        assert_eq!(
            release(&mut hold, every_250ms(120_000, counter)),
            Some((10_000, Release::Quiet)),
            "seed {seed}"
        );
    }
}

#[test]
fn with_probes_a_connection_no_token_excused_holds_for_the_longest_period() {
    // Probes every 1 s (at 0.1 s, 1.1 s, ...) and every 10 s (at 1 s, 11 s, ...), look-back
    // 11 s; one stray connection at 2 s takes the 1 s probe's token, so its connection at
    // 2.1 s (seen at 2.25 s) is the one no token excuses: Q alone would release at 5.25 s, the
    // look-back holds until 13.25 s.
    let counter = |at: u64| (at + 900) / 1_000 + (at + 9_000) / 10_000 + u64::from(at >= 2_000);
    let mut hold = Hold::new(1, 3, 60, &[1, 10]);
    assert_eq!(
        release(&mut hold, every_250ms(60_000, counter)),
        Some((13_250, Release::Quiet))
    );
    // Without probes listed the look-back is Q.
    let mut hold = Hold::new(1, 3, 60, &[]);
    assert_eq!(
        release(&mut hold, every_250ms(60_000, |at| u64::from(at >= 2_000))),
        Some((5_000, Release::Quiet))
    );
}
