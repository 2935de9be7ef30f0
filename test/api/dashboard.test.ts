/**
 * The dashboard's sign-in rules (SPEC §6): an API key with read:analytics or a lead's one-time
 * link (10 minutes, single use) starts a 12-hour session cookie (HttpOnly, SameSite=Lax, Secure
 * behind https) stored hashed in PostgreSQL; sign-out ends it; the page's data calls run the
 * metrics routes with the session's workspace and scopes only. The link comes from /dashboard
 * in the support group, refused to members who are not leads/admins.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import supertest from 'supertest';
import { makeAgent, makeKey, makeWorkspace } from '../helpers/factories.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { useTelegramHarness } from '../helpers/telegram-harness.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest();
const MIN = 60_000;

/** The session cookie a response sets, with its attributes. */
function sessionCookie(res: { headers: Record<string, any> }): { value: string; attrs: string[]; raw: string } | null {
  const raw = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith('td_dashboard='));
  if (!raw) return null;
  const [pair, ...attrs] = raw.split(';').map((s) => s.trim());
  return { value: pair.slice('td_dashboard='.length), attrs, raw };
}

describe('Dashboard sign-in and sessions', () => {
  const db = useTestDatabase();
  const clock = new FakeClock('2026-12-09T09:00:00.000Z');
  let t: TestApp;
  // A plain client, not t.request: that agent keeps cookies, and every test here sets its own.
  let http: supertest.SuperTest<supertest.Test>;
  before(() => {
    t = createTestApp(db.knex, { clock, config: { publicUrl: 'http://desk.test:3000' } });
    http = supertest(t.app.callback()) as any;
  });

  const signInWithKey = (key: string) => http.post('/dashboard/login').type('form').send({ key });
  const postToken = (token: string) => http.post('/dashboard/login').type('form').send({ token });
  const withCookie = (path: string, cookie: string) => http.get(path).set('Cookie', `td_dashboard=${cookie}`);
  const tokenOf = (url: string) => new URL(url).searchParams.get('token')!;

  async function desk(name: string) {
    const ws = await makeWorkspace(db.knex, t.services, { name });
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id });
    return { ws, key };
  }

  describe('by API key', () => {
    it('a key with read:analytics starts a session: HttpOnly, SameSite=Lax, Path=/dashboard, 12 h, not Secure over http', async () => {
      const { ws } = await desk('Key desk');
      const key = await makeKey(db.knex, t.services, { workspaceId: ws.id, scopes: ['read:analytics'] });
      const res = await signInWithKey(key.token);
      assert.equal(res.status, 303);
      assert.equal(res.headers.location, '/dashboard');
      const cookie = sessionCookie(res)!;
      assert.ok(cookie, 'a session cookie');
      assert.deepEqual(cookie.attrs.sort(), ['HttpOnly', 'Max-Age=43200', 'Path=/dashboard', 'SameSite=Lax']);
      // Only the digest is stored; the page opens with the cookie.
      const rows = await db.knex('dashboard_sessions').where({ workspace_id: ws.id });
      assert.equal(rows.length, 1);
      assert.deepEqual(rows[0].id_hash, sha256(cookie.value));
      assert.ok(!JSON.stringify(rows[0]).includes(cookie.value));
      assert.equal(new Date(rows[0].expires_at).getTime() - clock.now().getTime(), 12 * 3_600_000);
      const page = await withCookie('/dashboard', cookie.value).expect(200);
      assert.match(page.text, /Key desk/);
    });

    it('a key without read:analytics cannot sign in (403), nor can an unknown, malformed or revoked key (401)', async () => {
      const { ws } = await desk('No analytics desk');
      const weak = await makeKey(db.knex, t.services, { workspaceId: ws.id, scopes: ['read:tickets', 'write:tickets'] });
      const res = await signInWithKey(weak.token);
      assert.equal(res.status, 403);
      assert.match(res.text, /lacks the scope read:analytics/);
      assert.equal(sessionCookie(res), null);
      const revoked = await makeKey(db.knex, t.services, { workspaceId: ws.id, scopes: ['read:analytics'] });
      await t.services.apiKeys.revoke(db.knex, ws.id, revoked.id);
      for (const bad of [revoked.token, 'td_live_nope', `${weak.token.slice(0, -1)}x`]) {
        const r = await signInWithKey(bad);
        assert.equal(r.status, 401, bad);
        assert.equal(sessionCookie(r), null);
      }
      assert.equal((await db.knex('dashboard_sessions').where({ workspace_id: ws.id })).length, 0);
    });

    it('the cookie is Secure when PUBLIC_URL is https', async () => {
      const secure = createTestApp(db.knex, { clock, config: { publicUrl: 'https://desk.example.com' } });
      const key = await makeKey(db.knex, secure.services, { scopes: ['read:analytics'] });
      const res = await supertest(secure.app.callback()).post('/dashboard/login').type('form').send({ key: key.token }).expect(303);
      assert.ok(sessionCookie(res)!.attrs.includes('Secure'));
    });

    it('a session whose key is revoked ends: its data calls answer 401 and the row is gone', async () => {
      const { ws } = await desk('Revoked desk');
      const key = await makeKey(db.knex, t.services, { workspaceId: ws.id, scopes: ['read:analytics'] });
      const cookie = sessionCookie(await signInWithKey(key.token))!.value;
      await withCookie('/dashboard/api/metrics/backlog', cookie).expect(200);
      await t.services.apiKeys.revoke(db.knex, ws.id, key.id);
      const res = await withCookie('/dashboard/api/metrics/backlog', cookie);
      assert.equal(res.status, 401);
      assert.equal(res.body.code, 'unauthorized');
      assert.equal((await db.knex('dashboard_sessions').where({ workspace_id: ws.id })).length, 0);
    });
  });

  describe('tenancy and the data calls', () => {
    it('a session reads its own workspace only: the same figures as the API with that workspace’s key', async () => {
      const a = await desk('Tenant A');
      const b = await desk('Tenant B');
      for (let i = 0; i < 3; i++) {
        await http.post('/v1/tickets').set('Authorization', a.key.auth)
          .send({ contact: { telegram_user_id: 770_000_000 + i, first_name: 'Ann' }, subject: `A${i}`, priority: 'high' }).expect(201);
      }
      const cookieA = sessionCookie(await signInWithKey(a.key.token))!.value;
      const cookieB = sessionCookie(await signInWithKey(b.key.token))!.value;
      for (const kind of ['backlog', 'sla', 'first-response?group_by=day', 'csat', 'agents', 'resolution']) {
        const viaA = await withCookie(`/dashboard/api/metrics/${kind}`, cookieA).expect(200);
        const apiA = await http.get(`/v1/metrics/${kind}`).set('Authorization', a.key.auth).expect(200);
        const viaB = await withCookie(`/dashboard/api/metrics/${kind}`, cookieB).expect(200);
        const apiB = await http.get(`/v1/metrics/${kind}`).set('Authorization', b.key.auth).expect(200);
        assert.deepEqual(viaA.body, apiA.body, kind);
        assert.deepEqual(viaB.body, apiB.body, kind);
      }
      const backlogA = (await withCookie('/dashboard/api/metrics/backlog', cookieA)).body;
      const backlogB = (await withCookie('/dashboard/api/metrics/backlog', cookieB)).body;
      assert.equal(backlogA.total, 3);
      assert.equal(backlogA.by_priority.high, 3);
      assert.equal(backlogB.total, 0, 'B never sees A’s tickets');
      // The workspace comes from the session alone: a query cannot name another one.
      assert.equal((await withCookie(`/dashboard/api/metrics/backlog?workspace_id=${a.ws.id}`, cookieB)).status, 422);
      // A's team is not B's: B asking for it is told it does not exist.
      const team = await http.post('/v1/teams').set('Authorization', a.key.auth).send({ name: 'A team' }).expect(201);
      assert.equal((await withCookie(`/dashboard/api/metrics/backlog?team_id=${team.body.id}`, cookieB)).status, 404);
    });

    it('without a session: data calls 401, the page redirects to the sign-in form; the Bearer key is not a session', async () => {
      const { key } = await desk('Anonymous desk');
      assert.equal((await http.get('/dashboard/api/metrics/backlog')).status, 401);
      assert.equal((await http.get('/dashboard/api/metrics/backlog').set('Authorization', key.auth)).status, 401);
      assert.equal((await withCookie('/dashboard/api/metrics/backlog', 'A'.repeat(43))).status, 401);
      const page = await http.get('/dashboard');
      assert.equal(page.status, 302);
      assert.equal(page.headers.location, '/dashboard/login');
      const form = await http.get('/dashboard/login').expect(200);
      assert.match(form.text, /name="key"/);
    });

    it('pages and assets carry a strict CSP; Chart.js is served from node_modules', async () => {
      const form = await http.get('/dashboard/login').expect(200);
      assert.match(form.headers['content-security-policy'], /^default-src 'self';/);
      assert.equal(form.headers['referrer-policy'], 'no-referrer');
      const chart = await http.get('/dashboard/assets/chart.umd.min.js').expect(200);
      assert.match(chart.headers['content-type'], /javascript/);
      assert.match(chart.text, /Chart/);
      assert.equal((await http.get('/dashboard/assets/..%2Fdashboard-service.ts')).status, 404);
    });

    it('refuses a cross-site form post', async () => {
      const { key } = await desk('Cross-site desk');
      const res = await http.post('/dashboard/login').set('Origin', 'https://evil.example').type('form').send({ key: key.token });
      assert.equal(res.status, 403);
      assert.equal(sessionCookie(res), null);
    });
  });

  describe('by one-time link', () => {
    async function lead(role: 'lead' | 'admin' | 'agent' = 'lead') {
      const { ws } = await desk(`Link desk ${role}`);
      const agent = await makeAgent(db.knex, { workspaceId: ws.id, name: `Lee ${role}` });
      await db.knex('agents').where({ id: agent.id }).update({ role });
      return { ws, agent: { ...agent, role } };
    }

    it('a lead’s link uses PUBLIC_URL, shows who it signs in, works once; the token is stored hashed', async () => {
      const { ws, agent } = await lead();
      const link = await t.services.dashboard.loginLink(db.knex, ws.id, agent);
      assert.match(link.url, /^http:\/\/desk\.test:3000\/dashboard\/login\?token=[A-Za-z0-9_-]{43}$/);
      const token = tokenOf(link.url);
      const stored = await db.knex('dashboard_login_tokens').where({ workspace_id: ws.id });
      assert.deepEqual(stored.map((r) => r.token_hash), [sha256(token)]);
      // Opening it (or a link preview fetching it) does not spend it.
      for (let i = 0; i < 2; i++) {
        const open = await http.get(`/dashboard/login?token=${token}`).expect(200);
        assert.match(open.text, /Lee lead/);
      }
      const first = await postToken(token);
      assert.equal(first.status, 303);
      const cookie = sessionCookie(first)!;
      const [session] = await db.knex('dashboard_sessions').where({ workspace_id: ws.id });
      assert.equal(session.agent_id, agent.id);
      assert.deepEqual(session.id_hash, sha256(cookie.value));
      await withCookie('/dashboard/api/metrics/backlog', cookie.value).expect(200);
      const second = await postToken(token);
      assert.equal(second.status, 401);
      assert.match(second.text, /not valid any more/);
      assert.equal(sessionCookie(second), null);
      assert.equal((await http.get(`/dashboard/login?token=${token}`)).status, 401);
    });

    it('an admin gets a link too; an agent who is not lead/admin is refused', async () => {
      const admin = await lead('admin');
      assert.ok((await t.services.dashboard.loginLink(db.knex, admin.ws.id, admin.agent)).url);
      const plain = await lead('agent');
      await assert.rejects(t.services.dashboard.loginLink(db.knex, plain.ws.id, plain.agent), (e: any) => e.code === 'forbidden');
      assert.equal((await db.knex('dashboard_login_tokens').where({ workspace_id: plain.ws.id })).length, 0);
    });

    it('expires after 10 minutes (fake clock)', async () => {
      const { ws, agent } = await lead();
      const early = tokenOf((await t.services.dashboard.loginLink(db.knex, ws.id, agent)).url);
      const late = tokenOf((await t.services.dashboard.loginLink(db.knex, ws.id, agent)).url);
      const start = clock.now();
      try {
        clock.advance(10 * MIN - 1);
        assert.equal((await postToken(early)).status, 303, 'still valid just before 10 minutes');
        clock.advance(1);
        assert.equal((await postToken(late)).status, 401, 'not at 10 minutes');
      } finally {
        clock.set(start);
      }
    });

    it('a link whose agent stopped being a lead no longer signs in; nor does the session it started', async () => {
      const { ws, agent } = await lead();
      const before = tokenOf((await t.services.dashboard.loginLink(db.knex, ws.id, agent)).url);
      const cookie = sessionCookie(await postToken(tokenOf((await t.services.dashboard.loginLink(db.knex, ws.id, agent)).url)))!.value;
      await db.knex('agents').where({ id: agent.id }).update({ role: 'agent' });
      assert.equal((await postToken(before)).status, 401);
      assert.equal((await withCookie('/dashboard/api/metrics/backlog', cookie)).status, 401);
    });
  });

  describe('session lifetime and sign-out', () => {
    it('a session ends after 12 hours (fake clock)', async () => {
      const { key } = await desk('Lifetime desk');
      const cookie = sessionCookie(await signInWithKey(key.token))!.value;
      const start = clock.now();
      try {
        clock.advance(12 * 3_600_000 - 1);
        await withCookie('/dashboard/api/metrics/backlog', cookie).expect(200);
        clock.advance(1);
        assert.equal((await withCookie('/dashboard/api/metrics/backlog', cookie)).status, 401);
        assert.equal((await withCookie('/dashboard', cookie)).status, 302);
      } finally {
        clock.set(start);
      }
    });

    it('sign-out deletes the session and clears the cookie', async () => {
      const { ws, key } = await desk('Sign-out desk');
      const cookie = sessionCookie(await signInWithKey(key.token))!.value;
      const res = await http.post('/dashboard/logout').set('Cookie', `td_dashboard=${cookie}`).type('form').send({});
      assert.equal(res.status, 303);
      assert.equal(res.headers.location, '/dashboard/login');
      const cleared = sessionCookie(res)!;
      assert.equal(cleared.value, '');
      assert.ok(cleared.attrs.includes('Max-Age=0'));
      assert.equal((await db.knex('dashboard_sessions').where({ workspace_id: ws.id })).length, 0);
      assert.equal((await withCookie('/dashboard/api/metrics/backlog', cookie)).status, 401);
    });
  });
});

