// End-to-end test of the demo chat page (www/localhost/) in a real browser: Debian's Chromium
// driven by playwright-core, against the real mles binary on 127.0.0.1.
//
//   node --test chat.test.mjs                       (MLES_BINARY, MLES_WWWROOT from the environment)
//   node chat.test.mjs <path/to/mles> <path/to/www> [artifacts-dir]
//
// Arguments win over the environment: MLES_BINARY (default <repo>/build/mles), MLES_WWWROOT
// (default <repo>/www), MLES_BROWSER_ARTIFACTS (default tests/browser/artifacts), CHROMIUM
// (default /usr/bin/chromium). ctest (tests/browser/CMakeLists.txt) passes the arguments.
// For each of TLS (--self-signed, https/wss) and plain (--no-tls, http/ws) it starts a fresh
// server on a free port, then: two contexts join the same fresh channel with different names and
// exchange messages both ways; a third joins later and sees the history (messages + joins). The
// page's own responses and an in-page fetch() check Content-Encoding, Vary, ETag,
// Last-Modified, Cache-Control, a 304 on If-None-Match, and nosniff on the html. Screenshots,
// server logs and the browser console go to the artifacts directory. Every wait is bounded; the
// server is stopped on every exit path. Exit status: 0 all passed, 1 a test failed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, createWriteStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const [argBinary, argWww, argArtifacts] = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const mlesBinary = path.resolve(argBinary ?? process.env.MLES_BINARY ?? path.join(repo, 'build', 'mles'));
const wwwroot = path.resolve(argWww ?? process.env.MLES_WWWROOT ?? path.join(repo, 'www'));
const artifacts = path.resolve(argArtifacts ?? process.env.MLES_BROWSER_ARTIFACTS ?? path.join(here, 'artifacts'));
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

const STEP_MS = 15_000;        // bound of every single wait (page load, join, message arrival)
const SERVER_START_MS = 15_000;
const SERVER_STOP_MS = 5_000;
const TEST_MS = 90_000;        // per scenario; ctest's TIMEOUT (120 s) bounds the whole file

// Chromium flags required on this machine (closed network, root, no GPU). playwright-core adds
// a fresh temporary --user-data-dir itself for launch() and removes it on close.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--ignore-certificate-errors',
];

mkdirSync(artifacts, { recursive: true });

// ---- server ---------------------------------------------------------------------------------

const servers = new Set();

function killAllNow() { // last resort on any exit path: never leave a server behind
  for (const s of servers) {
    try { s.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { killAllNow(); process.exit(1); });
}
// Watchdog: the whole file must never outlive ctest's TIMEOUT, whatever hangs.
setTimeout(() => {
  console.error('chat.test: watchdog fired after 115 s; stopping');
  killAllNow();
  process.exit(1);
}, 115_000).unref();

async function startServer(mode) {
  assert.ok(existsSync(mlesBinary), `mles binary not found: ${mlesBinary}`);
  assert.ok(existsSync(path.join(wwwroot, 'localhost', 'index.html')), `no localhost/index.html under ${wwwroot}`);
  const args = [
    mode === 'tls' ? '--self-signed' : '--no-tls',
    '--port', '0', '--bind', '127.0.0.1', '--domains', 'localhost',
    '--wwwroot', wwwroot, '--log-level', 'info',
  ];
  const child = spawn(mlesBinary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  servers.add(child);
  child.on('exit', () => servers.delete(child));
  const log = createWriteStream(path.join(artifacts, `server-${mode}.log`));
  child.stdout.pipe(log);
  child.stderr.pipe(log);

  const port = await new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => done(new Error(`server did not report its port within ${SERVER_START_MS} ms:\n${seen}`)), SERVER_START_MS);
    const onData = (chunk) => {
      seen += chunk.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(seen);
      if (m) done(null, Number(m[1]));
    };
    const onExit = (code, signal) => done(new Error(`server exited early (code ${code}, signal ${signal}):\n${seen}`));
    function done(err, value) {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.stderr.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err); else resolve(value);
    }
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', onExit);
  }).catch((err) => { child.kill('SIGKILL'); throw err; });
  return { child, port };
}

