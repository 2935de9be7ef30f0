/**
 * Sign-in to the team leads' dashboard (SPEC §6): a one-time link a lead/admin gets from the
 * bot (10 minutes, single use), or an API key with read:analytics; either starts a 12-hour
 * session stored in PostgreSQL. Invariants:
 * - only SHA-256 digests of login tokens and session ids are stored, and compared in constant time;
 * - a session is re-checked on every use against what granted it: the agent must still be an
 *   active lead/admin, the key still active with read:analytics — else the session ends.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Agent } from '../agents/agent-store.js';
import type { AgentService } from '../agents/agent-service.js';
import { keyStatus, type ApiKeyService } from '../auth/api-key-service.js';
import type { Db } from '../db/knex.js';
import { AppError } from '../kernel/errors.js';
import type { Scope } from '../kernel/scopes.js';
import type { Clock } from '../lib/clock.js';
import type { WorkspaceService } from '../workspaces/workspace-service.js';
import { dashboardStore } from './dashboard-store.js';

export const LOGIN_LINK_TTL_MS = 10 * 60_000;
export const SESSION_TTL_MS = 12 * 3_600_000;
const ANALYTICS: Scope = 'read:analytics';
const LEAD_ROLES: ReadonlySet<Agent['role']> = new Set(['lead', 'admin']);
/** 32 random bytes as base64url: what both login tokens and session ids look like. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();
const newToken = () => randomBytes(32).toString('base64url');
const sameDigest = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);

export interface DashboardSession {
  workspace: { id: string; name: string; mode: 'live' | 'sandbox' };
  who: string;
  agentId: string | null;
  apiKeyId: string | null;
  /** What the session may read: the key's scopes, or read:analytics for a lead. */
  scopes: Scope[];
  expiresAt: Date;
}

export interface NewSession {
  /** The cookie value; never stored. */
  token: string;
  expiresAt: Date;
}

const refused = (message: string) => new AppError('unauthorized', message);

export function createDashboardService(deps: { clock: Clock; publicUrl: string; agents: AgentService; apiKeys: ApiKeyService; workspaces: WorkspaceService }) {
  const { clock } = deps;

  async function startSession(db: Db, s: { workspaceId: string; agentId: string | null; apiKeyId: string | null; who: string }): Promise<NewSession> {
    const token = newToken();
    const at = clock.now();
    const expiresAt = new Date(at.getTime() + SESSION_TTL_MS);
    await dashboardStore.insertSession(db, { idHash: digest(token), ...s, at, expiresAt });
    return { token, expiresAt };
  }

  const isLead = (a: Pick<Agent, 'role' | 'active'> | null) => !!a && a.active && LEAD_ROLES.has(a.role);

  return {
    /** The one-time link `/dashboard` in the group answers with; refused (403) for anyone but an active lead/admin. */
    async loginLink(db: Db, workspaceId: string, agent: Agent): Promise<{ url: string; expiresAt: Date }> {
      if (!isLead(agent)) throw new AppError('forbidden', 'Only leads and admins can open the dashboard; ask an admin to make you a lead.');
      const token = newToken();
      const at = clock.now();
      const expiresAt = new Date(at.getTime() + LOGIN_LINK_TTL_MS);
      await dashboardStore.insertLoginToken(db, { tokenHash: digest(token), workspaceId, agentId: agent.id, at, expiresAt });
      return { url: `${deps.publicUrl}/dashboard/login?token=${token}`, expiresAt };
    },

    /** Whether a link still works (without using it): the confirmation page shows who it signs in. */
    async peekLoginLink(db: Db, token: string): Promise<{ who: string } | null> {
      if (!TOKEN_PATTERN.test(token)) return null;
      const hash = digest(token);
      const row = await dashboardStore.findLoginToken(db, hash);
      if (!row || !sameDigest(row.tokenHash, hash) || row.usedAt || row.expiresAt <= clock.now()) return null;
      const agent = await deps.agents.findById(db, row.workspaceId, row.agentId);
      return isLead(agent) ? { who: agent!.name } : null;
    },

    /** Uses a one-time link: a session for its lead, or 401 when it is unknown, used, expired or its agent no longer a lead. */
    async signInWithLink(db: Db, token: string): Promise<NewSession> {
      const invalid = refused('This sign-in link is not valid any more (links work once, for 10 minutes). Send /dashboard in the support group for a new one.');
      if (!TOKEN_PATTERN.test(token)) throw invalid;
      const hash = digest(token);
      const row = await dashboardStore.consumeLoginToken(db, hash, clock.now());
      if (!row || !sameDigest(row.tokenHash, hash)) throw invalid;
      const agent = await deps.agents.findById(db, row.workspaceId, row.agentId);
      if (!isLead(agent)) throw invalid;
      return startSession(db, { workspaceId: row.workspaceId, agentId: agent!.id, apiKeyId: null, who: agent!.name });
    },

    /** Signs in with an API key: 401 for an unknown/revoked/expired key, 403 without read:analytics. */
    async signInWithKey(db: Db, apiKey: string): Promise<NewSession> {
      const found = await deps.apiKeys.verifyToken(db, apiKey.trim());
      if (!found) throw refused('This API key is not valid (unknown, revoked or expired).');
      if (!found.key.scopes.includes(ANALYTICS)) throw new AppError('forbidden', 'This API key lacks the scope read:analytics', { fields: { required_scope: ANALYTICS } });
      return startSession(db, { workspaceId: found.workspace.id, agentId: null, apiKeyId: found.key.id, who: `API key “${found.key.name}”` });
    },

    /** The live session behind a cookie value, or null (unknown, expired, or its grant is gone: then it is ended). */
    async session(db: Db, token: string | undefined): Promise<DashboardSession | null> {
      if (!token || !TOKEN_PATTERN.test(token)) return null;
      const hash = digest(token);
      const now = clock.now();
      const row = await dashboardStore.findSession(db, hash, now);
      if (!row || !sameDigest(row.idHash, hash)) return null;
      let scopes: Scope[] = [];
      if (row.agentId) {
        if (isLead(await deps.agents.findById(db, row.workspaceId, row.agentId))) scopes = [ANALYTICS];
      } else if (row.apiKeyId) {
        const key = await deps.apiKeys.get(db, row.workspaceId, row.apiKeyId).catch(() => null);
        if (key && keyStatus(key, now) === 'active') scopes = key.scopes;
      }
      if (!scopes.length) {
        await dashboardStore.deleteSession(db, hash);
        return null;
      }
      const workspace = await deps.workspaces.get(db, row.workspaceId);
      return { workspace: { id: workspace.id, name: workspace.name, mode: workspace.mode }, who: row.who, agentId: row.agentId, apiKeyId: row.apiKeyId, scopes, expiresAt: row.expiresAt };
    },

    async signOut(db: Db, token: string | undefined): Promise<void> {
      if (token && TOKEN_PATTERN.test(token)) await dashboardStore.deleteSession(db, digest(token));
    },
  };
}

export type DashboardService = ReturnType<typeof createDashboardService>;
