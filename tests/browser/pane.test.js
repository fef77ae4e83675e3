// pane.test.js - the Outlook pane in headless Chromium with an Office.js
// stand-in, the status API over HTTP, and the add-in manifests. Run by
// pane.sh, which starts the simulator and the daemon and feeds the mail.
'use strict';
const fs = require('fs');
const path = require('path');
const http = require('http');
const crypto = require('crypto');
const { execSync } = require('child_process');
const { launch, suite } = require('./lib');

const WEB = process.env.WEB;
const t = suite('pane');
const STUB = fs.readFileSync(path.join(__dirname, 'office-stub.js'), 'utf8');
const OFFICE_JS = 'https://appsforoffice.microsoft.com/lib/1/hosted/office.js';

// name -> {messageId, status, token (the header value)}
const stamps = {};
for (const l of fs.readFileSync(process.env.STAMPS, 'utf8').split('\n')) {
  const [name, messageId, status, token] = l.split('\t');
  if (name) stamps[name] = { messageId, status, token };
}
const key = fs.readFileSync(process.env.STATUS_KEY);
// X-Halo-Token (status.h): "JOB.MAC", bound to the job, its tenant, its
// Message-ID and the mailboxes it was delivered to
const tokenOf = (tenant, job, mid, mailboxes) => job + '.' + crypto.createHmac('sha256', key)
  .update('job\n' + tenant + '\n' + job + '\n' + mid + '\n' + (mailboxes || '')).digest('base64url');
const jobOf = (s) => Number(s.status.match(/job=(\d+)/)[1]);
const tok = (s) => s.token.split(';')[0].trim();

// The raw header block Outlook would hand the pane: folded lines, mixed
// case, and a stale stamp before ours (the last one wins).
function headersOf(s, opts = {}) {
  const token = opts.token || tok(s);
  return [
    'Received: from mx.example (mx.example [192.0.2.1])\r\n\tby gw.example; Tue, 24 Nov 2026 10:00:01 +0000',
    'From: Ann Acme <ann@acme.example>',
    'Subject: a message',
    'Message-ID: ' + s.messageId,
    'x-halo-status: skipped; reason=stale; tenant=elsewhere; job=1',
    'X-Halo-Conversation-Id: 00112233445566778899aabbccddeeff',
    'X-Halo-Status: ' + s.status,
    'X-HALO-TOKEN: ' + token + ';\r\n tenant=' + (opts.tenant || s.status.match(/tenant=([^;]+)/)[1]),
    'Content-Type: text/plain', '', '',
  ].join('\r\n');
}
const msg = (name, opts) => ({ messageId: stamps[name].messageId, headers: headersOf(stamps[name], opts) });

// HTTP with full control over headers and the source address.
function req(method, urlPath, headers = {}, localAddress, body) {
  return new Promise((resolve, reject) => {
    const r = http.request(WEB + urlPath, { method, headers, localAddress }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    r.on('error', reject);
    r.end(body);
  });
}
// the status API: the token in the X-Halo-Token request header
const q = (tenant, mid) => '/api/status?tenant=' + encodeURIComponent(tenant) +
  '&mid=' + encodeURIComponent(mid);
const st = (tenant, mid, token, headers = {}, localAddress) =>
  req('GET', q(tenant, mid), Object.assign({ 'X-Halo-Token': token }, headers), localAddress);

async function openPane(browser, stub, name, scheme) {
  const ctx = await browser.newContext({ viewport: { width: 360, height: 520 }, colorScheme: scheme || 'light' });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  // the context's: the sign-in dialog (a popup) gets the stub too
  await ctx.route(OFFICE_JS, (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: STUB }));
  await ctx.addInitScript((cfg) => { window.__haloStub = cfg; }, stub);
  await page.goto(WEB + '/pane/taskpane.html');
  page.errors = errors;
  page.shot = (file) => page.screenshot({ path: path.join(t.artifacts, file), fullPage: true });
  return { ctx, page };
}
const text = (page, sel) => page.locator(sel).textContent();
async function waitText(page, sel, re, ms = 10000) {
  try {
    await page.waitForFunction(([s, src]) => {
      const el = document.querySelector(s);
      return el && !el.hidden && new RegExp(src).test(el.textContent);
    }, [sel, re.source], { timeout: ms });
    return true;
  } catch (e) { return false; }
}

