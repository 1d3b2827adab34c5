//! The one entry point of the planning engine: a Pod (or pod template) as JSON in, the plan,
//! the JSONPatch that carries it out (the plan holds the warnings) out. The admission server
//! ([`read_pod`] then [`mutate_shape`]) and the offline CLI ([`mutate_pod`]) both come through
//! here, so both get the same work bounds (`limits`) before planning.

use serde::Deserialize;

use crate::limits::{LimitError, check_pod};
use crate::patch;
use crate::plan::{Plan, PlanError, plan_pod};
use crate::pod::PodShape;

pub use crate::plan::PodContext;

/// The outcome for one pod. An empty `patch` means the pod is left as it is.
#[derive(Debug, Clone)]
pub struct Mutation {
    pub plan: Plan,
    pub patch: crate::patch::PodPatch,
}

/// Why a pod could not be mutated.
#[derive(Debug, thiserror::Error)]
pub enum MutateError {
    /// The user's input is wrong (bad annotation, grace above the maximum): deny with this
    /// message, which names the annotation and a valid example.
    #[error(transparent)]
    Denied(#[from] Denial),
    /// A fault of ours (or an object the API server would never send): an internal error, so
    /// the API server applies the webhook's failurePolicy.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a pod is denied: its input asks for something wrong, or for more work than one review
/// may do.
#[derive(Debug, thiserror::Error)]
pub enum Denial {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Limit(#[from] LimitError),
}

impl From<PlanError> for MutateError {
    fn from(err: PlanError) -> Self {
        MutateError::Denied(err.into())
    }
}

/// Plans `pod` (a Pod, or a pod template: anything with `metadata` and `spec`) and builds the
/// patch that carries the plan out.
pub fn mutate_pod(pod: &serde_json::Value, ctx: &PodContext<'_>) -> Result<Mutation, MutateError> {
    let shape: PodShape = Deserialize::deserialize(pod).map_err(unreadable)?;
    mutate_shape(&shape, ctx)
}

/// Reads a pod's JSON text into the shape [`mutate_shape`] plans from: the admission server
/// reads the object straight from the request body, without an intermediate `Value`.
pub fn read_pod(pod: &str) -> Result<PodShape, MutateError> {
    serde_json::from_str(pod).map_err(unreadable)
}

/// [`mutate_pod`] on an already decoded pod: bounds the work first (a pod past a bound is
/// denied before planning), then plans and builds the patch.
pub fn mutate_shape(shape: &PodShape, ctx: &PodContext<'_>) -> Result<Mutation, MutateError> {
    check_pod(shape, ctx.namespace_annotations).map_err(Denial::from)?;
    let plan = plan_pod(shape, ctx)?;
    let patch = patch::build(shape, &plan, &ctx.settings.helper);
    Ok(Mutation { plan, patch })
}

/// The API server never sends a pod that does not decode, so this is our fault (or, offline,
/// a file that is not a pod).
fn unreadable(err: serde_json::Error) -> MutateError {
    MutateError::Internal(format!("the object does not read as a pod: {err}"))
}
