//! The drain observer (issue 28): one replica at a time (a `coordination.k8s.io` Lease,
//! `lease`) watches the pods admission labelled `drain.io/planned=true` and reads each
//! container's drain record (`crate::drain_record`) once, into bounded aggregates per workload
//! (`drains`), Prometheus series (`metrics`) and Warning Events (`run`); `GET /drains` on the
//! admin port shows the aggregates (`board`, `admin`). A second watch reports pods of
//! opted-in namespaces created without a plan (`unplanned`). It keeps no copy of pods: each
//! watch event is read and dropped.

pub mod board;
pub mod drains;
pub mod lease;
pub mod metrics;
pub mod report;
pub mod run;
pub mod unplanned;
pub mod workload;

pub use board::Board;
pub use drains::{Drains, Limits, Outcome, Window};
pub use lease::{LeaseConfig, LeaseLock, Role};
pub use run::{ObserverConfig, run};

/// What the observer writes and the admin server reads: its series and its aggregates. The
/// server registers the series in the process's one registry ([`Observed::register`]), so
/// `crate::metrics` knows nothing of the observer.
#[derive(Debug, Default)]
pub struct Observed {
    pub series: metrics::ObserveMetrics,
    pub board: Board,
}

impl Observed {
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        self.series.register(registry);
    }
}
