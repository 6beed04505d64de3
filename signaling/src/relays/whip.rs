//! WHIP (RFC 9725) and WHEP on the signaling HTTP API. A standard publisher
//! `POST`s its SDP offer to `/whip/<call>` (a player to `/whep/<call>`) with
//! `Authorization: Bearer <ingest token>`; signaling places the call like any
//! other, signs a grant for the chosen relay (role `publisher` or
//! `subscriber`), forwards the offer and returns `201 Created`, the answer
//! (`application/sdp`) and a `Location` (`/whip/<call>/<participant>`).
//! `DELETE` on the Location ends the session; `PATCH` with
//! `application/trickle-ice-sdpfrag` forwards `a=candidate` lines.
//!
//! Ingest tokens are [`Grant`]s for the pseudo-node `ingest`, signed with a
//! key derived from the relay secret (so no relay accepts one directly);
//! [`RelayPool::ingest_token`] makes them. Each `POST` is a new participant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use protocol::{Grant, GrantRole, NodeId, ParticipantId, RoomId};
use sha2::{Digest, Sha256};

use super::pool::unix_now;
use super::{RelayCallError, RelayPool};

/// Largest accepted SDP body, in bytes.
pub const MAX_SDP_BYTES: usize = 64 * 1024;

/// Default lifetime of an ingest token.
pub const INGEST_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The node id ingest tokens name (no relay may use it).
const INGEST_NODE: &str = "ingest";

/// Open WHIP/WHEP sessions: which relay each one's participant is on.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<(RoomId, ParticipantId), NodeId>>,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<(RoomId, ParticipantId), NodeId>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets a session whose participant left on the relay.
    pub(super) fn left(&self, call: &RoomId, participant: &ParticipantId) {
        self.lock().remove(&(call.clone(), participant.clone()));
    }

    /// Whether `participant` of `call` is a WHIP/WHEP session.
    pub fn contains(&self, call: &RoomId, participant: &ParticipantId) -> bool {
        self.lock()
            .contains_key(&(call.clone(), participant.clone()))
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn ingest_node() -> NodeId {
    NodeId::new(INGEST_NODE).unwrap_or_else(|_| NodeId::random())
}

/// The key ingest tokens are signed with, derived from the relay secret:
/// `SHA-256("anteroom-ingest-token\n" || secret)`.
fn ingest_key(relay_secret: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"anteroom-ingest-token\n");
    h.update(relay_secret);
    h.finalize().to_vec()
}

/// An ingest token for `call` and `role`, expiring at `exp_unix`, made
/// with the relay secret directly (for tools and tests that hold it; the
/// server uses [`RelayPool::ingest_token`]).
pub fn mint_ingest_token(
    relay_secret: &[u8],
    call: &RoomId,
    role: GrantRole,
    exp_unix: u64,
) -> String {
    Grant {
        room: call.clone(),
        participant: ParticipantId::random(),
        role,
        node: ingest_node(),
        exp: exp_unix,
    }
    .sign(&ingest_key(relay_secret))
}

impl RelayPool {
    fn ingest_key(&self) -> Vec<u8> {
        ingest_key(self.settings.secret.expose())
    }

    /// A bearer token for WHIP (`role` [`GrantRole::Publisher`]) or WHEP
    /// ([`GrantRole::Subscriber`]) into `call`, valid for `ttl`.
    pub fn ingest_token(&self, call: &RoomId, role: GrantRole, ttl: Duration) -> String {
        let exp = unix_now().saturating_add(ttl.as_secs());
        mint_ingest_token(self.settings.secret.expose(), call, role, exp)
    }

    /// Open WHIP/WHEP sessions.
    pub fn ingest_sessions(&self) -> &Sessions {
        &self.whip
    }

    /// Checks a bearer token for `call` and `role`.
    fn check_token(&self, headers: &HeaderMap, call: &RoomId, role: GrantRole) -> bool {
        let Some(token) = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        Grant::verify(token.trim(), &self.ingest_key(), &ingest_node(), unix_now())
            .is_ok_and(|g| &g.room == call && g.role == role)
    }
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (
        status,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(WWW_AUTHENTICATE, "Bearer")],
        "a valid bearer token for this call is required\n",
    )
        .into_response()
}

fn has_content_type(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

/// Which endpoint: WHIP publishes, WHEP plays.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Whip,
    Whep,
}

impl Kind {
    fn role(self) -> GrantRole {
        match self {
            Self::Whip => GrantRole::Publisher,
            Self::Whep => GrantRole::Subscriber,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Whip => "whip",
            Self::Whep => "whep",
        }
    }
}

