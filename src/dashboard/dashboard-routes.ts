/**
 * The team leads' dashboard (SPEC §6) under /dashboard: sign-in (one-time link or API key),
 * the page and its assets (Chart.js served from node_modules: no CDN), and the page's data
 * calls. Those are the /v1/metrics routes themselves — same schemas, validation, scope check
 * and handler — mounted at /dashboard/api/metrics/<kind> behind the session cookie instead of
 * a Bearer key; the session supplies the workspace, so a session only ever reads its own.
 */
import type Router from '@koa/router';
import type { Middleware, ParameterizedContext } from 'koa';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from '../db/knex.js';
import { mountRoutes, type AppState, type RouteDef } from '../http/route.js';
import { AppError } from '../kernel/errors.js';
import type { Scope } from '../kernel/scopes.js';
import { confirmLinkPage, dashboardPage, signInPage } from './dashboard-pages.js';
import { SESSION_TTL_MS, type DashboardService, type NewSession } from './dashboard-service.js';

export const SESSION_COOKIE = 'td_dashboard';
/** Nothing but our own origin: no inline script or style, no CDN, no framing. */
export const DASHBOARD_CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";
const FORM_LIMIT_BYTES = 8192;

const ASSETS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'assets');
// chart.js's package exports do not expose dist/ files: resolve its entry, then its UMD build next to it.
const CHART_JS = path.join(path.dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');
const ASSETS: Record<string, { file: string; type: string }> = {
  'dashboard.js': { file: path.join(ASSETS_DIR, 'dashboard.js'), type: 'text/javascript; charset=utf-8' },
  'dashboard.css': { file: path.join(ASSETS_DIR, 'dashboard.css'), type: 'text/css; charset=utf-8' },
  'favicon.svg': { file: path.join(ASSETS_DIR, 'favicon.svg'), type: 'image/svg+xml' },
  'chart.umd.min.js': { file: CHART_JS, type: 'text/javascript; charset=utf-8' },
};

export interface DashboardOptions {
  dashboard: DashboardService;
  db: Db;
  publicUrl: string;
  /** The metrics routes (/v1/metrics/*), served again to the page behind its session. */
  metricsRoutes: RouteDef[];
  requireScope(scope: Scope): Middleware<AppState>;
  validateResponses: boolean;
}

type Ctx = ParameterizedContext<AppState>;

function cookieOf(ctx: Ctx): string | undefined {
  for (const part of (ctx.get('Cookie') || '').split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === SESSION_COOKIE) return rest.join('=');
  }
  return undefined;
}

function securityHeaders(ctx: Ctx): void {
  ctx.set('Content-Security-Policy', DASHBOARD_CSP);
  ctx.set('X-Content-Type-Options', 'nosniff');
  // A login link carries its token in the URL: never pass it on in a Referer.
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('X-Frame-Options', 'DENY');
}

function html(ctx: Ctx, body: string, status = 200): void {
  securityHeaders(ctx);
  ctx.set('Cache-Control', 'no-store');
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.body = body;
}

