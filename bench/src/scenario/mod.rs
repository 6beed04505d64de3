//! Scenarios: what `bench <scenario>` runs. `loopback` works today; `fanout`, `meeting`,
//! `audio` and `failover` need the client↔signaling↔relay media path (issue 4), and
//! `lobby` needs the signaling client protocol (issue 2); those say so and exit
//! non-zero rather than report anything.

pub mod cli;
pub mod loopback;

/// Why a scenario cannot run yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable {
    /// Scenario name.
    pub scenario: &'static str,
    /// The issue that provides what it needs.
    pub needs_issue: u32,
    /// What exactly is missing.
    pub missing: &'static str,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bench {}: not available yet: needs issue {} ({}). No load was generated and no results are reported.",
            self.scenario, self.needs_issue, self.missing
        )
    }
}

/// Scenarios that are defined (flags, help) but cannot run yet.
pub const UNAVAILABLE: [Unavailable; 5] = [
    Unavailable {
        scenario: "fanout",
        needs_issue: 4,
        missing: "SDP offer/answer through signaling, placement on a relay, WHIP/WHEP",
    },
    Unavailable {
        scenario: "meeting",
        needs_issue: 4,
        missing: "multi-party rooms on a relay via signaling",
    },
    Unavailable {
        scenario: "audio",
        needs_issue: 4,
        missing: "SDP offer/answer through signaling and placement on a relay",
    },
    Unavailable {
        scenario: "lobby",
        needs_issue: 2,
        missing: "the client↔signaling waiting-room protocol client, still being built",
    },
    Unavailable {
        scenario: "failover",
        needs_issue: 4,
        missing: "relay moved + renegotiation with a sibling relay",
    },
];

/// The unavailability notice of `scenario`, if it is one of [`UNAVAILABLE`].
pub fn unavailable(scenario: &str) -> Option<Unavailable> {
    UNAVAILABLE.iter().copied().find(|u| u.scenario == scenario)
}
