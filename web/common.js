// Anteroom common helpers shared by every page: DOM building that never
// parses markup (user data is only ever set as text), a reconnecting JSON
// WebSocket to signaling (/ws, docs/protocol.md), the REST helper for
// /api/*, the clinician login form and small formatting helpers.
'use strict';

const Anteroom = (() => {
  const PROTOCOL_VERSION = 1;

  /** Test and diagnostics hook (no secrets): the current call, the types
   *  of the last 50 messages received and the last 20 socket closes (close
   *  code, wait before reconnecting in ms). */
  const debug = { call: null, received: [], closes: [] };

  /** The element with this id. */
  function $(id) {
    return document.getElementById(id);
  }

  /** Builds an element. `attrs`: attributes, plus `text` (textContent),
   *  `class`, and `on<event>` handlers. Children: nodes or strings. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') node.textContent = String(v);
      else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  /** Shows exactly one of `ids` (the others get `hidden`). */
  function showOnly(ids, which) {
    for (const id of ids) {
      const node = $(id);
      if (node) node.hidden = id !== which;
    }
  }

  /** Says `text` in the page's polite live region (`#status`). */
  function announce(text) {
    const s = $('status');
    if (s) s.textContent = text;
  }

  /** "3 min", "45 s", "1 h 5 min". */
  function duration(secs) {
    const s = Math.max(0, Math.round(secs));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function wsUrl() {
    return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
  }

  /** Reconnect back-off in ms: the first wait, the cap of the doubling,
   *  and ± the fraction of jitter, so that the clients of a signaling node
   *  that goes away (close 1012/1013) do not all come back at once. */
  const BACKOFF = { start: 500, cap: 8000, jitter: 0.3 };

  /** The wait before reconnect attempt `attempt` (0: the first after a
   *  drop), in ms; `unit` in [0, 1) places it in the jitter range. */
  function reconnectDelay(attempt, unit = Math.random()) {
    const base = Math.min(BACKOFF.start * 2 ** Math.min(attempt, 16), BACKOFF.cap);
    return Math.round(base * (1 - BACKOFF.jitter + 2 * BACKOFF.jitter * unit));
  }

  /** A JSON WebSocket to signaling that reconnects with back-off and
   *  jitter ([`reconnectDelay`]) whatever the close code — a node going
   *  away (1001, 1012 service restart, 1013 try again later) included —
   *  until `stop()`. The back-off resets once a connection is welcomed.
   *  `onOpen(socket)` runs on every (re)connection and must send `hello`;
   *  `onMessage(msg)` gets every parsed message; `onDown()` when it drops.
   *  Pages call `stop()` on errors that must not reconnect. */
  class Socket {
    constructor({ onOpen, onMessage, onDown }) {
      this.onOpen = onOpen;
      this.onMessage = onMessage;
      this.onDown = onDown || (() => {});
      this.ws = null;
      this.stopped = false;
      this.attempt = 0;
      this.lastSend = Date.now();
    }

    connect() {
      this.stopped = false;
      const ws = new WebSocket(wsUrl());
      this.ws = ws;
      ws.addEventListener('open', () => {
        this.onOpen(this);
      });
      ws.addEventListener('message', (ev) => {
        let msg;
        try {
          msg = JSON.parse(ev.data);
        } catch (_) {
          return;
        }
        if (msg && typeof msg.type === 'string') {
          // Not at `open`: a node that accepts and closes at once (1013)
          // must not be retried every half second.
          if (msg.type === 'welcome') this.attempt = 0;
          debug.received.push(msg.type);
          if (debug.received.length > 50) debug.received.shift();
          this.onMessage(msg);
        }
      });
      ws.addEventListener('close', (ev) => {
        if (this.ws !== ws) return;
        this.ws = null;
        if (this.stopped) return;
        const wait = reconnectDelay(this.attempt);
        this.attempt += 1;
        debug.closes.push({ code: ev.code, wait });
        if (debug.closes.length > 20) debug.closes.shift();
        this.onDown();
        setTimeout(() => {
          if (!this.stopped) this.connect();
        }, wait);
      });
    }

    /** Sends one message; false if the socket is not open. */
    send(msg) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
      this.lastSend = Date.now();
      this.ws.send(JSON.stringify(msg));
      return true;
    }

    /** Closes for good (no reconnect). */
    stop() {
      this.stopped = true;
      if (this.ws) this.ws.close();
      this.ws = null;
    }
  }

  /** The session's CSRF token (docs/accounts.md, "CSRF"): from the login
   *  reply or /api/me, sent as X-CSRF-Token on every write. */
  let csrfToken = null;

  /** Calls a JSON REST endpoint; resolves to {status, body, headers}.
   *  Writes carry the CSRF token (fetched from /api/me first if the page
   *  has none yet, e.g. after a reload). */
  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: {} };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const write = !['GET', 'HEAD', 'OPTIONS'].includes(method.toUpperCase());
    if (write && !csrfToken && !path.startsWith('/api/login')) await api('GET', '/api/me');
    if (write && csrfToken) init.headers['X-CSRF-Token'] = csrfToken;
    const resp = await fetch(path, init);
    let data = null;
    const text = await resp.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = null;
      }
    }
    if (data && typeof data.csrf_token === 'string') csrfToken = data.csrf_token;
    if (resp.status === 401 || path === '/api/logout') csrfToken = null;
    return { status: resp.status, body: data, headers: resp.headers };
  }

  /** A user-facing sentence for a failed /api/login. */
  function loginError(resp) {
    const err = (resp.body && resp.body.error) || {};
    if (resp.status === 429 || err.code === 'throttled') {
      const secs = err.retry_after_secs || Number(resp.headers.get('Retry-After')) || 0;
      return `Too many failed sign-in attempts. Please wait ${duration(secs)} and try again.`;
    }
    if (err.code === 'login_expired') return 'The sign-in took too long. Please enter your password again.';
    if (resp.status === 401 && err.code === 'invalid_credentials' && codeStep()) {
      return 'Wrong or already used code. Enter the current code from your authenticator app.';
    }
    if (resp.status === 401) return 'Wrong username or password.';
    if (err.message) return `Sign-in failed: ${err.message}`;
    return `Sign-in failed (HTTP ${resp.status}).`;
  }

  /** The second-factor step of the login form (#totp-step), if shown. */
  function codeStep() {
    const step = $('totp-step');
    return step && !step.hidden ? step : null;
  }

  /** Shows the code field (built on first use, before #login-error), or
   *  hides it and forgets the ticket when `ticket` is null. */
  function showCodeStep(form, ticket) {
    let step = $('totp-step');
    if (!step && ticket) {
      step = el('div', { id: 'totp-step' },
        el('label', { for: 'totp-code', text: 'Code from your authenticator app' }),
        el('input', {
          id: 'totp-code', inputmode: 'numeric', autocomplete: 'one-time-code',
          pattern: '[0-9]{6}', maxlength: '6', required: true, 'aria-required': 'true',
        }));
      form.insertBefore(step, $('login-error'));
    }
    if (!step) return;
    step.hidden = !ticket;
    step.dataset.ticket = ticket || '';
    $('totp-code').value = '';
    if (ticket) $('totp-code').focus();
  }

  /** Wires the login form (#login-form with #username, #password,
   *  #login-error). An account with a second factor gets a code field after
   *  its password (docs/accounts.md, "Second factor"). `onLoggedIn(login)`
   *  runs after a successful login; the session cookie (HttpOnly) carries
   *  the session from then on. */
  function setupLogin(onLoggedIn) {
    const form = $('login-form');
    const error = $('login-error');
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      error.textContent = '';
      const step = codeStep();
      const username = $('username').value.trim();
      const password = $('password').value;
      const code = step ? $('totp-code').value.trim() : '';
      if (step ? !/^[0-9]{6}$/.test(code) : !username || !password) {
        error.textContent = step ? 'Enter the 6-digit code.' : 'Enter your username and password.';
        return;
      }
      const button = form.querySelector('button[type=submit]');
      button.disabled = true;
      try {
        const resp = step
          ? await api('POST', '/api/login/totp', { ticket: step.dataset.ticket, code })
          : await api('POST', '/api/login', { username, password });
        const err = (resp.body && resp.body.error) || {};
        if (resp.status === 200 && resp.body) {
          $('password').value = '';
          showCodeStep(form, null);
          onLoggedIn(resp.body);
        } else if (err.code === 'totp_required' && resp.body.ticket) {
          showCodeStep(form, resp.body.ticket);
        } else {
          error.textContent = loginError(resp);
          if (err.code === 'login_expired') showCodeStep(form, null);
          if (codeStep()) $('totp-code').focus();
          else $('password').focus();
        }
      } catch (_) {
        error.textContent = 'The service cannot be reached. Check your connection.';
      } finally {
        button.disabled = false;
      }
    });
  }

  /** Logs out (best effort). */
  async function logout() {
    try {
      await api('POST', '/api/logout');
    } catch (_) {
      /* the cookie expires anyway */
    }
  }


  return {
    PROTOCOL_VERSION, $, el, showOnly, announce, duration, Socket, reconnectDelay,
    api, loginError, setupLogin, logout, debug,
  };
})();
