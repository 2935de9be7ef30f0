/**
 * Session advisory locks that live for hours (a bot's poller holds one for as long as it
 * polls), all on one dedicated connection per process. Never on a pooled connection: each
 * would take one of the pool's connections out for good, and ten bots would leave none for
 * the requests and workers (they did, before this).
 *
 * A session lock belongs to its connection: when the connection fails (an error, or a
 * heartbeat that gets no answer in time) every lock on it is gone — PostgreSQL releases them
 * once it notices — and `holds` says false at once, so their holders stop and take them again
 * when they can. Another replica may take them meanwhile: that is the point.
 */
import pg from 'pg';
import type { Logger } from '../lib/logger.js';
import { connectionOf, type Knex } from './knex.js';

export interface SessionLocks {
  /**
   * Takes `key` without waiting: true when this process holds it now (also when it already did).
   * One holder per key in a process: the first unlock lets it go for everyone who asked.
   */
  tryLock(key: number): Promise<boolean>;
  /** Whether this process holds `key` (false from the moment its connection failed). */
  holds(key: number): boolean;
  /**
   * Aborted the moment this process stops holding `key` (unlocked, or its connection failed);
   * already aborted when it does not hold it. For work in flight under the lock to stop at once.
   */
  lost(key: number): AbortSignal;
  /** Lets `key` go (nothing to do when the connection is gone: so is the lock). */
  unlock(key: number): Promise<void>;
  close(): Promise<void>;
}

/** When the server drops the session of a client gone silent: ~25 s of keepalive, 30 s of unacknowledged data. */
const SERVER_SIDE_TIMEOUTS = '-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3 -c tcp_user_timeout=30000';
const HEARTBEAT_DEADLINE_MS = 10_000;

export interface SessionLockOptions {
  /** How often the connection proves, with a round trip, that it (and so every lock) is alive. */
  heartbeatMs?: number;
}

export function createSessionLocks(db: Knex, logger: Logger, opts: SessionLockOptions = {}): SessionLocks {
  const { connectionString, bounds } = connectionOf(db);
  const heartbeatMs = opts.heartbeatMs ?? 10_000;
  // Each held key, with what aborts its `lost` signal.
  const held = new Map<number, AbortController>();
  const release = (key: number) => { held.get(key)?.abort(); held.delete(key); };
  let client: pg.Client | null = null;
  let connecting: Promise<pg.Client> | null = null;
  let heartbeat: NodeJS.Timeout | null = null;
  let closed = false;
  // One statement at a time on the connection (pg would queue them itself, but deprecates it).
  let chain: Promise<unknown> = Promise.resolve();
  const query = (c: pg.Client, text: string, values?: unknown[]) => {
    const result = chain.then(() => c.query(text, values));
    chain = result.catch(() => undefined);
    return result;
  };

  /** Gives up on `c`: its locks are gone with it. */
  function lose(c: pg.Client, reason: string): void {
    if (client !== c) return;
    client = null;
    if (heartbeat) clearInterval(heartbeat);
    heartbeat = null;
    if (held.size) logger.warn({ reason, locks: held.size }, 'the session-lock connection failed: its locks are released, their holders stop and take them again');
    for (const key of [...held.keys()]) release(key);
    void c.end().catch(() => undefined);
  }

  async function connection(): Promise<pg.Client> {
    if (closed) throw new Error('session locks are closed');
    if (client) return client;
    connecting ??= (async () => {
      const c = new pg.Client({
        connectionString,
        application_name: 'topicdesk-locks',
        connectionTimeoutMillis: bounds.connectTimeoutMs,
        // The heartbeat needs a deadline even where statements have none (queryTimeoutMs 0).
        query_timeout: bounds.queryTimeoutMs || HEARTBEAT_DEADLINE_MS,
        keepAlive: true,
        keepAliveInitialDelayMillis: bounds.keepAliveInitialDelayMs,
        // The server must notice a vanished client soon too, or the locks outlive it (its TCP
        // keepalive defaults to 2 hours): then another replica can take the bots over.
        options: SERVER_SIDE_TIMEOUTS,
      });
      c.on('error', (err) => lose(c, err.message));
      try {
        await c.connect();
        if (closed) throw new Error('session locks are closed');
      } catch (err) {
        void c.end().catch(() => undefined);
        throw err;
      }
      client = c;
      heartbeat = setInterval(() => {
        query(c, 'SELECT 1').catch((err: Error) => lose(c, err.message));
      }, heartbeatMs);
      heartbeat.unref();
      return c;
    })().finally(() => { connecting = null; });
    return connecting;
  }

  /** Asks the server for `key`. */
  async function take(key: number): Promise<boolean> {
    const c = await connection();
    try {
      const ok = (await query(c, 'SELECT pg_try_advisory_lock($1) AS ok', [key])).rows[0].ok === true;
      // Held only if the connection that answered is still the one in use.
      if (ok && client === c) held.set(key, new AbortController());
      return ok && client === c;
    } catch (err) {
      lose(c, (err as Error).message);
      throw err;
    }
  }
  // Two asks for one key at once share one answer: the server counts a session's locks, and a
  // second pg_try_advisory_lock would leave the key held there after our one unlock.
  const asking = new Map<number, Promise<boolean>>();

  return {
    tryLock(key) {
      if (held.has(key)) return Promise.resolve(true);
      let answer = asking.get(key);
      if (!answer) {
        answer = take(key).finally(() => asking.delete(key));
        asking.set(key, answer);
      }
      return answer;
    },

    holds: (key) => held.has(key),

    lost: (key) => held.get(key)?.signal ?? AbortSignal.abort(),

    async unlock(key) {
      if (!held.has(key)) return;
      release(key);
      if (!client) return;
      const c = client;
      await query(c, 'SELECT pg_advisory_unlock($1)', [key]).catch((err: Error) => {
        // Dropping the connection is what lets the server release the key.
        logger.warn({ reason: err.message, key }, 'could not release an advisory lock: closing the lock connection');
        lose(c, err.message);
      });
    },

    async close() {
      closed = true;
      if (heartbeat) clearInterval(heartbeat);
      heartbeat = null;
      for (const key of [...held.keys()]) release(key);
      const c = client ?? (connecting ? await connecting.catch(() => null) : null);
      client = null;
      await c?.end().catch(() => undefined);
    },
  };
}
