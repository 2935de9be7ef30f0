/**
 * Test-only routes for the Idempotency-Key middleware: each one writes a countable
 * "effect" row through ctx.state.db (so inside the key's transaction) and then behaves
 * in a controlled way — holds the transaction open, fails, answers a business error.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Knex } from '../../src/db/knex.js';
import { problemSchema } from '../../src/http/common-schemas.js';
import { AppError } from '../../src/kernel/errors.js';
import { defineRoute, type AppContext, type RouteDef } from '../../src/http/route.js';

/** The advisory lock id the `/v1/test/effects/lock` route waits for. */
export const TEST_ADVISORY_LOCK = 424_201;

export async function createEffectsTable(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE test_effects (
      id           bigserial PRIMARY KEY,
      workspace_id text NOT NULL,
      route        text NOT NULL,
      tag          text NOT NULL,
      created_at   timestamptz NOT NULL DEFAULT now()
    )`);
}

/** Effect rows written (and committed) for a tag. */
export async function countEffects(knex: Knex, tag: string): Promise<number> {
  const r = await knex('test_effects').where({ tag }).count<{ count: number }[]>({ count: '*' });
  return Number(r[0].count);
}

export interface EffectControl {
  /** Handler invocations by route name (a replay must not invoke the handler). */
  calls: Record<string, number>;
  /** When true, the next `POST /v1/test/effects` throws a plain Error after its insert (and resets this). */
  faultNext: boolean;
}

export function newEffectControl(): EffectControl {
  return { calls: {}, faultNext: false };
}

const effectSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'tag', 'workspace_id', 'nonce'],
  properties: {
    id: { type: 'string' },
    tag: { type: 'string' },
    workspace_id: { type: 'string' },
    nonce: { type: 'string', description: 'Random per execution: two executions never answer alike' },
  },
} as const;

const effectBody = {
  type: 'object',
  additionalProperties: false,
  required: ['tag'],
  properties: {
    tag: { type: 'string', minLength: 1, maxLength: 100 },
    hold_ms: { type: 'integer', minimum: 0, maximum: 10_000, description: 'pg_sleep inside the transaction after the insert' },
    note: { type: 'string' },
  },
} as const;

async function insertEffect(ctx: AppContext, route: string, tag: string): Promise<string> {
  const [row] = await ctx.state.db('test_effects')
    .insert({ workspace_id: ctx.state.auth.workspace.id, route, tag })
    .returning('id');
  return String(row.id);
}

async function hold(ctx: AppContext, ms: number | undefined): Promise<void> {
  if (ms) await ctx.state.db.raw('SELECT pg_sleep(?)', [ms / 1000]);
}

export function effectRoutes(control: EffectControl): RouteDef[] {
  const called = (name: string) => { control.calls[name] = (control.calls[name] ?? 0) + 1; };
  return [
    defineRoute({
      method: 'post', path: '/v1/test/effects', tag: 'test', auth: 'key',
      summary: 'Insert one effect row; optionally hold the transaction open; optionally fail after the insert',
      body: effectBody,
      responses: { 201: { description: 'The effect', schema: effectSchema } },
      async handler(ctx, { body }) {
        called('create');
        const { tag, hold_ms } = body;
        const id = await insertEffect(ctx, 'create', tag);
        await hold(ctx, hold_ms);
        if (control.faultNext) {
          control.faultNext = false;
          throw new Error('injected fault after the insert');
        }
        ctx.status = 201;
        ctx.set('Location', `/v1/test/effects/${id}`);
        ctx.body = { id, tag, workspace_id: ctx.state.auth.workspace.id, nonce: randomUUID() };
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/test/effects/business-error', tag: 'test', auth: 'key',
      summary: 'Insert an effect row, then answer a business error (not_found or conflict)',
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['tag', 'code'],
        properties: { tag: { type: 'string', minLength: 1 }, code: { type: 'string', enum: ['not_found', 'conflict'] } },
      },
      responses: {
        404: { description: 'Not found', schema: problemSchema, contentType: 'application/problem+json' },
        409: { description: 'Conflict', schema: problemSchema, contentType: 'application/problem+json' },
      },
      async handler(ctx, { body }) {
        called('business-error');
        const { tag, code } = body;
        await insertEffect(ctx, 'business-error', tag);
        throw new AppError(code, `business outcome ${code} (${randomUUID()})`);
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/test/effects/unavailable', tag: 'test', auth: 'key',
      summary: 'Insert an effect row, then answer 503 by setting the status (no throw)',
      body: effectBody,
      responses: { 503: { description: 'Unavailable' } },
      async handler(ctx, { body }) {
        called('unavailable');
        await insertEffect(ctx, 'unavailable', body.tag);
        ctx.status = 503;
        ctx.body = { error: 'try later', nonce: randomUUID() };
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/test/effects/accepted', tag: 'test', auth: 'key',
      summary: 'Insert an effect row, answer 202 without a body',
      body: effectBody,
      responses: { 202: { description: 'Accepted, no body' } },
      async handler(ctx, { body }) {
        called('accepted');
        await insertEffect(ctx, 'accepted', body.tag);
        ctx.status = 202;
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/test/effects/csv', tag: 'test', auth: 'key',
      summary: 'Insert an effect row, answer 201 text/csv as a stream (note "stream"), a Buffer ("buffer") or non-UTF-8 bytes ("binary")',
      body: effectBody,
      responses: { 201: { description: 'CSV', contentType: 'text/csv' } },
      async handler(ctx, { body }) {
        called('csv');
        const { tag, note } = body;
        await insertEffect(ctx, 'csv', tag);
        const text = `tag,name\n${tag},Zoë\n`;
        ctx.status = 201;
        ctx.type = 'text/csv';
        if (note === 'binary') ctx.body = Buffer.from([0xff, 0xfe, 0x00, 0x01]);
        else if (note === 'buffer') ctx.body = Buffer.from(text, 'utf8');
        else ctx.body = Readable.from([text.slice(0, 5), text.slice(5)]);
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/test/effects/lock', tag: 'test', auth: 'key',
      summary: 'Insert an effect row, then wait (100 ms at most) for an advisory lock a test may hold',
      body: effectBody,
      responses: { 201: { description: 'Got the lock', schema: effectSchema } },
      async handler(ctx, { body }) {
        called('lock');
        const { tag } = body;
        const id = await insertEffect(ctx, 'lock', tag);
        await ctx.state.db.raw(`SET LOCAL lock_timeout = '100ms'`);
        await ctx.state.db.raw('SELECT pg_advisory_xact_lock(?)', [TEST_ADVISORY_LOCK]);
        ctx.status = 201;
        ctx.body = { id, tag, workspace_id: ctx.state.auth.workspace.id, nonce: randomUUID() };
      },
    }),
    defineRoute({
      method: 'delete', path: '/v1/test/effects/:tag', tag: 'test', auth: 'key',
      summary: 'Delete the effect rows of a tag and record the deletion as an effect; 204',
      params: { type: 'object', required: ['tag'], additionalProperties: false, properties: { tag: { type: 'string' } } },
      responses: { 204: { description: 'Deleted' } },
      async handler(ctx, { params }) {
        called('delete');
        const { tag } = params;
        await ctx.state.db('test_effects').where({ tag, workspace_id: ctx.state.auth.workspace.id }).del();
        await insertEffect(ctx, 'delete', `deleted:${tag}`);
        ctx.status = 204;
      },
    }),
  ];
}
