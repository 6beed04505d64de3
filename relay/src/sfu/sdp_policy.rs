//! What the relay accepts in a client's SDP before str0m sees it: media is
//! DTLS-SRTP only (issue 8).
//!
//! - every m-line uses a DTLS profile: `UDP/TLS/RTP/SAVPF` (or `SAVP`, or the
//!   `TCP/TLS/…` variants) for audio and video, `UDP/DTLS/SCTP` (or
//!   `DTLS/SCTP`, `TCP/DTLS/SCTP`) for the data channel. Plain `RTP/AVP(F)`
//!   and SDES-keyed `RTP/SAVP(F)` are refused;
//! - no `a=crypto:` line (SDES keys in the signaling path) anywhere;
//! - an offer carries an `a=fingerprint:` (session or media level) with a
//!   hash function str0m can check (sha-256, sha-384, sha-512, or sha-1).
//!
//! The DTLS certificate is then checked against that fingerprint by str0m
//! (fingerprint verification is on; a mismatch ends the session before any
//! SRTP key exists). SRTP profiles are str0m's: AEAD-AES-256-GCM,
//! AEAD-AES-128-GCM, AES128-CM-HMAC-SHA1-80; no null cipher is compiled in.

use super::error::SfuError;

/// Media transport profiles (m-line "proto") accepted.
const MEDIA_PROTOS: &[&str] = &[
    "UDP/TLS/RTP/SAVPF",
    "UDP/TLS/RTP/SAVP",
    "TCP/TLS/RTP/SAVPF",
    "TCP/TLS/RTP/SAVP",
];

/// Data channel transport profiles accepted.
const DATA_PROTOS: &[&str] = &["UDP/DTLS/SCTP", "DTLS/SCTP", "TCP/DTLS/SCTP"];

/// Fingerprint hash functions accepted.
const HASHES: &[&str] = &["sha-256", "sha-384", "sha-512", "sha-1"];

/// Whether an SDP is an offer (must carry a fingerprint) or an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Offer,
    Answer,
}

/// Refuses SDP that would not be DTLS-SRTP (see the module doc).
pub(super) fn check(sdp: &str, kind: Kind) -> Result<(), SfuError> {
    let mut fingerprint = false;
    for line in sdp.lines().map(str::trim) {
        if line.starts_with("a=crypto:") {
            return Err(refuse(
                "SDES keys (a=crypto) are not accepted: DTLS-SRTP only",
            ));
        }
        if let Some(m) = line.strip_prefix("m=") {
            check_m_line(m)?;
        }
        if let Some(f) = line.strip_prefix("a=fingerprint:") {
            let hash = f.split_whitespace().next().unwrap_or_default();
            if !HASHES.iter().any(|h| h.eq_ignore_ascii_case(hash)) {
                return Err(refuse("unsupported a=fingerprint hash function"));
            }
            fingerprint = true;
        }
    }
    if kind == Kind::Offer && !fingerprint {
        return Err(refuse("no a=fingerprint: DTLS-SRTP is required"));
    }
    Ok(())
}

/// `m=<media> <port> <proto> <fmt> ...`
fn check_m_line(m: &str) -> Result<(), SfuError> {
    let mut parts = m.split_whitespace();
    let media = parts.next().unwrap_or_default();
    let proto = parts.nth(1).unwrap_or_default();
    let allowed = if media == "application" {
        DATA_PROTOS
    } else {
        MEDIA_PROTOS
    };
    if allowed.iter().any(|p| p.eq_ignore_ascii_case(proto)) {
        Ok(())
    } else {
        Err(refuse("m-line transport is not DTLS-SRTP"))
    }
}

fn refuse(why: &str) -> SfuError {
    SfuError::Sdp(why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "a=fingerprint:sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

    fn offer(proto: &str, extra: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n{FP}\r\nm=audio 9 {proto} 111\r\n{extra}a=rtpmap:111 opus/48000/2\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
        )
    }

    #[test]
    fn dtls_srtp_offers_pass() {
        assert!(check(&offer("UDP/TLS/RTP/SAVPF", ""), Kind::Offer).is_ok());
        assert!(check(&offer("UDP/TLS/RTP/SAVP", ""), Kind::Offer).is_ok());
    }

    #[test]
    fn plain_rtp_sdes_and_missing_fingerprints_are_refused() {
        for proto in ["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF", ""] {
            let e = check(&offer(proto, ""), Kind::Offer).unwrap_err();
            assert!(e.to_string().contains("not DTLS-SRTP"), "{proto}: {e}");
        }
        let sdes = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";
        let e = check(&offer("UDP/TLS/RTP/SAVPF", sdes), Kind::Offer).unwrap_err();
        assert!(e.to_string().contains("a=crypto"), "{e}");
        let no_fp = offer("UDP/TLS/RTP/SAVPF", "").replace(FP, "");
        let e = check(&no_fp, Kind::Offer).unwrap_err();
        assert!(e.to_string().contains("fingerprint"), "{e}");
        // An answer may leave the fingerprint out (the first offer set it).
        assert!(check(&no_fp, Kind::Answer).is_ok());
        let md5 = offer("UDP/TLS/RTP/SAVPF", "").replace("sha-256", "md5");
        assert!(check(&md5, Kind::Offer).is_err());
    }
}
