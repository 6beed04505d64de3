// The clinician's call view in the portal: opened by `call_ready` after an
// admit; the multi-party grid (Anteroom.Call) with the active speaker, the
// roster, invitation links (`create_invite`), and the consultation actions
// (return to queue, transfer, leave the call, end the consultation, which
// wipes the patient's intake answers).
'use strict';

(() => {
  const { $, el, announce } = Anteroom;
  const CALL_TYPES = new Set([
    'call_ready', 'call_answer', 'call_renegotiate', 'relay_moved', 'call_waiting_for_relay',
    'roster', 'call_ended', 'invite_created',
  ]);

  class CallView {
    /** `portal`: { send(msg), request(msg) -> Promise<reply>, nameOf(participant),
     *  pendingPatient() -> participant admitted last, onTransfer(participant),
     *  selfName }. */
    constructor(portal) {
      this.portal = portal;
      this.call = null;
      this.callId = null;
      this.patient = null;
      this.local = null;
      this.early = [];
      this.opening = false;
      this.audioMuted = false;
      this.videoMuted = false;
      this.wire();
    }

    /** Takes call messages; true if handled. */
    handle(msg) {
      if (!CALL_TYPES.has(msg.type)) return false;
      if (msg.type === 'invite_created') {
        this.showInvite(msg);
        return true;
      }
      if (this.call) {
        this.call.handle(msg);
        if (msg.type === 'call_ended' && msg.call === this.callId) this.closed('The call has ended.');
        return true;
      }
      if (msg.type === 'call_ended') return true;
      this.early.push(msg);
      if ((msg.type === 'call_ready' || msg.type === 'call_waiting_for_relay') && !this.opening) this.open(msg);
      return true;
    }

    async open(first) {
      this.opening = true;
      this.callId = first.call;
      this.patient = this.portal.pendingPatient();
      const name = this.patient ? this.portal.nameOf(this.patient) : null;
      $('call-h').textContent = name ? `Consultation with ${name}` : 'Consultation';
      $('view-call').hidden = false;
      $('invite-box').hidden = true;
      $('btn-return').hidden = !this.patient;
      $('btn-end').hidden = !this.patient;
      $('btn-transfer-call').hidden = !this.patient;
      // A new consultation starts unmuted: buttons, tracks (opened fresh
      // below) and the roster (a new entry starts unmuted) agree.
      this.setMuteButtons(false, false);
      if (!this.local) {
        try {
          this.local = await Anteroom.media.openLocal('', '');
        } catch (_) {
          this.local = new MediaStream();
          announce('Your camera or microphone could not be opened; the patient will not see or hear you.');
        }
      }
      this.call = new Anteroom.Call({
        send: (m) => this.portal.send(m),
        grid: $('grid'),
        local: this.local,
        selfLabel: this.portal.selfName,
        onBanner: (text) => {
          $('banner').hidden = !text;
          $('banner').textContent = text || '';
        },
        onQuality: (level, text) => {
          $('quality').className = `quality ${level}`;
          $('quality').textContent = text;
        },
        onEnded: () => {},
        onRoster: (entries) => this.renderRoster(entries),
      });
      this.opening = false;
      for (const m of this.early.splice(0)) this.call.handle(m);
      // The tracks follow the buttons (muted while the camera was opening?);
      // signaling hears of a mute once the call has its id (call_ready).
      if (this.audioMuted || this.videoMuted) {
        this.call.setMuted(this.audioMuted, this.videoMuted);
      } else {
        for (const t of this.local.getTracks()) t.enabled = true;
      }
      $('call-h').tabIndex = -1;
      $('call-h').focus();
      announce($('call-h').textContent);
    }

    renderRoster(entries) {
      $('roster').replaceChildren(...entries.map((e) => el('li', {},
        el('strong', { text: e.display_name }), ` (${e.role})`,
        e.audio_muted ? ' · muted' : '', e.video_muted ? ' · camera off' : '')));
    }

    showInvite(msg) {
      const link = `${location.origin}${msg.path}`;
      $('invite-link').value = link;
      $('invite-box').hidden = false;
      const mins = Math.round((msg.expires_in_secs || 900) / 60);
      $('invite-expiry').textContent = `Single use; expires in ${mins} min. Send it to the person you want to add; admit them when they arrive in your queue.`;
      $('invite-link').focus();
      $('invite-link').select();
      announce('Invitation link created.');
    }

    /** The patient of this call left the queue (ended elsewhere, left…). */
    patientGone(participant) {
      if (this.call && participant === this.patient) this.closed('The patient has left the consultation.');
    }

    closed(text) {
      if (this.call) this.call.close();
      this.call = null;
      this.callId = null;
      this.patient = null;
      this.early = [];
      this.setMuteButtons(false, false);
      if (this.local) for (const t of this.local.getTracks()) t.stop();
      this.local = null;
      $('view-call').hidden = true;
      $('banner').hidden = true;
      announce(text);
    }

    /** Sets the mute state and the buttons showing it (not the tracks). */
    setMuteButtons(audio, video) {
      this.audioMuted = audio;
      this.videoMuted = video;
      $('btn-mic').setAttribute('aria-pressed', String(audio));
      $('btn-mic').textContent = audio ? 'Unmute microphone' : 'Mute microphone';
      $('btn-cam').setAttribute('aria-pressed', String(video));
      $('btn-cam').textContent = video ? 'Turn camera on' : 'Turn camera off';
    }

    wire() {
      $('btn-mic').addEventListener('click', () => {
        this.setMuteButtons(!this.audioMuted, this.videoMuted);
        if (this.call) this.call.setMuted(this.audioMuted, this.videoMuted);
      });
      $('btn-cam').addEventListener('click', () => {
        this.setMuteButtons(this.audioMuted, !this.videoMuted);
        if (this.call) this.call.setMuted(this.audioMuted, this.videoMuted);
      });
      $('btn-invite').addEventListener('click', async () => {
        if (!this.callId) return;
        const reply = await this.portal.request({ type: 'create_invite', call: this.callId });
        if (reply.type === 'error') announce(`Could not create the link: ${reply.message}`);
      });
      $('btn-copy').addEventListener('click', async () => {
        try {
          await navigator.clipboard.writeText($('invite-link').value);
          announce('Link copied.');
        } catch (_) {
          $('invite-link').select();
          announce('Select the link and copy it with Ctrl+C.');
        }
      });
      $('btn-return').addEventListener('click', async () => {
        if (!this.patient) return;
        const reply = await this.portal.request({ type: 'return_to_queue', participant: this.patient });
        if (reply.type === 'ok') this.leaveCall('The patient is back at the front of the queue.');
        else announce(`Could not return the patient: ${reply.message}`);
      });
      $('btn-transfer-call').addEventListener('click', () => {
        if (this.patient) this.portal.onTransfer(this.patient);
      });
      $('btn-leave-call').addEventListener('click', () => this.leaveCall('You left the call.'));
      $('btn-end').addEventListener('click', async () => {
        if (!this.patient) return;
        const reply = await this.portal.request({ type: 'end_consultation', participant: this.patient });
        if (reply.type === 'ok') this.closed('Consultation ended. The intake answers were deleted.');
        else announce(`Could not end the consultation: ${reply.message}`);
      });
    }

    leaveCall(text) {
      if (this.callId) this.portal.send({ type: 'call_leave', call: this.callId });
      this.closed(text);
    }
  }

  Anteroom.CallView = CallView;
})();
