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
use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use kube::core::admission::Operation;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::mutate::{MutateError, PodContext, mutate_shape, read_pod};
use crate::settings::{KubeVersion, Settings};

/// Largest accepted body: the API server's 3 MiB object limit plus room for the envelope.
pub const DEFAULT_BODY_LIMIT: usize = 3 * 1024 * 1024 + 256 * 1024;

/// The media type of an AdmissionReview, in and out.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// The only AdmissionReview version served (the webhook configuration asks for v1 only).
pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// Longest reason returned for a malformed body (serde messages may quote input).
const MAX_REASON_LEN: usize = 200;

/// Where a namespace's annotations come from (the watch cache, or nothing).
pub trait NamespaceLookup: Send + Sync {
    /// The namespace's annotations (at least its `drain.io/*` ones), or `None` when unknown
    /// (cache not synced, no cluster).
    fn annotations(&self, namespace: &str) -> Option<BTreeMap<String, String>>;
}

/// No cluster: namespace annotations are always unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNamespaces;

impl NamespaceLookup for NoNamespaces {
    fn annotations(&self, _namespace: &str) -> Option<BTreeMap<String, String>> {
        None
    }
}

/// Fixed annotations per namespace (tests, offline use).
impl NamespaceLookup for BTreeMap<String, BTreeMap<String, String>> {
    fn annotations(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.get(namespace).cloned()
    }
}

/// Everything a review needs besides the body.
#[derive(Clone)]
pub struct Reviewer {
    pub settings: Arc<Settings>,
    /// The webhook's own namespace: its pods are allowed untouched.
    pub own_namespace: Option<String>,
    pub kube_version: Option<KubeVersion>,
    pub namespaces: Arc<dyn NamespaceLookup>,
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

/// Why a body is not a usable AdmissionReview.
#[derive(Debug, thiserror::Error)]
enum Malformed {
    #[error("empty body")]
    Empty,
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body is not a JSON object")]
    NotObject,
    #[error("expected apiVersion {API_VERSION}, got {0}")]
    ApiVersion(String),
    #[error("expected kind {KIND}, got {0}")]
    Kind(String),
    #[error("AdmissionReview has no request")]
    NoRequest,
    #[error("request is not a valid AdmissionRequest: {0}")]
    Request(String),
    #[error("request has an empty uid")]
    NoUid,
    #[error("CREATE of a Pod without an object")]
    NoObject,
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
        // The pod is decoded once, straight from the request body, into the typed shape the
        // planner and the patch builder read; the patch applies to the object as it was sent.
        // A Pod the API server sent that does not decode is our fault.
        let pod = match read_pod(object) {
            Ok(pod) => pod,
            Err(err) => return Ok(err.into()),
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
        };
        Ok(match mutate_shape(&pod, &ctx) {
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
                match patch.to_bytes() {
                    Ok(bytes) => response.patch = Some(bytes),
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
    match response.to_review_json() {
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

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The `response` of an AdmissionReview v1 answer.
struct ReviewResponse<'a> {
    uid: &'a str,
    allowed: bool,
    status: Option<DenialStatus>,
    /// The JSONPatch as JSON text; sent base64-encoded with `patchType: JSONPatch`.
    patch: Option<Vec<u8>>,
    warnings: Vec<String>,
}

impl ReviewResponse<'_> {
    /// The whole AdmissionReview, written in one pass into a buffer of the right size.
    ///
    /// `patch` is a Go `[]byte`, which the API server reads as base64 (kubernetes/website#34308);
    /// kube-core's `AdmissionResponse` writes an array of numbers instead (kube-rs/kube#1781).
    /// The base64 text is encoded straight into the body: its alphabet needs no JSON escaping,
    /// so the patch is not copied into a string and scanned again (docs/benchmarks.md).
    fn to_review_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let patch_len = self.patch.as_ref().map_or(0, |patch| {
            base64::encoded_len(patch.len(), true).unwrap_or(0)
        });
        let mut body = Vec::with_capacity(160 + self.uid.len() + patch_len);
        body.extend_from_slice(b"{\"apiVersion\":\"");
        body.extend_from_slice(API_VERSION.as_bytes());
        body.extend_from_slice(b"\",\"kind\":\"");
        body.extend_from_slice(KIND.as_bytes());
        body.extend_from_slice(b"\",\"response\":{\"uid\":");
        serde_json::to_writer(&mut body, self.uid)?;
        body.extend_from_slice(if self.allowed {
            b",\"allowed\":true"
        } else {
            b",\"allowed\":false"
        });
        if let Some(status) = &self.status {
            body.extend_from_slice(b",\"status\":");
            serde_json::to_writer(&mut body, status)?;
        }
        if let Some(patch) = &self.patch {
            body.extend_from_slice(b",\"patchType\":\"JSONPatch\",\"patch\":\"");
            let start = body.len();
            body.resize(start + patch_len, 0);
            let written = BASE64
                .encode_slice(patch, &mut body[start..])
                .map_err(serde::ser::Error::custom)?;
            body.truncate(start + written);
            body.push(b'"');
        }
        if !self.warnings.is_empty() {
            body.extend_from_slice(b",\"warnings\":");
            serde_json::to_writer(&mut body, &self.warnings)?;
        }
        body.extend_from_slice(b"}}");
        Ok(body)
    }
}

/// A `metav1.Status` for a denial.
#[derive(Serialize)]
struct DenialStatus {
    status: &'static str,
    code: u16,
    reason: &'static str,
    message: String,
}

/// The envelope of an AdmissionReview: only what is checked before the request is read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn<'a> {
    #[serde(default)]
    api_version: Option<Value>,
    #[serde(default)]
    kind: Option<Value>,
    #[serde(borrow, default)]
    request: Option<&'a RawValue>,
}

/// The fields of an AdmissionRequest the webhook reads. The object stays raw JSON until the
/// request is known to be a Pod CREATE to plan.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn<'a> {
    // Borrowed from the body unless a string holds escapes.
    #[serde(borrow)]
    uid: Cow<'a, str>,
    #[serde(borrow)]
    kind: GroupVersionKindIn<'a>,
    #[serde(borrow, default)]
    sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
    operation: Operation,
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct GroupVersionKindIn<'a> {
    #[serde(borrow, default)]
    group: Cow<'a, str>,
    #[serde(borrow)]
    version: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
}

/// A well-formed AdmissionReview v1, read in one pass: the envelope and the request typed,
/// the object left raw. Whatever it does not take is read again by [`parse_diagnosing`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOnePass<'a> {
    api_version: &'a str,
    kind: &'a str,
    #[serde(borrow)]
    request: RequestIn<'a>,
}

