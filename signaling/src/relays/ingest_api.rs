//! `POST /api/calls/<call>/ingest`: a clinician asks for a WHIP (publisher)
//! or WHEP (subscriber) bearer token for one of their calls.
//!
//! Authentication is the account API's: the session token as
//! `Authorization: Bearer` or the session cookie, a JSON body (so a
//! cross-site form cannot post it), and a cookie-authenticated request whose
//! `Origin` names another host is refused. Only a clinician of the call's
//! organisation who is in the call, or an admin of that organisation, gets a
//! token; another organisation's call answers exactly like an unknown one
//! (`404`). Every issued token is audited (`ingest_token_issued`: actor,
//! organisation, waiting room, call id and role; never the token).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router, middleware};
use protocol::{GrantRole, RoomId};
use serde::{Deserialize, Serialize};

use super::RelayPool;
use crate::account_api::http::{ApiError, ClientIp, request_token};
use crate::audit::{Audit, AuditAction, AuditEvent};
use crate::auth::{SessionInfo, StaffRole};
use crate::ws::Shared;

/// Token lifetime when the request names none.
pub const DEFAULT_TTL_SECS: u64 = 900;

/// Longest token lifetime a request may ask for (one day).
pub const MAX_TTL_SECS: u64 = 86_400;

/// Largest accepted request body.
const BODY_LIMIT: usize = 4 * 1024;

#[derive(Clone)]
struct IngestState {
    shared: Arc<Shared>,
    pool: Arc<RelayPool>,
    audit: Audit,
}

/// What the token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum IngestRole {
    /// WHIP: publish into the call.
    Publisher,
    /// WHEP: watch the call.
    Subscriber,
}

impl IngestRole {
    fn grant_role(self) -> GrantRole {
        match self {
            Self::Publisher => GrantRole::Publisher,
            Self::Subscriber => GrantRole::Subscriber,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Publisher => "publisher",
            Self::Subscriber => "subscriber",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestBody {
    role: IngestRole,
    ttl_secs: Option<u64>,
}

#[derive(Serialize)]
struct IngestReply {
    token: String,
    role: IngestRole,
    whip_url: String,
    whep_url: String,
    expires_in_secs: u64,
}

/// The route `POST /api/calls/{call}/ingest`, ready to merge. `shared`
/// gives the sessions, the clock and the lobby (which knows the calls).
pub fn router(shared: &Arc<Shared>, pool: &Arc<RelayPool>, audit: &Audit) -> Router {
    let state = IngestState {
        shared: shared.clone(),
        pool: pool.clone(),
        audit: audit.clone(),
    };
    Router::new()
        .route("/api/calls/{call}/ingest", post(issue))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::map_response(no_store))
        .with_state(state)
}

async fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn unknown_call() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such call")
}

fn bad_request(message: &'static str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

impl IngestState {
    fn session(&self, headers: &HeaderMap) -> Result<SessionInfo, ApiError> {
        let token = request_token(headers).ok_or_else(ApiError::unauthenticated)?;
        if !headers.contains_key(AUTHORIZATION) && !crate::csrf::same_origin(headers) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_origin",
                "a cookie session only works from this site's own pages",
            ));
        }
        self.shared
            .auth
            .check_session(&token, self.shared.clock.now())?
            .ok_or_else(ApiError::unauthenticated)
    }
}

async fn issue(
    State(st): State<IngestState>,
    ClientIp(ip): ClientIp,
    Path(call): Path<String>,
    headers: HeaderMap,
    body: Result<Json<IngestBody>, JsonRejection>,
) -> Result<Json<IngestReply>, ApiError> {
    let session = st.session(&headers)?;
    let Json(body) = body?;
    let ttl_secs = body.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if ttl_secs == 0 || ttl_secs > MAX_TTL_SECS {
        return Err(bad_request("ttl_secs must be between 1 and 86400"));
    }
    let call = RoomId::new(&call).map_err(|_| unknown_call())?;
    let summary = st
        .shared
        .lobby
        .call_summary(&call)
        .await
        .filter(|s| s.tenant == session.tenant)
        .ok_or_else(unknown_call)?;
    let in_call = summary.clinicians.contains(&session.clinician);
    if !in_call && session.role != StaffRole::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only a clinician in this call or an admin may do this",
        ));
    }
    let token = st
        .pool
        .ingest_token(&call, body.role.grant_role(), Duration::from_secs(ttl_secs));
    record(&st.audit, &session, &summary.room, &call, body.role, ip);
    tracing::info!(%call, clinician = %session.clinician, role = body.role.as_str(), "ingest token issued");
    Ok(Json(IngestReply {
        token,
        role: body.role,
        whip_url: format!("/whip/{call}"),
        whep_url: format!("/whep/{call}"),
        expires_in_secs: ttl_secs,
    }))
}

fn record(
    audit: &Audit,
    session: &SessionInfo,
    room: &RoomId,
    call: &RoomId,
    role: IngestRole,
    ip: IpAddr,
) {
    audit.record(
        AuditEvent::new(AuditAction::IngestTokenIssued)
            .actor(session.clinician.clone())
            .tenant(session.tenant.clone())
            .room(room.clone())
            .source(ip)
            .detail(format!("call={call} role={}", role.as_str())),
    );
}
