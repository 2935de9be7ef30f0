/**
 * defineRoute (src/http/route.ts) types a handler's input from the route's own schemas. The
 * assertions here are for the type check (`npx tsc --noEmit -p .`, run in CI): every
 * `@ts-expect-error` must still be an error, every annotated read must still compile. The
 * handlers never run; presentPage is checked at run time.
 */
import assert from 'node:assert/strict';
import { rotateApiKeyBody } from '../../src/auth/api-key-schemas.js';
import { idParams } from '../../src/http/common-schemas.js';
import { presentPage } from '../../src/http/pagination.js';
import { defineRoute } from '../../src/http/route.js';
import { createTicketBody, listTicketsQuery } from '../../src/tickets/ticket-schemas.js';

type IsAny<T> = 0 extends 1 & T ? true : false;

describe('route input types', () => {
  it('types params, query and body from the schemas: query defaults present, body defaults optional', () => {
    const route = defineRoute({
      method: 'post', path: '/v1/test/tickets/:id', tag: 'test', auth: 'key', summary: 'types only',
      params: idParams('tkt'), query: listTicketsQuery, body: createTicketBody,
      responses: {},
      handler(_ctx, { params, query, body }) {
        const id: string = params.id;
        // ajv fills query defaults: limit, offset, archived and sort are always there.
        const page: [number, number, boolean, string] = [query.limit, query.offset, query.archived, query.sort];
        // @ts-expect-error cursor has no default
        const cursor: string = query.cursor;
        // @ts-expect-error bodies get no defaults: priority may be absent
        const priority: string = body.priority;
        // @ts-expect-error not a property of the query schema
        void query.nope;
        const bodyIsAny: IsAny<typeof body> = false;
        void [id, page, cursor, priority, bodyIsAny];
      },
    });
    assert.equal(route.path, '/v1/test/tickets/:id');
  });

  it('gives validate the same input, and unknown where the route declares no schema', () => {
    defineRoute({
      method: 'post', path: '/v1/test/rotate', tag: 'test', auth: 'key', summary: 'types only',
      body: rotateApiKeyBody,
      responses: {},
      validate({ body }) {
        // @ts-expect-error overlap_hours has a default, but bodies are not defaulted
        const hours: number = body.overlap_hours;
        void hours;
      },
      handler(_ctx, { params, query }) {
        // @ts-expect-error no params schema
        void params.id;
        // @ts-expect-error no query schema
        void query.limit;
      },
    });
  });

  it('presents a page item by item, keeping its fields and their order', () => {
    const page = { items: [1, 2], total: 2, limit: 50, offset: 0, has_more: false, next_cursor: null };
    const shown = presentPage(page, (n) => ({ n: String(n) }));
    assert.equal(JSON.stringify(shown), '{"items":[{"n":"1"},{"n":"2"}],"total":2,"limit":50,"offset":0,"has_more":false,"next_cursor":null}');
  });
});
