//! Clinician subscriptions: the snapshot of an organisation's rooms, the
//! subscriber sets live events go to, and the periodic `waiting_times`.

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
        let mut infos = self.directory.rooms_of(&staff.tenant);
        infos.retain(|r| r.tenant == staff.tenant);
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
            .collect();
        self.send(conn, SignalingToClient::QueueSnapshot { request, rooms });
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
