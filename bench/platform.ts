/**
 * Platform hot paths: `npm run bench:platform`.
 * hello-world floor (/healthz), the authenticated read path (/v1/me = key lookup + shared
 * rate-limit count in one query), a 50-row list with total, and an idempotent create.
 * /v1/me also runs against its limit (bench/limit.ts): pgbench running the statements the
 * request sends, interleaved with it, and the ratio.
 */
import { createServices } from '../src/container.js';
import { loadConfig } from '../src/config.js';
import { systemClock } from '../src/lib/clock.js';
import { createLogger } from '../src/lib/logger.js';
import { run, startBenchEnv, table, type BenchResult } from './harness.js';
import { limitTable, runLimit } from './limit.js';

const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);

const env = await startBenchEnv();
try {
  const services = createServices({ config: loadConfig({ NODE_ENV: 'production' }), db: env.knex, logger: createLogger('silent'), clock: systemClock });
  // A limit far above what the machine can send, so the limiter counts but never refuses.
  // pgbench runs the same auth statement with this key's hash, so it spends the same budget: far above both.
  const { token } = await services.apiKeys.create(env.knex, { workspaceId: 'ws_default', name: 'bench', scopes: ['all'], rateLimitPerMinute: 1_000_000_000 });
  for (let i = 0; i < 200; i++) await services.apiKeys.create(env.knex, { workspaceId: 'ws_default', name: `filler ${i}`, scopes: ['read:tickets'] });
  const headers = { authorization: `Bearer ${token}` };
  const common = { connections: CONNECTIONS, duration: DURATION, pid: env.pid, postmasterPid: env.postmasterPid };
  const url = (path: string) => env.baseUrl + path;
  const results: BenchResult[] = [];
  results.push(await run('GET /healthz (no auth, no db)', { ...common, url: url('/healthz') }));
  const me = await runLimit(
    { databaseUrl: env.databaseUrl, pid: env.pid, postmasterPid: env.postmasterPid, connections: CONNECTIONS, seconds: DURATION },
    { name: 'GET /v1/me (auth + rate limit)', load: { url: url('/v1/me'), headers }, samples: [() => ({ path: '/v1/me', headers })] },
  );
  results.push(me);
  results.push(await run('GET /v1/api-keys?limit=50 (list + total)', { ...common, url: url('/v1/api-keys?limit=50'), headers }));
  let n = 0;
  results.push(await run('POST /v1/api-keys + Idempotency-Key', {
    ...common,
    url: url('/v1/api-keys'),
    requests: [{
      method: 'POST',
      body: JSON.stringify({ name: 'bench', scopes: ['read:tickets'] }),
      // A fresh key per request: every request does the full claim + insert + store.
      setupRequest: (req: any) => ({ ...req, headers: { ...headers, 'content-type': 'application/json', 'idempotency-key': `bench-${process.pid}-${++n}` } }),
    }],
  }));
  process.stdout.write(`\n${table(results)}\n\n${limitTable([me])}\n`);
} finally {
  await env.close();
}
