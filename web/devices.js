// Anteroom devices: the camera and microphone — opening them with the chosen
// devices, the device lists, and the microphone level meter. Used by the
// patient's device check (patient.js) and by calls (portal-call.js, patient.js).
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

  Anteroom.media = { openLocal, listDevices, levelMeter };
})();
