// The clinician portal's dialogs and queue actions: admit (showing the
// intake summary first), deny with a message, transfer to a room or a
// colleague, and return to queue. Used by portal.js, which passes in its
// state, its request function, the call view and the intake renderer.
'use strict';

(() => {
  const { $, el, announce } = Anteroom;

  /** Wires the dialogs; returns the actions the queue's buttons call. */
  Anteroom.portalDialogs = ({ state, request, callView, intakeList }) => {

    for (const dlg of document.querySelectorAll('dialog')) {
      for (const b of dlg.querySelectorAll('[data-close]')) b.addEventListener('click', () => dlg.close());
    }

    function nameOf(p) {
      for (const r of state.rooms.values()) if (r.entries.has(p)) return r.entries.get(p).display_name;
      return 'this patient';
    }

    async function openAdmit(p) {
      state.dialogTarget = p;
      $('admit-who').textContent = `${nameOf(p)}: please check the intake summary before admitting.`;
      $('admit-intake').replaceChildren(el('dd', { text: 'Loading…' }));
      $('admit-error').textContent = '';
      $('dlg-admit').showModal();
      const reply = await request({ type: 'get_intake', participant: p });
      if (reply.type === 'intake') $('admit-intake').replaceChildren(...intakeList(reply));
      else $('admit-error').textContent = reply.message || 'The patient is no longer waiting.';
    }

    $('admit-confirm').addEventListener('click', async () => {
      const p = state.dialogTarget;
      state.lastAdmit = p;
      const reply = await request({ type: 'admit', participant: p });
      if (reply.type === 'ok') {
        $('dlg-admit').close();
        announce(`${nameOf(p)} admitted.`);
      } else {
        $('admit-error').textContent = reply.message || 'Could not admit.';
      }
    });

    function openDeny(p) {
      state.dialogTarget = p;
      $('deny-who').textContent = `Turn ${nameOf(p)} away. Their place and intake answers are deleted.`;
      $('deny-message').value = '';
      $('deny-error').textContent = '';
      $('dlg-deny').showModal();
    }

    $('deny-confirm').addEventListener('click', async () => {
      const message = $('deny-message').value.trim();
      const msg = { type: 'deny', participant: state.dialogTarget };
      if (message) msg.message = message;
      const reply = await request(msg);
      if (reply.type === 'ok') $('dlg-deny').close();
      else $('deny-error').textContent = reply.message || 'Could not deny.';
    });

    function openTransfer(p) {
      state.dialogTarget = p;
      $('transfer-who').textContent = `Transfer ${nameOf(p)}.`;
      const select = $('transfer-room');
      select.replaceChildren(el('option', { value: '', text: '(choose a room)' }),
        ...(state.me ? state.me.rooms : []).map((r) => el('option', { value: r.id, text: r.name })));
      $('transfer-clinician').value = '';
      $('transfer-error').textContent = '';
      $('dlg-transfer').showModal();
    }

    $('transfer-confirm').addEventListener('click', async () => {
      const roomId = $('transfer-room').value;
      const clinician = $('transfer-clinician').value.trim();
      if (!roomId === !clinician) {
        $('transfer-error').textContent = 'Choose either a room or a colleague.';
        return;
      }
      const to = roomId ? { room: roomId } : { clinician };
      const p = state.dialogTarget;
      const reply = await request({ type: 'transfer', participant: p, to });
      if (reply.type === 'ok') {
        $('dlg-transfer').close();
        callView.patientGone(p);
        announce('Patient transferred.');
      } else {
        $('transfer-error').textContent = reply.message || 'Could not transfer.';
      }
    });

    async function returnToQueue(p) {
      const reply = await request({ type: 'return_to_queue', participant: p });
      if (reply.type === 'ok') {
        callView.patientGone(p);
        announce('The patient is back at the front of the queue.');
      } else {
        announce(`Could not return the patient: ${reply.message}`);
      }
    }

    return { openAdmit, openDeny, openTransfer, returnToQueue };
  };
})();