async function apiTests() {
  const s = stamps.created;
  let r = await st('sim', s.messageId, tok(s));
  t.check('api: a valid token answers 200', r.status === 200, r.status);
  const body = JSON.parse(r.body);
  t.check('api: created, with ticket and contact', body.state === 'created' && body.ticket &&
    body.ticket.id > 0 && body.sender.match === 'contact', r.body.toString());
  t.check('api: the ticket links to Halo\'s agent UI', body.ticket && /\/ticket\?id=\d+$/.test(body.ticket.url));
  t.check('api: no-store', /no-store/.test(r.headers['cache-control'] || ''));
  t.check('api: Vary: Origin', /Origin/.test(r.headers.vary || ''));

  const bad = tok(s).slice(0, -2) + (tok(s).endsWith('AA') ? 'BB' : 'AA');
  r = await st('sim', s.messageId, bad);
  const forbidden = r.body.toString();
  t.check('api: a bad token is refused (403)', r.status === 403, r.status);
  r = await st('sim', s.messageId, '');
  t.check('api: a missing token is refused (403)', r.status === 403 && r.body.toString() === forbidden);
  r = await req('GET', '/api/status');
  t.check('api: no parameters at all: 403', r.status === 403);
  r = await req('GET', q('sim', s.messageId) + '&token=' + encodeURIComponent(tok(s)));
  t.check('api: a token in the URL is not accepted (header only)', r.status === 403, r.status);
  r = await st('nosuch', s.messageId, tokenOf('nosuch', jobOf(s), s.messageId, 'support@msp.example'));
  t.check('api: an unknown tenant (valid HMAC) gets the same 403', r.status === 403 &&
    r.body.toString() === forbidden);
  r = await st('broken', s.messageId, tokenOf('sim', jobOf(s), s.messageId, 'support@msp.example'));
  t.check('api: another tenant\'s token is refused', r.status === 403);
  // the token of one job does not open another, even with its Message-ID
  // (issue 11): the created job's token asked about the appended job's
  const other = stamps.appended;
  r = await st('sim', other.messageId, tok(s));
  t.check('api: a job\'s token does not open another job', r.status === 403, r.status);
  r = await st('sim', other.messageId, jobOf(other) + '.' + tok(s).split('.')[1]);
  t.check('api: nor when it is made to name the other job', r.status === 403, r.status);
  r = await st('sim', s.messageId, tokenOf('sim', jobOf(s), s.messageId, 'support@msp.example'));
  t.check('api: the token is the job\'s (test vector)', r.status === 200, r.status);
  const unknown = '<never-seen@acme.example>';
  r = await st('sim', unknown, tokenOf('sim', 999999, unknown, ''));
  t.check('api: a token naming a job this store does not have: 404 unknown', r.status === 404 &&
    JSON.parse(r.body).state === 'unknown', r.status + ' ' + r.body);
  r = await req('GET', '/api/status?tenant=sim&mid=' + encodeURIComponent(s.messageId) + '%00x', { 'X-Halo-Token': tok(s) });
  t.check('api: an embedded NUL is refused', r.status === 403);

  // CORS: only the pane's own origin
  r = await st('sim', s.messageId, tok(s), { Origin: WEB });
  t.check('cors: our origin is allowed', r.headers['access-control-allow-origin'] === WEB);
  r = await st('sim', s.messageId, tok(s), { Origin: 'https://evil.example' });
  t.check('cors: another origin gets no Allow-Origin', r.status === 200 &&
    r.headers['access-control-allow-origin'] === undefined && /Origin/.test(r.headers.vary || ''));
  r = await req('OPTIONS', '/api/status', { Origin: WEB, 'Access-Control-Request-Method': 'GET' });
  t.check('cors: preflight from our origin: 204 with Allow-Origin', r.status === 204 &&
    r.headers['access-control-allow-origin'] === WEB && /GET/.test(r.headers['access-control-allow-methods'] || '') &&
    /X-Halo-Token/i.test(r.headers['access-control-allow-headers'] || ''));
  r = await req('OPTIONS', '/api/status', { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'GET' });
  t.check('cors: preflight from another origin refused', r.status === 403 &&
    r.headers['access-control-allow-origin'] === undefined);
  r = await req('POST', '/api/status');
  t.check('api: POST is not allowed (405)', r.status === 405);

  // the pane's own CSP
  r = await req('GET', '/pane/taskpane.html');
  const csp = r.headers['content-security-policy'] || '';
  t.check('pane: served with its own CSP', r.status === 200 &&
    /script-src 'self' https:\/\/appsforoffice\.microsoft\.com/.test(csp) &&
    /connect-src 'self'/.test(csp) && /frame-ancestors [^;]*https:\/\/outlook\.office\.com/.test(csp) &&
    r.headers['x-frame-options'] === undefined, csp);
  r = await req('GET', '/pane/../halo-milter.conf');
  const r2 = await req('GET', '/pane/icons/..%2f..%2fREADME.md');
  t.check('pane: no path traversal', r.status === 404 && r2.status === 404);
}

