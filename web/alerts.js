// Arrival alerts of the clinician portal: a two-tone beep (WebAudio, no
// audio file), a desktop notification and an assertive screen-reader
// announcement, rate-limited so a burst of arrivals gives one alert per
// window (and a trailing summary) instead of a wall of noise. The
// notification names the waiting room only, never the patient.
'use strict';

(() => {
  const WINDOW_MS = 10000;

  class ArrivalAlerts {
    constructor() {
      this.ctx = null;
      this.last = 0;
      this.pending = [];
      this.timer = null;
      this.count = 0; // for tests and the tab title
    }

    /** Must run inside a user gesture (click): unlocks sound and asks for
     *  notification permission. */
    enable() {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (Ctx && !this.ctx) this.ctx = new Ctx();
      if (this.ctx) this.ctx.resume().catch(() => {});
      if (window.Notification && Notification.permission === 'default') {
        Notification.requestPermission().catch(() => {});
      }
    }

    /** Whether sound and notifications are both usable. */
    enabled() {
      const sound = Boolean(this.ctx) && this.ctx.state === 'running';
      const notes = !window.Notification || Notification.permission !== 'default';
      return sound && notes;
    }

    /** A patient arrived in `roomName`. */
    arrived(roomName) {
      this.pending.push(roomName);
      const now = Date.now();
      if (now - this.last >= WINDOW_MS) {
        this.fire();
      } else if (!this.timer) {
        this.timer = setTimeout(() => this.fire(), WINDOW_MS - (now - this.last));
      }
    }

    fire() {
      clearTimeout(this.timer);
      this.timer = null;
      if (this.pending.length === 0) return;
      const rooms = [...new Set(this.pending)];
      const n = this.pending.length;
      this.pending = [];
      this.last = Date.now();
      this.count += 1;
      const text = n === 1
        ? `A patient is waiting in ${rooms[0]}.`
        : `${n} patients arrived (${rooms.join(', ')}).`;
      const live = document.getElementById('alert');
      if (live) live.textContent = text;
      this.beep();
      if (window.Notification && Notification.permission === 'granted') {
        try {
          const note = new Notification('Anteroom: patient waiting', { body: text, tag: 'anteroom-arrival' });
          note.onclick = () => window.focus();
        } catch (_) {
          /* some browsers only allow notifications from a service worker */
        }
      }
    }

    beep() {
      const ctx = this.ctx;
      if (!ctx || ctx.state !== 'running') return;
      const t = ctx.currentTime;
      [[880, 0], [660, 0.25]].forEach(([freq, at]) => {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, t + at);
        gain.gain.exponentialRampToValueAtTime(0.3, t + at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t + at + 0.2);
        osc.connect(gain).connect(ctx.destination);
        osc.start(t + at);
        osc.stop(t + at + 0.22);
      });
    }
  }

  Anteroom.ArrivalAlerts = ArrivalAlerts;
})();
