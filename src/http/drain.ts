/**
 * Stopping the HTTP server the way a replica behind a load balancer must: no new connections,
 * the requests in flight answered, and each kept-alive connection closed as soon as its answer
 * is out ("Connection: close"), so the balancer sends what comes next to another replica.
 *
 * Node's server.close() alone is not that: it goes on serving new requests on kept-alive
 * connections, answering them "Connection: keep-alive", until they stay idle for
 * keepAliveTimeout. A balancer that reuses its connections (they all do) then keeps a stopping
 * replica busy until the grace period cuts those connections — with requests in them.
 */
import type { Server, ServerResponse } from 'node:http';

export interface Drainable {
  /**
   * Stops taking connections and requests and resolves once every connection has closed;
   * connections still open after `graceMs` are cut.
   */
  drain(graceMs: number): Promise<void>;
}

export function drainable(server: Server): Drainable {
  const answering = new Set<ServerResponse>();
  let draining = false;
  const lastOnItsConnection = (res: ServerResponse) => {
    if (!res.headersSent) res.setHeader('Connection', 'close');
  };

  server.on('request', (_req, res: ServerResponse) => {
    answering.add(res);
    if (draining) lastOnItsConnection(res);
    res.once('close', () => {
      answering.delete(res);
      // An answer whose headers had gone out before the drain kept its connection alive: close
      // that connection now that it is idle.
      if (draining) setImmediate(() => server.closeIdleConnections());
    });
  });

  return {
    drain(graceMs) {
      draining = true;
      for (const res of answering) lastOnItsConnection(res);
      return new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
