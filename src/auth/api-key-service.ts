/**
 * API keys: create (token shown once), list, revoke, rotate with an overlap window.
 * Invariants: only the SHA-256 of a token is stored; a key never grants more than
 * the key that created it holds (scopes, rate limit, expiry: api-key-bounds.ts); rotation
 * never extends the old key's life.
 */
import type { Db } from '../db/knex.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { AppError, notFound } from '../kernel/errors.js';
import { paginate, type Page, type PageRequest } from '../kernel/pagination.js';
import type { WorkspaceService } from '../workspaces/workspace-service.js';
import { apiKeyStore, type ApiKeyRow } from './api-key-store.js';
import type { ApiKeyJson } from './api-key-schemas.js';
import { generateToken, hashToken, keyModeOf, parseToken } from './api-key-token.js';
import { timingSafeEqual } from 'node:crypto';
import { expandScopes, type Scope } from '../kernel/scopes.js';
import { inTransaction } from '../db/transaction.js';
import { boundedLimits, type KeyLimits } from './api-key-bounds.js';
import { createKeyLeases } from './key-leases.js';

export function keyStatus(k: ApiKeyRow, now: Date): 'active' | 'expired' | 'revoked' {
  if (k.revokedAt) return 'revoked';
  if (k.expiresAt && k.expiresAt <= now) return 'expired';
  return 'active';
}

export function presentApiKey(k: ApiKeyRow, mode: 'live' | 'test', now: Date): ApiKeyJson {
  return {
    id: k.id,
    name: k.name,
    token_prefix: k.tokenPrefix,
    scopes: k.scopes,
    mode,
    workspace_id: k.workspaceId,
    status: keyStatus(k, now),
    rate_limit_per_minute: k.rateLimitPerMinute,
    expires_at: k.expiresAt?.toISOString() ?? null,
    revoked_at: k.revokedAt?.toISOString() ?? null,
    last_used_at: k.lastUsedAt?.toISOString() ?? null,
    rotated_from_id: k.rotatedFromId,
    created_at: k.createdAt.toISOString(),
  };
}

export interface CreateKeyInput {
  workspaceId: string;
  name: string;
  scopes: string[];
  /** Omitted: the calling key's expiry (none for the CLI). */
  expiresAt?: Date | null;
  /** Omitted: the calling key's rate limit (the service default for the CLI). */
  rateLimitPerMinute?: number | null;
  /**
   * The key making the request, whose scopes, rate limit and expiry bound the new key;
   * absent for the operator's CLI, the root of trust.
   */
  grantorKeyId?: string;
}

/** The calling key, as far as it bounds what it hands out. */
interface Grantor extends KeyLimits {
  scopes: readonly Scope[];
}

export interface CreatedKey {
  key: ApiKeyRow;
  token: string;
  mode: 'live' | 'test';
}

export interface ApiKeyServiceDeps {
  clock: Clock;
  /** The process's pool: requests' keys are looked up (and counted) on it, outside any transaction. */
  db: Db;
  rotationOverlapHours: number;
  defaultRateLimitPerMinute: number;
  /** A key's last use is written at most this often. */
  lastUsedWriteIntervalSeconds: number;
  /** How long a busy key's chunk may serve without asking PostgreSQL (key-leases.ts). */
  leaseMaxAgeMs: number;
  workspaces: WorkspaceService;
}

