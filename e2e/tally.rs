//! The load's tally: requests, streams and lost ones per mode, path and second, and the
//! summary `results.json` carries (moved out of load.rs, which runs the load).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clients::{Mode, Outcome};
use crate::http::{Failure, Lost};

/// How a stream ended, as the client sees it. Whether an unclean end was SIGKILL at the end of
/// the pod's grace period is decided by the report, which knows when each pod was killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndKind {
    /// The answer ended as it should (last chunk, END_STREAM).
    Clean,
    /// The connection broke (reset, closed inside the answer).
    Reset,
    /// No message for the client's timeout while the connection stayed open.
    Stalled,
}

/// One stream that ended other than cleanly (clean ends are only counted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamEnd {
    pub path: String,
    pub at_unix: f64,
    /// The pod that served it (the app's `x-drain-e2e-pod` header), "" when unknown.
    pub pod: String,
    pub kind: EndKind,
    pub detail: String,
}

/// The counts of one path in one mode. In the request modes a unit is a request; in the
/// stream mode the request fields count the streams opened (a failed open is retried and
/// loses nothing by itself) and `stream` counts messages and how streams ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PathCounts {
    pub requests: u64,
    pub ok: u64,
    pub refused: u64,
    pub reset: u64,
    pub timeout: u64,
    pub http_5xx: u64,
    pub no_backend: u64,
    pub other: u64,
    /// Requests that succeeded only on their one retry (keepalive, h2); not lost.
    #[serde(default)]
    pub retried: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamCounts>,
    /// Per second since the load started: `[second, units, lost units]`, where a unit is a
    /// request (by the second it started) or, in the stream mode, a message received and a
    /// lost unit a message missing or a stream that ended unclean.
    pub series: Vec<[u64; 3]>,
}

/// The stream mode's counts of one path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamCounts {
    pub messages: u64,
    /// Messages never received: gaps in the sequence, across a reconnect or inside a stream.
    pub missing: u64,
    pub clean: u64,
    pub reset: u64,
    pub stalled: u64,
    /// Streams still open when the load stopped.
    pub open_at_stop: u64,
}

impl PathCounts {
    /// What this path lost: failed requests, or, for streams, missing messages plus streams
    /// that ended unclean.
    pub fn lost(&self) -> u64 {
        match &self.stream {
            Some(stream) => stream.missing + stream.reset + stream.stalled,
            None => self.failed(),
        }
    }

    /// Requests (or stream opens) that failed, whatever the mode.
    pub fn failed(&self) -> u64 {
        Failure::ALL.iter().map(|kind| self.of(*kind)).sum()
    }

    pub fn of(&self, kind: Failure) -> u64 {
        match kind {
            Failure::Refused => self.refused,
            Failure::Reset => self.reset,
            Failure::Timeout => self.timeout,
            Failure::Http5xx => self.http_5xx,
            Failure::NoBackend => self.no_backend,
            Failure::Other => self.other,
        }
    }

    fn of_mut(&mut self, kind: Failure) -> &mut u64 {
        match kind {
            Failure::Refused => &mut self.refused,
            Failure::Reset => &mut self.reset,
            Failure::Timeout => &mut self.timeout,
            Failure::Http5xx => &mut self.http_5xx,
            Failure::NoBackend => &mut self.no_backend,
            Failure::Other => &mut self.other,
        }
    }
}

/// One lost request, for the log and the report (the first few only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LostRequest {
    #[serde(default = "default_mode")]
    pub mode: Mode,
    pub path: String,
    pub at_seconds: f64,
    pub kind: Failure,
    pub detail: String,
}

fn default_mode() -> Mode {
    Mode::New
}

/// Counts per mode and path: `modes["keepalive"]["lb"]`.
pub type ModeCounts = BTreeMap<Mode, BTreeMap<String, PathCounts>>;

/// What the load client reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub namespace: String,
    /// Wall clock of the load's start, seconds since 1970 (to place the rollouts on its axis).
    pub started_unix: f64,
    pub seconds: f64,
    pub rate_per_path: u32,
    #[serde(default)]
    pub streams_per_path: u32,
    pub lb_delay_seconds: f64,
    /// EndpointSlice changes the emulated load balancer applied.
    pub lb_changes_applied: u64,
    pub modes: ModeCounts,
    pub first_lost: Vec<LostRequest>,
    /// Streams that ended other than cleanly (the first `KEEP_STREAM_ENDS`).
    #[serde(default)]
    pub stream_ends: Vec<StreamEnd>,
}

/// How many lost requests are kept with their details.
pub const KEEP_LOST: usize = 20;
/// How many unclean stream ends are kept with their details (the report matches each with the
/// pod that served it).
pub const KEEP_STREAM_ENDS: usize = 5000;

