//! The relay's configuration: one clap [`Config`] (flags and environment
//! variables), validated once at start by [`Config::validate`].
//!
//! No other module reads the environment.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use protocol::{NodeId, Region, Sensitive};

use crate::error::RelayError;

/// Shortest accepted shared secret, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Relay configuration.
#[derive(Debug, Clone, Parser)]
#[command(name = "relay", about = "Anteroom media relay (str0m SFU node)")]
pub struct Config {
    /// Signaling's control WebSocket, e.g. `ws://127.0.0.1:8080/control`
    /// (plain `ws://` only). Several signaling nodes: comma-separated
    /// and/or repeated; each reconnect attempt dials the next one. Required
    /// unless `--standalone`.
    #[arg(
        long,
        alias = "signaling-url",
        env = "ANTEROOM_RELAY_SIGNALING",
        value_delimiter = ','
    )]
    pub signaling: Vec<String>,

    /// Run without signaling (tests, benchmarks): offers are fed in-process.
    #[arg(long)]
    pub standalone: bool,

    /// This relay's node id; grants name it, so it must be stable.
    #[arg(long, env = "ANTEROOM_RELAY_NODE_ID", default_value = "relay-1")]
    pub node_id: NodeId,

    /// The region this relay serves.
    #[arg(long, env = "ANTEROOM_RELAY_REGION", default_value = "local")]
    pub region: Region,

    /// The IP address clients reach this relay at (its ICE candidate). Required.
    #[arg(long, alias = "public-ip", env = "ANTEROOM_RELAY_ADVERTISE")]
    pub advertise: Option<IpAddr>,

    /// The IP address the UDP sockets bind to. Defaults to loopback for safety;
    /// set `0.0.0.0` to serve other hosts.
    #[arg(long, env = "ANTEROOM_RELAY_BIND_IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind_ip: IpAddr,

    /// Worker threads, each with its own UDP port. Default: one per core.
    #[arg(long, env = "ANTEROOM_RELAY_WORKERS")]
    pub workers: Option<usize>,

    /// UDP port of worker 0; worker `i` binds `base + i`. 0: OS-chosen ports.
    #[arg(long, env = "ANTEROOM_RELAY_UDP_PORT_BASE", default_value_t = 0)]
    pub udp_port_base: u16,

    /// Participants this relay accepts in all; further offers are refused.
    #[arg(long, env = "ANTEROOM_RELAY_CAPACITY", default_value_t = 500)]
    pub capacity: u32,

    /// Secret shared with signaling: verifies grants, authenticates registration.
    /// At least 16 bytes. Prefer the environment variable over the flag.
    #[arg(long, env = "ANTEROOM_RELAY_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub grant_secret: Option<Sensitive<String>>,

    /// After the first SIGTERM, how long existing calls may go on, in seconds.
    #[arg(long, env = "ANTEROOM_RELAY_DRAIN_TIMEOUT_SECS", default_value_t = 600)]
    pub drain_timeout_secs: u64,

    /// Where `/metrics`, `/healthz` and `/readyz` are served (HTTP).
    #[arg(
        long,
        env = "ANTEROOM_RELAY_METRICS_LISTEN",
        default_value = "127.0.0.1:9100"
    )]
    pub metrics_listen: SocketAddr,

    /// Log format.
    #[arg(long, env = "ANTEROOM_RELAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Check the configuration (flags, environment, secret, signaling URL)
    /// and exit: prints `config ok` (exit 0) or the problem (exit 2). Binds
    /// no socket and does not contact signaling.
    #[arg(long)]
    pub check_config: bool,
}

#[allow(clippy::unnecessary_wraps)] // clap's value_parser signature
fn parse_secret(s: &str) -> Result<Sensitive<String>, String> {
    Ok(Sensitive::new(s.to_owned()))
}

/// A [`Config`] that passed [`Config::validate`]: every required value present.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    /// The original configuration.
    pub config: Config,
    /// The advertised IP.
    pub advertise: IpAddr,
    /// The shared secret, as bytes.
    pub secret: Sensitive<Vec<u8>>,
    /// Worker count (at least 1).
    pub workers: usize,
    /// The signaling URLs, in dialling order; empty only in standalone mode.
    pub signaling: Vec<String>,
}

