/** The dashboard's tables: one-time login tokens and sessions, keyed by SHA-256 digests. */
import type { Db } from '../db/knex.js';
import { prepared } from '../db/prepared.js';

export interface SessionRow {
  idHash: Buffer;
  workspaceId: string;
  agentId: string | null;
  apiKeyId: string | null;
  who: string;
  expiresAt: Date;
}

export interface LoginTokenRow {
  tokenHash: Buffer;
  workspaceId: string;
  agentId: string;
  expiresAt: Date;
  usedAt: Date | null;
}

const toSession = (r: any): SessionRow => ({
  idHash: r.id_hash, workspaceId: r.workspace_id, agentId: r.agent_id, apiKeyId: r.api_key_id, who: r.who, expiresAt: r.expires_at,
});
const toToken = (r: any): LoginTokenRow => ({
  tokenHash: r.token_hash, workspaceId: r.workspace_id, agentId: r.agent_id, expiresAt: r.expires_at, usedAt: r.used_at,
});

/**
 * The session behind a cookie, on every request of the page's data: prepared (planned once per
 * connection), its columns named so a column added by a migration cannot change its result.
 */
const FIND_SESSION_NAME = 'td_dashboard_session';
const FIND_SESSION_SQL = `SELECT id_hash, workspace_id, agent_id, api_key_id, who, expires_at
FROM dashboard_sessions WHERE id_hash = ? AND expires_at > ?`;

export const dashboardStore = {
  async insertLoginToken(db: Db, t: { tokenHash: Buffer; workspaceId: string; agentId: string; at: Date; expiresAt: Date }): Promise<void> {
    // Lazy cleanup keeps both tables small without a job of their own.
    await db('dashboard_login_tokens').where('expires_at', '<=', t.at).delete();
    await db('dashboard_login_tokens').insert({ token_hash: t.tokenHash, workspace_id: t.workspaceId, agent_id: t.agentId, created_at: t.at, expires_at: t.expiresAt });
  },

  async findLoginToken(db: Db, tokenHash: Buffer): Promise<LoginTokenRow | null> {
    const r = await db('dashboard_login_tokens').where({ token_hash: tokenHash }).first();
    return r ? toToken(r) : null;
  },

  /** Marks the token used when it is unused and unexpired, in one statement: two clicks race, one wins. */
  async consumeLoginToken(db: Db, tokenHash: Buffer, at: Date): Promise<LoginTokenRow | null> {
    const [r] = await db('dashboard_login_tokens')
      .where({ token_hash: tokenHash }).whereNull('used_at').where('expires_at', '>', at)
      .update({ used_at: at }).returning('*');
    return r ? toToken(r) : null;
  },

  async insertSession(db: Db, s: Omit<SessionRow, 'expiresAt'> & { at: Date; expiresAt: Date }): Promise<void> {
    await db('dashboard_sessions').where('expires_at', '<=', s.at).delete();
    await db('dashboard_sessions').insert({
      id_hash: s.idHash, workspace_id: s.workspaceId, agent_id: s.agentId, api_key_id: s.apiKeyId, who: s.who, created_at: s.at, expires_at: s.expiresAt,
    });
  },

  async findSession(db: Db, idHash: Buffer, at: Date): Promise<SessionRow | null> {
    const { rows: [r] } = await prepared(db, FIND_SESSION_NAME, FIND_SESSION_SQL, [idHash, at]);
    return r ? toSession(r) : null;
  },

  async deleteSession(db: Db, idHash: Buffer): Promise<void> {
    await db('dashboard_sessions').where({ id_hash: idHash }).delete();
  },
};
