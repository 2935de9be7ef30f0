/**
 * Every POST/PUT/PATCH/DELETE runs in one database transaction (ctx.state.db), so a
 * request that fails half-way leaves nothing behind. On top of that, Idempotency-Key
 * (SPEC §4.1):
 *
 * The key is claimed (its advisory lock taken) in the same transaction as the request's own
 * writes, the handler runs inside that transaction (ctx.state.db), and the key's row is
 * written with its COMMIT. So the key exists exactly when the effect committed, and its
 * stored response is the one the client was meant to get.
 * - A concurrent request with the same key waits for the key's lock; it waits at most
 *   `lockTimeoutMs`, then gets 409 idempotency_key_in_progress; if the first commits in
 *   time it replays the stored response (or, if the first rolled back, runs itself).
 * - Rejections of the request itself (validation, auth, rate limit) and 5xx — thrown or
 *   merely answered — are not stored: the transaction rolls back and the client may retry
 *   with the same key. Business outcomes (404, 409…) are stored and replayed like successes;
 *   the handler's writes before such an error are undone (runUnderKey stores the refusal in a
 *   transaction of its own).
 * - A replay sends the stored status, Content-Type, Location and body bytes, plus
 *   `Idempotent-Replayed: true`.
 * The key store itself (claim, save, fingerprint) is ./idempotency-keys.ts, shared with MCP.
 */
import { Stream } from 'node:stream';
import type { Context, Middleware } from 'koa';
import type { Knex } from '../db/knex.js';
import { inTransaction, rollback } from '../db/transaction.js';
import { AppError } from '../kernel/errors.js';
import { renderProblem } from './errors.js';
import { fingerprint, idempotencyKeys, isValidIdempotencyKey, runUnderKey, type StoredOutcome } from './idempotency-keys.js';
import type { AppState } from './route.js';

export interface IdempotencyOptions {
  db: Knex;
  lockTimeoutMs: number;
  retentionHours: number;
}

/** Response headers worth replaying besides the body (Content-Type is stored on its own). */
const REPLAYED_HEADERS = ['location'];

/** The Idempotency-Key of the request; undefined when absent. Several of them are refused. */
function readKey(ctx: Context): string | undefined {
  const joined = ctx.headers['idempotency-key'];
  if (joined === undefined) return undefined;
  // Node joins repeated headers with ", "; headersDistinct tells one key with a comma from two keys.
  const all = ctx.req.headersDistinct?.['idempotency-key'] ?? [String(joined)];
  if (all.length !== 1) throw new AppError('bad_request', 'Send one Idempotency-Key header, not several');
  const key = all[0];
  if (!isValidIdempotencyKey(key)) {
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
  const keys = idempotencyKeys(opts);

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
    const use = {
      workspaceId: ctx.state.auth.workspace.id, key, method: ctx.method, path: ctx.path,
      fingerprint: fingerprint(ctx.method, ctx.path, ctx.query, ctx.request.body),
    };

    const replay = (stored: StoredOutcome) => {
      ctx.status = stored.status;
      for (const [h, v] of Object.entries(stored.headers)) ctx.set(h, v);
      ctx.set('Idempotent-Replayed', 'true');
      // No stored body: leave ctx.body unset, as the first response did (setting it to null
      // would turn e.g. a 202 into a 204).
      if (stored.body !== null) {
        if (stored.type) ctx.type = stored.type;
        ctx.body = stored.body;
      }
    };

    /** Saves the response as the key's outcome and sends the very bytes it saved. */
    const save = async (trx: Knex.Transaction) => {
      const headers = Object.fromEntries(REPLAYED_HEADERS.filter((h) => ctx.response.get(h)).map((h) => [h, ctx.response.get(h)]));
      const type = ctx.response.type;
      const body = await bodyText(ctx.body);
      // A secret shown once (a new API key's token) must not be kept for replays.
      const kept = body !== null && ctx.state.replayBody && ctx.status < 300 ? JSON.stringify(ctx.state.replayBody(JSON.parse(body))) : body;
      await keys.save(trx, use, { status: ctx.status, type: type || null, headers, body: kept });
      // Send the bytes we serialised, so a replay is identical (but for what replayBody hid).
      if (body !== null) {
        ctx.body = body;
        ctx.type = type;
      }
    };

    await runUnderKey(opts.db, keys, use, {
      replay,
      async run(trx) {
        try {
          ctx.state.db = trx;
          await next();
        } finally {
          ctx.state.db = opts.db;
        }
        // A 5xx the handler answered without throwing: not an outcome to replay for 24 h.
        if (ctx.status >= 500) rollback();
        await save(trx);
      },
      // A business error: its writes are gone with the first transaction; it is remembered.
      async refuse(trx, error) {
        renderProblem(ctx, error);
        await save(trx);
      },
    });
  };
}
