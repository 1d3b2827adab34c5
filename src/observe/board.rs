//! What `GET /drains` shows: the leader's aggregates, or who leads. Shared between the
//! observer task (which writes it per event) and the admin server (which reads it).

use std::sync::{Mutex, MutexGuard};

use super::drains::{Drains, Limits};
use super::report::{DrainsReport, RecentDrain, WorkloadReport, seconds};

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
