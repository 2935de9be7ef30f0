import { timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Knex } from '../db/knex.js';
import { AppError } from '../kernel/errors.js';
import { enforceRateLimit } from '../http/rate-limit.js';
import type { AppState } from '../http/route.js';
import type { AuthenticatedKey } from './api-key-store.js';
import { hashToken, keyModeOf, parseToken } from './api-key-token.js';
import type { Scope } from '../kernel/scopes.js';

export interface AuthenticateOptions {
  db: Knex;
  defaultRateLimitPerMinute: number;
  /** The key behind a token's hash, this request counted (ApiKeyService.authenticateRequest). */
  authenticateRequest: (hash: Buffer) => Promise<AuthenticatedKey | null>;
}

// One message for every failure: callers learn nothing about which keys exist.
const unauthorized = () => new AppError('unauthorized', 'A valid API key is required: Authorization: Bearer td_live_… (or td_test_…)', {
  headers: { 'WWW-Authenticate': 'Bearer realm="topicdesk"' },
});

/**
 * Resolves `Authorization: Bearer <token>` to an AuthContext and applies the key's
 * rate limit. Malformed tokens and bad checksums are refused before any query.
 */
export function authenticate(opts: AuthenticateOptions): Middleware<AppState> {
  return async (ctx, next) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(ctx.get('Authorization'));
    const token = m?.[1];
    if (!token || !parseToken(token)) throw unauthorized();
    const hash = hashToken(token);
    const found = await opts.authenticateRequest(hash);
    // The lookup is by hash already; comparing the stored digest in constant time
    // keeps it safe should the lookup ever become a prefix match.
    if (!found || !timingSafeEqual(found.keyHash, hash)) throw unauthorized();
    const { key, workspace } = found;
    const limit = key.rateLimitPerMinute ?? opts.defaultRateLimitPerMinute;
    ctx.state.auth = {
      keyId: key.id,
      keyName: key.name,
      scopes: key.scopes,
      mode: keyModeOf(workspace.mode),
      expiresAt: key.expiresAt,
      rateLimitPerMinute: limit,
      workspace,
    };
    ctx.state.db = opts.db;
    enforceRateLimit(ctx, { limit, count: found.windowCount, resetSeconds: found.windowResetSeconds });
    await next();
  };
}

export function requireScope(scope: Scope): Middleware<AppState> {
  return async (ctx, next) => {
    if (!ctx.state.auth.scopes.includes(scope)) {
      throw new AppError('forbidden', `This API key lacks the scope ${scope}`, { fields: { required_scope: scope } });
    }
    await next();
  };
}
