/*
 * dinhdanh: the session time-out warning of the account pages (WCAG 2.1 SC 2.2.1 Timing Adjustable:
 * before a time limit ends, the person is warned and can extend it with a simple action).
 *
 * The SSO session ends after `data-idle-ms` without a request (PRODUCT.md: 30 minutes). `data-warn-ms`
 * before that, the page's closed <dialog id="session-timeout"> is opened with showModal(): focus
 * moves into it and the rest of the page is inert. Its button posts the page's CSRF token
 * (`_csrf`, form-urlencoded, same-origin) to `data-keepalive-url`, which counts as activity: 204
 * keeps the person signed in, 401 (or 403: this page's token no longer matches a live session) means
 * the session is gone. When the time runs out the dialog says so and offers to sign in again.
 *
 * Escape (and a phone's back gesture, which browsers treat the same) closes the warning and counts
 * as "stay signed in": it is the usual way to dismiss a dialog (WAI-ARIA APG, Dialog (Modal)
 * pattern), and dismissing a warning must not leave the session to end unseen behind it, which is
 * what a plain close would do. Signing out is offered as its own link.
 *
 * The script has no text of its own: what it writes comes from the dialog's data-text-* attributes,
 * rendered by the server in the page's language; durations are spelled by the browser's
 * Intl.NumberFormat in the page's `lang`. The visible countdown changes every second, but the
 * status region that screen readers announce changes only every 30 seconds (an announcement every
 * second would drown everything else out).
 *
 * Served from our origin, so the CSP's `script-src 'self'` allows it; no inline script. Without
 * JavaScript (or without <dialog> support) nothing happens: the dialog stays closed, which browsers
 * neither render nor expose, and the server's idle limit applies as it always did.
 */
