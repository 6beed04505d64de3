//! The loopback guard: the bench loads only addresses it was told to, and only
//! loopback ones unless `--allow-remote` is given.
//!
//! Hostnames other than `localhost` are refused without being resolved: a name that
//! resolves to loopback today may not tomorrow, and resolving it already leaks intent.

use std::net::{IpAddr, SocketAddr};

use crate::{Error, Result};

/// Checks a target given as `host`, `host:port`, `[v6]:port`, or a URL
/// (`ws://host:port/path`, `whip://…`, `http://…`). Returns the host part.
///
/// Refuses anything that is not loopback (127.0.0.0/8, ::1, `localhost`) unless
/// `allow_remote` is set.
pub fn check_target(target: &str, allow_remote: bool) -> Result<String> {
    let host = host_of(target)?;
    if allow_remote || is_loopback_host(&host) {
        Ok(host)
    } else {
        Err(Error::RemoteTarget(target.to_owned()))
    }
}

/// Checks a socket address against the same rule as [`check_target`].
pub fn check_addr(addr: SocketAddr, allow_remote: bool) -> Result<SocketAddr> {
    if allow_remote || addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(Error::RemoteTarget(addr.to_string()))
    }
}

/// Whether `host` (no port, brackets allowed around IPv6) is loopback.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    bare.parse::<IpAddr>().is_ok_and(|ip| match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    })
}

/// Extracts the host of a target string.
fn host_of(target: &str) -> Result<String> {
    let invalid = |why| Error::InvalidTarget(target.to_owned(), why);
    let rest = match target.split_once("://") {
        Some((_, rest)) => rest,
        None => target,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Drop userinfo, if any.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if authority.is_empty() {
        return Err(invalid("no host"));
    }
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, _) = v6.split_once(']').ok_or_else(|| invalid("unclosed ["))?;
        return Ok(host.to_owned());
    }
    // A bare IPv6 address without brackets has several colons and no port.
    if authority.matches(':').count() > 1 {
        return Ok(authority.to_owned());
    }
    let host = authority.split(':').next().unwrap_or_default();
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    Ok(host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_are_accepted() {
        for t in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:9",
            "localhost:3000",
            "LOCALHOST",
            "[::1]:443",
            "::1",
            "ws://127.0.0.1:8080/ws",
            "whip://localhost:8080/whip/room",
            "whep://[::1]:8080/whep",
            "http://user@127.0.0.1:80/",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(check_target(t, false).is_ok(), "{t} should be accepted");
        }
    }

    #[test]
    fn remote_targets_are_refused_without_allow_remote() {
        for t in [
            "10.0.0.1:80",
            "192.168.1.1",
            "8.8.8.8:53",
            "example.com",
            "localhost.evil.com:80",
            "ws://203.0.113.9:8080/ws",
            "whip://sfu.example.org/whip",
            "[2001:db8::1]:443",
            "http://127.0.0.1@evil.com/",
            "0.0.0.0:80",
        ] {
            let err = check_target(t, false).unwrap_err();
            assert!(matches!(err, Error::RemoteTarget(_)), "{t}: {err}");
            assert!(check_target(t, true).is_ok(), "{t} with --allow-remote");
        }
    }

    #[test]
    fn socket_addresses_follow_the_same_rule() {
        assert!(check_addr("127.0.0.1:5000".parse().unwrap(), false).is_ok());
        assert!(check_addr("10.1.1.1:5000".parse().unwrap(), false).is_err());
        assert!(check_addr("10.1.1.1:5000".parse().unwrap(), true).is_ok());
    }

    #[test]
    fn malformed_targets_are_errors() {
        assert!(matches!(
            check_target("", false),
            Err(Error::InvalidTarget(..))
        ));
        assert!(matches!(
            check_target("ws:///x", false),
            Err(Error::InvalidTarget(..))
        ));
        assert!(matches!(
            check_target("[::1", false),
            Err(Error::InvalidTarget(..))
        ));
    }
}
