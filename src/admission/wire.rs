//! The AdmissionReview wire format: the request as read (one pass over a well-formed body,
//! a diagnosing read for a malformed one) and the answer as written (hand-written JSON with
//! the patch base64-encoded in place).

use super::*;
use crate::pod::PodShape;

use super::base64_text;

/// Why a body is not a usable AdmissionReview.
#[derive(Debug, thiserror::Error)]
pub(super) enum Malformed {
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

/// The `response` of an AdmissionReview v1 answer.
pub(super) struct ReviewResponse<'a> {
    pub(super) uid: &'a str,
    pub(super) allowed: bool,
    pub(super) status: Option<DenialStatus>,
    /// The JSONPatch as JSON text; sent base64-encoded with `patchType: JSONPatch`.
    pub(super) patch: Option<Vec<u8>>,
    pub(super) warnings: Vec<String>,
}

impl ReviewResponse<'_> {
    /// The whole AdmissionReview, written in one pass into a buffer of the right size.
    ///
    /// `patch` is a Go `[]byte`, which the API server reads as base64 (kubernetes/website#34308);
    /// kube-core's `AdmissionResponse` writes an array of numbers instead (kube-rs/kube#1781).
    /// The base64 text is encoded straight into the body: its alphabet needs no JSON escaping,
    /// so the patch is not copied into a string and scanned again (docs/benchmarks.md).
    pub(super) fn to_review_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let patch_len = self
            .patch
            .as_ref()
            .map_or(0, |patch| base64_text::encoded_len(patch.len()));
        let mut body = Vec::with_capacity(160 + self.uid.len() + patch_len);
        body.extend_from_slice(b"{\"apiVersion\":\"");
        body.extend_from_slice(API_VERSION.as_bytes());
        body.extend_from_slice(b"\",\"kind\":\"");
        body.extend_from_slice(KIND.as_bytes());
        body.extend_from_slice(b"\",\"response\":{\"uid\":");
        crate::patch::write_json_str(&mut body, self.uid);
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
            base64_text::encode_into(patch, &mut body);
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
pub(super) struct DenialStatus {
    pub(super) status: &'static str,
    pub(super) code: u16,
    pub(super) reason: &'static str,
    pub(super) message: String,
}

/// The envelope of an AdmissionReview: only what is checked before the request is read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReviewIn<'a> {
    #[serde(default)]
    pub(super) api_version: Option<Value>,
    #[serde(default)]
    pub(super) kind: Option<Value>,
    #[serde(borrow, default)]
    pub(super) request: Option<&'a RawValue>,
}

/// The fields of an AdmissionRequest the webhook reads. The object stays raw JSON until the
/// request is known to be a Pod CREATE to plan.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RequestIn<'a> {
    // Borrowed from the body unless a string holds escapes.
    #[serde(borrow)]
    pub(super) uid: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) kind: GroupVersionKindIn<'a>,
    #[serde(borrow, default)]
    pub(super) sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) namespace: Option<Cow<'a, str>>,
    pub(super) operation: Operation,
    #[serde(default)]
    pub(super) dry_run: Option<bool>,
    #[serde(borrow, default)]
    pub(super) object: Option<&'a RawValue>,
    /// The object already read as a pod, by [`PodReviewOnePass`]; `object` is then `None`.
    /// Boxed, as in [`PodRequestIn`].
    #[serde(skip)]
    pub(super) pod: Option<Box<PodShape>>,
}

/// A review read in one pass with its object read straight into the planner's shape: the
/// object of a Pod CREATE is nearly all of the body, and skipping it as raw JSON to read it
/// again later cost a seed review a twelfth of its instructions (docs/benchmarks.md). Whatever
/// this read does not take (no object, an object that is not a pod) goes through the raw
/// read, which behaves as before.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PodReviewOnePass<'a> {
    api_version: &'a str,
    kind: &'a str,
    #[serde(borrow)]
    request: PodRequestIn<'a>,
}

/// [`RequestIn`] with the object typed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodRequestIn<'a> {
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
    /// Boxed: the pod is 720 bytes, and the request is moved (copied) several times on its
    /// way out of the read; boxed, each move copies a pointer (docs/benchmarks.md).
    #[serde(default)]
    object: Option<Box<PodShape>>,
}

impl<'a> PodReviewOnePass<'a> {
    /// The request, when the envelope is v1 and the request has a uid and a pod.
    fn into_request(self) -> Option<RequestIn<'a>> {
        let request = self.request;
        let usable = self.api_version == API_VERSION && self.kind == KIND;
        if !usable || request.uid.is_empty() || request.object.is_none() {
            return None;
        }
        Some(RequestIn {
            uid: request.uid,
            kind: request.kind,
            sub_resource: request.sub_resource,
            name: request.name,
            namespace: request.namespace,
            operation: request.operation,
            dry_run: request.dry_run,
            object: None,
            pod: request.object,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct GroupVersionKindIn<'a> {
    #[serde(borrow, default)]
    pub(super) group: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) version: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) kind: Cow<'a, str>,
}

/// A well-formed AdmissionReview v1, read in one pass: the envelope and the request typed,
/// the object left raw. Whatever it does not take is read again by [`parse_diagnosing`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReviewOnePass<'a> {
    pub(super) api_version: &'a str,
    pub(super) kind: &'a str,
    #[serde(borrow)]
    pub(super) request: RequestIn<'a>,
}

/// Reads the body: the envelope and the request typed, the object left raw (`None` when there
/// is none). Performance (make bench, docs/benchmarks.md): the object is nearly all of the
/// body; a well-formed review is scanned once here and its object decoded once, later, only
/// for a Pod CREATE.
pub(super) fn parse(body: &[u8]) -> Result<RequestIn<'_>, Malformed> {
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
    // UTF-8 checked once for the whole body: read from text, serde_json does not check each
    // string and the raw object again (docs/benchmarks.md). A body that is not UTF-8 goes to
    // the diagnosing read, which names the error.
    let text = std::str::from_utf8(body).ok();
    if let Some(request) = text
        .and_then(|text| serde_json::from_str::<PodReviewOnePass<'_>>(text).ok())
        .and_then(PodReviewOnePass::into_request)
    {
        return Ok(request);
    }
    let one_pass = text.and_then(|text| serde_json::from_str::<ReviewOnePass<'_>>(text).ok());
    if let Some(review) = one_pass
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
pub(super) fn parse_diagnosing(body: &[u8]) -> Result<RequestIn<'_>, Malformed> {
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

pub(super) fn describe(value: Option<&Value>) -> String {
    match value {
        None => "nothing".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(other) => format!("a JSON {}", json_type(other)),
    }
}

pub(super) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(super) fn shorten(text: &str) -> String {
    if text.len() <= MAX_REASON_LEN {
        return text.to_string();
    }
    let mut end = MAX_REASON_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}
