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
//! fixed delay); released as soon as, at or after D, at least Q seconds have been observed,
//! every new connection in the last Q seconds (and, with probes, in the look-back: the longest
//! probe period plus its tolerance, when that is longer than Q) was excused by a probe's token,
//! and no byte arrived on an open connection in the last Q seconds (quiet: no byte allowance,
//! since a request on a warm HTTP/2 connection can be as small as a PING;
//! docs/decisions.md); released at the cap M (`--hold-max`) whatever arrives. Integers only
//! (milliseconds, counts): no float code in the static binary, no sort.
//!
//! Probes: the kubelet keeps probing during termination (since 1.25), and an httpGet, tcpSocket
//! or grpc probe opens one connection per period. The planner knows the pod's probes and
//! passes their periods (`--probe-every`, one entry per probe; a probe a front proxy forwards
//! to the app is two connections, so it is listed twice). Each entry excuses connections on
//! its probe's own schedule: token k of an entry of period P is usable from `k P - J` to
//! `(k + 1) P + J` after the hook's start (J, the tolerance, is half the period, at most one
//! second: the probe's own jitter and the sampling step), tokens are used in order, and a new
//! connection is excused only by an unused, usable token (the one that expires first, which
//! matches as many connections to tokens as any choice could). So an entry excuses at most one
//! connection per period over the hold (`floor((T + J) / P) + 1` in its first T seconds,
//! `floor((T + 2 J) / P) + 1` in any T seconds of it), however the windows slide. The
//! window-by-window allowance `floor(W / P) + 1` this replaces excused a 10 s probe's
//! connection in every window of 3 s, and with it a request every 3 s.
//!
//! Why the look-back: counts alone cannot tell which connection was the probe's, so a request
//! may take a token and the probe's own connection then be the one not excused. Slow traffic
//! (a request every 2 s beside two 10 s probes) leaves such a connection in every period, but
//! not in every window of Q: looking back one period plus J keeps the pod held while it lasts.
//! The price is time only: after traffic that took the probes' tokens, the hold ends up to two
//! periods plus tolerances after it (not Q); without traffic, probes on their schedule are
//! always excused and the pod is released at the later of D and Q. In a probe's first period
//! its token is usable at any time (its phase is not known yet): with D at least the period
//! (10 s both by default) traffic has spent it by D. Learning the probes' source address
//! instead would need the connections themselves (gone by the next read) or privileges; the
//! periods are in the pod spec.
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
    /// since the first sample while fewer have been observed); `excused`: how many of them
    /// were taken for the probes' (on their schedules); `bytes`: bytes received on open
    /// connections in the window; `migrate`: ask the front proxy now to move its existing
    /// connections off (true once, at the first sample at or after the floor that still holds
    /// because traffic arrives, when the hold was made `with_migration`).
    Hold {
        arrivals: u64,
        excused: u64,
        bytes: u64,
        migrate: bool,
    },
    /// End the hold.
    Release(Release),
}

/// The hold's state: the probes' tokens and the samples of the look-back (at least the quiet
/// window).
#[derive(Debug, Clone)]
pub struct Hold {
    floor_ms: u64,
    quiet_ms: u64,
    /// How far back a connection the probes' tokens did not excuse still holds: Q, or with
    /// probes the longest period plus its tolerance if that is longer.
    lookback_ms: u64,
    cap_ms: u64,
    probes: Vec<ProbeTokens>,
    /// `(at_ms, arrivals, excused, bytes)` counted since the first sample, oldest first. Once
    /// the look-back has been observed, the front is the latest sample at or before
    /// `now - look-back`.
    samples: VecDeque<(u64, u64, u64, u64)>,
    /// The raw counter at the last sample.
    last_counter: Option<u64>,
    /// Arrivals counted since the first sample (steps where the counter went down add 0).
    total: u64,
    /// How many of them the probes' tokens excused.
    total_excused: u64,
    /// Bytes on open connections since the first sample (the first sample's own excluded: they
    /// arrived before the hold began).
    total_bytes: u64,
    migration: Migration,
    /// The latest sample that saw traffic: a new connection no probe's token excused, or bytes
    /// on an open connection (the drain record's `lastArrival`).
    last_arrival_ms: Option<u64>,
    /// Traffic seen by the samples after the floor: new connections no probe's token excused,
    /// plus one for each sample that saw bytes on open connections (the drain record's
    /// `afterFloor`: a sampling period with requests counts once, whatever their number).
    after_floor: u64,
}

