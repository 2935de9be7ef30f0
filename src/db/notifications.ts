/**
 * PostgreSQL LISTEN on one dedicated connection (a pooled one would be handed to others).
 * NOTIFY is delivered at commit, to every replica: a worker that listens wakes as soon as work
 * committed anywhere, instead of at its next poll. Best effort by design: a dropped connection
 * is re-opened after a pause, and the worker's poll still finds everything meanwhile.
 */
import pg from 'pg';
import type { Logger } from '../lib/logger.js';

export interface Listener {
  close(): Promise<void>;
}

export function listen(connectionString: string, channel: string, onNotify: () => void, logger: Logger, retryMs = 5_000): Listener {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a channel name: ${channel}`);
  let client: pg.Client | null = null;
  let closed = false;
  let timer: NodeJS.Timeout | null = null;

  const retry = () => {
    if (closed || timer) return;
    timer = setTimeout(() => { timer = null; void connect(); }, retryMs);
    timer.unref();
  };

  async function connect(): Promise<void> {
    const c = new pg.Client({ connectionString, application_name: 'topicdesk-listen' });
    c.on('notification', (n) => { if (n.channel === channel) onNotify(); });
    c.on('error', (err) => {
      logger.warn({ channel, reason: err.message }, 'the LISTEN connection failed; polling until it is back');
      if (client === c) client = null;
      void c.end().catch(() => undefined);
      retry();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
      if (closed) { await c.end(); return; }
      client = c;
      onNotify(); // anything committed while we were not listening
    } catch (err) {
      logger.warn({ channel, reason: (err as Error).message }, 'cannot LISTEN; polling until it works');
      await c.end().catch(() => undefined);
      retry();
    }
  }

  void connect();
  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = null;
      await c?.end().catch(() => undefined);
    },
  };
}
