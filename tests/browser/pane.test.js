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
function req(method, urlPath, headers = {}, localAddress) {
  return new Promise((resolve, reject) => {
    const r = http.request(WEB + urlPath, { method, headers, localAddress }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    r.on('error', reject);
    r.end();
  });
}
const q = (tenant, mid, token) => '/api/status?tenant=' + encodeURIComponent(tenant) +
  '&mid=' + encodeURIComponent(mid) + '&token=' + encodeURIComponent(token);

async function openPane(browser, stub, name, scheme) {
  const ctx = await browser.newContext({ viewport: { width: 360, height: 520 }, colorScheme: scheme || 'light' });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.route(OFFICE_JS, (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: STUB }));
  await page.addInitScript((cfg) => { window.__haloStub = cfg; }, stub);
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
  let r = await req('GET', q('sim', s.messageId, tok(s)));
  t.check('api: a valid token answers 200', r.status === 200, r.status);
  const body = JSON.parse(r.body);
  t.check('api: created, with ticket and contact', body.state === 'created' && body.ticket &&
    body.ticket.id > 0 && body.sender.match === 'contact', r.body.toString());
  t.check('api: the ticket links to Halo\'s agent UI', body.ticket && /\/ticket\?id=\d+$/.test(body.ticket.url));
  t.check('api: no-store', /no-store/.test(r.headers['cache-control'] || ''));
  t.check('api: Vary: Origin', /Origin/.test(r.headers.vary || ''));

  const bad = tok(s).slice(0, -2) + (tok(s).endsWith('AA') ? 'BB' : 'AA');
  r = await req('GET', q('sim', s.messageId, bad));
  const forbidden = r.body.toString();
  t.check('api: a bad token is refused (403)', r.status === 403, r.status);
  r = await req('GET', q('sim', s.messageId, ''));
  t.check('api: a missing token is refused (403)', r.status === 403 && r.body.toString() === forbidden);
  r = await req('GET', '/api/status');
  t.check('api: no parameters at all: 403', r.status === 403);
  r = await req('GET', q('nosuch', s.messageId, tokenOf('nosuch', jobOf(s), s.messageId, 'support@msp.example')));
  t.check('api: an unknown tenant (valid HMAC) gets the same 403', r.status === 403 &&
    r.body.toString() === forbidden);
  r = await req('GET', q('broken', s.messageId, tokenOf('sim', jobOf(s), s.messageId, 'support@msp.example')));
  t.check('api: another tenant\'s token is refused', r.status === 403);
  // the token of one job does not open another, even with its Message-ID
  // (issue 11): the created job's token asked about the appended job's
  const other = stamps.appended;
  r = await req('GET', q('sim', other.messageId, tok(s)));
  t.check('api: a job\'s token does not open another job', r.status === 403, r.status);
  r = await req('GET', q('sim', other.messageId, jobOf(other) + '.' + tok(s).split('.')[1]));
  t.check('api: nor when it is made to name the other job', r.status === 403, r.status);
  r = await req('GET', q('sim', s.messageId, tokenOf('sim', jobOf(s), s.messageId, 'support@msp.example')));
  t.check('api: the token is the job\'s (test vector)', r.status === 200, r.status);
  const unknown = '<never-seen@acme.example>';
  r = await req('GET', q('sim', unknown, tokenOf('sim', 999999, unknown, '')));
  t.check('api: a token naming a job this store does not have: 404 unknown', r.status === 404 &&
    JSON.parse(r.body).state === 'unknown', r.status + ' ' + r.body);
  r = await req('GET', q('sim', s.messageId + '%00x', tok(s)));
  t.check('api: an embedded NUL is refused', r.status === 403);

  // CORS: only the pane's own origin
  r = await req('GET', q('sim', s.messageId, tok(s)), { Origin: WEB });
  t.check('cors: our origin is allowed', r.headers['access-control-allow-origin'] === WEB);
  r = await req('GET', q('sim', s.messageId, tok(s)), { Origin: 'https://evil.example' });
  t.check('cors: another origin gets no Allow-Origin', r.status === 200 &&
    r.headers['access-control-allow-origin'] === undefined && /Origin/.test(r.headers.vary || ''));
  r = await req('OPTIONS', '/api/status', { Origin: WEB, 'Access-Control-Request-Method': 'GET' });
  t.check('cors: preflight from our origin: 204 with Allow-Origin', r.status === 204 &&
    r.headers['access-control-allow-origin'] === WEB && /GET/.test(r.headers['access-control-allow-methods'] || ''));
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
  // the README's picture: UPDATE_DOCS=1 sh tests/browser/pane.sh
  if (process.env.DOCS) await page.screenshot({ path: path.join(process.env.DOCS, 'pane.png') });
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
  t.check('skipped: shown with its reason', await waitText(page, '#outcome', /Not logged/) &&
    /auto-reply/.test(await text(page, '#reason')));
  await page.shot('skipped.png');
  await page.evaluate((m) => window.__haloSwitch(m), msg('stranger'));
  t.check('unknown sender: skipped', await waitText(page, '#reason', /unknown-sender/));
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

// last: it spends a client's budget (from 127.0.0.2, not the pane's address)
async function rateTests() {
  const s = stamps.created;
  let limited = null, served = 0;
  for (let i = 0; i < 130 && !limited; i++) {
    const r = await req('GET', q('sim', s.messageId, tok(s)), {}, '127.0.0.2');
    if (r.status === 429) limited = r; else if (r.status === 200) served++;
  }
  t.check('rate limit: 429 after 120 a minute', limited !== null && served === 120, served);
  t.check('rate limit: Retry-After given', limited && Number(limited.headers['retry-after']) > 0);
  const r = await req('GET', q('sim', s.messageId, tok(s)));
  t.check('rate limit: per client (another address still served)', r.status === 200, r.status);
}

(async () => {
  let browser;
  try {
    t.check('stamps: six messages stamped with a token', Object.keys(stamps).length === 6 &&
      Object.values(stamps).every((s) => /^[1-9][0-9]*\.[A-Za-z0-9_-]{43}; tenant=/.test(s.token)));
    t.check('stamps: the token names its job and is its HMAC under status.key',
      tok(stamps.created) === tokenOf('sim', jobOf(stamps.created), stamps.created.messageId,
        'support@msp.example'));
    await apiTests();
    await manifestTests();
    browser = await launch();
    await paneTests(browser);
    await rateTests();
  } catch (e) {
    t.check('no exception', false, e && e.stack);
  } finally {
    if (browser) await browser.close();
  }
  process.exit(t.done());
})();
