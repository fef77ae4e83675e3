// taskpane.js - the Outlook pane: reads the X-Halo-Status / X-Halo-Token
// headers halo-milter stamped on the open message, asks the daemon's status
// API what became of it, and shows the answer. No build step, no framework.
// Every piece of data reaches the page through textContent, never as HTML.
'use strict';

(function () {
  var API = '../api/status';            // relative: works behind a path prefix
  var POLL_FIRST = 2000, POLL_MAX = 60000;

  var generation = 0;                   // bumps on every item change
  var timer = null;

  function $(id) { return document.getElementById(id); }

  function setText(id, text) {
    var el = $(id);
    el.textContent = text == null ? '' : String(text);
    return el;
  }

  // The status line (aria-live) and the busy flag.
  function say(text, isError) {
    var el = setText('status', text);
    el.className = 'status' + (isError ? ' error' : '');
    $('app').setAttribute('aria-busy', 'false');
  }

  function note(text) {
    var el = $('note');
    el.textContent = text || '';
    el.hidden = !text;
  }

  function clearResult() {
    $('result').hidden = true;
    $('open').hidden = true;
    note('');
  }

  // ---------------------------------------------------------------- headers

  // Parse a raw header block: unfold continuation lines, split name: value,
  // names compared case-insensitively. Returns [{name (lower case), value}].
  function parseHeaders(text) {
    var out = [];
    if (typeof text !== 'string') return out;
    var block = text.split(/\r?\n\r?\n/)[0];
    var unfolded = block.replace(/\r?\n[ \t]+/g, ' ');
    unfolded.split(/\r?\n/).forEach(function (line) {
      var i = line.indexOf(':');
      if (i <= 0) return;
      var name = line.slice(0, i).trim().toLowerCase();
      if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) return;
      out.push({ name: name, value: line.slice(i + 1).trim() });
    });
    return out;
  }

  // "state; key=value; key=value" -> {first: 'state', key: value, ...}
  function parseParams(value) {
    var parts = String(value).split(';');
    var out = { first: parts[0].trim() };
    for (var i = 1; i < parts.length; i++) {
      var p = parts[i], eq = p.indexOf('=');
      if (eq > 0) out[p.slice(0, eq).trim().toLowerCase()] = p.slice(eq + 1).trim();
    }
    return out;
  }

  // Our gateway adds its stamps after every other header, so when a message
  // passed it more than once, the last stamp is the one that counts.
  function findStamp(headers) {
    var status = null, tokens = [];
    headers.forEach(function (h) {
      if (h.name === 'x-halo-status') status = parseParams(h.value);
      else if (h.name === 'x-halo-token') tokens.push(parseParams(h.value));
    });
    if (!status || !status.tenant) return null;
    var token = null;
    tokens.forEach(function (t) {
      if (t.tenant === status.tenant || (!t.tenant && !token)) token = t.first;
    });
    var mid = null;
    headers.forEach(function (h) { if (h.name === 'message-id') mid = h.value; });
    return { status: status, tenant: status.tenant, token: token, messageId: mid };
  }

  // ---------------------------------------------------------------- render

  function when(iso) {
    if (!iso) return null;
    var d = new Date(iso);
    if (isNaN(d.getTime())) return null;
    return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }

  function line(parent, text, cls) {
    var span = document.createElement('span');
    span.textContent = text;
    if (cls) span.className = cls;
    parent.appendChild(span);
    return span;
  }

  function renderSender(s) {
    var dd = $('sender');
    dd.textContent = '';
    if (!s) { dd.textContent = 'Unknown'; return; }
    var email = s.email || 'no address';
    if (s.match === 'contact' && s.contact) {
      line(dd, (s.contact.name || email) + (s.contact.id ? ' (contact #' + s.contact.id + ')' : ''));
      var sub = email;
      if (s.client && (s.client.name || s.client.id))
        sub += ' \u00b7 ' + (s.client.name || 'client') + (s.client.id ? ' #' + s.client.id : '');
      line(dd, sub, 'sub');
    } else if (s.match === 'client' && s.client) {
      line(dd, (s.client.name || 'Client') + (s.client.id ? ' (client #' + s.client.id + ')' : ''));
      line(dd, email + ' \u00b7 ' + (s.why || 'matched by domain; no contact with this address'), 'sub');
    } else if (s.match === 'unknown') {
      line(dd, 'Unknown sender: ' + email);
      if (s.why) line(dd, s.why, 'sub');
    } else if (s.match === 'pending') {
      line(dd, email);
      line(dd, 'not matched yet', 'sub');
    } else {
      line(dd, email);
      line(dd, 'not looked up in Halo', 'sub');
    }
  }

  var OUTCOME = {
    created: ['ok', function (t) { return 'Created ticket' + (t ? ' #' + t.id : ''); }],
    appended: ['ok', function (t) { return 'Added to ticket' + (t ? ' #' + t.id : ''); }],
    queued: ['info', function () { return 'Queued: being logged in Halo\u2026'; }],
    waiting: ['warn', function () { return 'Waiting for an operator'; }],
    skipped: ['warn', function () { return 'Not logged in Halo'; }],
    failed: ['error', function () { return 'Logging failed'; }],
  };

  function render(data) {
    var kind = OUTCOME[data.state] || ['info', function () { return 'Status: ' + data.state; }];
    var result = $('result');
    result.className = 'result ' + kind[0];
    setText('outcome', kind[1](data.ticket));
    var reason = setText('reason', data.reason ? 'Reason: ' + data.reason : '');
    reason.hidden = !data.reason;
    renderSender(data.sender);

    var tdd = $('ticket');
    tdd.textContent = '';
    var open = $('open');
    if (data.ticket) {
      line(tdd, '#' + data.ticket.id + (data.ticket.summary ? ' \u00b7 ' + data.ticket.summary : ''));
      if (data.ticket.status) line(tdd, 'Status when logged: ' + data.ticket.status, 'sub');
      if (data.ticket.url && /^https?:\/\//i.test(data.ticket.url)) {
        open.href = data.ticket.url;
        open.setAttribute('aria-label', 'Open ticket ' + data.ticket.id + ' in Halo (new window)');
        open.hidden = false;
      } else open.hidden = true;
    } else {
      line(tdd, data.settled ? 'none' : 'not yet');
      open.hidden = true;
    }

    var wdd = $('when');
    wdd.textContent = '';
    var got = when(data.received), upd = when(data.updated);
    line(wdd, got ? 'Received ' + got : 'Unknown');
    if (upd && data.settled && upd !== got) line(wdd, (data.state === 'skipped' ? 'Decided ' : 'Logged ') + upd, 'sub');
    var next = when(data.next_attempt);
    if (!data.settled && next && data.reason) line(wdd, 'Next attempt ' + next, 'sub');
    result.hidden = false;
    say(data.settled ? 'Up to date.' : 'Checking again shortly\u2026');
  }

  // ---------------------------------------------------------------- flow

  function schedule(gen, fn, delay) {
    if (timer) clearTimeout(timer);
    timer = setTimeout(function () { if (gen === generation) fn(); }, delay);
  }

  function ask(gen, stamp, mid, delay) {
    var url = API + '?tenant=' + encodeURIComponent(stamp.tenant) +
        '&mid=' + encodeURIComponent(mid) + '&token=' + encodeURIComponent(stamp.token);
    var next = Math.min(delay * 2, POLL_MAX);
    fetch(url, { credentials: 'omit', cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          return { status: r.status, body: body, retry: r.headers.get('Retry-After') };
        });
      })
      .then(function (res) {
        if (gen !== generation) return;
        if (res.status === 200) {
          render(res.body);
          if (!res.body.settled) schedule(gen, function () { ask(gen, stamp, mid, next); }, delay);
        } else if (res.status === 404) {
          clearResult();
          say('halo-milter has no record of this message.');
          note('The gateway stamped it, but its job is not in this server\u2019s store (it may have been handled by another gateway, or purged).');
        } else if (res.status === 403) {
          clearResult();
          say('The Halo stamp on this message is not valid.', true);
          note('Its X-Halo-Token does not match: the headers may have been added or altered outside our gateway. Nothing is shown for it.');
        } else if (res.status === 429) {
          var wait = Math.max(1, parseInt(res.retry, 10) || 30) * 1000;
          say('Too many requests; trying again in ' + Math.round(wait / 1000) + ' s.');
          schedule(gen, function () { ask(gen, stamp, mid, delay); }, wait);
        } else {
          say('The Halo gateway did not answer (' + res.status + '); retrying.', true);
          schedule(gen, function () { ask(gen, stamp, mid, next); }, delay);
        }
      })
      .catch(function () {
        if (gen !== generation) return;
        say('Cannot reach the Halo gateway; retrying.', true);
        schedule(gen, function () { ask(gen, stamp, mid, next); }, delay);
      });
  }

  function headerAccess() {
    var item = Office.context.mailbox && Office.context.mailbox.item;
    var req = Office.context.requirements;
    var supported = !req || typeof req.isSetSupported !== 'function' ||
        req.isSetSupported('Mailbox', '1.8');
    return supported && item && typeof item.getAllInternetHeadersAsync === 'function';
  }

  function load() {
    generation++;
    var gen = generation;
    if (timer) { clearTimeout(timer); timer = null; }
    clearResult();
    $('app').setAttribute('aria-busy', 'true');
    var item = Office.context.mailbox && Office.context.mailbox.item;
    if (!item) { say('Select a message to see what happened to it in Halo.'); return; }
    if (!headerAccess()) {
      say('This Outlook cannot show the Halo status.');
      note('The pane reads the headers the mail gateway stamped, and this Outlook does not let add-ins read message headers (it needs Mailbox requirement set 1.8: Outlook on the web, the new Outlook, or Outlook on Windows or Mac). Open the message there to see its Halo status.');
      return;
    }
    say('Reading the message\u2026');
    item.getAllInternetHeadersAsync(function (res) {
      if (gen !== generation) return;
      if (!res || res.status !== Office.AsyncResultStatus.Succeeded) {
        say('Outlook could not read this message\u2019s headers.', true);
        return;
      }
      var stamp = findStamp(parseHeaders(res.value));
      if (!stamp) {
        say('This message was not logged by the Halo gateway.');
        note('It carries no X-Halo-Status stamp: it did not pass the gateway, or none of its recipients is routed to Halo.');
        return;
      }
      if (!stamp.token) {
        say('This message has a Halo stamp but no token.', true);
        note('It was stamped before the pane existed, or the token was removed on the way.');
        return;
      }
      var mid = item.internetMessageId || stamp.messageId;
      if (!mid) { say('This message has no Message-ID.', true); return; }
      say('Asking the Halo gateway\u2026');
      ask(gen, stamp, mid, POLL_FIRST);
    });
  }

  // Office's theme when the host tells it; else prefers-color-scheme (CSS).
  function applyTheme() {
    var theme = Office.context && Office.context.officeTheme;
    if (!theme || !theme.bodyBackgroundColor) return;
    var hex = String(theme.bodyBackgroundColor).replace('#', '');
    if (!/^[0-9a-f]{6}$/i.test(hex)) return;
    var n = parseInt(hex, 16);
    var lum = 0.2126 * (n >> 16) + 0.7152 * ((n >> 8) & 255) + 0.0722 * (n & 255);
    document.documentElement.setAttribute('data-theme', lum < 128 ? 'dark' : 'light');
  }

  // exposed for the tests (pure helpers only)
  window.HaloPane = { parseHeaders: parseHeaders, findStamp: findStamp };

  if (typeof Office === 'undefined' || !Office.onReady) {
    say('Open this page from Outlook: it runs as an Outlook add-in.', true);
    return;
  }
  Office.onReady(function () {
    applyTheme();
    var mailbox = Office.context.mailbox;
    // pinned panes stay open across messages: follow the selection
    if (mailbox && typeof mailbox.addHandlerAsync === 'function' && Office.EventType &&
        Office.EventType.ItemChanged)
      mailbox.addHandlerAsync(Office.EventType.ItemChanged, load);
    load();
  });
})();
