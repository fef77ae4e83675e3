// lib.js - shared helpers for the headless-Chromium tests: launch Debian's
// chromium through playwright-core (no browser download), count checks the
// way the shell suites do ("ok   NAME" / "FAIL NAME"), and keep artifacts.
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // root in CI: the setuid sandbox is not available there
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

function suite(name) {
  let passed = 0, failed = 0;
  const art = process.env.ARTIFACTS || path.join('build', 'artifacts', name);
  fs.mkdirSync(art, { recursive: true });
  return {
    artifacts: art,
    check(label, cond, detail) {
      if (cond) { passed++; console.log(`ok   ${name}: ${label}`); }
      else {
        failed++;
        console.log(`FAIL ${name}: ${label}${detail !== undefined ? ' (' + detail + ')' : ''}`);
      }
      return !!cond;
    },
    done() {
      console.log(`${name}: ${passed} passed, ${failed} failed`);
      return failed === 0 && passed > 0 ? 0 : 1;
    },
  };
}

module.exports = { launch, suite, CHROMIUM };
