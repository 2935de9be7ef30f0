/**
 * Every POST/PUT/PATCH/DELETE runs in one database transaction (ctx.state.db), so a
 * request that fails half-way leaves nothing behind. On top of that, Idempotency-Key
 * (SPEC §4.1):
 *
 * The key row is claimed in the same transaction as the request's own writes, and the
 * handler runs inside that transaction (ctx.state.db). So the key exists exactly when
 * the effect committed, and its stored response is the one the client was meant to get.
 * - A concurrent request with the same key blocks on the uncommitted row; it waits at most
 *   `lockTimeoutMs`, then gets 409 idempotency_key_in_progress; if the first commits in
 *   time it replays the stored response (or, if the first rolled back, runs itself).
 * - Rejections of the request itself (validation, auth, rate limit) and 5xx — thrown or
 *   merely answered — are not stored: the transaction rolls back and the client may retry
 *   with the same key. Business outcomes (404, 409…) are stored and replayed like successes;
 *   the handler's writes before such an error are undone (it runs in a savepoint).
 * - A replay sends the stored status, Content-Type, Location and body bytes, plus
 *   `Idempotent-Replayed: true`.
 */
import { createHash } from 'node:crypto';
import { Stream } from 'node:stream';
import type { Context, Middleware } from 'koa';
import { stringify } from 'safe-stable-stringify';
import type { Knex } from '../db/knex.js';
import { inTransaction, rollback } from '../db/transaction.js';
import { AppError, type ErrorCode } from '../kernel/errors.js';
import { renderProblem } from './errors.js';
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

/** Response headers worth replaying besides the body (Content-Type is stored on its own). */
const REPLAYED_HEADERS = ['location'];

const LOCK_TIMEOUT = '55P03';

