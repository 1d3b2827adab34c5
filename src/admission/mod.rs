//! AdmissionReview handling, without HTTP: the bytes of an `admission.k8s.io/v1`
//! AdmissionReview in, the HTTP status and body of the answer out.
//!
//! - Allowed untouched (outcome `skipped`): operations other than CREATE, objects other than
//!   core/v1 Pods, subresource requests, mirror pods, pods in the webhook's own namespace.
//! - Planned (`mutated` or `unchanged`): everything else, through [`mutate_pod`]. Dry-run
//!   reviews are answered the same way (planning has no side effects).
//! - Denied (`denied`): the user's input is wrong ([`MutateError::Denied`]); the status code
//!   is 400 BadRequest (see docs/server.md).
//! - Internal error (`error`): a fault of ours; HTTP 500 with a generic body, so the API
//!   server applies the webhook's failurePolicy. The cause is logged in full.
//! - Invalid (`invalid`): not an AdmissionReview v1 at all; HTTP 400 with a short reason.

use std::borrow::Cow;
use std::sync::Arc;

use kube::core::admission::Operation;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::capabilities::{ImageVolumeNodes, NamespaceLookup, NoNamespaces, NodeLookup};
use crate::mutate::{MutateError, PodContext, mutate_shape, read_pod};

mod base64_text;
mod wire;
use crate::settings::{KubeVersion, Settings};
use wire::{DenialStatus, Malformed, RequestIn, ReviewResponse, parse, shorten};

/// Largest accepted body: the API server's 3 MiB object limit plus room for the envelope.
pub const DEFAULT_BODY_LIMIT: usize = 3 * 1024 * 1024 + 256 * 1024;

/// The media type of an AdmissionReview, in and out.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// The only AdmissionReview version served (the webhook configuration asks for v1 only).
pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// Longest reason returned for a malformed body (serde messages may quote input).
const MAX_REASON_LEN: usize = 200;

/// Everything a review needs besides the body.
#[derive(Clone)]
pub struct Reviewer {
    pub settings: Arc<Settings>,
    /// The webhook's own namespace: its pods are allowed untouched.
    pub own_namespace: Option<String>,
    pub kube_version: Option<KubeVersion>,
    pub namespaces: Arc<dyn NamespaceLookup>,
    pub nodes: Arc<dyn NodeLookup>,
}

impl Reviewer {
    /// Default settings, no cluster (unknown version, no namespace annotations) and
    /// `drain-system`, the chart's namespace, as its own: the reviewer of tests and benchmarks.
    /// Change a field with struct update syntax: `Reviewer { kube_version, ..Reviewer::for_tests() }`.
    pub fn for_tests() -> Self {
        Self {
            settings: Arc::new(Settings::default()),
            own_namespace: Some("drain-system".into()),
            kube_version: None,
            namespaces: Arc::new(NoNamespaces),
            nodes: Arc::new(ImageVolumeNodes::Unknown),
        }
    }
}

impl std::fmt::Debug for Reviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reviewer")
            .field("settings", &self.settings)
            .field("own_namespace", &self.own_namespace)
            .field("kube_version", &self.kube_version)
            .finish_non_exhaustive()
    }
}

/// What happened to one review; `metrics` counts reviews by it (`outcome` label).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// Allowed with a non-empty patch.
    Mutated,
    /// Planned, nothing to change.
    Unchanged,
    /// Allowed untouched without planning (not a Pod CREATE, mirror pod, own namespace).
    Skipped,
    /// Denied: the user's input is wrong.
    Denied,
    /// Our fault: answered with HTTP 500.
    Error,
    /// Not a valid AdmissionReview (HTTP 4xx).
    Invalid,
}

impl ReviewOutcome {
    /// The name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mutated => "mutated",
            Self::Unchanged => "unchanged",
            Self::Skipped => "skipped",
            Self::Denied => "denied",
            Self::Error => "error",
            Self::Invalid => "invalid",
        }
    }
}

/// The answer to one review: what to send back and what to count.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status: 200 for every AdmissionReview answer (allowed or denied), 400 for a
    /// malformed body, 500 for an internal error.
    pub status: u16,
    /// JSON body.
    pub body: Vec<u8>,
    pub outcome: ReviewOutcome,
    /// The request's operation; `None` when the body could not be read as a review.
    pub operation: Option<Operation>,
    pub patch_operations: usize,
}

