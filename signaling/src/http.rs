//! Plain HTTP endpoints of signaling: `/healthz` (the process answers),
//! `/readyz` (it accepts new work: the lobby runs and no shutdown started),
//! and the web pages of [`crate::web`] (`/`, `/r/<room>`, `/portal`, `/admin`,
//! `/static/…`); and how a [`crate::Error`] met while serving a request
//! answers (a Redis outage is 503 with a JSON error saying so).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::ws::Shared;

/// Shown when shared state (Redis) does not answer; says nothing else.
pub const UNAVAILABLE_MESSAGE: &str =
    "the shared session store (Redis) does not answer; retry in a few seconds";

/// Retry-After (seconds) on a 503 for a Redis outage.
pub const UNAVAILABLE_RETRY_SECS: u64 = 2;

impl IntoResponse for crate::Error {
    /// `{"error": {"code", "message"}}`: 503 `unavailable` (with
    /// `Retry-After`) for a Redis outage, 500 `internal` otherwise. The
    /// error's own text stays in the log (it names the operation only).
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "request failed");
        let status = self.http_status();
        let (code, message) = if self.is_unavailable() {
            ("unavailable", UNAVAILABLE_MESSAGE)
        } else {
            ("internal", "internal error")
        };
        let body = serde_json::json!({ "error": { "code": code, "message": message } });
        let mut res = (status, axum::Json(body)).into_response();
        if self.is_unavailable() {
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(UNAVAILABLE_RETRY_SECS),
            );
        }
        res
    }
}

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