/// Units and lost units per second since the start.
type Seconds = BTreeMap<u64, (u64, u64)>;

/// The counting itself: no I/O, so tests drive it with outcomes of their own.
#[derive(Debug, Default)]
pub struct Tally {
    counts: BTreeMap<(Mode, String), (PathCounts, Seconds)>,
    first_lost: Vec<LostRequest>,
    stream_ends: Vec<StreamEnd>,
}

impl Tally {
    /// Makes a mode's path appear in the report even before (or without) its first request.
    pub fn add_path(&mut self, mode: Mode, path: &str) {
        let (counts, _) = self.entry(mode, path);
        if mode == Mode::Stream {
            counts.stream.get_or_insert_with(StreamCounts::default);
        }
    }

    fn entry(&mut self, mode: Mode, path: &str) -> &mut (PathCounts, Seconds) {
        self.counts.entry((mode, path.to_string())).or_default()
    }

    /// A request started `started` after the load began, with its outcome.
    pub fn record(&mut self, mode: Mode, path: &str, started: Duration, outcome: &Outcome) {
        let (counts, series) = self.entry(mode, path);
        let bucket = series.entry(started.as_secs()).or_default();
        counts.requests += 1;
        bucket.0 += 1;
        counts.retried += u64::from(outcome.retried && outcome.result.is_ok());
        match &outcome.result {
            Ok(_) => counts.ok += 1,
            Err(lost) => {
                *counts.of_mut(lost.kind) += 1;
                bucket.1 += 1;
                self.keep_lost(mode, path, started, lost);
            }
        }
    }

    fn keep_lost(&mut self, mode: Mode, path: &str, started: Duration, lost: &Lost) {
        if self.first_lost.len() < KEEP_LOST {
            self.first_lost.push(LostRequest {
                mode,
                path: path.to_string(),
                at_seconds: started.as_secs_f64(),
                kind: lost.kind,
                detail: lost.detail.clone(),
            });
        }
    }

    /// A stream (re)connection attempt and its outcome.
    pub fn stream_opened(&mut self, path: &str, at: Duration, outcome: &Result<u16, Lost>) {
        self.add_path(Mode::Stream, path);
        let (counts, _) = self.entry(Mode::Stream, path);
        counts.requests += 1;
        match outcome {
            Ok(_) => counts.ok += 1,
            Err(lost) => {
                *counts.of_mut(lost.kind) += 1;
                self.keep_lost(Mode::Stream, path, at, lost);
            }
        }
    }

    /// Messages received (and found missing) on a stream of `path`.
    pub fn messages(&mut self, path: &str, at: Duration, received: u64, missing: u64) {
        self.add_path(Mode::Stream, path);
        let (counts, series) = self.entry(Mode::Stream, path);
        let stream = counts.stream.as_mut().expect("added");
        stream.messages += received;
        stream.missing += missing;
        let bucket = series.entry(at.as_secs()).or_default();
        bucket.0 += received;
        bucket.1 += missing;
    }

    pub fn stream_ended(&mut self, at: Duration, end: StreamEnd) {
        self.add_path(Mode::Stream, &end.path);
        let (counts, series) = self.entry(Mode::Stream, &end.path);
        let stream = counts.stream.as_mut().expect("added");
        match end.kind {
            EndKind::Clean => stream.clean += 1,
            EndKind::Reset => stream.reset += 1,
            EndKind::Stalled => stream.stalled += 1,
        }
        if end.kind != EndKind::Clean {
            series.entry(at.as_secs()).or_default().1 += 1;
            if self.stream_ends.len() < KEEP_STREAM_ENDS {
                self.stream_ends.push(end);
            }
        }
    }

    pub fn stream_open_at_stop(&mut self, path: &str) {
        self.add_path(Mode::Stream, path);
        let (counts, _) = self.entry(Mode::Stream, path);
        counts.stream.as_mut().expect("added").open_at_stop += 1;
    }

    /// Per-mode, per-path counts with their per-second series (seconds without requests
    /// included, on one axis for all).
    pub fn modes(&self) -> ModeCounts {
        let last = self
            .counts
            .values()
            .filter_map(|(_, series)| series.keys().next_back().copied())
            .max();
        let mut out = ModeCounts::new();
        for ((mode, path), (counts, series)) in &self.counts {
            let mut counts = counts.clone();
            counts.series = match last {
                Some(last) => (0..=last)
                    .map(|second| {
                        let (units, lost) = series.get(&second).copied().unwrap_or_default();
                        [second, units, lost]
                    })
                    .collect(),
                None => Vec::new(),
            };
            out.entry(*mode).or_default().insert(path.clone(), counts);
        }
        out
    }

