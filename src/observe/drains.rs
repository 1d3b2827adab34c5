//! The observer's state, pure: which records were read (by pod UID and container), the
//! bounded aggregates per workload, and what each pod event adds. No network, no clock of its
//! own (the caller passes `now`), so tests and the memory benchmark drive it directly.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::workload::Workload;
use crate::drain_record::{DrainRecord, parse_message};

/// The bounds of the state: its memory does not grow with the pods of the cluster.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Workloads kept; the least recently drained one is evicted for a new one.
    pub workloads: usize,
    /// Drains kept per workload (the last N).
    pub recent: usize,
    /// Record keys (pod UID + container) remembered, so a re-list does not count twice.
    pub seen: usize,
    /// Records waiting for the Lease to be renewed past their time ([`Window`]).
    pub pending: usize,
    /// At most one cap Warning per workload this often.
    pub warn_every: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            workloads: 1024,
            recent: 32,
            seen: 65_536,
            pending: 4096,
            warn_every: Duration::from_secs(600),
        }
    }
}

/// Which records this leader counts, by the time their container finished: those after the
/// previous holder's last renewal (it counted up to there), and up to this leader's own last
/// renewal (a successor counts after it). Two leaders' windows never overlap, so a handover
/// counts nothing twice (docs/decisions.md, "The observer's Lease").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub after: Option<Timestamp>,
    pub through: Timestamp,
}

/// What one event produced, for the metrics and Events.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Counted {
        workload: Workload,
        record: DrainRecord,
        /// The hold hit its cap with traffic still arriving, and this workload was not warned
        /// about it within `warn_every`.
        warn: bool,
    },
    Malformed(&'static str),
}

/// One workload's drains.
#[derive(Debug, Clone)]
pub struct WorkloadDrains {
    pub drains: u64,
    pub cap_hits: u64,
    pub recent: VecDeque<RecentRecord>,
    touched: u64,
    warned: Option<Instant>,
}

/// A kept record, with the pod it came from (the proof pairs them with its holds by name).
#[derive(Debug, Clone)]
pub struct RecentRecord {
    pub pod: Box<str>,
    pub record: DrainRecord,
}

#[derive(Debug)]
struct Pending {
    finished: Timestamp,
    workload: Workload,
    pod: Box<str>,
    record: DrainRecord,
}

/// The leader's state.
#[derive(Debug)]
pub struct Drains {
    limits: Limits,
    seen: SeenKeys,
    pending: VecDeque<Pending>,
    workloads: HashMap<Workload, WorkloadDrains>,
    tick: u64,
}

