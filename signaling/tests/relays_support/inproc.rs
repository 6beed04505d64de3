//! In-process fakes for the relay pool tests: a pool on a manual clock and
//! relays as [`RelayLink`]s (no sockets).

use std::sync::Arc;
use std::time::Duration;

use protocol::Region;
use protocol::control::{Heartbeat, Register, RelayLoad, RelayToSignaling};
use signaling::clock::Clock;
use signaling::relays::{RelayEvent, RelayLink, RelayPool, RelaySettings};
use tokio::sync::broadcast;

use super::SECRET;

/// The heartbeat interval of [`pool`].
pub const BEAT: Duration = Duration::from_secs(1);

pub fn region(s: &str) -> Region {
    Region::new(s).unwrap()
}

/// A `register` for `id` in `region` re-announcing `rooms`, signed right.
pub fn reg(id: &str, region: &str, rooms: &[&str]) -> Register {
    super::register(id, region, rooms, SECRET.as_bytes())
}

/// A pool in region `eu` trying `eu`, then `us`, on a manual clock.
pub fn pool() -> (Arc<RelayPool>, Clock) {
    let clock = Clock::manual();
    let mut settings = RelaySettings::new(SECRET, region("eu"));
    settings.region_order = vec![region("eu"), region("us")];
    settings.clock = clock.clone();
    (RelayPool::new(settings), clock)
}

/// A heartbeat through `link`.
pub fn beat(link: &RelayLink, participants: u32, draining: bool) {
    let hb = Heartbeat {
        load: RelayLoad {
            participants,
            ..RelayLoad::default()
        },
        draining,
    };
    assert_eq!(link.handle(RelayToSignaling::Heartbeat(hb)), None);
}

/// The event that must already be there.
pub fn next_now(rx: &mut broadcast::Receiver<RelayEvent>) -> RelayEvent {
    rx.try_recv().expect("an event")
}
