//! Clinician subscriptions: the snapshot of an organisation's rooms, the
//! subscriber sets live events go to, and the periodic `waiting_times`.
//! A room created after a clinician subscribed (admin API) reaches them as a
//! fresh `queue_snapshot` when its first patient arrives.

use std::collections::BTreeSet;
use std::time::Instant;

use protocol::TenantId;
use protocol::client::{
    RequestId, RoomQueue as WireRoom, SignalingToClient, StaffIdentity, WaitingTime,
};

use super::{ConnId, Lobby};

impl Lobby {
    /// Adds the connection to its tenant's subscribers and sends the snapshot.
    pub(super) fn subscribe(
        &mut self,
        conn: ConnId,
        staff: &StaffIdentity,
        request: Option<RequestId>,
        now: Instant,
    ) {
        self.subscribers
            .entry(staff.tenant.clone())
            .or_default()
            .insert(conn);
        if self.next_refresh.is_none() {
            self.next_refresh = Some(now + self.settings.refresh);
        }
        let rooms = self.snapshot(&staff.tenant, now);
        self.send(conn, SignalingToClient::QueueSnapshot { request, rooms });
    }

    /// Before the first patient of a room the tenant's subscribers were
    /// never shown: sends them a fresh snapshot, so the arrival that follows
    /// lands in a room their page knows.
    pub(super) fn announce_room(&mut self, info: &crate::directory::RoomInfo, now: Instant) {
        let known = self
            .known_rooms
            .get(&info.tenant)
            .is_some_and(|k| k.contains(&info.id));
        let Some(subs) = self.subscribers.get(&info.tenant).cloned() else {
            return;
        };
        if known {
            return;
        }
        tracing::debug!(room = %info.id, "a new room: fresh snapshot for the organisation");
        let rooms = self.snapshot(&info.tenant, now);
        for c in subs {
            let msg = SignalingToClient::QueueSnapshot {
                request: None,
                rooms: rooms.clone(),
            };
            self.send(c, msg);
        }
    }

    /// The rooms of `tenant` with their queues; remembers them as shown.
    fn snapshot(&mut self, tenant: &TenantId, now: Instant) -> Vec<WireRoom> {
        let mut infos = self.directory.rooms_of(tenant);
        infos.retain(|r| &r.tenant == tenant);
        infos.sort_by(|a, b| a.id.cmp(&b.id));
        let rooms = infos
            .into_iter()
            .map(|info| {
                let entries = self.rooms.get(&info.id).map_or_else(Vec::new, |q| {
                    let waiting = q
                        .waiting
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (p, Some(u32::try_from(i + 1).unwrap_or(u32::MAX))));
                    waiting
                        .chain(q.consulting.iter().map(|p| (p, None)))
                        .filter_map(|(p, pos)| {
                            self.seats.get(p).map(|s| Self::entry_at(s, pos, now))
                        })
                        .collect()
                });
                WireRoom {
                    room: info.id,
                    name: info.name,
                    hide_position: info.hide_position,
                    entries,
                    intake: info.intake,
                }
            })
            .collect::<Vec<_>>();
        let ids: BTreeSet<_> = rooms.iter().map(|r| r.room.clone()).collect();
        self.known_rooms.insert(tenant.clone(), ids);
        rooms
    }

    /// Removes a clinician connection's subscription.
    pub(super) fn unsubscribe(&mut self, conn: ConnId, tenant: &TenantId) {
        if let Some(subs) = self.subscribers.get_mut(tenant) {
            subs.remove(&conn);
            if subs.is_empty() {
                self.subscribers.remove(tenant);
            }
        }
    }

    /// Sends `waiting_times` for every non-empty room to its tenant's subscribers.
    pub(super) fn refresh_waiting_times(&mut self, now: Instant) {
        let mut msgs = Vec::new();
        for (id, q) in &self.rooms {
            if q.is_empty() || !self.subscribers.contains_key(&q.tenant) {
                continue;
            }
            let entries = q
                .waiting
                .iter()
                .enumerate()
                .map(|(i, p)| (Some(u32::try_from(i + 1).unwrap_or(u32::MAX)), p))
                .chain(q.consulting.iter().map(|p| (None, p)))
                .filter_map(|(position, p)| {
                    self.seats.get(p).map(|s| WaitingTime {
                        participant: p.clone(),
                        position,
                        waited_secs: now.saturating_duration_since(s.joined_at).as_secs(),
                    })
                })
                .collect();
            msgs.push((
                q.tenant.clone(),
                SignalingToClient::WaitingTimes {
                    room: id.clone(),
                    entries,
                },
            ));
        }
        for (tenant, msg) in msgs {
            self.broadcast(&tenant, &msg);
        }
    }
}