impl Drains {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            seen: SeenKeys::new(limits.seen),
            pending: VecDeque::new(),
            workloads: HashMap::new(),
            tick: 0,
        }
    }

    /// A pod from the watch (added, modified, deleted or re-listed): every container that
    /// terminated with a record not read before.
    pub fn observe_pod(&mut self, pod: &Pod, window: &Window, now: Instant) -> Vec<Outcome> {
        let mut out = Vec::new();
        let Some(uid) = pod.metadata.uid.as_deref() else {
            return out;
        };
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        for status in statuses.into_iter().flatten() {
            let Some(terminated) = status.state.as_ref().and_then(|s| s.terminated.as_ref()) else {
                continue;
            };
            let Some(message) = terminated.message.as_deref() else {
                continue;
            };
            if !self.seen.insert(key(uid, &status.name)) {
                continue;
            }
            let record = match parse_message(message) {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(err) => {
                    out.push(Outcome::Malformed(err.reason()));
                    continue;
                }
            };
            let Some(workload) = Workload::of(pod) else {
                continue;
            };
            // No finishedAt (never from a kubelet): counted as of now.
            let finished = terminated
                .finished_at
                .as_ref()
                .map_or(window.through, |t| t.0);
            if window.after.is_some_and(|after| finished <= after) {
                continue;
            }
            if finished > window.through {
                if self.pending.len() >= self.limits.pending {
                    self.pending.pop_front();
                }
                self.pending.push_back(Pending {
                    finished,
                    workload,
                    pod: pod_name(pod),
                    record,
                });
                continue;
            }
            out.push(self.count(workload, pod_name(pod), record, now));
        }
        out
    }

    /// The window moved (the Lease was renewed): the waiting records it now covers.
    pub fn release(&mut self, window: &Window, now: Instant) -> Vec<Outcome> {
        let (ready, waiting): (Vec<Pending>, Vec<Pending>) = self
            .pending
            .drain(..)
            .partition(|p| p.finished <= window.through);
        self.pending = waiting.into();
        ready
            .into_iter()
            .map(|p| self.count(p.workload, p.pod, p.record, now))
            .collect()
    }

    fn count(
        &mut self,
        workload: Workload,
        pod: Box<str>,
        record: DrainRecord,
        now: Instant,
    ) -> Outcome {
        self.tick += 1;
        if !self.workloads.contains_key(&workload) && self.workloads.len() >= self.limits.workloads
        {
            let oldest = self
                .workloads
                .iter()
                .min_by_key(|(_, drains)| drains.touched)
                .map(|(workload, _)| workload.clone());
            if let Some(oldest) = oldest {
                self.workloads.remove(&oldest);
            }
        }
        let entry = self
            .workloads
            .entry(workload.clone())
            .or_insert_with(|| WorkloadDrains {
                drains: 0,
                cap_hits: 0,
                recent: VecDeque::new(),
                touched: 0,
                warned: None,
            });
        entry.drains += 1;
        entry.touched = self.tick;
        if entry.recent.len() >= self.limits.recent {
            entry.recent.pop_front();
        }
        entry.recent.push_back(RecentRecord { pod, record });
        let mut warn = false;
        if record.capped_with_traffic() {
            entry.cap_hits += 1;
            warn = entry
                .warned
                .is_none_or(|at| now.duration_since(at) >= self.limits.warn_every);
            if warn {
                entry.warned = Some(now);
            }
        }
        Outcome::Counted {
            workload,
            record,
            warn,
        }
    }

    /// The workloads, sorted by namespace, kind and name.
    pub fn workloads(&self) -> Vec<(&Workload, &WorkloadDrains)> {
        let mut all: Vec<_> = self.workloads.iter().collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Entries held, for the memory bound: workloads, drains kept, keys remembered, pending.
    pub fn size(&self) -> (usize, usize, usize, usize) {
        let drains = self.workloads.values().map(|w| w.recent.len()).sum();
        (
            self.workloads.len(),
            drains,
            self.seen.len(),
            self.pending.len(),
        )
    }
}

/// A record's identity: its pod's UID and container, hashed to 8 bytes (SipHash with fixed
/// keys: UIDs are the API server's, not an attacker's choice).
pub(super) fn key(uid: &str, container: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    (uid, container).hash(&mut hasher);
    hasher.finish()
}

fn pod_name(pod: &Pod) -> Box<str> {
    pod.metadata.name.as_deref().unwrap_or_default().into()
}

/// The keys of recently read records, at most `capacity`: two generations, the older dropped
/// whole when the newer is full (a record's pod is deleted seconds after it is written, so a
/// re-list only brings back recent ones).
#[derive(Debug)]
pub(super) struct SeenKeys {
    current: HashSet<u64>,
    previous: HashSet<u64>,
    half: usize,
}

impl SeenKeys {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            current: HashSet::new(),
            previous: HashSet::new(),
            half: (capacity / 2).max(1),
        }
    }

    /// False when the key was already there.
    pub(super) fn insert(&mut self, key: u64) -> bool {
        if self.current.contains(&key) || self.previous.contains(&key) {
            return false;
        }
        if self.current.len() >= self.half {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key)
    }

    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
#[path = "drains_tests.rs"]
mod tests;
