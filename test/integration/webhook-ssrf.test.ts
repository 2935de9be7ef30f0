/**
 * The SSRF guard at send time (issue 5, SPEC §7; src/webhooks/webhook-sender.ts): with
 * private targets refused, the sender never connects to a loopback, private, link-local,
 * metadata or unspecified address — whether the URL names it literally, through a real name
 * (localhost), through a name whose DNS answers it (injected `lookup`), or through a name
 * whose answer changes between two sends (DNS rebinding). Every case is aimed at a live
 * receiver on 127.0.0.1 (or ::1) that must never see a request; with private targets allowed
 * the same URLs reach it, so each refusal is the guard's doing.
 *
 * Then end to end: an endpoint registered under a public-looking name, whose DNS answers
 * 127.0.0.1 at send time, gets a failed attempt saying "refused by the SSRF guard", is
 * retried on the schedule, and its target never sees a connection.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo, type LookupFunction } from 'node:net';
import { SYSTEM } from '../../src/kernel/actor.js';
import type { AttemptResult } from '../../src/webhooks/retry-policy.js';
import { createWebhookSender, type WebhookSender } from '../../src/webhooks/webhook-sender.js';
import { createWebhookWorker } from '../../src/webhooks/webhook-worker.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeKey, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';

const GUARD = /^refused by the SSRF guard: the target address \S+ is not public \(loopback, private, link-local, CGNAT or metadata\)$/;
/** A public address (example.com's); nothing in these tests needs it to answer. */
const PUBLIC_ADDRESS = '93.184.215.14';
const TIMEOUT_MS = 1500;

interface Answer { address: string; family: 4 | 6 }
interface LookupCall { hostname: string; all: boolean }

/**
 * A DNS stand-in: `answer(hostname, n)` gives the addresses for the n-th lookup of that name
 * (1-based). It answers in whichever form Node asks for (`all: true` → every address).
 */
function fakeDns(answer: (hostname: string, n: number) => Answer[]): { lookup: LookupFunction; calls: LookupCall[] } {
  const calls: LookupCall[] = [];
  const perHost = new Map<string, number>();
  const lookup = ((hostname: string, options: any, callback: any) => {
    const cb = typeof options === 'function' ? options : callback;
    const all = typeof options === 'object' && options !== null && options.all === true;
    calls.push({ hostname, all });
    const n = (perHost.get(hostname) ?? 0) + 1;
    perHost.set(hostname, n);
    const addresses = answer(hostname, n);
    process.nextTick(() => {
      if (addresses.length === 0) {
        cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
      } else if (all) {
        cb(null, addresses);
      } else {
        cb(null, addresses[0].address, addresses[0].family);
      }
    });
  }) as LookupFunction;
  return { lookup, calls };
}

const v4 = (address: string): Answer => ({ address, family: 4 });

