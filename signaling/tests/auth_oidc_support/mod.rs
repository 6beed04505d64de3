//! Shared by the `auth_oidc*` tests: a test provider ([`idp::Idp`]) and a
//! full signaling server (`server::serve`) whose directory has
//!
//! - `north`: OIDC, confidential client `anteroom-north` (secret from a file),
//!   tenant id `tid-north`, user claim `sub`, no provisioning; clinician
//!   `dr-lee` (external subject `sub-lee`, no password) and admin `north-admin`;
//! - `south`: OIDC, public client `anteroom-south`, provisioning on;
//! - `east`: OIDC at an HTTPS provider whose certificate no CA vouches for;
//! - `west`: no OIDC.
//!
//! [`Browser`] follows the sign-in like a browser would: start, the
//! provider's authorize page, the callback, each over real HTTP.
#![allow(dead_code)]

pub mod idp;
pub mod tls_idp;

use std::net::SocketAddr;
use std::sync::Arc;

use signaling::audit::{Audit, AuditBuffer};
use signaling::auth::Auth;
use signaling::config::Config;
use signaling::directory::Directory;
use signaling::server::{Services, serve};
use tokio::net::TcpListener;

use crate::support::http_raw;

/// The password of `north-admin` (Argon2id hash in the directory below).
pub const ADMIN_PASSWORD: &str = "hunter2hunter2";

/// The north client's secret.
pub const SECRET: &str = "north-client-secret-0123456789";

/// A provider and a signaling server using it.
pub struct Env {
    pub idp: idp::Idp,
    pub tls_idp: tls_idp::TlsIdp,
    pub addr: SocketAddr,
    pub auth: Arc<Auth>,
    pub directory: Arc<Directory>,
    pub audit: AuditBuffer,
}

fn toml(issuer: &str, tls_issuer: &str, base: &str, secret_file: &str) -> String {
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$BwcHBwcHBwcHBwcHBwcHBw$nRjsqwC21oaxfa28uB5X6UeYpp0Qw2/e21WOmvTeXIc";
    format!(
        r#"
[[tenant]]
id = "north"
name = "North"
[tenant.oidc]
issuer = "{issuer}"
client_id = "anteroom-north"
client_secret_file = "{secret_file}"
redirect_base = "{base}"
tenant_ids = ["tid-north"]
user_claim = "sub"

[[tenant]]
id = "south"
name = "South"
[tenant.oidc]
issuer = "{issuer}"
client_id = "anteroom-south"
redirect_base = "{base}"
provision = true

[[tenant]]
id = "east"
name = "East"
[tenant.oidc]
issuer = "{tls_issuer}"
client_id = "anteroom-east"
redirect_base = "{base}"

[[tenant]]
id = "west"
name = "West"

[[room]]
id = "north-gp"
tenant = "north"
name = "North GP"

[[clinician]]
id = "dr-lee"
tenant = "north"
username = "lee@north"
display_name = "Dr Lee"
external_subject = "sub-lee"

[[clinician]]
id = "north-admin"
tenant = "north"
username = "nadmin"
display_name = "North Admin"
role = "admin"
password_hash = "{hash}"
"#
    )
}

impl Env {
    /// Starts the provider (on `127.0.0.1`) and the server.
    pub async fn start() -> Env {
        Self::start_with_idp_host("127.0.0.1").await
    }

