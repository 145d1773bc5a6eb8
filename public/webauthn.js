/*
 * dinhdanh: passkeys (WebAuthn) on the sign-in pages. The only script the pages load; same-origin,
 * so the CSP's `script-src 'self'` allows it, and no inline script is needed.
 *
 * A passkey form carries `data-webauthn="get"` (sign-in) or `"create"` (registration) and the
 * options in `data-options` (JSON, HTML-escaped by the template). Its button runs
 * navigator.credentials.get/create, writes the answer as JSON (binary fields base64url, as in
 * WebAuthn Level 3's toJSON()) into the hidden `response` field and submits the form: an ordinary
 * same-origin form post with the CSRF token, checked on the server like every other form.
 * The challenge in the options is only a copy: the server keeps its own and compares.
 * Without JavaScript nothing happens here; the page says so in a <noscript> hint.
 */
/* global window, document, navigator */
(function () {
  'use strict';

  function toBuffer(b64url) {
    var b64 = b64url.replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) b64 += '=';
    var binary = window.atob(b64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    if (!buffer) return null;
    var bytes = new Uint8Array(buffer);
    var binary = '';
    for (var i = 0; i < bytes.length; i += 1) binary += String.fromCharCode(bytes[i]);
    return window.btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var out = { type: d.type || 'public-key', id: toBuffer(d.id) };
      if (d.transports) out.transports = d.transports;
      return out;
    });
  }

  function creationOptions(o) {
    var out = Object.assign({}, o, {
      challenge: toBuffer(o.challenge),
      user: Object.assign({}, o.user, { id: toBuffer(o.user.id) }),
      excludeCredentials: descriptors(o.excludeCredentials),
    });
    return { publicKey: out };
  }

  function requestOptions(o) {
    var out = Object.assign({}, o, { challenge: toBuffer(o.challenge), allowCredentials: descriptors(o.allowCredentials) });
    return { publicKey: out };
  }

  function serialise(credential, kind) {
    var r = credential.response;
    var response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (kind === 'create') {
      response.attestationObject = toBase64url(r.attestationObject);
      response.transports = typeof r.getTransports === 'function' ? r.getTransports() : [];
    } else {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      response.userHandle = toBase64url(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: response,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: typeof credential.getClientExtensionResults === 'function' ? credential.getClientExtensionResults() : {},
    };
  }

  function show(form, text) {
    var status = form.querySelector('[data-webauthn-status]');
    if (!status) return;
    status.textContent = text;
    status.setAttribute('role', 'alert');
    status.hidden = false;
  }

  function setUp(form) {
    var kind = form.getAttribute('data-webauthn');
    var button = form.querySelector('[data-webauthn-start]');
    var field = form.querySelector('input[name="response"]');
    if (!button || !field || (kind !== 'get' && kind !== 'create')) return;
    var supported = !!(window.PublicKeyCredential && navigator.credentials);

    button.addEventListener('click', function () {
      if (!supported) {
        show(form, form.getAttribute('data-msg-unsupported'));
        return;
      }
      var options;
      try {
        var json = JSON.parse(form.getAttribute('data-options'));
        options = kind === 'create' ? creationOptions(json) : requestOptions(json);
      } catch {
        show(form, form.getAttribute('data-msg-failed'));
        return;
      }
      button.disabled = true;
      var ceremony = kind === 'create' ? navigator.credentials.create(options) : navigator.credentials.get(options);
      ceremony.then(function (credential) {
        if (!credential) throw new Error('no credential');
        field.value = JSON.stringify(serialise(credential, kind));
        form.submit();
      }).catch(function (err) {
        button.disabled = false;
        var name = err && err.name;
        if (name === 'NotAllowedError' || name === 'AbortError') show(form, form.getAttribute('data-msg-cancelled'));
        else if (name === 'InvalidStateError') show(form, form.getAttribute('data-msg-exists'));
        else show(form, form.getAttribute('data-msg-failed'));
      });
    });
  }

  var forms = document.querySelectorAll('form[data-webauthn]');
  for (var i = 0; i < forms.length; i += 1) setUp(forms[i]);
})();
