//! The audit trail of clinician and admin actions: one JSON object per line
//! with a UTC RFC 3339 `time`, the `action` (snake_case) and the ids involved.
//!
//! An [`AuditEvent`] has no field that could hold a token, a password, a
//! patient's name or an intake answer; `detail` is for short machine-readable
//! reasons (`bad_password`, `unknown_username`) and callers must keep it so.
//! [`Audit`] is a cheap cloneable handle; each line is written and flushed
//! under a mutex (a few microseconds), so it may be called from async code.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use protocol::{ClinicianId, ParticipantId, RoomId, TenantId};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A clinician logged in.
    Login,
    /// A login failed (unknown username, wrong password, disabled account).
    LoginFailed,
    /// A login was refused by the throttle without checking the password.
    LoginThrottled,
    /// A clinician logged out.
    Logout,
    /// A session ended by idle or absolute expiry.
    SessionExpired,
    /// A clinician admitted a patient.
    Admit,
    /// A clinician denied a patient.
    Deny,
    /// A clinician transferred a patient to another clinician or room.
    Transfer,
    /// A clinician returned an admitted patient to the queue.
    ReturnToQueue,
    /// A consultation ended.
    EndConsultation,
    /// An admin created an account.
    AccountCreated,
    /// An admin disabled an account.
    AccountDisabled,
    /// An admin enabled an account.
    AccountEnabled,
    /// A clinician was issued a WHIP/WHEP token for a call.
    IngestTokenIssued,
    /// An admin created a room (detail `kind=…`).
    RoomCreated,
    /// An admin changed a room's name, kind, questions or position setting.
    RoomUpdated,
    /// An admin closed a room to new patients.
    RoomClosed,
    /// An admin reopened a closed room.
    RoomReopened,
    /// A state-changing request was refused by the CSRF check (detail says why).
    CsrfRejected,
    /// A clinician turned on a TOTP second factor.
    TotpEnrolled,
    /// An admin removed a clinician's TOTP second factor.
    TotpReset,
}

/// One audit record. Build it with [`AuditEvent::new`] and the setters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// What happened.
    pub action: AuditAction,
    /// The account that acted (or tried to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<ClinicianId>,
    /// The organisation concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
    /// The waiting room concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomId>,
    /// The patient concerned (by id only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant: Option<ParticipantId>,
    /// The account acted upon (account changes, transfers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_clinician: Option<ClinicianId>,
    /// The requester's network address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    /// A short machine-readable reason; never patient data or secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An event with only its action set.
    pub fn new(action: AuditAction) -> Self {
        Self {
            action,
            actor: None,
            tenant: None,
            room: None,
            participant: None,
            target_clinician: None,
            source: None,
            detail: None,
        }
    }

    /// Sets the acting account.
    #[must_use]
    pub fn actor(mut self, id: ClinicianId) -> Self {
        self.actor = Some(id);
        self
    }

    /// Sets the organisation.
    #[must_use]
    pub fn tenant(mut self, id: TenantId) -> Self {
        self.tenant = Some(id);
        self
    }

    /// Sets the waiting room.
    #[must_use]
    pub fn room(mut self, id: RoomId) -> Self {
        self.room = Some(id);
        self
    }

    /// Sets the patient (id only).
    #[must_use]
    pub fn participant(mut self, id: ParticipantId) -> Self {
        self.participant = Some(id);
        self
    }

    /// Sets the account acted upon.
    #[must_use]
    pub fn target_clinician(mut self, id: ClinicianId) -> Self {
        self.target_clinician = Some(id);
        self
    }

    /// Sets the requester's address.
    #[must_use]
    pub fn source(mut self, ip: IpAddr) -> Self {
        self.source = Some(ip);
        self
    }

    /// Sets a short machine-readable reason (e.g. `"bad_password"`).
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// The line as written: the time first, then the event's fields.
#[derive(Serialize)]
struct Line {
    time: String,
    #[serde(flatten)]
    event: AuditEvent,
}