/** A plain HTTP server on ::1 (the receiver helper listens on 127.0.0.1 only), counting requests. */
async function startV6Listener(): Promise<{ port: number; hits: () => number; close: () => Promise<void> } | null> {
  let hits = 0;
  const server = http.createServer((_req, res) => { hits++; res.end('ok'); });
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, '::1', () => resolve(true));
  });
  if (!ok) return null;
  return {
    port: (server.address() as AddressInfo).port,
    hits: () => hits,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** A TCP port that counts connections (and drops them): proof that nothing even connected. */
async function startTap(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => { connections++; sockets.add(s); s.destroy(); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

const BODY = JSON.stringify({ id: 'evt_ssrf', event: 'ping', data: {} });
const HEADERS = { 'webhook-id': 'evt_ssrf' };

describe('webhook SSRF guard at send time', () => {
  let receiver: Receiver;
  const senders: WebhookSender[] = [];
  /** A sender as production builds it (private targets refused), with a short time budget. */
  const strictSender = (lookup?: LookupFunction) => {
    const s = createWebhookSender({ allowPrivateTargets: false, timeoutMs: TIMEOUT_MS, maxSocketsPerHost: 8, lookup });
    senders.push(s);
    return s;
  };
  const laxSender = (lookup?: LookupFunction) => {
    const s = createWebhookSender({ allowPrivateTargets: true, timeoutMs: TIMEOUT_MS, maxSocketsPerHost: 8, lookup });
    senders.push(s);
    return s;
  };

  before(async () => { receiver = await startReceiver(); });
  after(async () => {
    for (const s of senders.splice(0)) s.close();
    await receiver.close();
  });

  function assertRefused(r: AttemptResult, address?: string): void {
    assert.equal(r.statusCode, null, `an HTTP answer came back: ${JSON.stringify(r)}`);
    assert.match(r.error ?? '', GUARD);
    if (address) assert.ok(r.error!.includes(`the target address ${address} `), r.error!);
    assert.equal(r.excerpt, null);
    assert.equal(r.retryAfterSeconds, null);
  }

  /** Sends to `url` with the strict sender and checks the refusal and that the receiver saw nothing. */
  async function refused(url: string, opts: { lookup?: LookupFunction; address?: string } = {}): Promise<AttemptResult> {
    const before = receiver.requests.length;
    const r = await strictSender(opts.lookup).post(url, HEADERS, BODY);
    assertRefused(r, opts.address);
    assert.equal(receiver.requests.length, before, 'the receiver got a request');
    return r;
  }

  describe('literal addresses', () => {
    it('http://127.0.0.1:<port> (the receiver itself) is refused', async () => {
      await refused(`http://127.0.0.1:${receiver.port}/hook`, { address: '127.0.0.1' });
    });

    it('http://10.0.0.1 (private) is refused without connecting', async () => {
      await refused('http://10.0.0.1/hook', { address: '10.0.0.1' });
    });

    it('http://169.254.169.254 (cloud metadata) is refused', async () => {
      await refused('http://169.254.169.254/latest/meta-data/iam/security-credentials/', { address: '169.254.169.254' });
    });

    it('http://100.100.100.200 (CGNAT, Alibaba metadata) and http://172.16.0.1 / 192.168.1.1 are refused', async () => {
      await refused('http://100.100.100.200/latest/meta-data', { address: '100.100.100.200' });
      await refused('http://172.16.0.1/hook', { address: '172.16.0.1' });
      await refused('http://192.168.1.1/hook', { address: '192.168.1.1' });
    });

    it('http://[::1]:<port> is refused (and a listener on ::1 sees nothing)', async () => {
      const v6 = await startV6Listener();
      try {
        const port = v6?.port ?? receiver.port;
        await refused(`http://[::1]:${port}/hook`, { address: '::1' });
        if (v6) {
          assert.equal(v6.hits(), 0);
          // The listener is reachable when private targets are allowed: the refusal above was the guard's.
          const r = await laxSender().post(`http://[::1]:${port}/hook`, HEADERS, BODY);
          assert.equal(r.statusCode, 200, JSON.stringify(r));
          assert.equal(v6.hits(), 1);
        }
      } finally {
        await v6?.close();
      }
    });

    it('http://[::ffff:127.0.0.1]:<port> (IPv4-mapped loopback) is refused', async () => {
      await refused(`http://[::ffff:127.0.0.1]:${receiver.port}/hook`);
    });

    it('http://0.0.0.0:<port> (reaches local listeners on Linux) is refused', async () => {
      await refused(`http://0.0.0.0:${receiver.port}/hook`, { address: '0.0.0.0' });
    });

    it('https to a literal private address is refused too', async () => {
      await refused(`https://127.0.0.1:${receiver.port}/hook`, { address: '127.0.0.1' });
      await refused('https://10.0.0.1/hook', { address: '10.0.0.1' });
    });
  });

  describe('host names (the address connected to is checked)', () => {
    it('http://localhost:<port> is refused after real resolution', async () => {
      await refused(`http://localhost:${receiver.port}/hook`);
    });

    it('a host name whose DNS answers 127.0.0.1 is refused', async () => {
      const dns = fakeDns(() => [v4('127.0.0.1')]);
      await refused(`http://hooks.example.test:${receiver.port}/hook`, { lookup: dns.lookup, address: '127.0.0.1' });
      assert.deepEqual(dns.calls.map((c) => c.hostname), ['hooks.example.test'], 'the injected DNS was asked');
    });

    it('a host name whose DNS answers 169.254.169.254 or 10.0.0.1 is refused', async () => {
      for (const address of ['169.254.169.254', '10.1.2.3', '100.64.0.1']) {
        const dns = fakeDns(() => [v4(address)]);
        await refused('http://metadata.example.test/latest', { lookup: dns.lookup, address });
        assert.equal(dns.calls.length, 1);
      }
    });

    it('a host name whose DNS answers ::1 is refused', async () => {
      const dns = fakeDns(() => [{ address: '::1', family: 6 }]);
      await refused(`http://six.example.test:${receiver.port}/hook`, { lookup: dns.lookup, address: '::1' });
    });

    it('several answers (all: true) with one private among public ones: refused', async () => {
      for (const answers of [
        [v4(PUBLIC_ADDRESS), v4('127.0.0.1')],
        [v4('127.0.0.1'), v4(PUBLIC_ADDRESS)],
        [v4(PUBLIC_ADDRESS), { address: '2606:4700:4700::1111', family: 6 as const }, { address: '::ffff:127.0.0.1', family: 6 as const }],
      ]) {
        const dns = fakeDns(() => answers);
        await refused(`http://multi.example.test:${receiver.port}/hook`, { lookup: dns.lookup });
        assert.equal(dns.calls.length, 1);
        assert.equal(dns.calls[0].all, true, 'Node asked for every address (autoSelectFamily): the guard must check them all');
      }
    });

    it('DNS rebinding: public on the first lookup, 127.0.0.1 on the second → the second send is refused', async () => {
      const dns = fakeDns((_host, n) => [v4(n === 1 ? PUBLIC_ADDRESS : '127.0.0.1')]);
      const sender = strictSender(dns.lookup);
      const url = `http://rebind.example.test:${receiver.port}/hook`;

      // There is no internet here: the first send may fail for network reasons (or time out),
      // but the guard must let a public address through.
      const first = await sender.post(url, HEADERS, BODY);
      assert.doesNotMatch(first.error ?? '', /SSRF/, `a public address was refused: ${first.error}`);

      const second = await sender.post(url, HEADERS, BODY);
      assertRefused(second, '127.0.0.1');
      assert.equal(dns.calls.length, 2, 'each send resolved the name again (nothing cached past the guard)');
      assert.equal(receiver.requests.length, 0, 'the receiver never got a request');
    });

    it('a name that does not resolve is an ordinary failure, not an SSRF refusal', async () => {
      const dns = fakeDns(() => []);
      const r = await strictSender(dns.lookup).post('http://nowhere.example.test/hook', HEADERS, BODY);
      assert.equal(r.statusCode, null);
      assert.equal(r.error, 'the host name does not resolve (ENOTFOUND)');
    });
  });

  describe('with WEBHOOK_ALLOW_PRIVATE_TARGETS=true', () => {
    it('the same receiver URLs are reached: literal, IPv4-mapped, localhost and an injected name', async () => {
      const dns = fakeDns(() => [v4('127.0.0.1')]);
      const sender = laxSender(dns.lookup);
      const before = receiver.requests.length;
      const urls = [
        `http://127.0.0.1:${receiver.port}/hook`,
        `http://[::ffff:127.0.0.1]:${receiver.port}/hook`,
        `http://localhost:${receiver.port}/hook`,
        `http://hooks.example.test:${receiver.port}/hook`,
      ];
      for (const url of urls) {
        const r = await sender.post(url, HEADERS, BODY);
        assert.equal(r.statusCode, 200, `${url}: ${JSON.stringify(r)}`);
        assert.equal(r.error, null);
        assert.equal(r.excerpt, 'ok');
      }
      assert.equal(receiver.requests.length - before, urls.length);
      assert.ok(receiver.requests.slice(before).every((q) => q.body === BODY && q.headers['webhook-id'] === 'evt_ssrf'));
    });

    it('DNS rebinding to 127.0.0.1 is then reached (so the refusal above is the guard, not the network)', async () => {
      const dns = fakeDns((_host, n) => [v4(n === 1 ? PUBLIC_ADDRESS : '127.0.0.1')]);
      const sender = laxSender(dns.lookup);
      const url = `http://rebind.example.test:${receiver.port}/hook`;
      await sender.post(url, HEADERS, BODY);
      const before = receiver.requests.length;
      const second = await sender.post(url, HEADERS, BODY);
      assert.equal(second.statusCode, 200, JSON.stringify(second));
      assert.equal(receiver.requests.length - before, 1);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('end to end: an endpoint whose name resolves to loopback at send time', () => {
    const db = useTestDatabase();
    const clock = new FakeClock('2026-11-21T12:00:00.000Z');
    let t: TestApp;
    let tap: Awaited<ReturnType<typeof startTap>>;

    before(async () => {
      // Production settings: private targets refused (at registration and at send).
      t = createTestApp(db.knex, { clock, config: { webhooks: { allowPrivateTargets: false } } });
      tap = await startTap();
    });
    after(async () => { await tap.close(); });

    it('logs a failed attempt "refused by the SSRF guard", retries it on the schedule, and never connects', async () => {
      assert.equal(t.config.webhooks.allowPrivateTargets, false);
      const ws = await makeWorkspace(db.knex, t.services);
      const key = await makeKey(db.knex, t.services, { workspaceId: ws.id, scopes: ['manage:webhooks'] });
      const url = `https://hooks.example.test:${tap.port}/topicdesk`;

      // Registration cannot know what the name will resolve to: it passes.
      const { endpoint } = await t.services.webhooks.create(db.knex, ws.id, { url, events: ['contact.created'] });
      assert.equal(endpoint.url, url);

      clock.advance(1000);
      await t.services.contacts.upsert(db.knex, ws.id, { telegram_user_id: 4_200_001, name: 'Mallory' }, SYSTEM);

      const dns = fakeDns(() => [v4('127.0.0.1')]);
      const sender = createWebhookSender({ allowPrivateTargets: false, timeoutMs: TIMEOUT_MS, maxSocketsPerHost: 8, lookup: dns.lookup });
      senders.push(sender);
      const worker = createWebhookWorker({
        db: db.knex, logger: t.deps.logger, clock, config: t.config.webhooks, webhooks: t.services.webhooks, sender, random: () => 0.5,
      });
      try {
        assert.deepEqual(await worker.drain(), { events: 1, attempts: 1 });
        const firstAt = clock.now();
        let list = await t.request.get(`/v1/webhooks/${endpoint.id}/deliveries`).set('Authorization', key.auth).expect(200);
        assert.equal(list.body.items.length, 1);
        let d = list.body.items[0];
        assert.equal(d.event, 'contact.created');
        assert.equal(d.status, 'failed');
        assert.equal(d.attempts.length, 1);
        assert.equal(d.attempts[0].status_code, null);
        assert.equal(d.attempts[0].response_excerpt, null);
        assert.equal(d.attempts[0].at, firstAt.toISOString());
        assert.match(d.attempts[0].error, GUARD);
        assert.match(d.attempts[0].error, /the target address 127\.0\.0\.1 /);
        // Retried later: the first step of the schedule (30 s; random() = 0.5 means no jitter).
        assert.equal(d.next_attempt_at, new Date(firstAt.getTime() + 30_000).toISOString());
        assert.deepEqual(dns.calls.map((c) => c.hostname), ['hooks.example.test']);

        // Not due before the schedule says so.
        clock.advance(29_000);
        assert.deepEqual(await worker.drain(), { events: 0, attempts: 0 });

        // Due: attempted again, refused again, the next wait is the schedule's second step.
        clock.advance(1_000);
        assert.deepEqual(await worker.drain(), { events: 0, attempts: 1 });
        const secondAt = clock.now();
        const one = await t.request.get(`/v1/webhook-deliveries/${d.id}`).set('Authorization', key.auth).expect(200);
        d = one.body;
        assert.equal(d.status, 'failed');
        assert.equal(d.attempts.length, 2);
        assert.match(d.attempts[1].error, GUARD);
        assert.equal(d.next_attempt_at, new Date(secondAt.getTime() + 120_000).toISOString());
        assert.equal(dns.calls.length, 2, 'the name was resolved again for the retry');

        // The endpoint stays enabled (a refusal is a failure like any other) and is marked failing.
        const ep = await t.request.get(`/v1/webhooks/${endpoint.id}`).set('Authorization', key.auth).expect(200);
        assert.equal(ep.body.enabled, true);
        assert.equal(ep.body.failing_since, firstAt.toISOString());

        assert.equal(tap.connections(), 0, 'no connection ever reached the target port');
        list = await t.request.get(`/v1/webhooks/${endpoint.id}/deliveries`).set('Authorization', key.auth).expect(200);
        assert.equal(list.body.items.length, 1, 'still one delivery: retried, not duplicated');
      } finally {
        await worker.stop();
      }

      // Control: the same delivery with a sender that allows private targets does connect to the
      // tap (and fails the TLS handshake there) — so "no connection" above was the guard's doing.
      const laxDns = fakeDns(() => [v4('127.0.0.1')]);
      const lax = createWebhookSender({ allowPrivateTargets: true, timeoutMs: TIMEOUT_MS, maxSocketsPerHost: 8, lookup: laxDns.lookup });
      senders.push(lax);
      const control = createWebhookWorker({
        db: db.knex, logger: t.deps.logger, clock, config: t.config.webhooks, webhooks: t.services.webhooks, sender: lax, random: () => 0.5,
      });
      try {
        clock.advance(120_000);
        assert.deepEqual(await control.drain(), { events: 0, attempts: 1 });
        assert.equal(tap.connections(), 1);
        const row = await db.knex('webhook_deliveries').where({ endpoint_id: endpoint.id }).first();
        assert.equal(row.status, 'failed');
        assert.equal(row.attempts.length, 3);
        assert.doesNotMatch(row.attempts[2].error, /SSRF/);
      } finally {
        await control.stop();
      }
    });

    it('registration itself refuses the literal forms (422 validation_error on url)', async () => {
      const ws = await makeWorkspace(db.knex, t.services);
      const key = await makeKey(db.knex, t.services, { workspaceId: ws.id, scopes: ['manage:webhooks'] });
      for (const url of ['https://127.0.0.1/hook', 'https://10.0.0.1/hook', 'https://169.254.169.254/latest', 'https://[::1]/hook',
        'https://[::ffff:127.0.0.1]/hook', 'https://0.0.0.0/hook', 'https://localhost/hook', `http://hooks.example.test/hook`]) {
        const res = await t.request.post('/v1/webhooks').set('Authorization', key.auth).send({ url, events: ['*'] });
        assert.equal(res.status, 422, `${url}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.code, 'validation_error');
        assert.equal(res.body.details[0].field, 'url');
      }
      const ok = await t.request.post('/v1/webhooks').set('Authorization', key.auth).send({ url: 'https://hooks.example.test/hook', events: ['*'] });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
    });
  });
});
