// The portal sign-in page's "Sign in with your organisation" option
// (OpenID Connect, docs/accounts.md): shown when the page's `?org=<id>`
// names an organisation with an identity provider (GET /api/login-options),
// and the message of a failed organisation sign-in (`?login_error=<code>`,
// where the callback sends the browser back).
'use strict';

(() => {
  const params = new URLSearchParams(window.location.search);
  const org = params.get('org');
  const error = params.get('login_error');
  if (!org && !error) return;
  const query = new URLSearchParams();
  if (org) query.set('org', org);
  if (error) query.set('error', error);
  fetch(`/api/login-options?${query}`, { headers: { Accept: 'application/json' } })
    .then((resp) => (resp.ok ? resp.json() : null))
    .then((opts) => {
      if (!opts) return;
      const link = document.getElementById('oidc-start');
      if (opts.oidc_start && link) {
        link.href = opts.oidc_start;
        if (opts.org_name) link.textContent = `Sign in with your organisation (${opts.org_name})`;
        document.getElementById('oidc-login').hidden = false;
      }
      const box = document.getElementById('login-error');
      if (opts.error_message && box) box.textContent = opts.error_message;
      // A reload should not show the old error again.
      if (error) history.replaceState(null, '', org ? `/portal?org=${encodeURIComponent(org)}` : '/portal');
    })
    .catch(() => { /* the password form still works */ });
})();
