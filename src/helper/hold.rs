//! The adaptive hold's decision, pure: fed `(milliseconds since the hook's start, the kernel's
//! count of accepted connections, the bytes that arrived on connections already open)`, it
//! says whether to keep the container serving.
//!
//! Why count, and count this: the pod's containers share one network namespace, and the kernel
//! counts every connection accepted there (`Tcp: PassiveOpens` in `/proc/net/snmp`), including
//! those opened and closed between two reads. Snapshots of `/proc/net/tcp` miss exactly those
//! short connections, which are what a load balancer still routing to the pod sends. So the
//! hold compares the counter now with the counter Q seconds ago: the difference is how many
//! connections arrived in the last Q seconds, whatever their length.
//!
//! Requests on connections that stay open (keep-alive pools, HTTP/2, a load balancer's kept-alive
//! connections) open nothing: the second signal is the bytes received, between two samples, on
//! inbound connections open at both (`sock_diag::Inbound`). A connection seen for the first time
//! is a new connection, counted once, by the counter.
//!
//! Rules: never released before the floor D (`--delay`, so nothing stops earlier than with a
//! fixed delay); released as soon as, at or after D, at least Q seconds have been observed, the
//! arrivals in the last Q seconds are no more than the probes' allowance and no byte arrived on
//! an open connection in them (quiet: no byte allowance, since a request on a warm HTTP/2
//! connection can be as small as a PING; docs/decisions.md); released
//! at the cap M (`--hold-max`) whatever arrives. Integers only (milliseconds, counts): no float
//! code in the static binary, no sort.
//!
//! Probes: the kubelet keeps probing during termination (since 1.25), and an httpGet, tcpSocket
//! or grpc probe opens one connection per period. The planner knows the pod's probes and
//! passes their periods (`--probe-every`); a probe every P seconds opens at most
//! `floor(W / P) + 1` connections in any window of W seconds, so that many per probe are
//! allowed in a quiet window. W is the window actually measured: from the latest sample at or
//! before `now - Q` to now, Q plus at most one sampling step. The `+ 1` also absorbs a probe
//! that runs a little early. Learning the probes' source address instead would need the
//! connections themselves (gone by the next read) or privileges; the periods are in the pod
//! spec. The price: up to one connection per probe and window that is real traffic is taken
//! for a probe, which only matters for a trickle slower than one connection per probe period.
//!
//! The helper's own connections do not count: the notify calls are made before the first
//! sample (their accepts are in the baseline), and the pins and the chained hooks come after
//! the hold has ended.
//!
//! A counter that goes down (a wrap, or a network namespace that is not the one read before)
//! counts as no arrival for that step and becomes the new baseline: never a huge number that
//! would hold the pod until the cap.

use std::collections::VecDeque;

/// Why the hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// No more than the probes' connections arrived for the quiet window.
    Quiet,
    /// The cap was reached with traffic still arriving.
    Cap,
}

/// What one sample saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    /// The kernel's count of accepted connections (`Tcp: PassiveOpens`), as read.
    pub passive_opens: u64,
    /// Bytes received since the previous sample on inbound connections open at both.
    pub reused_bytes: u64,
}

/// What to do after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep holding. `arrivals`: new connections counted in the window (the last Q seconds, or
    /// since the first sample while fewer have been observed); `allowance`: how many of them
    /// the probes may have opened; `bytes`: bytes received on open connections in the window.
    Hold {
        arrivals: u64,
        allowance: u64,
        bytes: u64,
    },
    /// End the hold.
    Release(Release),
}

/// The hold's state: the samples of the last quiet window.
#[derive(Debug, Clone)]
pub struct Hold {
    floor_ms: u64,
    quiet_ms: u64,
    cap_ms: u64,
    probe_periods_ms: Vec<u64>,
    /// `(at_ms, arrivals, bytes)` counted since the first sample, oldest first. Once Q has been
    /// observed, the front is the latest sample at or before `now - Q` (the window's baseline).
    samples: VecDeque<(u64, u64, u64)>,
    /// The raw counter at the last sample.
    last_counter: Option<u64>,
    /// Arrivals counted since the first sample (steps where the counter went down add 0).
    total: u64,
    /// Bytes on open connections since the first sample (the first sample's own excluded: they
    /// arrived before the hold began).
    total_bytes: u64,
}

impl Hold {
    /// A hold of at least `floor_s`, until quiet for `quiet_s` (at least 1), at most `cap_s`
    /// (seconds from the hook's start), discounting one probe per entry of `probe_periods`
    /// (seconds, at least 1).
    pub fn new(floor_s: u32, quiet_s: u32, cap_s: u32, probe_periods: &[u32]) -> Hold {
        let ms = |seconds: u32| u64::from(seconds) * 1000;
        Hold {
            floor_ms: ms(floor_s),
            quiet_ms: ms(quiet_s.max(1)),
            cap_ms: ms(cap_s),
            probe_periods_ms: probe_periods.iter().map(|p| ms((*p).max(1))).collect(),
            samples: VecDeque::new(),
            last_counter: None,
            total: 0,
            total_bytes: 0,
        }
    }

    /// How many connections the probes open at most in a window of `window_ms`.
    pub fn allowance(&self, window_ms: u64) -> u64 {
        self.probe_periods_ms
            .iter()
            .map(|period| window_ms / period + 1)
            .fold(0, u64::saturating_add)
    }

    /// Takes a sample: `at_ms` since the hook's start (not decreasing; an earlier time is taken
    /// as the previous one) and what was read then.
    pub fn observe(&mut self, at_ms: u64, sample: Sample) -> Verdict {
        if let Some(last) = self.last_counter {
            // A counter that went down adds nothing; it is the baseline from now on.
            self.total += sample.passive_opens.saturating_sub(last);
            self.total_bytes = self.total_bytes.saturating_add(sample.reused_bytes);
        }
        self.last_counter = Some(sample.passive_opens);
        let at = self
            .samples
            .back()
            .map_or(at_ms, |&(last, _, _)| at_ms.max(last));
        self.samples.push_back((at, self.total, self.total_bytes));

        // Keep one sample at or before the window's start: the baseline.
        let edge = at.checked_sub(self.quiet_ms);
        if let Some(edge) = edge {
            while self.samples.len() >= 2 && self.samples[1].0 <= edge {
                self.samples.pop_front();
            }
        }
        let (base_at, base_total, base_bytes) = self.samples[0];
        let observed_quiet = edge.is_some_and(|edge| base_at <= edge);
        let arrivals = self.total - base_total;
        let bytes = self.total_bytes - base_bytes;
        let allowance = self.allowance(at - base_at);

        if at >= self.floor_ms && observed_quiet && arrivals <= allowance && bytes == 0 {
            Verdict::Release(Release::Quiet)
        } else if at >= self.cap_ms {
            Verdict::Release(Release::Cap)
        } else {
            Verdict::Hold {
                arrivals,
                allowance,
                bytes,
            }
        }
    }

    /// How many samples are kept (bounded by the window over the sampling step, plus one).
    pub fn kept(&self) -> usize {
        self.samples.len()
    }
}

#[cfg(test)]
mod tests;
