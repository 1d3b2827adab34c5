//! What `GET /drains` answers, in one definition for both sides: the leader writes it from its
//! aggregates (`board`), and `audit` and `drain-e2e` read it through the API server's service
//! proxy.

use serde::{Deserialize, Serialize};

use super::drains::RecentRecord;

/// Where the leader serves this answer, on the admin listener (src/server/routes.rs).
pub const DRAINS_PATH: &str = "/drains";

/// The whole answer: the leader's aggregates, or a follower naming the leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DrainsReport {
    pub leader: bool,
    #[serde(default)]
    pub identity: Option<String>,
    #[serde(default)]
    pub holder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default)]
    pub workloads: Vec<WorkloadReport>,
}

/// One workload's drains, as the leader counted them since it became leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    #[serde(default)]
    pub recent: Vec<RecentDrain>,
}

impl WorkloadReport {
    /// As the audit names workloads: `Deployment shop/web`.
    pub fn id(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// One recent drain, with the record's own field names (docs/operations.md, "Drain records").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentDrain {
    /// The pod; a server before 2026-12-06 did not name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    pub role: String,
    pub floor: f64,
    pub end: f64,
    pub why: String,
    pub last_arrival: Option<f64>,
    pub after_floor: u64,
    #[serde(default)]
    pub migrated_at: Option<f64>,
    #[serde(default)]
    pub signal_at: Option<f64>,
    #[serde(default)]
    pub exit: u8,
}

impl From<&RecentRecord> for RecentDrain {
    fn from(kept: &RecentRecord) -> Self {
        let r = &kept.record;
        Self {
            pod: Some(kept.pod.to_string()),
            role: r.role.as_str().to_string(),
            floor: seconds(r.floor_ms),
            end: seconds(r.end_ms),
            why: r.why.as_str().to_string(),
            last_arrival: r.last_arrival_ms.map(seconds),
            after_floor: r.after_floor,
            migrated_at: r.migrated_at_ms.map(seconds),
            signal_at: r.signal_at_ms.map(seconds),
            exit: r.exit,
        }
    }
}

#[allow(clippy::cast_precision_loss)]
pub(super) fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}