function fingerprint(method: string, path: string, query: unknown, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${stringify(query)}\n${stringify(body ?? null)}`).digest('hex');
}

/** The Idempotency-Key of the request; undefined when absent. Several of them are refused. */
function readKey(ctx: Context): string | undefined {
  const joined = ctx.headers['idempotency-key'];
  if (joined === undefined) return undefined;
  // Node joins repeated headers with ", "; headersDistinct tells one key with a comma from two keys.
  const all = ctx.req.headersDistinct?.['idempotency-key'] ?? [String(joined)];
  if (all.length !== 1) throw new AppError('bad_request', 'Send one Idempotency-Key header, not several');
  const key = all[0];
  if (!VALID_KEY.test(key)) {
    throw new AppError('bad_request', 'Idempotency-Key must be 1-255 printable ASCII characters');
  }
  return key;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The exact text the response body will be sent as, or null for no body. Streams and
 * buffers are read to the end here (they can only be sent once), so the caller must send
 * the returned text instead. JSON is serialised the way Koa would.
 */
async function bodyText(body: unknown): Promise<string | null> {
  if (body == null) return null;
  if (typeof body === 'string') return body;
  let bytes: Buffer | undefined;
  if (body instanceof Uint8Array) bytes = Buffer.from(body);
  else if (body instanceof Blob || body instanceof Response) bytes = Buffer.from(await body.arrayBuffer());
  else if (body instanceof Stream || body instanceof ReadableStream) {
    const chunks: Buffer[] = [];
    for await (const chunk of body as AsyncIterable<Uint8Array | string>) chunks.push(Buffer.from(chunk));
    bytes = Buffer.concat(chunks);
  }
  if (bytes === undefined) return JSON.stringify(body);
  try {
    return utf8.decode(bytes);
  } catch {
    throw new Error('A response to a request with an Idempotency-Key must be UTF-8 text to be stored');
  }
}

export function idempotency(opts: IdempotencyOptions): Middleware<AppState> {
  const lockTimeoutMs = Math.max(1, Math.floor(opts.lockTimeoutMs));
  const retryAfter = String(Math.max(1, Math.ceil(lockTimeoutMs / 1000)));

  /** No key: still all-or-nothing. A 5xx answered without throwing rolls back too. */
  async function atomically(ctx: Context & { state: AppState }, next: () => Promise<unknown>): Promise<void> {
    try {
      await inTransaction(opts.db, async (trx) => {
        ctx.state.db = trx;
        await next();
        if (ctx.status >= 500) rollback();
      });
    } finally {
      ctx.state.db = opts.db;
    }
  }

  return async (ctx, next) => {
    const key = readKey(ctx);
    if (key === undefined) return atomically(ctx, next);
    const workspaceId = ctx.state.auth.workspace.id;
    const print = fingerprint(ctx.method, ctx.path, ctx.query, ctx.request.body);

    await inTransaction(opts.db, async (trx) => {
      // Claim the key; an expired row that the cleanup job has not removed yet is taken over.
      // A row another transaction has inserted but not committed makes this wait, for at most
      // lockTimeoutMs: when that one commits we replay its response, when it rolls back we run.
      // One round trip. PostgreSQL runs the parts of a WITH in no promised order; data
      // dependencies fix it here: the INSERT takes its row from `cfg`, so the bound is set
      // before it can wait, and the final set_config takes an argument computed from `ins`,
      // so the setting is restored only after the insert (the handler's own statements may
      // wait as long as they need). `bounded` is selected only so set_config runs.
      let claimed;
      try {
        claimed = await trx.raw(
          `WITH cfg AS MATERIALIZED (
             SELECT current_setting('lock_timeout') AS previous, set_config('lock_timeout', ?, true) AS bounded
           ),
           ins AS (
             INSERT INTO idempotency_keys AS i (workspace_id, key, fingerprint, method, path, response_status)
             SELECT ?, ?, ?, ?, ?, 0 FROM cfg
             ON CONFLICT (workspace_id, key) DO UPDATE
               SET fingerprint = EXCLUDED.fingerprint, method = EXCLUDED.method, path = EXCLUDED.path,
                   response_status = 0, response_type = NULL, response_headers = '{}', response_body = NULL, created_at = now()
               WHERE i.created_at < now() - make_interval(hours => ?)
             RETURNING 1
           )
           SELECT (SELECT count(*) FROM ins) AS claimed,
                  set_config('lock_timeout', (SELECT previous FROM cfg) || CASE WHEN (SELECT count(*) FROM ins) >= 0 THEN '' END, true) AS restored`,
          [`${lockTimeoutMs}ms`, workspaceId, key, print, ctx.method, ctx.path, opts.retentionHours],
        );
      } catch (err) {
        // Only a lock timeout on the claim means "the same key is in flight"; one inside the
        // handler is the handler's failure and must surface as such.
        if ((err as { code?: string }).code === LOCK_TIMEOUT) {
          throw new AppError('idempotency_key_in_progress', `A request with Idempotency-Key "${key}" is still being processed; retry shortly`, {
            headers: { 'Retry-After': retryAfter },
          });
        }
        throw err;
      }

      if (Number(claimed.rows[0].claimed) === 0) {
        // The row is committed and (by ON CONFLICT DO UPDATE) locked by us: it cannot vanish here.
        const stored = await trx('idempotency_keys').where({ workspace_id: workspaceId, key }).first();
        if (stored.fingerprint !== print) {
          throw new AppError('idempotency_key_reused', `Idempotency-Key "${key}" was already used for a different request (${stored.method} ${stored.path})`);
        }
        ctx.status = stored.response_status;
        for (const [h, v] of Object.entries(stored.response_headers as Record<string, string>)) ctx.set(h, v);
        ctx.set('Idempotent-Replayed', 'true');
        // No stored body: leave ctx.body unset, as the first response did (setting it to null
        // would turn e.g. a 202 into a 204).
        if (stored.response_body !== null) {
          if (stored.response_type) ctx.type = stored.response_type;
          ctx.body = stored.response_body;
        }
        return;
      }

      // A savepoint so a business error can undo the handler's writes but keep the key. It is
      // never released: COMMIT ends it anyway, and a RELEASE would be one more round trip
      // inside the window where the handler may hold hot row locks (a workspace's ticket numbering).
      await trx.raw('SAVEPOINT idempotent_handler');
      try {
        ctx.state.db = trx;
        await next();
      } catch (err) {
        // Only business outcomes are remembered; everything else rolls the key back too.
        if (!(err instanceof AppError) || NOT_STORED.has(err.code)) throw err;
        await trx.raw('ROLLBACK TO SAVEPOINT idempotent_handler');
        renderProblem(ctx, err);
      } finally {
        ctx.state.db = opts.db;
      }
      // A 5xx the handler answered without throwing: not an outcome to replay for 24 h.
      if (ctx.status >= 500) rollback();

      const headers = Object.fromEntries(REPLAYED_HEADERS.filter((h) => ctx.response.get(h)).map((h) => [h, ctx.response.get(h)]));
      const type = ctx.response.type;
      const body = await bodyText(ctx.body);
      // A secret shown once (a new API key's token) must not be kept for replays.
      const kept = body !== null && ctx.state.replayBody && ctx.status < 300 ? JSON.stringify(ctx.state.replayBody(JSON.parse(body))) : body;
      await trx('idempotency_keys').where({ workspace_id: workspaceId, key }).update({
        response_status: ctx.status,
        response_type: type || null,
        response_headers: headers,
        response_body: kept,
      });
      // Send the bytes we serialised, so a replay is identical (but for what replayBody hid).
      if (body !== null) {
        ctx.body = body;
        ctx.type = type;
      }
    });
  };
}
