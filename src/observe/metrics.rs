//! The observer's series, registered in the process's one registry (`crate::metrics`) by the
//! server, through [`super::Observed::register`].
//!
//! `namespace` is the one label taken from the cluster: bounded by the namespaces that run
//! planned pods, which an operator wants to tell apart. Workload names never become labels
//! (`GET /drains` has them).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::drain_record::{DrainRecord, RecordError};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DrainLabels {
    namespace: String,
    /// The record's `why`: quiet, cap, fixed or follow.
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabels {
    namespace: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Counters and histograms of the drains the leader read.
#[derive(Debug, Clone)]
pub struct ObserveMetrics {
    drains: Family<DrainLabels, Counter>,
    cap_hits: Family<NamespaceLabels, Counter>,
    lag: Family<NamespaceLabels, Histogram, fn() -> Histogram>,
    hold: Family<NamespaceLabels, Histogram, fn() -> Histogram>,
    malformed: Family<ReasonLabels, Counter>,
    unplanned: Family<NamespaceLabels, Counter>,
    leader: Gauge,
}

/// 0.5 s .. 256 s: a load balancer's lag is seconds to a minute or two; the cap bounds it.
fn seconds_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.5, 2.0, 10,
    ))
}

impl Default for ObserveMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ObserveMetrics {
    pub fn new() -> Self {
        Self {
            drains: Family::default(),
            cap_hits: Family::default(),
            lag: Family::new_with_constructor(seconds_histogram),
            hold: Family::new_with_constructor(seconds_histogram),
            malformed: Family::default(),
            unplanned: Family::default(),
            leader: Gauge::default(),
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "drain_webhook_drains",
            "Drain records read from terminated containers of planned pods, by namespace and \
             how the hold ended (quiet, cap, fixed, follow); counted by the leader only",
            self.drains.clone(),
        );
        registry.register(
            "drain_webhook_drain_cap_hits",
            "Holds that reached drain.io/max-delay while connections or requests still arrived",
            self.cap_hits.clone(),
        );
        registry.register(
            "drain_webhook_drain_lag_seconds",
            "Last inbound connection or request after the pod's deletion (the load balancer's \
             lag), per drain that saw one",
            self.lag.clone(),
        );
        registry.register(
            "drain_webhook_drain_hold_seconds",
            "When the hold ended, after the pod's deletion",
            self.hold.clone(),
        );
        registry.register(
            "drain_webhook_drain_records_malformed",
            "Termination messages of planned pods whose drain record could not be read (ignored)",
            self.malformed.clone(),
        );
        registry.register(
            "drain_webhook_unplanned_pods",
            "Pods in opted-in namespaces the planner would change that carry no drain.io/status \
             (created while the webhook was unreachable, or before the namespace opted in)",
            self.unplanned.clone(),
        );
        registry.register(
            "drain_webhook_observer_leader",
            "1 while this replica holds the observer's Lease",
            self.leader.clone(),
        );
        for reason in RecordError::REASONS {
            let _ = self.malformed.get_or_create(&ReasonLabels { reason });
        }
    }

    pub fn drain(&self, namespace: &str, record: &DrainRecord) {
        let namespace = namespace.to_string();
        self.drains
            .get_or_create(&DrainLabels {
                namespace: namespace.clone(),
                outcome: record.why.as_str(),
            })
            .inc();
        let labels = NamespaceLabels { namespace };
        if record.capped_with_traffic() {
            self.cap_hits.get_or_create(&labels).inc();
        }
        if let Some(ms) = record.last_arrival_ms {
            self.lag.get_or_create(&labels).observe(seconds(ms));
        }
        self.hold
            .get_or_create(&labels)
            .observe(seconds(record.end_ms));
    }

    pub fn malformed(&self, reason: &'static str) {
        self.malformed.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn unplanned(&self, namespace: &str) {
        self.unplanned
            .get_or_create(&NamespaceLabels {
                namespace: namespace.to_string(),
            })
            .inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }
}

#[allow(clippy::cast_precision_loss)]
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}
