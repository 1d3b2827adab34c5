//! The one entry point of the planning engine: a Pod (or pod template) as JSON in, the plan,
//! the JSONPatch that carries it out (the plan holds the warnings) out. The admission server and the
//! offline CLI both call [`mutate_pod`].

use serde::Deserialize;

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
    Denied(#[from] PlanError),
    /// A fault of ours (or an object the API server would never send): an internal error, so
    /// the API server applies the webhook's failurePolicy.
    #[error("internal error: {0}")]
    Internal(String),
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

/// [`mutate_pod`] on an already decoded pod.
pub fn mutate_shape(shape: &PodShape, ctx: &PodContext<'_>) -> Result<Mutation, MutateError> {
    let plan = plan_pod(shape, ctx)?;
    let patch = patch::build(shape, &plan, &ctx.settings.helper);
    Ok(Mutation { plan, patch })
}

/// The API server never sends a pod that does not decode, so this is our fault (or, offline,
/// a file that is not a pod).
fn unreadable(err: serde_json::Error) -> MutateError {
    MutateError::Internal(format!("the object does not read as a pod: {err}"))
}
