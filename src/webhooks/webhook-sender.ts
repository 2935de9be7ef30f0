/**
 * One HTTP POST of a delivery: no redirects followed, a hard time budget, at most 1 KB of
 * the answer kept, and the SSRF guard on the address actually connected to.
 *
 * The guard is request-filtering-agent: its agents check the IP a host name resolved to
 * inside the connection's own lookup (and literal IPs before connecting), so a name that
 * answers "public" at registration and "private" now (DNS rebinding) is still refused.
 * Keep-alive sockets are reused per origin (maxSockets bounds one receiver's share).
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from 'request-filtering-agent';
import { parseRetryAfter, type AttemptResult } from './retry-policy.js';

const EXCERPT_BYTES = 1024;
/** Read at most this much of an answer; a longer one costs its connection. */
const MAX_READ_BYTES = 64 * 1024;
const USER_AGENT = 'topicdesk-webhooks/1';

export interface SenderOptions {
  allowPrivateTargets: boolean;
  timeoutMs: number;
  /**
   * Sockets per host: the worker's whole concurrency. The worker limits each endpoint itself;
   * here no attempt may wait for a socket (its time budget is already running), and several
   * endpoints can share a host.
   */
  maxSocketsPerHost: number;
  /** DNS resolution (tests inject answers here); the guard checks whatever it returns. */
  lookup?: LookupFunction;
}

export interface WebhookSender {
  post(url: string, headers: Record<string, string>, body: string): Promise<AttemptResult>;
  close(): void;
}

/** Text PostgreSQL can keep in jsonb: it refuses NUL characters (a binary or gzip answer has them). */
const storable = (text: string) => text.replaceAll('\u0000', '\uFFFD');

/** The first `EXCERPT_BYTES` of a body as text, without a character cut in half at the end. */
function excerptOf(chunks: Buffer[]): string | null {
  const bytes = Buffer.concat(chunks).subarray(0, EXCERPT_BYTES);
  if (bytes.length === 0) return null;
  // stream: a character cut by the 1 KB limit is held back instead of decoded as U+FFFD.
  return storable(new TextDecoder().decode(bytes, { stream: true }));
}

/** A short reason for a failed connection or exchange, fit to show an integrator. */
function describeError(err: Error & { code?: string }, timeoutMs: number): string {
  const guarded = /^DNS lookup (\S+?)\(.*is not allowed/.exec(err.message);
  if (guarded) {
    return `refused by the SSRF guard: the target address ${guarded[1]} is not public (loopback, private, link-local, CGNAT or metadata)`;
  }
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return `no answer within ${timeoutMs / 1000} s`;
  switch (err.code) {
    case 'ECONNREFUSED': return 'connection refused';
    case 'ECONNRESET': return 'connection reset by the receiver';
    case 'ENOTFOUND': return 'the host name does not resolve (ENOTFOUND)';
    case 'EAI_AGAIN': return 'DNS lookup failed for now (EAI_AGAIN)';
    case 'EHOSTUNREACH': case 'ENETUNREACH': return `the host cannot be reached (${err.code})`;
    default:
      if (err.code?.startsWith('ERR_TLS') || /certificate|SSL|TLS/i.test(err.message)) return `TLS failed: ${err.message}`;
      return err.code ? `${err.code}: ${err.message}` : err.message;
  }
}

export function createWebhookSender(opts: SenderOptions): WebhookSender {
  const agentOptions = {
    keepAlive: true,
    maxSockets: opts.maxSocketsPerHost,
    allowPrivateIPAddress: opts.allowPrivateTargets,
    // 0.0.0.0 and :: too: what registration lets through in that mode, sending must not refuse.
    allowMetaIPAddress: opts.allowPrivateTargets,
  };
  const httpAgent = new RequestFilteringHttpAgent(agentOptions);
  const httpsAgent = new RequestFilteringHttpsAgent(agentOptions);

  function post(url: string, headers: Record<string, string>, body: string): Promise<AttemptResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      const finish = (r: Omit<AttemptResult, 'durationMs'>) => {
        if (settled) return;
        settled = true;
        resolve({ ...r, durationMs: elapsed() });
      };
      const fail = (err: Error) => finish({ statusCode: null, error: storable(describeError(err, opts.timeoutMs)), excerpt: null, retryAfterSeconds: null });
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        fail(new Error('the endpoint URL is not valid'));
        return;
      }
      const secure = target.protocol === 'https:';
      const req = (secure ? https : http).request(target, {
        method: 'POST',
        agent: secure ? httpsAgent : httpAgent,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': USER_AGENT },
        lookup: opts.lookup,
        signal: AbortSignal.timeout(opts.timeoutMs),
      }, (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let read = 0;
        const done = (error: string | null) => finish({
          statusCode: status,
          error: error ?? (status >= 300 && status < 400 ? `redirects are not followed (${status})` : null),
          excerpt: excerptOf(chunks),
          retryAfterSeconds: parseRetryAfter(res.headers['retry-after'], new Date()),
        });
        res.on('data', (chunk: Buffer) => {
          if (read < EXCERPT_BYTES) chunks.push(chunk);
          read += chunk.length;
          // The status is what counts: do not let a receiver stream us a large answer.
          if (read > MAX_READ_BYTES) { res.destroy(); done(null); }
        });
        res.on('end', () => done(null));
        // Timed out or cut while the body was still coming: the status already arrived and stands.
        res.on('error', () => done(null));
        res.on('close', () => done(null));
      });
      req.on('error', fail);
      req.end(body);
    });
  }

  return {
    post,
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
