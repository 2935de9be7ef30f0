/**
 * The dashboard in a real headless browser (Debian's chromium through playwright-core): sign
 * in by API key (the form) and by a lead's one-time link (once only), the headline figures
 * equal the metrics API's for seeded data, the range picker changes the requests and the
 * figures, sign-out; no console errors, no request leaves the service's origin. Saves the
 * seeded dashboard (docs/dashboard.png, which the README shows, with UPDATE_SCREENSHOTS=1).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import supertest from 'supertest';
import { makeAgent, makeKey, makeWorkspace } from '../helpers/factories.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const FIGURES = ['open', 'unassigned', 'at_risk', 'breached', 'frt_p50', 'frt_p90', 'sla', 'csat'] as const;

describe('Dashboard in a browser', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  // Seeded on a fake clock moved through the past month, then left at the real now: the page's
  // range comes from the browser's clock.
  const clock = new FakeClock(new Date());
  const server = http.createServer();
  let base: string;
  let t: TestApp;
  let api: supertest.Agent;
  let key: { token: string; auth: string };
  let wsId: string;
  let browser: Browser;

  async function seed(): Promise<void> {
    const ok = async (method: 'post' | 'patch', p: string, body: object) => {
      const res = await api[method](p).set('Authorization', key.auth).send(body);
      assert.ok(res.status < 300, `${method} ${p}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };
    const now = Date.now();
    await ok('post', '/v1/sla-policies', {
      name: 'Standard', is_default: true, warn_at_percent: 80, pause_while_waiting_on_customer: false,
      targets: Object.fromEntries(['low', 'normal', 'high', 'urgent'].map((p) => [p, { first_response_minutes: 60, resolution_minutes: 8 * 60 }])),
    });
    const agents = await Promise.all(['Alex Kim', 'Bea Novak', 'Chen Li'].map((name) => makeAgent(db.knex, { workspaceId: wsId, name })));
    const priorities = ['normal', 'high', 'low', 'urgent', 'normal'];
    // 28 answered tickets over the last 27 days: slower answers further back, so 7 and 30 days differ.
    for (let i = 0; i < 28; i++) {
      const created = now - Math.floor(i) * DAY - 3 * HOUR;
      clock.set(new Date(created));
      const tk = await ok('post', '/v1/tickets', { contact: { telegram_user_id: 900_000_000 + i, first_name: `Customer ${i}` }, subject: `Question ${i}`, priority: priorities[i % 5] });
      await ok('post', `/v1/tickets/${tk.id}/assign`, { agent_id: agents[i % 3].id });
      clock.set(new Date(created + (4 + i * 3 + (i % 4) * 7) * MIN));
      await ok('post', `/v1/tickets/${tk.id}/messages`, { text: 'Looking into it' });
      if (i % 5 !== 0) {
        clock.set(new Date(created + (1 + (i % 6)) * 1.5 * HOUR));
        await ok('post', `/v1/tickets/${tk.id}/status`, { status: 'resolved' });
        assert.ok(await t.services.tickets.recordCsat(db.knex, wsId, tk.id, tk.contact.id, [5, 4, 5, 3, 5, 4, 2, 5][i % 8], clock.now()));
      }
    }
    // The live backlog: waiting, unanswered tickets of various ages, some unassigned.
    for (const [i, ageMs] of [20 * MIN, 2 * HOUR, 5 * HOUR, 30 * HOUR, 4 * DAY].entries()) {
      clock.set(new Date(now - ageMs));
      const tk = await ok('post', '/v1/tickets', { contact: { telegram_user_id: 910_000_000 + i, first_name: `Waiting ${i}` }, subject: `Waiting ${i}`, priority: priorities[(i + 1) % 5] });
      if (i % 2) await ok('post', `/v1/tickets/${tk.id}/assign`, { agent_id: agents[i % 3].id });
    }
    clock.set(new Date(now));
    await t.services.sla.sweep(db.knex, clock.now());
  }

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = createTestApp(db.knex, { clock, config: { publicUrl: base } });
    server.on('request', t.app.callback());
    api = supertest.agent(t.app.callback());
    // A sandbox workspace: replies to customers who never wrote to a bot are accepted (no Telegram here).
    wsId = (await makeWorkspace(db.knex, t.services, { sandbox: true, name: 'Acme Support' })).id;
    key = await makeKey(db.knex, t.services, { workspaceId: wsId, scopes: ['all'] });
    await seed();
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    await new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  });

  /** A fresh browser profile that records every request and every console error. */
  async function open(viewport = { width: 1280, height: 900 }): Promise<{ context: BrowserContext; page: Page; requests: string[]; errors: string[] }> {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('response', (r) => { if (r.status() === 404) errors.push(`404 ${r.url()}`); });
    return { context, page, requests, errors };
  }

  /** The figures as the page shows them (data-raw: the unformatted number). */
  const figuresOn = (page: Page) => page.evaluate((ids) => Object.fromEntries(ids.map((id) => {
    const raw = document.getElementById(`m-${id}`)!.dataset.raw;
    return [id, raw === undefined || raw === '' ? null : Number(raw)];
  })), [...FIGURES]);

  /** The same figures computed from the API (Bearer key), for the range the page asked for. */
  async function figuresFromApi(requests: string[], days: number): Promise<Record<string, number | null>> {
    const asked = requests.filter((u) => u.includes('/dashboard/api/metrics/first-response?')).map((u) => new URL(u));
    const last = asked.at(-1)!;
    const from = last.searchParams.get('from')!;
    const to = last.searchParams.get('to')!;
    assert.equal(Math.round((Date.parse(to) - Date.parse(from)) / DAY), days, 'the range the page asked for');
    const get = async (p: string) => (await api.get(p).set('Authorization', key.auth).expect(200)).body;
    const range = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
    const [frt, sla, backlog, csat] = await Promise.all([
      get(`/v1/metrics/first-response?${range}&group_by=day`), get(`/v1/metrics/sla?${range}`), get('/v1/metrics/backlog'), get(`/v1/metrics/csat?${range}`),
    ]);
    const targets = Object.values(sla.targets) as { met: number; breached: number }[];
    const decided = targets.reduce((n, x) => n + x.met + x.breached, 0);
    return {
      open: backlog.total, unassigned: backlog.unassigned, at_risk: sla.at_risk_now, breached: sla.breached_open_now,
      frt_p50: frt.overall.p50_seconds, frt_p90: frt.overall.p90_seconds,
      sla: decided ? (targets.reduce((n, x) => n + x.met, 0) / decided) * 100 : null, csat: csat.average,
    };
  }

  const loaded = (page: Page, loads: number) => page.waitForSelector(`body[data-loads="${loads}"]`, { state: 'attached' });

  it('signs in with an API key, shows the API’s figures, changes range, signs out; nothing leaves the origin, no console errors', async () => {
    const { context, page, requests, errors } = await open();
    try {
      await page.goto(`${base}/dashboard`);
      assert.equal(new URL(page.url()).pathname, '/dashboard/login', 'sent to the sign-in form');
      await page.fill('#key', key.token);
      await Promise.all([page.waitForURL(`${base}/dashboard`), page.click('button[type=submit]')]);
      await loaded(page, 1);

      const week = await figuresOn(page);
      assert.deepEqual(week, await figuresFromApi(requests, 7));
      assert.ok((week.open ?? 0) > 0 && week.frt_p50 !== null && week.csat !== null && week.sla !== null, JSON.stringify(week));
      const agents = await page.$$eval('#agents tbody tr', (rows) => rows.map((r) => r.children[0].textContent));
      assert.deepEqual(agents.sort(), ['Alex Kim', 'Bea Novak', 'Chen Li']);
      // The README's picture is refreshed on request only, so a test run leaves the checkout clean.
      const shot = process.env.UPDATE_SCREENSHOTS ? path.join(ROOT, 'docs/dashboard.png') : path.join(os.tmpdir(), 'topicdesk-dashboard.png');
      await page.screenshot({ path: shot, fullPage: true });

      const before = requests.length;
      await page.selectOption('#range', '30');
      await loaded(page, 2);
      assert.equal(await page.getAttribute('body', 'data-range'), '30');
      assert.ok(requests.slice(before).some((u) => u.includes('/dashboard/api/metrics/csat?')), 'asked again');
      const month = await figuresOn(page);
      assert.deepEqual(month, await figuresFromApi(requests, 30));
      assert.notEqual(month.frt_p90, week.frt_p90, 'a longer range holds the slower, older answers');

      await Promise.all([page.waitForURL(`${base}/dashboard/login`), page.click('#signout')]);
      await page.goto(`${base}/dashboard`);
      assert.equal(new URL(page.url()).pathname, '/dashboard/login', 'signed out');

      assert.deepEqual(errors, []);
      const foreign = requests.filter((u) => new URL(u).origin !== base);
      assert.deepEqual(foreign, [], 'every request stays on the service');
      assert.ok(requests.some((u) => u.endsWith('/dashboard/assets/chart.umd.min.js')));
    } finally {
      await context.close();
    }
  });

  it('signs in by a lead’s one-time link once; a second use is refused; readable on a phone', async () => {
    const lead = await makeAgent(db.knex, { workspaceId: wsId, name: 'Lena Lead' });
    await db.knex('agents').where({ id: lead.id }).update({ role: 'lead' });
    const link = await t.services.dashboard.loginLink(db.knex, wsId, { ...lead, role: 'lead' });
    assert.ok(link.url.startsWith(`${base}/dashboard/login?token=`));

    const phone = await open({ width: 390, height: 844 });
    try {
      await phone.page.goto(link.url);
      assert.match(await phone.page.textContent('main') ?? '', /Lena Lead/);
      await Promise.all([phone.page.waitForURL(`${base}/dashboard`), phone.page.click('#continue')]);
      await loaded(phone.page, 1);
      assert.match(await phone.page.textContent('.who') ?? '', /Lena Lead/);
      assert.deepEqual(await figuresOn(phone.page), await figuresFromApi(phone.requests, 7));
      const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no sideways scrolling on a phone (${overflow}px too wide)`);
      assert.deepEqual(phone.errors, []);
      assert.deepEqual(phone.requests.filter((u) => new URL(u).origin !== base), []);
    } finally {
      await phone.context.close();
    }

    const again = await open();
    try {
      const res = await again.page.goto(link.url);
      assert.equal(res?.status(), 401);
      assert.match(await again.page.textContent('#error') ?? '', /not valid any more/);
      await again.page.goto(`${base}/dashboard`);
      assert.equal(new URL(again.page.url()).pathname, '/dashboard/login', 'no session from a spent link');
    } finally {
      await again.context.close();
    }
  });
});
