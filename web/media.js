// Anteroom media: Anteroom.Call, one participant's side of a call on a relay
// (CALLS.md / docs/protocol.md; the camera and microphone themselves are in
// devices.js): the client offers audio + video + the
// "anteroom" data channel, answers the relay's renegotiations, shows one
// tile per publisher (the msid stream id is the publisher's participant
// id), highlights the active speaker, rates the connection from getStats,
// and on `relay_moved` or an ICE failure builds a new peer connection and
// offers again, without reloading the page.
//
// Recovery back-off: a failed connection asks signaling for a placement
// (`call_ice_failed`) only after a wait that starts at RETRY_BASE_MS and
// doubles up to RETRY_MAX_MS (±RETRY_JITTER), reset once a connection
// reaches `connected`; so a connection that fails instantly cannot loop
// call_ice_failed -> relay_moved -> new peer connection without pause. A
// `relay_moved` is always acted on at once: either it answers our (already
// delayed) request, or the call really moved (failover) and waiting would
// only lengthen the outage.
'use strict';

(() => {
  const { el } = Anteroom;

  /** First wait before asking for a new placement, in ms. */
  const RETRY_BASE_MS = 500;
  /** Longest wait between two requests for a new placement, in ms. */
  const RETRY_MAX_MS = 10000;
  /** Random spread of each wait (0.3 = ±30 %), so clients do not retry in step. */
  const RETRY_JITTER = 0.3;
  /** Grace period for a `disconnected` connection before it counts as failed. */
  const DISCONNECT_GRACE_MS = 4000;

  /** The wait before recovery attempt `attempt` (1-based), with jitter. */
  function retryDelay(attempt) {
    const base = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(attempt - 1, 30));
    return Math.round(base * (1 + RETRY_JITTER * (2 * Math.random() - 1)));
  }

  /** One video tile: a <figure> with a <video> and a caption. */
  function makeTile(id, label, local) {
    const video = el('video', { autoplay: true, playsinline: true, 'aria-label': `Video of ${label}` });
    video.muted = Boolean(local);
    const name = el('span', { class: 'name', text: label });
    const flags = el('span', { class: 'flags' });
    const figure = el('figure', { class: 'tile', 'data-participant': id }, video, el('figcaption', {}, name, flags));
    return { figure, video, name, flags };
  }

  /** Shows a roster entry's mute state on its tile. */
  function paintFlags(tile, entry) {
    tile.flags.replaceChildren(
      entry.audio_muted ? el('span', { class: 'flag', text: 'muted' }) : '',
      entry.video_muted ? el('span', { class: 'flag', text: 'camera off' }) : '',
    );
  }

  function play(video) {
    const p = video.play();
    if (p && p.catch) {
      p.catch(() => {
        // Autoplay with sound was refused: play muted and let the user unmute.
        video.muted = true;
        video.play().catch(() => {});
      });
    }
  }

  /** One participant's side of a call. Options: `send(msg)` to signaling,
   *  `grid` (element for the tiles), `local` (MediaStream), `selfLabel`,
   *  `onBanner(text|null)`, `onQuality(level, text)`, `onEnded()`,
   *  `onRoster(entries)`. Feed every signaling message to `handle(msg)`. */
  class Call {
    constructor(opts) {
      this.opts = opts;
      this.id = null;
      this.self = null;
      this.pc = null;
      this.generation = 0;
      this.tiles = new Map();
      this.names = new Map();
      // The last roster entry of each participant: a tile made after the
      // roster (media comes later than the roster) still shows its flags.
      this.entries = new Map();
      this.chain = Promise.resolve();
      this.relay = null;
      // `disconnected` grace period, or the watchdog after a request.
      this.failTimer = null;
      // The back-off wait before the next `call_ice_failed`.
      this.retryTimer = null;
      // Recovery attempts since the last `connected`, requests sent (with
      // their times, for tests and diagnosis) and the current wait.
      this.recovery = { attempts: 0, sent: 0, sentAt: [], waitMs: 0 };
      this.own = null;
      this.stats = { framesDecoded: 0, generation: 0, quality: 'unknown', lost: 0, received: 0 };
      this.statsTimer = setInterval(() => this.sample(), 1000);
      this.localTile = makeTile('self', `${opts.selfLabel || 'You'} (you)`, true);
      this.localTile.video.srcObject = opts.local;
      opts.grid.replaceChildren(this.localTile.figure);
      play(this.localTile.video);
      Anteroom.debug.call = this;
    }

    /** Runs `fn` after every earlier SDP step (they must not interleave). */
    enqueue(fn) {
      this.chain = this.chain.then(fn).catch((e) => console.warn('call step failed', e && e.name));
      return this.chain;
    }

    /** Handles a signaling message; returns true if it was about this call. */
    handle(msg) {
      switch (msg.type) {
        case 'call_ready':
          if (this.id && this.id !== msg.call) return false;
          if (this.id === msg.call && this.pc && this.pc.connectionState === 'connected') return true;
          this.id = msg.call;
          this.self = msg.participant;
          this.relay = msg.relay;
          this.syncMute();
          this.enqueue(() => this.connect());
          return true;
        case 'relay_moved':
          if (msg.call !== this.id) return false;
          // Our own request answered with the same relay keeps the banner
          // it has; a move to another relay says so.
          if (msg.relay !== this.relay) this.opts.onBanner('The call is moving to another server. Reconnecting…');
          this.relay = msg.relay;
          this.enqueue(() => this.connect());
          return true;
        case 'call_waiting_for_relay':
          if (this.id && msg.call !== this.id) return false;
          this.id = msg.call;
          // Signaling sends call_ready/relay_moved once a relay registers:
          // no point asking again meanwhile.
          clearTimeout(this.failTimer);
          clearTimeout(this.retryTimer);
          this.retryTimer = null;
          this.opts.onBanner('Waiting for a video server to become available…');
          return true;
        case 'call_answer':
          if (msg.call !== this.id) return false;
          this.enqueue(async () => {
            if (this.pc && this.pc.signalingState === 'have-local-offer') {
              await this.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
            }
          });
          return true;
        case 'call_renegotiate':
          if (msg.call !== this.id) return false;
          this.enqueue(() => this.answer(msg.sdp));
          return true;
        case 'roster':
          if (msg.call !== this.id) return false;
          this.roster(msg.participants || []);
          return true;
        case 'call_ended':
          if (msg.call !== this.id) return false;
          this.close();
          this.opts.onEnded();
          return true;
        default:
          return false;
      }
    }

    /** A fresh peer connection and offer (first time, or after a move). */
    async connect() {
      if (this.pc) this.pc.close();
      // A new connection supersedes any pending wait to ask for one.
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.generation += 1;
      const generation = this.generation;
      const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', iceServers: [] });
      this.pc = pc;
      const local = this.opts.local;
      // Our own m-lines carry what we publish; other people's media comes
      // on the relay's m-lines (renegotiation), never on these.
      this.own = new Set();
      for (const kind of ['audio', 'video']) {
        const track = local.getTracks().find((t) => t.kind === kind);
        this.own.add(track
          ? pc.addTransceiver(track, { direction: 'sendrecv', streams: [local] })
          : pc.addTransceiver(kind, { direction: 'recvonly' }));
      }
      const channel = pc.createDataChannel('anteroom');
      channel.onmessage = (ev) => this.onChannel(ev.data);
      pc.ontrack = (ev) => this.onTrack(ev);
      pc.onicecandidate = (ev) => {
        if (ev.candidate && ev.candidate.candidate && generation === this.generation) {
          this.opts.send({ type: 'call_candidate', call: this.id, candidate: ev.candidate.candidate });
        }
      };
      pc.onconnectionstatechange = () => this.onState(pc, generation);
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      this.opts.send({ type: 'call_offer', call: this.id, sdp: pc.localDescription.sdp });
    }

    async answer(sdp) {
      const pc = this.pc;
      if (!pc || pc.signalingState !== 'stable') return;
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      this.opts.send({ type: 'call_answer', call: this.id, sdp: pc.localDescription.sdp });
    }

    onState(pc, generation) {
      if (generation !== this.generation) return;
      const state = pc.connectionState;
      if (state === 'connected') {
        clearTimeout(this.failTimer);
        clearTimeout(this.retryTimer);
        this.retryTimer = null;
        this.recovery.attempts = 0;
        this.recovery.waitMs = 0;
        this.opts.onBanner(null);
      } else if (state === 'failed') {
        clearTimeout(this.failTimer);
        this.scheduleRecovery(generation);
      } else if (state === 'disconnected') {
        clearTimeout(this.failTimer);
        this.opts.onBanner('Connection interrupted. Trying to recover…');
        this.failTimer = setTimeout(() => this.scheduleRecovery(generation), DISCONNECT_GRACE_MS);
      }
    }

    /** The connection of `generation` failed: asks for a (new) placement
     *  after the back-off wait; the banner stays up meanwhile. */
    scheduleRecovery(generation) {
      if (generation !== this.generation || !this.id) return;
      this.opts.onBanner('Connection lost. Reconnecting to the call…');
      if (this.retryTimer) return;
      this.recovery.attempts += 1;
      const wait = retryDelay(this.recovery.attempts);
      this.recovery.waitMs = wait;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.requestPlacement();
      }, wait);
    }

    /** Sends `call_ice_failed`; if no connection follows within
     *  RETRY_MAX_MS (no reply, or the new one hangs), tries again. */
    requestPlacement() {
      if (!this.id || (this.pc && this.pc.connectionState === 'connected')) return;
      this.opts.send({ type: 'call_ice_failed', call: this.id });
      this.recovery.sent += 1;
      this.recovery.sentAt.push(Math.round(performance.now()));
      if (this.recovery.sentAt.length > 50) this.recovery.sentAt.shift();
      clearTimeout(this.failTimer);
      this.failTimer = setTimeout(() => {
        if (!this.pc || this.pc.connectionState !== 'connected') this.scheduleRecovery(this.generation);
      }, RETRY_MAX_MS);
    }

    onTrack(ev) {
      if (this.own && this.own.has(ev.transceiver)) return;
      const stream = ev.streams && ev.streams[0];
      const id = stream ? stream.id : `mid-${ev.transceiver.mid}`;
      if (id === this.self) return;
      let tile = this.tiles.get(id);
      if (!tile) {
        tile = makeTile(id, this.names.get(id) || 'Participant', false);
        if (this.entries.has(id)) paintFlags(tile, this.entries.get(id));
        this.tiles.set(id, tile);
        this.opts.grid.append(tile.figure);
      }
      const media = stream || new MediaStream([ev.track]);
      if (tile.video.srcObject !== media) {
        tile.video.srcObject = media;
        play(tile.video);
      }
      media.onremovetrack = () => {
        if (media.getTracks().length === 0 && this.tiles.get(id) === tile) {
          tile.figure.remove();
          this.tiles.delete(id);
        }
      };
    }

    onChannel(data) {
      let msg;
      try {
        msg = JSON.parse(data);
      } catch (_) {
        return;
      }
      if (msg && msg.type === 'active_speaker') {
        for (const [id, tile] of this.tiles) tile.figure.classList.toggle('speaking', id === msg.participant);
        this.localTile.figure.classList.toggle('speaking', msg.participant === this.self);
      }
    }

    roster(entries) {
      const present = new Set();
      for (const e of entries) {
        present.add(e.participant);
        this.names.set(e.participant, e.display_name);
        this.entries.set(e.participant, e);
        const tile = e.participant === this.self ? this.localTile : this.tiles.get(e.participant);
        if (!tile) continue;
        if (e.participant !== this.self) {
          tile.name.textContent = e.display_name;
          tile.video.setAttribute('aria-label', `Video of ${e.display_name}`);
        }
        paintFlags(tile, e);
      }
      for (const id of [...this.entries.keys()]) if (!present.has(id)) this.entries.delete(id);
      for (const [id, tile] of this.tiles) {
        if (entries.length > 0 && !present.has(id)) {
          tile.figure.remove();
          this.tiles.delete(id);
        }
      }
      if (this.opts.onRoster) this.opts.onRoster(entries);
    }

    /** At the start of a call: if a local track is already off, tells
     *  signaling, so the roster agrees with what is sent (a new call's
     *  roster entry starts unmuted). */
    syncMute() {
      const off = (tracks) => tracks.length > 0 && tracks.every((t) => !t.enabled);
      const audio = off(this.opts.local.getAudioTracks());
      const video = off(this.opts.local.getVideoTracks());
      if (audio || video) this.opts.send({ type: 'call_mute', call: this.id, audio, video });
    }

    /** Mutes/unmutes locally and tells the others (via the roster). */
    setMuted(audio, video) {
      for (const t of this.opts.local.getAudioTracks()) t.enabled = !audio;
      for (const t of this.opts.local.getVideoTracks()) t.enabled = !video;
      if (this.id) this.opts.send({ type: 'call_mute', call: this.id, audio, video });
    }

    /** Samples getStats: frames decoded, loss and round-trip time. */
    async sample() {
      const pc = this.pc;
      if (!pc) return;
      let frames = 0;
      let lost = 0;
      let received = 0;
      let rtt = null;
      let report;
      try {
        report = await pc.getStats();
      } catch (_) {
        return;
      }
      report.forEach((s) => {
        if (s.type === 'inbound-rtp') {
          if (s.kind === 'video') frames += s.framesDecoded || 0;
          lost += Math.max(0, s.packetsLost || 0);
          received += s.packetsReceived || 0;
        } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
          if (typeof s.currentRoundTripTime === 'number') rtt = s.currentRoundTripTime;
        }
      });
      const prev = this.stats;
      const same = prev.generation === this.generation;
      const dLost = same ? lost - prev.lost : lost;
      const dRecv = same ? received - prev.received : received;
      const loss = dLost + dRecv > 0 ? dLost / (dLost + dRecv) : 0;
      let quality;
      if (pc.connectionState !== 'connected') quality = 'poor';
      else if (loss < 0.02 && (rtt === null || rtt < 0.3)) quality = 'good';
      else if (loss < 0.08 && (rtt === null || rtt < 0.6)) quality = 'fair';
      else quality = 'poor';
      this.stats = { framesDecoded: frames, generation: this.generation, quality, lost, received, rtt, loss };
      const label = { good: 'Good', fair: 'Fair', poor: pc.connectionState === 'connected' ? 'Poor' : 'Reconnecting' }[quality];
      const detail = rtt === null ? '' : ` (${Math.round(rtt * 1000)} ms, ${(loss * 100).toFixed(0)}% loss)`;
      this.opts.onQuality(quality, `Connection: ${label}${detail}`);
    }

    /** Ends the media side (the caller tells signaling whatever it must). */
    close() {
      clearInterval(this.statsTimer);
      clearTimeout(this.failTimer);
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      if (this.pc) this.pc.close();
      this.pc = null;
      this.generation += 1;
      for (const tile of this.tiles.values()) tile.figure.remove();
      this.tiles.clear();
      this.opts.grid.replaceChildren();
      if (Anteroom.debug.call === this) Anteroom.debug.call = null;
    }
  }

  Anteroom.Call = Call;
})();