/// The migration at the floor: not asked for, still to come, or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Migration {
    Off,
    Pending,
    Done,
}

impl Hold {
    /// A hold of at least `floor_s`, until quiet for `quiet_s` (at least 1), at most `cap_s`
    /// (seconds from the hook's start), discounting one probe per entry of `probe_periods`
    /// (seconds, at least 1).
    pub fn new(floor_s: u32, quiet_s: u32, cap_s: u32, probe_periods: &[u32]) -> Hold {
        let ms = |seconds: u32| u64::from(seconds) * 1000;
        let probes: Vec<ProbeTokens> = probe_periods
            .iter()
            .map(|p| ProbeTokens::new(ms((*p).max(1))))
            .collect();
        let quiet_ms = ms(quiet_s.max(1));
        let lookback_ms = probes
            .iter()
            .map(|probe| probe.period_ms + probe.tolerance_ms)
            .fold(quiet_ms, u64::max);
        Hold {
            floor_ms: ms(floor_s),
            quiet_ms,
            lookback_ms,
            cap_ms: ms(cap_s),
            probes,
            samples: VecDeque::new(),
            last_counter: None,
            total: 0,
            total_excused: 0,
            total_bytes: 0,
            migration: Migration::Off,
            last_arrival_ms: None,
            after_floor: 0,
        }
    }

    /// The same hold, migrating once at the floor when traffic still holds it there, or at
    /// the first sample after it where traffic does (`--migrate`).
    /// The migration shortens nothing: it comes only when the floor is reached and the hold
    /// would go on anyway, and the counting after it is the same (a client that reconnects
    /// here is a new connection).
    pub fn with_migration(mut self) -> Hold {
        self.migration = Migration::Pending;
        self
    }

    /// Takes `arrivals` new connections seen at `at_ms` for probes, as far as the probes'
    /// tokens go: each time the usable token that expires first. Returns how many.
    fn excuse(&mut self, at_ms: u64, arrivals: u64) -> u64 {
        let mut excused = 0;
        while excused < arrivals {
            let mut first: Option<(usize, u64)> = None;
            for (index, probe) in self.probes.iter_mut().enumerate() {
                if let Some(expires) = probe.usable(at_ms)
                    && first.is_none_or(|(_, earliest)| expires < earliest)
                {
                    first = Some((index, expires));
                }
            }
            let Some((index, _)) = first else { break };
            self.probes[index].next += 1;
            excused += 1;
        }
        excused
    }

