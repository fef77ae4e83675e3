// enroll.test.js - the admin page and an agent's enrollment in headless
// Chromium (run by enroll.sh, which starts the Halo simulator and the
// daemon and passes WEB, SIM, CTL, CONF, MSGID, SECRETS, ARTIFACTS).
//
// 1. the admin password is set with the CLI;
// 2. the admin signs in (a wrong password first), sees alice never
//    enrolled, the failed and waiting jobs (a hostile subject, sender and
//    reason shown as text), retries one (refused without the CSRF token
//    and for a done job), and is refused on POSTs without or with a wrong
//    CSRF token;
// 3. the admin makes a code for alice: code, links, QR code (inline SVG);
// 4. alice, in a browser context of her own, opens the filled-in link,
//    confirms, signs in at the simulator's login form, and lands on the
//    success page; the message that waited for her token is then logged;
// 5. the admin runs doctor for the tenant (Agent/me for alice);
// 6. the admin signs out, and the old session cookie no longer works.
// Every secret seen (password, session ids, CSRF tokens, code) goes to
// SECRETS, which enroll.sh looks for in the daemon log.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { launch, suite } = require('./lib.js');

const WEB = process.env.WEB;
const SIM = process.env.SIM;
const CTL = process.env.CTL;
const CONF = process.env.CONF;
const MSGID = process.env.MSGID;
const SECRETS = process.env.SECRETS;
const PASSWORD = 'browser-test admin pw 1';
const ALICE = 'alice@msp.example';
// the jobs enroll.sh writes into the store
const FAILED_ID = Number(process.env.FAILED_ID);
const DONE_ID = Number(process.env.DONE_ID);
const FAILED_REASON = process.env.FAILED_REASON;
const HOSTILE_SUBJECT = process.env.HOSTILE_SUBJECT;
const HOSTILE_FROM = process.env.HOSTILE_FROM;

const t = suite('browser-enroll');
const secrets = new Set([PASSWORD]);

function ctl(args, input) {
  return execFileSync(CTL, ['-c', CONF, ...args], {
    input: input || '', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'],
  });
}

// The job of `halo-milterctl queue --json` that PRED picks, or undefined.
function queueJob(pred) {
  return JSON.parse(ctl(['queue', '--json'])).find(pred);
}

function agentsLine(agent) {
  return ctl(['agents']).split('\n').find((l) => l.includes(' ' + agent + ' ')) || '';
}

async function simState() {
  const r = await fetch(SIM + '/_sim/state');
  return r.json();
}

// Submit a form of FIELDS to URL from inside the page, as a forged or
// stale page would (our CSP allows no fetch, so a real form): status, text.
async function postFrom(page, url, fields) {
  const [resp] = await Promise.all([
    page.waitForNavigation(),
    page.evaluate(([u, f]) => {
      const form = document.createElement('form');
      form.method = 'post';
      form.action = u;
      for (const [k, v] of Object.entries(f)) {
        const i = document.createElement('input');
        i.type = 'hidden'; i.name = k; i.value = v;
        form.appendChild(i);
      }
      document.body.appendChild(form);
      form.submit();
    }, [url, fields]),
  ]);
  return { status: resp.status(), text: await page.textContent('body') };
}

