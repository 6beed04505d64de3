// Anteroom media: the camera/microphone (device list, preview, level
// meter) and Anteroom.Call, one participant's side of a call on a relay
// (CALLS.md / docs/protocol.md): the client offers audio + video + the
// "anteroom" data channel, answers the relay's renegotiations, shows one
// tile per publisher (the msid stream id is the publisher's participant
// id), highlights the active speaker, rates the connection from getStats,
// and on `relay_moved` or an ICE failure builds a new peer connection and
// offers again, without reloading the page.
'use strict';

(() => {
  const { el } = Anteroom;

  /** Camera + microphone with the chosen devices (ids may be empty). */
  async function openLocal(camId, micId) {
    return navigator.mediaDevices.getUserMedia({
      audio: micId ? { deviceId: { exact: micId } } : true,
      video: camId
        ? { deviceId: { exact: camId }, width: { ideal: 640 }, height: { ideal: 480 } }
        : { width: { ideal: 640 }, height: { ideal: 480 } },
    });
  }

  /** Fills the camera and microphone <select>s; keeps the current choice. */
  async function listDevices(camSelect, micSelect, stream) {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const current = (kind) => {
      const t = stream && stream.getTracks().find((x) => x.kind === kind);
      return t ? t.getSettings().deviceId : '';
    };
    const fill = (select, kind, fallback) => {
      select.replaceChildren();
      let n = 0;
      for (const d of devices.filter((x) => x.kind === `${kind}input`)) {
        n += 1;
        select.append(el('option', { value: d.deviceId, text: d.label || `${fallback} ${n}` }));
      }
      const want = current(kind);
      if (want) select.value = want;
    };
    fill(camSelect, 'video', 'Camera');
    fill(micSelect, 'audio', 'Microphone');
  }

  /** Drives a <meter> from the stream's microphone; returns a stop function. */
  function levelMeter(stream, meter) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx || stream.getAudioTracks().length === 0) return () => {};
    const ctx = new Ctx();
    const source = ctx.createMediaStreamSource(stream);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    source.connect(analyser);
    const data = new Float32Array(analyser.fftSize);
    const timer = setInterval(() => {
      analyser.getFloatTimeDomainData(data);
      let sum = 0;
      for (const v of data) sum += v * v;
      const rms = Math.sqrt(sum / data.length);
      meter.value = Math.min(1, rms * 4);
    }, 100);
    ctx.resume().catch(() => {});
    return () => {
      clearInterval(timer);
      ctx.close().catch(() => {});
    };
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
      this.chain = Promise.resolve();
      this.failTimer = null;
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
          this.enqueue(() => this.connect());
          return true;
        case 'relay_moved':
          if (msg.call !== this.id) return false;
          this.opts.onBanner('The call is moving to another server. Reconnecting…');
          this.enqueue(() => this.connect());
          return true;
        case 'call_waiting_for_relay':
          if (this.id && msg.call !== this.id) return false;
          this.id = msg.call;
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
      clearTimeout(this.failTimer);
      if (state === 'connected') {
        this.opts.onBanner(null);
      } else if (state === 'failed') {
        this.reportFailure(generation);
      } else if (state === 'disconnected') {
        this.opts.onBanner('Connection interrupted. Trying to recover…');
        this.failTimer = setTimeout(() => this.reportFailure(generation), 4000);
      }
    }

    /** Asks signaling for a (new) placement; again every 10 s until connected. */
    reportFailure(generation) {
      if (generation !== this.generation || !this.id) return;
      this.opts.onBanner('Connection lost. Reconnecting to the call…');
      this.opts.send({ type: 'call_ice_failed', call: this.id });
      clearTimeout(this.failTimer);
      this.failTimer = setTimeout(() => {
        if (this.pc && this.pc.connectionState !== 'connected') this.reportFailure(this.generation);
      }, 10000);
    }

    onTrack(ev) {
      if (this.own && this.own.has(ev.transceiver)) return;
      const stream = ev.streams && ev.streams[0];
      const id = stream ? stream.id : `mid-${ev.transceiver.mid}`;
      if (id === this.self) return;
      let tile = this.tiles.get(id);
      if (!tile) {
        tile = makeTile(id, this.names.get(id) || 'Participant', false);
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
        const tile = e.participant === this.self ? this.localTile : this.tiles.get(e.participant);
        if (!tile) continue;
        if (e.participant !== this.self) {
          tile.name.textContent = e.display_name;
          tile.video.setAttribute('aria-label', `Video of ${e.display_name}`);
        }
        tile.flags.replaceChildren(
          e.audio_muted ? el('span', { class: 'flag', text: 'muted' }) : '',
          e.video_muted ? el('span', { class: 'flag', text: 'camera off' }) : '',
        );
      }
      for (const [id, tile] of this.tiles) {
        if (entries.length > 0 && !present.has(id)) {
          tile.figure.remove();
          this.tiles.delete(id);
        }
      }
      if (this.opts.onRoster) this.opts.onRoster(entries);
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
      if (this.pc) this.pc.close();
      this.pc = null;
      this.generation += 1;
      for (const tile of this.tiles.values()) tile.figure.remove();
      this.tiles.clear();
      this.opts.grid.replaceChildren();
      if (Anteroom.debug.call === this) Anteroom.debug.call = null;
    }
  }

  Anteroom.media = { openLocal, listDevices, levelMeter };
  Anteroom.Call = Call;
})();