impl Answer {
    /// A malformed request: HTTP 400 with a short JSON reason.
    pub fn invalid(reason: &str) -> Self {
        Self::error_body(400, ReviewOutcome::Invalid, None, reason)
    }

    /// A body above the limit: HTTP 413.
    pub fn too_large(limit: usize) -> Self {
        Self::error_body(
            413,
            ReviewOutcome::Invalid,
            None,
            &format!("request body larger than {limit} bytes"),
        )
    }

    /// A body that did not arrive within the read timeout: HTTP 408.
    pub fn timed_out() -> Self {
        Self::error_body(
            408,
            ReviewOutcome::Invalid,
            None,
            "timed out reading the request body",
        )
    }

    /// A body that is not declared as JSON: HTTP 415, naming what was sent.
    pub fn unsupported_media_type(content_type: Option<&str>) -> Self {
        let got = content_type.map_or_else(|| "none".to_string(), |v| format!("{v:?}"));
        Self::error_body(
            415,
            ReviewOutcome::Invalid,
            None,
            &shorten(&format!(
                "expected Content-Type {JSON_CONTENT_TYPE} (an AdmissionReview), got {got}"
            )),
        )
    }

    /// A fault of ours: HTTP 500 with a generic body (the cause is logged, not returned).
    pub fn internal(operation: Option<Operation>) -> Self {
        Self::error_body(500, ReviewOutcome::Error, operation, "internal error")
    }

    fn error_body(
        status: u16,
        outcome: ReviewOutcome,
        operation: Option<Operation>,
        reason: &str,
    ) -> Self {
        let body = serde_json::json!({ "error": reason })
            .to_string()
            .into_bytes();
        Self {
            status,
            body,
            outcome,
            operation,
            patch_operations: 0,
        }
    }
}

impl Reviewer {
    /// Answers one AdmissionReview. Never panics, whatever the bytes.
    pub fn review(&self, body: &[u8]) -> Answer {
        let request = match parse(body) {
            Ok(parsed) => parsed,
            Err(err) => {
                let reason = shorten(&err.to_string());
                tracing::warn!(reason = %reason, bytes = body.len(), "malformed AdmissionReview");
                return Answer::invalid(&reason);
            }
        };
        // Debug level: an enabled span costs formatting on every review; the rare info, warn
        // and error events carry the uid themselves.
        let span = tracing::debug_span!(
            "review",
            uid = %request.uid,
            namespace = request.namespace.as_deref().unwrap_or(""),
            name = %request.name,
            operation = ?request.operation,
            dry_run = request.dry_run,
        );
        let _entered = span.enter();
        match self.decide(&request) {
            Ok(decision) => respond(&request, decision),
            Err(err) => {
                let reason = shorten(&err.to_string());
                tracing::warn!(uid = %request.uid, reason = %reason, "malformed AdmissionReview");
                Answer::invalid(&reason)
            }
        }
    }

    fn decide(&self, request: &RequestIn<'_>) -> Result<Decision, Malformed> {
        if request.operation != Operation::Create {
            return Ok(Decision::Skip("not a CREATE"));
        }
        let kind = &request.kind;
        if !(kind.group.is_empty() && kind.version == "v1" && kind.kind == "Pod") {
            return Ok(Decision::Skip("not a core/v1 Pod"));
        }
        if request.sub_resource.is_some() {
            return Ok(Decision::Skip("subresource request"));
        }
        // The pod is decoded once, straight from the request body, into the typed shape the
        // planner and the patch builder read (while the body is read, or here from the raw
        // object); the patch applies to the object as it was sent.
        let read;
        let pod = match &request.pod {
            Some(pod) => pod,
            None => {
                let object = request
                    .object
                    .map(RawValue::get)
                    .filter(|text| *text != "null")
                    .ok_or(Malformed::NoObject)?;
                if !object.starts_with('{') {
                    return Err(Malformed::Request(
                        "object: expected a JSON object".to_string(),
                    ));
                }
                // A Pod the API server sent that does not decode is our fault.
                read = match read_pod(object) {
                    Ok(pod) => pod,
                    Err(err) => return Ok(err.into()),
                };
                &read
            }
        };
        let metadata = pod.metadata.as_ref();
        let pod_namespace = request
            .namespace
            .as_deref()
            .or(metadata.and_then(|m| m.namespace.as_deref()));
        if let (Some(own), Some(ns)) = (self.own_namespace.as_deref(), pod_namespace)
            && own == ns
        {
            return Ok(Decision::Skip("pod in the webhook's own namespace"));
        }
        if metadata
            .and_then(|m| m.annotations.as_ref())
            .is_some_and(|a| a.contains_key(crate::annotations::MIRROR_POD))
        {
            return Ok(Decision::Skip("mirror pod"));
        }
        let namespace_annotations = pod_namespace.and_then(|ns| self.namespaces.annotations(ns));
        // Bounded work per review: mutate_shape denies a pod past a bound before planning.
        let ctx = PodContext {
            settings: &self.settings,
            namespace_annotations: namespace_annotations.as_ref(),
            kube_version: self.kube_version,
            image_volume_nodes: self.nodes.image_volume_nodes(),
        };
        Ok(match mutate_shape(pod, &ctx) {
            Ok(mutation) => Decision::Planned {
                patch: mutation.patch,
                warnings: mutation.plan.warnings,
            },
            Err(err) => err.into(),
        })
    }
}

