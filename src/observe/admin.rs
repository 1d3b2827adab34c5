//! `GET /drains` on the admin port: the leader's aggregates as JSON; a follower says who leads.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::server::AdminState;

pub async fn drains(State(state): State<AdminState>) -> Response {
    Json(state.metrics.observer.report()).into_response()
}
