// The patient page: `/r/<room>` (a waiting room's link) and `/i/<token>`
// (an invitation into a running consultation). Steps: device check →
// intake questions → waiting screen → call → ended. The resume token is kept
// in sessionStorage (this tab only, never in the URL) so a refresh or a
// dropped connection takes the same seat back (`resume`).
'use strict';

(() => {
  const { $, el, announce, duration, showOnly } = Anteroom;
  const STEPS = ['step-loading', 'step-error', 'step-device', 'step-intake', 'step-waiting', 'step-call', 'step-ended'];

  const parts = location.pathname.split('/').filter(Boolean);
  const invite = parts[0] === 'i' ? takeInvite(decodeURIComponent(parts[1] || '')) : null;
  const room = parts[0] === 'r' ? decodeURIComponent(parts[1] || '') : null;
  const storageKey = `anteroom.resume:${location.pathname}`;
  const CLOSED_TEXT = 'This waiting room is closed at the moment. Please try again later or contact the practice.';

  // An invitation token never stays in the address bar or the history
  // (issue 8): it moves to this tab's sessionStorage and the URL becomes
  // `/i/-`, which a refresh reads back from there.
  function takeInvite(fromUrl) {
    const key = 'anteroom.invite';
    if (fromUrl && fromUrl !== '-') sessionStorage.setItem(key, fromUrl);
    history.replaceState(null, '', '/i/-');
    return sessionStorage.getItem(key) || '-';
  }

  const state = {
    step: 'step-loading',
    info: null, // room_info
    seat: null, // {room, participant}
    pendingResume: false,
    local: null, // MediaStream
    stopMeter: () => {},
    call: null,
    early: [], // call messages that arrived before the media was ready
    audioMuted: false,
    videoMuted: false,
    note: '', // prefix of the next queue announcement
    test: null, // the running Anteroom.ConnectionTest
  };

  function step(id) {
    state.step = id;
    showOnly(STEPS, id);
    const heading = $(id) && $(id).querySelector('h1');
    if (heading && id !== 'step-call') {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: true });
    }
  }

  function banner(text) {
    $('banner').hidden = !text;
    $('banner').textContent = text || '';
  }

  function fail(text) {
    $('error-text').textContent = text;
    step('step-error');
    announce(text);
  }

  const socket = new Anteroom.Socket({
    onOpen: (s) => s.send({ type: 'hello', version: Anteroom.PROTOCOL_VERSION, role: 'patient' }),
    onMessage: onMessage,
    onDown: () => {
      if (state.seat) banner('Connection to the service lost. Reconnecting — you keep your place…');
    },
  });

  function afterWelcome() {
    const token = sessionStorage.getItem(storageKey);
    if (token) {
      state.pendingResume = true;
      socket.send({ type: 'resume', token });
    } else if (state.step === 'step-loading') {
      startDeviceCheck();
    }
    if (room && !state.info) socket.send({ type: 'get_room', room });
  }

  function onMessage(msg) {
    if (state.test && state.test.handle(msg)) return;
    if (state.call && state.call.handle(msg)) return;
    switch (msg.type) {
      case 'welcome':
        banner(null);
        afterWelcome();
        break;
      case 'room_info':
        if (state.seat && msg.room !== state.seat.room) break;
        state.info = msg;
        $('room-name').textContent = msg.name;
        document.title = `${msg.name} · Anteroom`;
        renderQuestions(msg.intake || []);
        if (msg.closed && !state.seat && !state.pendingResume && !invite) fail(CLOSED_TEXT);
        $('queue-info').hidden = Boolean(msg.hide_position);
        break;
      case 'joined':
        state.pendingResume = false;
        state.seat = { room: msg.room, participant: msg.participant };
        Anteroom.debug.seat = state.seat;
        sessionStorage.setItem(storageKey, msg.resume_token);
        if (!state.info || state.info.room !== msg.room) socket.send({ type: 'get_room', room: msg.room });
        if (state.step !== 'step-call') {
          step('step-waiting');
          state.note = msg.resumed ? 'You are back in the waiting room; your place was kept. ' : 'You are in the waiting room. ';
          announce(state.note);
        }
        break;
      case 'queue_status':
        onQueueStatus(msg);
        break;
      case 'admitted':
        announce(`${msg.clinician_name} is letting you in.`);
        enterCall();
        break;
      case 'transferred':
      case 'returned_to_queue':
        if (state.seat) state.seat.room = msg.room;
        if (!state.info || state.info.room !== msg.room) socket.send({ type: 'get_room', room: msg.room });
        leaveCallView();
        step('step-waiting');
        // Kept as the prefix of the queue status that follows at once.
        state.note = msg.type === 'transferred' ? 'You were moved to another waiting room. ' : 'You are back at the front of the queue. ';
        announce(state.note);
        break;
      case 'denied':
        ended('You were not admitted', msg.message || 'The clinician could not see you in this waiting room.');
        break;
      case 'consultation_ended':
        ended('The consultation has ended', 'Thank you. You can close this page.');
        break;
      case 'left':
        ended('You left', 'You are no longer in the waiting room.');
        break;
      case 'call_ready':
      case 'call_waiting_for_relay':
      case 'relay_moved':
      case 'call_renegotiate':
      case 'call_answer':
      case 'roster':
        state.early.push(msg);
        if (state.step !== 'step-call') enterCall();
        break;
      case 'call_ended':
        break;
      case 'error':
        onError(msg);
        break;
      default:
        break;
    }
  }

  function onError(msg) {
    if (state.pendingResume && msg.code === 'not_found') {
      state.pendingResume = false;
      sessionStorage.removeItem(storageKey);
      state.seat = null;
      announce('Your earlier place has expired. Please join again.');
      startDeviceCheck();
      return;
    }
    if (msg.code === 'replaced') {
      socket.stop();
      fail('This waiting-room seat was opened in another tab or window. Continue there.');
      return;
    }
    if (msg.code === 'not_found' && !state.seat) {
      fail(invite ? 'This invitation link is not valid any more. Ask for a new one.' : 'This waiting room does not exist. Please check the link you were given.');
      return;
    }
    if (msg.code === 'room_closed') {
      fail(CLOSED_TEXT);
      return;
    }
    if (msg.code === 'invite_invalid') {
      fail('This invitation link has expired or was already used. Ask for a new one.');
      return;
    }
    if (state.step === 'step-intake') {
      $('form-error').textContent = msg.message || 'That did not work. Please check your answers.';
    } else {
      announce(msg.message || 'Something went wrong.');
    }
  }

  function onQueueStatus(msg) {
    const hidden = msg.position === undefined || msg.position === null;
    $('queue-info').hidden = hidden;
    if (!hidden) {
      $('position').textContent = msg.position === 1 ? 'You are next' : String(msg.position);
      $('eta').textContent = msg.estimated_wait_secs === undefined ? '–' : `about ${duration(msg.estimated_wait_secs)}`;
      announce(`${state.note}${msg.position === 1 ? 'You are next in the queue.' : `Your place in the queue: ${msg.position}.`}`);
    } else {
      announce(`${state.note}Please wait; a clinician will let you in.`);
    }
    state.note = '';
  }

  // Device check --------------------------------------------------------

  async function startMedia() {
    $('media-error').textContent = '';
    state.stopMeter();
    if (state.local) for (const t of state.local.getTracks()) t.stop();
    try {
      state.local = await Anteroom.media.openLocal($('cam-select').value, $('mic-select').value);
      $('preview').srcObject = state.local;
      state.stopMeter = Anteroom.media.levelMeter(state.local, $('mic-level'));
      await Anteroom.media.listDevices($('cam-select'), $('mic-select'), state.local);
    } catch (e) {
      state.local = null;
      $('media-error').textContent = e && e.name === 'NotAllowedError'
        ? 'Camera and microphone are blocked. Allow them in your browser (the icon in the address bar), then try again.'
        : 'No camera or microphone could be opened. You can still join; the clinician will not see or hear you.';
    }
  }

  function startDeviceCheck() {
    step('step-device');
    announce('Check your camera and microphone, then continue.');
    startMedia().then(runConnectionTest);
  }

  /** The connection test to the relay (conntest.js), with the preview's
   *  media; the result goes to the #conn-check live region. */
  async function runConnectionTest() {
    if (state.test) return;
    const out = $('conn-check');
    $('conn-retry').hidden = true;
    out.dataset.result = 'running';
    out.textContent = 'Testing your connection to the video service…';
    state.test = new Anteroom.ConnectionTest({ send: (m) => socket.send(m), stream: state.local });
    const r = await state.test.run();
    state.test = null;
    Anteroom.debug.connectionTest = r;
    out.dataset.result = r.result;
    out.textContent = r.text;
    $('conn-retry').hidden = false;
  }

  $('start-media').addEventListener('click', startMedia);
  $('conn-retry').addEventListener('click', runConnectionTest);
  $('cam-select').addEventListener('change', startMedia);
  $('mic-select').addEventListener('change', startMedia);
  $('device-next').addEventListener('click', () => {
    if (state.test) state.test.cancel();
    step('step-intake');
    $('display-name').focus();
  });

  // Intake --------------------------------------------------------------

  function renderQuestions(questions) {
    const box = $('questions');
    box.replaceChildren();
    if (invite) return;
    questions.forEach((q, i) => {
      const id = `q-${i}`;
      box.append(
        el('label', { for: id, text: q.required ? `${q.label} (required)` : q.label }),
        el('textarea', { id, 'data-question': q.id, maxlength: 2000, required: q.required, 'aria-required': q.required ? 'true' : 'false' }),
      );
    });
  }

  $('intake-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const error = $('form-error');
    error.textContent = '';
    const name = $('display-name').value.trim();
    if (!name) {
      error.textContent = 'Please enter your name.';
      $('display-name').focus();
      return;
    }
    if (invite) {
      socket.send({ type: 'join_invite', token: invite, display_name: name });
      return;
    }
    const intake = {};
    for (const field of $('questions').querySelectorAll('textarea')) {
      const answer = field.value.trim();
      if (field.required && !answer) {
        error.textContent = 'Please answer every required question.';
        field.focus();
        return;
      }
      if (answer) intake[field.dataset.question] = answer;
    }
    socket.send({ type: 'join', room, display_name: name, intake });
  });

  $('leave-queue').addEventListener('click', () => socket.send({ type: 'leave' }));

  // Call ----------------------------------------------------------------

  async function enterCall() {
    if (state.step === 'step-call') return;
    step('step-call');
    if (!state.local) {
      try {
        state.local = await Anteroom.media.openLocal('', '');
      } catch (_) {
        state.local = new MediaStream();
      }
    }
    if (!state.call) {
      state.call = new Anteroom.Call({
        send: (m) => socket.send(m),
        grid: $('grid'),
        local: state.local,
        selfLabel: $('display-name').value.trim() || 'You',
        onBanner: banner,
        onQuality: (level, text) => {
          $('quality').className = `quality ${level}`;
          $('quality').textContent = text;
        },
        onEnded: () => leaveCallView(),
      });
    }
    const early = state.early.splice(0);
    for (const m of early) state.call.handle(m);
  }

  function leaveCallView() {
    if (state.call) state.call.close();
    state.call = null;
    banner(null);
  }

  function ended(title, text) {
    leaveCallView();
    sessionStorage.removeItem(storageKey);
    state.seat = null;
    $('ended-h').textContent = title;
    $('ended-text').textContent = text;
    $('rejoin').hidden = Boolean(invite);
    step('step-ended');
    announce(`${title}. ${text}`);
  }

  $('btn-mic').addEventListener('click', () => {
    state.audioMuted = !state.audioMuted;
    $('btn-mic').setAttribute('aria-pressed', String(state.audioMuted));
    $('btn-mic').textContent = state.audioMuted ? 'Unmute microphone' : 'Mute microphone';
    if (state.call) state.call.setMuted(state.audioMuted, state.videoMuted);
    announce(state.audioMuted ? 'Microphone muted.' : 'Microphone on.');
  });
  $('btn-cam').addEventListener('click', () => {
    state.videoMuted = !state.videoMuted;
    $('btn-cam').setAttribute('aria-pressed', String(state.videoMuted));
    $('btn-cam').textContent = state.videoMuted ? 'Turn camera on' : 'Turn camera off';
    if (state.call) state.call.setMuted(state.audioMuted, state.videoMuted);
    announce(state.videoMuted ? 'Camera off.' : 'Camera on.');
  });
  $('btn-leave').addEventListener('click', () => socket.send({ type: 'leave' }));
  $('rejoin').addEventListener('click', () => startDeviceCheck());

  socket.connect();
})();