impl Config {
    /// A configuration for tests and in-process embedding: loopback
    /// everywhere, OS-chosen ports, one worker, standalone (no signaling).
    pub fn local(node: NodeId, secret: impl Into<String>) -> Self {
        Self {
            signaling: Vec::new(),
            standalone: true,
            node_id: node,
            region: Region::new("local").expect("valid region"),
            advertise: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            workers: Some(1),
            udp_port_base: 0,
            capacity: 500,
            grant_secret: Some(Sensitive::new(secret.into())),
            drain_timeout_secs: 600,
            metrics_listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            log_format: LogFormat::Text,
            check_config: false,
        }
    }

    /// The drain timeout as a duration.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_secs)
    }

    /// Checks the configuration, with an error that names the flag to fix.
    pub fn validate(&self) -> Result<ValidConfig, RelayError> {
        let Some(advertise) = self.advertise else {
            return Err(RelayError::Config(
                "the relay needs --advertise <ip> (or ANTEROOM_RELAY_ADVERTISE): \
                 the IP address clients reach it at"
                    .into(),
            ));
        };
        if advertise.is_unspecified() {
            return Err(RelayError::Config(format!(
                "--advertise {advertise} is not an address clients can reach; give the host's real IP"
            )));
        }
        let Some(secret) = &self.grant_secret else {
            return Err(RelayError::Config(
                "the relay needs a shared secret: set ANTEROOM_RELAY_SECRET (or --grant-secret)"
                    .into(),
            ));
        };
        if secret.expose().len() < MIN_SECRET_LEN {
            return Err(RelayError::Config(format!(
                "the shared secret must be at least {MIN_SECRET_LEN} bytes long"
            )));
        }
        let signaling: Vec<String> = self
            .signaling
            .iter()
            .map(|url| url.trim().to_owned())
            .filter(|url| !url.is_empty())
            .collect();
        if signaling.is_empty() && !self.standalone {
            return Err(RelayError::Config(
                "the relay needs --signaling ws://host:port/control (or --standalone)".into(),
            ));
        }
        for url in &signaling {
            if !url.starts_with("ws://") {
                return Err(RelayError::Config(format!(
                    "--signaling must be a ws:// URL (TLS is not built in: keep the control \
                     link on a private network or behind a TLS proxy), got {url:?}"
                )));
            }
            check_ws_url(url)?;
        }
        let workers = match self.workers {
            Some(0) => return Err(RelayError::Config("--workers must be at least 1".into())),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        };
        if self.udp_port_base != 0 && usize::from(self.udp_port_base) + workers > 65_536 {
            return Err(RelayError::Config(format!(
                "--udp-port-base {} leaves no room for {workers} worker ports",
                self.udp_port_base
            )));
        }
        if self.capacity == 0 {
            return Err(RelayError::Config("--capacity must be at least 1".into()));
        }
        Ok(ValidConfig {
            config: self.clone(),
            advertise,
            secret: Sensitive::new(secret.expose().as_bytes().to_vec()),
            workers,
            signaling,
        })
    }
}

