//! A small OpenID Connect provider on 127.0.0.1 for the `auth_oidc*` tests:
//! discovery, an authorization endpoint that signs the user in at once and
//! redirects back with a code, a token endpoint that checks the client
//! secret, the redirect URI and the PKCE verifier (S256), and a JWKS with an
//! ECDSA P-256 key generated at start. [`Knobs`] make it misbehave.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;

/// What the next ID tokens say, and how they are signed.
#[derive(Clone, Debug)]
pub struct Knobs {
    /// `sub`.
    pub sub: String,
    /// `tid`.
    pub tid: String,
    /// `aud`; `None`: the client id.
    pub aud: Option<String>,
    /// Seconds added to now for `exp`.
    pub exp_in: i64,
    /// Sign with a key that is not in the JWKS (same `kid`).
    pub rogue_key: bool,
    /// Sign with the RSA key (RS256, as Entra ID does) instead of P-256.
    pub rsa: bool,
    /// `iss`; `None`: the provider's issuer.
    pub iss: Option<String>,
    /// `nonce`; `None`: the one of the authorization request.
    pub nonce: Option<String>,
    /// `name` (personal data: must never reach logs).
    pub name: String,
    /// `email` (personal data: must never reach logs).
    pub email: String,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            sub: "sub-lee".into(),
            tid: "tid-north".into(),
            aud: None,
            exp_in: 600,
            rogue_key: false,
            rsa: false,
            iss: None,
            nonce: None,
            name: "Leonora Quillfeather-Clinician".into(),
            email: "leonora.quillfeather@north.example".into(),
        }
    }
}

struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: String,
}

#[derive(Default)]
struct Inner {
    knobs: Knobs,
    grants: HashMap<String, Grant>,
    /// Every code and ID token issued, and every secret seen (for log checks).
    issued: Vec<String>,
    /// Why token requests were refused.
    refusals: Vec<String>,
}

struct Shared {
    base: String,
    /// client id -> secret (`None`: public client, PKCE only).
    clients: HashMap<String, Option<String>>,
    key: EncodingKey,
    rogue: EncodingKey,
    rsa: EncodingKey,
    jwks: Value,
    inner: Mutex<Inner>,
}

/// A running provider.
#[derive(Clone)]
pub struct Idp {
    shared: Arc<Shared>,
    /// Its address.
    pub addr: SocketAddr,
}

fn es256_key() -> (EncodingKey, Value) {
    let kp = rcgen::KeyPair::generate().expect("P-256 key");
    let raw = kp.public_key_raw();
    assert_eq!(raw.len(), 65, "uncompressed P-256 point");
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "key-1",
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
    });
    (EncodingKey::from_ec_der(&kp.serialize_der()), jwk)
}

/// RSA key generation is slow unoptimised: one key per test binary.
static RSA: std::sync::OnceLock<(EncodingKey, Value)> = std::sync::OnceLock::new();

/// The content of a DER TLV at the start of `der` and what follows it.
fn der_tlv(der: &[u8]) -> (&[u8], &[u8]) {
    let (len, head) = match der[1] {
        n if n < 0x80 => (usize::from(n), 2),
        n => {
            let k = usize::from(n & 0x7f);
            let len = der[2..2 + k]
                .iter()
                .fold(0, |a, b| a << 8 | usize::from(*b));
            (len, 2 + k)
        }
    };
    (&der[head..head + len], &der[head + len..])
}

/// An RSA-2048 key (RS256, kid `key-rsa`). rcgen makes PKCS#8; the JWT
/// crate signs with the PKCS#1 key inside it.
fn rs256_key() -> (EncodingKey, Value) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
    let pkcs8 = kp.serialize_der();
    // PrivateKeyInfo ::= SEQUENCE { version INTEGER, algorithm SEQUENCE, privateKey OCTET STRING }
    let (info, _) = der_tlv(&pkcs8);
    let (_, rest) = der_tlv(info);
    let (_, rest) = der_tlv(rest);
    let (pkcs1, _) = der_tlv(rest);
    let key = EncodingKey::from_rsa_der(pkcs1);
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("key-rsa".to_owned());
    (key, serde_json::to_value(jwk).unwrap())
}

