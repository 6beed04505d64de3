//! The lobby runner's lifecycle: no lobby for a term that ended during its
//! takeover, a missed loss restarts the lobby, shutdown waits for the lobby.

use std::sync::Arc;
use std::time::Duration;

use protocol::client::IntakeAnswers;
use protocol::{NodeId, ParticipantId, Region, Sensitive};
use tokio::sync::watch;

use super::{Current, LobbyParts, follow, spawn};
use crate::audit::Audit;
use crate::clock::Clock;
use crate::cluster::Ownership;
use crate::cluster::owner::Term;
use crate::directory::Directory;
use crate::lobby::LobbySettings;
use crate::relays::{RelayPool, RelaySettings};
use crate::store::seats::{MemorySeats, PatientDetails, SeatRecord, SeatState, SeatStore as _};
use crate::ws::driver::Command;

fn parts() -> LobbyParts {
    let (directory, _) = Directory::dev_demo();
    LobbyParts {
        directory: Arc::new(directory),
        settings: LobbySettings::default(),
        audit: Audit::memory().0,
        clock: Clock::default(),
        relays: RelayPool::new(RelaySettings::new(
            b"0123456789abcdef0123".to_vec(),
            Region::new("local").unwrap(),
        )),
        seats: Some(Arc::new(MemorySeats::new())),
        bus: None,
    }
}

#[tokio::test]
async fn no_lobby_is_spawned_for_a_term_lost_while_it_was_being_taken_over() {
    let parts = parts();
    let (tx, rx) = watch::channel(Term::Owner(1));
    let mut current: Option<Current> = None;
    // The runner was told of term 1; by the time the seats are loaded the
    // lease is gone.
    tx.send(Term::FrontEnd).unwrap();
    follow(&parts, &mut current, Term::Owner(1), &rx, false).await;
    assert!(
        current.is_none(),
        "a lobby was spawned for a term that had already ended"
    );
    // The term that is current is followed as usual.
    tx.send(Term::Owner(2)).unwrap();
    follow(&parts, &mut current, Term::Owner(2), &rx, true).await;
    let lobby = current.as_ref().map(|c| c.handle.clone()).unwrap();
    assert!(lobby.stats().await.is_some());
}

#[tokio::test]
async fn a_change_that_shows_the_same_token_restarts_the_lobby() {
    let parts = parts();
    let (_tx, rx) = watch::channel(Term::Owner(7));
    let mut current: Option<Current> = None;
    follow(&parts, &mut current, Term::Owner(7), &rx, false).await;
    let old = current.as_ref().map(|c| c.handle.clone()).unwrap();
    assert!(old.stats().await.is_some());
    // Lost and taken again under the same token while the runner was busy.
    follow(&parts, &mut current, Term::Owner(7), &rx, true).await;
    assert!(
        old.stats().await.is_none(),
        "the lobby of the missed loss still runs"
    );
    let new = current.as_ref().map(|c| c.handle.clone()).unwrap();
    assert!(new.stats().await.is_some());
}

/// Puts one waiting seat of the directory's first room into `store`.
fn seed(parts: &LobbyParts, store: &MemorySeats) -> ParticipantId {
    let tenant = parts.directory.tenants().remove(0).id;
    let room = parts.directory.rooms_of(&tenant).remove(0).id;
    let participant = ParticipantId::new("p-runner-test").unwrap();
    let seat = SeatRecord {
        participant: participant.clone(),
        tenant,
        room,
        token_hash: [7; 32],
        state: SeatState::Waiting,
        joined_unix_ms: 1_700_000_000_000,
        call: None,
        relay: None,
        invited_to: None,
    };
    let details = PatientDetails {
        display_name: Sensitive::new("Test".to_owned()),
        intake: Sensitive::new(IntakeAnswers::default()),
    };
    store
        .insert(&seat, &details, Duration::from_secs(3600))
        .unwrap();
    participant
}

#[tokio::test]
async fn shutdown_returns_only_after_the_lobby_wrote_its_seats_and_ended() {
    let store = Arc::new(MemorySeats::new());
    let mut parts = parts();
    parts.seats = Some(store.clone());
    let seat = seed(&parts, &store);
    let relays = parts.relays.clone();
    let ownership = Ownership::single(NodeId::new("sig-a").unwrap());
    let (handle, runner) = spawn(parts, &ownership);
    assert_eq!(handle.stats().await.map(|s| s.seats), Some(1), "restored");
    // The store loses the seat; the lobby is asked to write every seat
    // again and shut down at once: the rewrite must land before shutdown
    // returns (the lease is released right after).
    store.remove(&seat).unwrap();
    handle.send(Command::RewriteSeats).await.unwrap();
    // Commands still queued in the runner when it stops are dropped: wait
    // until the lobby has taken the rewrite (commands keep their order).
    assert!(handle.stats().await.is_some());
    assert!(runner.shutdown(Duration::from_secs(2)).await);
    assert!(
        store.get(&seat).unwrap().is_some(),
        "the lobby had not written its seats when shutdown returned"
    );
    // The lobby (through its calls) and the runner held the relay pool:
    // both are gone once shutdown returns.
    assert_eq!(Arc::strong_count(&relays), 1, "a lobby task still runs");
}
