/**
 * The storage side of idempotency keys (SPEC §4.1), free of any transport: the HTTP API's
 * Idempotency-Key header (./idempotency.ts) and the MCP tools' `idempotency_key` argument
 * share it, and so share one table. Keys are scoped to the workspace; the fingerprint says
 * which request a key was used for, so the same key sent with another request (or through the
 * other front end) is `idempotency_key_reused`.
 *
 * A key is claimed (locked) inside the transaction of the request's own writes and its outcome
 * saved in the same transaction: the key's row exists exactly when the effect committed.
 */
import { createHash } from 'node:crypto';
import { stringify } from 'safe-stable-stringify';
import type { Db, Knex } from '../db/knex.js';
import { lockKey, LOCK_NAMESPACES } from '../db/advisory-lock.js';
import { inTransaction, rollback, sendWithCommit, together } from '../db/transaction.js';
import { prepared } from '../db/prepared.js';
import { AppError, type ErrorCode } from '../kernel/errors.js';

export interface IdempotencyKeyOptions {
  lockTimeoutMs: number;
  retentionHours: number;
}

/** One use of a key: whose, which key, and what it was used for. */
export interface KeyUse {
  workspaceId: string;
  key: string;
  /** From fingerprint(): equal for the same request, different for any other. */
  fingerprint: string;
  /** What the error for a reused key names: `POST /v1/tickets` or `MCP reply_to_ticket`. */
  method: string;
  path: string;
}

/** What was answered the first time, replayed as is. */
export interface StoredOutcome {
  status: number;
  type: string | null;
  headers: Record<string, string>;
  body: string | null;
}

/** 1–255 printable ASCII characters. */
export const IDEMPOTENCY_KEY_PATTERN = '^[\\x20-\\x7E]{1,255}$';
const VALID_KEY = new RegExp(IDEMPOTENCY_KEY_PATTERN);

export const isValidIdempotencyKey = (key: string): boolean => VALID_KEY.test(key);

/**
 * Refusals of the request itself (validation, auth, rate limit), conflicts about the key and
 * 5xx (whatever their code: telegram_unavailable too): never stored, so the client may retry
 * with the same key. Other AppErrors are business outcomes, stored and replayed like successes.
 */
const NOT_STORED: ReadonlySet<ErrorCode> = new Set([
  'bad_request', 'invalid_json', 'validation_error', 'payload_too_large', 'unsupported_media_type',
  'unauthorized', 'forbidden', 'rate_limit_exceeded', 'daily_send_limit_exceeded',
  'idempotency_key_reused', 'idempotency_key_in_progress', 'internal_error', 'service_unavailable',
]);

export const isStoredOutcome = (err: unknown): err is AppError => err instanceof AppError && !NOT_STORED.has(err.code) && err.status < 500;

const LOCK_TIMEOUT = '55P03';