/* global window, document, location, fetch, URL, URLSearchParams */
(function () {
  'use strict';

  var dialog = document.getElementById('session-timeout');
  if (!dialog || typeof dialog.showModal !== 'function' || typeof fetch !== 'function') return;

  var idleMs = Number(dialog.getAttribute('data-idle-ms'));
  var warnMs = Number(dialog.getAttribute('data-warn-ms'));
  if (!(idleMs > 0) || !(warnMs > 0)) return;
  warnMs = Math.min(warnMs, idleMs);
  var keepalive;
  try {
    keepalive = new URL(dialog.getAttribute('data-keepalive-url') || '', location.href);
  } catch {
    return;
  }
  // The CSRF token goes to our own origin only.
  if (keepalive.origin !== location.origin) return;
  var csrf = dialog.getAttribute('data-csrf') || '';
  var warningText = dialog.getAttribute('data-text-warning') || '';
  var remainingText = dialog.getAttribute('data-text-remaining') || '';

  var warningPart = dialog.querySelector('[data-state="warning"]');
  var expiredPart = dialog.querySelector('[data-state="expired"]');
  var message = dialog.querySelector('[data-role="message"]');
  var error = dialog.querySelector('[data-role="error"]');
  var live = dialog.querySelector('[data-role="live"]');
  var stayButton = dialog.querySelector('[data-action="stay"]');
  var signIn = dialog.querySelector('[data-action="sign-in"]');
  var closeButton = dialog.querySelector('[data-action="close"]');
  if (!warningPart || !expiredPart || !message || !error || !live || !stayButton || !signIn || !closeButton) return;
  var labels = {
    warning: [warningPart.querySelector('h2').id, message.id],
    expired: [expiredPart.querySelector('h2').id, expiredPart.querySelector('p').id],
  };

  var lang = document.documentElement.lang || undefined;
  /** The server counted activity when it sent this page: its idle clock started no later than now. */
  var deadline = Date.now() + idleMs;
  /** 'counting' (dialog closed), 'warning' or 'expired'. */
  var state = 'counting';
  var announcedStep = 0;
  var sending = false;
  /** Where focus was before the dialog took it, to go back there (WCAG 2.1 SC 2.4.3 Focus Order). */
  var returnFocus = null;

  function unit(name, n) {
    return new Intl.NumberFormat(lang, { style: 'unit', unit: name, unitDisplay: 'long' }).format(n);
  }

  /** "1 phút 30 giây" / "1 minute 30 seconds"; "1:30" where the browser cannot spell units. */
  function duration(ms) {
    var total = Math.max(0, Math.ceil(ms / 1000));
    var m = Math.floor(total / 60);
    var s = total % 60;
    try {
      var parts = [];
      if (m > 0) parts.push(unit('minute', m));
      if (s > 0 || m === 0) parts.push(unit('second', s));
      return parts.join(' ');
    } catch {
      return m + ':' + (s < 10 ? '0' : '') + s;
    }
  }

  function fill(template, ms) {
    var text = duration(ms);
    return template.replace('{time}', function () { return text; });
  }

  /** Which 30-second step of the warning we are in (announced once each). */
  function step(remaining) {
    return Math.ceil(remaining / 30000);
  }

  function show(which) {
    warningPart.hidden = which !== 'warning';
    expiredPart.hidden = which !== 'expired';
    dialog.setAttribute('aria-labelledby', labels[which][0]);
    dialog.setAttribute('aria-describedby', labels[which][1]);
  }

  function openWarning(remaining) {
    state = 'warning';
    show('warning');
    error.hidden = true;
    message.textContent = fill(warningText, remaining);
    // The dialog's description already says how long is left when it opens; the status region
    // speaks only at the next 30-second step.
    live.textContent = '';
    announcedStep = step(remaining);
    openModal();
    stayButton.focus();
  }

  function openModal() {
    if (dialog.open) return;
    var active = document.activeElement;
    returnFocus = active && active !== document.body && !dialog.contains(active) ? active : null;
    dialog.showModal();
  }

  /**
   * After the dialog closes, focus goes back where it was; if it was nowhere in particular, it must
   * not stay on a button of the now hidden dialog (keyboard users would be left on nothing).
   */
  function afterClose() {
    if (dialog.open) return; // closed and opened again (the expired state)
    var active = document.activeElement;
    if (active && active !== document.body && !dialog.contains(active)) return;
    if (returnFocus && returnFocus.isConnected && typeof returnFocus.focus === 'function') {
      returnFocus.focus();
    } else if (active && typeof active.blur === 'function') {
      active.blur();
    }
  }

  function updateWarning(remaining) {
    message.textContent = fill(warningText, remaining);
    var now = step(remaining);
    if (now < announcedStep) {
      announcedStep = now;
      live.textContent = fill(remainingText, now * 30000);
    }
  }

  function expire() {
    if (state === 'expired') return;
    state = 'expired';
    window.clearInterval(timer);
    show('expired');
    live.textContent = '';
    // Opened again so that assistive technologies announce the dialog afresh, with its new name
    // and description, and focus lands on the way forward.
    if (dialog.open) {
      dialog.close();
      dialog.showModal();
    } else {
      openModal();
    }
    signIn.focus();
  }

  function failed() {
    if (state !== 'warning') return;
    error.hidden = false;
    openModal();
    stayButton.focus();
  }

  function stay() {
    if (sending || state !== 'warning') return;
    sending = true;
    stayButton.setAttribute('aria-disabled', 'true');
    var sentAt = Date.now();
    fetch(keepalive.href, {
      method: 'POST',
      credentials: 'same-origin',
      mode: 'same-origin',
      cache: 'no-store',
      redirect: 'error',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    }).then(function (res) {
      if (res.status === 204) {
        // The server's idle clock restarted when it received the request, after `sentAt`.
        deadline = sentAt + idleMs;
        state = 'counting';
        error.hidden = true;
        if (dialog.open) dialog.close();
      } else if (res.status === 401 || res.status === 403) {
        expire();
      } else {
        failed();
      }
    }, failed).then(function () {
      sending = false;
      stayButton.removeAttribute('aria-disabled');
    });
  }

  function tick() {
    if (state === 'expired') return;
    var remaining = deadline - Date.now();
    if (remaining <= 0) {
      expire();
    } else if (remaining <= warnMs) {
      if (state === 'warning' && dialog.open) updateWarning(remaining);
      else if (state === 'counting') openWarning(remaining);
    }
  }

  stayButton.addEventListener('click', stay);
  closeButton.addEventListener('click', function () { dialog.close(); });
  dialog.addEventListener('close', afterClose);
  dialog.addEventListener('cancel', function () {
    // Escape: the dialog closes (the browser's default) and, while warning, the person stays signed in.
    if (state === 'warning') stay();
  });

  // Timers are slowed in background tabs and stop while a phone sleeps: every tick reads the clock,
  // and a tab coming back into view checks at once.
  var timer = window.setInterval(tick, 1000);
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') tick();
  });
}());
