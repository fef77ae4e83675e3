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
    var conv = null;
    headers.forEach(function (h) { if (h.name === 'x-halo-conversation-id' && /^[0-9a-f]{32}$/i.test(h.value)) conv = h.value.toLowerCase(); });
    return { status: status, tenant: status.tenant, token: token, messageId: mid, conv: conv };
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
    waiting: ['warn', function (t, d) {
      var who = d && d.reason && /^agent (\S+) (has no Halo token|must re-enroll)/.exec(d.reason);
      return who ? 'Waiting for ' + who[1] + ' to sign in to Halo' : 'Waiting for an operator';
    }],
    skipped: ['warn', function () { return 'Not logged in Halo'; }],
    failed: ['error', function () { return 'Logging failed'; }],
  };

  // The gateway's reason codes in words an agent understands.
  var REASONS = [
    [/^auto-reply/, 'It is an automatic reply (out of office or similar), so it was not logged.'],
    [/^bounce/, 'It is a delivery failure report, so it was not logged.'],
    [/^bulk/, 'It is bulk mail (newsletter or similar), so it was not logged.'],
    [/^list/, 'It came through a mailing list, so it does not open tickets.'],
    [/^halo-notification/, 'It is a notification Halo itself sent, so it was not logged again.'],
    [/^loop/, 'This sender opened too many tickets in a short time, so the gateway stopped (loop protection).'],
    [/^too-large/, 'It is too large for the gateway to log.'],
    [/^duplicate/, 'This message was already logged.'],
    [/^unknown-sender \(domain claimed by several/, 'Halo has no contact with this address, and more than one client claims its domain: pick the client below.'],
    [/^unknown-sender/, 'Halo has no contact or client for this sender, so no ticket was opened.'],
    [/^no-thread \(an agent/, 'It is your outgoing mail and continues no ticket, so it was not logged.'],
    [/^no-thread/, 'It continues no ticket, and this mailbox does not open new ones.'],
    [/^agent \S+ has no Halo token/, 'The agent this mailbox logs as has not signed in to Halo yet.'],
    [/^agent \S+ must re-enroll/, 'Halo no longer accepts the token of the agent this mailbox logs as: they must sign in again.'],
    [/^Halo refused/, 'Halo refused to log it: '],
    [/^(timeout|network|server|rate)/i, 'Halo did not answer; the gateway keeps trying.'],
  ];
  function friendlyReason(code, state) {
    for (var i = 0; i < REASONS.length; i++) {
      if (REASONS[i][0].test(code)) {
        var text = REASONS[i][1];
        if (/: $/.test(text)) text += code.replace(/^Halo refused \([^)]*\): /, '');
        return text;
      }
    }
    return state === 'failed' ? 'Logging failed: ' + code : 'Why: ' + code;
  }

  function render(data) {
    var kind = OUTCOME[data.state] || ['info', function () { return 'Status: ' + data.state; }];
    var result = $('result');
    result.className = 'result ' + kind[0];
    setText('outcome', kind[1](data.ticket, data));
    var friendly = data.reason ? friendlyReason(data.reason, data.state) : '';
    var reason = setText('reason', friendly);
    reason.hidden = !friendly;
    var code = setText('reason-code', data.reason ? 'Gateway code: ' + data.reason : '');
    code.hidden = !data.reason;
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
    // the token goes in a header: URLs end up in proxy and access logs
    var url = API + '?tenant=' + encodeURIComponent(stamp.tenant) +
        '&mid=' + encodeURIComponent(mid);
    var next = Math.min(delay * 2, POLL_MAX);
    fetch(url, { credentials: 'omit', cache: 'no-store',
      headers: { Accept: 'application/json', 'X-Halo-Token': stamp.token } })
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
    ctx = null; selected = 0; mail = null; statusPick = {};
    // nothing of the previous message stays on screen
    $('tickets').textContent = '';
    setText('contact', 'Loading\u2026');
    $('dedup').hidden = true;
    $('append').disabled = true;
    actSay('');
    $('app').setAttribute('aria-busy', 'true');
    var item = Office.context.mailbox && Office.context.mailbox.item;
    if (!item) {
      say('Select a message to see what happened to it in Halo.');
      agentLoad();
      return;
    }
    $('refresh').hidden = false;
    // the agent's part follows whatever the stamp says (or its absence)
    function agentFor(stamp) { lastStamp = stamp; mail = readMail(stamp); agentLoad(); }
    if (!headerAccess()) {
      say('This Outlook cannot show the Halo status.');
      note('The pane reads the headers the mail gateway stamped, and this Outlook does not let add-ins read message headers (it needs Mailbox requirement set 1.8: Outlook on the web, the new Outlook, or Outlook on Windows or Mac). Open the message there to see its Halo status.');
      agentFor(null);
      return;
    }
    say('Reading the message\u2026');
    item.getAllInternetHeadersAsync(function (res) {
      if (gen !== generation) return;
      if (!res || res.status !== Office.AsyncResultStatus.Succeeded) {
        say('Outlook could not read this message\u2019s headers.', true);
        agentFor(null);
        return;
      }
      var stamp = findStamp(parseHeaders(res.value));
      if (!stamp) {
        say('This message was not logged by the Halo gateway.');
        note('It carries no X-Halo-Status stamp: it did not pass the gateway, or none of its recipients is routed to Halo. You can log it yourself below.');
        agentFor(null);
        return;
      }
      if (!stamp.token) {
        say('This message has a Halo stamp but no token.', true);
        note('It was stamped before the pane existed, or the token was removed on the way.');
        agentFor(stamp);
        return;
      }
      var mid = item.internetMessageId || stamp.messageId;
      if (!mid) { say('This message has no Message-ID.', true); return; }
      say('Asking the Halo gateway\u2026');
      ask(gen, stamp, mid, POLL_FIRST);
      agentFor(stamp);
    });
  }

  // ---------------------------------------------------------------- agent
  // The agent's part: sign-in through an Office dialog, then the client's
  // tickets and the actions, all through the gateway under the agent's own
  // Halo token (the pane holds only a short-lived gateway session, sent in
  // the Authorization header; never a cookie, never a Halo token).

  var AGENT_API = '../api/agent/';
  var SESSION_KEY = 'halo-milter.session';
  var BODY_MAX = 3900;                    // bytes of a POST (the gateway takes 4096)
  var ctx = null;                         // what the open message is in Halo
  var mail = null;                        // {mid, from, subject, conv, tenant}
  var selected = 0;                       // the ticket chosen for "Add to ticket"
  var statusPick = {};                    // ticket id -> status chosen, not yet set (kept across redraws)
  var lastStamp = null;                   // the open message's stamp, if any

  function loadSession() {
    try {
      var s = JSON.parse(window.localStorage.getItem(SESSION_KEY) || 'null');
      if (s && s.session && s.expires * 1000 > Date.now()) return s;
    } catch (e) { /* storage refused: sign in again */ }
    return null;
  }
  function saveSession(s) {
    try {
      if (s) window.localStorage.setItem(SESSION_KEY, JSON.stringify(s));
      else window.localStorage.removeItem(SESSION_KEY);
    } catch (e) { /* private mode: the session lives until the pane closes */ }
    memSession = s;
  }
  var memSession = null;
  function session() { return loadSession() || (memSession && memSession.expires * 1000 > Date.now() ? memSession : null); }

  function actSay(text, isError) {
    var el = setText('act-result', text);
    el.className = 'act-result' + (isError ? ' error' : '');
  }

  // A call to the gateway's agent API; resolves {status, body}.
  function call(path, body, renewed) {
    var s = session();
    if (!s) return Promise.resolve({ status: 401, body: { error: 'signin', message: 'Sign in to Halo.' } });
    var opts = { method: body ? 'POST' : 'GET', credentials: 'omit', cache: 'no-store',
      headers: { Accept: 'application/json', Authorization: 'Bearer ' + s.session } };
    if (body) { opts.headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(body); }
    // the open message's own stamp says which of the gateway's jobs it is
    // (several may share a Message-ID)
    if (mail && lastStamp && lastStamp.token) opts.headers['X-Halo-Token'] = lastStamp.token;
    var first = !renewed && path !== 'renew' && s.expires * 1000 - Date.now() < 10 * 60 * 1000 ?
      renew() : Promise.resolve();
    return first.then(function () {
      if (!renewed && path !== 'renew') {
        var now = session();
        if (now) opts.headers.Authorization = 'Bearer ' + now.session;
      }
      return fetch(AGENT_API + path, opts);
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (b) {
        return { status: r.status, body: b || {}, retry: r.headers.get('Retry-After') };
      });
    }, function () {
      return { status: 0, body: { error: 'network', message: 'Cannot reach the Halo gateway.' } };
    });
  }

  // A new session id before this one runs out (the old one ends).
  function renew() {
    return call('renew', {}, true).then(function (res) {
      var s = session();
      if (res.status === 200 && s) saveSession({ session: res.body.session, expires: res.body.expires,
        tenant: s.tenant, agent: s.agent });
    });
  }

  // What went wrong, for the agent; a sign-in when the session or token is gone.
  function failed(res, what) {
    var b = res.body || {};
    if (res.status === 401) {
      saveSession(null);
      showSignin(b.error === 'reenroll' ?
        'Halo no longer accepts your token. Sign in again to renew it.' :
        (b.message || 'Your session has ended. Sign in again.'));
      actSay(what + ': sign in again.', true);
      return;
    }
    var msg = b.message || ('the gateway answered ' + res.status);
    if (res.status === 429) msg = 'Too many requests; wait ' + (parseInt(res.retry, 10) || 60) + ' s and try again.';
    else if (b.error === 'halo_down') msg = 'Halo is not answering; try again shortly.';
    actSay(what + ' failed: ' + msg, true);
  }

  function showSignin(why) {
    $('work').hidden = true;
    $('signin-box').hidden = false;
    setText('signin-why', why || 'Sign in to Halo to see the client\u2019s tickets and log this mail yourself.');
  }

  function signIn() {
    var tenant = (mail && mail.tenant) || '';
    var url = new URL('../agent/signin?tenant=' + encodeURIComponent(tenant), window.location.href).href;
    if (!Office.context.ui || typeof Office.context.ui.displayDialogAsync !== 'function') {
      setText('signin-why', 'This Outlook cannot open the sign-in window (it needs the Dialog API, requirement set 1.1).');
      return;
    }
    setText('signin-why', 'Signing in in the Halo window\u2026');
    Office.context.ui.displayDialogAsync(url, { height: 70, width: 40, promptBeforeOpen: false }, function (res) {
      if (!res || res.status !== Office.AsyncResultStatus.Succeeded) {
        setText('signin-why', 'Outlook did not open the sign-in window' +
          (res && res.error && res.error.message ? ' (' + res.error.message + ')' : '') + '. Allow pop-ups and try again.');
        return;
      }
      var dialog = res.value;
      dialog.addEventHandler(Office.EventType.DialogMessageReceived, function (arg) {
        var got = null;
        try { got = JSON.parse(arg.message); } catch (e) { got = null; }
        dialog.close();
        if (got && got.session) {
          saveSession({ session: got.session, expires: got.expires, tenant: got.tenant, agent: got.agent });
          agentLoad();
        } else {
          showSignin((got && got.message) || 'The sign-in did not complete.');
        }
      });
      if (Office.EventType.DialogEventReceived)
        dialog.addEventHandler(Office.EventType.DialogEventReceived, function () {
          if (!session()) setText('signin-why', 'The sign-in window was closed. Sign in to act on this mail.');
        });
    });
  }

  function signOut() {
    call('signout', {}).then(function () {
      saveSession(null);
      showSignin('Signed out.');
    });
  }

  // The item's facts the agent API needs.
  function readMail(stamp) {
    var item = Office.context.mailbox && Office.context.mailbox.item;
    if (!item) return null;
    var from = item.from && item.from.emailAddress;
    return {
      mid: item.internetMessageId || (stamp && stamp.messageId) || '',
      from: from || '',
      subject: item.subject || '',
      conv: (stamp && stamp.conv) || '',
      tenant: (stamp && stamp.tenant) || (session() && session().tenant) || '',
    };
  }

  // The mail's text (Mailbox 1.1 body.getAsync), cut to fit a request.
  function mailText() {
    var item = Office.context.mailbox && Office.context.mailbox.item;
    return new Promise(function (resolve) {
      if (!item || !item.body || typeof item.body.getAsync !== 'function') return resolve('');
      item.body.getAsync('text', function (r) {
        resolve(r && r.status === Office.AsyncResultStatus.Succeeded ? String(r.value || '') : '');
      });
    });
  }
  function fit(body) {
    var enc = new TextEncoder();
    while (enc.encode(JSON.stringify(body)).length > BODY_MAX && body.text.length > 0)
      body.text = body.text.slice(0, Math.floor(body.text.length * 0.8));
    return body;
  }

  function option(sel, value, label, chosen) {
    var o = document.createElement('option');
    o.value = String(value);
    o.textContent = label;
    if (chosen) o.selected = true;
    sel.appendChild(o);
  }

  function renderContact() {
    var p = $('contact');
    p.textContent = '';
    var snd = ctx.sender || {};
    if (snd.contact) {
      line(p, snd.contact.name + ' (contact #' + snd.contact.id + ')');
      line(p, (snd.contact.email || snd.email) + (snd.client ? ' \u00b7 ' + snd.client.name + ' #' + snd.client.id : ''), 'sub');
    } else if (snd.client) {
      line(p, snd.client.name + ' (client #' + snd.client.id + ')');
      line(p, (snd.email || '') + ' \u00b7 no contact with this address', 'sub');
    } else {
      line(p, 'No contact or client found for ' + (snd.email || 'this sender'));
      line(p, snd.why || 'Pick one below to see their tickets.', 'sub');
    }
  }

  function renderTickets() {
    var ul = $('tickets');
    ul.textContent = '';
    var list = ctx.tickets || [];
    if (!list.length) {
      var li = document.createElement('li');
      li.textContent = (ctx.sender && (ctx.sender.client || ctx.sender.contact)) ? 'This client has no open tickets.' : 'No client chosen.';
      ul.appendChild(li);
    }
    if (!list.some(function (t) { return t.id === selected; })) selected = 0;
    if (!selected && ctx.match && list.some(function (t) { return t.id === ctx.match; })) selected = ctx.match;
    list.forEach(function (t) {
      var li = document.createElement('li');
      if (t.match) li.className = 'match';
      var id = 'tk-' + t.id;
      var radio = document.createElement('input');
      radio.type = 'radio'; radio.name = 'ticket'; radio.id = id; radio.value = String(t.id);
      radio.checked = t.id === selected;
      radio.addEventListener('change', function () { selected = t.id; primary(); });
      var label = document.createElement('label');
      label.htmlFor = id;
      label.textContent = ' #' + t.id + ' ' + t.summary;
      li.appendChild(radio); li.appendChild(label);
      if (t.match) { var b = line(li, 'thread match', 'badge'); b.setAttribute('aria-label', '(this mail\u2019s thread)'); }
      line(li, t.status + ' \u00b7 ' + (t.agent === 'you' ? 'assigned to you' : t.agent), 'sub');
      var row = document.createElement('div');
      row.className = 'row';
      var assign = document.createElement('button');
      assign.type = 'button'; assign.textContent = 'Assign to me';
      assign.setAttribute('aria-label', 'Assign ticket ' + t.id + ' to me');
      assign.disabled = t.agent === 'you';
      assign.addEventListener('click', function () { act(assign, 'assign', { ticket_id: t.id }, 'Assigning #' + t.id, 'Ticket #' + t.id + ' is assigned to you.'); });
      row.appendChild(assign);
      var sel = document.createElement('select');
      sel.setAttribute('aria-label', 'New status for ticket ' + t.id);
      // a redraw (another action's refresh) keeps what the agent picked
      var want = statusPick[t.id] !== undefined ? statusPick[t.id] : t.status_id;
      (ctx.statuses || []).forEach(function (st) { option(sel, st.id, st.name, st.id === want); });
      sel.addEventListener('change', function () { statusPick[t.id] = parseInt(sel.value, 10); });
      row.appendChild(sel);
      var set = document.createElement('button');
      set.type = 'button'; set.textContent = 'Set status';
      set.setAttribute('aria-label', 'Set the status of ticket ' + t.id);
      set.addEventListener('click', function () {
        var name = sel.options[sel.selectedIndex] ? sel.options[sel.selectedIndex].textContent : '';
        act(set, 'status', { ticket_id: t.id, status_id: parseInt(sel.value, 10) }, 'Setting #' + t.id + ' to ' + name,
          'Ticket #' + t.id + ' is now ' + name + '.', function () { delete statusPick[t.id]; });
      });
      row.appendChild(set);
      if (/^https?:\/\//i.test(t.url)) {
        var a = document.createElement('a');
        a.href = t.url; a.target = '_blank'; a.rel = 'noopener noreferrer';
        a.textContent = 'Open in Halo';
        a.setAttribute('aria-label', 'Open ticket ' + t.id + ' in Halo (new window)');
        row.appendChild(a);
      }
      li.appendChild(row);
      ul.appendChild(li);
    });
    primary();
  }

  // The likely action is the primary button: add to the thread's ticket
  // when there is one, else create.
  function primary() {
    var append = $('append'), create = $('create');
    append.disabled = !selected;
    append.textContent = selected ? (movedFrom() ? 'Move to ticket #' : 'Add to ticket #') + selected : 'Add to ticket';
    var likely = selected && (selected === ctx.match || !ctx.match);
    append.className = likely ? 'primary' : '';
    create.className = likely ? '' : 'primary';
    var dedup = $('dedup');
    if (ctx.match) {
      dedup.textContent = 'This mail\u2019s thread is already on ticket #' + ctx.match +
        ': add it there rather than creating a duplicate.';
      dedup.hidden = false;
    } else dedup.hidden = true;
  }

  // The ticket this mail is on already when the agent picks another one:
  // then "Add" re-routes it (the action on the old ticket stays; a private
  // note there says where the mail went).
  function movedFrom() {
    var j = ctx && ctx.job;
    if (!j || (j.state !== 'created' && j.state !== 'appended') || !j.ticket || !selected) return 0;
    return j.ticket.id !== selected ? j.ticket.id : 0;
  }

  // After the pane logged the mail: the status part asks again.
  function restatus() {
    if (lastStamp && lastStamp.token && mail && mail.mid) ask(generation, lastStamp, mail.mid, POLL_FIRST);
  }

  function renderWork() {
    $('signin-box').hidden = true;
    $('work').hidden = false;
    var s = session();
    setText('who', 'Signed in as ' + (s ? s.agent : '?'));
    renderContact();
    var type = $('type');
    type.textContent = '';
    (ctx.types || []).forEach(function (t) { option(type, t.id, t.name, t.id === ctx.defaults.tickettype_id); });
    var outcome = $('action-outcome');
    outcome.textContent = '';
    (ctx.outcomes || []).forEach(function (o) { option(outcome, o.name, o.name, o.name === ctx.defaults.outcome); });
    $('internal').checked = !!ctx.defaults.internal;
    renderTickets();
  }

  function agentLoad() {
    var s = session();
    if (!mail || !mail.mid) { $('signin-box').hidden = true; $('work').hidden = true; return; }
    if (!s) { showSignin(); return; }
    if (mail.tenant && s.tenant !== mail.tenant) {
      showSignin('You are signed in for ' + s.tenant + '; this mail belongs to ' + mail.tenant + '.');
      return;
    }
    var gen = generation;
    actSay('Loading the client\u2019s tickets\u2026');
    var q = 'context?mid=' + encodeURIComponent(mail.mid) + '&from=' + encodeURIComponent(mail.from) +
      (mail.conv ? '&conv=' + encodeURIComponent(mail.conv) : '');
    call(q).then(function (res) {
      if (gen !== generation) return;
      if (res.status !== 200) { failed(res, 'Loading'); return; }
      ctx = res.body;
      renderWork();
      actSay('');
    });
  }

  // One action: progress on the button, the result in the live region.
  function act(button, path, body, doing, done, after) {
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    actSay(doing + '\u2026');
    return call(path, body).then(function (res) {
      button.disabled = false;
      button.removeAttribute('aria-busy');
      var b = res.body || {};
      // the gateway's rule for who may join a ticket said no: the agent
      // may still add it, knowingly (the gateway logs that they did)
      if (res.status === 409 && body && !body.confirm_outsider &&
          (b.error === 'not-a-participant' || b.error === 'unauthenticated-sender')) {
        if (window.confirm(b.message + ' Add it anyway?'))
          return act(button, path, Object.assign({}, body, { confirm_outsider: true }), doing, done, after);
        actSay(doing + ': not added. ' + b.message, true);
        return null;
      }
      if (res.status !== 200) { failed(res, doing); return null; }
      actSay(typeof done === 'function' ? done(res.body) : done);
      if (after) after(res.body);
      refreshTickets();
      return res.body;
    });
  }

  function refreshTickets() {
    var cid = ctx && ctx.sender && ctx.sender.client && ctx.sender.client.id;
    if (!cid) return;
    var mine = ctx;                       // the item may change meanwhile
    call('tickets?client_id=' + cid + '&match=' + (ctx.match || 0)).then(function (res) {
      if (ctx !== mine) return;
      if (res.status === 200) { ctx.tickets = res.body.tickets; renderTickets(); }
      else failed(res, 'Loading the tickets');
    });
  }

  function doAppend() {
    if (!selected) return;
    var button = $('append');
    mailText().then(function (text) {
      var t = parseFloat($('time').value) || 0;
      var body = fit({ ticket_id: selected, mid: mail.mid, from: mail.from, subject: mail.subject,
        text: text, internal: $('internal').checked, timetaken: t, outcome: $('action-outcome').value });
      var target = selected;
      act(button, 'append', body, (movedFrom() ? 'Moving this mail to #' : 'Adding this mail to #') + target, function (b) {
        if (b.moved_from)
          return 'Moved to ticket #' + b.ticket_id + '. The action already on #' + b.moved_from +
            ' stays (Halo cannot move it); ' + (b.note_posted ? 'a private note there says where the mail went.' :
            'the private note there could not be posted.');
        return 'Added to ticket #' + b.ticket_id + ($('internal').checked ? ' as an internal note' : '') +
          (t > 0 ? ', ' + t + ' h logged' : '') + '.';
      }, function (b) { ctx.job = null; ctx.match = b.ticket_id; restatus(); });
    });
  }

  function doCreate() {
    var button = $('create');
    if (ctx.match && !window.confirm('Ticket #' + ctx.match + ' already holds this thread. Create a new ticket anyway?')) return;
    mailText().then(function (text) {
      var snd = ctx.sender || {};
      var body = fit({ mid: mail.mid, from: mail.from, summary: mail.subject || '(no subject)', text: text,
        tickettype_id: parseInt($('type').value, 10) || 0,
        client_id: snd.client ? snd.client.id : 0,
        user_id: snd.contact ? snd.contact.id : 0, site_id: snd.contact ? snd.contact.site_id : 0 });
      act(button, 'create', body, 'Creating a ticket', function (b) {
        return 'Created ticket #' + b.ticket_id + '.';
      }, function (b) { ctx.job = null; ctx.match = b.ticket_id; selected = b.ticket_id; restatus(); });
    });
  }

  function saveDefaults() {
    act($('save-defaults'), 'defaults', { tickettype_id: parseInt($('type').value, 10) || 0,
      outcome: $('action-outcome').value, internal: $('internal').checked },
      'Saving your defaults', 'Saved: new mail starts with these settings.');
  }

  // The pickers: a contact (and so its client) or a client.
  function pick(kind) {
    var q = $(kind + '-q').value.trim();
    var ul = $(kind + '-results');
    ul.textContent = '';
    if (q.length < 2) { actSay('Type at least two characters.', true); return; }
    call((kind === 'user' ? 'users' : 'clients') + '?search=' + encodeURIComponent(q)).then(function (res) {
      if (res.status !== 200) { failed(res, 'Searching'); return; }
      if (!res.body.length) { var none = document.createElement('li'); none.textContent = 'Nothing found.'; ul.appendChild(none); }
      res.body.forEach(function (r) {
        var li = document.createElement('li');
        var b = document.createElement('button');
        b.type = 'button';
        b.textContent = kind === 'user' ? r.name + ' \u00b7 ' + r.email + ' \u00b7 ' + r.client_name : r.name;
        b.addEventListener('click', function () {
          if (kind === 'user') {
            ctx.sender.contact = r;
            ctx.sender.client = { id: r.client_id, name: r.client_name };
          } else {
            ctx.sender.contact = null;
            ctx.sender.client = { id: r.id, name: r.name };
          }
          ul.textContent = '';
          renderContact();
          actSay('Showing the tickets of ' + ctx.sender.client.name + '.');
          refreshTickets();
        });
        li.appendChild(b);
        ul.appendChild(li);
      });
    });
  }

  function agentWire() {
    $('signin').addEventListener('click', signIn);
    $('signout').addEventListener('click', signOut);
    $('append').addEventListener('click', doAppend);
    $('create').addEventListener('click', doCreate);
    $('save-defaults').addEventListener('click', saveDefaults);
    $('refresh').addEventListener('click', function () { load(); });
    $('user-form').addEventListener('submit', function (e) { e.preventDefault(); pick('user'); });
    $('client-form').addEventListener('submit', function (e) { e.preventDefault(); pick('client'); });
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
    agentWire();
    var mailbox = Office.context.mailbox;
    // pinned panes stay open across messages: follow the selection
    if (mailbox && typeof mailbox.addHandlerAsync === 'function' && Office.EventType &&
        Office.EventType.ItemChanged)
      mailbox.addHandlerAsync(Office.EventType.ItemChanged, load);
    load();
  });
})();