    pub fn first_lost(&self) -> &[LostRequest] {
        &self.first_lost
    }

    pub fn stream_ends(&self) -> &[StreamEnd] {
        &self.stream_ends
    }
}

pub type SharedTally = Arc<Mutex<Tally>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Outcome {
        Outcome::first_try(Ok(200))
    }

    fn lost(kind: Failure) -> Outcome {
        Outcome::first_try(Err(Lost {
            kind,
            detail: format!("{kind:?}"),
        }))
    }

    #[test]
    fn counts_per_mode_path_kind_and_second() {
        let mut tally = Tally::default();
        tally.add_path(Mode::New, "lb");
        let ms = Duration::from_millis;
        let new = Mode::New;
        tally.record(new, "service", ms(100), &ok());
        tally.record(new, "service", ms(900), &lost(Failure::Refused));
        tally.record(new, "service", ms(2500), &lost(Failure::Http5xx));
        tally.record(new, "service", ms(2600), &lost(Failure::Reset));
        tally.record(new, "service", ms(2700), &lost(Failure::Timeout));
        tally.record(new, "service", ms(2800), &ok());
        let retried = Outcome {
            result: Ok(200),
            retried: true,
        };
        tally.record(Mode::Keepalive, "service", ms(2900), &retried);
        let modes = tally.modes();
        let service = &modes[&new]["service"];
        assert_eq!((service.requests, service.ok, service.lost()), (6, 2, 4));
        assert_eq!(
            (
                service.refused,
                service.reset,
                service.timeout,
                service.http_5xx
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(service.series, vec![[0, 2, 1], [1, 0, 0], [2, 4, 3]]);
        // A path without requests has zeros on the same axis.
        assert_eq!(modes[&new]["lb"].requests, 0);
        assert_eq!(
            modes[&new]["lb"].series,
            vec![[0, 0, 0], [1, 0, 0], [2, 0, 0]]
        );
        // Another mode is counted apart; a retried success is not lost.
        let keepalive = &modes[&Mode::Keepalive]["service"];
        assert_eq!(
            (keepalive.requests, keepalive.retried, keepalive.lost()),
            (1, 1, 0)
        );
        assert_eq!(tally.first_lost().len(), 4);
        assert_eq!(tally.first_lost()[0].kind, Failure::Refused);
        assert_eq!(tally.first_lost()[0].at_seconds, 0.9);
    }

    #[test]
    fn streams_count_messages_missing_and_unclean_ends() {
        let mut tally = Tally::default();
        let s = Duration::from_secs;
        tally.stream_opened("lb", s(0), &Ok(200));
        tally.messages("lb", s(0), 10, 0);
        let end = |kind| StreamEnd {
            path: "lb".into(),
            at_unix: 1.0,
            pod: "demo-1".into(),
            kind,
            detail: String::new(),
        };
        tally.stream_ended(s(1), end(EndKind::Clean));
        tally.stream_opened(
            "lb",
            s(1),
            &Err(Lost {
                kind: Failure::Refused,
                detail: "refused".into(),
            }),
        );
        tally.stream_opened("lb", s(1), &Ok(200));
        tally.messages("lb", s(2), 7, 3);
        tally.stream_ended(s(2), end(EndKind::Reset));
        tally.stream_open_at_stop("lb");
        let lb = &tally.modes()[&Mode::Stream]["lb"];
        let stream = lb.stream.as_ref().unwrap();
        assert_eq!((lb.requests, lb.ok, lb.refused), (3, 2, 1));
        assert_eq!(
            (
                stream.messages,
                stream.missing,
                stream.clean,
                stream.reset,
                stream.open_at_stop
            ),
            (17, 3, 1, 1, 1)
        );
        // Lost: 3 messages and one unclean end; the refused reconnect lost nothing by itself.
        assert_eq!(lb.lost(), 4);
        assert_eq!(lb.series, vec![[0, 10, 0], [1, 0, 0], [2, 7, 4]]);
        assert_eq!(tally.stream_ends().len(), 1);
    }

    #[test]
    fn keeps_only_the_first_lost_details() {
        let mut tally = Tally::default();
        for i in 0..(KEEP_LOST as u64 + 5) {
            tally.record(
                Mode::New,
                "lb",
                Duration::from_secs(i),
                &lost(Failure::NoBackend),
            );
        }
        assert_eq!(tally.first_lost().len(), KEEP_LOST);
        assert_eq!(
            tally.modes()[&Mode::New]["lb"].no_backend,
            KEEP_LOST as u64 + 5
        );
    }
}