/// Reads the body: the envelope and the request typed, the object left raw (`None` when there
/// is none). Performance (make bench, docs/benchmarks.md): the object is nearly all of the
/// body; a well-formed review is scanned once here and its object decoded once, later, only
/// for a Pod CREATE.
fn parse(body: &[u8]) -> Result<RequestIn<'_>, Malformed> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Malformed::Empty);
    }
    let starts_an_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !starts_an_object {
        // (A derived struct would also read a JSON array as its fields in order.)
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => Malformed::NotObject,
                Err(err) => Malformed::NotJson(err.to_string()),
            },
        );
    }
    if let Ok(review) = serde_json::from_slice::<ReviewOnePass<'_>>(body)
        && review.api_version == API_VERSION
        && review.kind == KIND
        && !review.request.uid.is_empty()
    {
        return Ok(review.request);
    }
    parse_diagnosing(body)
}

/// Reads a body the one-pass read did not take, step by step, to name what is wrong: the
/// envelope first, then the request. Also takes what is valid but unusual (escaped strings in
/// the envelope).
fn parse_diagnosing(body: &[u8]) -> Result<RequestIn<'_>, Malformed> {
    let review: ReviewIn<'_> =
        serde_json::from_slice(body).map_err(|err| Malformed::NotJson(err.to_string()))?;
    match &review.api_version {
        Some(Value::String(v)) if v == API_VERSION => {}
        other => return Err(Malformed::ApiVersion(describe(other.as_ref()))),
    }
    match &review.kind {
        Some(Value::String(k)) if k == KIND => {}
        other => return Err(Malformed::Kind(describe(other.as_ref()))),
    }
    let raw_request = review
        .request
        .filter(|r| r.get() != "null")
        .ok_or(Malformed::NoRequest)?;
    let request: RequestIn<'_> = serde_json::from_str(raw_request.get())
        .map_err(|err| Malformed::Request(err.to_string()))?;
    if request.uid.is_empty() {
        return Err(Malformed::NoUid);
    }
    Ok(request)
}

