//! The service's one configuration: command-line flags, each also settable
//! through an `ANTEROOM_*` environment variable, validated at start.
//! No other module reads the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use protocol::{NodeId, Region, Sensitive};

use crate::Error;
use crate::auth::AuthSettings;
use crate::lobby::LobbySettings;
use crate::relays::RelaySettings;
use crate::ws::WsSettings;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Anteroom signaling: virtual waiting rooms and clinician accounts.
#[derive(Debug, Clone, Parser)]
#[command(name = "signaling", version, about)]
pub struct Config {
    /// Address to listen on (HTTP and WebSocket).
    #[arg(long, env = "ANTEROOM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory file (TOML): organisations, waiting rooms, accounts.
    #[arg(long, env = "ANTEROOM_CONFIG", value_name = "TOML")]
    pub config: Option<PathBuf>,

    /// Development mode: a demo organisation, room and accounts with fresh
    /// random passwords, printed at start. Not with --config.
    #[arg(long, env = "ANTEROOM_DEV")]
    pub dev: bool,

    /// Append the audit trail (JSON lines) to this file; default: stderr.
    #[arg(long, env = "ANTEROOM_AUDIT_LOG", value_name = "PATH")]
    pub audit_log: Option<PathBuf>,

    /// A clinician session ends this long after its last use.
    #[arg(long, env = "ANTEROOM_SESSION_IDLE_SECS", default_value_t = 1200)]
    pub session_idle_secs: u64,

    /// A clinician session ends this long after login, however used.
    #[arg(long, env = "ANTEROOM_SESSION_MAX_SECS", default_value_t = 43_200)]
    pub session_max_secs: u64,

    /// How long a patient's seat survives a dropped connection.
    #[arg(long, env = "ANTEROOM_RESUME_GRACE_SECS", default_value_t = 120)]
    pub resume_grace_secs: u64,

    /// Largest accepted WebSocket message, in bytes.
    #[arg(long, env = "ANTEROOM_MAX_FRAME_BYTES", default_value_t = 65_536)]
    pub max_frame_bytes: usize,

    /// Messages per second allowed per connection, on average.
    #[arg(long, env = "ANTEROOM_RATE_LIMIT_PER_SEC", default_value_t = 20)]
    pub rate_limit_per_sec: u32,

    /// Burst allowance of the per-connection rate limit.
    #[arg(long, env = "ANTEROOM_RATE_LIMIT_BURST", default_value_t = 40)]
    pub rate_limit_burst: u32,

    /// Log format.
    #[arg(long, env = "ANTEROOM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `signaling=debug`.
    #[arg(long, env = "ANTEROOM_LOG", default_value = "info")]
    pub log: String,

    /// Secret shared with the relays (at least 16 bytes): signs grants and
    /// authenticates their registration. Prefer the environment variable.
    /// Without it a random one is made at start (only `--dev`'s embedded
    /// relay can then register).
    #[arg(long, env = "ANTEROOM_RELAY_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub relay_secret: Option<Sensitive<String>>,

    /// This signaling node's region: calls of clients without a region hint
    /// go to relays of this region first.
    #[arg(long, env = "ANTEROOM_REGION", default_value = "local")]
    pub region: Region,

    /// Regions to try after the preferred one, in order (comma-separated),
    /// e.g. `eu,us`. Regions not listed come last, by name.
    #[arg(long, env = "ANTEROOM_REGION_ORDER", value_delimiter = ',')]
    pub region_order: Vec<Region>,

    /// With `--dev`, do not start the embedded relay (use external relays).
    #[arg(long, env = "ANTEROOM_NO_EMBEDDED_RELAY")]
    pub no_embedded_relay: bool,

    /// Heartbeat interval asked of relays, in milliseconds; a relay is
    /// stale (its calls move) after three missed beats.
    #[arg(long, env = "ANTEROOM_RELAY_HEARTBEAT_MS", default_value_t = 1000)]
    pub heartbeat_ms: u64,

