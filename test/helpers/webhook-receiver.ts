/**
 * A local HTTP server standing in for an integrator's webhook endpoint: it records every
 * request (raw body and headers) and answers as the test scripts it — a status, a delay,
 * a hang, a dropped connection — and can go down and come back on the same port.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The raw body, exactly as received. */
  body: string;
  receivedAt: number;
}

export interface Reply {
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  /** Answer after this many ms. */
  delayMs?: number;
  /** Never answer (the sender's timeout has to end it). */
  hang?: boolean;
  /** Cut the connection without answering. */
  destroy?: boolean;
}

export type Responder = (req: ReceivedRequest, index: number) => Reply;

export interface Receiver {
  /** http://127.0.0.1:<port>/hook */
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** How every following request is answered (default: 200 "ok"). */
  respond(responder: Responder): void;
  /** Requests carrying this webhook-id. */
  withWebhookId(id: string): ReceivedRequest[];
  /** Resolves when `n` requests in all have arrived. */
  waitForRequests(n: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  /** Stop listening (connections refused) and cut open connections. */
  down(): Promise<void>;
  /** Listen again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(opts: { path?: string } = {}): Promise<Receiver> {
  const path = opts.path ?? '/hook';
  const requests: ReceivedRequest[] = [];
  let responder: Responder = () => ({ status: 200, body: 'ok' });
  const sockets = new Set<Socket>();
  const waiters: Array<{ n: number; resolve: () => void }> = [];

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: ReceivedRequest = {
        method: req.method ?? '', path: req.url ?? '', headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'), receivedAt: Date.now(),
      };
      requests.push(received);
      for (const w of waiters.filter((w) => requests.length >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      const reply = responder(received, requests.length - 1);
      if (reply.hang) return;
      if (reply.destroy) { req.socket.destroy(); return; }
      const send = () => {
        res.writeHead(reply.status ?? 200, reply.headers ?? {});
        res.end(reply.body ?? '');
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const listen = (port: number) => new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  await listen(0);
  const port = (server.address() as AddressInfo).port;

  const down = () => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    if (!server.listening) { resolve(); return; }
    server.close(() => resolve());
  });

  return {
    url: `http://127.0.0.1:${port}${path}`,
    port,
    requests,
    respond(r) { responder = r; },
    withWebhookId: (id) => requests.filter((r) => r.headers['webhook-id'] === id),
    waitForRequests(n, timeoutMs = 10_000) {
      if (requests.length >= n) return Promise.resolve(requests.slice());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`receiver: ${requests.length} of ${n} requests after ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ n, resolve: () => { clearTimeout(timer); resolve(requests.slice()); } });
      });
    },
    down,
    up: () => listen(port),
    close: down,
  };
}
