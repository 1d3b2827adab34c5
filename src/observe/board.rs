//! What `GET /drains` shows: the leader's aggregates, or who leads. Shared between the
//! observer task (which writes it per event) and the admin server (which reads it).

use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

use super::drains::{Drains, Limits, RecentRecord};

#[derive(Debug, Default)]
pub struct Board(Mutex<BoardState>);

#[derive(Debug, Default)]
pub struct BoardState {
    /// `None`: the observer is not running in this process (`--observe=false`, no cluster).
    pub identity: Option<String>,
    /// The aggregates, while this replica leads.
    pub drains: Option<Drains>,
    /// Who leads, as far as this follower knows.
    pub holder: Option<String>,
}

impl Board {
    pub fn lock(&self) -> MutexGuard<'_, BoardState> {
        // A panic while holding the lock leaves plain data: keep using it.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn started(&self, identity: &str) {
        self.lock().identity = Some(identity.to_string());
    }

    pub fn leading(&self, limits: Limits) {
        let mut state = self.lock();
        state.drains = Some(Drains::new(limits));
        state.holder = state.identity.clone();
    }

    pub fn following(&self, holder: Option<String>) {
        let mut state = self.lock();
        state.drains = None;
        state.holder = holder;
    }

    /// The JSON `GET /drains` answers.
    pub fn report(&self) -> DrainsReport {
        let state = self.lock();
        let Some(drains) = &state.drains else {
            let message = match (&state.identity, &state.holder) {
                (None, _) => "the drain observer is off in this process (serve --observe=false, or no cluster access)".to_string(),
                (Some(_), Some(holder)) => format!("this replica does not observe drains: the leader is {holder} (the observer's Lease holderIdentity); ask it"),
                (Some(_), None) => "this replica does not observe drains and no leader holds the observer's Lease yet".to_string(),
            };
            return DrainsReport {
                leader: false,
                identity: state.identity.clone(),
                holder: state.holder.clone(),
                message: Some(message),
                workloads: Vec::new(),
            };
        };
        let workloads = drains
            .workloads()
            .into_iter()
            .map(|(workload, kept)| {
                let mut lags: Vec<u64> = kept
                    .recent
                    .iter()
                    .filter_map(|r| r.record.last_arrival_ms)
                    .collect();
                lags.sort_unstable();
                WorkloadReport {
                    namespace: workload.namespace.clone(),
                    kind: workload.kind.clone(),
                    name: workload.name.clone(),
                    drains: kept.drains,
                    cap_hits: kept.cap_hits,
                    lag_median_seconds: lags.get(lags.len() / 2).map(|ms| seconds(*ms)),
                    lag_max_seconds: lags.last().map(|ms| seconds(*ms)),
                    recent: kept.recent.iter().map(RecentDrain::from).collect(),
                }
            })
            .collect();
        DrainsReport {
            leader: true,
            identity: state.identity.clone(),
            holder: state.holder.clone(),
            message: None,
            workloads,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrainsReport {
    pub leader: bool,
    pub identity: Option<String>,
    pub holder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub workloads: Vec<WorkloadReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReport {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    /// Drains counted since this replica became leader (the recent ones are the last 32).
    pub drains: u64,
    pub cap_hits: u64,
    /// Over the recent drains that saw an arrival after deletion.
    pub lag_median_seconds: Option<f64>,
    pub lag_max_seconds: Option<f64>,
    pub recent: Vec<RecentDrain>,
}

/// One recent drain, with the record's own field names.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentDrain {
    pub pod: String,
    pub role: &'static str,
    pub floor: f64,
    pub end: f64,
    pub why: &'static str,
    pub last_arrival: Option<f64>,
    pub after_floor: u64,
    pub migrated_at: Option<f64>,
    pub signal_at: Option<f64>,
    pub exit: u8,
}

impl From<&RecentRecord> for RecentDrain {
    fn from(kept: &RecentRecord) -> Self {
        let r = &kept.record;
        Self {
            pod: kept.pod.to_string(),
            role: r.role.as_str(),
            floor: seconds(r.floor_ms),
            end: seconds(r.end_ms),
            why: r.why.as_str(),
            last_arrival: r.last_arrival_ms.map(seconds),
            after_floor: r.after_floor,
            migrated_at: r.migrated_at_ms.map(seconds),
            signal_at: r.signal_at_ms.map(seconds),
            exit: r.exit,
        }
    }
}

#[allow(clippy::cast_precision_loss)]
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}
