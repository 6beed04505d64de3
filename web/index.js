// The landing page: sends a patient with a room code to /r/<code>.
'use strict';

(() => {
  const { $ } = Anteroom;
  $('room-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const code = $('room-code').value.trim();
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(code)) {
      $('room-error').textContent = 'A room code has letters, digits, dots, dashes or underscores only.';
      $('room-code').focus();
      return;
    }
    location.assign(`/r/${encodeURIComponent(code)}`);
  });
})();