async function main() {
  // the simulator must know our redirect URI (its port is chosen per run)
  const fixture = JSON.parse(fs.readFileSync(process.env.FIXTURE, 'utf8'));
  for (const c of fixture.oauth_clients) {
    if (c.client_id === 'halo-milter-native') c.redirect_uris.push(WEB + '/enroll/callback');
  }
  const reset = await fetch(SIM + '/_sim/reset', {
    method: 'POST', body: JSON.stringify({ fixture }),
    headers: { 'Content-Type': 'application/json' },
  });
  t.check('the simulator accepts our redirect URI', reset.status === 200, reset.status);

  // 1. the password, through the CLI (one line from a pipe)
  let out = '';
  try { out = ctl(['admin-password'], 'too short\n'); } catch (e) { out = 'refused'; }
  t.check('admin-password refuses a password under 12 characters', out === 'refused');
  out = ctl(['admin-password'], PASSWORD + '\n');
  t.check('admin-password stores the hash', /admin password set/.test(out), out);
  const pwFile = path.join(path.dirname(CONF), 'state', 'admin.pw');
  const st = fs.statSync(pwFile);
  const pwText = fs.readFileSync(pwFile, 'utf8');
  t.check('admin.pw is 0600 and holds a PBKDF2 hash, not the password',
    (st.mode & 0o777) === 0o600 && /^pbkdf2-sha256\$600000\$/.test(pwText) &&
    !pwText.includes(PASSWORD), (st.mode & 0o777).toString(8));

  const browser = await launch();
  try {
    // 2. the admin signs in
    const admin = await browser.newContext();
    const page = await admin.newPage();
    let resp = await page.goto(WEB + '/admin');
    const csp = resp.headers()['content-security-policy'] || '';
    t.check('GET /admin: the sign-in form, no-store, strict CSP',
      resp.status() === 200 && await page.locator('#password').count() === 1 &&
      resp.headers()['cache-control'] === 'no-store' &&
      !csp.includes("'unsafe-inline'") && csp.includes("default-src 'none'"),
      resp.status() + ' ' + csp);
    await page.fill('#password', 'not the password at all');
    [resp] = await Promise.all([
      page.waitForNavigation(), page.click('#login'),
    ]);
    t.check('a wrong password is refused (403)', resp.status() === 403 &&
      (await page.textContent('#message')).includes('Wrong password'),
      resp.status());
    t.check('... and starts no session',
      (await admin.cookies()).filter((c) => c.name === 'halo_admin').length === 0);
    await page.fill('#password', PASSWORD);
    [resp] = await Promise.all([
      page.waitForNavigation(), page.click('#login'),
    ]);
    t.check('the right password opens the admin page',
      resp.status() === 200 && page.url() === WEB + '/admin' &&
      await page.locator('#agents').count() === 1, page.url());
    const cookies = await admin.cookies();
    const session = cookies.find((c) => c.name === 'halo_admin');
    t.check('session cookie: HttpOnly, SameSite=Strict, Path=/, random id',
      session && session.httpOnly && session.sameSite === 'Strict' &&
      session.path === '/' && /^[A-Za-z0-9_-]{43}$/.test(session.value),
      JSON.stringify(session));
    if (session) secrets.add(session.value);
    const aliceRow = page.locator('#agents tr', { hasText: ALICE });
    t.check('alice is listed as never enrolled',
      (await aliceRow.textContent()).includes('never enrolled'));
    const csrf = await page.locator('input[name=csrf]').first().getAttribute('value');
    t.check('every form carries the CSRF token',
      /^[0-9a-f]{64}$/.test(csrf || '') &&
      await page.locator('form:not(:has(input[name=csrf]))').count() === 0, csrf);
    secrets.add(csrf);

    // the jobs table: the job waiting for alice, the failed job enroll.sh
    // wrote with a hostile subject, sender and reason, not the done one
    const waiting = queueJob((j) => j.message_id === MSGID);
    const waitRow = waiting ? await page.locator('#job-' + waiting.id).textContent() : '';
    t.check('the jobs table lists the job waiting for alice with its reason',
      waiting && waiting.state === 'waiting' && waiting.reason &&
      waitRow.includes('waiting') && waitRow.includes(waiting.reason), waitRow);
    const failRow = await page.locator('#job-' + FAILED_ID).textContent();
    t.check('... and the failed job with its reason, as text',
      failRow.includes('failed') && failRow.includes(FAILED_REASON), failRow);
    t.check('hostile subject and sender are shown as text, not markup',
      failRow.includes(HOSTILE_SUBJECT) && failRow.includes(HOSTILE_FROM) &&
      await page.locator('script, #jobs img, #jobs b').count() === 0, failRow);
    t.check('done jobs are not listed', await page.locator('#job-' + DONE_ID).count() === 0);
    const jobRows = await page.locator('#jobs tbody tr').count();
    t.check('every listed job has a Retry button with the CSRF token',
      await page.locator('#jobs form[action="admin/retry"] input[name=csrf]').count() === jobRows &&
      jobRows >= 2, jobRows);

    // retry: without the CSRF token, of a done job, then through the button
    let r = await postFrom(page, WEB + '/admin/retry', { id: String(FAILED_ID) });
    let j = queueJob((x) => x.id === FAILED_ID);
    t.check('POST /admin/retry without a CSRF token: 403, the job stays failed',
      r.status === 403 && j.state === 'failed' && j.attempts === 0, r.status + ' ' + JSON.stringify(j));
    r = await postFrom(page, WEB + '/admin/retry', { id: String(DONE_ID), csrf });
    j = queueJob((x) => x.id === DONE_ID);
    t.check('retry of a done job is refused (409) and it stays done',
      r.status === 409 && r.text.includes('is done') && j.state === 'done', r.status + ' ' + r.text);
    r = await postFrom(page, WEB + '/admin/retry', { id: '999999', csrf });
    t.check('retry of a job that does not exist: 404', r.status === 404, r.status);
    await page.goto(WEB + '/admin');
    [resp] = await Promise.all([
      page.waitForNavigation(),
      page.locator('#job-' + FAILED_ID + ' button:has-text("Retry")').click(),
    ]);
    j = queueJob((x) => x.id === FAILED_ID);
    t.check('Retry queues the failed job again (the worker took it up)',
      resp.status() === 200 && (await page.textContent('#message')).includes('queued again') &&
      (j.state !== 'failed' || j.attempts > 0), JSON.stringify(j));
    await page.goto(WEB + '/admin');

    // CSRF: without, and with a wrong token, nothing changes
    const before = agentsLine(ALICE);
    r = await postFrom(page, WEB + '/admin/enroll',
      { tenant: 'sim', agent: ALICE });
    t.check('POST /admin/enroll without a CSRF token: 403', r.status === 403, r.status);
    r = await postFrom(page, WEB + '/admin/enroll',
      { tenant: 'sim', agent: ALICE, csrf: '0'.repeat(64) });
    t.check('POST /admin/enroll with a wrong CSRF token: 403', r.status === 403, r.status);
    r = await postFrom(page, WEB + '/admin/enroll',
      { tenant: 'sim', agent: ALICE, csrf: csrf.slice(0, 63) });
    t.check('POST /admin/enroll with a truncated CSRF token: 403', r.status === 403, r.status);
    r = await postFrom(page, WEB + '/admin/logout', {});
    t.check('POST /admin/logout without a CSRF token: 403', r.status === 403, r.status);
    const after = agentsLine(ALICE);
    t.check('... and nothing changed (no code made, still signed in)',
      before === after && !after.includes('pending code') &&
      (await page.goto(WEB + '/admin')) && await page.locator('#agents').count() === 1,
      after);
    const bare = await browser.newContext();
    const bp = await bare.newPage();
    await bp.goto(WEB + '/admin');
    r = await postFrom(bp, WEB + '/admin/enroll', { tenant: 'sim', agent: ALICE, csrf });
    t.check('POST /admin/enroll without the session cookie: 403', r.status === 403 &&
      !agentsLine(ALICE).includes('pending code'), r.status);
    await bare.close();
    await page.goto(WEB + '/admin');

    // 3. a code for alice
    await page.screenshot({ path: path.join(t.artifacts, 'admin.png'), fullPage: true });
    await page.fill('#agent', ALICE);
    [resp] = await Promise.all([
      page.waitForNavigation(), page.click('#create'),
    ]);
    const code = (await page.textContent('#code')).trim();
    secrets.add(code);
    secrets.add(code.replace('-', ''));
    t.check('the admin makes a code for alice (XXXX-XXXX)',
      resp.status() === 200 && /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/.test(code) &&
      (await page.textContent('#code-agent')) === ALICE, code);
    const link = await page.getAttribute('#link', 'href');
    const linkCode = await page.getAttribute('#link-code', 'href');
    t.check('the page gives PUBLIC_URL/enroll and the link with the code',
      link === WEB + '/enroll' && linkCode === WEB + '/enroll?code=' + code, linkCode);
    const rects = await page.locator('svg#qr rect').count();
    t.check('a QR code of the link, as inline SVG rects',
      await page.locator('svg#qr').isVisible() && rects > 50, rects);
    t.check('no inline style or script on the page',
      await page.locator('script, style, [style]').count() === 0);
    await page.screenshot({ path: path.join(t.artifacts, 'admin-code.png'), fullPage: true });
    t.check('agents: alice has a pending code', agentsLine(ALICE).includes('pending code'),
      agentsLine(ALICE));

    // 4. alice, in her own browser
    const agentCtx = await browser.newContext();
    const ap = await agentCtx.newPage();
    resp = await ap.goto(linkCode);
    const confirm = await ap.textContent('main');
    t.check('alice sees the confirmation naming agent, tenant and gateway',
      resp.status() === 200 && confirm.includes(ALICE) &&
      confirm.includes('tenant sim') && confirm.includes(WEB) &&
      confirm.includes('Continue only if you asked'), confirm.slice(0, 200));
    await Promise.all([
      ap.waitForURL((u) => u.toString().includes('/authorize')),
      ap.click('button:has-text("Continue")'),
    ]);
    t.check('Continue leads to the Halo sign-in form',
      await ap.locator('input[name=password]').count() === 1,
      ap.url() + ' ' + (await ap.content()).slice(0, 600));
    await ap.fill('input[name=username]', ALICE);
    await ap.fill('input[name=password]', 'alice-pass-1');
    [resp] = await Promise.all([
      ap.waitForURL((u) => u.toString().startsWith(WEB + '/enroll/callback')),
      ap.click('button[value=login]'),
    ]);
    const done = await ap.textContent('main');
    t.check('alice lands on the success page', /Enrolled/.test(await ap.title()) &&
      done.includes('Done.') && done.includes(ALICE), done.slice(0, 200));
    await ap.screenshot({ path: path.join(t.artifacts, 'success.png'), fullPage: true });
    t.check('agents: alice enrolled', / enrolled/.test(agentsLine(ALICE)) &&
      !agentsLine(ALICE).includes('not enrolled'), agentsLine(ALICE));

    // the worker logs the waiting message under alice's token
    let logged = null;
    for (let i = 0; i < 150 && !logged; i++) {
      const s = await simState();
      logged = s.tickets.find((x) => x.internet_message_id === MSGID ||
        (x.details || '').includes('badge reader')) || null;
      if (!logged) await new Promise((res) => setTimeout(res, 100));
    }
    t.check("the message that waited for alice's token is logged in Halo",
      logged !== null, JSON.stringify(logged && logged._sim));
    t.check('... under alice (agent 1)', logged && logged._sim &&
      logged._sim.agent_id === 1, JSON.stringify(logged && logged._sim));

    await page.goto(WEB + '/admin');
    const row = await page.locator('#agents tr', { hasText: ALICE }).textContent();
    t.check('the admin page shows alice enrolled with her last refresh',
      row.includes('enrolled') && !row.includes('never') && /\d{4}-\d\d-\d\d \d\d:\d\d UTC/.test(row),
      row);
    t.check('the waiting job left the jobs table once logged',
      waiting && await page.locator('#job-' + waiting.id).count() === 0);

    // doctor, on demand per tenant
    r = await postFrom(page, WEB + '/admin/doctor', { tenant: 'sim' });
    t.check('POST /admin/doctor without a CSRF token: 403', r.status === 403, r.status);
    await page.goto(WEB + '/admin');
    [resp] = await Promise.all([
      page.waitForNavigation(),
      page.locator('#tenants tr', { hasText: 'sim' }).locator('button:has-text("Run doctor")').click(),
    ]);
    const checks = await page.locator('#doctor tr.check').allTextContents();
    t.check("doctor runs for the tenant and checks alice's token against Agent/me",
      resp.status() === 200 && (await page.title()).startsWith('Doctor: tenant sim') &&
      checks.some((c) => c.startsWith('ok') && c.includes('agent alice@msp.example: token refreshed')),
      checks.join(' | '));
    t.check('... with the store, ticket type and budget checks, and a problem count',
      checks.some((c) => c.includes('store: sqlite')) &&
      checks.some((c) => c.includes('ticket type 1 exists')) &&
      checks.some((c) => c.includes('request budget')) &&
      /^\d+ problems? found\.$/.test((await page.textContent('#problems')).trim()),
      checks.join(' | '));
    await page.screenshot({ path: path.join(t.artifacts, 'doctor.png'), fullPage: true });
    await page.goto(WEB + '/admin');

    // 5. sign out; the old cookie is dead on the server too
    [resp] = await Promise.all([
      page.waitForNavigation(), page.click('#logout'),
    ]);
    t.check('sign-out returns to the sign-in form',
      page.url() === WEB + '/admin' && await page.locator('#password').count() === 1 &&
      (await admin.cookies()).filter((c) => c.name === 'halo_admin').length === 0);
    await admin.addCookies([{ name: 'halo_admin', value: session.value, url: WEB }]);
    await page.goto(WEB + '/admin');
    t.check('the old session cookie no longer opens the admin page',
      await page.locator('#password').count() === 1 &&
      await page.locator('#agents').count() === 0);
    r = await postFrom(page, WEB + '/admin/revoke', { tenant: 'sim', agent: ALICE, csrf });
    t.check('... nor lets a POST through (403), and alice keeps her token',
      r.status === 403 && / enrolled/.test(agentsLine(ALICE)), r.status);

    // revoke through the page, signed in again
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForNavigation(), page.click('#login')]);
    const s2 = (await admin.cookies()).find((c) => c.name === 'halo_admin');
    if (s2) secrets.add(s2.value);
    const csrf2 = await page.locator('input[name=csrf]').first().getAttribute('value');
    secrets.add(csrf2);
    t.check('a new session has a new CSRF token', csrf2 !== csrf);
    await Promise.all([
      page.waitForNavigation(),
      page.locator('#agents tr', { hasText: ALICE }).locator('button:has-text("Revoke")').click(),
    ]);
    t.check('revoke from the admin page deletes alice\'s token',
      (await page.textContent('#message')).includes('deleted') &&
      agentsLine(ALICE).includes('not enrolled'), agentsLine(ALICE));
    await agentCtx.close();
    await admin.close();
  } finally {
    await browser.close();
    fs.writeFileSync(SECRETS, [...secrets].filter(Boolean).join('\n') + '\n');
  }
}

main().then(() => process.exit(t.done()), (e) => {
  t.check('the walk-through ran to the end', false, e && e.stack);
  process.exit(t.done());
});
