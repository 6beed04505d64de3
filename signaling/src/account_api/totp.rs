//! The TOTP second factor's REST endpoints (docs/accounts.md, "Second
//! factor"): the code step of login, enrolment by the signed-in user, and
//! the admin reset. The rules live in [`crate::auth::totp`].

use std::net::IpAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use protocol::ClinicianId;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::http::{ApiError, ClientIp};
use super::{ApiState, session_reply};
use crate::audit::{AuditAction, AuditEvent};
use crate::auth::totp::{DIGITS, STEP_SECS, TICKET_TTL};

/// The routes, merged into the account API's router.
pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/login/totp", post(login_totp))
        .route("/api/me/totp", post(start_enrolment))
        .route("/api/me/totp/confirm", post(confirm_enrolment))
        .route("/api/admin/clinicians/{id}/totp/reset", post(reset))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `401 totp_required` with the ticket for `POST /api/login/totp`.
pub(super) fn code_required(ticket: &str) -> Response {
    let body = json!({
        "error": {
            "code": "totp_required",
            "message": "enter the 6-digit code from your authenticator app",
        },
        "ticket": ticket,
        "ticket_expires_in_secs": TICKET_TTL.as_secs(),
    });
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeStep {
    ticket: String,
    code: String,
}

async fn login_totp(
    State(st): State<ApiState>,
    ClientIp(ip): ClientIp,
    body: Result<Json<CodeStep>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let (token, info) =
        st.auth
            .login_totp(&body.ticket, &body.code, ip, Instant::now(), unix_now())?;
    Ok(session_reply(&st, token, info))
}

#[derive(Serialize)]
struct EnrolmentReply {
    secret: String,
    otpauth_uri: String,
    digits: u8,
    period_secs: u64,
    algorithm: &'static str,
}

async fn start_enrolment(
    State(st): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<EnrolmentReply>, ApiError> {
    let s = st.session(&headers)?;
    let e = st.auth.start_totp_enrolment(&s, Instant::now())?;
    Ok(Json(EnrolmentReply {
        secret: e.secret_base32,
        otpauth_uri: e.otpauth_uri,
        digits: DIGITS,
        period_secs: STEP_SECS,
        algorithm: "SHA1",
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    code: String,
}

async fn confirm_enrolment(
    State(st): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<ConfirmBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let s = st.session(&headers)?;
    let Json(body) = body?;
    st.auth
        .confirm_totp(&s, &body.code, unix_now(), Instant::now())?;
    Ok(Json(json!({ "totp_enabled": true })))
}

async fn reset(
    State(st): State<ApiState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let admin = st.admin(&headers)?;
    let id = ClinicianId::new(&id).map_err(|_| ApiError::not_found())?;
    let same_org = st
        .directory
        .clinician(&id)
        .is_some_and(|c| c.tenant == admin.tenant);
    if !same_org {
        return Err(ApiError::not_found());
    }
    let was_enabled = st.auth.reset_totp(&id);
    record_reset(&st, &admin.clinician, &admin.tenant, &id, ip, was_enabled);
    Ok(Json(json!({ "id": id, "totp_enabled": false })))
}

fn record_reset(
    st: &ApiState,
    admin: &ClinicianId,
    tenant: &protocol::TenantId,
    target: &ClinicianId,
    ip: IpAddr,
    was_enabled: bool,
) {
    st.audit.record(
        AuditEvent::new(AuditAction::TotpReset)
            .actor(admin.clone())
            .tenant(tenant.clone())
            .target_clinician(target.clone())
            .source(ip)
            .detail(if was_enabled {
                "was_enabled"
            } else {
                "was_not_enabled"
            }),
    );
}
