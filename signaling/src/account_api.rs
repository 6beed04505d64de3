//! The account REST API (JSON): login, logout, `me`, and the admin endpoints
//! that list, create, disable and enable the accounts of the admin's own
//! organisation. Described in `docs/accounts.md`.
//!
//! Requests authenticate with `Authorization: Bearer <token>` or the
//! `anteroom_session` cookie (HttpOnly, SameSite=Strict). Argon2 work runs on
//! the blocking pool, at most a few at a time so a login flood cannot
//! exhaust memory (19 MiB each). Every response carries `Cache-Control: no-store`.

pub(crate) mod http;
mod rooms;
mod totp;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use protocol::{ClinicianId, RoomId, TenantId};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::audit::{Audit, AuditAction, AuditEvent};
use crate::auth::{Auth, AuthError, SessionInfo, StaffRole, check_password_policy};
use crate::directory::{
    ClinicianInfo, Directory, NewClinician, normalize_username, validate_display_name,
    validate_username,
};
use http::{ApiError, ClientIp, clear_cookie, request_token, session_cookie};
pub use http::{SECURE_SESSION_COOKIE, SESSION_COOKIE, is_session_cookie};

/// Largest accepted request body.
const BODY_LIMIT: usize = 16 * 1024;

/// Options of the account API.
#[derive(Clone, Debug, Default)]
pub struct ApiOptions {
    /// Add `Secure` to the session cookie (set it when served over HTTPS).
    pub secure_cookie: bool,
}

#[derive(Clone)]
struct ApiState {
    auth: Arc<Auth>,
    directory: Arc<Directory>,
    audit: Audit,
    options: ApiOptions,
    hashing: Arc<Semaphore>,
}

/// The account API with default [`ApiOptions`], ready to merge.
pub fn router(auth: Arc<Auth>, directory: Arc<Directory>, audit: Audit) -> Router {
    router_with(auth, directory, audit, ApiOptions::default())
}

/// The account API, ready to merge. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so throttling sees
/// client addresses.
pub fn router_with(
    auth: Arc<Auth>,
    directory: Arc<Directory>,
    audit: Audit,
    options: ApiOptions,
) -> Router {
    let parallel = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let state = ApiState {
        auth,
        directory,
        audit,
        options,
        hashing: Arc::new(Semaphore::new(parallel * 2)),
    };
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route(
            "/api/admin/clinicians",
            get(list_clinicians).post(create_clinician),
        )
        .route(
            "/api/admin/clinicians/{id}/disable",
            post(disable_clinician),
        )
        .route("/api/admin/clinicians/{id}/enable", post(enable_clinician))
        .merge(rooms::routes())
        .merge(totp::routes())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::map_response(no_store))
        .with_state(state)
}

async fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

impl ApiState {
    /// Runs Argon2 work on the blocking pool, a bounded number at a time.
    async fn hashing<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| ApiError::internal())?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| ApiError::internal())
    }

    fn session(&self, headers: &HeaderMap) -> Result<SessionInfo, ApiError> {
        let token = request_token(headers).ok_or_else(ApiError::unauthenticated)?;
        self.auth
            .check_session(&token, Instant::now())?
            .ok_or_else(ApiError::unauthenticated)
    }

    fn admin(&self, headers: &HeaderMap) -> Result<SessionInfo, ApiError> {
        let s = self.session(headers)?;
        if s.role == StaffRole::Admin {
            Ok(s)
        } else {
            Err(ApiError::forbidden())
        }
    }
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct LoginReply {
    token: String,
    /// Send back as `X-CSRF-Token` on cookie-authenticated writes ([`crate::csrf`]).
    csrf_token: String,
    clinician: ClinicianId,
    tenant: TenantId,
    role: StaffRole,
    display_name: String,
    idle_timeout_secs: u64,
}

async fn login(
    State(st): State<ApiState>,
    ClientIp(ip): ClientIp,
    body: Result<Json<LoginBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let auth = st.auth.clone();
    let result = st
        .hashing(move || auth.login(&body.username, &body.password, ip, Instant::now()))
        .await?;
    match result {
        Ok((token, info)) => Ok(session_reply(&st, token, info)),
        Err(AuthError::TotpRequired { ticket }) => Ok(totp::code_required(ticket.expose())),
        Err(e) => Err(e.into()),
    }
}

/// The reply to a completed login: the session token (also as the cookie)
/// and who it belongs to.
fn session_reply(st: &ApiState, token: String, info: SessionInfo) -> Response {
    let settings = st.auth.settings();
    let cookie = session_cookie(&token, settings.max_age.as_secs(), st.options.secure_cookie);
    let reply = LoginReply {
        csrf_token: crate::csrf::token_for(&token),
        token,
        clinician: info.clinician,
        tenant: info.tenant,
        role: info.role,
        display_name: info.display_name,
        idle_timeout_secs: settings.idle.as_secs(),
    };
    let mut res = Json(reply).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res
}

async fn logout(
    State(st): State<ApiState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = request_token(&headers).ok_or_else(ApiError::unauthenticated)?;
    st.auth.try_logout_from(&token, Some(ip))?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&clear_cookie(st.options.secure_cookie)) {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    Ok(res)
}

