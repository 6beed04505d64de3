// Anteroom connection test (the patient device check): asks signaling for a
// throwaway placement (`connection_test_start` → `connection_test_ready`),
// connects to the relay signaling chose exactly as a call would
// (`call_offer`/`call_answer`/`call_candidate`), sends a few seconds of the
// preview's camera and microphone, reads getStats (round-trip time, packets
// sent and received, ICE and DTLS state) and rates the result: good, poor
// or failed, each with what to do. The test ends with `connection_test_stop`;
// signaling also ends it on disconnect and after 60 s (`call_ended`).
'use strict';

(() => {
  /** How long media flows before the stats are read. */
  const SEND_MS = 3000;
  /** How long signaling and the relay get to answer and connect. */
  const CONNECT_MS = 10000;
  /** Round trip above this is poor. */
  const POOR_RTT_S = 0.3;

  let nextRequest = 1000;

  class ConnectionTest {
    /** opts: {send(msg), stream: MediaStream|null} */
    constructor(opts) {
      this.opts = opts;
      this.request = nextRequest++;
      this.id = null;
      this.pc = null;
      this.waiters = [];
      this.cancelled = false;
      this.stopSent = false;
      this.whenCancelled = new Promise((resolve) => {
        this.onCancel = () => resolve(null);
      });
    }

    /** Routes a signaling message; true if it was this test's. */
    handle(msg) {
      const mine = (msg.type === 'connection_test_ready' || msg.type === 'error') && msg.request === this.request;
      if (!mine && !(this.id && msg.call === this.id)) return false;
      for (const w of this.waiters.splice(0)) w(msg);
      if (msg.type === 'call_renegotiate' && this.pc) this.renegotiate(msg.sdp);
      return true;
    }

    /** The next message of this test matching `pred`, or null after `ms`. */
    next(pred, ms) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(null), ms);
        const wait = (msg) => {
          if (pred(msg)) {
            clearTimeout(timer);
            resolve(msg);
          } else {
            this.waiters.push(wait);
          }
        };
        this.waiters.push(wait);
      });
    }

    async renegotiate(sdp) {
      const pc = this.pc;
      if (!pc || pc.signalingState !== 'stable') return;
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      this.opts.send({ type: 'call_answer', call: this.id, sdp: pc.localDescription.sdp });
    }

    /** Runs the test; resolves to {result: 'good'|'poor'|'failed'|'cancelled', text, stats}. */
    async run() {
      let r;
      try {
        // A cancel ends the wait at once; measure() then stops at its next step.
        r = await Promise.race([this.measure(), this.whenCancelled]);
      } catch (e) {
        r = failed('the test could not run in this browser', 'Try the latest Chrome, Edge, Firefox or Safari.');
      } finally {
        this.stop();
      }
      return this.cancelled ? { result: 'cancelled', text: 'The connection test was stopped.', stats: null } : r;
    }

    /** Stops a running test early (the patient moved on): no media keeps
     *  flowing to the relay next to the consultation's. */
    cancel() {
      this.cancelled = true;
      this.stop();
      this.onCancel();
    }

    async measure() {
      if (!window.RTCPeerConnection) {
        return failed('this browser cannot make video calls', 'Use the latest Chrome, Edge, Firefox or Safari.');
      }
      const ready = this.next(() => true, CONNECT_MS);
      this.opts.send({ type: 'connection_test_start', request: this.request });
      const msg = await ready;
      if (!msg) return failed('the video service did not answer', 'Check your internet connection, then test again.');
      if (msg.type === 'error') {
        return msg.code === 'rate_limited'
          ? failed('too many tests in a row', 'Wait a minute, then test again.')
          : failed('no video relay is available right now', 'Video calls cannot start at the moment. You can still join the waiting room; if this persists, contact the practice.');
      }
      this.id = msg.call;
      if (this.cancelled) {
        this.stop();
        return null;
      }
      const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', iceServers: [] });
      this.pc = pc;
      const stream = this.opts.stream;
      for (const kind of ['audio', 'video']) {
        const track = stream && stream.getTracks().find((t) => t.kind === kind && t.readyState === 'live');
        if (track) pc.addTransceiver(track, { direction: 'sendrecv', streams: [stream] });
        else pc.addTransceiver(kind, { direction: 'recvonly' });
      }
      pc.createDataChannel('anteroom');
      pc.onicecandidate = (ev) => {
        if (ev.candidate && ev.candidate.candidate && this.id) {
          this.opts.send({ type: 'call_candidate', call: this.id, candidate: ev.candidate.candidate });
        }
      };
      const connected = new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), CONNECT_MS);
        pc.onconnectionstatechange = () => {
          if (pc.connectionState === 'connected' || pc.connectionState === 'failed') {
            clearTimeout(timer);
            resolve(pc.connectionState === 'connected');
          }
        };
      });
      const ended = this.next((m) => m.type === 'call_ended' || m.type === 'error', 2 * CONNECT_MS + SEND_MS);
      await pc.setLocalDescription(await pc.createOffer());
      const answer = this.next((m) => m.type === 'call_answer' || m.type === 'error', CONNECT_MS);
      this.opts.send({ type: 'call_offer', call: this.id, sdp: pc.localDescription.sdp });
      const reply = await answer;
      if (this.cancelled) return null;
      if (!reply || reply.type === 'error') {
        return failed('the video relay did not answer', 'Check your internet connection, then test again. If this persists, contact the practice.');
      }
      await pc.setRemoteDescription({ type: 'answer', sdp: reply.sdp });
      const ok = await Promise.race([connected, ended.then(() => false)]);
      if (this.cancelled) return null;
      if (!ok) {
        const stats = await readStats(pc);
        return failed(
          'your device could not reach the video relay',
          'A firewall or network filter may block video calls (UDP). Try another network (for example your phone\'s hotspot) or ask your IT support.',
          stats,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, SEND_MS));
      return rate(await readStats(pc), Boolean(stream && stream.getTracks().length));
    }

    /** Ends the test: closes the peer connection and tells signaling
     *  (once the test has an id; a cancelled test stops as soon as it does). */
    stop() {
      if (this.pc) this.pc.close();
      this.pc = null;
      if (this.id && !this.stopSent) {
        this.stopSent = true;
        this.opts.send({ type: 'connection_test_stop', call: this.id });
      }
    }
  }

  function failed(what, todo, stats) {
    return { result: 'failed', text: `Failed: ${what}. ${todo}`, stats: stats || null };
  }

  /** The numbers the rating needs, from getStats. */
  async function readStats(pc) {
    const out = {
      ice: pc.iceConnectionState,
      dtls: '',
      rttMs: null,
      packetsSent: 0,
      packetsReceived: 0,
      packetsLost: 0,
    };
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === 'transport' && s.dtlsState) out.dtls = s.dtlsState;
      if (s.type === 'candidate-pair' && s.state === 'succeeded' && typeof s.currentRoundTripTime === 'number') {
        if (s.nominated || out.rttMs === null) out.rttMs = Math.round(s.currentRoundTripTime * 1000);
      }
      if (s.type === 'outbound-rtp') out.packetsSent += s.packetsSent || 0;
      if (s.type === 'inbound-rtp') out.packetsReceived += s.packetsReceived || 0;
      if (s.type === 'remote-inbound-rtp') out.packetsLost += Math.max(0, s.packetsLost || 0);
    });
    return out;
  }

  /** Good / poor from the stats of a connected test. */
  function rate(stats, sending) {
    const rtt = stats.rttMs === null ? 'unknown' : `${stats.rttMs} ms`;
    if (sending && stats.packetsSent === 0) {
      return {
        result: 'poor',
        text: 'Poor: the connection to the video relay works, but no video or sound could be sent. Check that no other app uses your camera, then test again.',
        stats,
      };
    }
    const lossy = stats.packetsSent > 0 && stats.packetsLost / stats.packetsSent > 0.05;
    if ((stats.rttMs !== null && stats.rttMs / 1000 > POOR_RTT_S) || lossy) {
      return {
        result: 'poor',
        text: `Poor: the connection works but is slow or unsteady (round trip ${rtt}). Video may freeze: move closer to your Wi-Fi router, pause downloads or other video, or use a wired connection.`,
        stats,
      };
    }
    return {
      result: 'good',
      text: `Good: your connection to the video service works (round trip ${rtt}).`,
      stats,
    };
  }

  window.Anteroom = window.Anteroom || {};
  Anteroom.ConnectionTest = ConnectionTest;
})();