    /// Starts the provider, named `http://<idp_host>:<port>`, and the server.
    pub async fn start_with_idp_host(idp_host: &str) -> Env {
        let clients = [("anteroom-north", Some(SECRET)), ("anteroom-south", None)];
        let idp = idp::Idp::start(idp_host, &clients).await;
        let tls_idp = tls_idp::TlsIdp::start().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let secret_file = std::env::temp_dir().join(format!(
            "anteroom-oidc-test-{}-{}",
            std::process::id(),
            addr.port()
        ));
        std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
        let parsed = Directory::from_toml_str(&toml(
            &idp.issuer(),
            &format!("https://{}", tls_idp.addr),
            &format!("http://{addr}"),
            &secret_file.display().to_string(),
        ));
        // The secret is read at load; the scratch file is not needed after.
        std::fs::remove_file(&secret_file).unwrap();
        let directory = Arc::new(parsed.expect("test directory"));
        let (audit, buffer) = Audit::memory();
        let config = Config::parse_args(["signaling", "--config", "unused.toml"]).expect("config");
        let services = Services::new(directory.clone(), audit, &config);
        let auth = services.auth.clone();
        tokio::spawn(serve(listener, services, std::future::pending()));
        Env {
            idp,
            tls_idp,
            addr,
            auth,
            directory,
            audit: buffer,
        }
    }

    /// A browser with no cookies.
    pub fn browser(&self) -> Browser {
        Browser {
            server: self.addr,
            idp: self.idp.addr,
            cookies: Vec::new(),
        }
    }

    /// The audit trail so far, one JSON line each.
    pub fn audit_lines(&self) -> Vec<String> {
        self.audit.lines()
    }
}

/// One response: status, headers (lower-case names) and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The first header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every `Set-Cookie` as (name, value).
    pub fn set_cookies(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .filter_map(|(_, v)| {
                let pair = v.split(';').next()?;
                let (n, v) = pair.split_once('=')?;
                Some((n.to_owned(), v.to_owned()))
            })
            .collect()
    }
}

/// A cookie jar and the two sites a sign-in visits.
#[derive(Debug, Clone)]
pub struct Browser {
    pub server: SocketAddr,
    pub idp: SocketAddr,
    /// (name, value) sent to the signaling server.
    pub cookies: Vec<(String, String)>,
}

/// Splits `http://host:port/path?query` into its address and path.
fn split_url(url: &str) -> (SocketAddr, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (host.parse().expect("ip:port"), path.to_owned())
}

impl Browser {
    /// GETs `url` (absolute, or a path on the signaling server), sending the
    /// jar's cookies to the signaling server and keeping the ones it sets.
    pub async fn get(&mut self, url: &str) -> Reply {
        let (addr, path) = if url.starts_with('/') {
            (self.server, url.to_owned())
        } else {
            split_url(url)
        };
        let cookie = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers = vec![];
        if addr == self.server && !cookie.is_empty() {
            headers.push(("Cookie", cookie.as_str()));
        }
        let (status, head, body) = http_raw(addr, "GET", &path, &headers, "").await;
        let headers: Vec<(String, String)> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let reply = Reply {
            status,
            headers,
            body,
        };
        if addr == self.server {
            for (n, v) in reply.set_cookies() {
                self.cookies.retain(|(k, _)| *k != n);
                if !v.is_empty() {
                    self.cookies.push((n, v));
                }
            }
        }
        reply
    }

    /// Starts a sign-in for `org` and lets the provider sign the user in;
    /// returns the callback URL the provider redirected to (not yet opened).
    pub async fn reach_callback(&mut self, org: &str) -> String {
        let start = self.get(&format!("/auth/oidc/{org}/start")).await;
        assert_eq!(start.status, 303, "start: {start:?}");
        let authorize = start.header("location").expect("location").to_owned();
        assert!(
            authorize.starts_with(&format!("http://{}/authorize?", self.idp)),
            "{authorize}"
        );
        let at_idp = self.get(&authorize).await;
        assert_eq!(at_idp.status, 302, "authorize: {at_idp:?}");
        at_idp.header("location").expect("callback").to_owned()
    }

    /// A whole sign-in; returns the callback's reply (a 303).
    pub async fn sign_in(&mut self, org: &str) -> Reply {
        let callback = self.reach_callback(org).await;
        self.get(&callback).await
    }

    /// The session cookie's value, if the jar has one.
    pub fn session(&self) -> Option<String> {
        self.cookies
            .iter()
            .find(|(n, _)| n == "anteroom_session")
            .map(|(_, v)| v.clone())
    }
}