export function fingerprint(method: string, path: string, query: unknown, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${stringify(query)}\n${stringify(body ?? null)}`).digest('hex');
}

/** How runUnderKey answers: a replay of what is stored, the run itself, or a refusal to store. */
export interface KeyedRun<T> {
  /** The key's stored outcome, to answer with instead of running. */
  replay(stored: StoredOutcome): T;
  /** The work and the save() of its outcome, in `trx` with the claim. May call rollback(): nothing is kept. */
  run(trx: Knex.Transaction): Promise<T>;
  /** A business error `run` threw: answer it and save() it as the key's outcome, in `trx`. */
  refuse(trx: Knex.Transaction, error: AppError): Promise<T>;
}

/**
 * Claims the key and runs the work in one transaction. A business error (isStoredOutcome) is
 * an outcome to keep under the key but its writes must go: the whole transaction rolls back,
 * claim included, and a fresh one claims the key again and stores the refusal. That costs the
 * rare refusal one transaction more, where a savepoint around the work would cost every request
 * a round trip inside the window where the work holds hot row locks (a workspace's numbering).
 * If another request with the same key ran in between, its outcome is replayed instead, exactly
 * what that request's client got. Other errors roll everything back and are thrown.
 */
export async function runUnderKey<T>(db: Db, keys: IdempotencyKeys, use: KeyUse, how: KeyedRun<T>): Promise<T | undefined> {
  const first = await inTransaction(db, async (trx): Promise<{ done: T } | { refused: AppError }> => {
    const stored = await keys.claim(trx, use);
    if (stored) return { done: how.replay(stored) };
    try {
      return { done: await how.run(trx) };
    } catch (err) {
      if (isStoredOutcome(err)) rollback({ refused: err });
      throw err;
    }
  });
  if (first === undefined) return undefined; // run() rolled back on purpose
  if ('done' in first) return first.done;
  return inTransaction(db, async (trx) => {
    const stored = await keys.claim(trx, use);
    return stored ? how.replay(stored) : how.refuse(trx, first.refused);
  });
}

/**
 * The claim: a transaction-level advisory lock on the key (its own namespace), taken with
 * lock_timeout bounded for this statement only. PostgreSQL runs the parts of a WITH in no
 * promised order; data dependencies fix it here: the lock takes its row from `cfg`, so the bound
 * is set before it can wait, and the final set_config takes an argument computed from `l`, so
 * the setting is restored only after the lock (the handler's own statements may wait as long as
 * they need). Prepared: parsed and planned once per connection.
 */
const LOCK = `WITH cfg AS MATERIALIZED (
       SELECT current_setting('lock_timeout') AS previous, set_config('lock_timeout', ?, true) AS bounded
     ),
     l AS MATERIALIZED (SELECT pg_advisory_xact_lock(?::bigint)::text AS locked FROM cfg)
     SELECT set_config('lock_timeout', (SELECT previous FROM cfg) || CASE WHEN (SELECT count(*) FROM l) >= 0 THEN '' END, true) AS restored`;

/**
 * The key's row, read once the lock is held: a statement of its own, so (READ COMMITTED, the
 * transactions' level here) its snapshot is taken after the lock was granted and shows what a
 * request holding it before us committed. It must reach PostgreSQL after the lock: claim()
 * starts the lock first, and both take the same path to the connection.
 */
const READ = `SELECT fingerprint, method, path, response_status, response_type, response_headers, response_body,
       created_at < now() - make_interval(hours => ?) AS expired
  FROM idempotency_keys WHERE workspace_id = ? AND key = ?`;

/**
 * The outcome, the key's only write (prepared: every request with a key runs it). A plain
 * INSERT: under the lock no other request of ours can have written the key, so a unique
 * violation means a writer that took no lock, and the transaction fails rather than apply the
 * request twice. Over an expired row (not yet removed by the cleanup job) it is replaced.
 */
const SAVE = `INSERT INTO idempotency_keys AS i (workspace_id, key, fingerprint, method, path, response_status, response_type, response_headers, response_body)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?)`;
const SAVE_OVER_EXPIRED = `${SAVE}
   ON CONFLICT (workspace_id, key) DO UPDATE
     SET fingerprint = EXCLUDED.fingerprint, method = EXCLUDED.method, path = EXCLUDED.path, response_status = EXCLUDED.response_status,
         response_type = EXCLUDED.response_type, response_headers = EXCLUDED.response_headers, response_body = EXCLUDED.response_body,
         created_at = now()`;

/**
 * The advisory lock of a key: one number per (workspace, key) in the namespace of idempotency
 * keys (32 bits of checksum: two keys in flight at once sharing one only wait for each other).
 */
const lockOf = (use: KeyUse) => lockKey(LOCK_NAMESPACES.idempotencyKey, `${use.workspaceId}\n${use.key}`);

export function idempotencyKeys(opts: IdempotencyKeyOptions) {
  const lockTimeoutMs = Math.max(1, Math.floor(opts.lockTimeoutMs));
  const retryAfter = String(Math.max(1, Math.ceil(lockTimeoutMs / 1000)));
  /** Transactions whose claim found the key's row expired: their save replaces it. */
  const overExpired = new WeakSet<Knex.Transaction>();

  return {
    /**
     * Claims the key in `trx`: null when this request is the first (run it, then save()), else
     * the outcome stored by the first, to replay. Throws idempotency_key_reused for another
     * request and idempotency_key_in_progress when the first has not committed in time.
     *
     * The key's lock is held until `trx` ends: a request with the same key still in flight makes
     * this wait, for at most lockTimeoutMs; when that one commits we replay its response, when it
     * rolls back we run. An expired row the cleanup job has not removed yet is taken over.
     */
    async claim(trx: Knex.Transaction, use: KeyUse): Promise<StoredOutcome | null> {
      let stored;
      try {
        // Lock and read go out together: one round trip (with BEGIN before them, pipelined-pg.ts).
        const [, read] = await together(
          prepared(trx, 'idempotency_lock', LOCK, [`${lockTimeoutMs}ms`, lockOf(use)]),
          prepared(trx, 'idempotency_read', READ, [opts.retentionHours, use.workspaceId, use.key]),
        );
        stored = read.rows[0];
      } catch (err) {
        // Only a lock timeout on the claim means "the same key is in flight"; one inside the
        // handler is the handler's failure and must surface as such.
        if ((err as { code?: string }).code === LOCK_TIMEOUT) {
          throw new AppError('idempotency_key_in_progress', `A request with idempotency key "${use.key}" is still being processed; retry shortly`, {
            headers: { 'Retry-After': retryAfter },
          });
        }
        throw err;
      }
      if (!stored) return null;
      if (stored.expired) {
        overExpired.add(trx);
        return null;
      }
      if (stored.fingerprint !== use.fingerprint) {
        throw new AppError('idempotency_key_reused', `Idempotency key "${use.key}" was already used for a different request (${stored.method} ${stored.path})`);
      }
      return { status: stored.response_status, type: stored.response_type, headers: stored.response_headers, body: stored.response_body };
    },

    /**
     * Stores the outcome of a claimed key, in the same transaction as the claim: sent with its
     * COMMIT (one round trip for both, while the work's locks are held), so call it last. If it
     * fails, the transaction fails with its error.
     */
    async save(trx: Knex.Transaction, use: KeyUse, outcome: StoredOutcome): Promise<void> {
      const [name, sql] = overExpired.has(trx) ? ['idempotency_save_over_expired', SAVE_OVER_EXPIRED] : ['idempotency_save', SAVE];
      await sendWithCommit(trx, name, sql, [use.workspaceId, use.key, use.fingerprint, use.method, use.path,
        outcome.status, outcome.type, JSON.stringify(outcome.headers), outcome.body]);
    },
  };
}

export type IdempotencyKeys = ReturnType<typeof idempotencyKeys>;
