/**
 * Errors an integrator reads (issue 16, "small things"): 405 names the allowed methods,
 * a field PATCH refuses points to the endpoint that changes it, and a value that fails a
 * pattern is explained by an example, never by the regular expression.
 */
import assert from 'node:assert/strict';
import { makeKey } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

/** A well-formed id nobody has: validation answers before anything is looked up. */
const NO_TICKET = 'tkt_01ARZ3NDEKTSV4RRFFQ69G5FAV';
const NO_WEBHOOK = 'whk_01ARZ3NDEKTSV4RRFFQ69G5FAV';

describe('errors integrators read', () => {
  const db = useTestDatabase();
  let t: TestApp;
  let auth: string;
  before(async () => {
    t = createTestApp(db.knex);
    auth = (await makeKey(db.knex, t.services)).auth;
  });

  describe('405 carries Allow', () => {
    const cases: [method: 'put' | 'post' | 'delete' | 'get', path: string, allow: string[]][] = [
      ['put', '/v1/me', ['GET', 'HEAD']],
      ['put', `/v1/tickets/${NO_TICKET}`, ['DELETE', 'GET', 'HEAD', 'PATCH']],
      ['delete', '/v1/tickets', ['GET', 'HEAD', 'POST']],
      ['get', `/v1/tickets/${NO_TICKET}/status`, ['POST']],
      ['post', '/healthz', ['GET', 'HEAD']],
    ];
    for (const [method, path, allow] of cases) {
      it(`${method.toUpperCase()} ${path} → 405 with Allow: ${allow.join(', ')}`, async () => {
        const res = await t.request[method](path).set('Authorization', auth);
        assert.equal(res.status, 405, JSON.stringify(res.body));
        assert.equal(res.body.code, 'method_not_allowed');
        assert.match(res.headers['content-type'], /^application\/problem\+json/);
        assert.deepEqual(res.headers.allow.split(/,\s*/).sort(), allow);
        for (const m of allow) assert.ok(res.body.detail.includes(m), res.body.detail);
      });
    }

    it('GET /mcp → 405 with Allow: POST', async () => {
      const res = await t.request.get('/mcp').set('Authorization', auth);
      assert.equal(res.status, 405);
      assert.equal(res.body.code, 'method_not_allowed');
      assert.equal(res.headers.allow, 'POST');
    });

    it('a method the router does not know at all is a 405 too, with the path\'s Allow', async () => {
      const res = await t.request.copy('/v1/me').set('Authorization', auth);
      assert.equal(res.status, 405);
      assert.equal(res.body.code, 'method_not_allowed');
      assert.deepEqual(res.headers.allow.split(/,\s*/).sort(), ['GET', 'HEAD']);
    });
  });

  describe('fields changed elsewhere', () => {
    const cases: [path: string, body: Record<string, unknown>, field: string, endpoint: string][] = [
      [`/v1/tickets/${NO_TICKET}`, { status: 'resolved' }, 'status', 'POST /v1/tickets/{id}/status'],
      [`/v1/tickets/${NO_TICKET}`, { subject: 'ok', assignee_id: 'ag_01ARZ3NDEKTSV4RRFFQ69G5FAV' }, 'assignee_id', 'POST /v1/tickets/{id}/assign'],
      [`/v1/webhooks/${NO_WEBHOOK}`, { secret: 'whsec_abc' }, 'secret', 'POST /v1/webhooks/{id}/rotate-secret'],
    ];
    for (const [path, body, field, endpoint] of cases) {
      it(`PATCH ${path.replace(/_[0-9A-Z]{26}/, '_…')} with ${field} → 422 pointing to ${endpoint}`, async () => {
        const res = await t.request.patch(path).set('Authorization', auth).send(body);
        assert.equal(res.status, 422, JSON.stringify(res.body));
        assert.equal(res.body.code, 'validation_error');
        assert.ok(res.body.detail.includes(endpoint), res.body.detail);
        const item = res.body.details.find((d: { field: string }) => d.field === field);
        assert.ok(item, JSON.stringify(res.body.details));
        assert.ok(item.error.includes(endpoint), item.error);
        assert.doesNotMatch(item.error, /not a known field/);
      });
    }

    it('a field that is not anywhere stays "not a known field"', async () => {
      const res = await t.request.patch(`/v1/tickets/${NO_TICKET}`).set('Authorization', auth).send({ colour: 'red' });
      assert.equal(res.status, 422);
      assert.deepEqual(res.body.details, [{ field: 'colour', error: 'is not a known field', received: 'red' }]);
    });

    it('the secret is not echoed back', async () => {
      const res = await t.request.patch(`/v1/webhooks/${NO_WEBHOOK}`).set('Authorization', auth).send({ secret: 'whsec_abc' });
      assert.ok(!JSON.stringify(res.body).includes('whsec_abc'));
    });
  });

  describe('pattern failures say what a valid value looks like', () => {
    const errorOf = async (path: string, field: string) => {
      const res = await t.request.get(path).set('Authorization', auth);
      assert.equal(res.status, 422, JSON.stringify(res.body));
      const item = res.body.details.find((d: { field: string }) => d.field === field);
      assert.ok(item, JSON.stringify(res.body.details));
      return item.error as string;
    };

    it('an id or none', async () => {
      assert.equal(await errorOf('/v1/tickets?team_id=billing', 'team_id'), 'must be a team id like team_01JD2V8M4QK7Z3X9T6N5R1W0HB, or none');
      assert.equal(await errorOf('/v1/tickets?assignee_id=x', 'assignee_id'), 'must be an agent id like ag_01JD2V8M4QK7Z3X9T6N5R1W0HB, or none');
      assert.equal(await errorOf('/v1/tickets?contact_id=42', 'contact_id'), 'must be a contact id like ct_01JD2V8M4QK7Z3X9T6N5R1W0HB');
    });

    it('a comma-separated list', async () => {
      assert.equal(await errorOf('/v1/tickets?status=opne', 'status'),
        'must be one or more of open, in_progress, waiting_on_customer, resolved, closed separated by commas');
      assert.equal(await errorOf('/v1/tickets?status=open,,closed', 'status'),
        'must be one or more of open, in_progress, waiting_on_customer, resolved, closed separated by commas');
    });

    it('a nullable id in a body says null is fine too', async () => {
      const res = await t.request.patch(`/v1/tickets/${NO_TICKET}`).set('Authorization', auth).send({ team_id: 'billing' });
      assert.equal(res.status, 422);
      assert.deepEqual(res.body.details, [{ field: 'team_id', error: 'must be a team id like team_01JD2V8M4QK7Z3X9T6N5R1W0HB, or null', received: 'billing' }]);
    });

    /** Bad values across the API's patterned and formatted fields: no message may quote a regex. */
    const badRequests: [method: 'get' | 'post' | 'patch', path: string, body?: Record<string, unknown>][] = [
      ['get', '/v1/tickets?team_id=billing&assignee_id=x&status=opne&priority=hi&tag=a%20b&contact_id=c&created_after=yesterday'],
      ['get', '/v1/canned-responses?team_id=billing'],
      ['get', '/v1/sla-policies?team_id=billing'],
      ['get', '/v1/agents?team_id=x'],
      ['post', '/v1/tickets', { contact_id: 'nope', subject: '   ', team_id: 'x', assignee_id: 'y', tags: ['two words'], custom_fields: { 'Bad Key': 1 } }],
      ['patch', `/v1/tickets/${NO_TICKET}`, { team_id: 'x', status: 'open', category: '' }],
      ['post', `/v1/tickets/${NO_TICKET}/assign`, { agent_id: 'x', team_id: 'y' }],
      ['post', '/v1/contacts', { username: 'a b', phone: 'call me', email: 'nope' }],
      ['post', '/v1/agents', { telegram_user_id: 1, username: '!!', skills: [' '] }],
      ['post', '/v1/canned-responses', { shortcut: 'Not Valid!', title: ' ', body: ' ' }],
      ['post', '/v1/messages/send', { to: 'someone', text: ' ' }],
      ['patch', '/v1/workspace', { digest_time: '25:00', time_zone: 'Mars/Olympus' }],
      ['post', '/v1/sla-policies', { name: ' ', business_hours: { timezone: 'UTC', weekly: [{ day: 1, start: '9', end: '25:00' }], holidays: ['christmas'] } }],
      ['post', '/v1/webhooks', { url: 'not a url', events: ['ticket.nope'] }],
    ];
    const REGEX_SOURCE = /\^|\$|\[0-9|\[a-z|A-H|\\S|\\s|\{26\}|\(\?|\|\(|must match pattern/;

    it('no validation error quotes a regular expression', async () => {
      let seen = 0;
      for (const [method, path, body] of badRequests) {
        const req = t.request[method](path).set('Authorization', auth);
        const res = await (body ? req.send(body) : req);
        assert.equal(res.status, 422, `${method} ${path}: ${JSON.stringify(res.body)}`);
        for (const text of [res.body.detail, ...res.body.details.map((d: { error: string }) => d.error)]) {
          assert.doesNotMatch(text, REGEX_SOURCE, `${method} ${path}: ${text}`);
          seen++;
        }
      }
      assert.ok(seen > 40, `checked ${seen} messages`);
    });
  });
});
