import type { Db } from '../db/knex.js';
import { prepared } from '../db/prepared.js';
import type { Scope } from '../kernel/scopes.js';

export interface ApiKeyRow {
  id: string;
  workspaceId: string;
  name: string;
  tokenPrefix: string;
  scopes: Scope[];
  rateLimitPerMinute: number | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  rotatedFromId: string | null;
  createdAt: Date;
}

export interface AuthenticatedKey {
  key: ApiKeyRow;
  keyHash: Buffer;
  workspace: { id: string; name: string; mode: 'live' | 'sandbox' };
  /** Requests counted in the current rate-limit window, this one included. */
  windowCount: number;
  /** Seconds until the current window ends. */
  windowResetSeconds: number;
}

const COLUMNS = ['id', 'workspace_id', 'name', 'token_prefix', 'scopes', 'rate_limit_per_minute', 'expires_at', 'revoked_at', 'last_used_at', 'rotated_from_id', 'created_at'];

function toRow(r: any): ApiKeyRow {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    name: r.name,
    tokenPrefix: r.token_prefix,
    scopes: r.scopes,
    rateLimitPerMinute: r.rate_limit_per_minute,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
    rotatedFromId: r.rotated_from_id,
    createdAt: r.created_at,
  };
}

/** A key found by the auth statement, with what a lease on it needs. */
export interface LeasedKey extends AuthenticatedKey {
  /** The start of the counted window (PostgreSQL's clock), to give unused numbers back to. */
  windowStart: Date;
  /** Milliseconds until the window ends, measured by PostgreSQL's clock. */
  windowResetMs: number;
  /** Milliseconds until the key expires (null: never). */
  expiresInMs: number | null;
  /** How many requests the statement counted (the last `taken` numbers up to windowCount). */
  taken: number;
}

/** How many requests one auth statement counts, and the unused numbers it gives back. */
export interface AuthChunk {
  /** Requests waiting for this statement: always counted. */
  waiting: number;
  /** At most this many are counted (the waiting and a chunk ahead), as the key's shared count allows. */
  take: number;
  giveBack: { windowStart: Date; count: number } | null;
  /** The limit of keys without their own, and how near it nothing is counted ahead. */
  defaultLimit: number;
  reserve: number;
}

/** One request, counted on its own (the dashboard's sign-in). */
const ONE_REQUEST: AuthChunk = { waiting: 1, take: 1, giveBack: null, defaultLimit: 1, reserve: 0 };

export interface NewApiKey {
  id: string;
  workspaceId: string;
  name: string;
  tokenPrefix: string;
  keyHash: Buffer;
  scopes: Scope[];
  rateLimitPerMinute: number | null;
  expiresAt: Date | null;
  rotatedFromId: string | null;
  createdAt: Date;
}

/**
 * The statement behind every authenticated request, prepared (parsed and planned once per
 * connection): see authenticate(). Its columns are named, never `k.*`: a prepared statement
 * whose result would gain a column (a migration adding one to api_keys while this replica
 * runs) fails with "cached plan must not change result type" on every connection that holds it.
 */
const AUTHENTICATE_NAME = 'td_auth_key';
const AUTHENTICATE_SQL = `WITH k AS (
  SELECT k.id, k.workspace_id, k.name, k.token_prefix, k.key_hash, k.scopes, k.rate_limit_per_minute,
         k.expires_at, k.revoked_at, k.last_used_at, k.rotated_from_id, k.created_at, w.name AS ws_name, w.mode AS ws_mode
  FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
  WHERE k.key_hash = ? AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
), n AS (
  -- the chunk: the requests waiting, and up to the asked-for more while a quarter of what the
  -- shared count leaves above the reserve allows it (this replica's own view may be stale)
  SELECT greatest(?::int, least(?::int,
           (coalesce(k.rate_limit_per_minute, ?::int) - ?::int - coalesce(cur.count, 0)) / 4)) AS taken
  FROM k LEFT JOIN rate_limit_counters cur ON cur.bucket = 'key:' || k.id AND cur.window_start = date_trunc('minute', now())
), hit AS (
  -- counts the chunk; a replica's unused numbers of this same window are given back
  INSERT INTO rate_limit_counters AS c (bucket, window_start, count)
  SELECT 'key:' || k.id, date_trunc('minute', now()), n.taken FROM k, n
  ON CONFLICT (bucket, window_start) DO UPDATE SET count = greatest(EXCLUDED.count,
    c.count + EXCLUDED.count - CASE WHEN c.window_start = ?::timestamptz THEN ?::int ELSE 0 END)
  RETURNING count, window_start
), touched AS (  -- runs although nothing reads it: data-modifying CTEs always do
  UPDATE api_keys SET last_used_at = now()
  FROM k
  WHERE api_keys.id = k.id
    AND (k.last_used_at IS NULL OR k.last_used_at < now() - make_interval(secs => ?))
  RETURNING api_keys.id
)
SELECT k.*, hit.count AS window_count, hit.window_start, n.taken,
       (extract(epoch FROM hit.window_start + interval '1 minute' - now()) * 1000)::float8 AS window_reset_ms,
       (extract(epoch FROM k.expires_at - now()) * 1000)::float8 AS expires_in_ms
FROM k, n, hit`;