    /// Share state with other signaling nodes through this Redis
    /// (`redis://[:password@]host:port[/db]`, see docs/operations.md).
    /// Without it everything stays in this process's memory and no Redis is
    /// needed. Prefer the environment variable when the URL holds a password.
    #[arg(long, env = "ANTEROOM_REDIS_URL", hide_env_values = true, value_name = "URL", value_parser = parse_redis_url)]
    pub redis_url: Option<Sensitive<String>>,

    /// This signaling node's id among the nodes sharing one Redis (letters,
    /// digits, `.`, `_`, `-`; unique per node). Default: `sig-` and 8
    /// random base32 characters, new at every start ([`Config::cluster_settings`]).
    #[arg(long, env = "ANTEROOM_NODE_ID", value_name = "ID")]
    pub node_id: Option<NodeId>,

    /// Lease of the lobby owner, in milliseconds (with `--redis-url`): the
    /// owner renews it every third of this; when it dies another node takes
    /// the lobby over after at most this long.
    #[arg(long, env = "ANTEROOM_LOBBY_LEASE_MS", default_value_t = 10_000)]
    pub lobby_lease_ms: u64,

    /// TLS (HTTPS/WSS) flags: see [`crate::tls::TlsArgs`].
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,

    /// `/metrics` access: see [`crate::metrics::MetricsArgs`].
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsArgs,

    /// Connection time limits: see [`crate::listen::ListenArgs`].
    #[command(flatten)]
    pub timeouts: crate::listen::ListenArgs,

    /// Which web pages may open `/ws`: see [`crate::ws::origin::OriginArgs`].
    #[command(flatten)]
    pub origins: crate::ws::origin::OriginArgs,

    /// Check the configuration (flags, environment, directory file, TLS
    /// files, audit log path, secrets) and exit: prints `config ok` (exit 0)
    /// or the problem (exit 2). Binds nothing and connects nowhere.
    #[arg(long)]
    pub check_config: bool,
}

/// Shortest accepted relay secret, in bytes.
pub const MIN_RELAY_SECRET_LEN: usize = 16;

/// Shortest and longest accepted `--lobby-lease-ms`.
pub const LOBBY_LEASE_MS: std::ops::RangeInclusive<u64> = 300..=600_000;

/// `sig-` and 8 random base32 characters (RFC 4648 alphabet, lower case).
pub fn random_node_id() -> NodeId {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let bits: u64 = rand::random();
    let tail: String = (0..8)
        .map(|i| {
            let idx = usize::try_from((bits >> (i * 5)) & 31).unwrap_or(0);
            ALPHABET.get(idx).map_or('a', |&b| char::from(b))
        })
        .collect();
    NodeId::new(format!("sig-{tail}")).unwrap_or_else(|_| NodeId::random())
}

#[allow(clippy::unnecessary_wraps)] // clap's value_parser signature
fn parse_secret(s: &str) -> Result<Sensitive<String>, String> {
    Ok(Sensitive::new(s.to_owned()))
}

/// Wraps the Redis URL unchecked: clap would echo a refused value (and a
/// URL may hold a password), so [`Config::validate`] checks it instead.
#[allow(clippy::unnecessary_wraps)] // clap's value_parser signature
fn parse_redis_url(s: &str) -> Result<Sensitive<String>, String> {
    Ok(Sensitive::new(s.to_owned()))
}

