/**
 * /docs in a real browser (Debian's chromium through playwright-core): the OpenAPI renderer
 * served by topicdesk itself draws the document offline — every request stays on the service's
 * origin, nothing breaks the content security policy, no console errors — and shows the
 * operations and the named shapes.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { createTestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

describe('/docs in a browser', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  const server = http.createServer();
  let base: string;
  let browser: Browser;

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    server.on('request', createTestApp(db.knex).app.callback());
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    await new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  });

  it('renders the API reference from the service alone: operations, tags and schemas, no outside request, no console error', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}/docs`, { waitUntil: 'networkidle' });
    // Swagger UI draws one block per operation once it has loaded /v1/openapi.json.
    await page.waitForSelector('.opblock', { timeout: 20_000 });
    const operations = await page.locator('.opblock').count();
    assert.ok(operations >= 60, `${operations} operations drawn`);
    const text = await page.locator('body').innerText();
    for (const words of ['/v1/tickets', '/v1/canned-responses', '/v1/sla-policies', '/v1/metrics/first-response']) assert.ok(text.includes(words), words);
    assert.ok(await page.locator('text=Ticket').first().isVisible(), 'the named Ticket schema is listed');
    assert.deepEqual(requests.filter((u) => !u.startsWith(base) && !u.startsWith('data:')), [], 'every request stays on the service');
    assert.deepEqual(errors, []);
    await context.close();
  });
});
