// page.mjs — drives crmblob's page in Debian's headless chromium with
// playwright-core (run by tests/http/test_page_browser.py, which starts the
// server, seeds it and reads the JSON this prints on its last line).
//
// argv[2]: a JSON object {base, out, chromium, editor: [user, pw],
// viewer: [user, pw], wrongMessage, jpeg, png, perfCount, docs}.
// Each step is named; the first that fails ends the run with its name and
// reason on stderr and exit status 1. Screenshots go to `out`.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2]);
const result = { steps: [], perf: {} };
let step = '';

const args = process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [];
const browser = await chromium.launch({ executablePath: cfg.chromium, headless: true, args });

async function run(name, fn) {
  step = name;
  const t0 = Date.now();
  await fn();
  result.steps.push([name, Date.now() - t0]);
}

async function context(opts = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-US', ...opts });
  const page = await ctx.newPage();
  page.on('dialog', (d) => d.accept());
  page.on('pageerror', (e) => { result.pageErrors = (result.pageErrors || []).concat(String(e)); });
  page.on('console', (m) => {
    // a refused CSP would show here: none may happen
    if (/Content Security Policy/i.test(m.text())) result.cspViolations = (result.cspViolations || []).concat(m.text());
  });
  return { ctx, page };
}

const shot = (page, name) => page.screenshot({ path: path.join(cfg.out, `${name}.png`), fullPage: false });

async function signIn(page, [user, pw]) {
  await page.goto(cfg.base + '/');
  await page.waitForSelector('#login-form:visible');
  await page.fill('#login-user', user);
  await page.fill('#login-password', pw);
  await page.click('#login-form button[type=submit]');
}

// The list view's timeline: list-start → list-complete, and what its
// picture requests cost (transferSize: bytes on the wire, headers included).
async function listFigures(page) {
  return page.evaluate(() => {
    const m = performance.measure('list', 'list-start', 'list-complete');
    const start = performance.getEntriesByName('list-start')[0].startTime;
    const pics = performance.getEntriesByType('resource').filter((r) => r.name.includes('/Image') && r.startTime >= start);
    const imgs = [...document.querySelectorAll('#rows img.thumb')];
    return {
      ms: m.duration,
      rows: imgs.length,
      shown: imgs.filter((i) => i.dataset.loaded === '1' && i.naturalWidth > 0).length,
      pictureRequests: pics.length,
      allVariants: pics.every((r) => /[?&]w=\d+/.test(r.name) && /[?&]h=\d+/.test(r.name)),
      transferBytes: pics.reduce((s, r) => s + r.transferSize, 0),
      bodyBytes: pics.reduce((s, r) => s + r.encodedBodySize, 0),
    };
  });
}

// Every picture answer of the page while fn runs, from the network itself
// (CDP): the status the server sent (responseReceivedExtraInfo: a 304 the
// cache turned into its stored 200 shows as 304 here) and the bytes
// received, headers included.
async function pictureTraffic(ctx, page, fn) {
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Network.enable');
  const reqs = new Map();
  const get = (id) => reqs.get(id) || reqs.set(id, { status: 0, bytes: 0, picture: false }).get(id);
  cdp.on('Network.requestWillBeSent', (e) => { if (e.request.url.includes('/Image')) get(e.requestId).picture = true; });
  cdp.on('Network.responseReceivedExtraInfo', (e) => { get(e.requestId).status = e.statusCode; });
  cdp.on('Network.loadingFinished', (e) => { get(e.requestId).bytes = e.encodedDataLength; });
  await fn();
  await new Promise((r) => setTimeout(r, 100));
  await cdp.detach();
  return [...reqs.values()].filter((r) => r.picture);
}

const listDone = (page, key) => page.waitForFunction((k) => document.body.dataset.list === k, key, { timeout: 20000 });

