//! Shared by the `auth_*` and `admin_*` tests: a server made of the account
//! router alone on 127.0.0.1 (OS-chosen port), and a minimal HTTP/1.1 client
//! that can pick its source address (any 127.x.y.z) to act as several clients.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use signaling::account_api;
use signaling::audit::{Audit, AuditBuffer};
use signaling::auth::{Auth, AuthSettings};
use signaling::directory::Directory;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

/// Argon2id(m=19456,t=2,p=1) of [`PASSWORD`] with a fixed salt.
pub const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$BwcHBwcHBwcHBwcHBwcHBw$nRjsqwC21oaxfa28uB5X6UeYpp0Qw2/e21WOmvTeXIc";
/// The password of every account in [`two_orgs`].
pub const PASSWORD: &str = "hunter2hunter2";

/// Two organisations: `north` (clinician `lee`, admin `nadmin`) and
/// `south` (clinician `sam`, admin `sadmin`).
pub fn two_orgs() -> String {
    let mut s = String::from(
        "[[tenant]]\nid = \"north\"\nname = \"North\"\n\
         [[tenant]]\nid = \"south\"\nname = \"South\"\n\
         [[room]]\nid = \"north-gp\"\ntenant = \"north\"\nname = \"North GP\"\n\
         [[room]]\nid = \"south-gp\"\ntenant = \"south\"\nname = \"South GP\"\n",
    );
    for (id, tenant, user, role) in [
        ("dr-lee", "north", "lee", "clinician"),
        ("north-admin", "north", "nadmin", "admin"),
        ("dr-sam", "south", "sam", "clinician"),
        ("south-admin", "south", "sadmin", "admin"),
    ] {
        let _ = write!(
            s,
            "[[clinician]]\nid = \"{id}\"\ntenant = \"{tenant}\"\nusername = \"{user}\"\n\
             display_name = \"Name of {id}\"\nrole = \"{role}\"\npassword_hash = \"{HASH}\"\n"
        );
    }
    s
}

/// A running account API.
pub struct Server {
    pub addr: SocketAddr,
    pub audit: AuditBuffer,
    pub auth: Arc<Auth>,
    pub directory: Arc<Directory>,
}

impl Server {
    pub async fn start(toml: &str) -> Server {
        let directory = Arc::new(Directory::from_toml_str(toml).expect("test directory"));
        let (audit, buffer) = Audit::memory();
        let auth = Arc::new(Auth::new(
            directory.clone(),
            audit.clone(),
            AuthSettings::default(),
        ));
        let app = account_api::router(auth.clone(), directory.clone(), audit);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Server {
            addr,
            audit: buffer,
            auth,
            directory,
        }
    }

    /// Sends one request from 127.0.0.1.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        self.call_from("127.0.0.1", method, path, headers, body)
            .await
    }

    /// Sends one request from the loopback address `source`.
    pub async fn call_from(
        &self,
        source: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let socket = TcpSocket::new_v4().unwrap();
        let src: IpAddr = source.parse().unwrap();
        socket.bind(SocketAddr::new(src, 0)).unwrap();
        let mut stream = socket.connect(self.addr).await.unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (k, v) in headers {
            let _ = write!(req, "{k}: {v}\r\n");
        }
        let body = body.unwrap_or("");
        let _ = write!(req, "Content-Length: {}\r\n\r\n{body}", body.len());
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        Reply::parse(&raw)
    }

    /// POSTs JSON from 127.0.0.1, optionally with a Bearer token.
    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        json: &serde_json::Value,
    ) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        self.call("POST", path, &headers, Some(&json.to_string()))
            .await
    }

    /// A request with only a Bearer token.
    pub async fn with_token(&self, method: &str, path: &str, token: &str) -> Reply {
        let auth = format!("Bearer {token}");
        self.call(method, path, &[("Authorization", &auth)], None)
            .await
    }

    /// Logs in from `source`; panics unless it succeeds. Returns the token.
    pub async fn login_from(&self, source: &str, username: &str, password: &str) -> String {
        let body = serde_json::json!({ "username": username, "password": password }).to_string();
        let r = self
            .call_from(
                source,
                "POST",
                "/api/login",
                &[("Content-Type", "application/json")],
                Some(&body),
            )
            .await;
        assert_eq!(r.status, 200, "login of {username}: {}", r.body);
        r.json()["token"].as_str().unwrap().to_owned()
    }

    pub async fn login(&self, username: &str) -> String {
        self.login_from("127.0.0.1", username, PASSWORD).await
    }

    /// Every audit line, parsed.
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        self.audit
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
            .collect()
    }

    /// Panics if any audit line contains one of `secrets`.
    pub fn assert_audit_free_of(&self, secrets: &[&str]) {
        for line in self.audit.lines() {
            for s in secrets {
                assert!(!line.contains(s), "audit line leaks a secret: {line}");
            }
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    fn parse(raw: &[u8]) -> Reply {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text.split_once("\r\n\r\n").expect("complete response");
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `error.code` of an error body.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
