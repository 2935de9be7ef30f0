/**
 * PostgreSQL LISTEN on one dedicated connection (a pooled one would be handed to others).
 * NOTIFY is delivered at commit, to every replica: a worker that listens wakes as soon as work
 * committed anywhere, instead of at its next poll. Best effort by design: a dropped connection
 * is re-opened after a pause, and the worker's poll still finds everything meanwhile.
 * A silent network raises no error on an idle connection, so a heartbeat round trip checks it;
 * connecting and each round trip are bounded, so a partition cannot leave it hanging.
 */
import pg from 'pg';
import type { Logger } from '../lib/logger.js';

export interface Listener {
  close(): Promise<void>;
}

export interface ListenOptions {
  /** The pause before connecting again after a failure. */
  retryMs?: number;
  /** How often the idle connection proves it is alive with a round trip. */
  heartbeatMs?: number;
  /** Connecting, and each round trip (LISTEN, heartbeat), fail after this long. */
  timeoutMs?: number;
}

const DEFAULTS: Required<ListenOptions> = { retryMs: 5_000, heartbeatMs: 30_000, timeoutMs: 10_000 };

export function listen(connectionString: string, channel: string, onNotify: () => void, logger: Logger, options: ListenOptions | number = {}): Listener {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a channel name: ${channel}`);
  const opts = { ...DEFAULTS, ...(typeof options === 'number' ? { retryMs: options } : options) };
  let client: pg.Client | null = null;
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  let heartbeat: NodeJS.Timeout | null = null;

  const retry = () => {
    if (closed || timer) return;
    timer = setTimeout(() => { timer = null; void connect(); }, opts.retryMs);
    timer.unref();
  };

  /** Gives up on `c` (closing it even if the network is silent) and connects again after a pause. */
  function fail(c: pg.Client, reason: string, message: string): void {
    if (client === c) {
      client = null;
      if (heartbeat) clearInterval(heartbeat);
      heartbeat = null;
    }
    logger.warn({ channel, reason }, message);
    void c.end().catch(() => undefined);
    retry();
  }

  async function connect(): Promise<void> {
    const c = new pg.Client({
      connectionString,
      application_name: 'topicdesk-listen',
      connectionTimeoutMillis: opts.timeoutMs,
      query_timeout: opts.timeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: Math.min(opts.heartbeatMs, 10_000),
    });
    c.on('notification', (n) => { if (n.channel === channel) onNotify(); });
    c.on('error', (err) => fail(c, err.message, 'the LISTEN connection failed; polling until it is back'));
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
      if (closed) { await c.end(); return; }
      client = c;
      heartbeat = setInterval(() => {
        c.query('SELECT 1').catch((err: Error) => { if (client === c) fail(c, err.message, 'the LISTEN connection does not answer; polling until it is back'); });
      }, opts.heartbeatMs);
      heartbeat.unref();
      onNotify(); // anything committed while we were not listening
    } catch (err) {
      fail(c, (err as Error).message, 'cannot LISTEN; polling until it works');
    }
  }

  void connect();
  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      if (heartbeat) clearInterval(heartbeat);
      const c = client;
      client = null;
      await c?.end().catch(() => undefined);
    },
  };
}
