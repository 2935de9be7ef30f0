/**
 * A TCP proxy for network-fault tests: the service talks to PostgreSQL through it, and the
 * test switches it between
 *  - pass: bytes flow both ways;
 *  - refuse: every connection is reset, and new ones are reset as soon as they arrive
 *    (a database host that is down, or restarting);
 *  - blackhole: connections are accepted and every byte is swallowed, in both directions,
 *    with no answer and no close (a network partition); connections open before go silent too.
 * Swallowed bytes are lost for good, so the streams that went silent cannot carry on: they are
 * reset when the proxy passes again. Connections opened after that work normally.
 */
import net from 'node:net';

export type ProxyMode = 'pass' | 'refuse' | 'blackhole';

export interface TcpProxy {
  readonly port: number;
  readonly mode: ProxyMode;
  setMode(mode: ProxyMode): void;
  /** Client connections not yet closed (by either side). */
  readonly openConnections: number;
  /** Connections accepted so far. */
  readonly acceptedConnections: number;
  /** `url` (a postgres:// URL) pointed at the proxy instead of its own host and port. */
  via(url: string): string;
  close(): Promise<void>;
}

interface Pipe {
  client: net.Socket;
  upstream: net.Socket | null;
  /** Went silent in a blackhole: nothing is forwarded any more. */
  silent: boolean;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: ProxyMode = 'pass';
  let accepted = 0;
  const pipes = new Set<Pipe>();

  function drop(pipe: Pipe): void {
    pipes.delete(pipe);
    pipe.client.resetAndDestroy();
    pipe.upstream?.resetAndDestroy();
  }

  function connectUpstream(pipe: Pipe): void {
    const held: Buffer[] = [];
    const upstream = net.connect(target.port, target.host);
    pipe.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('connect', () => {
      for (const chunk of held.splice(0)) upstream.write(chunk);
    });
    pipe.client.on('data', (chunk: Buffer) => {
      if (pipe.silent) return;
      if (upstream.connecting) held.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pipe.silent) pipe.client.write(chunk);
    });
    // A side that closes closes the other, unless the pipe is silent (a partition hides it).
    upstream.on('close', () => { if (!pipe.silent) { pipes.delete(pipe); pipe.client.destroy(); } });
    upstream.on('error', () => undefined);
  }

  const server = net.createServer((client) => {
    accepted++;
    client.setNoDelay(true);
    client.on('error', () => undefined);
    if (mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    const pipe: Pipe = { client, upstream: null, silent: mode === 'blackhole' };
    pipes.add(pipe);
    client.on('close', () => {
      // In a partition the server does not hear of it: its side stays open until the proxy passes again.
      if (pipe.silent && pipe.upstream) return;
      pipes.delete(pipe);
      pipe.upstream?.destroy();
    });
    if (pipe.silent) client.on('data', () => undefined); // read and swallow
    else connectUpstream(pipe);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    get mode() { return mode; },
    get openConnections() { return [...pipes].filter((p) => !p.client.destroyed).length; },
    get acceptedConnections() { return accepted; },
    setMode(next) {
      mode = next;
      for (const pipe of [...pipes]) {
        if (next === 'refuse' || (next === 'pass' && pipe.silent)) drop(pipe);
        else if (next === 'blackhole') pipe.silent = true;
      }
    },
    via(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    async close() {
      for (const pipe of [...pipes]) drop(pipe);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
