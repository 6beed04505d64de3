//! Plain HTTP endpoints of signaling: `/healthz` (the process answers),
//! `/readyz` (it accepts new work: the lobby runs and no shutdown started),
//! and the web pages of [`crate::web`] (`/`, `/r/<room>`, `/portal`, `/admin`,
//! `/static/…`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::ws::Shared;

/// The routes of this module.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(shared)
        .merge(crate::web::router())
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if *shared.shutdown.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else if !shared.lobby.is_alive() {
        (StatusCode::SERVICE_UNAVAILABLE, "lobby stopped\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}