/** A small urlencoded form (the sign-in forms), read by hand: the API's parser takes JSON only. */
async function formBody(ctx: Ctx): Promise<URLSearchParams> {
  if (!ctx.is('application/x-www-form-urlencoded')) throw new AppError('unsupported_media_type', 'Send the form as application/x-www-form-urlencoded');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > FORM_LIMIT_BYTES) throw new AppError('payload_too_large', 'The form is too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export function mountDashboard(router: Router<AppState>, opts: DashboardOptions): void {
  const { dashboard, db } = opts;
  const secure = opts.publicUrl.startsWith('https:');
  const publicOrigin = new URL(opts.publicUrl).origin;

  const setCookie = (ctx: Ctx, value: string, maxAgeSeconds: number) => {
    // Built by hand: Koa refuses a Secure cookie on a plain-HTTP hop (TLS often ends at a proxy).
    ctx.append('Set-Cookie', `${SESSION_COOKIE}=${value}; Path=/dashboard; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`);
  };
  const startSession = (ctx: Ctx, s: NewSession) => {
    setCookie(ctx, s.token, Math.floor(SESSION_TTL_MS / 1000));
    securityHeaders(ctx);
    ctx.redirect('/dashboard');
    ctx.status = 303;
  };

  /** Forms post from our own pages only: a cross-site POST is refused (SameSite covers the cookie, this covers sign-in). */
  const sameOrigin: Middleware<AppState> = async (ctx, next) => {
    const origin = ctx.get('Origin');
    if (origin && origin !== 'null') {
      let host = '';
      try { host = new URL(origin).host; } catch { /* refused below */ }
      if (origin !== publicOrigin && host !== ctx.host) throw new AppError('forbidden', 'Cross-site form posts are not accepted');
    }
    await next();
  };

  router.get('/dashboard', async (ctx) => {
    const session = await dashboard.session(db, cookieOf(ctx));
    if (!session) {
      securityHeaders(ctx);
      return ctx.redirect('/dashboard/login');
    }
    html(ctx, dashboardPage({ workspace: session.workspace.name, who: session.who }));
  });

  router.get('/dashboard/login', async (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : undefined;
    if (token === undefined) {
      if (await dashboard.session(db, cookieOf(ctx))) return ctx.redirect('/dashboard');
      return html(ctx, signInPage());
    }
    const link = await dashboard.peekLoginLink(db, token);
    if (!link) return html(ctx, signInPage('This sign-in link is not valid any more (links work once, for 10 minutes). Send /dashboard in the support group for a new one.'), 401);
    html(ctx, confirmLinkPage(token, link.who));
  });

  router.post('/dashboard/login', sameOrigin, async (ctx) => {
    const form = await formBody(ctx);
    const token = form.get('token');
    const key = form.get('key');
    try {
      if (token) return startSession(ctx, await dashboard.signInWithLink(db, token));
      if (key) return startSession(ctx, await dashboard.signInWithKey(db, key));
      return html(ctx, signInPage('Enter an API key.'), 422);
    } catch (err) {
      if (err instanceof AppError && (err.code === 'unauthorized' || err.code === 'forbidden')) return html(ctx, signInPage(err.message), err.status);
      throw err;
    }
  });

  router.post('/dashboard/logout', sameOrigin, async (ctx) => {
    await dashboard.signOut(db, cookieOf(ctx));
    setCookie(ctx, '', 0);
    securityHeaders(ctx);
    ctx.redirect('/dashboard/login');
    ctx.status = 303;
  });

  // Read once: the files ship with the service and change only with it.
  const cache = new Map<string, Buffer>();
  router.get('/dashboard/assets/:file', async (ctx) => {
    const asset = Object.hasOwn(ASSETS, ctx.params.file) ? ASSETS[ctx.params.file] : undefined;
    if (!asset) throw new AppError('not_found', 'No such asset');
    let body = cache.get(asset.file);
    if (!body) cache.set(asset.file, (body = readFileSync(asset.file)));
    securityHeaders(ctx);
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = asset.type;
    ctx.body = body;
  });

  // The page's data: the session stands in for the API key (its workspace, its scopes).
  const authenticateSession: Middleware<AppState> = async (ctx, next) => {
    const session = await dashboard.session(db, cookieOf(ctx));
    if (!session) throw new AppError('unauthorized', 'Sign in at /dashboard/login');
    ctx.state.auth = {
      keyId: session.apiKeyId ?? `agent:${session.agentId}`, keyName: `dashboard: ${session.who}`, scopes: session.scopes,
      mode: session.workspace.mode === 'sandbox' ? 'test' : 'live', expiresAt: session.expiresAt, rateLimitPerMinute: 0, workspace: session.workspace,
    };
    ctx.state.db = db;
    ctx.set('Cache-Control', 'no-store');
    await next();
  };
  const noBody: Middleware<AppState> = () => { throw new AppError('method_not_allowed', 'The dashboard API is read-only'); };
  const apiRoutes = opts.metricsRoutes.map((def) => {
    if (def.method !== 'get' || !def.path.startsWith('/v1/metrics/')) throw new Error(`The dashboard serves GET /v1/metrics/* only, not ${def.method} ${def.path}`);
    return { ...def, path: def.path.replace('/v1/metrics/', '/dashboard/api/metrics/') };
  });
  mountRoutes(router, apiRoutes, {
    authenticate: authenticateSession, requireScope: opts.requireScope, parseBody: noBody, idempotency: noBody, validateResponses: opts.validateResponses,
  });
}
