// The admin view (`/admin`): the organisation's clinician accounts through
// the admin REST API (docs/accounts.md: list, create, disable, enable, reset
// a second factor) and
// its rooms (admin-rooms.js: list, create, edit, close, reopen).
'use strict';

(() => {
  const { $, el, announce, showOnly } = Anteroom;
  const VIEWS = ['view-loading', 'view-login', 'view-forbidden', 'view-admin'];
  let me = null;

  function showLogin(note) {
    me = null;
    $('logout').hidden = true;
    $('who').textContent = '';
    $('login-note').textContent = note || '';
    showOnly(VIEWS, 'view-login');
    if (note) announce(note);
  }

  function apiError(resp) {
    const err = (resp.body && resp.body.error) || {};
    return err.message || `request failed (HTTP ${resp.status})`;
  }

  /** A REST call that sends an expired session back to the login form. */
  async function call(method, path, body) {
    const resp = await Anteroom.api(method, path, body);
    if (resp.status === 401) {
      showLogin('Your session has expired. Please sign in again.');
      return null;
    }
    return resp;
  }

  async function load() {
    const resp = await call('GET', '/api/me');
    if (!resp) return;
    if (resp.status !== 200) {
      showLogin();
      return;
    }
    me = resp.body;
    $('who').textContent = me.display_name;
    $('org-name').textContent = me.tenant_name || '';
    $('logout').hidden = false;
    if (me.role !== 'admin') {
      showOnly(VIEWS, 'view-forbidden');
      return;
    }
    showOnly(VIEWS, 'view-admin');
    await Anteroom.adminRooms.load({ call, apiError });
    await loadAccounts();
  }

  async function loadAccounts() {
    const resp = await call('GET', '/api/admin/clinicians');
    if (!resp) return;
    if (resp.status !== 200) {
      announce(`Could not load the accounts: ${apiError(resp)}`);
      return;
    }
    $('accounts').replaceChildren(...resp.body.clinicians.map(accountRow));
  }

  function accountRow(a) {
    const self = me && a.id === me.clinician;
    const action = a.enabled ? 'disable' : 'enable';
    const label = `${a.enabled ? 'Disable' : 'Enable'} ${a.username}`;
    return el('tr', {},
      el('td', { text: a.username }),
      el('td', { text: a.display_name }),
      el('td', { text: a.role }),
      el('td', { text: `${a.enabled ? 'active' : 'disabled'}${a.totp_enabled ? ', two-step sign-in' : ''}` }),
      el('td', {}, self ? '(you)' : el('button', {
        type: 'button',
        class: a.enabled ? 'secondary' : '',
        'aria-label': label,
        text: a.enabled ? 'Disable' : 'Enable',
        onclick: () => toggle(a, action),
      }), a.totp_enabled ? el('button', {
        type: 'button',
        class: 'secondary',
        'aria-label': `Reset two-step sign-in of ${a.username}`,
        text: 'Reset two-step sign-in',
        onclick: () => resetTotp(a),
      }) : null));
  }

  /** Removes an account's TOTP second factor (a lost phone): it signs in
   *  with its password until its user enrols again. */
  async function resetTotp(account) {
    const resp = await call('POST', `/api/admin/clinicians/${encodeURIComponent(account.id)}/totp/reset`);
    if (!resp) return;
    if (resp.status === 200) {
      announce(`Two-step sign-in reset for ${account.username}.`);
      await loadAccounts();
    } else {
      announce(`Could not reset two-step sign-in of ${account.username}: ${apiError(resp)}`);
    }
  }

  async function toggle(account, action) {
    const resp = await call('POST', `/api/admin/clinicians/${encodeURIComponent(account.id)}/${action}`);
    if (!resp) return;
    if (resp.status === 200) {
      announce(`${account.username} ${action}d.`);
      await loadAccounts();
    } else {
      announce(`Could not ${action} ${account.username}: ${apiError(resp)}`);
    }
  }

  $('create-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const error = $('create-error');
    error.textContent = '';
    const body = {
      username: $('new-username').value.trim(),
      display_name: $('new-name').value.trim(),
      password: $('new-password').value,
      role: $('new-role').value,
    };
    if (!body.username || !body.display_name) {
      error.textContent = 'Enter a username and a display name.';
      return;
    }
    if (body.password.length < 12) {
      error.textContent = 'The password needs at least 12 characters.';
      $('new-password').focus();
      return;
    }
    const resp = await call('POST', '/api/admin/clinicians', body);
    if (!resp) return;
    if (resp.status === 201) {
      $('create-form').reset();
      announce(`Account ${body.username} created.`);
      await loadAccounts();
    } else {
      error.textContent = apiError(resp);
    }
  });

  Anteroom.setupLogin(() => load());
  $('logout').addEventListener('click', async () => {
    await Anteroom.logout();
    showLogin('You have signed out.');
  });

  load();
})();