fn describe(value: Option<&Value>) -> String {
    match value {
        None => "nothing".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(other) => format!("a JSON {}", json_type(other)),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shorten(text: &str) -> String {
    if text.len() <= MAX_REASON_LEN {
        return text.to_string();
    }
    let mut end = MAX_REASON_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/reviews/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
    }

    fn response(answer: &Answer) -> Value {
        let review: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(review["apiVersion"], API_VERSION);
        assert_eq!(review["kind"], KIND);
        review["response"].clone()
    }

    #[test]
    fn skips_what_is_not_a_pod_create() {
        for (file, uid) in [
            ("pod-update.json", "7f0b2c1e-0003-4d5e-9a10-000000000003"),
            ("pod-delete.json", "7f0b2c1e-0004-4d5e-9a10-000000000004"),
            (
                "pod-create-own-namespace.json",
                "7f0b2c1e-0005-4d5e-9a10-000000000005",
            ),
            (
                "pod-create-mirror.json",
                "7f0b2c1e-0006-4d5e-9a10-000000000006",
            ),
            (
                "configmap-create.json",
                "7f0b2c1e-0008-4d5e-9a10-000000000008",
            ),
            (
                "pod-create-subresource.json",
                "7f0b2c1e-0009-4d5e-9a10-000000000009",
            ),
        ] {
            let answer = Reviewer::for_tests().review(&fixture(file));
            assert_eq!(answer.status, 200, "{file}");
            assert_eq!(answer.outcome, ReviewOutcome::Skipped, "{file}");
            let response = response(&answer);
            assert_eq!(response["uid"], uid, "{file}");
            assert_eq!(response["allowed"], true, "{file}");
            assert!(response.get("patch").is_none(), "{file}");
        }
    }

    #[test]
    fn malformed_bodies_are_invalid_with_a_reason() {
        let good = fixture("pod-create-nginx-app.json");
        let mut wrong_version: Value = serde_json::from_slice(&good).unwrap();
        wrong_version["apiVersion"] = "admission.k8s.io/v1beta1".into();
        let mut wrong_types: Value = serde_json::from_slice(&good).unwrap();
        wrong_types["request"]["uid"] = 42.into();
        let mut no_object: Value = serde_json::from_slice(&good).unwrap();
        no_object["request"]["object"] = Value::Null;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "empty"),
            (b"   ".to_vec(), "empty"),
            (good[..good.len() / 2].to_vec(), "not JSON"),
            (b"<xml/>".to_vec(), "not JSON"),
            (b"[1,2]".to_vec(), "not a JSON object"),
            (b"\xff\xfe".to_vec(), "not JSON"),
            (serde_json::to_vec(&wrong_version).unwrap(), "apiVersion"),
            (
                serde_json::to_vec(&wrong_types).unwrap(),
                "AdmissionRequest",
            ),
            (serde_json::to_vec(&no_object).unwrap(), "without an object"),
            (
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
                "no request",
            ),
            (
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{}}"#.to_vec(),
                "kind",
            ),
        ];
        for (body, expected) in cases {
            let answer = Reviewer::for_tests().review(&body);
            assert_eq!(answer.status, 400, "{expected}");
            assert_eq!(answer.outcome, ReviewOutcome::Invalid);
            let text = String::from_utf8(answer.body).unwrap();
            assert!(text.contains(expected), "{text} should mention {expected}");
        }
    }

    #[test]
    fn long_reasons_are_shortened() {
        let long = "é".repeat(500);
        let short = shorten(&long);
        assert!(short.len() <= MAX_REASON_LEN + 3);
        assert!(short.ends_with("..."));
    }

    #[test]
    fn a_bad_annotation_is_denied_naming_it() {
        let answer = Reviewer::for_tests().review(&fixture("pod-create-bad-delay.json"));
        assert_eq!(answer.status, 200);
        assert_eq!(answer.outcome, ReviewOutcome::Denied);
        let response = response(&answer);
        assert_eq!(response["allowed"], false);
        assert_eq!(response["status"]["code"], 400);
        let message = response["status"]["message"].as_str().unwrap();
        assert!(message.contains("drain.io/delay"), "{message}");
    }

    #[test]
    fn the_seed_pod_is_patched() {
        let answer = Reviewer::for_tests().review(&fixture("pod-create-nginx-app.json"));
        assert_eq!(answer.status, 200);
        assert_eq!(answer.outcome, ReviewOutcome::Mutated);
        assert!(answer.patch_operations > 0);
        let response = response(&answer);
        assert_eq!(response["allowed"], true);
        assert_eq!(response["patchType"], "JSONPatch");
        // Base64, as the API server reads a Go []byte, holding the JSONPatch.
        let encoded = response["patch"]
            .as_str()
            .expect("patch is a base64 string");
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded)
            .expect("valid base64");
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("a JSONPatch");
        assert_eq!(patch.0.len(), answer.patch_operations);
    }

    /// The answer is written by hand; it must be the JSON serde would write for the same
    /// fields, for every kind of answer (uid with characters to escape, denial, warnings).
    #[test]
    fn the_hand_written_answer_is_the_json_of_its_fields() {
        let patch = br#"[{"op":"add","path":"/spec/x","value":1}]"#.to_vec();
        let cases = [
            ReviewResponse {
                uid: "plain-uid",
                allowed: true,
                status: None,
                patch: None,
                warnings: Vec::new(),
            },
            ReviewResponse {
                uid: "quote\"back\\slash\u{1}",
                allowed: true,
                status: None,
                patch: Some(patch.clone()),
                warnings: vec!["first \"warning\"".into(), "second".into()],
            },
            ReviewResponse {
                uid: "denied",
                allowed: false,
                status: Some(DenialStatus {
                    status: "Failure",
                    code: 400,
                    reason: "BadRequest",
                    message: "drain.io/delay: \"ten\" is not a duration".into(),
                }),
                patch: None,
                warnings: Vec::new(),
            },
        ];
        for case in cases {
            let written: Value = serde_json::from_slice(&case.to_review_json().unwrap())
                .expect("the answer is JSON");
            let mut response = serde_json::json!({"uid": case.uid, "allowed": case.allowed});
            if let Some(status) = &case.status {
                response["status"] = serde_json::to_value(status).unwrap();
            }
            if let Some(patch) = &case.patch {
                response["patchType"] = "JSONPatch".into();
                response["patch"] = BASE64.encode(patch).into();
            }
            if !case.warnings.is_empty() {
                response["warnings"] = serde_json::to_value(&case.warnings).unwrap();
            }
            let expected = serde_json::json!({
                "apiVersion": API_VERSION,
                "kind": KIND,
                "response": response,
            });
            assert_eq!(written, expected);
        }
    }

    /// The one-pass read and the step-by-step read give the same request for every review
    /// fixture, and the step-by-step read still takes a valid envelope the fast one does not.
    #[test]
    fn the_one_pass_read_agrees_with_the_diagnosing_read() {
        let dir = format!("{}/tests/data/reviews", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(&dir).unwrap() {
            let body = std::fs::read(entry.unwrap().path()).unwrap();
            let fast = parse(&body)
                .map(|r| format!("{r:?}"))
                .map_err(|e| e.to_string());
            let slow = parse_diagnosing(&body)
                .map(|r| format!("{r:?}"))
                .map_err(|e| e.to_string());
            assert_eq!(fast, slow);
        }
        let escaped = br#"{"apiVersion":"admission.k8s.io\/v1","kind":"AdmissionReview",
            "request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},
            "operation":"CREATE","object":{"metadata":{"name":"p"}}}}"#;
        assert!(serde_json::from_slice::<ReviewOnePass<'_>>(escaped).is_err());
        let request = parse(escaped).expect("an escaped apiVersion is still v1");
        assert_eq!(request.uid, "u1");
    }

    #[test]
    fn a_pod_the_planner_cannot_read_is_an_internal_error() {
        let mut review: Value =
            serde_json::from_slice(&fixture("pod-create-nginx-app.json")).unwrap();
        review["request"]["object"]["spec"]["containers"] = "not a list".into();
        let answer = Reviewer::for_tests().review(&serde_json::to_vec(&review).unwrap());
        assert_eq!(answer.status, 500);
        assert_eq!(answer.outcome, ReviewOutcome::Error);
        assert_eq!(answer.operation, Some(Operation::Create));
        assert!(!String::from_utf8_lossy(&answer.body).contains("not a list"));
    }
}