    /// Takes a sample: `at_ms` since the hook's start (not decreasing; an earlier time is taken
    /// as the previous one) and what was read then.
    pub fn observe(&mut self, at_ms: u64, sample: Sample) -> Verdict {
        let at = self
            .samples
            .back()
            .map_or(at_ms, |&(last, ..)| at_ms.max(last));
        if let Some(last) = self.last_counter {
            // A counter that went down adds nothing; it is the baseline from now on.
            let arrivals = sample.passive_opens.saturating_sub(last);
            let excused = self.excuse(at, arrivals);
            self.total += arrivals;
            self.total_excused += excused;
            self.total_bytes = self.total_bytes.saturating_add(sample.reused_bytes);
            let requests = u64::from(sample.reused_bytes > 0);
            if arrivals > excused || requests > 0 {
                self.last_arrival_ms = Some(at);
            }
            // What this sample saw arrived after the previous one: after the floor only if
            // this sample is later than it.
            if at > self.floor_ms {
                self.after_floor = self
                    .after_floor
                    .saturating_add(arrivals - excused)
                    .saturating_add(requests);
            }
        }
        self.last_counter = Some(sample.passive_opens);
        self.samples
            .push_back((at, self.total, self.total_excused, self.total_bytes));

        // Keep one sample at or before the look-back's start: the oldest baseline needed.
        if let Some(edge) = at.checked_sub(self.lookback_ms) {
            while self.samples.len() >= 2 && self.samples[1].0 <= edge {
                self.samples.pop_front();
            }
        }
        // The quiet window's baseline: the latest sample at or before `at - Q` (else the first).
        let edge = at.checked_sub(self.quiet_ms);
        let base = edge.map_or(0, |edge| {
            self.samples
                .partition_point(|&(sample_at, ..)| sample_at <= edge)
                .saturating_sub(1)
        });
        let (base_at, base_total, base_excused, base_bytes) = self.samples[base];
        let observed_quiet = edge.is_some_and(|edge| base_at <= edge);
        let arrivals = self.total - base_total;
        let excused = self.total_excused - base_excused;
        let bytes = self.total_bytes - base_bytes;
        // No connection the probes' tokens could not excuse in the whole look-back either.
        let (_, oldest_total, oldest_excused, _) = self.samples[0];
        let unexcused_in_lookback =
            (self.total - oldest_total) - (self.total_excused - oldest_excused);

        if at >= self.floor_ms
            && observed_quiet
            && arrivals <= excused
            && bytes == 0
            && unexcused_in_lookback == 0
        {
            Verdict::Release(Release::Quiet)
        } else if at >= self.cap_ms {
            Verdict::Release(Release::Cap)
        } else {
            // Only traffic makes a migration worth it: a hold that goes on past D because Q
            // has not been observed yet (D below Q, or the first sample a little late) with
            // nothing arriving waits for it without touching the proxy.
            let busy = arrivals > excused || bytes > 0 || unexcused_in_lookback > 0;
            let migrate = self.migration == Migration::Pending && at >= self.floor_ms && busy;
            if migrate {
                self.migration = Migration::Done;
            }
            Verdict::Hold {
                arrivals,
                excused,
                bytes,
                migrate,
            }
        }
    }

    /// How far back a connection no probe's token excused still holds (ms): Q, or the longest
    /// probe period plus its tolerance.
    pub fn lookback_ms(&self) -> u64 {
        self.lookback_ms
    }

    /// When the latest sample that saw traffic was taken (ms from the hook's start): the
    /// traffic arrived in the sampling period before it. `None`: none since the first sample.
    pub fn last_arrival_ms(&self) -> Option<u64> {
        self.last_arrival_ms
    }

    /// New connections (beyond the probes') and sampling periods with requests on open
    /// connections, after the floor.
    pub fn after_floor(&self) -> u64 {
        self.after_floor
    }

    /// How many samples are kept (bounded by the look-back over the sampling step, plus one).
    pub fn kept(&self) -> usize {
        self.samples.len()
    }
}

/// One listed probe's tokens: token k is usable from `k P - J` to `(k + 1) P + J` (ms from
/// the hook's start), one connection each, in order.
#[derive(Debug, Clone)]
struct ProbeTokens {
    period_ms: u64,
    /// J: half the period, at most a second. A probe's connections come a period apart give
    /// or take the kubelet's timing and the sampling step; J absorbs that much, and tokens
    /// stay one per period whatever J is.
    tolerance_ms: u64,
    /// The first token not used yet.
    next: u64,
}

impl ProbeTokens {
    fn new(period_ms: u64) -> ProbeTokens {
        ProbeTokens {
            period_ms,
            tolerance_ms: (period_ms / 2).min(1_000),
            next: 0,
        }
    }

    /// When the next usable token at `at_ms` expires, if there is one. Tokens that expired
    /// unused are dropped (a probe that did not connect leaves nothing to spend later).
    fn usable(&mut self, at_ms: u64) -> Option<u64> {
        let (period, tolerance) = (self.period_ms, self.tolerance_ms);
        // The first token with (k + 1) P + J > at.
        self.next = self.next.max(at_ms.saturating_sub(tolerance) / period);
        let from = self.next.saturating_mul(period);
        (from <= at_ms.saturating_add(tolerance))
            .then(|| from.saturating_add(period).saturating_add(tolerance))
    }
}

#[cfg(test)]
mod tests;
