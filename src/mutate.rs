//! The one entry point of the planning engine: a Pod (or pod template) as JSON in, the plan,
//! the JSONPatch that carries it out and the warnings out. The admission server and the
//! offline CLI both call [`mutate_pod`].