/// Whether `url` is a WebSocket URL the control client can dial (parsed as
/// the client would, without resolving or connecting).
fn check_ws_url(url: &str) -> Result<(), RelayError> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let bad = |why: String| RelayError::Config(format!("--signaling {url:?}: {why}"));
    let request = url.into_client_request().map_err(|e| bad(e.to_string()))?;
    let uri = request.uri();
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host".into()));
    }
    // `Uri` accepts `host:port` with a non-numeric port (and ignores it).
    let authority = uri.authority().map_or("", |a| a.as_str());
    let after_host = authority
        .rsplit_once(']')
        .map_or(authority, |(_, rest)| rest);
    match after_host.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_err() => Err(bad("bad port".into())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef-secret";

    fn parse(args: &[&str]) -> Config {
        let mut all = vec!["relay"];
        all.extend_from_slice(args);
        Config::try_parse_from(all).expect("flags parse")
    }

    fn error_of(config: &Config) -> String {
        config
            .validate()
            .expect_err("config is invalid")
            .to_string()
    }

    #[test]
    fn missing_advertise_is_a_clear_error() {
        let config = parse(&["--standalone", "--grant-secret", SECRET]);
        let err = error_of(&config);
        assert!(err.contains("--advertise"), "{err}");
    }

    #[test]
    fn unspecified_advertise_is_refused() {
        let config = parse(&[
            "--standalone",
            "--grant-secret",
            SECRET,
            "--advertise",
            "0.0.0.0",
        ]);
        assert!(error_of(&config).contains("--advertise"));
    }

    #[test]
    fn short_or_missing_secret_is_refused() {
        let config = parse(&["--standalone", "--advertise", "127.0.0.1"]);
        assert!(error_of(&config).contains("ANTEROOM_RELAY_SECRET"));
        let config = parse(&[
            "--standalone",
            "--advertise",
            "127.0.0.1",
            "--grant-secret",
            "short",
        ]);
        assert!(error_of(&config).contains("16 bytes"));
    }

    #[test]
    fn signaling_is_required_unless_standalone() {
        let config = parse(&["--advertise", "127.0.0.1", "--grant-secret", SECRET]);
        assert!(error_of(&config).contains("--signaling"));
        let config = parse(&[
            "--advertise",
            "127.0.0.1",
            "--grant-secret",
            SECRET,
            "--signaling",
            "http://x",
        ]);
        assert!(error_of(&config).contains("ws://"));
        for url in ["ws://", "ws://host:port/control", "ws:// spaced/control"] {
            let config = parse(&[
                "--advertise",
                "127.0.0.1",
                "--grant-secret",
                SECRET,
                "--signaling",
                url,
            ]);
            assert!(error_of(&config).contains("--signaling"), "{url}");
        }
    }

    #[test]
    fn several_signaling_urls_are_kept_in_order_and_each_is_checked() {
        let base = ["--advertise", "127.0.0.1", "--grant-secret", SECRET];
        let mut args = base.to_vec();
        args.extend([
            "--signaling",
            "ws://10.0.0.1:8080/control, ws://10.0.0.2:8080/control",
            "--signaling-url",
            "ws://10.0.0.3:8080/control",
        ]);
        let valid = parse(&args).validate().expect("valid");
        assert_eq!(
            valid.signaling,
            [
                "ws://10.0.0.1:8080/control",
                "ws://10.0.0.2:8080/control",
                "ws://10.0.0.3:8080/control"
            ]
        );
        // One bad URL in the list is named.
        let mut args = base.to_vec();
        args.extend(["--signaling", "ws://10.0.0.1:8080/control,ws://h:x/control"]);
        let err = error_of(&parse(&args));
        assert!(
            err.contains("ws://h:x/control") && err.contains("port"),
            "{err}"
        );
        let mut args = base.to_vec();
        args.extend(["--signaling", "ws://10.0.0.1:8080/control,http://h/control"]);
        assert!(error_of(&parse(&args)).contains("ws://"));
        // Only separators: no URL at all.
        let mut args = base.to_vec();
        args.extend(["--signaling", " , "]);
        assert!(error_of(&parse(&args)).contains("--signaling"));
    }

    #[test]
    fn a_full_configuration_validates_and_hides_the_secret() {
        let config = parse(&[
            "--advertise",
            "192.0.2.7",
            "--grant-secret",
            SECRET,
            "--signaling",
            "ws://127.0.0.1:8080/control",
            "--workers",
            "3",
            "--udp-port-base",
            "40000",
            "--node-id",
            "relay-eu-1",
            "--region",
            "eu",
        ]);
        let valid = config.validate().expect("valid");
        assert_eq!(valid.workers, 3);
        assert_eq!(valid.advertise.to_string(), "192.0.2.7");
        assert_eq!(valid.config.node_id.as_str(), "relay-eu-1");
        assert!(!format!("{config:?}").contains(SECRET));
        assert_eq!(config.bind_ip.to_string(), "127.0.0.1");
    }

    #[test]
    fn zero_workers_and_overflowing_ports_are_refused() {
        let base = [
            "--standalone",
            "--advertise",
            "127.0.0.1",
            "--grant-secret",
            SECRET,
        ];
        let mut args = base.to_vec();
        args.extend(["--workers", "0"]);
        assert!(error_of(&parse(&args)).contains("--workers"));
        let mut args = base.to_vec();
        args.extend(["--workers", "4", "--udp-port-base", "65534"]);
        assert!(error_of(&parse(&args)).contains("--udp-port-base"));
    }

    #[test]
    fn local_config_is_valid() {
        let config = Config::local(NodeId::new("relay-t").unwrap(), SECRET);
        let valid = config.validate().expect("valid");
        assert_eq!(valid.workers, 1);
        assert!(valid.signaling.is_empty());
    }
}
