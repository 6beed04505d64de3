//! The signaling client side `bench lobby` needs: one WebSocket per synthetic user
//! speaking the `protocol::client` types, and the clinician login over HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use protocol::client::{ClientToSignaling, Role, SignalingToClient};
use protocol::{PROTOCOL_VERSION, Sensitive};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{Error, Result};

/// Longest wait for any one reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

fn err(e: impl std::fmt::Display) -> Error {
    Error::Negotiation(e.to_string())
}

/// One signaling connection.
#[derive(Debug)]
pub struct Conn {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Conn {
    /// Connects to `url` (`ws://host:port/ws`) and says hello as `role`.
    pub async fn open(url: &str, role: Role, session: Option<&str>) -> Result<Conn> {
        // Small buffers: thousands of these are open at once.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
            .await
            .map_err(err)?;
        let mut conn = Conn { ws };
        conn.send(&ClientToSignaling::Hello {
            version: PROTOCOL_VERSION,
            role,
            session: session.map(|s| Sensitive::new(s.to_owned())),
            region: None,
        })
        .await?;
        conn.expect(|m| matches!(m, SignalingToClient::Welcome { .. }))
            .await?;
        Ok(conn)
    }

    /// Sends one message.
    pub async fn send(&mut self, msg: &ClientToSignaling) -> Result<()> {
        let text = serde_json::to_string(msg).map_err(err)?;
        self.ws.send(Message::text(text)).await.map_err(err)
    }

    /// The next message (`None` when the connection ended).
    pub async fn recv(&mut self) -> Option<Result<SignalingToClient>> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(t)) => {
                    return Some(serde_json::from_str(t.as_str()).map_err(err));
                }
                Ok(Message::Close(_)) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(err(e))),
            }
        }
    }

    /// Waits (up to [`REPLY_TIMEOUT`]) for the first message matching `want`; an
    /// `error` message fails.
    pub async fn expect(
        &mut self,
        want: impl Fn(&SignalingToClient) -> bool,
    ) -> Result<SignalingToClient> {
        let wait = async {
            loop {
                match self.recv().await {
                    None => return Err(err("connection closed")),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(m)) if want(&m) => return Ok(m),
                    Some(Ok(SignalingToClient::Error { code, message, .. })) => {
                        return Err(err(format!("signaling error {code:?}: {message}")));
                    }
                    Some(Ok(_)) => {}
                }
            }
        };
        tokio::time::timeout(REPLY_TIMEOUT, wait)
            .await
            .map_err(|_| err("no reply in time"))?
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Logs in at `http://{addr}/api/login`; returns the session token.
pub async fn login(addr: SocketAddr, username: &str, password: &str) -> Result<String> {
    let body = serde_json::json!({ "username": username, "password": password }).to_string();
    let request = format!(
        "POST /api/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(request.as_bytes()).await?;
        let mut buf = Vec::new();
        s.take(1 << 20).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf).into_owned())
    };
    let reply = tokio::time::timeout(REPLY_TIMEOUT, exchange)
        .await
        .map_err(|_| err("login timed out"))??;
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .ok_or_else(|| err("malformed login reply"))?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(err(format!("login refused (HTTP {status})")));
    }
    let v: serde_json::Value = serde_json::from_str(body).map_err(err)?;
    v.get("token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| err("login reply has no token"))
}
