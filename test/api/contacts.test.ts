import assert from 'node:assert/strict';
import { parse } from 'csv-parse/sync';
import { CSV_COLUMNS } from '../../src/contacts/contact-csv.js';
import { newId } from '../../src/lib/ids.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeKey, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const MINUTE = 60_000;
const UNKNOWN_ID = 'ct_01ARZ3NDEKTSV4RRFFQ69G5FAV';

/** The whole CSV as rows of cells (csv-parse: strict RFC 4180; throws on malformed input). */
const parseCsv = (text: string): string[][] => parse(text, { relax_column_count: true });

/** The CSV as header + records keyed by the header; every row must have every column. */
function csvRecords(text: string): { header: string[]; records: Record<string, string>[] } {
  const [header, ...data] = parseCsv(text);
  data.forEach((r, i) => assert.equal(r.length, header.length, `CSV row ${i + 1} has ${r.length} cells: ${JSON.stringify(r)}`));
  return { header, records: data.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]]))) };
}

const withoutRequestId = (body: Record<string, unknown>) => {
  const { request_id: _ignored, ...rest } = body;
  return rest;
};

describe('contacts API', () => {
  const db = useTestDatabase();
  const clock = new FakeClock('2026-11-21T12:00:00.000Z');
  let t: TestApp;
  before(() => {
    // Some tests send many requests with one key: the per-key rate limit is not under test here.
    t = createTestApp(db.knex, { clock, config: { rateLimit: { defaultPerMinute: 1_000_000 } } });
  });

  /** A workspace of its own (so lists and events hold only this test's rows) and helpers for it. */
  async function fresh() {
    const ws = await makeWorkspace(db.knex, t.services);
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id });
    const auth = key.auth;
    return {
      ws,
      key,
      upsert: (body: unknown) => t.request.post('/v1/contacts').set('Authorization', auth).send(body as object),
      list: (query: Record<string, string | number | boolean> = {}) => t.request.get('/v1/contacts').set('Authorization', auth).query(query),
      get: (id: string) => t.request.get(`/v1/contacts/${id}`).set('Authorization', auth),
      patch: (id: string, body: unknown) => t.request.patch(`/v1/contacts/${id}`).set('Authorization', auth).send(body as object),
      addTags: (id: string, body: unknown) => t.request.post(`/v1/contacts/${id}/tags`).set('Authorization', auth).send(body as object),
      removeTag: (id: string, tag: string) => t.request.delete(`/v1/contacts/${id}/tags/${encodeURIComponent(tag)}`).set('Authorization', auth),
      exportCsv: (query: Record<string, string | number | boolean> = {}) => t.request.get('/v1/contacts/export').set('Authorization', auth).query(query),
      /** Creates a contact through the API (201) and returns its body. */
      async create(body: Record<string, unknown>) {
        const res = await t.request.post('/v1/contacts').set('Authorization', auth).send(body);
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return res.body;
      },
    };
  }

  /** The events of a contact, oldest first. */
  const eventsOf = (contactId: string) => db.knex('events').where({ contact_id: contactId }).orderBy('id');
  const contactCount = async (workspaceId: string) => Number((await db.knex('contacts').where({ workspace_id: workspaceId }).count({ n: '*' }))[0].n);
  const rowOf = (id: string) => db.knex('contacts').where({ id }).first();

  function assertValidation(res: { status: number; body: any }, field?: string) {
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.code, 'validation_error');
    if (field) {
      assert.ok(Array.isArray(res.body.details), JSON.stringify(res.body));
      assert.ok(res.body.details.some((d: { field: string }) => d.field === field), `details name ${field}: ${JSON.stringify(res.body.details)}`);
    }
  }

  function assertNotFound(res: { status: number; body: any }) {
    assert.equal(res.status, 404, JSON.stringify(res.body));
    assert.equal(res.body.code, 'not_found');
    assert.equal(res.body.detail, 'Contact not found');
  }

  describe('POST /v1/contacts (upsert)', () => {
    it('creates a new contact: 201, Location, every field, username without @, name from first and last', async () => {
      const f = await fresh();
      const res = await f.upsert({
        telegram_user_id: 424242, username: '@Sarah_K', email: 'Sarah@Example.com', first_name: 'Sarah', last_name: 'Khan',
        phone: '+1 (555) 010-0199', tags: [' VIP ', 'beta', 'vip'], custom_fields: { plan: 'pro', seats: 3, trial: false },
      }).expect(201);
      const c = res.body;
      assert.match(c.id, /^ct_[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.equal(res.headers.location, `/v1/contacts/${c.id}`);
      assert.deepEqual(c, {
        id: c.id,
        telegram_user_id: 424242,
        username: 'Sarah_K',
        name: 'Sarah Khan',
        first_name: 'Sarah',
        last_name: 'Khan',
        email: 'Sarah@Example.com',
        phone: '+1 (555) 010-0199',
        tags: ['vip', 'beta'],
        custom_fields: { plan: 'pro', seats: 3, trial: false },
        blocked: false,
        created_at: '2026-11-21T12:00:00.000Z',
        updated_at: '2026-11-21T12:00:00.000Z',
      });
      assert.deepEqual((await f.get(c.id).expect(200)).body, c);
    });

    it('records contact.created with the API key as actor and the contact as payload', async () => {
      const f = await fresh();
      const c = await f.create({ telegram_user_id: 1001, name: 'Ann' });
      const events = await eventsOf(c.id);
      assert.equal(events.length, 1);
      assert.equal(events[0].type, 'contact.created');
      assert.equal(events[0].workspace_id, f.ws.id);
      assert.equal(events[0].actor_type, 'api');
      assert.equal(events[0].actor_id, f.key.id);
      assert.deepEqual(events[0].payload, c);
    });

    it('keeps a given name over first and last name', async () => {
      const f = await fresh();
      const c = await f.create({ email: 'n@example.com', name: 'Dr. N', first_name: 'Nina', last_name: 'Smith' });
      assert.equal(c.name, 'Dr. N');
      assert.equal(c.first_name, 'Nina');
    });

    it('refuses a contact with no identity (422 naming the four), creating nothing', async () => {
      const f = await fresh();
      for (const body of [{}, { name: 'Walk-in' }, { first_name: 'Ann', tags: ['vip'], custom_fields: { plan: 'pro' } }]) {
        const res = await f.upsert(body);
        assertValidation(res);
        assert.equal(res.body.detail, 'A contact needs at least one identity: telegram_user_id, username, email or phone');
        assert.deepEqual(res.body.details.map((d: { field: string }) => d.field), ['telegram_user_id', 'username', 'email', 'phone']);
        assert.match(res.headers['content-type'], /^application\/problem\+json/);
      }
      assert.equal(await contactCount(f.ws.id), 0);
      assert.equal(Number((await db.knex('events').where({ workspace_id: f.ws.id }).count({ n: '*' }))[0].n), 0, 'no contact.created either');
    });

    it('takes a phone alone as an identity, but matches on it nowhere: each such call creates a contact', async () => {
      const f = await fresh();
      const a = await f.create({ name: 'Walk-in', phone: '+1 555 0199' });
      const b = await f.create({ name: 'Walk-in', phone: '+1 555 0199' });
      assert.notEqual(a.id, b.id);
      assert.deepEqual([a.telegram_user_id, a.username, a.email, a.phone], [null, null, null, '+1 555 0199']);
      assert.equal(await contactCount(f.ws.id), 2);
    });

    it('matches on telegram_user_id: 200, no Location, given fields overwrite, others kept', async () => {
      const f = await fresh();
      const c = await f.create({ telegram_user_id: 777, name: 'Old Name', email: 'old@example.com', phone: '+1 555 0100' });
      clock.advance(MINUTE);
      const res = await f.upsert({ telegram_user_id: 777, name: 'New Name', phone: '+44 20 7946 0958' }).expect(200);
      assert.equal(res.headers.location, undefined);
      assert.equal(res.body.id, c.id);
      assert.equal(res.body.name, 'New Name');
      assert.equal(res.body.phone, '+44 20 7946 0958');
      assert.equal(res.body.email, 'old@example.com');
      assert.equal(res.body.created_at, c.created_at);
      assert.equal(res.body.updated_at, clock.now().toISOString());
      assert.equal(await contactCount(f.ws.id), 1);
    });

    for (const given of ['@sarah_k', 'sarah_k', 'SARAH_K', '@Sarah_K']) {
      it(`matches on username case-insensitively, with or without @ (${given})`, async () => {
        const f = await fresh();
        const c = await f.create({ username: 'Sarah_K', name: 'Sarah' });
        const res = await f.upsert({ username: given, phone: '+1 555 0199' }).expect(200);
        assert.equal(res.body.id, c.id);
        assert.equal(res.body.phone, '+1 555 0199');
        assert.equal(res.body.username, given.replace(/^@/, ''));
        assert.equal(await contactCount(f.ws.id), 1);
      });
    }

    it('matches on email case-insensitively', async () => {
      const f = await fresh();
      const c = await f.create({ email: 'Sarah@Example.com', name: 'Sarah' });
      const res = await f.upsert({ email: 'sarah@EXAMPLE.COM', first_name: 'Sarah' }).expect(200);
      assert.equal(res.body.id, c.id);
      assert.equal(res.body.first_name, 'Sarah');
      assert.equal(await contactCount(f.ws.id), 1);
    });

    it('matches on one identity and adds the others it was given', async () => {
      const f = await fresh();
      const c = await f.create({ telegram_user_id: 31337 });
      const res = await f.upsert({ telegram_user_id: 31337, username: 'neo_one', email: 'neo@example.com' }).expect(200);
      assert.equal(res.body.id, c.id);
      assert.equal(res.body.username, 'neo_one');
      assert.equal(res.body.email, 'neo@example.com');
      // Now each identity alone finds it.
      assert.equal((await f.upsert({ username: '@NEO_ONE' }).expect(200)).body.id, c.id);
      assert.equal((await f.upsert({ email: 'NEO@example.com' }).expect(200)).body.id, c.id);
    });

    it('adds tags rather than replacing them, and records contact.tagged with what was added', async () => {
      const f = await fresh();
      const c = await f.create({ telegram_user_id: 5, tags: ['vip', 'beta'] });
      const res = await f.upsert({ telegram_user_id: 5, tags: ['BETA', ' new ', 'Other'] }).expect(200);
      assert.deepEqual(res.body.tags, ['vip', 'beta', 'new', 'other']);
      const events = await eventsOf(c.id);
      assert.deepEqual(events.map((e) => e.type), ['contact.created', 'contact.tagged']);
      assert.deepEqual(events[1].detail, { added: ['new', 'other'], removed: [] });
      assert.deepEqual(events[1].payload, res.body);
      assert.equal(events[1].actor_id, f.key.id);
    });

    it('merges custom_fields, null removing a field, and records the change in contact.updated', async () => {
      const f = await fresh();
      const c = await f.create({ email: 'cf@example.com', custom_fields: { plan: 'pro', seats: 3, keep: true } });
      const res = await f.upsert({ email: 'cf@example.com', custom_fields: { seats: 5, plan: null, region: 'eu', absent: null } }).expect(200);
      assert.deepEqual(res.body.custom_fields, { seats: 5, keep: true, region: 'eu' });
      const events = await eventsOf(c.id);
      assert.deepEqual(events.map((e) => e.type), ['contact.created', 'contact.updated']);
      assert.deepEqual(events[1].detail, {
        changes: { custom_fields: { from: { plan: 'pro', seats: 3, keep: true }, to: { seats: 5, keep: true, region: 'eu' } } },
      });
      assert.deepEqual(events[1].previous, { custom_fields: { plan: 'pro', seats: 3, keep: true } });
    });

    it('records contact.updated with each changed detail as {from, to} (and contact.tagged apart)', async () => {
      const f = await fresh();
      const c = await f.create({ telegram_user_id: 9, name: 'A', phone: '+1 555 0100', tags: ['x'] });
      const res = await f.upsert({ telegram_user_id: 9, name: 'B', phone: '+1 555 0100', email: 'b@example.com', tags: ['y'] }).expect(200);
      const events = await eventsOf(c.id);
      assert.deepEqual(events.map((e) => e.type), ['contact.created', 'contact.updated', 'contact.tagged']);
      assert.deepEqual(events[1].detail, { changes: { name: { from: 'A', to: 'B' }, email: { from: null, to: 'b@example.com' } } });
      assert.deepEqual(events[1].previous, { name: 'A', email: null }, 'previous: the changed fields before, tags not among them');
      assert.deepEqual(events[1].payload, res.body);
      assert.equal(events[1].actor_type, 'api');
      assert.deepEqual(events[2].detail, { added: ['y'], removed: [] });
      assert.equal(events[0].previous, null, 'contact.created has no previous');
      assert.equal(events[2].previous, null, 'contact.tagged has no previous');
    });

    it('writes nothing and records no event when nothing changes', async () => {
      const f = await fresh();
      const body = { telegram_user_id: 12, username: 'same_one', email: 'same@example.com', name: 'Same', phone: '+1 555 0100', tags: ['a'], custom_fields: { k: 'v' } };
      const c = await f.create(body);
      clock.advance(MINUTE);
      const res = await f.upsert(body).expect(200);
      assert.deepEqual(res.body, c);
      assert.equal(res.body.updated_at, c.updated_at);
      // Matching alone, an existing tag, removing an absent custom field: still nothing.
      await f.upsert({ email: 'same@example.com', tags: ['A'], custom_fields: { gone: null } }).expect(200);
      assert.deepEqual((await eventsOf(c.id)).map((e) => e.type), ['contact.created']);
    });

    it('answers 409 with contact_ids when the identities belong to two different contacts, changing nothing', async () => {
      const f = await fresh();
      const a = await f.create({ telegram_user_id: 100, name: 'A' });
      const b = await f.create({ email: 'b@example.com', name: 'B' });
      const c = await f.create({ username: 'user_c', name: 'C' });
      const res = await f.upsert({ telegram_user_id: 100, email: 'B@example.com', name: 'Merged' });
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.equal(res.body.code, 'conflict');
      assert.deepEqual([...res.body.contact_ids].sort(), [a.id, b.id].sort());
      const three = await f.upsert({ telegram_user_id: 100, email: 'b@example.com', username: '@USER_C' }).expect(409);
      assert.deepEqual([...three.body.contact_ids].sort(), [a.id, b.id, c.id].sort());
      assert.equal((await f.get(a.id)).body.name, 'A');
      assert.equal((await f.get(b.id)).body.name, 'B');
      assert.equal(await contactCount(f.ws.id), 3);
      for (const x of [a, b, c]) assert.equal((await eventsOf(x.id)).length, 1);
    });

    const invalid: [string, Record<string, unknown>, string][] = [
      ['a username too short', { username: 'abc' }, 'username'],
      ['a username with a space', { username: 'sarah k' }, 'username'],
      ['a username with two @', { username: '@@sarah' }, 'username'],
      ['a username too long', { username: 'a'.repeat(33) }, 'username'],
      ['a username with a dash', { username: 'sarah-k' }, 'username'],
      ['an email without @', { email: 'not-an-email' }, 'email'],
      ['an email without a domain', { email: 'sarah@' }, 'email'],
      ['a phone with letters', { phone: '555-CALL-NOW' }, 'phone'],
      ['a phone starting with =', { phone: '=1+2' }, 'phone'],
      ['a phone too short', { phone: '12' }, 'phone'],
      ['telegram_user_id 0', { telegram_user_id: 0 }, 'telegram_user_id'],
      ['a negative telegram_user_id', { telegram_user_id: -5 }, 'telegram_user_id'],
      ['a fractional telegram_user_id', { telegram_user_id: 1.5 }, 'telegram_user_id'],
      ['telegram_user_id as a string', { telegram_user_id: '123' }, 'telegram_user_id'],
      ['an unknown field', { nickname: 'x' }, 'nickname'],
      ['an empty name', { name: '' }, 'name'],
      ['blocked (not settable by upsert)', { email: 'x@example.com', blocked: true }, 'blocked'],
      ['a tag with a comma', { tags: ['a,b'] }, 'tags[0]'],
      ['more than 50 tags', { tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }, 'tags'],
      ['a custom field name with capitals', { custom_fields: { 'Bad-Key': 1 } }, 'custom_fields'],
      ['a nested custom field value', { custom_fields: { obj: { a: 1 } } }, 'custom_fields.obj'],
    ];
    for (const [what, body, field] of invalid) {
      it(`refuses ${what} with 422 and creates nothing`, async () => {
        const f = await fresh();
        assertValidation(await f.upsert(body), field);
        assert.equal(await contactCount(f.ws.id), 0);
      });
    }

    it('refuses a body that is not an object with 422', async () => {
      const f = await fresh();
      const res = await t.request.post('/v1/contacts').set('Authorization', f.key.auth).send([{ email: 'a@example.com' }]);
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(await contactCount(f.ws.id), 0);
    });

    it('refuses tags that would bring a contact over 50 (422), leaving it unchanged', async () => {
      const f = await fresh();
      const c = await f.create({ telegram_user_id: 50, tags: Array.from({ length: 40 }, (_, i) => `old${i}`) });
      const res = await f.upsert({ telegram_user_id: 50, name: 'Changed', tags: Array.from({ length: 11 }, (_, i) => `new${i}`) });
      assertValidation(res, 'tags');
      const now = (await f.get(c.id)).body;
      assert.equal(now.tags.length, 40);
      assert.equal(now.name, null);
      // Exactly 50 is fine.
      const ok = await f.upsert({ telegram_user_id: 50, tags: Array.from({ length: 10 }, (_, i) => `new${i}`) }).expect(200);
      assert.equal(ok.body.tags.length, 50);
    });

    it('refuses custom_fields that would bring a contact over 50 (422), leaving it unchanged', async () => {
      const f = await fresh();
      const c = await f.create({ telegram_user_id: 51, custom_fields: Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`a${i}`, i])) });
      assertValidation(await f.upsert({ telegram_user_id: 51, custom_fields: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`b${i}`, i])) }), 'custom_fields');
      assert.equal(Object.keys((await f.get(c.id)).body.custom_fields).length, 30);
      // Removing some while adding others keeps it at 50: fine.
      const patch = { ...Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`b${i}`, i])), a0: null };
      const ok = await f.upsert({ telegram_user_id: 51, custom_fields: patch }).expect(200);
      assert.equal(Object.keys(ok.body.custom_fields).length, 50);
    });

    it('creates exactly one contact (one 201) under 20 parallel upserts of the same new identity', async () => {
      const f = await fresh();
      const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => f.upsert({ telegram_user_id: 88_000, username: 'racer_x', tags: [`t${i % 3}`] })));
      const statuses = responses.map((r) => r.status);
      assert.deepEqual(statuses.filter((s) => s !== 200 && s !== 201), [], `every upsert succeeds: ${JSON.stringify(responses.filter((r) => r.status >= 300).map((r) => r.body))}`);
      assert.equal(statuses.filter((s) => s === 201).length, 1);
      assert.equal(statuses.filter((s) => s === 200).length, 19);
      const ids = new Set(responses.map((r) => r.body.id));
      assert.equal(ids.size, 1);
      assert.equal(await contactCount(f.ws.id), 1);
      const [id] = ids;
      const events = await eventsOf(id);
      assert.equal(events.filter((e) => e.type === 'contact.created').length, 1);
      assert.deepEqual([...(await f.get(id)).body.tags].sort(), ['t0', 't1', 't2']);
    });

    it('keeps identities per workspace: the same telegram id in another workspace is another contact', async () => {
      const a = await fresh();
      const b = await fresh();
      const ca = await a.create({ telegram_user_id: 4242, email: 'same@example.com' });
      const cb = await b.create({ telegram_user_id: 4242, email: 'same@example.com' });
      assert.notEqual(ca.id, cb.id);
    });
  });

  describe('scopes', () => {
    it('needs write:contacts to upsert, patch and tag, and read:contacts to list, get and export', async () => {
      const f = await fresh();
      const c = await f.create({ email: 'scoped@example.com' });
      const reader = await makeKey(db.knex, t.services, { workspaceId: f.ws.id, scopes: ['read:contacts'] });
      const writer = await makeKey(db.knex, t.services, { workspaceId: f.ws.id, scopes: ['write:contacts'] });
      await t.request.post('/v1/contacts').set('Authorization', reader.auth).send({ name: 'x' }).expect(403);
      await t.request.patch(`/v1/contacts/${c.id}`).set('Authorization', reader.auth).send({ name: 'x' }).expect(403);
      await t.request.post(`/v1/contacts/${c.id}/tags`).set('Authorization', reader.auth).send({ tags: ['x'] }).expect(403);
      await t.request.delete(`/v1/contacts/${c.id}/tags/x`).set('Authorization', reader.auth).expect(403);
      await t.request.get('/v1/contacts').set('Authorization', writer.auth).expect(403);
      await t.request.get(`/v1/contacts/${c.id}`).set('Authorization', writer.auth).expect(403);
      await t.request.get('/v1/contacts/export').set('Authorization', writer.auth).expect(403);
      await t.request.get('/v1/contacts').set('Authorization', reader.auth).expect(200);
      await t.request.get('/v1/contacts/export').set('Authorization', reader.auth).expect(200);
      assert.equal(await contactCount(f.ws.id), 1);
    });
  });

  describe('GET /v1/contacts', () => {
    let f: Awaited<ReturnType<typeof fresh>>;
    const c: Record<string, any> = {};
    before(async () => {
      f = await fresh();
      clock.set('2026-11-22T08:00:00.000Z');
      const specs: [string, Record<string, unknown>][] = [
        ['sarah', { name: 'Sarah Connor', username: 'sarah_c', email: 'sarah@example.com', phone: '+1 555 0100', tags: ['vip'] }],
        ['percent', { name: 'John 50% Off', email: 'john_doe@example.com', tags: ['beta', 'vip'] }],
        ['wild', { name: 'Johnny', username: 'johnxdoe', email: 'johnxdoe@sample.org' }],
        ['fifty', { name: 'Fifty 50 Percent', telegram_user_id: 5050 }],
        ['blocked', { name: 'Blocked Bob', phone: '+44 20 7946 0958', telegram_user_id: 6060 }],
        ['plain', { first_name: 'Zed', telegram_user_id: 7070 }],
      ];
      for (const [k, body] of specs) {
        clock.advance(MINUTE);
        c[k] = await f.create(body);
      }
      c.blocked = (await f.patch(c.blocked.id, { blocked: true }).expect(200)).body;
    });

    const ids = (res: { body: { items: { id: string }[] } }) => res.body.items.map((x) => x.id);
    const newestFirst = (...keys: string[]) => keys.map((k) => c[k].id).reverse();

    it('lists every contact newest first with the page envelope', async () => {
      const res = await f.list().expect(200);
      assert.deepEqual(ids(res), newestFirst('sarah', 'percent', 'wild', 'fifty', 'blocked', 'plain'));
      assert.equal(res.body.total, 6);
      assert.equal(res.body.limit, 50);
      assert.equal(res.body.offset, 0);
      assert.equal(res.body.has_more, false);
      assert.equal(res.body.next_cursor, null);
      assert.deepEqual(res.body.items.find((x: { id: string }) => x.id === c.sarah.id), c.sarah);
    });

    it('does not show another workspace\'s contacts', async () => {
      const other = await fresh();
      await other.create({ name: 'Sarah Elsewhere', phone: '+1 555 0101' });
      const res = await f.list({ q: 'sarah' }).expect(200);
      assert.deepEqual(ids(res), [c.sarah.id]);
    });

    const searches: [string, string, string[]][] = [
      ['name', 'sarah', ['sarah']],
      ['name, in other case', 'CONNOR', ['sarah']],
      ['username', 'johnxd', ['wild']],
      ['username, in other case', 'SARAH_C', ['sarah']],
      ['email', 'SAMPLE.ORG', ['wild']],
      ['email domain shared by two', 'example.com', ['sarah', 'percent']],
      ['phone', '7946', ['blocked']],
      ['phone with +', '+1 555', ['sarah']],
      ['a name from first_name', 'zed', ['plain']],
      ['% taken literally', '50%', ['percent']],
      ['_ taken literally', 'john_', ['percent']],
      ['a lone %', '%', ['percent']],
      ['a lone _', '_', ['sarah', 'percent']],
      ['a backslash', '\\', []],
      ['nothing matching', 'nobody-here', []],
    ];
    for (const [what, q, expected] of searches) {
      it(`searches with q over ${what} (${JSON.stringify(q)})`, async () => {
        const res = await f.list({ q }).expect(200);
        assert.deepEqual(ids(res), newestFirst(...expected));
        assert.equal(res.body.total, expected.length);
      });
    }

    it('filters by tag, case-insensitively', async () => {
      assert.deepEqual(ids(await f.list({ tag: 'vip' }).expect(200)), newestFirst('sarah', 'percent'));
      assert.deepEqual(ids(await f.list({ tag: 'BETA' }).expect(200)), newestFirst('percent'));
      assert.deepEqual(ids(await f.list({ tag: 'none' }).expect(200)), []);
    });

    it('filters by blocked', async () => {
      assert.deepEqual(ids(await f.list({ blocked: true }).expect(200)), newestFirst('blocked'));
      assert.deepEqual(ids(await f.list({ blocked: false }).expect(200)), newestFirst('sarah', 'percent', 'wild', 'fifty', 'plain'));
    });

    it('filters by created_after (inclusive) and created_before (exclusive)', async () => {
      const at = c.wild.created_at;
      assert.deepEqual(ids(await f.list({ created_after: at }).expect(200)), newestFirst('wild', 'fifty', 'blocked', 'plain'));
      assert.deepEqual(ids(await f.list({ created_before: at }).expect(200)), newestFirst('sarah', 'percent'));
      assert.deepEqual(ids(await f.list({ created_after: c.percent.created_at, created_before: c.blocked.created_at }).expect(200)), newestFirst('percent', 'wild', 'fifty'));
      assert.deepEqual(ids(await f.list({ created_after: '2027-01-01T00:00:00Z' }).expect(200)), []);
    });

    it('combines filters', async () => {
      assert.deepEqual(ids(await f.list({ q: 'john', tag: 'vip' }).expect(200)), newestFirst('percent'));
      assert.deepEqual(ids(await f.list({ q: 'john', tag: 'beta', blocked: true }).expect(200)), []);
    });

    it('pages with limit and offset', async () => {
      const all = newestFirst('sarah', 'percent', 'wild', 'fifty', 'blocked', 'plain');
      const p1 = await f.list({ limit: 4 }).expect(200);
      assert.deepEqual(ids(p1), all.slice(0, 4));
      assert.equal(p1.body.has_more, true);
      assert.equal(p1.body.total, 6);
      assert.equal(typeof p1.body.next_cursor, 'string');
      const p2 = await f.list({ limit: 4, offset: 4 }).expect(200);
      assert.deepEqual(ids(p2), all.slice(4));
      assert.equal(p2.body.has_more, false);
      assert.equal(p2.body.offset, 4);
      assert.deepEqual(ids(await f.list({ offset: 10 }).expect(200)), []);
    });

    it('pages with the cursor, also with a filter, through the same rows as offset', async () => {
      const walk = async (query: Record<string, string | number>) => {
        const seen: string[] = [];
        let cursor: string | null = null;
        for (let i = 0; i < 10; i++) {
          const res: { body: any } = await f.list(cursor ? { ...query, limit: 2, cursor } : { ...query, limit: 2 }).expect(200);
          seen.push(...ids(res));
          cursor = res.body.next_cursor;
          if (!cursor) break;
        }
        return seen;
      };
      assert.deepEqual(await walk({}), newestFirst('sarah', 'percent', 'wild', 'fifty', 'blocked', 'plain'));
      assert.deepEqual(await walk({ q: 'o' }), ids(await f.list({ q: 'o' }).expect(200)));
    });

    const badQueries: [string, Record<string, string | number>, string][] = [
      ['limit 0', { limit: 0 }, 'limit'],
      ['limit 201', { limit: 201 }, 'limit'],
      ['a non-numeric limit', { limit: 'ten' }, 'limit'],
      ['a negative offset', { offset: -1 }, 'offset'],
      ['a garbage cursor', { cursor: 'not-a-cursor' }, 'cursor'],
      ['blocked neither true nor false', { blocked: 'maybe' }, 'blocked'],
      ['created_after not a timestamp', { created_after: 'yesterday' }, 'created_after'],
      ['created_before not a timestamp', { created_before: '2026-13-45' }, 'created_before'],
      ['an empty q', { q: '' }, 'q'],
      ['q over 200 characters', { q: 'x'.repeat(201) }, 'q'],
      ['a tag with a comma', { tag: 'a,b' }, 'tag'],
      ['an unknown parameter', { sort: 'name' }, 'sort'],
    ];
    for (const [what, query, field] of badQueries) {
      it(`refuses ${what} with 422`, async () => {
        assertValidation(await f.list(query), field);
      });
    }

    it('refuses offset and cursor together with 422', async () => {
      const cursor = (await f.list({ limit: 2 }).expect(200)).body.next_cursor;
      assertValidation(await f.list({ limit: 2, cursor, offset: 2 }), 'offset');
    });
  });

  describe('GET /v1/contacts/{id}', () => {
    it('answers the contact', async () => {
      const f = await fresh();
      const c = await f.create({ email: 'one@example.com', name: 'One' });
      assert.deepEqual((await f.get(c.id).expect(200)).body, c);
    });

    it('answers 404 for an unknown id, a malformed id and another workspace\'s contact, all alike', async () => {
      const a = await fresh();
      const b = await fresh();
      const foreign = await a.create({ name: 'Foreign', phone: '+1 555 0102' });
      const unknown = await b.get(UNKNOWN_ID);
      assertNotFound(unknown);
      for (const id of ['ct_123', 'not-an-id', 'tkt_01ARZ3NDEKTSV4RRFFQ69G5FAV', UNKNOWN_ID.toLowerCase(), foreign.id]) {
        const res = await b.get(id);
        assertNotFound(res);
        assert.deepEqual(withoutRequestId(res.body), withoutRequestId(unknown.body), id);
      }
    });
  });

  describe('PATCH /v1/contacts/{id}', () => {
    const full = { telegram_user_id: 111, username: 'full_user', email: 'full@example.com', name: 'Full Name', first_name: 'Full', last_name: 'Name', phone: '+1 555 0100', tags: ['a', 'b'], custom_fields: { plan: 'pro', seats: 2 } };

    const changes: [string, unknown, unknown][] = [
      ['telegram_user_id', 222, 222],
      ['username', '@New_User', 'New_User'],
      ['email', 'New@Example.com', 'New@Example.com'],
      ['name', 'New Name', 'New Name'],
      ['first_name', 'Newfirst', 'Newfirst'],
      ['last_name', 'Newlast', 'Newlast'],
      ['phone', '030 (1234) 56.78', '030 (1234) 56.78'],
    ];
    for (const [field, sent, stored] of changes) {
      it(`changes ${field} and records contact.updated with {from, to}`, async () => {
        const f = await fresh();
        const c = await f.create(full);
        clock.advance(MINUTE);
        const res = await f.patch(c.id, { [field]: sent }).expect(200);
        assert.deepEqual(res.body, { ...c, [field]: stored, updated_at: clock.now().toISOString() });
        assert.deepEqual((await f.get(c.id)).body, res.body);
        const events = await eventsOf(c.id);
        assert.deepEqual(events.map((e) => e.type), ['contact.created', 'contact.updated']);
        assert.deepEqual(events[1].detail, { changes: { [field]: { from: c[field], to: stored } } });
        assert.deepEqual(events[1].previous, { [field]: c[field] });
        assert.deepEqual(events[1].payload, res.body);
        assert.equal(events[1].actor_id, f.key.id);
      });
    }

    for (const field of ['telegram_user_id', 'username', 'email', 'name', 'first_name', 'last_name', 'phone']) {
      it(`clears ${field} with null`, async () => {
        const f = await fresh();
        const c = await f.create(full);
        const res = await f.patch(c.id, { [field]: null }).expect(200);
        assert.equal(res.body[field], null);
        assert.equal((await rowOf(c.id))[field], null);
        const events = await eventsOf(c.id);
        assert.deepEqual(events[events.length - 1].detail, { changes: { [field]: { from: c[field], to: null } } });
      });
    }

    it('refuses to clear the last identity (422), changing nothing; clearing one of several or swapping one is fine', async () => {
      const f = await fresh();
      const only = await f.create({ email: 'only@example.com', name: 'Only Email' });
      for (const patch of [{ email: null }, { email: null, name: 'Renamed' }, { email: null, username: null, phone: null, telegram_user_id: null }]) {
        const res = await f.patch(only.id, patch);
        assertValidation(res);
        assert.equal(res.body.detail, 'A contact keeps at least one identity: this change would leave none of telegram_user_id, username, email or phone');
        assert.deepEqual(res.body.details.map((d: { field: string }) => d.field), ['telegram_user_id', 'username', 'email', 'phone']);
      }
      assert.deepEqual((await f.get(only.id)).body, only);
      assert.equal((await eventsOf(only.id)).length, 1, 'no contact.updated');

      const two = await f.create({ email: 'two@example.com', phone: '+1 555 0104' });
      assertValidation(await f.patch(two.id, { email: null, phone: null }));
      assert.equal((await f.patch(two.id, { email: null }).expect(200)).body.phone, '+1 555 0104');
      assertValidation(await f.patch(two.id, { phone: null }));
      const swapped = (await f.patch(two.id, { phone: null, telegram_user_id: 5550104 }).expect(200)).body;
      assert.deepEqual([swapped.telegram_user_id, swapped.username, swapped.email, swapped.phone], [5550104, null, null, null]);
    });

    it('still changes a contact made before identities were required, which has none', async () => {
      const f = await fresh();
      const id = newId('ct');
      await db.knex('contacts').insert({ id, workspace_id: f.ws.id, name: 'Legacy', tags: [], custom_fields: {}, created_at: clock.now(), updated_at: clock.now() });
      const res = await f.patch(id, { name: 'Legacy Renamed', tags: ['old'], email: null }).expect(200);
      assert.deepEqual([res.body.name, res.body.tags, res.body.email], ['Legacy Renamed', ['old'], null]);
      assert.equal((await f.patch(id, { email: 'legacy@example.com' }).expect(200)).body.email, 'legacy@example.com');
    });

    it('replaces tags (normalised) and records contact.tagged with added and removed', async () => {
      const f = await fresh();
      const c = await f.create(full);
      const res = await f.patch(c.id, { tags: ['B', ' c ', 'c'] }).expect(200);
      assert.deepEqual(res.body.tags, ['b', 'c']);
      const events = await eventsOf(c.id);
      assert.deepEqual(events.map((e) => e.type), ['contact.created', 'contact.tagged']);
      assert.deepEqual(events[1].detail, { added: ['c'], removed: ['a'] });
      assert.deepEqual((await f.patch(c.id, { tags: [] }).expect(200)).body.tags, []);
    });

    it('merges custom_fields, null removing one', async () => {
      const f = await fresh();
      const c = await f.create(full);
      const res = await f.patch(c.id, { custom_fields: { seats: 3, plan: null, region: 'eu' } }).expect(200);
      assert.deepEqual(res.body.custom_fields, { seats: 3, region: 'eu' });
      const events = await eventsOf(c.id);
      assert.deepEqual(events[1].detail, { changes: { custom_fields: { from: { plan: 'pro', seats: 2 }, to: { seats: 3, region: 'eu' } } } });
    });

    it('refuses custom_fields that would exceed 50 with 422', async () => {
      const f = await fresh();
      const c = await f.create({ email: 'cf50@example.com', custom_fields: Object.fromEntries(Array.from({ length: 45 }, (_, i) => [`f${i}`, i])) });
      assertValidation(await f.patch(c.id, { custom_fields: Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`g${i}`, i])) }), 'custom_fields');
      assert.equal(Object.keys((await f.get(c.id)).body.custom_fields).length, 45);
    });

    it('sets blocked to true and back to false', async () => {
      const f = await fresh();
      const c = await f.create(full);
      const on = await f.patch(c.id, { blocked: true }).expect(200);
      assert.equal(on.body.blocked, true);
      const off = await f.patch(c.id, { blocked: false }).expect(200);
      assert.equal(off.body.blocked, false);
      const events = await eventsOf(c.id);
      assert.deepEqual(events.slice(1).map((e) => e.detail), [
        { changes: { blocked: { from: false, to: true } } },
        { changes: { blocked: { from: true, to: false } } },
      ]);
    });

    it('changes several fields at once in one contact.updated event', async () => {
      const f = await fresh();
      const c = await f.create(full);
      await f.patch(c.id, { name: 'X Y', phone: null, blocked: true }).expect(200);
      const events = await eventsOf(c.id);
      assert.equal(events.length, 2);
      assert.deepEqual(events[1].detail, { changes: { name: { from: 'Full Name', to: 'X Y' }, phone: { from: '+1 555 0100', to: null }, blocked: { from: false, to: true } } });
      assert.deepEqual(events[1].previous, { name: 'Full Name', phone: '+1 555 0100', blocked: false });
    });

    it('records nothing and keeps updated_at when the patch changes nothing', async () => {
      const f = await fresh();
      const c = await f.create(full);
      clock.advance(MINUTE);
      const res = await f.patch(c.id, { name: 'Full Name', tags: ['A', 'b'], custom_fields: { plan: 'pro', gone: null }, blocked: false }).expect(200);
      assert.deepEqual(res.body, c);
      assert.equal((await eventsOf(c.id)).length, 1);
    });

    const takenCases: [string, Record<string, unknown>, Record<string, unknown>][] = [
      ['email (in other case)', { email: 'taken@example.com' }, { email: 'TAKEN@example.com' }],
      ['username (with @, other case)', { username: 'taken_name' }, { username: '@Taken_Name' }],
      ['telegram user id', { telegram_user_id: 999 }, { telegram_user_id: 999 }],
    ];
    for (const [what, owner, patch] of takenCases) {
      it(`answers 409 conflict when taking another contact's ${what}, changing nothing`, async () => {
        const f = await fresh();
        await f.create(owner);
        const c = await f.create({ name: 'Taker', email: 'taker@example.com' });
        const res = await f.patch(c.id, { ...patch, name: 'Changed' });
        assert.equal(res.status, 409, JSON.stringify(res.body));
        assert.equal(res.body.code, 'conflict');
        assert.deepEqual((await f.get(c.id)).body, c);
        assert.equal((await eventsOf(c.id)).length, 1);
      });
    }

    it('lets a contact take back its own identity in another case', async () => {
      const f = await fresh();
      const c = await f.create({ email: 'own@example.com', username: 'own_name' });
      const res = await f.patch(c.id, { email: 'OWN@example.com', username: 'Own_Name' }).expect(200);
      assert.equal(res.body.email, 'OWN@example.com');
      assert.equal(res.body.username, 'Own_Name');
    });

    const badPatches: [string, unknown, string | undefined][] = [
      ['an empty body', {}, undefined],
      ['an unknown field', { nickname: 'x' }, 'nickname'],
      ['a bad email', { email: 'nope' }, 'email'],
      ['a bad username', { username: 'a b' }, 'username'],
      ['a bad phone', { phone: 'call me' }, 'phone'],
      ['telegram_user_id 0', { telegram_user_id: 0 }, 'telegram_user_id'],
      ['blocked null', { blocked: null }, 'blocked'],
      ['blocked as a string', { blocked: 'true' }, 'blocked'],
      ['tags null', { tags: null }, 'tags'],
      ['more than 50 tags', { tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }, 'tags'],
      ['id (read-only)', { id: UNKNOWN_ID }, 'id'],
    ];
    for (const [what, body, field] of badPatches) {
      it(`refuses ${what} with 422`, async () => {
        const f = await fresh();
        const c = await f.create(full);
        assertValidation(await f.patch(c.id, body), field);
        assert.deepEqual((await f.get(c.id)).body, c);
      });
    }

    it('answers 404 for an unknown, malformed or foreign id', async () => {
      const a = await fresh();
      const b = await fresh();
      const foreign = await a.create({ name: 'Foreign', phone: '+1 555 0102' });
      for (const id of [UNKNOWN_ID, 'ct_bad', foreign.id]) assertNotFound(await b.patch(id, { name: 'x' }));
      assert.equal((await a.get(foreign.id)).body.name, 'Foreign');
    });
  });

  describe('POST /v1/contacts/{id}/tags', () => {
    it('adds tags (normalised) and records contact.tagged', async () => {
      const f = await fresh();
      const c = await f.create({ email: 't@example.com', tags: ['vip'] });
      const res = await f.addTags(c.id, { tags: ['New', ' other ', 'new'] }).expect(200);
      assert.deepEqual(res.body.tags, ['vip', 'new', 'other']);
      const events = await eventsOf(c.id);
      assert.deepEqual(events.map((e) => e.type), ['contact.created', 'contact.tagged']);
      assert.deepEqual(events[1].detail, { added: ['new', 'other'], removed: [] });
      assert.deepEqual(events[1].payload, res.body);
    });

    it('accepts a tag the contact already has (200, unchanged, no event)', async () => {
      const f = await fresh();
      const c = await f.create({ email: 't@example.com', tags: ['vip'] });
      const res = await f.addTags(c.id, { tags: ['VIP'] }).expect(200);
      assert.deepEqual(res.body, c);
      assert.equal((await eventsOf(c.id)).length, 1);
    });

    it('refuses to bring a contact over 50 tags (422), allows exactly 50', async () => {
      const f = await fresh();
      const c = await f.create({ email: 't@example.com', tags: Array.from({ length: 48 }, (_, i) => `t${i}`) });
      assertValidation(await f.addTags(c.id, { tags: ['x1', 'x2', 'x3'] }), 'tags');
      assert.equal((await f.get(c.id)).body.tags.length, 48);
      const ok = await f.addTags(c.id, { tags: ['x1', 'x2', 't0'] }).expect(200);
      assert.equal(ok.body.tags.length, 50);
    });

    const badTagBodies: [string, unknown, string][] = [
      ['an empty list', { tags: [] }, 'tags'],
      ['no tags field', {}, 'tags'],
      ['a tag with a space inside', { tags: ['a b'] }, 'tags[0]'],
      ['an empty tag', { tags: [''] }, 'tags[0]'],
      ['a tag over 64 characters', { tags: ['x'.repeat(65)] }, 'tags[0]'],
      ['tags not a list', { tags: 'vip' }, 'tags'],
      ['more than 50 tags at once', { tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }, 'tags'],
    ];
    for (const [what, body, field] of badTagBodies) {
      it(`refuses ${what} with 422`, async () => {
        const f = await fresh();
        const c = await f.create({ email: 't@example.com' });
        assertValidation(await f.addTags(c.id, body), field);
        assert.deepEqual((await f.get(c.id)).body.tags, []);
      });
    }

    it('answers 404 for an unknown or foreign contact', async () => {
      const a = await fresh();
      const b = await fresh();
      const foreign = await a.create({ name: 'Foreign', phone: '+1 555 0102' });
      assertNotFound(await b.addTags(UNKNOWN_ID, { tags: ['x'] }));
      assertNotFound(await b.addTags(foreign.id, { tags: ['x'] }));
      assert.deepEqual((await a.get(foreign.id)).body.tags, []);
    });
  });

  describe('DELETE /v1/contacts/{id}/tags/{tag}', () => {
    it('removes the tag and records contact.tagged with what was removed', async () => {
      const f = await fresh();
      const c = await f.create({ email: 't@example.com', tags: ['vip', 'beta'] });
      const res = await f.removeTag(c.id, 'vip').expect(200);
      assert.deepEqual(res.body.tags, ['beta']);
      assert.deepEqual((await f.get(c.id)).body.tags, ['beta']);
      const events = await eventsOf(c.id);
      assert.deepEqual(events.map((e) => e.type), ['contact.created', 'contact.tagged']);
      assert.deepEqual(events[1].detail, { added: [], removed: ['vip'] });
    });

    it('matches the tag case-insensitively', async () => {
      const f = await fresh();
      const c = await f.create({ email: 't@example.com', tags: ['vip', 'beta'] });
      assert.deepEqual((await f.removeTag(c.id, 'BETA').expect(200)).body.tags, ['vip']);
    });

    it('answers 200 unchanged, with no event, for a tag the contact does not have', async () => {
      const f = await fresh();
      const c = await f.create({ email: 't@example.com', tags: ['vip'] });
      const res = await f.removeTag(c.id, 'other').expect(200);
      assert.deepEqual(res.body, c);
      assert.equal((await eventsOf(c.id)).length, 1);
    });

    it('answers 200 unchanged for a tag no contact can have (a comma in it), not "Contact not found"', async () => {
      const f = await fresh();
      const c = await f.create({ email: 't@example.com', tags: ['vip'] });
      const res = await f.removeTag(c.id, 'a,b');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body, c);
    });

    it('answers 404 for an unknown, malformed or foreign contact', async () => {
      const a = await fresh();
      const b = await fresh();
      const foreign = await a.create({ name: 'Foreign', phone: '+1 555 0102', tags: ['vip'] });
      for (const id of [UNKNOWN_ID, 'ct_bad', foreign.id]) assertNotFound(await b.removeTag(id, 'vip'));
      assert.deepEqual((await a.get(foreign.id)).body.tags, ['vip']);
    });
  });

  describe('GET /v1/contacts/export', () => {
    const BULK = 1_250;
    let f: Awaited<ReturnType<typeof fresh>>;
    const special: Record<string, any> = {};

    before(async () => {
      f = await fresh();
      // Bulk rows straight into the table: enough for three 500-row batches.
      const base = Date.parse('2026-10-01T00:00:00.000Z');
      const rows = Array.from({ length: BULK }, (_, i) => ({
        id: newId('ct'),
        workspace_id: f.ws.id,
        telegram_user_id: 2_000_000 + i,
        username: `bulk_user_${i}`,
        name: `Bulk ${i}`,
        first_name: 'Bulk',
        last_name: String(i),
        email: `bulk${i}@example.com`,
        phone: i % 2 ? `+1 555 ${String(i).padStart(4, '0')}` : null,
        tags: i % 3 === 0 ? ['bulk', 'third'] : ['bulk'],
        custom_fields: JSON.stringify(i % 5 === 0 ? { n: i, plan: 'pro' } : {}),
        blocked: i % 7 === 0,
        created_at: new Date(base + i * 1000),
        updated_at: new Date(base + i * 1000),
      }));
      await db.knex('contacts').insert(rows);

      clock.set('2026-11-25T00:00:00.000Z');
      special.formula = await f.create({
        name: '=HYPERLINK("http://evil.example","click")', first_name: '+cmd', last_name: '-2+3',
        email: '=evil@example.com', phone: '+1 555 0100', tags: ['=sum(a1)', 'formula'], custom_fields: { note: '=1+1' },
      });
      special.at = await f.create({ name: '@SUM(A1)', email: '-x@example.com', tags: ['@mention'] });
      special.quoted = await f.create({ name: 'Doe, "Johnny" Jr.\nSecond line\r\nThird', email: 'quoted@example.com', tags: ['formula'] });
      special.plus = await f.create({ name: '+49 is not a phone', email: '+plus@example.com', phone: '0 (30) 1234-5678' });
    });

    async function exportAll(query: Record<string, string | number | boolean> = {}) {
      const res = await f.exportCsv(query).expect(200);
      assert.match(res.headers['content-type'], /^text\/csv/);
      return csvRecords(res.text);
    }

    it('answers text/csv as an attachment with the header row', async () => {
      const res = await f.exportCsv().expect(200);
      assert.match(res.headers['content-type'], /^text\/csv(;|$)/);
      assert.match(res.headers['content-disposition'], /^attachment; filename="?contacts\.csv"?$/);
      const { header } = csvRecords(res.text);
      assert.deepEqual(header, [...CSV_COLUMNS]);
    });

    it('writes every contact exactly once, each row equal to the stored contact (several batches)', async () => {
      const { records } = await exportAll();
      const stored = await db.knex('contacts').where({ workspace_id: f.ws.id });
      assert.equal(stored.length, BULK + 4);
      assert.equal(records.length, stored.length);
      const byId = new Map(records.map((r) => [r.id, r]));
      assert.equal(byId.size, records.length, 'no id is written twice');
      for (const s of stored) {
        const r = byId.get(s.id);
        assert.ok(r, `${s.id} is in the export`);
        if (Object.values(special).some((x) => x.id === s.id)) continue; // checked cell by cell below
        assert.deepEqual(r, {
          id: s.id,
          telegram_user_id: s.telegram_user_id === null ? '' : String(s.telegram_user_id),
          username: s.username ?? '',
          name: s.name ?? '',
          first_name: s.first_name ?? '',
          last_name: s.last_name ?? '',
          email: s.email ?? '',
          phone: s.phone ?? '',
          tags: s.tags.join(';'),
          custom_fields: Object.keys(s.custom_fields).length ? JSON.stringify(s.custom_fields) : '',
          blocked: String(s.blocked),
          created_at: s.created_at.toISOString(),
          updated_at: s.updated_at.toISOString(),
        });
      }
    });

    it('applies the tag filter', async () => {
      const { records } = await exportAll({ tag: 'THIRD' });
      assert.equal(records.length, Math.ceil(BULK / 3));
      assert.ok(records.every((r) => r.tags === 'bulk;third'));
      assert.equal((await exportAll({ tag: 'formula' })).records.length, 2);
    });

    it('applies the q filter (% and _ literal) and combines it with other filters', async () => {
      const one = await exportAll({ q: 'bulk_user_1249' });
      assert.deepEqual(one.records.map((r) => r.name), ['Bulk 1249']);
      const like = await exportAll({ q: 'BULK12' });
      assert.deepEqual(like.records.map((r) => r.email).sort(), Array.from({ length: 50 }, (_, i) => `bulk${1200 + i}@example.com`).concat(['bulk12@example.com'], Array.from({ length: 10 }, (_, i) => `bulk${120 + i}@example.com`)).sort());
      assert.equal((await exportAll({ q: '%' })).records.length, 0);
      const blockedThird = await exportAll({ tag: 'third', blocked: true });
      assert.equal(blockedThird.records.length, Array.from({ length: BULK }, (_, i) => i).filter((i) => i % 3 === 0 && i % 7 === 0).length);
      assert.ok(blockedThird.records.every((r) => r.blocked === 'true' && r.tags.includes('third')));
    });

    it('applies created_after and created_before', async () => {
      const { records } = await exportAll({ created_after: '2026-10-01T00:10:00.000Z', created_before: '2026-10-01T00:15:00.000Z' });
      assert.equal(records.length, 300);
      assert.deepEqual(new Set(records.map((r) => r.name)), new Set(Array.from({ length: 300 }, (_, i) => `Bulk ${600 + i}`)));
    });

    it('writes only the header when nothing matches', async () => {
      const res = await f.exportCsv({ q: 'matches-nothing-at-all' }).expect(200);
      assert.deepEqual(parseCsv(res.text), [[...CSV_COLUMNS]]);
    });

    it('prefixes formula cells (= + - @) with a single quote, but keeps the phone as typed', async () => {
      const { records } = await exportAll({ tag: 'formula' });
      const r = records.find((x) => x.id === special.formula.id)!;
      assert.equal(r.name, `'=HYPERLINK("http://evil.example","click")`);
      assert.equal(r.first_name, "'+cmd");
      assert.equal(r.last_name, "'-2+3");
      assert.equal(r.email, "'=evil@example.com");
      assert.equal(r.tags, "'=sum(a1);formula");
      assert.deepEqual(JSON.parse(r.custom_fields), { note: '=1+1' });
      assert.equal(r.phone, '+1 555 0100');
      const at = (await exportAll({ tag: '@mention' })).records;
      assert.equal(at.length, 1);
      assert.equal(at[0].name, "'@SUM(A1)");
      assert.equal(at[0].email, "'-x@example.com");
      assert.equal(at[0].tags, "'@mention");
      const plus = (await exportAll({ q: 'is not a phone' })).records;
      assert.equal(plus[0].name, "'+49 is not a phone");
      assert.equal(plus[0].email, "'+plus@example.com");
      assert.equal(plus[0].phone, '0 (30) 1234-5678');
    });

    it('round-trips commas, quotes and line breaks in names', async () => {
      const { records } = await exportAll({ q: 'quoted@' });
      assert.equal(records.length, 1);
      assert.equal(records[0].name, 'Doe, "Johnny" Jr.\nSecond line\r\nThird');
      assert.equal(records[0].id, special.quoted.id);
    });

    it('refuses unknown or bad filters with 422', async () => {
      assertValidation(await f.exportCsv({ limit: 10 }), 'limit');
      assertValidation(await f.exportCsv({ blocked: 'maybe' }), 'blocked');
      assertValidation(await f.exportCsv({ created_after: 'soon' }), 'created_after');
      assertValidation(await f.exportCsv({ q: '' }), 'q');
    });

    it('exports only the calling workspace\'s contacts', async () => {
      const other = await fresh();
      const mine = await other.create({ name: 'Only Mine', phone: '+1 555 0103' });
      const res = await other.exportCsv().expect(200);
      const { records } = csvRecords(res.text);
      assert.deepEqual(records.map((r) => r.id), [mine.id]);
    });
  });
});