impl Idp {
    /// Starts a provider knowing `clients` (id, optional secret), named
    /// `http://<host>:<port>` (`host`: `127.0.0.1`, or `localhost` to be
    /// another site than a server on 127.0.0.1, as a real provider is).
    pub async fn start(host: &str, clients: &[(&str, Option<&str>)]) -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (key, jwk) = es256_key();
        let (rogue, _) = es256_key();
        let (rsa, rsa_jwk) = RSA.get_or_init(rs256_key).clone();
        let shared = Arc::new(Shared {
            base: format!("http://{host}:{}", addr.port()),
            clients: clients
                .iter()
                .map(|(id, s)| ((*id).to_owned(), s.map(str::to_owned)))
                .collect(),
            key,
            rogue,
            rsa,
            jwks: json!({ "keys": [jwk, rsa_jwk] }),
            inner: Mutex::new(Inner::default()),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Idp { shared, addr }
    }

    /// The issuer URL.
    pub fn issuer(&self) -> String {
        self.shared.base.clone()
    }

    /// Changes what the next tokens say.
    pub fn set(&self, f: impl FnOnce(&mut Knobs)) {
        f(&mut self.shared.inner.lock().unwrap().knobs);
    }

    /// Every code and ID token issued so far.
    pub fn issued(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().issued.clone()
    }

    /// Why the token endpoint refused requests so far.
    pub fn refusals(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().refusals.clone()
    }
}

async fn discovery(State(s): State<Arc<Shared>>) -> Json<Value> {
    let b = &s.base;
    Json(json!({
        "issuer": b,
        "authorization_endpoint": format!("{b}/authorize"),
        "token_endpoint": format!("{b}/token"),
        "jwks_uri": format!("{b}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
    }))
}

async fn jwks(State(s): State<Arc<Shared>>) -> Json<Value> {
    Json(s.jwks.clone())
}

/// Signs the user in at once and redirects back with a code.
async fn authorize(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").len() != 43
        || !get("scope").split(' ').any(|x| x == "openid")
        || !s.clients.contains_key(&get("client_id"))
        || get("nonce").is_empty()
    {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let code = format!(
        "code-{}",
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>())
    );
    let redirect_uri = get("redirect_uri");
    let mut inner = s.inner.lock().unwrap();
    inner.issued.push(code.clone());
    inner.grants.insert(
        code.clone(),
        Grant {
            client_id: get("client_id"),
            redirect_uri: redirect_uri.clone(),
            challenge: get("code_challenge"),
            nonce: get("nonce"),
        },
    );
    let mut url = url::Url::parse(&redirect_uri).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &get("state"));
    (StatusCode::FOUND, [(LOCATION, url.to_string())]).into_response()
}

fn refuse(s: &Shared, why: &str) -> Response {
    s.inner.lock().unwrap().refusals.push(why.to_owned());
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_grant", "error_description": why})),
    )
        .into_response()
}

/// Exchanges a code: checks the client, redirect URI and PKCE verifier.
async fn token(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    if get("grant_type") != "authorization_code" {
        return refuse(&s, "grant_type");
    }
    let Some(grant) = s.inner.lock().unwrap().grants.remove(&get("code")) else {
        return refuse(&s, "unknown or used code");
    };
    // Client authentication: Basic for confidential clients, client_id for public ones.
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let client_ok = match s.clients.get(&grant.client_id) {
        Some(Some(secret)) => basic.as_deref() == Some(&format!("{}:{secret}", grant.client_id)),
        Some(None) => get("client_id") == grant.client_id,
        None => false,
    };
    if !client_ok {
        return refuse(&s, "client authentication");
    }
    if get("redirect_uri") != grant.redirect_uri {
        return refuse(&s, "redirect_uri");
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(get("code_verifier").as_bytes()));
    if computed != grant.challenge {
        return refuse(&s, "pkce verifier");
    }
    let knobs = s.inner.lock().unwrap().knobs.clone();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = json!({
        "iss": knobs.iss.clone().unwrap_or(s.base.clone()),
        "aud": knobs.aud.clone().unwrap_or(grant.client_id.clone()),
        "sub": knobs.sub,
        "tid": knobs.tid,
        "nonce": knobs.nonce.clone().unwrap_or(grant.nonce),
        "iat": now,
        "exp": now + knobs.exp_in,
        "name": knobs.name,
        "email": knobs.email,
    });
    let (mut header, key) = if knobs.rsa {
        (Header::new(Algorithm::RS256), &s.rsa)
    } else if knobs.rogue_key {
        (Header::new(Algorithm::ES256), &s.rogue)
    } else {
        (Header::new(Algorithm::ES256), &s.key)
    };
    header.kid = Some(if knobs.rsa { "key-rsa" } else { "key-1" }.to_owned());
    let id_token = jsonwebtoken::encode(&header, &claims, key).unwrap();
    s.inner.lock().unwrap().issued.push(id_token.clone());
    Json(json!({
        "access_token": "at-not-used",
        "token_type": "Bearer",
        "expires_in": 3600,
        "id_token": id_token,
    }))
    .into_response()
}
