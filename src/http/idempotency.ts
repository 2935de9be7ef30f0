/**
 * Idempotency-Key for POST/PUT/PATCH/DELETE (SPEC §4.1).
 *
 * The key row is claimed in the same transaction as the request's own writes, and the
 * handler runs inside that transaction (ctx.state.db). So the key exists exactly when
 * the effect committed, and its stored response is the one the client was meant to get.
 * - A concurrent request with the same key blocks on the uncommitted row; it waits at most
 *   `lockTimeoutMs`, then gets 409 idempotency_key_in_progress; if the first commits in
 *   time it replays the stored response.
 * - Rejections of the request itself (validation, auth, rate limit) and 5xx are not
 *   stored: the transaction rolls back and the client may retry with the same key.
 *   Business outcomes (404, 409…) are stored and replayed like successes.
 */
import { createHash } from 'node:crypto';
import type { Middleware } from 'koa';
import { stringify } from 'safe-stable-stringify';
import type { Knex } from '../db/knex.js';
import { AppError, renderProblem, type ErrorCode } from './errors.js';
import type { AppState } from './route.js';

export interface IdempotencyOptions {
  db: Knex;
  lockTimeoutMs: number;
  retentionHours: number;
}

// 1–255 printable ASCII characters.
const VALID_KEY = /^[\x20-\x7E]{1,255}$/;

const NOT_STORED: ReadonlySet<ErrorCode> = new Set([
  'bad_request', 'invalid_json', 'validation_error', 'payload_too_large', 'unsupported_media_type',
  'unauthorized', 'forbidden', 'rate_limit_exceeded', 'daily_send_limit_exceeded',
  'idempotency_key_reused', 'idempotency_key_in_progress', 'internal_error', 'service_unavailable',
]);

/** Response headers worth replaying besides the body. */
const REPLAYED_HEADERS = ['location'];

const LOCK_TIMEOUT = '55P03';

function fingerprint(method: string, path: string, query: unknown, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${stringify(query)}\n${stringify(body ?? null)}`).digest('hex');
}

export function idempotency(opts: IdempotencyOptions): Middleware<AppState> {
  return async (ctx, next) => {
    const key = ctx.get('Idempotency-Key');
    if (ctx.headers['idempotency-key'] === undefined) return next();
    if (!VALID_KEY.test(key)) {
      throw new AppError('bad_request', 'Idempotency-Key must be 1-255 printable ASCII characters');
    }
    const workspaceId = ctx.state.auth.workspace.id;
    const print = fingerprint(ctx.method, ctx.path, ctx.query, ctx.request.body);

    try {
      await opts.db.transaction(async (trx) => {
        await trx.raw(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(opts.lockTimeoutMs))}`);
        // Claim the key; an expired row that the cleanup job has not removed yet is taken over.
        const claimed = await trx.raw(
          `INSERT INTO idempotency_keys AS i (workspace_id, key, fingerprint, method, path, response_status)
           VALUES (?, ?, ?, ?, ?, 0)
           ON CONFLICT (workspace_id, key) DO UPDATE
             SET fingerprint = EXCLUDED.fingerprint, method = EXCLUDED.method, path = EXCLUDED.path,
                 response_status = 0, response_type = NULL, response_headers = '{}', response_body = NULL, created_at = now()
             WHERE i.created_at < now() - make_interval(hours => ?)
           RETURNING 1`,
          [workspaceId, key, print, ctx.method, ctx.path, opts.retentionHours],
        );
        await trx.raw('SET LOCAL lock_timeout TO DEFAULT');

        if (claimed.rows.length === 0) {
          const stored = await trx('idempotency_keys').where({ workspace_id: workspaceId, key }).first();
          if (stored.fingerprint !== print) {
            throw new AppError('idempotency_key_reused', `Idempotency-Key "${key}" was already used for a different request (${stored.method} ${stored.path})`);
          }
          ctx.status = stored.response_status;
          for (const [h, v] of Object.entries(stored.response_headers as Record<string, string>)) ctx.set(h, v);
          ctx.set('Idempotent-Replayed', 'true');
          if (stored.response_type) ctx.type = stored.response_type;
          ctx.body = stored.response_body;
          return;
        }

        try {
          await trx.transaction(async (savepoint) => {
            ctx.state.db = savepoint;
            await next();
          });
        } catch (err) {
          // Only business outcomes are remembered; everything else rolls the key back too.
          if (!(err instanceof AppError) || NOT_STORED.has(err.code)) throw err;
          renderProblem(ctx, err);
        } finally {
          ctx.state.db = opts.db;
        }
        const headers = Object.fromEntries(REPLAYED_HEADERS.filter((h) => ctx.response.get(h)).map((h) => [h, ctx.response.get(h)]));
        const body = ctx.body == null ? null : typeof ctx.body === 'string' ? ctx.body : JSON.stringify(ctx.body);
        await trx('idempotency_keys').where({ workspace_id: workspaceId, key }).update({
          response_status: ctx.status,
          response_type: ctx.response.type || null,
          response_headers: headers,
          response_body: body,
        });
        // Send exactly the bytes we stored, so a replay is identical.
        if (body !== null) {
          const type = ctx.response.type;
          ctx.body = body;
          ctx.type = type;
        }
      });
    } catch (err) {
      if ((err as { code?: string }).code === LOCK_TIMEOUT) {
        throw new AppError('idempotency_key_in_progress', `A request with Idempotency-Key "${key}" is still being processed; retry shortly`, {
          headers: { 'Retry-After': '1' },
        });
      }
      throw err;
    }
  };
}
