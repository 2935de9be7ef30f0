/**
 * The HTTP side of a graceful stop (src/http/drain.ts), against a real server and a client
 * that keeps its connections alive, as a load balancer does: the answers in flight go out,
 * each closing its connection, and nothing new is taken — not even on a kept-alive connection.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { drainable, type Drainable } from '../../src/http/drain.js';
import { waitFor } from '../helpers/process.js';

interface Answer { status?: number; connection?: string; body?: string; error?: string }

describe('drainable HTTP server', () => {
  let server: http.Server;
  let drain: Drainable;
  let agent: http.Agent;
  let port: number;
  /** Requests the server has begun to answer. */
  let taken: string[];

  beforeEach(async () => {
    taken = [];
    server = http.createServer((req, res) => {
      taken.push(req.url!);
      if (req.url === '/stream') {
        // Headers and a first chunk now (before the drain), the rest later.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('part 1, ');
        setTimeout(() => res.end('part 2'), 200);
        return;
      }
      setTimeout(() => res.end(`answer to ${req.url}`), req.url === '/slow' ? 200 : 0);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    drain = drainable(server);
    agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  });

  afterEach(() => {
    agent.destroy();
    server.closeAllConnections();
    server.close();
  });

  const get = (path: string) => new Promise<Answer>((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection, body }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code }));
  });

  /** The client's kept-alive connection is gone (its next request needs a new one). */
  const connectionClosed = () => waitFor('the client to see its connection closed', () => Object.keys(agent.freeSockets).length === 0 && Object.keys(agent.sockets).length === 0, 2_000);

  for (const path of ['/slow', '/stream']) {
    it(`answers a request in flight (${path}), closes its connection, and takes nothing new on it`, async () => {
      assert.equal((await get('/warm-up')).status, 200);
      const inFlight = get(path);
      await waitFor('the request to be taken', () => taken.includes(path));
      const drained = drain.drain(60_000);

      const answer = await inFlight;
      assert.equal(answer.status, 200);
      assert.equal(answer.body, path === '/slow' ? 'answer to /slow' : 'part 1, part 2');
      if (path === '/slow') assert.equal(answer.connection, 'close', 'the answer says the connection ends with it');
      await connectionClosed();
      const next = await get('/next');
      assert.equal(next.error, 'ECONNREFUSED', 'a new request finds the server gone');
      assert.ok(!taken.includes('/next'));
      await drained; // every connection closed: no grace period needed
    });
  }

  it('closes an idle kept-alive connection at once', async () => {
    assert.equal((await get('/warm-up')).status, 200);
    await drain.drain(60_000);
    await connectionClosed();
    assert.equal((await get('/next')).error, 'ECONNREFUSED');
    assert.deepEqual(taken, ['/warm-up']);
  });
});
