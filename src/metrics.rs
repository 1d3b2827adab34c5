//! Prometheus metrics of the webhook (prometheus-client, OpenMetrics text format).
//!
//! Every label is bounded: operations and outcomes come from fixed lists, never from object
//! names; the drain observer's series (added through [`Metrics::with_series`]) alone carry a
//! namespace.

use std::fmt::Write as _;
use std::time::Duration;

use kube::core::admission::Operation;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::admission::ReviewOutcome;

/// Content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `operation` label: the admission operation, or `unknown` when the body could not be
/// read.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum OperationLabel {
    create,
    update,
    delete,
    connect,
    unknown,
}

impl From<Option<&Operation>> for OperationLabel {
    fn from(operation: Option<&Operation>) -> Self {
        match operation {
            Some(Operation::Create) => Self::create,
            Some(Operation::Update) => Self::update,
            Some(Operation::Delete) => Self::delete,
            Some(Operation::Connect) => Self::connect,
            None => Self::unknown,
        }
    }
}

/// The `outcome` label: admission's own name for what happened.
impl EncodeLabelValue for ReviewOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReviewLabels {
    operation: OperationLabel,
    outcome: ReviewOutcome,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum ReloadResult {
    success,
    failure,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: ReloadResult,
}

/// The helper's delivery for one kind of pod, and whether every node mounts image volumes.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    /// `always` (restartPolicy Always) or `never` (Never, OnFailure).
    restart_policy: &'static str,
    delivery: &'static str,
    /// `all`, `not-all`, `no-nodes` or `unknown` (capabilities.rs).
    image_volume_nodes: &'static str,
}

/// Why nodes block image volumes: `kubelet` (older than 1.35, or unreadable) or `runtime`
/// (not containerd 2.1+ or CRI-O 1.31+, or unreadable); capabilities::BLOCK_REASONS.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BlockLabels {
    reason: &'static str,
}

/// All metrics of the process, registered in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reviews: Family<ReviewLabels, Counter>,
    review_duration: Histogram,
    patch_operations: Counter,
    certificate_reloads: Family<ReloadLabels, Counter>,
    open_connections: Gauge,
    helper_delivery: Family<DeliveryLabels, Gauge>,
    image_volume_blocking_nodes: Family<BlockLabels, Gauge>,
}

