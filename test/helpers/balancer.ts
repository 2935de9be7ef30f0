/**
 * A small HTTP load balancer on loopback, standing in for the one production puts in front of
 * several replicas (nginx, HAProxy, a cloud load balancer). Per request, round robin over
 * the backends in rotation, with what such balancers do by default:
 *  - keep-alive connections to the backends, reused while they stay open (nginx
 *    `upstream { keepalive }`, HAProxy `http-reuse`);
 *  - a request whose connection fails before any answer came back goes to the next backend
 *    when that is safe: the connection was refused (nothing was sent), or the method is
 *    idempotent, or the request carries an Idempotency-Key (nginx `proxy_next_upstream`
 *    retries POST only with `non_idempotent`); otherwise the client gets a 502;
 *  - a backend stays in the rotation until dropped (what a health check would do): until
 *    then a replica that stopped listening costs a refused connection and a retry.
 * Each answer says which backend gave it (X-Served-By), and every forwarding is logged.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
/** Hop-by-hop headers (RFC 9110 §7.6.1): never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

export interface Forwarding {
  /** The client request this forwarding is for (retries share it). */
  request: number;
  method: string;
  path: string;
  backend: string;
  /** The backend's status, or null when the connection failed (see error). */
  status: number | null;
  error: string | null;
  /** Whether this forwarding reused a kept-alive connection. */
  reusedSocket: boolean;
  /** Date.now() when it was sent, and when the backend's answer (or the error) came. */
  sentAt: number;
  answeredAt: number;
}

export interface Balancer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Puts a backend (its base URL) into the rotation. */
  add(backend: string): void;
  /** Takes a backend out of the rotation (requests already sent to it carry on). */
  drop(backend: string): void;
  /** The backends in rotation now. */
  backends(): string[];
  /** Every forwarding so far, retries included, oldest first. */
  log: Forwarding[];
  /** Answers given to clients, by the backend that gave them. */
  servedBy(backend: string): Forwarding[];
  /** Forwardings sent and not answered yet. */
  inFlight(): Array<Pick<Forwarding, 'request' | 'method' | 'path' | 'backend' | 'sentAt'>>;
  close(): Promise<void>;
}

export async function startBalancer(opts: { timeoutMs?: number } = {}): Promise<Balancer> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const rotation: string[] = [];
  let next = 0;
  const log: Forwarding[] = [];
  const pending = new Set<Pick<Forwarding, 'request' | 'method' | 'path' | 'backend' | 'sentAt'>>();
  let requests = 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set<Socket>();

  function pick(tried: Set<string>): string | null {
    const candidates = rotation.filter((b) => !tried.has(b));
    if (!candidates.length) return null;
    const b = rotation[next++ % rotation.length];
    return tried.has(b) ? candidates[0] : b;
  }

  function forward(req: http.IncomingMessage, body: Buffer, backend: string): Promise<{ res: http.IncomingMessage; reused: boolean } | { error: NodeJS.ErrnoException; sent: boolean; reused: boolean }> {
    return new Promise((resolve) => {
      const target = new URL(req.url ?? '/', backend);
      const headers: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
      headers.host = target.host;
      headers['content-length'] = String(body.length);
      const out = http.request(target, { method: req.method, headers, agent, timeout: timeoutMs });
      let connected = false;
      out.on('socket', (s) => {
        if (!s.connecting) connected = true;
        else s.once('connect', () => { connected = true; });
      });
      out.on('timeout', () => out.destroy(Object.assign(new Error('backend timeout'), { code: 'ETIMEDOUT' })));
      out.on('response', (res) => resolve({ res, reused: out.reusedSocket }));
      out.on('error', (error: NodeJS.ErrnoException) => resolve({ error, sent: connected, reused: out.reusedSocket }));
      out.end(body);
    });
  }

  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const request = ++requests;
    const method = req.method ?? 'GET';
    const retryable = IDEMPOTENT.has(method) || req.headers['idempotency-key'] !== undefined;
    const tried = new Set<string>();
    for (;;) {
      const backend = pick(tried);
      if (!backend) {
        res.writeHead(502, { 'content-type': 'text/plain' }).end('no backend could answer');
        return;
      }
      tried.add(backend);
      const sent = { request, method, path: req.url ?? '', backend, sentAt: Date.now() };
      pending.add(sent);
      const r = await forward(req, body, backend);
      pending.delete(sent);
      const entry = { ...sent, answeredAt: Date.now() };
      if ('res' in r) {
        log.push({ ...entry, status: r.res.statusCode ?? 0, error: null, reusedSocket: r.reused });
        const headers: http.OutgoingHttpHeaders = { 'x-served-by': backend };
        for (const [k, v] of Object.entries(r.res.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
        res.writeHead(r.res.statusCode ?? 502, headers);
        r.res.pipe(res);
        return;
      }
      log.push({ ...entry, status: null, error: r.error.code ?? r.error.message, reusedSocket: r.reused });
      const refused = r.error.code === 'ECONNREFUSED';
      if (!refused && r.sent && !retryable) {
        res.writeHead(502, { 'content-type': 'text/plain', 'x-served-by': backend }).end(`backend failed: ${r.error.code ?? r.error.message}`);
        return;
      }
    }
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    add(backend) { if (!rotation.includes(backend)) rotation.push(backend); },
    drop(backend) {
      const i = rotation.indexOf(backend);
      if (i >= 0) rotation.splice(i, 1);
    },
    backends: () => rotation.slice(),
    log,
    servedBy: (backend) => log.filter((f) => f.backend === backend && f.status !== null),
    inFlight: () => [...pending],
    close: () => new Promise<void>((resolve) => {
      agent.destroy();
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