export const apiKeyStore = {
  async insert(db: Db, k: NewApiKey): Promise<ApiKeyRow> {
    const [row] = await db('api_keys').insert({
      id: k.id,
      workspace_id: k.workspaceId,
      name: k.name,
      token_prefix: k.tokenPrefix,
      key_hash: k.keyHash,
      scopes: k.scopes,
      rate_limit_per_minute: k.rateLimitPerMinute,
      expires_at: k.expiresAt,
      rotated_from_id: k.rotatedFromId,
      created_at: k.createdAt,
    }).returning(COLUMNS);
    return toRow(row);
  },

  /** The workspace a key belongs to, whichever it is (operator tools only: no tenant check). */
  async workspaceOf(db: Db, id: string): Promise<string | null> {
    const row = await db('api_keys').select('workspace_id').where({ id }).first();
    return row?.workspace_id ?? null;
  },

  /** `forUpdate` locks the row until the transaction ends (rotation vs. revoke and vs. itself). */
  async findById(db: Db, workspaceId: string, id: string, opts: { forUpdate?: boolean } = {}): Promise<ApiKeyRow | null> {
    const q = db('api_keys').select(COLUMNS).where({ workspace_id: workspaceId, id }).first();
    const row = await (opts.forUpdate ? q.forUpdate() : q);
    return row ? toRow(row) : null;
  },

  /** A replacement made by rotating `id` that still works, if any. */
  async liveReplacementOf(db: Db, workspaceId: string, id: string): Promise<string | null> {
    const row = await db('api_keys').select('id')
      .where({ workspace_id: workspaceId, rotated_from_id: id })
      .whereNull('revoked_at')
      .where((q) => q.whereNull('expires_at').orWhere('expires_at', '>', db.fn.now()))
      .first();
    return row?.id ?? null;
  },

  /** The list query for a workspace, for the pagination helper to order and page. */
  listQuery(db: Db, workspaceId: string, includeRevoked: boolean) {
    const q = db('api_keys').select(COLUMNS).where({ workspace_id: workspaceId });
    return includeRevoked ? q : q.whereNull('revoked_at');
  },
  toRow,

  async revoke(db: Db, workspaceId: string, id: string, at: Date): Promise<ApiKeyRow | null> {
    const [row] = await db('api_keys')
      .where({ workspace_id: workspaceId, id })
      .update({ revoked_at: db.raw('coalesce(revoked_at, ?)', [at]) })
      .returning(COLUMNS);
    return row ? toRow(row) : null;
  },

  /** Moves expiry earlier only: an overlap never extends a key's life. */
  async expireBy(db: Db, workspaceId: string, id: string, at: Date): Promise<void> {
    await db('api_keys')
      .where({ workspace_id: workspaceId, id })
      .update({ expires_at: db.raw('least(coalesce(expires_at, ?), ?)', [at, at]) });
  },

  /**
   * The hot path of API requests, in one round trip: find the live key by the hash of its
   * token, count `chunk.take` requests in the key's fixed one-minute window (this request and,
   * for a busy key, the next ones this replica serves from its lease: key-leases.ts), and
   * record last use at most once per `lastUsedIntervalSeconds` (no write per request).
   * Time comes from the database clock so every replica agrees on windows and expiry.
   */
  async authenticate(db: Db, keyHash: Buffer, lastUsedIntervalSeconds: number, chunk: AuthChunk = ONE_REQUEST): Promise<LeasedKey | null> {
    const { waiting, take, giveBack, defaultLimit, reserve } = chunk;
    const { rows } = await prepared(db, AUTHENTICATE_NAME, AUTHENTICATE_SQL,
      [keyHash, waiting, take, defaultLimit, reserve, giveBack?.windowStart ?? null, giveBack?.count ?? 0, lastUsedIntervalSeconds]);
    const r = rows[0];
    if (!r) return null;
    return {
      key: toRow(r),
      keyHash: r.key_hash,
      workspace: { id: r.workspace_id, name: r.ws_name, mode: r.ws_mode },
      windowCount: r.window_count,
      windowResetSeconds: Math.max(1, Math.ceil(r.window_reset_ms / 1000)),
      windowStart: r.window_start,
      windowResetMs: Math.max(0, r.window_reset_ms),
      expiresInMs: r.expires_in_ms,
      taken: r.taken,
    };
  },
};
