// The clinician portal (`/portal`): sign-in (errors and throttling from
// /api/login; an expired session returns here), then the organisation's
// waiting rooms live over /ws (`subscribe`): each patient with a coloured
// wait time (green < 5 min, amber 5–10, red > 10), intake answers on demand,
// arrival alerts, and the actions admit (after showing the intake summary),
// deny with a message, transfer and return to queue. The call view is in
// portal-call.js.
'use strict';

(() => {
  const { $, el, announce, duration, showOnly } = Anteroom;
  const VIEWS = ['view-loading', 'view-login', 'view-queue'];
  const AMBER_SECS = 5 * 60;
  const RED_SECS = 10 * 60;

  const state = {
    me: null,
    rooms: new Map(), // room id -> {room, name, hide_position, entries: Map}
    requests: new Map(), // request id -> resolve
    nextRequest: 1,
    lastAdmit: null,
    socket: null,
    idleTimer: null,
    lastActivity: Date.now(),
    dialogTarget: null,
    idleWarning: false,
  };
  const alerts = new Anteroom.ArrivalAlerts();
  Anteroom.debug.alerts = alerts;

  function send(msg) {
    state.lastActivity = Date.now();
    return state.socket ? state.socket.send(msg) : false;
  }

  /** Sends a request and resolves with its reply (`ok`, `error`, …). */
  function request(msg) {
    const id = state.nextRequest++;
    return new Promise((resolve) => {
      state.requests.set(id, resolve);
      if (!send({ ...msg, request: id })) {
        state.requests.delete(id);
        resolve({ type: 'error', code: 'offline', message: 'not connected to the service' });
      }
    });
  }

  const callView = new Anteroom.CallView({
    send,
    request,
    nameOf: (p) => {
      for (const r of state.rooms.values()) if (r.entries.has(p)) return r.entries.get(p).display_name;
      return null;
    },
    pendingPatient: () => state.lastAdmit,
    onTransfer: (p) => dialogs.openTransfer(p),
    get selfName() {
      return state.me ? state.me.display_name : 'You';
    },
  });

  // Session ---------------------------------------------------------------

  function showLogin(note) {
    if (state.socket) state.socket.stop();
    state.socket = null;
    clearInterval(state.idleTimer);
    for (const dlg of document.querySelectorAll('dialog')) if (dlg.open) dlg.close();
    callView.closed('');
    state.me = null;
    state.rooms.clear();
    $('rooms').replaceChildren();
    for (const id of ['logout', 'enable-alerts', 'admin-link']) $(id).hidden = true;
    $('who').textContent = '';
    $('org-name').textContent = '';
    $('login-note').textContent = note || '';
    showOnly(VIEWS, 'view-login');
    if (note) announce(note);
    $('username').focus();
  }

  async function loadMe() {
    let resp;
    try {
      resp = await Anteroom.api('GET', '/api/me');
    } catch (_) {
      showLogin('The service cannot be reached. Check your connection and sign in again.');
      return;
    }
    if (resp.status !== 200 || !resp.body) {
      showLogin();
      return;
    }
    start(resp.body);
  }

  function start(me) {
    state.me = me;
    state.lastActivity = Date.now();
    $('who').textContent = me.display_name;
    $('org-name').textContent = me.tenant_name || '';
    $('logout').hidden = false;
    $('admin-link').hidden = me.role !== 'admin';
    $('enable-alerts').hidden = alerts.enabled();
    showOnly(VIEWS, 'view-queue');
    announce(`Signed in as ${me.display_name}.`);
    state.socket = new Anteroom.Socket({
      onOpen: (s) => s.send({ type: 'hello', version: Anteroom.PROTOCOL_VERSION, role: 'clinician' }),
      onMessage,
      onDown: () => {
        $('banner').hidden = false;
        $('banner').textContent = 'Connection to the service lost. Reconnecting…';
      },
    });
    state.socket.connect();
    clearInterval(state.idleTimer);
    state.idleTimer = setInterval(checkIdle, 5000);
  }

  /** The service ends a session after `idle_timeout_secs` without use. */
  function checkIdle() {
    if (!state.me) return;
    const idleMs = (state.me.idle_timeout_secs || 1200) * 1000;
    const idle = Date.now() - state.lastActivity;
    if (idle >= idleMs) {
      showLogin('Your session has expired after a period of inactivity. Please sign in again.');
    } else if (idle >= idleMs - 60000) {
      if ($('banner').hidden) {
        state.idleWarning = true;
        $('banner').hidden = false;
        $('banner').textContent = 'You will be signed out in under a minute because of inactivity. Use any button to stay signed in.';
      }
    } else if (state.idleWarning) {
      state.idleWarning = false;
      $('banner').hidden = true;
    }
    renderWaits();
  }

  Anteroom.setupLogin(() => {
    alerts.enable();
    loadMe();
  });

  $('logout').addEventListener('click', async () => {
    await Anteroom.logout();
    showLogin('You have signed out.');
  });
  $('enable-alerts').addEventListener('click', () => {
    alerts.enable();
    $('enable-alerts').hidden = true;
    announce('Arrival alerts are on.');
  });

  // Messages --------------------------------------------------------------

  function onMessage(msg) {
    if (msg.request !== undefined && state.requests.has(msg.request)) {
      const resolve = state.requests.get(msg.request);
      state.requests.delete(msg.request);
      resolve(msg);
    }
    if (callView.handle(msg)) return;
    switch (msg.type) {
      case 'welcome':
        $('banner').hidden = true;
        send({ type: 'subscribe', request: state.nextRequest++ });
        break;
      case 'queue_snapshot':
        state.rooms.clear();
        for (const r of msg.rooms) {
          const entries = new Map();
          for (const e of r.entries) entries.set(e.participant, stamp(e));
          state.rooms.set(r.room, { room: r.room, name: r.name, hide_position: r.hide_position, intake: r.intake || [], entries });
        }
        renderAll();
        break;
      case 'patient_arrived':
        upsert(msg.room, msg.entry);
        if (msg.entry.state === 'waiting') {
          const room = state.rooms.get(msg.room);
          alerts.arrived(room ? room.name : msg.room);
        }
        break;
      case 'patient_updated':
        upsert(msg.room, msg.entry);
        break;
      case 'patient_left':
        removeEntry(msg.room, msg.participant);
        callView.patientGone(msg.participant);
        break;
      case 'waiting_times':
        onWaitingTimes(msg);
        break;
      case 'error':
        if (msg.code === 'session_expired' || msg.code === 'unauthenticated') {
          showLogin('Your session has expired. Please sign in again.');
        }
        break;
      default:
        break;
    }
  }

  function stamp(entry) {
    return { ...entry, at: Date.now() };
  }

  function upsert(roomId, entry) {
    const room = state.rooms.get(roomId);
    if (!room) return;
    room.entries.set(entry.participant, stamp(entry));
    renderRoom(room);
  }

  function removeEntry(roomId, participant) {
    const room = state.rooms.get(roomId);
    if (!room) return;
    const gone = room.entries.get(participant);
    room.entries.delete(participant);
    if (gone && gone.state === 'waiting' && gone.position) {
      for (const e of room.entries.values()) {
        if (e.state === 'waiting' && e.position > gone.position) e.position -= 1;
      }
    }
    renderRoom(room);
  }

  function onWaitingTimes(msg) {
    const room = state.rooms.get(msg.room);
    if (!room) return;
    for (const w of msg.entries) {
      const e = room.entries.get(w.participant);
      if (!e) continue;
      e.waited_secs = w.waited_secs;
      e.position = w.position;
      e.at = Date.now();
    }
    renderRoom(room);
  }

  // Rendering -------------------------------------------------------------

  function waited(e) {
    return e.waited_secs + (Date.now() - e.at) / 1000;
  }

  function waitClass(secs) {
    if (secs > RED_SECS) return 'red';
    if (secs >= AMBER_SECS) return 'amber';
    return 'green';
  }

  function waitPill(e) {
    const secs = waited(e);
    const level = waitClass(secs);
    const words = { green: '', amber: ' (long)', red: ' (very long)' }[level];
    return el('span', { class: `wait ${level}`, 'data-wait': e.participant, text: `waiting ${duration(secs)}${words}` });
  }

  function renderWaits() {
    for (const room of state.rooms.values()) {
      for (const e of room.entries.values()) {
        const pill = document.querySelector(`[data-wait="${CSS.escape(e.participant)}"]`);
        if (!pill || e.state !== 'waiting') continue;
        pill.replaceWith(waitPill(e));
      }
    }
  }

  function renderAll() {
    const box = $('rooms');
    box.replaceChildren();
    for (const room of state.rooms.values()) {
      box.append(el('section', { class: 'card room', id: `room-${room.room}`, 'aria-labelledby': `room-h-${room.room}` }));
      renderRoom(room);
    }
  }

  function sorted(room) {
    const rank = (e) => (e.state === 'waiting' ? e.position || 0 : 1e9);
    return [...room.entries.values()].sort((a, b) => rank(a) - rank(b));
  }

  function renderRoom(room) {
    const section = $(`room-${room.room}`);
    if (!section) return;
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
    const entries = sorted(room);
    const waiting = entries.filter((e) => e.state === 'waiting').length;
    const list = el('ul', { class: 'patients' }, ...entries.map((e) => renderEntry(room, e)));
    section.replaceChildren(
      el('h2', { id: `room-h-${room.room}`, text: room.name }),
      el('p', { class: 'status', text: waiting === 0 ? 'Nobody is waiting.' : `${waiting} waiting` }),
      list,
    );
    if (focused) {
      const again = document.querySelector(`[data-key="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }

  function button(text, key, onclick, cls) {
    return el('button', { type: 'button', class: cls, 'data-key': key, onclick, text });
  }

  function renderEntry(room, e) {
    const p = e.participant;
    const mine = state.me && e.clinician === state.me.clinician;
    const tags = [];
    if (e.state === 'waiting' && e.position) tags.push(el('span', { class: 'tag', text: `#${e.position}` }));
    if (e.state === 'admitted') tags.push(el('span', { class: 'tag', text: mine ? 'with you' : `with ${e.clinician || 'a colleague'}` }));
    if (!e.connected) tags.push(el('span', { class: 'tag', text: 'connection lost' }));
    if (e.invited_to) tags.push(el('span', { class: 'tag', text: 'invited to a call' }));
    const actions = [];
    if (e.state === 'waiting') {
      actions.push(button('Intake', `intake-${p}`, () => toggleIntake(p), 'secondary'));
      actions.push(button('Admit…', `admit-${p}`, () => openAdmit(p)));
      actions.push(button('Deny…', `deny-${p}`, () => openDeny(p), 'secondary'));
      actions.push(button('Transfer…', `transfer-${p}`, () => openTransfer(p), 'secondary'));
    } else if (mine) {
      actions.push(button('Return to queue', `return-${p}`, () => returnToQueue(p), 'secondary'));
      actions.push(button('Transfer…', `transfer-${p}`, () => openTransfer(p), 'secondary'));
    }
    return el('li', { class: 'patient', 'data-participant': p },
      el('div', { class: 'line' }, el('span', { class: 'name', text: e.display_name }),
        e.state === 'waiting' ? waitPill(e) : '', ...tags),
      el('div', { class: 'intake-slot', id: `intake-${p}` }),
      el('div', { class: 'actions' }, ...actions));
  }

  // Each answer under its question's label (from the room's `intake` in the
  // snapshot), in the room's question order; unknown ids show as themselves.
  function intakeList(reply) {
    const answers = new Map(Object.entries(reply.answers || {}));
    if (answers.size === 0) return [el('p', { text: 'No intake answers.' })];
    const room = state.rooms.get(reply.room);
    const rows = [];
    for (const q of (room && room.intake) || []) {
      if (!answers.has(q.id)) continue;
      rows.push([q.label, answers.get(q.id)]);
      answers.delete(q.id);
    }
    for (const [id, a] of answers) rows.push([id, a]);
    return rows.flatMap(([label, a]) => [el('dt', { text: label }), el('dd', { text: a })]);
  }

  async function toggleIntake(p) {
    const slot = $(`intake-${p}`);
    if (!slot) return;
    if (slot.childElementCount > 0) {
      slot.replaceChildren();
      return;
    }
    const reply = await request({ type: 'get_intake', participant: p });
    if (reply.type !== 'intake') {
      announce(`Could not load the intake: ${reply.message}`);
      return;
    }
    const target = $(`intake-${p}`);
    if (target) target.replaceChildren(el('dl', { class: 'intake', 'aria-label': 'Intake answers' }, ...intakeList(reply)));
  }

  const dialogs = Anteroom.portalDialogs({ state, request, callView, intakeList });
  const { openAdmit, openDeny, openTransfer, returnToQueue } = dialogs;

  loadMe();
})();