describe('/dashboard in the support group', () => {
  const harness = useTelegramHarness({ config: { publicUrl: 'https://desk.example.com' } });
  let seq = 0;
  let h: typeof harness.h;
  before(() => { h = harness.h; });

  const member = (firstName: string) => {
    const u = h.fake.addUser({ firstName, username: `${firstName.toLowerCase()}_${++seq}` });
    h.fake.addMember(h.group, u);
    return u;
  };
  const botRepliesAfter = (messageId: number) =>
    h.fake.messagesIn(h.group.id, { threadId: null }).filter((m) => m.message_id > messageId && m.from?.id === h.bot.id);

  it('refuses a member who is not lead/admin with one line; a lead gets a one-time link that signs in once', async () => {
    const dana = member('Dana');
    const refused = h.fake.memberSends(h.group, dana, '/dashboard');
    await h.settle();
    const [no] = botRepliesAfter(refused.message_id);
    assert.match(no.text, /^Only leads and admins can open the dashboard/);
    assert.ok(!no.text.includes('\n'), 'one line');
    assert.ok(!no.text.includes('/dashboard/login'));

    const agent = await h.db('agents').where({ telegram_user_id: dana.id }).first();
    await h.api.patch(`/v1/agents/${agent.id}`).set('Authorization', h.auth).send({ role: 'lead' }).expect(200);
    const asked = h.fake.memberSends(h.group, dana, '/dashboard');
    await h.settle();
    const [yes] = botRepliesAfter(asked.message_id);
    const url = /https:\/\/desk\.example\.com\/dashboard\/login\?token=([A-Za-z0-9_-]{43})/.exec(yes.text);
    assert.ok(url, yes.text);
    const first = await h.api.post('/dashboard/login').type('form').send({ token: url[1] });
    assert.equal(first.status, 303);
    assert.ok(String(first.headers['set-cookie']).includes('Secure'));
    assert.equal((await h.api.post('/dashboard/login').type('form').send({ token: url[1] })).status, 401);
  });
});