async function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), SERVER_STOP_MS);
  await exited;
  clearTimeout(timer);
}

// ---- browser --------------------------------------------------------------------------------

let browser = null;
async function getBrowser() {
  if (!browser) {
    assert.ok(existsSync(chromiumPath), `${chromiumPath} not found (run scripts/install-browser.sh)`);
    browser = await chromium.launch({
      executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS, timeout: STEP_MS,
    });
  }
  return browser;
}

after(async () => {
  if (browser) await browser.close().catch(() => {});
  await Promise.all([...servers].map(stopServer));
});

// One user: an isolated browser context (own cache, cookies, storage) with one page.
async function openUser(base, name, mode, consoleLines, pageErrors) {
  const context = await (await getBrowser()).newContext({ ignoreHTTPSErrors: true, viewport: { width: 800, height: 700 } });
  context.setDefaultTimeout(STEP_MS);
  context.setDefaultNavigationTimeout(STEP_MS);
  const page = await context.newPage();
  page.on('console', (m) => consoleLines.push(`[${mode} ${name}] ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => {
    consoleLines.push(`[${mode} ${name}] pageerror: ${e.message}`);
    pageErrors.push(`${name}: ${e.message}`);
  });
  const responses = new Map(); // pathname -> Response (first one)
  page.on('response', (r) => {
    const p = new URL(r.url()).pathname;
    if (!responses.has(p)) responses.set(p, r);
  });
  const nav = await page.goto(base + '/', { waitUntil: 'load' });
  assert.ok(nav, 'no response for /');
  assert.equal(nav.status(), 200, `GET / answered ${nav.status()}`);
  await page.locator('#join').waitFor({ state: 'visible' });
  return { name, context, page, responses };
}

async function join(user, channel) {
  const { page } = user;
  await page.fill('#name', user.name);
  await page.fill('#channel', channel);
  await page.fill('#auth', '');
  await page.click('#join');
  await page.waitForSelector('#status[data-state="open"]');
  await page.locator('#message').waitFor({ state: 'visible' });
  await page.waitForFunction(() => !document.getElementById('message').disabled);
}

async function send(user, text) {
  await user.page.fill('#message', text);
  await user.page.click('#send');
}

// Lines of #messages as {from, text, notice}.
function lines(page) {
  return page.evaluate(() => [...document.querySelectorAll('#messages li')].map((li) => ({
    from: li.querySelector('.from')?.textContent ?? null,
    text: li.querySelector('.text')?.textContent ?? null,
    notice: li.querySelector('.notice')?.textContent ?? null,
  })));
}

async function waitForLine(user, want, what) {
  try {
    await user.page.waitForFunction((w) => [...document.querySelectorAll('#messages li')].some((li) => {
      if (w.notice !== undefined) return li.querySelector('.notice')?.textContent === w.notice;
      return li.querySelector('.from')?.textContent === w.from && li.querySelector('.text')?.textContent === w.text;
    }), want, { timeout: STEP_MS });
  } catch (err) {
    const seen = JSON.stringify(await lines(user.page).catch(() => 'page gone'));
    throw new Error(`${user.name} did not see ${what} within ${STEP_MS} ms; messages: ${seen}\n${err.message}`);
  }
}

async function screenshot(user, mode) {
  await user.page.screenshot({ path: path.join(artifacts, `${mode}-${user.name}.png`), fullPage: true, timeout: STEP_MS })
    .catch((e) => console.error(`screenshot of ${user.name} failed: ${e.message}`));
}

// ---- header checks --------------------------------------------------------------------------

// The encoding a server that prefers zstd, then br, then gzip must pick for this Accept-Encoding
// (Chromium sends no q-values).
function expectedEncoding(acceptEncoding) {
  const offered = (acceptEncoding ?? '').split(',').map((t) => t.split(';')[0].trim().toLowerCase());
  return ['zstd', 'br', 'gzip'].find((e) => offered.includes(e)) ?? null;
}

function hasToken(value, token) {
  return (value ?? '').split(',').some((t) => t.trim().toLowerCase() === token.toLowerCase());
}

async function checkHeaders(user, mode, report) {
  const { page, responses } = user;
  const html = responses.get('/');
  const js = responses.get('/app.js');
  assert.ok(html, 'the page load produced no response for /');
  assert.ok(js, 'the page load produced no response for /app.js');

  const htmlHeaders = await html.allHeaders();
  const jsHeaders = await js.allHeaders();
  const jsRequest = await js.request().allHeaders();
  report.push({ mode, what: 'GET / (page load)', status: html.status(), headers: htmlHeaders });
  report.push({ mode, what: 'GET /app.js (page load)', status: js.status(), request: jsRequest, headers: jsHeaders });

  assert.equal(htmlHeaders['x-content-type-options']?.toLowerCase(), 'nosniff', 'index.html lacks X-Content-Type-Options: nosniff');
  assert.match(htmlHeaders['content-type'] ?? '', /^text\/html\s*;\s*charset=utf-8$/i, 'index.html Content-Type');
  assert.ok(htmlHeaders['cache-control'], 'index.html lacks Cache-Control');

  assert.equal(js.status(), 200, `GET /app.js answered ${js.status()}`);
  assert.match(jsHeaders['content-type'] ?? '', /^(text|application)\/javascript\s*;\s*charset=utf-8$/i, 'app.js Content-Type');
  const want = expectedEncoding(jsRequest['accept-encoding']);
  assert.ok(want, `Chromium offered no zstd/br/gzip: ${jsRequest['accept-encoding']}`);
  assert.equal(jsHeaders['content-encoding'], want,
    `app.js Content-Encoding for Accept-Encoding "${jsRequest['accept-encoding']}"`);
  assert.ok(hasToken(jsHeaders.vary, 'Accept-Encoding'), `app.js Vary: ${jsHeaders.vary}`);
  assert.match(jsHeaders.etag ?? '', /^(W\/)?"[^"]*"$/, `app.js ETag: ${jsHeaders.etag}`);
  assert.ok(!Number.isNaN(Date.parse(jsHeaders['last-modified'] ?? '')), `app.js Last-Modified: ${jsHeaders['last-modified']}`);
  assert.ok(jsHeaders['cache-control'], 'app.js lacks Cache-Control');

  // From inside the page: fetch() the JS file again (bypassing the HTTP cache), then make it
  // conditional on the ETag it got: the server must answer 304 with an empty body.
  const inPage = await page.evaluate(async () => {
    const get = async (init) => {
      const r = await fetch('/app.js', init);
      const body = await r.text();
      return { status: r.status, headers: Object.fromEntries(r.headers), length: body.length };
    };
    const full = await get({ cache: 'no-store' });
    const etag = full.headers.etag;
    const conditional = etag ? await get({ cache: 'no-store', headers: { 'If-None-Match': etag } }) : null;
    return { full, conditional };
  });
  report.push({ mode, what: 'fetch(/app.js) in page', ...inPage.full });
  report.push({ mode, what: 'fetch(/app.js, If-None-Match) in page', ...inPage.conditional });
  assert.equal(inPage.full.status, 200);
  assert.equal(inPage.full.headers['content-encoding'], want, 'in-page fetch: Content-Encoding');
  assert.ok(hasToken(inPage.full.headers.vary, 'Accept-Encoding'), 'in-page fetch: Vary');
  assert.ok(inPage.full.headers['cache-control'], 'in-page fetch: Cache-Control');
  assert.ok(inPage.full.length > 1000, `in-page fetch: decoded body of ${inPage.full.length} characters`);
  assert.ok(inPage.conditional, 'in-page fetch: no ETag');
  assert.equal(inPage.conditional.status, 304, 'in-page fetch with If-None-Match: status');
  assert.equal(inPage.conditional.length, 0, 'in-page fetch with If-None-Match: body');
}

// ---- the scenario ---------------------------------------------------------------------------

async function chatScenario(mode) {
  const { child, port } = await startServer(mode);
  const base = `${mode === 'tls' ? 'https' : 'http'}://localhost:${port}`;
  const channel = `t-${randomBytes(6).toString('hex')}`;
  const consoleLines = [];
  const pageErrors = [];   // uncaught exceptions in the page: must stay empty
  const report = [];
  const users = [];
  try {
    const alice = await openUser(base, 'alice', mode, consoleLines, pageErrors);
    users.push(alice);
    const bob = await openUser(base, 'bob', mode, consoleLines, pageErrors);
    users.push(bob);

    await checkHeaders(alice, mode, report);

    await join(alice, channel);
    await join(bob, channel);
    assert.match(await alice.page.textContent('#status'), new RegExp(`Connected to #${channel} as alice`));

    const m1 = `hello from alice ${randomBytes(3).toString('hex')}`;
    const m2 = `hi alice, bob here ${randomBytes(3).toString('hex')}`;
    await send(alice, m1);
    await waitForLine(bob, { from: 'alice', text: m1 }, 'alice\'s message');
    await send(bob, m2);
    await waitForLine(alice, { from: 'bob', text: m2 }, 'bob\'s message');
    await waitForLine(bob, { notice: 'alice joined' }, 'alice\'s join (history)');
    // Each sees its own message once, as sent.
    await waitForLine(alice, { from: 'alice', text: m1 }, 'its own message');
    await waitForLine(bob, { from: 'bob', text: m2 }, 'its own message');

    const carol = await openUser(base, 'carol', mode, consoleLines, pageErrors);
    users.push(carol);
    await join(carol, channel);
    await waitForLine(carol, { from: 'alice', text: m1 }, 'alice\'s message from history');
    await waitForLine(carol, { from: 'bob', text: m2 }, 'bob\'s message from history');
    await waitForLine(carol, { notice: 'alice joined' }, 'alice\'s join from history');
    await waitForLine(carol, { notice: 'bob joined' }, 'bob\'s join from history');
    const carolLines = await lines(carol.page);
    const i1 = carolLines.findIndex((l) => l.text === m1);
    const i2 = carolLines.findIndex((l) => l.text === m2);
    assert.ok(i1 < i2, `history out of order: ${JSON.stringify(carolLines)}`);
    assert.equal(carolLines.filter((l) => l.text === m1).length, 1, 'alice\'s message shown twice');

    // And the late joiner takes part live.
    const m3 = `carol says hi ${randomBytes(3).toString('hex')}`;
    await send(carol, m3);
    await waitForLine(alice, { from: 'carol', text: m3 }, 'carol\'s live message');
    await waitForLine(bob, { from: 'carol', text: m3 }, 'carol\'s live message');
    assert.deepEqual(pageErrors, [], 'uncaught exceptions in the page');
  } finally {
    for (const u of users) await screenshot(u, mode);
    writeFileSync(path.join(artifacts, `console-${mode}.log`), consoleLines.join('\n') + '\n');
    writeFileSync(path.join(artifacts, `headers-${mode}.json`), JSON.stringify(report, null, 2) + '\n');
    for (const u of users) await u.context.close().catch(() => {});
    await stopServer(child);
  }
  assert.ok(child.exitCode === 0 || child.signalCode === 'SIGTERM',
    `server did not stop cleanly on SIGTERM (code ${child.exitCode}, signal ${child.signalCode})`);
}

test('demo chat over TLS (https + wss)', { timeout: TEST_MS }, () => chatScenario('tls'));
test('demo chat over plain HTTP (http + ws)', { timeout: TEST_MS }, () => chatScenario('plain'));
