//! The admin room endpoints (role `admin`, own organisation only): list,
//! create and edit waiting rooms, close and reopen them. Described in
//! `docs/accounts.md`, "Admin endpoints". Changes live in memory (like
//! account changes); see [`crate::directory::rooms`].
//!
//! Every change is audited (`room_created`, `room_updated`, `room_closed`,
//! `room_reopened`) with the admin, the organisation, the room id and the
//! source address — never names, questions or patient data. Another
//! organisation's room gets the same `404` as an unknown id.

use std::net::IpAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use protocol::RoomId;
use protocol::client::IntakeQuestion;
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::http::{ApiError, ClientIp};
use crate::audit::{AuditAction, AuditEvent};
use crate::directory::RoomKind;
use crate::directory::rooms::{RoomError, RoomSettings};

/// The room routes, merged into the account API (same state and layers).
pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/admin/rooms", get(list_rooms).post(create_room))
        .route("/api/admin/rooms/{id}", put(update_room))
        .route("/api/admin/rooms/{id}/close", post(close_room))
        .route("/api/admin/rooms/{id}/reopen", post(reopen_room))
}

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        match e {
            RoomError::NotFound => room_not_found(),
            RoomError::IdTaken => ApiError::new(
                StatusCode::CONFLICT,
                "room_id_taken",
                "a room with this id already exists",
            ),
            RoomError::Invalid(msg) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", msg)
            }
        }
    }
}

fn room_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such room")
}

/// A room as admins see it.
#[derive(Serialize)]
struct RoomView {
    id: RoomId,
    name: String,
    kind: RoomKind,
    intake: Vec<IntakeQuestion>,
    hide_position: bool,
    closed: bool,
    /// The patients' link (path only).
    link: String,
}

impl From<crate::directory::RoomInfo> for RoomView {
    fn from(r: crate::directory::RoomInfo) -> Self {
        Self {
            link: format!("/r/{}", r.id),
            id: r.id,
            name: r.name,
            kind: r.kind,
            intake: r.intake,
            hide_position: r.hide_position,
            closed: r.closed,
        }
    }
}

#[derive(Serialize)]
struct RoomList {
    rooms: Vec<RoomView>,
}

/// `POST` and `PUT` bodies. `id` only on create (optional: made from the
/// name if absent). Omitted fields take their defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomBody {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    kind: RoomKind,
    #[serde(default)]
    intake: Vec<IntakeQuestion>,
    #[serde(default)]
    hide_position: bool,
}

impl RoomBody {
    fn settings(self) -> RoomSettings {
        RoomSettings {
            name: self.name,
            kind: self.kind,
            intake: self.intake,
            hide_position: self.hide_position,
        }
    }
}

async fn list_rooms(
    State(st): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<RoomList>, ApiError> {
    let admin = st.admin(&headers)?;
    let rooms = st.directory.rooms_of(&admin.tenant);
    Ok(Json(RoomList {
        rooms: rooms.into_iter().map(RoomView::from).collect(),
    }))
}

async fn create_room(
    State(st): State<ApiState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Json<RoomBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let admin = st.admin(&headers)?;
    let Json(mut body) = body?;
    let id = match body.id.take().map(|s| s.trim().to_owned()) {
        Some(s) if !s.is_empty() => Some(RoomId::new(s).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("room id: {e}"),
            )
        })?),
        _ => None,
    };
    let room = st
        .directory
        .create_room(&admin.tenant, id, body.settings())?;
    audit(
        &st,
        AuditAction::RoomCreated,
        &admin,
        &room.id,
        ip,
        Some(room.kind),
    );
    Ok((StatusCode::CREATED, Json(RoomView::from(room))).into_response())
}

async fn update_room(
    State(st): State<ApiState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<RoomBody>, JsonRejection>,
) -> Result<Json<RoomView>, ApiError> {
    let admin = st.admin(&headers)?;
    let id = RoomId::new(id).map_err(|_| room_not_found())?;
    let Json(body) = body?;
    if body.id.as_ref().is_some_and(|b| b.trim() != id.as_str()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a room's id cannot change",
        ));
    }
    let room = st
        .directory
        .update_room(&admin.tenant, &id, body.settings())?;
    audit(
        &st,
        AuditAction::RoomUpdated,
        &admin,
        &room.id,
        ip,
        Some(room.kind),
    );
    Ok(Json(RoomView::from(room)))
}

async fn close_room(
    State(st): State<ApiState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<RoomView>, ApiError> {
    set_closed(&st, &headers, &id, true, ip).map(Json)
}

async fn reopen_room(
    State(st): State<ApiState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<RoomView>, ApiError> {
    set_closed(&st, &headers, &id, false, ip).map(Json)
}

fn set_closed(
    st: &ApiState,
    headers: &HeaderMap,
    id: &str,
    closed: bool,
    ip: IpAddr,
) -> Result<RoomView, ApiError> {
    let admin = st.admin(headers)?;
    let id = RoomId::new(id).map_err(|_| room_not_found())?;
    let room = st.directory.set_room_closed(&admin.tenant, &id, closed)?;
    let action = if closed {
        AuditAction::RoomClosed
    } else {
        AuditAction::RoomReopened
    };
    audit(st, action, &admin, &room.id, ip, None);
    Ok(RoomView::from(room))
}

/// Records a room change: ids, the source and the room kind only.
fn audit(
    st: &ApiState,
    action: AuditAction,
    admin: &crate::auth::SessionInfo,
    room: &RoomId,
    ip: IpAddr,
    kind: Option<RoomKind>,
) {
    let mut event = AuditEvent::new(action)
        .actor(admin.clinician.clone())
        .tenant(admin.tenant.clone())
        .room(room.clone())
        .source(ip);
    if let Some(kind) = kind {
        event = event.detail(match kind {
            RoomKind::Waiting => "kind=waiting",
            RoomKind::Meeting => "kind=meeting",
        });
    }
    st.audit.record(event);
}