try {
  fs.mkdirSync(cfg.out, { recursive: true });
  const { ctx, page } = await context();

  await run('wrong password shows the server message', async () => {
    await signIn(page, [cfg.editor[0], 'not-the-password']);
    await page.waitForSelector('#message:visible');
    assert.equal(await page.textContent('#message'), cfg.wrongMessage);
    assert.ok(await page.isVisible('#login-form'));
    await shot(page, 'login');
  });

  await run('sign in', async () => {
    await page.fill('#login-password', cfg.editor[1]);
    await page.click('#login-form button[type=submit]');
    await listDone(page, `Person:0::${cfg.perfCount}`);
    const cookies = await ctx.cookies();
    const session = cookies.find((c) => c.name === 'crmblob_session');
    assert.ok(session.httpOnly, 'session cookie HttpOnly');
    assert.equal(session.sameSite, 'Strict');
  });

  await run('first list: every thumbnail shown, variants only', async () => {
    const f = await listFigures(page);
    assert.equal(f.rows, cfg.perfCount);
    assert.equal(f.shown, cfg.perfCount);
    assert.ok(f.allVariants, 'a list asks for w/h variants only');
    result.perf.first = f;
    await shot(page, 'list');
  });

  await run('list with a cold browser cache (variants made on the server)', async () => {
    // three fresh browsers (empty caches): the median is the figure, so
    // that one slow moment of a shared machine does not decide it
    const runs = [];
    let c2;
    for (let i = 0; i < 3; i++) {
      if (c2) await c2.ctx.close();
      c2 = await context();
      await signIn(c2.page, cfg.editor);
      await listDone(c2.page, `Person:0::${cfg.perfCount}`);
      runs.push(await listFigures(c2.page));
    }
    runs.sort((a, b) => a.ms - b.ms);
    result.perf.coldBrowserRuns = runs.map((r) => r.ms);
    result.perf.coldBrowser = runs[1];
    // the reload: pictures revalidated, none sent again
    const traffic = await pictureTraffic(c2.ctx, c2.page, async () => {
      await c2.page.reload();
      await listDone(c2.page, `Person:0::${cfg.perfCount}`);
    });
    result.perf.reload = await listFigures(c2.page);
    result.perf.reloadStatuses = [...new Set(traffic.map((r) => r.status))];
    result.perf.reloadRequests = traffic.length;
    result.perf.reloadWireBytes = traffic.reduce((s, r) => s + r.bytes, 0);
    assert.equal(result.perf.reload.shown, cfg.perfCount);
    assert.equal(traffic.length, cfg.perfCount);
    assert.deepEqual(result.perf.reloadStatuses, [304]);
    await c2.ctx.close();
  });

  await run('create an entity', async () => {
    await page.click('#new');
    await page.fill('#c-Firstname', 'Grace');
    await page.fill('#c-Lastname', 'Hopper');
    await page.click('#create-form button[type=submit]');
    await page.waitForSelector('#detail:visible');
    assert.equal(await page.textContent('#detail-title'), 'Grace Hopper');
    assert.ok(await page.isVisible('#no-picture'));
  });

  await run('upload through the file picker, with progress', async () => {
    await page.setInputFiles('#file', cfg.jpeg);
    await page.waitForFunction(() => document.body.dataset.uploaded && !document.getElementById('picture').hidden
      && document.getElementById('picture').naturalWidth > 0, null, { timeout: 20000 });
    assert.ok(Number(await page.evaluate(() => document.body.dataset.progressEvents)) >= 1, 'upload progress events');
    assert.equal(await page.textContent('[data-field=mimeType]'), 'image/jpeg');
    await shot(page, 'detail');
  });

  await run('the thumbnail appears in the list', async () => {
    await page.click('#back');
    await listDone(page, `Person:0::${cfg.perfCount}`);
    // 51 persons now: a second page with one row, and back
    assert.equal(await page.isDisabled('#prev'), true);
    await page.click('#next');
    await listDone(page, `Person:${cfg.perfCount}::1`);
    assert.equal(await page.isDisabled('#next'), true);
    await page.click('#prev');
    await listDone(page, `Person:0::${cfg.perfCount}`);
    await page.fill('#search', 'Grace');
    await page.press('#search', 'Enter');
    await listDone(page, 'Person:0:Grace:1');
    const f = await listFigures(page);
    assert.equal(f.shown, 1);
    assert.ok(f.allVariants);
    await page.click('#rows a');
    await page.waitForSelector('#detail:visible');
  });

  await run('replace by drag and drop', async () => {
    const before = await page.evaluate(() => document.body.dataset.uploaded);
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
      const drop = document.getElementById('drop');
      for (const type of ['dragenter', 'dragover', 'drop'])
        drop.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, fs.readFileSync(cfg.png).toString('base64'));
    await page.waitForFunction((b) => document.body.dataset.uploaded !== b, before, { timeout: 20000 });
    assert.equal(await page.textContent('[data-field=mimeType]'), 'image/png');
  });

  await run('an edited Description survives a reload', async () => {
    await page.fill('#f-description', 'Portrait, 1984');
    await page.click('#save');
    await page.waitForSelector('#message.ok:visible');
    await page.reload();
    await page.waitForFunction(() => document.getElementById('f-description').value !== '' && !document.getElementById('detail').hidden);
    assert.equal(await page.inputValue('#f-description'), 'Portrait, 1984');
    assert.notEqual(await page.textContent('[data-field=updatedDate]'), '');
  });

  await run('a request without the XSRF header is refused', async () => {
    const r = await page.evaluate(async () => {
      const xsrf = document.cookie.match(/XSRF-TOKEN=([^;]+)/)[1];
      // X-Requested-With: the 401 then asks for no Basic password (a
      // headless browser would wait on that dialog)
      const h = { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' };
      const without = await fetch('/api/v1/Person/1', { headers: h });
      const withIt = await fetch('/api/v1/Person/1', { headers: { ...h, 'X-XSRF-TOKEN': xsrf } });
      return [without.status, withIt.status];
    });
    assert.deepEqual(r, [401, 200]);
  });

  await run('delete the picture, then the entity', async () => {
    await page.click('#delete-picture');
    await page.waitForSelector('#no-picture:visible');
    const url = page.url();
    await page.click('#delete-entity');
    await page.waitForSelector('#list:visible');
    const id = url.split('/').pop();
    const status = await page.evaluate(async (i) => (await fetch(`/api/v1/Person/${i}`, {
      headers: { 'X-XSRF-TOKEN': document.cookie.match(/XSRF-TOKEN=([^;]+)/)[1], 'X-Requested-With': 'XMLHttpRequest' } })).status, id);
    assert.equal(status, 404);
  });

  await run('switching language changes the labels', async () => {
    await page.selectOption('#lang', 'de');
    await page.waitForFunction(() => document.querySelector('#tabs a[href="#/Person"]').textContent === 'Personen');
    assert.equal(await page.textContent('#signout'), 'Abmelden');
    assert.equal(await page.getAttribute('html', 'lang'), 'de');
    await page.selectOption('#lang', 'nl');
    assert.equal(await page.textContent('#tabs a[href="#/Product"]'), 'Producten');
    await page.selectOption('#lang', 'en');
  });

  await run('sign out', async () => {
    await page.click('#signout');
    await page.waitForSelector('#login-form:visible');
    const s = await page.evaluate(async () => (await fetch('/api/v1/Person/1', {
      headers: { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' } })).status);
    assert.equal(s, 401);
  });
  await ctx.close();

  await run('a viewer sees no write controls; a forced write is refused', async () => {
    // a Swedish browser: the page starts in Swedish
    // ... and uses the keyboard only: type, Tab, Enter
    const v = await context({ locale: 'sv-SE' });
    await v.page.goto(cfg.base + '/');
    await v.page.waitForSelector('#login-form:visible');
    await v.page.focus('#login-user');
    await v.page.keyboard.type(cfg.viewer[0]);
    await v.page.keyboard.press('Tab');
    await v.page.keyboard.type(cfg.viewer[1]);
    await v.page.keyboard.press('Enter');
    await listDone(v.page, `Person:0::${cfg.perfCount}`);
    assert.equal(await v.page.textContent('#tabs a[href="#/Person"]'), 'Personer');
    assert.equal(await v.page.isVisible('#new'), false);
    await v.page.focus('#search');
    await v.page.keyboard.press('Tab'); // the search button
    await v.page.keyboard.press('Tab'); // the first row (no New button for a viewer)
    assert.equal(await v.page.evaluate(() => document.activeElement.closest('#rows') !== null), true);
    await v.page.keyboard.press('Enter');
    await v.page.waitForSelector('#detail:visible');
    assert.equal(await v.page.evaluate(() => document.activeElement.id), 'detail-title');
    for (const sel of ['#drop', '#file', '#save', '#delete-picture', '#delete-entity'])
      assert.equal(await v.page.isVisible(sel), false, sel);
    assert.equal(await v.page.locator('input[type=file]:visible').count(), 0);
    assert.ok(await v.page.isVisible('#read-only'));
    await shot(v.page, 'viewer');
    const forced = await v.page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const id = location.hash.split('/').pop();
      const r = await fetch(`/api/v1/Person/${id}/Image`, { method: 'PUT', body: bytes, headers: {
        'Content-Type': 'image/png', Accept: 'application/json', 'SO-Language': 'sv', 'X-Requested-With': 'XMLHttpRequest',
        'X-XSRF-TOKEN': document.cookie.match(/XSRF-TOKEN=([^;]+)/)[1] } });
      return [r.status, (await r.json()).ErrorType];
    }, fs.readFileSync(cfg.png).toString('base64'));
    assert.deepEqual(forced, [403, 'SoAccessDeniedException']);
    await v.ctx.close();
  });

  await run('a phone-sized screen', async () => {
    const p = await context({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await signIn(p.page, cfg.editor);
    await listDone(p.page, `Person:0::${cfg.perfCount}`);
    const overflow = await p.page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    assert.equal(overflow, false, 'no sideways scrolling');
    await shot(p.page, 'phone');
    await p.ctx.close();
  });

  if (cfg.docs) {
    await run('Swagger UI: Try it out on GET ImageInfo', async () => {
      const d = await context({ httpCredentials: { username: cfg.editor[0], password: cfg.editor[1] } });
      await d.page.goto(cfg.base + cfg.docs);
      await d.page.waitForSelector('.swagger-ui .opblock', { timeout: 20000 });
      const op = d.page.locator('.opblock-get', { hasText: '/ImageInfo' }).first();
      await op.locator('.opblock-summary').click();
      await op.locator('button.try-out__btn').click();
      for (const input of await op.locator('tr[data-param-name] input[type=text]').all()) {
        const row = input.locator('xpath=ancestor::tr[1]');
        const pname = await row.getAttribute('data-param-name');
        if (pname === 'entity') await input.fill('Person');
        else if (pname === 'id') await input.fill(String(cfg.docsId));
      }
      for (const sel of await op.locator('tr[data-param-name] select').all()) {
        const row = sel.locator('xpath=ancestor::tr[1]');
        if ((await row.getAttribute('data-param-name')) === 'entity') await sel.selectOption('Person');
      }
      const [resp] = await Promise.all([
        d.page.waitForResponse((r) => r.url().includes('/ImageInfo') && r.request().method() === 'GET'),
        op.locator('button.execute').click(),
      ]);
      assert.equal(resp.status(), 200);
      await shot(d.page, 'swagger');
      await d.ctx.close();
    });
  }
  if (result.cspViolations) throw new Error('CSP violations: ' + result.cspViolations.join('; '));
  if (result.pageErrors) throw new Error('page errors: ' + result.pageErrors.join('; '));
} catch (e) {
  console.error(`step "${step}" failed: ${e.stack || e}`);
  console.log(JSON.stringify(result));
  await browser.close();
  process.exit(1);
}
await browser.close();
console.log(JSON.stringify(result));