export function createApiKeyService(deps: ApiKeyServiceDeps) {
  const { clock } = deps;
  const leases = createKeyLeases({
    defaultLimit: deps.defaultRateLimitPerMinute,
    maxAgeMs: deps.leaseMaxAgeMs,
    renew: (hash, chunk) => apiKeyStore.authenticate(deps.db, hash, deps.lastUsedWriteIntervalSeconds, chunk),
  });

  async function grantorOf(db: Db, workspaceId: string, keyId: string): Promise<Grantor> {
    const key = await apiKeyStore.findById(db, workspaceId, keyId);
    // Authentication found this key a moment ago; only a deleted row could get here.
    if (!key) throw new AppError('unauthorized', 'The calling API key no longer exists');
    return key;
  }

  async function create(db: Db, input: CreateKeyInput): Promise<CreatedKey> {
    const grantor = input.grantorKeyId ? await grantorOf(db, input.workspaceId, input.grantorKeyId) : undefined;
    return issue(db, input, grantor, grantor ?? { rateLimitPerMinute: null, expiresAt: null });
  }

  /**
   * Creates the key. Limits the input leaves out come from `inherited` (the grantor on create,
   * the old key on rotation), capped at the grantor's.
   */
  async function issue(db: Db, input: CreateKeyInput & { rotatedFromId?: string }, grantor: Grantor | undefined, inherited: KeyLimits): Promise<CreatedKey> {
    // The API validates its body with JSON Schema; the CLI and seeds come straight here,
    // so the same limits are checked again (instead of surfacing a constraint violation).
    if (typeof input.name !== 'string' || input.name.trim() === '' || input.name.length > 100) {
      throw new AppError('validation_error', 'name must be 1-100 characters', { details: [{ field: 'name', error: 'must be 1-100 characters' }] });
    }
    if (input.expiresAt && !Number.isFinite(input.expiresAt.getTime())) {
      throw new AppError('validation_error', 'expires_at is not a valid time', { details: [{ field: 'expires_at', error: 'is not a valid time' }] });
    }
    if (input.rateLimitPerMinute != null && !(Number.isInteger(input.rateLimitPerMinute) && input.rateLimitPerMinute >= 1)) {
      throw new AppError('validation_error', 'rate_limit_per_minute must be a positive whole number', {
        details: [{ field: 'rate_limit_per_minute', error: 'must be a positive whole number', received: input.rateLimitPerMinute }],
      });
    }
    const workspace = await deps.workspaces.get(db, input.workspaceId);
    let scopes: Scope[];
    try {
      scopes = expandScopes(input.scopes);
    } catch (err) {
      throw new AppError('validation_error', (err as Error).message, { details: [{ field: 'scopes', error: (err as Error).message }] });
    }
    if (grantor) {
      const beyond = scopes.filter((s) => !grantor.scopes.includes(s));
      if (beyond.length) {
        throw new AppError('forbidden', `A key cannot grant scopes it does not hold: ${beyond.join(', ')}`, { fields: { required_scope: beyond[0] } });
      }
    }
    const now = clock.now();
    if (input.expiresAt && input.expiresAt <= now) {
      throw new AppError('validation_error', 'expires_at must be in the future', {
        details: [{ field: 'expires_at', error: 'must be in the future', received: input.expiresAt.toISOString() }],
      });
    }
    const limits = grantor
      ? boundedLimits(input, inherited, grantor, deps.defaultRateLimitPerMinute)
      : { rateLimitPerMinute: input.rateLimitPerMinute ?? inherited.rateLimitPerMinute, expiresAt: input.expiresAt ?? inherited.expiresAt };
    const mode = keyModeOf(workspace.mode);
    const { token, prefix, hash } = generateToken(mode);
    const key = await apiKeyStore.insert(db, {
      id: newId('key'),
      workspaceId: workspace.id,
      name: input.name,
      tokenPrefix: prefix,
      keyHash: hash,
      scopes,
      rateLimitPerMinute: limits.rateLimitPerMinute,
      expiresAt: limits.expiresAt,
      rotatedFromId: input.rotatedFromId ?? null,
      createdAt: now,
    });
    return { key, token, mode };
  }

  async function get(db: Db, workspaceId: string, id: string): Promise<ApiKeyRow> {
    const key = await apiKeyStore.findById(db, workspaceId, id);
    if (!key) throw notFound('API key');
    return key;
  }

  return {
    create,
    get,

    /**
     * The active key behind a token typed by a person (the dashboard's sign-in form), with its
     * workspace; null for anything else. Counts as a use of the key, like an API call.
     */
    async verifyToken(db: Db, token: string, lastUsedWriteIntervalSeconds = 60): Promise<{ key: ApiKeyRow; workspace: { id: string; name: string; mode: 'live' | 'sandbox' } } | null> {
      if (!parseToken(token)) return null;
      const hash = hashToken(token);
      const found = await apiKeyStore.authenticate(db, hash, lastUsedWriteIntervalSeconds);
      if (!found || !timingSafeEqual(found.keyHash, hash)) return null;
      return { key: found.key, workspace: found.workspace };
    },

    list(db: Db, workspaceId: string, page: PageRequest, includeRevoked: boolean): Promise<Page<ApiKeyRow>> {
      return paginate(apiKeyStore.listQuery(db, workspaceId, includeRevoked), [['created_at', 'desc'], ['id', 'desc']], page, apiKeyStore.toRow);
    },

    /**
     * The active key behind a token's hash, with this request counted in the key's rate-limit
     * window (from this replica's lease on a busy key: key-leases.ts); null for no such key.
     */
    authenticateRequest: (hash: Buffer) => leases.use(hash),

    /** A workspace's name or mode changed: requests see it at once on this replica. */
    forgetWorkspace: (workspaceId: string) => leases.forgetWorkspace(workspaceId),

    async revoke(db: Db, workspaceId: string, id: string): Promise<ApiKeyRow> {
      const key = await apiKeyStore.revoke(db, workspaceId, id, clock.now());
      if (!key) throw notFound('API key');
      leases.forgetKey(id);
      return key;
    },

    /**
     * A new key with the same name, scopes, rate limit and expiry (unless `expiresAt` is given),
     * within the calling key's bounds; the old one works for `overlapHours` more.
     */
    async rotate(db: Db, workspaceId: string, id: string, opts: { overlapHours?: number; expiresAt?: Date | null; grantorKeyId?: string }): Promise<CreatedKey & { old: ApiKeyRow }> {
      // One transaction: either the replacement exists and the old key's end is set, or neither.
      // The old key's row stays locked until commit: concurrent rotations (and a revoke racing
      // this one) are serialised, so a key is replaced at most once and never after its revocation.
      const rotated = await inTransaction(db, async (trx) => {
        const old = await apiKeyStore.findById(trx, workspaceId, id, { forUpdate: true });
        if (!old) throw notFound('API key');
        const status = keyStatus(old, clock.now());
        if (status !== 'active') throw new AppError('conflict', `API key ${id} is ${status} and cannot be rotated`);
        const replacement = await apiKeyStore.liveReplacementOf(trx, workspaceId, id);
        if (replacement) throw new AppError('conflict', `API key ${id} was already rotated; its replacement is ${replacement}`);
        const overlapMs = (opts.overlapHours ?? deps.rotationOverlapHours) * 3_600_000;
        const grantor = opts.grantorKeyId ? await grantorOf(trx, workspaceId, opts.grantorKeyId) : undefined;
        // The replacement keeps the old key's limits (capped at the grantor's) unless told otherwise.
        const created = await issue(trx, { workspaceId, name: old.name, scopes: old.scopes, expiresAt: opts.expiresAt, rotatedFromId: old.id }, grantor, old);
        await apiKeyStore.expireBy(trx, workspaceId, old.id, new Date(clock.now().getTime() + overlapMs));
        return { ...created, old: (await apiKeyStore.findById(trx, workspaceId, old.id))! };
      });
      leases.forgetKey(id); // its expiry moved (to now, with no overlap)
      return rotated;
    },
  };
}

export type ApiKeyService = ReturnType<typeof createApiKeyService>;
