//! Requests on open connections: bytes that arrive without a new connection.

use super::*;

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
            excused: 0,
            bytes: 40,
            migrate: false,
        }
    );
    hold.observe(2_000, sample(8, 2));
    // The window (1 s, 3 s]: the 2 bytes at 2 s and the 5 at 3 s, not the 40 at 1 s.
    assert_eq!(
        hold.observe(3_000, sample(8, 5)),
        Verdict::Hold {
            arrivals: 0,
            excused: 0,
            bytes: 7,
            migrate: false,
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