enum Decision {
    Skip(&'static str),
    Planned {
        patch: crate::patch::PodPatch,
        warnings: Vec<String>,
    },
    Deny(String),
    Internal(String),
}

impl From<MutateError> for Decision {
    fn from(err: MutateError) -> Self {
        match err {
            MutateError::Denied(err) => Decision::Deny(err.to_string()),
            MutateError::Internal(cause) => Decision::Internal(cause),
        }
    }
}

thread_local! {
    /// Where [`respond`] writes a patch's JSON, kept for the thread's next review.
    static PATCH_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The largest patch buffer a thread keeps; a larger one (a pod of many containers) is freed
/// after its review, so a thread never holds more than this between reviews.
const KEPT_PATCH_BUFFER: usize = 64 * 1024;

fn respond(request: &RequestIn<'_>, decision: Decision) -> Answer {
    let uid = request.uid.as_ref();
    let operation = Some(request.operation.clone());
    let mut response = ReviewResponse {
        uid,
        allowed: true,
        status: None,
        patch: None,
        warnings: Vec::new(),
    };
    let (outcome, patch_operations) = match decision {
        Decision::Skip(why) => {
            tracing::debug!(why, "allowed untouched");
            (ReviewOutcome::Skipped, 0)
        }
        Decision::Planned { patch, warnings } => {
            let count = patch.len();
            if count > 0 {
                // The patch's JSON lives only until it is base64-encoded into the answer: each
                // thread writes it into the buffer it kept from its last review, which saves
                // allocating (and the allocator consolidating for) a few KB per review.
                let mut bytes = PATCH_BUFFER.take();
                bytes.clear();
                match patch.write_into(&mut bytes) {
                    Ok(()) => response.patch = Some(bytes),
                    Err(err) => {
                        tracing::error!(uid, error = %err, "cannot serialize the patch");
                        return Answer::internal(operation);
                    }
                }
            }
            response.warnings = warnings;
            let outcome = if count == 0 {
                ReviewOutcome::Unchanged
            } else {
                ReviewOutcome::Mutated
            };
            // Per-review success is in the metrics; a log line per pod creation would cost a
            // third of the throughput (docs/benchmarks.md). `--log-level debug` shows it.
            tracing::debug!(
                patch_operations = count,
                outcome = outcome.as_str(),
                "allowed"
            );
            (outcome, count)
        }
        Decision::Deny(message) => {
            tracing::info!(uid, reason = %message, "denied");
            response.allowed = false;
            response.status = Some(DenialStatus {
                status: "Failure",
                code: 400,
                reason: "BadRequest",
                message,
            });
            (ReviewOutcome::Denied, 0)
        }
        Decision::Internal(cause) => {
            tracing::error!(uid, error = %cause, "internal error while planning the pod");
            return Answer::internal(operation);
        }
    };
    let body = response.to_review_json();
    if let Some(bytes) = response.patch.take()
        && bytes.capacity() <= KEPT_PATCH_BUFFER
    {
        PATCH_BUFFER.set(bytes);
    }
    match body {
        Ok(body) => Answer {
            status: 200,
            body,
            outcome,
            operation,
            patch_operations,
        },
        Err(err) => {
            tracing::error!(uid, error = %err, "cannot serialize the AdmissionReview");
            Answer::internal(operation)
        }
    }
}

#[cfg(test)]
mod tests;