async fn create(
    pool: &RelayPool,
    kind: Kind,
    call: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let Ok(call) = RoomId::new(call) else {
        return plain(StatusCode::NOT_FOUND, "no such call\n");
    };
    if !pool.check_token(headers, &call, kind.role()) {
        return unauthorized();
    }
    if !has_content_type(headers, "application/sdp") {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/sdp\n",
        );
    }
    let Ok(offer) = std::str::from_utf8(body) else {
        return plain(StatusCode::BAD_REQUEST, "the SDP offer is not UTF-8\n");
    };
    let Ok(node) = pool.place(&call, None) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(RETRY_AFTER, "2")],
            "no relay is available\n",
        )
            .into_response();
    };
    let participant = ParticipantId::random();
    let grant = pool.grant(&call, &participant, kind.role(), &node);
    match pool.offer(&node, grant, offer.to_owned()).await {
        Ok(answer) => {
            pool.whip
                .lock()
                .insert((call.clone(), participant.clone()), node.clone());
            tracing::info!(%call, %participant, %node, kind = kind.prefix(), "ingest session started");
            let location = format!("/{}/{call}/{participant}", kind.prefix());
            (
                StatusCode::CREATED,
                [
                    (CONTENT_TYPE, "application/sdp".to_owned()),
                    (LOCATION, location),
                ],
                answer,
            )
                .into_response()
        }
        Err(RelayCallError::Refused(reason)) => {
            tracing::info!(%call, %node, "ingest offer refused by the relay");
            (
                StatusCode::BAD_REQUEST,
                format!("the relay refused the offer: {reason}\n"),
            )
                .into_response()
        }
        Err(RelayCallError::RelayGone) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the relay went away; retry\n",
        ),
        Err(RelayCallError::Timeout) => plain(
            StatusCode::GATEWAY_TIMEOUT,
            "the relay did not answer in time\n",
        ),
    }
}

/// The session a `DELETE`/`PATCH` addresses, if the token allows it.
fn session(
    pool: &RelayPool,
    kind: Kind,
    call: &str,
    participant: &str,
    headers: &HeaderMap,
) -> Result<(RoomId, ParticipantId, NodeId), Box<Response>> {
    let (Ok(call), Ok(participant)) = (RoomId::new(call), ParticipantId::new(participant)) else {
        return Err(Box::new(plain(StatusCode::NOT_FOUND, "no such session\n")));
    };
    if !pool.check_token(headers, &call, kind.role()) {
        return Err(Box::new(unauthorized()));
    }
    let node = pool
        .whip
        .lock()
        .get(&(call.clone(), participant.clone()))
        .cloned();
    match node {
        Some(node) => Ok((call, participant, node)),
        None => Err(Box::new(plain(StatusCode::NOT_FOUND, "no such session\n"))),
    }
}

fn end(
    pool: &RelayPool,
    kind: Kind,
    call: &str,
    participant: &str,
    headers: &HeaderMap,
) -> Response {
    match session(pool, kind, call, participant, headers) {
        Ok((call, participant, node)) => {
            pool.whip
                .lock()
                .remove(&(call.clone(), participant.clone()));
            pool.kick(&node, &call, &participant);
            tracing::info!(%call, %participant, %node, "ingest session ended");
            StatusCode::OK.into_response()
        }
        Err(response) => *response,
    }
}

fn trickle(
    pool: &RelayPool,
    kind: Kind,
    call: &str,
    participant: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let (call, participant, node) = match session(pool, kind, call, participant, headers) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    if !has_content_type(headers, "application/trickle-ice-sdpfrag") {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/trickle-ice-sdpfrag\n",
        );
    }
    let Ok(frag) = std::str::from_utf8(body) else {
        return plain(StatusCode::BAD_REQUEST, "the fragment is not UTF-8\n");
    };
    for line in frag.lines() {
        if let Some(candidate) = line.trim().strip_prefix("a=")
            && candidate.starts_with("candidate:")
        {
            pool.candidate(&node, &call, &participant, candidate.to_owned());
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// The routes: `POST /whip/{call}`, `DELETE|PATCH /whip/{call}/{participant}`
/// and the same under `/whep`.
pub fn router(pool: Arc<RelayPool>) -> Router {
    let mut router = Router::new();
    for kind in [Kind::Whip, Kind::Whep] {
        let prefix = kind.prefix();
        router = router
            .route(
                &format!("/{prefix}/{{call}}"),
                post(
                    move |State(pool): State<Arc<RelayPool>>,
                          Path(call): Path<String>,
                          headers: HeaderMap,
                          body: Bytes| async move {
                        create(&pool, kind, &call, &headers, &body).await
                    },
                ),
            )
            .route(
                &format!("/{prefix}/{{call}}/{{participant}}"),
                patch(
                    move |State(pool): State<Arc<RelayPool>>,
                          Path((call, participant)): Path<(String, String)>,
                          headers: HeaderMap,
                          body: Bytes| async move {
                        trickle(&pool, kind, &call, &participant, &headers, &body)
                    },
                )
                .delete(
                    move |State(pool): State<Arc<RelayPool>>,
                          Path((call, participant)): Path<(String, String)>,
                          headers: HeaderMap| async move {
                        end(&pool, kind, &call, &participant, &headers)
                    },
                ),
            );
    }
    router
        .layer(DefaultBodyLimit::max(MAX_SDP_BYTES))
        .with_state(pool)
}