#[derive(Debug)]
enum Sink {
    File(Mutex<BufWriter<File>>),
    Stderr,
    Memory(AuditBuffer),
}

/// Where audit lines go. Clone it freely; clones share the sink.
#[derive(Clone, Debug)]
pub struct Audit {
    sink: Arc<Sink>,
}

/// The lines recorded by an [`Audit::memory`] handle (for tests).
#[derive(Clone, Debug, Default)]
pub struct AuditBuffer {
    lines: Arc<Mutex<Vec<String>>>,
}

impl AuditBuffer {
    /// Every line recorded so far, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Audit {
    /// Appends to the file at `path` (created with mode 0600 if missing).
    pub fn to_file(path: &Path) -> io::Result<Audit> {
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(path)?;
        Ok(Self::with(Sink::File(Mutex::new(BufWriter::new(file)))))
    }

    /// Writes to standard error.
    pub fn stderr() -> Audit {
        Self::with(Sink::Stderr)
    }

    /// Keeps lines in memory; the buffer reads them back.
    pub fn memory() -> (Audit, AuditBuffer) {
        let buf = AuditBuffer::default();
        (Self::with(Sink::Memory(buf.clone())), buf)
    }

    fn with(sink: Sink) -> Audit {
        Audit {
            sink: Arc::new(sink),
        }
    }

    /// Records `event` with the current UTC time. A write failure is logged
    /// (without the event) and otherwise ignored: auditing never takes the
    /// service down.
    pub fn record(&self, event: AuditEvent) {
        let time = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_else(|_| "unknown".to_owned());
        let action = event.action;
        crate::metrics::global().audit(&event);
        let line = match serde_json::to_string(&Line { time, event }) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "audit event not serialisable");
                return;
            }
        };
        let result = match &*self.sink {
            Sink::File(w) => {
                let mut w = w.lock().unwrap_or_else(PoisonError::into_inner);
                writeln!(w, "{line}").and_then(|()| w.flush())
            }
            Sink::Stderr => writeln!(io::stderr().lock(), "{line}"),
            Sink::Memory(buf) => {
                buf.lines
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, ?action, "audit write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_utc_time_snake_case_action_and_only_set_fields() {
        let (audit, buf) = Audit::memory();
        audit.record(
            AuditEvent::new(AuditAction::ReturnToQueue)
                .actor(ClinicianId::new("dr-lee").unwrap())
                .tenant(TenantId::new("north").unwrap())
                .room(RoomId::new("gp").unwrap())
                .participant(ParticipantId::new("p1").unwrap())
                .source("10.0.0.1".parse().unwrap()),
        );
        audit.record(AuditEvent::new(AuditAction::LoginFailed).detail("unknown_username"));
        let lines = buf.lines();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["action"], "return_to_queue");
        assert_eq!(v["actor"], "dr-lee");
        assert_eq!(v["tenant"], "north");
        assert_eq!(v["room"], "gp");
        assert_eq!(v["participant"], "p1");
        assert_eq!(v["source"], "10.0.0.1");
        let time = v["time"].as_str().unwrap();
        assert!(time.ends_with('Z'), "{time}");
        let year_now = OffsetDateTime::now_utc().year().to_string();
        assert!(
            time.starts_with(&year_now) && time.get(10..11) == Some("T"),
            "{time}"
        );
        let v: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 3, "{v}");
        assert_eq!(v["detail"], "unknown_username");
    }

    #[test]
    fn file_sink_appends_lines() {
        let path =
            std::env::temp_dir().join(format!("anteroom-audit-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let audit = Audit::to_file(&path).unwrap();
        audit.clone().record(AuditEvent::new(AuditAction::Login));
        drop(audit);
        let audit = Audit::to_file(&path).unwrap();
        audit.record(AuditEvent::new(AuditAction::Logout));
        let text = std::fs::read_to_string(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o077,
                0,
                "audit file must not be world/group readable"
            );
        }
        let _ = std::fs::remove_file(&path);
        let actions: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].to_string())
            .collect();
        assert_eq!(actions, ["\"login\"", "\"logout\""]);
    }
}
