import { crc32 } from 'node:zlib';
import type { QueryResult } from 'pg';
import type { Knex } from 'knex';
import { discardConnection, isQueryReadTimeout } from './knex.js';

/** A pooled connection pinned for the lock's whole life. */
export interface PinnedConnection {
  query(sql: string, params?: unknown[]): Promise<QueryResult>;
}

/**
 * Every advisory-lock namespace of the service, one number each: two modules sharing one would
 * serialise each other's unrelated work whenever their names' checksums met. (agents was 424_245,
 * the customers' number, until 2026-12-05.)
 */
export const LOCK_NAMESPACES = {
  job: 424_242,
  webhookEndpointLimit: 424_243,
  accountsOfWorkspace: 424_244,
  customer: 424_245,
  poller: 424_246,
  agentsOfWorkspace: 424_247,
  queueOrder: 424_250,
  slaDefaultPolicy: 424_260,
  idempotencyKey: 424_270,
} as const;

/** A 64-bit lock key (kept a safe JS integer) for a name within a namespace of our own. */
export function lockKey(namespace: number, name: string): number {
  return namespace * 2 ** 32 + crc32(name);
}

/**
 * Runs `fn` while this process holds the session-level advisory lock `key` (waiting for it),
 * on one pinned connection (a session lock belongs to the connection that took it, so a pool
 * must not hand it to anyone else meanwhile). For short, one-off holds that need a pooled
 * connection anyway (migrations at start-up); locks held for long live on the lock connection
 * of src/db/session-locks.ts instead. If the unlock fails the connection is discarded, never
 * pooled: a session still holding the lock would shut every replica out.
 */
export async function withSessionAdvisoryLock<T>(db: Knex, key: number, fn: (conn: PinnedConnection) => Promise<T>): Promise<T> {
  const raw = (await db.client.acquireConnection()) as PinnedConnection & { __knex__disposed?: unknown };
  // Queries here bypass knex, so its hook never sees them: a connection whose answer never came is discarded here.
  const conn: PinnedConnection = {
    query: (sql, params) => raw.query(sql, params).catch((err: unknown) => {
      if (isQueryReadTimeout(err)) discardConnection(raw, err);
      throw err;
    }),
  };
  let locked = false;
  try {
    await conn.query('SELECT pg_advisory_lock($1)', [key]);
    locked = true;
    return await fn(conn);
  } finally {
    if (locked) {
      await conn.query('SELECT pg_advisory_unlock($1)', [key]).catch((err: unknown) => {
        raw.__knex__disposed = err; // knex's pool then destroys rather than reuses it
      });
    }
    await db.client.releaseConnection(raw);
  }
}