/// One open HTTPS connection, counted in `drain_webhook_open_connections` until dropped.
#[derive(Debug)]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::with_series(|_| {})
    }

    /// The server's series, and those `register` adds to the same registry (the drain
    /// observer's: `observe::Observed::register`), all in one `/metrics`.
    pub fn with_series(register: impl FnOnce(&mut Registry)) -> Self {
        let mut registry = Registry::default();
        let reviews = Family::<ReviewLabels, Counter>::default();
        registry.register(
            "drain_webhook_reviews",
            "AdmissionReviews answered, by operation and outcome",
            reviews.clone(),
        );
        // 100 µs .. ~3.3 s: planning takes microseconds, parsing a large pod milliseconds.
        let review_duration = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "drain_webhook_review_duration_seconds",
            "Time to read a request body and answer it (the body timeout bounds the reading)",
            review_duration.clone(),
        );
        let patch_operations = Counter::default();
        registry.register(
            "drain_webhook_patch_operations",
            "JSONPatch operations returned in admission responses",
            patch_operations.clone(),
        );
        let certificate_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "drain_webhook_certificate_reloads",
            "Attempts to load a changed serving certificate, by result",
            certificate_reloads.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "drain_webhook_open_connections",
            "HTTPS connections open, from accept (TLS handshake included) to close; at \
             --max-connections further ones wait in the listen backlog",
            open_connections.clone(),
        );
        let helper_delivery = Family::<DeliveryLabels, Gauge>::default();
        registry.register(
            "drain_webhook_helper_delivery",
            "1 for the helper delivery --helper-delivery gives pods of each restartPolicy now, \
             with whether every node's runtime mounts image volumes",
            helper_delivery.clone(),
        );
        let image_volume_blocking_nodes = Family::<BlockLabels, Gauge>::default();
        registry.register(
            "drain_webhook_image_volume_blocking_nodes",
            "Nodes that cannot mount image volumes, by reason (kubelet older than 1.35, or a \
             runtime older than containerd 2.1 / CRI-O 1.31); a node can count under both. \
             Above 0, helper-delivery auto gives no image volume",
            image_volume_blocking_nodes.clone(),
        );
        for reason in crate::capabilities::BLOCK_REASONS {
            let _ = image_volume_blocking_nodes.get_or_create(&BlockLabels { reason });
        }
        // Make the reload series visible at zero before the first rotation.
        for result in [ReloadResult::success, ReloadResult::failure] {
            let _ = certificate_reloads.get_or_create(&ReloadLabels { result });
        }
        register(&mut registry);
        Self {
            registry,
            reviews,
            review_duration,
            patch_operations,
            certificate_reloads,
            open_connections,
            helper_delivery,
            image_volume_blocking_nodes,
        }
    }

    /// The nodes that block image volumes now, per reason (capabilities.rs).
    pub fn image_volume_blocking_nodes(&self, by_reason: [(&'static str, usize); 2]) {
        for (reason, nodes) in by_reason {
            self.image_volume_blocking_nodes
                .get_or_create(&BlockLabels { reason })
                .set(i64::try_from(nodes).unwrap_or(i64::MAX));
        }
    }

    /// The current delivery per restartPolicy: one series at 1 for each; series of earlier
    /// decisions stay, at 0 (a family cannot drop one).
    pub fn helper_delivery(
        &self,
        image_volume_nodes: &'static str,
        always: &'static str,
        never: &'static str,
    ) {
        for (restart_policy, chosen) in [("always", always), ("never", never)] {
            for delivery in ["image-volume", "init-container", "first-container"] {
                for nodes in ["all", "not-all", "no-nodes", "unknown"] {
                    let labels = DeliveryLabels {
                        restart_policy,
                        delivery,
                        image_volume_nodes: nodes,
                    };
                    if delivery == chosen && nodes == image_volume_nodes {
                        self.helper_delivery.get_or_create(&labels).set(1);
                    } else if let Some(gauge) = self.helper_delivery.get(&labels) {
                        gauge.set(0);
                    }
                }
            }
        }
    }

    /// Counts an accepted HTTPS connection until the returned guard is dropped.
    pub fn connection_opened(&self) -> OpenConnection {
        self.open_connections.inc();
        OpenConnection(self.open_connections.clone())
    }

    /// Records one answered review.
    pub fn observe_review(
        &self,
        operation: Option<&Operation>,
        outcome: ReviewOutcome,
        patch_operations: usize,
        elapsed: Duration,
    ) {
        let labels = ReviewLabels {
            operation: operation.into(),
            outcome,
        };
        self.reviews.get_or_create(&labels).inc();
        self.review_duration.observe(elapsed.as_secs_f64());
        if patch_operations > 0 {
            self.patch_operations
                .inc_by(u64::try_from(patch_operations).unwrap_or(u64::MAX));
        }
    }

    pub fn certificate_reloaded(&self, ok: bool) {
        let result = if ok {
            ReloadResult::success
        } else {
            ReloadResult::failure
        };
        self.certificate_reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
    }

    /// Number of failed certificate reloads so far (tests and logs).
    pub fn certificate_reload_failures(&self) -> u64 {
        self.certificate_reloads
            .get_or_create(&ReloadLabels {
                result: ReloadResult::failure,
            })
            .get()
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_documented_series() {
        let metrics = Metrics::new();
        metrics.observe_review(
            Some(&Operation::Create),
            ReviewOutcome::Mutated,
            3,
            Duration::from_micros(250),
        );
        metrics.observe_review(None, ReviewOutcome::Invalid, 0, Duration::ZERO);
        metrics.certificate_reloaded(false);
        let text = metrics.encode();
        assert!(
            text.contains(r#"drain_webhook_reviews_total{operation="create",outcome="mutated"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"outcome="invalid""#), "{text}");
        assert!(
            text.contains("drain_webhook_patch_operations_total 3"),
            "{text}"
        );
        assert!(
            text.contains("drain_webhook_review_duration_seconds_count 2"),
            "{text}"
        );
        assert!(
            text.contains(r#"drain_webhook_certificate_reloads_total{result="failure"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"drain_webhook_certificate_reloads_total{result="success"} 0"#),
            "{text}"
        );
        assert_eq!(metrics.certificate_reload_failures(), 1);
    }

    #[test]
    fn the_helper_delivery_series_follow_the_decision() {
        let metrics = Metrics::new();
        metrics.helper_delivery("unknown", "first-container", "init-container");
        metrics.helper_delivery("all", "image-volume", "image-volume");
        let text = metrics.encode();
        for (line, value) in [
            (
                r#"drain_webhook_helper_delivery{restart_policy="always",delivery="image-volume",image_volume_nodes="all"}"#,
                1,
            ),
            (
                r#"drain_webhook_helper_delivery{restart_policy="never",delivery="image-volume",image_volume_nodes="all"}"#,
                1,
            ),
            (
                r#"drain_webhook_helper_delivery{restart_policy="always",delivery="first-container",image_volume_nodes="unknown"}"#,
                0,
            ),
            (
                r#"drain_webhook_helper_delivery{restart_policy="never",delivery="init-container",image_volume_nodes="unknown"}"#,
                0,
            ),
        ] {
            let expected = format!("{line} {value}");
            assert!(
                text.lines().any(|l| l == expected),
                "missing {expected} in\n{text}"
            );
        }
    }

    #[test]
    fn the_blocking_nodes_are_counted_by_reason() {
        let metrics = Metrics::new();
        let text = metrics.encode();
        for reason in ["kubelet", "runtime"] {
            let line =
                format!(r#"drain_webhook_image_volume_blocking_nodes{{reason="{reason}"}} 0"#);
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        let nodes = crate::capabilities::ImageVolumeNodes::summarise([
            ("a", Some("containerd://2.1.3"), Some("v1.34.2")),
            ("b", Some("containerd://1.7.27"), Some("v1.34.2")),
            ("c", Some("containerd://2.1.3"), Some("v1.35.0")),
        ]);
        metrics.image_volume_blocking_nodes(nodes.blocking_by_reason());
        let text = metrics.encode();
        for line in [
            r#"drain_webhook_image_volume_blocking_nodes{reason="kubelet"} 2"#,
            r#"drain_webhook_image_volume_blocking_nodes{reason="runtime"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    /// The label values are the ones docs/server.md lists, whatever admission calls them.
    #[test]
    fn every_outcome_and_operation_has_its_documented_label() {
        let metrics = Metrics::new();
        let outcomes = [
            (ReviewOutcome::Mutated, "mutated"),
            (ReviewOutcome::Unchanged, "unchanged"),
            (ReviewOutcome::Skipped, "skipped"),
            (ReviewOutcome::Denied, "denied"),
            (ReviewOutcome::Error, "error"),
            (ReviewOutcome::Invalid, "invalid"),
        ];
        let operations = [
            (Some(Operation::Create), "create"),
            (Some(Operation::Update), "update"),
            (Some(Operation::Delete), "delete"),
            (Some(Operation::Connect), "connect"),
            (None, "unknown"),
        ];
        for (outcome, _) in outcomes {
            for (operation, _) in &operations {
                metrics.observe_review(operation.as_ref(), outcome, 0, Duration::ZERO);
            }
        }
        let text = metrics.encode();
        for (_, outcome) in outcomes {
            for (_, operation) in &operations {
                let line = format!(
                    r#"drain_webhook_reviews_total{{operation="{operation}",outcome="{outcome}"}} 1"#
                );
                assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
            }
        }
    }
}