#[derive(Serialize)]
struct RoomSummary {
    id: RoomId,
    name: String,
    hide_position: bool,
}

#[derive(Serialize)]
struct MeReply {
    clinician: ClinicianId,
    tenant: TenantId,
    tenant_name: String,
    role: StaffRole,
    display_name: String,
    idle_timeout_secs: u64,
    rooms: Vec<RoomSummary>,
    /// The session's CSRF token ([`crate::csrf`]).
    csrf_token: String,
    /// Whether the account has a TOTP second factor.
    totp_enabled: bool,
}

async fn me(State(st): State<ApiState>, headers: HeaderMap) -> Result<Json<MeReply>, ApiError> {
    let s = st.session(&headers)?;
    let csrf_token = request_token(&headers)
        .map(|t| crate::csrf::token_for(&t))
        .unwrap_or_default();
    let totp_enabled = st.auth.totp_enabled(&s.clinician);
    let rooms = st
        .directory
        .rooms_of(&s.tenant)
        .into_iter()
        .map(|r| RoomSummary {
            id: r.id,
            name: r.name,
            hide_position: r.hide_position,
        })
        .collect();
    Ok(Json(MeReply {
        tenant_name: st
            .directory
            .tenant(&s.tenant)
            .map(|t| t.name)
            .unwrap_or_default(),
        clinician: s.clinician,
        tenant: s.tenant,
        role: s.role,
        display_name: s.display_name,
        idle_timeout_secs: st.auth.settings().idle.as_secs(),
        rooms,
        csrf_token,
        totp_enabled,
    }))
}

#[derive(Serialize)]
struct ClinicianList {
    clinicians: Vec<AccountRow>,
}

/// An account as the admin list shows it.
#[derive(Serialize)]
struct AccountRow {
    #[serde(flatten)]
    info: ClinicianInfo,
    /// Whether it has a TOTP second factor (an admin may reset it).
    totp_enabled: bool,
}

async fn list_clinicians(
    State(st): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<ClinicianList>, ApiError> {
    let admin = st.admin(&headers)?;
    let clinicians = st
        .directory
        .clinicians_of(&admin.tenant)
        .into_iter()
        .map(|info| AccountRow {
            totp_enabled: st.auth.totp_enabled(&info.id),
            info,
        })
        .collect();
    Ok(Json(ClinicianList { clinicians }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    username: String,
    display_name: String,
    password: String,
    #[serde(default = "clinician_role")]
    role: StaffRole,
}

fn clinician_role() -> StaffRole {
    StaffRole::Clinician
}

async fn create_clinician(
    State(st): State<ApiState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let admin = st.admin(&headers)?;
    let Json(body) = body?;
    // Cheap checks first, so a bad request costs no hashing.
    let username = normalize_username(&body.username);
    validate_username(&username).map_err(AuthError::Invalid)?;
    validate_display_name(&body.display_name).map_err(AuthError::Invalid)?;
    check_password_policy(&body.password)?;
    if st.directory.login_record(&username).is_some() {
        return Err(AuthError::UsernameTaken.into());
    }
    let password = body.password;
    let password_hash = st
        .hashing(move || Auth::hash_new_password(&password))
        .await??;
    let created = st.directory.create_clinician(
        &admin.tenant,
        NewClinician {
            username,
            display_name: body.display_name,
            role: body.role,
            password_hash,
        },
    )?;
    st.audit.record(
        AuditEvent::new(AuditAction::AccountCreated)
            .actor(admin.clinician)
            .tenant(admin.tenant)
            .target_clinician(created.id.clone())
            .source(ip)
            .detail(format!("role={}", created.role.as_str())),
    );
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn disable_clinician(
    State(st): State<ApiState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ClinicianInfo>, ApiError> {
    set_enabled(&st, &headers, &id, false, ip).map(Json)
}

async fn enable_clinician(
    State(st): State<ApiState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ClinicianInfo>, ApiError> {
    set_enabled(&st, &headers, &id, true, ip).map(Json)
}

fn set_enabled(
    st: &ApiState,
    headers: &HeaderMap,
    id: &str,
    enabled: bool,
    ip: IpAddr,
) -> Result<ClinicianInfo, ApiError> {
    let admin = st.admin(headers)?;
    let id = ClinicianId::new(id).map_err(|_| ApiError::not_found())?;
    if !enabled && id == admin.clinician {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "cannot_disable_self",
            "an admin cannot disable their own account",
        ));
    }
    let info = st.directory.set_enabled(&admin.tenant, &id, enabled)?;
    st.auth
        .announce_account_enabled(&admin.tenant, &id, enabled);
    // Disabled here either way; if the shared session store failed, the
    // admin gets a 503 and retries to end the account's other sessions.
    let (action, ended) = if enabled {
        (AuditAction::AccountEnabled, Ok(0))
    } else {
        (
            AuditAction::AccountDisabled,
            st.auth.try_end_sessions_of(&id),
        )
    };
    st.audit.record(
        AuditEvent::new(action)
            .actor(admin.clinician)
            .tenant(admin.tenant)
            .target_clinician(id)
            .source(ip),
    );
    ended?;
    Ok(info)
}