impl Config {
    /// Parses a command line (the first item is the program name), then validates.
    pub fn parse_args<I, T>(args: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let c = Self::try_parse_from(args).map_err(|e| Error::Config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// The `--dev` configuration on an OS-chosen loopback port (for tests).
    pub fn dev() -> Self {
        Self::parse_from(["signaling", "--dev", "--listen", "127.0.0.1:0"])
    }

    /// Checks the values make sense together.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::Config(m.to_owned()));
        match (self.dev, &self.config) {
            (true, Some(_)) => return bad("--dev and --config exclude each other"),
            (false, None) => return bad("give --config <toml> (or --dev for a demo)"),
            _ => {}
        }
        if self.session_idle_secs == 0 || self.session_max_secs == 0 {
            return bad("session lifetimes must be positive");
        }
        if self.session_idle_secs > self.session_max_secs {
            return bad("--session-idle-secs must not exceed --session-max-secs");
        }
        if self.resume_grace_secs == 0 || self.resume_grace_secs > 86_400 {
            return bad("--resume-grace-secs must be 1..=86400");
        }
        if !(1024..=16 << 20).contains(&self.max_frame_bytes) {
            return bad("--max-frame-bytes must be 1024..=16777216");
        }
        if self.rate_limit_per_sec == 0 || self.rate_limit_burst == 0 {
            return bad("the rate limit and burst must be positive");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log).is_err() {
            return bad("--log is not a valid filter");
        }
        if let Some(secret) = &self.relay_secret
            && secret.expose().len() < MIN_RELAY_SECRET_LEN
        {
            return bad("--relay-secret (ANTEROOM_RELAY_SECRET) must be at least 16 bytes");
        }
        if !(100..=60_000).contains(&self.heartbeat_ms) {
            return bad("--heartbeat-ms must be 100..=60000");
        }
        if let Some(url) = &self.redis_url {
            crate::store::parse_url(url.expose())?;
        }
        if !LOBBY_LEASE_MS.contains(&self.lobby_lease_ms) {
            return bad("--lobby-lease-ms (ANTEROOM_LOBBY_LEASE_MS) must be 300..=600000");
        }
        self.tls.validate(self.dev)?;
        self.timeouts.validate()?;
        Ok(())
    }

    /// Relay pool settings. Without `--relay-secret`, a random secret.
    pub fn relay_settings(&self) -> RelaySettings {
        let secret = if let Some(s) = &self.relay_secret {
            s.expose().as_bytes().to_vec()
        } else {
            tracing::warn!("no --relay-secret: relays cannot register (except --dev's own)");
            rand::random::<[u8; 32]>().to_vec()
        };
        let mut settings = RelaySettings::new(secret, self.region.clone());
        settings.region_order.clone_from(&self.region_order);
        settings.heartbeat = Duration::from_millis(self.heartbeat_ms);
        settings
    }

    /// Session lifetimes.
    pub fn auth_settings(&self) -> AuthSettings {
        AuthSettings {
            idle: Duration::from_secs(self.session_idle_secs),
            max_age: Duration::from_secs(self.session_max_secs),
        }
    }

    /// Lobby tunables.
    pub fn lobby_settings(&self) -> LobbySettings {
        LobbySettings {
            grace: Duration::from_secs(self.resume_grace_secs),
            ..LobbySettings::default()
        }
    }

    /// The lobby owner's lease.
    pub fn lobby_lease(&self) -> Duration {
        Duration::from_millis(self.lobby_lease_ms)
    }

    /// This node's id and lease: `--node-id`, or a fresh random one (each
    /// call makes another: call it once per node).
    pub fn cluster_settings(&self) -> crate::cluster::ClusterSettings {
        crate::cluster::ClusterSettings {
            node: self.node_id.clone().unwrap_or_else(random_node_id),
            lease: self.lobby_lease(),
        }
    }

    /// Connection limits.
    pub fn ws_settings(&self) -> WsSettings {
        WsSettings {
            max_frame_bytes: self.max_frame_bytes,
            rate_per_sec: self.rate_limit_per_sec,
            rate_burst: self.rate_limit_burst,
            hello_timeout: self.timeouts.hello_timeout(),
            origins: self.origins.policy(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        let c = Config::parse_args(["signaling", "--dev"]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.auth_settings().idle, Duration::from_secs(20 * 60));
        assert_eq!(c.auth_settings().max_age, Duration::from_secs(12 * 3600));
        assert_eq!(c.lobby_settings().grace, Duration::from_secs(120));
        assert_eq!(c.ws_settings().max_frame_bytes, 64 * 1024);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.region.as_str(), "local");
        assert!(c.region_order.is_empty());
        assert_eq!(c.relay_settings().heartbeat, Duration::from_secs(1));
        assert!(c.redis_url.is_none(), "no Redis unless asked for");
        assert_eq!(c.lobby_lease(), Duration::from_secs(10));
        let node = c.cluster_settings().node;
        let id = node.as_str();
        assert!(id.starts_with("sig-") && id.len() == 12, "{id}");
        assert_ne!(c.cluster_settings().node, node, "a fresh id per node");
    }

    #[test]
    fn cluster_flags_parse() {
        let c = Config::parse_args([
            "signaling",
            "--dev",
            "--node-id",
            "sig-a",
            "--lobby-lease-ms",
            "1500",
        ])
        .unwrap();
        assert_eq!(c.cluster_settings().node.as_str(), "sig-a");
        assert_eq!(c.lobby_lease(), Duration::from_millis(1500));
    }

    #[test]
    fn redis_url_is_accepted_and_never_printed() {
        let c = Config::parse_args([
            "signaling",
            "--dev",
            "--redis-url",
            "redis://:hunter2secret@127.0.0.1:6379/0",
        ])
        .unwrap();
        assert_eq!(
            c.redis_url.as_ref().map(|u| u.expose().as_str()),
            Some("redis://:hunter2secret@127.0.0.1:6379/0")
        );
        assert!(!format!("{c:?}").contains("hunter2secret"));
        let err = Config::parse_args(["signaling", "--dev", "--redis-url", "redis://:pw@"])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(!err.contains(":pw@"), "{err}");
    }

    #[test]
    fn relay_flags_parse() {
        let c = Config::parse_args([
            "signaling",
            "--dev",
            "--relay-secret",
            "0123456789abcdef",
            "--region",
            "eu",
            "--region-order",
            "eu,us",
        ])
        .unwrap();
        let r = c.relay_settings();
        assert_eq!(r.secret.expose(), b"0123456789abcdef");
        assert_eq!(r.region.as_str(), "eu");
        let order: Vec<&str> = r
            .region_order
            .iter()
            .map(protocol::Region::as_str)
            .collect();
        assert_eq!(order, ["eu", "us"]);
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn invalid_combinations_are_refused() {
        for args in [
            &["signaling"][..],
            &["signaling", "--dev", "--config", "x.toml"],
            &["signaling", "--dev", "--session-idle-secs", "0"],
            &["signaling", "--dev", "--session-idle-secs", "50000"],
            &["signaling", "--dev", "--max-frame-bytes", "10"],
            &["signaling", "--dev", "--rate-limit-per-sec", "0"],
            &["signaling", "--dev", "--log-format", "xml"],
            &["signaling", "--dev", "--listen", "nowhere"],
            &["signaling", "--dev", "--relay-secret", "short"],
            &["signaling", "--dev", "--region", "a b"],
            &["signaling", "--dev", "--region-order", "eu,,us"],
            &["signaling", "--dev", "--heartbeat-ms", "10"],
            &["signaling", "--dev", "--redis-url", "http://127.0.0.1:6379"],
            &["signaling", "--dev", "--redis-url", "not a url"],
            &["signaling", "--dev", "--node-id", "sig a"],
            &["signaling", "--dev", "--node-id", ""],
            &["signaling", "--dev", "--lobby-lease-ms", "100"],
            &["signaling", "--dev", "--lobby-lease-ms", "999999999"],
        ] {
            assert!(Config::parse_args(args).is_err(), "{args:?}");
        }
        let c = Config::parse_args(["signaling", "--config", "d.toml", "--log-format", "json"])
            .unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
    }
}
