// The admin view's room management (`/admin`): lists the organisation's
// rooms through the admin room API (docs/accounts.md: GET/POST
// /api/admin/rooms, PUT /api/admin/rooms/<id>, POST …/close and …/reopen),
// and one form that creates a room or edits the chosen one: name, kind,
// whether patients see their position, and the intake questions. Every
// write goes through Anteroom.api (common.js), which adds the CSRF header.
'use strict';

(() => {
  const { $, el, announce } = Anteroom;
  let call = null; // admin.js's REST helper (expired sessions go to login)
  let apiError = null;
  let rooms = [];
  let editing = null; // the room being edited, or null when creating
  let nextQuestion = 1;

  /** Loads and shows the rooms; `helpers` = {call, apiError} from admin.js. */
  async function load(helpers) {
    ({ call, apiError } = helpers);
    const resp = await call('GET', '/api/admin/rooms');
    if (!resp) return;
    if (resp.status !== 200) {
      announce(`Could not load the rooms: ${apiError(resp)}`);
      return;
    }
    rooms = resp.body.rooms;
    render();
  }

  function render() {
    $('room-list').replaceChildren(...rooms.map((r) => {
      const link = `${location.origin}${r.link}`;
      return el('tr', { 'data-room': r.id },
        el('td', { text: r.name }),
        el('td', { text: r.kind === 'meeting' ? 'meeting room' : 'waiting room' }),
        el('td', { text: r.hide_position ? 'hidden' : 'shown' }),
        el('td', { text: r.closed ? 'closed' : 'open' }),
        el('td', {}, el('a', { href: link, text: link })),
        el('td', {},
          el('button', { type: 'button', class: 'secondary', 'aria-label': `Edit ${r.name}`, text: 'Edit', onclick: () => startEdit(r) }),
          ' ',
          el('button', {
            type: 'button',
            class: r.closed ? '' : 'secondary',
            'aria-label': `${r.closed ? 'Reopen' : 'Close'} ${r.name}`,
            text: r.closed ? 'Reopen' : 'Close',
            onclick: () => setClosed(r, !r.closed),
          })));
    }));
  }

  async function setClosed(room, closed) {
    const action = closed ? 'close' : 'reopen';
    const resp = await call('POST', `/api/admin/rooms/${encodeURIComponent(room.id)}/${action}`);
    if (!resp) return;
    if (resp.status === 200) {
      announce(closed
        ? `${room.name} is closed: new patients are turned away; those waiting keep their place.`
        : `${room.name} is open again.`);
      await load({ call, apiError });
    } else {
      announce(`Could not ${action} ${room.name}: ${apiError(resp)}`);
    }
  }

  // The create/edit form -------------------------------------------------

  function questionRow(q) {
    const n = nextQuestion++;
    const row = el('fieldset', { class: 'question', 'data-id': q.id || '' },
      el('legend', { text: `Question ${n}` }),
      el('label', { for: `room-q-${n}`, text: 'Question shown to patients' }),
      el('input', { id: `room-q-${n}`, class: 'q-label', maxlength: 200, value: q.label || '', autocomplete: 'off' }),
      el('label', { class: 'inline', for: `room-q-${n}-req` },
        el('input', { id: `room-q-${n}-req`, type: 'checkbox', class: 'q-required' }),
        ' An answer is required'),
      el('button', { type: 'button', class: 'secondary', text: 'Remove question', 'aria-label': `Remove question ${n}`, onclick: () => { row.remove(); $('room-add-question').focus(); } }));
    row.querySelector('.q-required').checked = Boolean(q.required);
    return row;
  }

  function resetForm() {
    editing = null;
    $('room-form').reset();
    $('room-questions').replaceChildren();
    $('room-error').textContent = '';
    $('room-form-h').textContent = 'Create a room';
    $('room-submit').textContent = 'Create room';
    $('room-cancel').hidden = true;
  }

  function startEdit(room) {
    resetForm();
    editing = room;
    $('room-form-h').textContent = `Edit ${room.name}`;
    $('room-submit').textContent = 'Save changes';
    $('room-cancel').hidden = false;
    $('room-name').value = room.name;
    $('room-kind').value = room.kind;
    $('room-hide').checked = room.hide_position;
    $('room-questions').append(...room.intake.map(questionRow));
    $('room-name').focus();
  }

  /** The questions in the form; new ones get ids q1, q2… not yet used. */
  function questions() {
    const rows = [...$('room-questions').querySelectorAll('fieldset.question')];
    const used = new Set(rows.map((r) => r.dataset.id).filter(Boolean));
    let n = 1;
    return rows.map((r) => {
      let id = r.dataset.id;
      if (!id) {
        while (used.has(`q${n}`)) n += 1;
        id = `q${n}`;
        used.add(id);
      }
      return { id, label: r.querySelector('.q-label').value.trim(), required: r.querySelector('.q-required').checked };
    });
  }

  async function submit(ev) {
    ev.preventDefault();
    const error = $('room-error');
    error.textContent = '';
    const body = {
      name: $('room-name').value.trim(),
      kind: $('room-kind').value,
      hide_position: $('room-hide').checked,
      intake: questions(),
    };
    if (!body.name) {
      error.textContent = 'Enter a name for the room.';
      $('room-name').focus();
      return;
    }
    const empty = body.intake.findIndex((q) => !q.label);
    if (empty >= 0) {
      error.textContent = `Question ${empty + 1} is empty: write it or remove it.`;
      return;
    }
    const resp = editing
      ? await call('PUT', `/api/admin/rooms/${encodeURIComponent(editing.id)}`, body)
      : await call('POST', '/api/admin/rooms', body);
    if (!resp) return;
    if (resp.status === 200 || resp.status === 201) {
      const room = resp.body;
      announce(editing ? `${room.name} saved.` : `Room ${room.name} created. Patient link: ${location.origin}${room.link}`);
      resetForm();
      await load({ call, apiError });
    } else {
      error.textContent = apiError(resp);
    }
  }

  $('room-form').addEventListener('submit', submit);
  $('room-add-question').addEventListener('click', () => {
    const row = questionRow({});
    $('room-questions').append(row);
    row.querySelector('.q-label').focus();
  });
  $('room-cancel').addEventListener('click', () => {
    resetForm();
    announce('Editing cancelled.');
  });

  Anteroom.adminRooms = { load };
})();