async function manifestTests() {
  const cliXml = fs.readFileSync(process.env.MANIFEST_XML, 'utf8');
  const cliJson = fs.readFileSync(process.env.MANIFEST_JSON, 'utf8');
  t.check('manifest: XML is well-formed (xmllint)', process.env.XML_OK === 'yes');
  let r = await req('GET', '/manifest.xml');
  t.check('manifest: /manifest.xml is what the CLI writes', r.status === 200 &&
    r.body.toString() === cliXml && /xml/.test(r.headers['content-type']));
  t.check('manifest: XML has the button, pinning and ReadItem',
    /MessageReadCommandSurface/.test(cliXml) && /<SupportsPinning>true<\/SupportsPinning>/.test(cliXml) &&
    /<Permissions>ReadItem<\/Permissions>/.test(cliXml) && cliXml.includes(WEB + '/pane/taskpane.html'));
  r = await req('GET', '/manifest.json');
  t.check('manifest: /manifest.json is what the CLI writes', r.status === 200 && r.body.toString() === cliJson);

  const doc = JSON.parse(cliJson);
  const m = /\/teams\/(v[0-9.]+)\/MicrosoftTeams\.schema\.json$/.exec(doc.$schema || '');
  t.check('manifest: JSON names a Teams schema version', m !== null, doc.$schema);
  if (m) {
    const dir = path.join(__dirname, 'node_modules/@microsoft/app-manifest/build/json-schemas/teams', m[1]);
    const schema = JSON.parse(fs.readFileSync(path.join(dir, 'MicrosoftTeams.schema.json'), 'utf8'));
    const Ajv = /draft-04/.test(schema.$schema) ? require('ajv-draft-04') : require('ajv');
    const ajv = new Ajv({ allErrors: true, strict: false });
    require('ajv-formats')(ajv);
    const validate = ajv.compile(schema);
    const ok = validate(doc);
    t.check('manifest: JSON validates offline against the bundled ' + m[1] + ' schema', ok,
      ok ? undefined : JSON.stringify(validate.errors.slice(0, 3)));
  }
  const ext = (doc.extensions || [])[0] || {};
  const act = ((ext.runtimes || [])[0] || {}).actions || [];
  t.check('manifest: JSON pane is pinnable and opens from mailRead',
    act.some((a) => a.pinnable === true && a.type === 'openPage') &&
    JSON.stringify(ext.ribbons || []).includes('mailRead'));

  for (const n of [16, 32, 64, 80, 128]) {
    r = await req('GET', '/pane/icons/icon-' + n + '.png');
    const w = r.body.length > 24 ? r.body.readUInt32BE(16) : 0;
    t.check('icons: ' + n + ' px served as image/png', r.status === 200 &&
      r.headers['content-type'] === 'image/png' && w === n, r.status + ' ' + r.headers['content-type'] + ' ' + w);
  }
  for (const url of (cliXml.match(/https?:\/\/[^"<]+\.png/g) || [])) {
    r = await req('GET', url.slice(WEB.length));
    if (r.status !== 200) { t.check('manifest: icon ' + url + ' is served', false); return; }
  }
  t.check('manifest: every icon the XML names is served', true);
}

async function paneTests(browser) {
  // created
  let { ctx, page } = await openPane(browser, { message: msg('created') }, 'created');
  t.check('created: shown', await waitText(page, '#outcome', /^Created ticket #\d+/));
  t.check('created: contact and client', /Ann Acme \(contact #1000\)/.test(await text(page, '#sender')) &&
    /Acme Corp/.test(await text(page, '#sender')), await text(page, '#sender'));
  t.check('created: ticket summary', /Laptop will not boot/.test(await text(page, '#ticket')));
  t.check('created: the ticket\'s state when logged', /Status when logged: new/.test(await text(page, '#ticket')));
  const open = page.locator('#open');
  t.check('created: "Open in Halo" opens the ticket in a new tab', await open.isVisible() &&
    (await open.getAttribute('target')) === '_blank' && /noopener/.test(await open.getAttribute('rel')) &&
    /\/ticket\?id=\d+$/.test(await open.getAttribute('href')));
  t.check('created: status line is aria-live', (await page.locator('#status').getAttribute('aria-live')) === 'polite');
  await page.shot('created.png');
  await page.keyboard.press('Tab');
  t.check('keyboard: Tab reaches "Open in Halo"', await page.evaluate(() => document.activeElement &&
    document.activeElement.id === 'open'));

  // ItemChanged: the pinned pane follows the selection
  const n = await page.evaluate((m) => window.__haloSwitch(m), msg('appended'));
  t.check('ItemChanged: handler registered', n === 1);
  t.check('ItemChanged → appended: shown', await waitText(page, '#outcome', /^Added to ticket #\d+/));
  t.check('appended: contact Jo Smith', /Jo Smith/.test(await text(page, '#sender')));
  t.check('appended: summary of the ticket it joined', /Laptop will not boot/.test(await text(page, '#ticket')));
  t.check('appended: the ticket was open when logged', /Status when logged: open/.test(await text(page, '#ticket')));
  await page.shot('appended.png');
  t.check('no script errors (created, appended)', page.errors.length === 0, page.errors.join(' | '));
  await ctx.close();

  // skipped (auto-reply) and an unknown sender
  ({ ctx, page } = await openPane(browser, { message: msg('skipped') }));
  t.check('skipped: shown with its reason in words', await waitText(page, '#outcome', /Not logged/) &&
    /automatic reply/.test(await text(page, '#reason')) && !/auto-reply/.test(await text(page, '#reason')) &&
    /auto-reply/.test(await text(page, '#reason-code')), await text(page, '#reason'));
  await page.shot('skipped.png');
  await page.evaluate((m) => window.__haloSwitch(m), msg('stranger'));
  t.check('unknown sender: skipped, said in words', await waitText(page, '#reason', /no contact or client for this sender/) &&
    /unknown-sender/.test(await text(page, '#reason-code')));
  t.check('unknown sender: says why', /Unknown sender: who@nowhere\.example/.test(await text(page, '#sender')) &&
    /no client claims/.test(await text(page, '#sender')), await text(page, '#sender'));
  await page.shot('unknown-sender.png');
  await ctx.close();

  // failed
  ({ ctx, page } = await openPane(browser, { message: msg('failed') }));
  t.check('failed: shown with its reason', await waitText(page, '#outcome', /Logging failed/) &&
    /Ticket Type 99/.test(await text(page, '#reason')), await text(page, '#reason'));
  await page.shot('failed.png');
  await ctx.close();

  // unknown message: a valid token, no job
  const ghost = { messageId: '<ghost@acme.example>', status: 'queued; tenant=sim; job=999', token: tokenOf('sim', 999, '<ghost@acme.example>', '') + '; tenant=sim' };
  ({ ctx, page } = await openPane(browser, { message: { messageId: ghost.messageId, headers: headersOf(ghost) } }));
  t.check('unknown message: says there is no record', await waitText(page, '#status', /no record/) &&
    await page.locator('#result').isHidden());
  await page.shot('unknown.png');
  await ctx.close();

  // forged: a stamp with a bad token
  const forged = tok(stamps.created).replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
  ({ ctx, page } = await openPane(browser, { message: msg('created', { token: forged }) }));
  t.check('forged token: refused, nothing shown', await waitText(page, '#status', /not valid/) &&
    await page.locator('#result').isHidden());
  await page.shot('forged.png');
  await ctx.close();

  // a client without header access (mobile, Mailbox < 1.8)
  ({ ctx, page } = await openPane(browser, { noHeaders: true, message: msg('created') }));
  t.check('no header access: an honest message', await waitText(page, '#status', /cannot show/) &&
    /Mailbox requirement set 1\.8/.test(await text(page, '#note')));
  await page.shot('no-headers.png');
  await ctx.close();

  // dark mode (prefers-color-scheme)
  ({ ctx, page } = await openPane(browser, { message: msg('created') }, 'dark-page', 'dark'));
  await waitText(page, '#outcome', /Created/);
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  t.check('dark mode: dark background', bg === 'rgb(31, 31, 31)', bg);
  await page.shot('dark.png');
  await ctx.close();
  // Office's own theme wins where the host gives one
  ({ ctx, page } = await openPane(browser, { message: msg('created'), officeTheme: { bodyBackgroundColor: '#1f1f1f' } }));
  await waitText(page, '#outcome', /Created/);
  t.check('Office theme: dark when Outlook is dark', (await page.evaluate(() =>
    document.documentElement.getAttribute('data-theme'))) === 'dark');
  await ctx.close();

  // queued -> settled: waits for bob's token, then refreshes by itself
  ({ ctx, page } = await openPane(browser, { message: msg('queued') }));
  t.check('queued: shown as not settled', await waitText(page, '#outcome', /Waiting|Queued/) &&
    /shortly/.test(await text(page, '#status')));
  await page.shot('queued.png');
  execSync(process.env.IMPORT_BOB, { stdio: 'inherit' });
  t.check('queued → created without a reload', await waitText(page, '#outcome', /^Created ticket #\d+/, 30000));
  await page.shot('queued-settled.png');
  t.check('no script errors', page.errors.length === 0, page.errors.join(' | '));
  await ctx.close();
}


// ---------------------------------------------------------------- agent
const SIM = process.env.SIM;
const simState = async () => (await fetch(SIM + '/_sim/state')).json();
const simFaults = (obj) => fetch(SIM + '/_sim/faults', { method: 'POST', body: JSON.stringify(obj) });
const ctl = (args) => execSync(process.env.CTL + ' ' + args, { encoding: 'utf8' });
const api = (method, p, session, body, headers = {}) => req(method, '/api/agent/' + p,
  Object.assign(session ? { Authorization: 'Bearer ' + session } : {},
    body !== undefined ? { 'Content-Type': 'application/json', Origin: WEB } : {}, headers),
  undefined, body !== undefined ? JSON.stringify(body) : undefined);
const json = (r) => { try { return JSON.parse(r.body); } catch (e) { return {}; } };
const sessions = [];      // every session id seen: none may reach the log

// The Halo sign-in in the dialog the pane opens: the simulator's form.
async function signInDialog(ctx, page, email, password) {
  const [popup] = await Promise.all([ctx.waitForEvent('page'), page.click('#signin')]);
  await popup.waitForSelector('input[name=username]');
  await popup.fill('input[name=username]', email);
  await popup.fill('input[name=password]', password);
  await popup.click('button[value=login]');
  return popup;
}
const visible = async (page, sel, ms = 10000) => {
  try { await page.waitForSelector(sel, { state: 'visible', timeout: ms }); return true; } catch (e) { return false; }
};
const session = (page) => page.evaluate(() => JSON.parse(localStorage.getItem('halo-milter.session') || 'null'));

async function agentApiTests() {
  let r = await api('GET', 'session');
  t.check('agent api: no session: 401 signin', r.status === 401 && json(r).error === 'signin', r.status);
  r = await api('GET', 'session', 'A'.repeat(43));
  t.check('agent api: an unknown session: 401', r.status === 401);
  r = await req('GET', '/api/agent/session', { Cookie: 'halo_pane=whatever' });
  t.check('agent api: a cookie is no session', r.status === 401);
  r = await api('POST', 'append', 'A'.repeat(43), { ticket_id: 1 }, { Origin: 'https://evil.example' });
  t.check('agent api: a write from another origin: 403', r.status === 403 && json(r).error === 'origin', r.status);
  r = await req('POST', '/api/agent/append', { Origin: WEB, 'Content-Type': 'text/plain' }, undefined, '{}');
  t.check('agent api: a write without Origin-checked JSON is refused', r.status === 415, r.status);
  r = await req('OPTIONS', '/api/agent/append', { Origin: WEB, 'Access-Control-Request-Method': 'POST',
    'Access-Control-Request-Headers': 'authorization,content-type' });
  t.check('agent api: preflight from our origin allows Authorization', r.status === 204 &&
    r.headers['access-control-allow-origin'] === WEB && /Authorization/.test(r.headers['access-control-allow-headers'] || ''));
  r = await req('OPTIONS', '/api/agent/append', { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' });
  t.check('agent api: preflight from another origin refused', r.status === 403 && !r.headers['access-control-allow-origin']);
  r = await api('GET', 'nosuch', 'A'.repeat(43));
  t.check('agent api: an unknown call: 404', r.status === 404);
}

// Self-enrolment where the tenant allows it (bob in "selfserve"), and the
// dialog page itself: its session is in a meta tag, never in the URL.
let bobEarlier = 0; // bob's calls to the agent API before the rate-limit test
async function selfEnrollTests(browser) {
  const ctx = await browser.newContext();
  await ctx.route(OFFICE_JS, (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: STUB }));
  const page = await ctx.newPage();
  await page.goto(WEB + '/agent/signin?tenant=selfserve');
  await page.fill('input[name=username]', 'bob@msp.example');
  await page.fill('input[name=password]', 'bob-pass-2');
  await page.click('button[value=login]');
  await page.waitForSelector('h1');
  const meta = JSON.parse(await page.getAttribute('meta[name="halo-result"]', 'content') || '{}');
  t.check('self-enrol: bob is signed in and enrolled in "selfserve"', meta.session && meta.enrolled === true &&
    meta.agent === 'bob@msp.example' && meta.tenant === 'selfserve', JSON.stringify(Object.keys(meta)));
  t.check('self-enrol: the session is not in the URL', !page.url().includes(meta.session || '-'));
  t.check('self-enrol: the dialog page sets no session cookie', !(await ctx.cookies()).some((c) => c.value === meta.session));
  sessions.push(meta.session);
  const r = await api('GET', 'session', meta.session);
  bobEarlier++;
  t.check('self-enrol: the session works', r.status === 200 && json(r).agent === 'bob@msp.example');
  const agents = ctl('agents');
  t.check('self-enrol: halo-milterctl agents lists bob as enrolled in selfserve',
    /selfserve +bob@msp\.example +enrolled/.test(agents) && !/pane sign-in/.test(agents), agents);
  await page.screenshot({ path: path.join(t.artifacts, 'signin-done.png') });
  await ctx.close();
  return meta.session;
}

// bob is not enrolled in "sim" (until the queued test imports his token),
// and sim does not let agents enroll themselves
async function notEnrolledTests(browser) {
  const { ctx, page } = await openPane(browser, { message: msg('created'), user: 'bob@msp.example' });
  t.check('sign-in: offered in the pane', await visible(page, '#signin-box'));
  await signInDialog(ctx, page, 'bob@msp.example', 'bob-pass-2');
  t.check('not enrolled: refused, says why', await waitText(page, '#signin-why', /not enrolled/) &&
    !(await session(page)), await text(page, '#signin-why'));
  await page.shot('not-enrolled.png');
  await ctx.close();
}

// after paneTests: the agent's actions change what those show
async function agentPaneTests(browser) {
  let ctx, page;
  // alice signs in from the pane
  const created = json(await st('sim', stamps.created.messageId, tok(stamps.created)));
  const tid = created.ticket && created.ticket.id;
  ({ ctx, page } = await openPane(browser, { message: msg('created') }));
  await visible(page, '#signin-box');
  await page.focus('#signin');
  t.check('keyboard: the sign-in button takes focus', await page.evaluate(() => document.activeElement.id === 'signin'));
  await signInDialog(ctx, page, 'alice@msp.example', 'alice-pass-1');
  t.check('sign-in: the pane gets a session through the dialog', await visible(page, '#work', 15000));
  let s = await session(page);
  if (s) sessions.push(s.session);
  t.check('sign-in: session bound to alice in sim, no cookie', s && s.agent === 'alice@msp.example' &&
    s.tenant === 'sim' && (await page.evaluate(() => document.cookie)) === '');
  t.check('read: contact and client of the sender', await waitText(page, '#contact', /Ann Acme \(contact #1000\)/) &&
    /Acme Corp/.test(await text(page, '#contact')), await text(page, '#contact'));
  t.check('read: the client\'s open tickets, thread match marked', await waitText(page, '#tickets', new RegExp('#' + tid + ' ')) &&
    (await page.locator('#tickets li.match').count()) === 1 &&
    /thread match/.test(await page.locator('#tickets li.match').textContent()) &&
    /#501 Printer on fire/.test(await text(page, '#tickets')), await text(page, '#tickets'));
  t.check('read: live status and agent shown', /New · unassigned/.test(await page.locator('#tickets li.match').textContent()) &&
    /In Progress · assigned to you/.test(await text(page, '#tickets')));
  t.check('likely action: "Add to ticket" is primary on a thread match',
    (await page.getAttribute('#append', 'class')) === 'primary' &&
    (await text(page, '#append')) === 'Add to ticket #' + tid);
  t.check('dedup warning shown when a thread match exists', await page.locator('#dedup').isVisible() &&
    new RegExp('#' + tid).test(await text(page, '#dedup')));
  t.check('screen reader: results are announced (role=status)', (await page.getAttribute('#act-result', 'role')) === 'status' &&
    (await page.getAttribute('#act-result', 'aria-live')) === 'polite');
  t.check('screen reader: per-ticket buttons are named', (await page.locator('button[aria-label="Assign ticket ' + tid + ' to me"]').count()) === 1);
  await page.shot('agent.png');
  // the README's picture: UPDATE_DOCS=1 sh tests/browser/pane.sh
  if (process.env.DOCS) await page.screenshot({ path: path.join(process.env.DOCS, 'pane.png'), fullPage: true });
  await page.click('#append');
  t.check('exactly once: the mail already on the ticket is not added again',
    await waitText(page, '#act-result', /already on that ticket/), await text(page, '#act-result'));

  // a skipped mail (an auto-reply): the agent logs it onto the ticket
  await page.evaluate((m) => window.__haloSwitch(m), msg('skipped'));
  t.check('skipped mail: the tickets load again', await waitText(page, '#tickets', new RegExp('#' + tid + ' ')));
  t.check('no thread match: "Create ticket" is primary, no dedup warning',
    (await page.getAttribute('#create', 'class')) === 'primary' && await page.locator('#dedup').isHidden());
  await page.check('#tk-' + tid);
  t.check('a chosen ticket makes "Add to ticket" primary', (await page.getAttribute('#append', 'class')) === 'primary' &&
    !(await page.isDisabled('#append')));
  await page.check('#internal');
  await page.fill('#time', '0.5');
  t.check('outcome picker: Halo\'s outcomes, the tenant\'s default chosen',
    (await page.inputValue('#action-outcome')) === 'Email Received' &&
    (await page.locator('#action-outcome option').count()) === 4);
  await page.selectOption('#action-outcome', 'Note');
  await page.click('#append');
  t.check('append: progress then result', await waitText(page, '#act-result',
    new RegExp('Added to ticket #' + tid + ' as an internal note, 0.5 h logged')), await text(page, '#act-result'));
  let state = await simState();
  const act = state.actions.find((a) => a.internet_message_id === stamps.skipped.messageId);
  t.check('append: Halo got the action (internal note, time entry, as alice)', act && act.ticket_id === tid &&
    act.hiddenfromuser === true && act.timetaken === 0.5 && act._sim.agent_id === 1 && act.sendemail === false &&
    act.outcome === 'Note',
    JSON.stringify(act));
  t.check('append: the note is the mail, escaped', act && /laptop will not boot/.test(act.note_html || '') &&
    /ann@acme\.example/.test(act.note_html || '') && !/<script/i.test(act.note_html || ''), act && act.note_html);
  t.check('skipped mail logged: the gateway\'s record says so', json(await st('sim', stamps.skipped.messageId,
    tok(stamps.skipped))).state === 'appended' && await waitText(page, '#outcome', new RegExp('^Added to ticket #' + tid)),
    await text(page, '#outcome'));
  await page.shot('appended-by-agent.png');

  // pick a new status, then assign to me: the list is drawn again after the
  // assign, and the redrawn row keeps the status the agent picked
  const statusSel = 'select[aria-label="New status for ticket ' + tid + '"]';
  await page.selectOption(statusSel, '3');
  await page.$eval(statusSel, (el) => { el.dataset.before = 'yes'; });
  await page.click('button[aria-label="Assign ticket ' + tid + ' to me"]');
  t.check('assign: done', await waitText(page, '#act-result', new RegExp('#' + tid + ' is assigned to you')));
  state = await simState();
  t.check('assign: Halo has alice as the ticket\'s agent', state.tickets.some((x) => x.id === tid && x.agent_id === 1));
  t.check('assign: the list shows it', await waitText(page, '#tickets', /assigned to you/));
  const redrawn = await page.waitForFunction((s) => {
    const el = document.querySelector(s);
    return el && el.dataset.before !== 'yes';
  }, statusSel, { timeout: 10000 }).then(() => true, () => false);
  const kept = await page.inputValue(statusSel);
  t.check('status: a redraw keeps the status the agent picked', redrawn && kept === '3', 'redrawn ' + redrawn + ', value ' + kept);
  await page.click('button[aria-label="Set the status of ticket ' + tid + '"]');
  t.check('status: done', await waitText(page, '#act-result', /is now Waiting on Customer/));
  state = await simState();
  t.check('status: Halo has the new status', state.tickets.some((x) => x.id === tid && x.status_id === 3));
  t.check('status: the list shows it live', await waitText(page, '#tickets', /Waiting on Customer · assigned to you/));

  // an unknown sender: pick the contact, then create with a ticket type
  await page.evaluate((m) => window.__haloSwitch(m), Object.assign(msg('stranger'), { from: 'who@nowhere.example', subject: 'Buy our widgets' }));
  t.check('unknown sender: says no match', await waitText(page, '#contact', /No contact or client found for who@nowhere\.example/));
  await page.click('#pickers summary');
  await page.fill('#client-q', 'Initech');
  await page.press('#client-q', 'Enter');
  await page.click('#client-results button:has-text("Initech")');
  t.check('client picker: the chosen client\'s tickets', await waitText(page, '#contact', /Initech \(client #12\)/) &&
    await waitText(page, '#tickets', /#503 /), (await text(page, '#contact')) + ' / ' + (await text(page, '#tickets')));
  // who may join a ticket (issue 11): the stranger's mail onto Initech's #503
  // is refused by the gateway's rule; the pane asks the agent, who declines
  let asked = '';
  page.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
  await page.check('#tk-503');
  await page.click('#append');
  t.check('who may join: the pane asks before adding a stranger\'s mail, declined: not added',
    await waitText(page, '#act-result', /not added\. The sender has not written on that ticket/) &&
    /Add it anyway\?$/.test(asked), asked + ' / ' + (await text(page, '#act-result')));
  state = await simState();
  t.check('who may join: declined: nothing reached #503',
    !state.actions.some((a) => a.internet_message_id === stamps.stranger.messageId && a.ticket_id === 503));
  {
    const sess = (await session(page)).session;
    const add = { ticket_id: 503, mid: stamps.stranger.messageId, from: 'who@nowhere.example',
      subject: 'Buy our widgets', text: 'Buy our widgets' };
    let r = await api('POST', 'append', sess, add);
    t.check('who may join: the API refuses it too (409 not-a-participant)', r.status === 409 &&
      json(r).error === 'not-a-participant', r.status + ' ' + r.body);
    r = await api('POST', 'append', sess, Object.assign({ confirm_outsider: true }, add));
    state = await simState();
    t.check('who may join: the agent may add it knowingly', r.status === 200 &&
      state.actions.some((a) => a.internet_message_id === stamps.stranger.messageId && a.ticket_id === 503),
      r.status + ' ' + r.body);
    t.check('who may join: the override is in the log', /pane: sim\/alice@msp\.example: adds mail \(job \d+\) to ticket 503 although not-a-participant, confirmed by the agent/.test(
      fs.readFileSync(process.env.DAEMON_LOG, 'utf8')));
  }
  // two jobs share a Message-ID (a stranger pre-empted it): the agent API
  // takes the job the message's own X-Halo-Token names
  {
    const sess = (await session(page)).session;
    const mid = encodeURIComponent(stamps.genuine.messageId);
    let r = await api('GET', 'context?mid=' + mid, sess, undefined, { 'X-Halo-Token': tok(stamps.genuine) });
    const g = json(r).job || {};
    t.check('shared Message-ID: the context is the genuine mail\'s job (its token\'s)', r.status === 200 &&
      g.job === Number(tok(stamps.genuine).split('.')[0]) && g.sender && g.sender.email === 'sam@shared.example',
      r.status + ' ' + JSON.stringify(g).slice(0, 300));
    r = await api('GET', 'context?mid=' + mid, sess, undefined, { 'X-Halo-Token': tok(stamps.preempt) });
    t.check('shared Message-ID: the pre-empting mail\'s token gives its own job',
      r.status === 200 && (json(r).job || {}).job === Number(tok(stamps.preempt).split('.')[0]));
    const forged = tok(stamps.genuine).split('.')[0] + '.' + 'A'.repeat(43);
    r = await api('GET', 'context?mid=' + mid, sess, undefined, { 'X-Halo-Token': forged });
    t.check('shared Message-ID: a forged token names no job', r.status === 200 && json(r).job === null,
      r.status + ' ' + JSON.stringify(json(r).job));
  }
  await page.fill('#user-q', 'carl');
  await page.press('#user-q', 'Enter');
  await page.click('#user-results button:has-text("Carl Globex")');
  t.check('contact picker: Carl Globex; Globex\'s only ticket is closed, so none listed', await waitText(page, '#contact', /Carl Globex \(contact #1003\)/) &&
    await waitText(page, '#tickets', /no open tickets/) &&
    !/#502/.test(await text(page, '#tickets')), (await text(page, '#contact')) + ' / ' + (await text(page, '#tickets')));
  await page.selectOption('#type', '2');
  await page.click('#create');
  t.check('create: done', await waitText(page, '#act-result', /Created ticket #\d+/), await text(page, '#act-result'));
  state = await simState();
  const made = state.tickets.find((x) => x.internet_message_id === stamps.stranger.messageId);
  t.check('create: Halo got the type, client and contact, as alice', made && made.tickettype_id === 2 &&
    made.client_id === 11 && made.user_id === 1003 && made.site_id === 110 && made._sim.agent_id === 1,
    JSON.stringify(made));
  await page.shot('created-by-agent.png');

  // a message that never passed the gateway
  const plain = { messageId: '<unstamped-1@acme.example>', from: 'jo@acme.example', subject: 'Internal: new starter',
    headers: 'From: Jo Smith <jo@acme.example>\r\nSubject: Internal: new starter\r\nMessage-ID: <unstamped-1@acme.example>\r\n\r\n',
    text: 'Please set up a laptop for our new starter.' };
  await page.evaluate((m) => window.__haloSwitch(m), plain);
  t.check('unstamped: the status says so, the agent can still act', await waitText(page, '#status', /not logged by the Halo gateway/) &&
    await waitText(page, '#contact', /Jo Smith \(contact #1001\)/));
  await page.click('#create');
  t.check('unstamped: created', await waitText(page, '#act-result', /Created ticket #\d+/));
  state = await simState();
  const un = state.tickets.find((x) => x.internet_message_id === plain.messageId);
  t.check('unstamped: Halo got the ticket with its Message-ID and contact', un && un.user_id === 1001 &&
    un.tickettype_id === 1 && /new starter/.test(un.details_html || ''), JSON.stringify(un));

  // per-agent defaults, kept server-side
  await page.selectOption('#type', '2');
  await page.selectOption('#action-outcome', 'Private Note');
  await page.check('#internal');
  await page.click('#save-defaults');
  t.check('defaults: saved', await waitText(page, '#act-result', /Saved/));
  await page.evaluate((m) => window.__haloSwitch(m), msg('appended'));
  await waitText(page, '#tickets', /#501 /);
  t.check('defaults: the next mail starts with them (type, outcome, internal note)', (await page.inputValue('#type')) === '2' &&
    (await page.inputValue('#action-outcome')) === 'Private Note' && await page.isChecked('#internal'));

  // re-route: the appended mail (on the created ticket) belongs on #501
  const before = json(await st('sim', stamps.appended.messageId, tok(stamps.appended)));
  await page.check('#tk-501');
  t.check('re-route: offered as "Move to ticket #501"', (await text(page, '#append')) === 'Move to ticket #501' &&
    before.ticket && before.ticket.id === tid, await text(page, '#append'));
  await page.click('#append');
  t.check('re-route: done, says what happened to the old action', await waitText(page, '#act-result',
    new RegExp('Moved to ticket #501\\. The action already on #' + tid + ' stays.*private note there')),
    await text(page, '#act-result'));
  state = await simState();
  const moved = state.actions.find((a) => a.internet_message_id === stamps.appended.messageId && a.ticket_id === 501);
  const pnote = state.actions.find((a) => a.ticket_id === tid && a.hiddenfromuser === true &&
    /moved to ticket #501/.test(a.note_html || ''));
  t.check('re-route: Halo got the mail on #501 and a private note on the old ticket', moved && pnote &&
    moved._sim.agent_id === 1 && pnote._sim.agent_id === 1, JSON.stringify(pnote));
  t.check('re-route: the gateway\'s record follows', await waitText(page, '#outcome', /^Added to ticket #501/) &&
    json(await st('sim', stamps.appended.messageId, tok(stamps.appended))).ticket.id === 501);
  await page.shot('rerouted.png');

  // Halo down
  await simFaults({ status_burst: { status: 503, count: 3 } });
  await page.click('#refresh');
  t.check('error: Halo down is said plainly', await waitText(page, '#act-result', /Halo is not answering/), await text(page, '#act-result'));
  await simFaults({ status_burst: { status: 503, count: 0 } });
  await page.shot('halo-down.png');

  // Halo refuses the token: the pane asks for a new sign-in, which renews it
  await simFaults({ revoke_refresh_tokens: true, revoke_access_tokens: true });
  await page.click('#refresh');
  t.check('re-enrolment: the pane asks to sign in again', await visible(page, '#signin-box') &&
    await waitText(page, '#signin-why', /no longer accepts your token/), await text(page, '#signin-why'));
  await page.shot('reenroll.png');
  await signInDialog(ctx, page, 'alice@msp.example', 'alice-pass-1');
  t.check('re-enrolment: signed in again, the tickets are back', await visible(page, '#work', 15000) &&
    await waitText(page, '#tickets', /#501 /));
  s = await session(page);
  if (s) sessions.push(s.session);
  // (refused requests show as "Failed to load resource": those are the tests)
  const real = page.errors.filter((e) => !/^Failed to load resource/.test(e));
  t.check('no script errors (agent)', real.length === 0, real.join(' | '));
  await ctx.close();
  return s && s.session;
}

// renewal, the per-agent rate limit, revoke, the audit trail
async function agentSessionTests(alice, bob) {
  let r = await api('POST', 'renew', alice, {});
  const renewed = json(r).session;
  t.check('renew: a new session id', r.status === 200 && renewed && renewed !== alice);
  if (renewed) sessions.push(renewed);
  r = await api('GET', 'session', alice);
  t.check('renew: the old id is dead', r.status === 401);
  r = await api('GET', 'session', renewed);
  t.check('renew: the new id works', r.status === 200);
  let limited = null, served = 0;
  for (let i = 0; i < 260 && !limited; i++) {
    r = await api('GET', 'session', bob);
    if (r.status === 429) limited = r; else if (r.status === 200) served++;
  }
  // bob's one earlier call (the self-enrol check) counts when his window
  // (which began with it) has not ended yet: how long the tests between
  // took decides whether 240 or 239 are left
  t.check('rate limit: per agent, 240 a minute', limited && (served === 240 || served === 240 - bobEarlier) &&
    Number(limited.headers['retry-after']) > 0, served);
  r = await api('GET', 'session', renewed);
  t.check('rate limit: another agent is still served', r.status === 200);
  ctl('revoke alice@msp.example sim');
  r = await api('GET', 'session', renewed);
  t.check('revoke: the admin\'s revoke ends the agent\'s pane sessions', r.status === 401, r.status);
  const rt = await (await fetch(SIM + '/_sim/token', { method: 'POST',
    body: JSON.stringify({ agent_email: 'alice@msp.example', scope: 'all offline_access' }) })).json();
  execSync(process.env.CTL + ' token import alice@msp.example sim', { input: rt.refresh_token + '\n' });
  r = await api('GET', 'session', renewed);
  t.check('revoke: enrolling again does not bring the old session back', r.status === 401, r.status);
  const log = fs.readFileSync(process.env.DAEMON_LOG, 'utf8');
  t.check('audit: every write is logged with agent and job',
    /pane: sim\/alice@msp\.example: appended mail \(job \d+\) to ticket \d+ as action \d+ \(internal note\), 0\.50 h/.test(log) &&
    /pane: sim\/alice@msp\.example: created ticket \d+ \(type 2\) from mail \(job \d+\)/.test(log) &&
    /pane: sim\/alice@msp\.example: assigned ticket \d+/.test(log) &&
    /pane: sim\/alice@msp\.example: set ticket \d+ to status 3/.test(log) &&
    /pane: sim\/alice@msp\.example: re-routed mail \(job \d+\) from ticket \d+ to ticket 501; private note on \d+ posted/.test(log) &&
    /pane: selfserve\/bob@msp\.example: signed in .*self-enrolled/.test(log));
  t.check('audit: no session id in the log', sessions.length >= 3 && sessions.every((x) => !log.includes(x)), sessions.length);
}

// last: it spends a client's budget (from 127.0.0.2, not the pane's address)
async function rateTests() {
  const s = stamps.created;
  let limited = null, served = 0;
  for (let i = 0; i < 130 && !limited; i++) {
    const r = await st('sim', s.messageId, tok(s), {}, '127.0.0.2');
    if (r.status === 429) limited = r; else if (r.status === 200) served++;
  }
  t.check('rate limit: 429 after 120 a minute', limited !== null && served === 120, served);
  t.check('rate limit: Retry-After given', limited && Number(limited.headers['retry-after']) > 0);
  const r = await st('sim', s.messageId, tok(s));
  t.check('rate limit: per client (another address still served)', r.status === 200, r.status);
}

(async () => {
  let browser;
  try {
    t.check('stamps: eight messages stamped with a token', Object.keys(stamps).length === 8 &&
      Object.values(stamps).every((s) => /^[1-9][0-9]*\.[A-Za-z0-9_-]{43}; tenant=/.test(s.token)));
    t.check('stamps: the token names its job and is its HMAC under status.key',
      tok(stamps.created) === tokenOf('sim', jobOf(stamps.created), stamps.created.messageId,
        'support@msp.example'));
    await apiTests();
    await manifestTests();
    browser = await launch();
    await agentApiTests();
    const bob = await selfEnrollTests(browser);
    await notEnrolledTests(browser);
    await paneTests(browser);
    const alice = await agentPaneTests(browser);
    await agentSessionTests(alice, bob);
    await rateTests();
  } catch (e) {
    t.check('no exception', false, e && e.stack);
  } finally {
    if (browser) await browser.close();
  }
  process.exit(t.done());
})();
