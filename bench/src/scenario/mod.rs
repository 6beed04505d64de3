//! Scenarios: what `bench <scenario>` runs. `loopback` (peer to peer, checks the
//! harness), `fanout`, `meeting` and `audio` (a real relay, [`sfu`]) and `failover`
//! (two local relays, [`failover`]) work; scenarios that cannot run yet say so and
//! exit non-zero rather than report anything.

pub mod check;
pub mod cli;
pub mod failover;
pub mod failover_cli;
pub mod lobby_cli;
pub mod loopback;
pub mod ramp;
pub mod relay_cli;
pub mod sfu;
pub mod whip_target;

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
pub const UNAVAILABLE: [Unavailable; 0] = [];

/// The unavailability notice of `scenario`, if it is one of [`UNAVAILABLE`].
pub fn unavailable(scenario: &str) -> Option<Unavailable> {
    UNAVAILABLE.iter().copied().find(|u| u.scenario == scenario)
}
