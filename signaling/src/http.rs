//! Plain HTTP endpoints of signaling: `/healthz` (the process answers),
//! `/readyz` (it accepts new work: the lobby runs and no shutdown started),
//! and a small index page at `/` until the web pages are served.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::ws::Shared;

/// The routes of this module.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(shared)
}

async fn index() -> Html<&'static str> {
    Html(
        "<!doctype html><meta charset=utf-8><title>Anteroom</title>\
         <h1>Anteroom signaling</h1>\
         <p>WebSocket: <code>/ws</code> (see docs/protocol.md). \
         Accounts: <code>/api/login</code>. Health: <code>/healthz</code>, <code>/readyz</code>.</p>",
    )
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
