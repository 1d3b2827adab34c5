//! The drain record: the one JSON line drain-helper appends to the container's termination
//! message at the end of each preStop hook, and the webhook's observer reads back from
//! `status.containerStatuses[].state.terminated.message` (docs/operations.md, "Drain records").
//!
//! This file is the contract of both sides. Writing ([`DrainRecord::to_line`]) needs std
//! only, so the helper (built without the `webhook` feature) formats the line with the same
//! field names; reading ([`parse_message`]) needs serde and is behind `webhook`.
//!
//! ```text
//! {"v":1,"role":"app","floor":15.000,"end":21.480,"why":"quiet","lastArrival":18.402,"afterFloor":7,"migratedAt":null,"signalAt":21.480,"exit":0}
//! ```
//!
//! Times are seconds after the hook started (the pod's deletion, as the kubelet runs preStop
//! at once), with millisecond precision. The line is flat and short (at most
//! [`MAX_RECORD_BYTES`]): the kubelet keeps only the last 4096 bytes of the file
//! (`kubecontainer.MaxContainerTerminationMessageLength`, read with `tail.ReadAtMost` in
//! kuberuntime_container.go), so a record appended after the user's own text survives.

use std::fmt::Write as _;

/// `v` of the records this version writes and reads.
pub const VERSION: u64 = 1;
/// The kubelet's limit for one container's termination message (bytes, the file's tail).
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// The longest record line this version writes (the longest possible is about 200 bytes).
pub const MAX_RECORD_BYTES: usize = 256;
/// Larger times are refused as malformed: no hold outlives a day-long grace period.
pub const MAX_SECONDS_MILLIS: u64 = 86_400_000;
/// A record line starts with this, so user text is never mistaken for one.
pub const LINE_PREFIX: &str = "{\"v\":";

/// Which planned container the hook ran in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordRole {
    Proxy,
    App,
}

impl RecordRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordRole::Proxy => "proxy",
            RecordRole::App => "app",
        }
    }

    /// The role [`RecordRole::as_str`] writes as `text`: what `--role` and a record's `role`
    /// read.
    pub fn parse(text: &str) -> Option<RecordRole> {
        [RecordRole::Proxy, RecordRole::App]
            .into_iter()
            .find(|role| role.as_str() == text)
    }
}

/// Why the hold ended (`why`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// No connection and no request for the quiet window Q after the floor.
    Quiet,
    /// The cap M was reached while traffic still arrived.
    Cap,
    /// A fixed hold of D (no adaptive hold planned, or it could not measure).
    Fixed,
    /// A front proxy held until the app stopped listening (`--follow`).
    Follow,
}

impl EndReason {
    pub const ALL: [EndReason; 4] = [
        EndReason::Quiet,
        EndReason::Cap,
        EndReason::Fixed,
        EndReason::Follow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Quiet => "quiet",
            EndReason::Cap => "cap",
            EndReason::Fixed => "fixed",
            EndReason::Follow => "follow",
        }
    }
}

/// One hook's drain, as recorded. Times in milliseconds after the hook started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainRecord {
    pub role: RecordRole,
    /// `floor`: D, until which traffic may arrive.
    pub floor_ms: u64,
    /// `end`: when the hold ended.
    pub end_ms: u64,
    /// `why`.
    pub why: EndReason,
    /// `lastArrival`: the last inbound connection or request after deletion; `null`: none.
    pub last_arrival_ms: Option<u64>,
    /// `afterFloor`: connections and requests seen after the floor.
    pub after_floor: u64,
    /// `migratedAt`: when pinned clients were moved off; `null`: no migration.
    pub migrated_at_ms: Option<u64>,
    /// `signalAt`: when the stop signal went; `null`: the kubelet sends it after the hook.
    pub signal_at_ms: Option<u64>,
    /// `exit`: the hook's exit status.
    pub exit: u8,
}

impl DrainRecord {
    /// The record as one line, newline included. Numbers are seconds with three decimals.
    pub fn to_line(&self) -> String {
        fn seconds(out: &mut String, ms: u64) {
            let _ = write!(out, "{}.{:03}", ms / 1000, ms % 1000);
        }
        fn optional(out: &mut String, ms: Option<u64>) {
            match ms {
                Some(ms) => seconds(out, ms),
                None => out.push_str("null"),
            }
        }
        let mut out = String::with_capacity(MAX_RECORD_BYTES);
        let _ = write!(
            out,
            "{LINE_PREFIX}{VERSION},\"role\":\"{}\"",
            self.role.as_str()
        );
        out.push_str(",\"floor\":");
        seconds(&mut out, self.floor_ms);
        out.push_str(",\"end\":");
        seconds(&mut out, self.end_ms);
        let _ = write!(out, ",\"why\":\"{}\",\"lastArrival\":", self.why.as_str());
        optional(&mut out, self.last_arrival_ms);
        let _ = write!(out, ",\"afterFloor\":{},\"migratedAt\":", self.after_floor);
        optional(&mut out, self.migrated_at_ms);
        out.push_str(",\"signalAt\":");
        optional(&mut out, self.signal_at_ms);
        let _ = writeln!(out, ",\"exit\":{}}}", self.exit);
        out
    }

    /// Traffic still arrived when the hold hit its cap: the load balancer outlasted M.
    pub fn capped_with_traffic(&self) -> bool {
        self.why == EndReason::Cap && self.after_floor > 0
    }
}

#[cfg(feature = "webhook")]
mod read;
#[cfg(feature = "webhook")]
pub use read::{RecordError, parse_message};

#[cfg(all(test, feature = "webhook"))]
mod tests;
