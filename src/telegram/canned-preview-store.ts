/**
 * Previews of canned responses in a ticket's topic (telegram_canned_previews): the text an
 * agent saw rendered, until Send or Cancel settles it. Only a pending preview is ever settled,
 * so a double tap sends once.
 */
import type { Db } from '../db/knex.js';

export type PreviewState = 'pending' | 'sent' | 'cancelled';

export interface CannedPreview {
  id: string;
  workspaceId: string;
  ticketId: string;
  cannedResponseId: string;
  /** As it was when previewed: the record names it even if the response is renamed or archived since. */
  shortcut: string;
  agentId: string;
  text: string;
  state: PreviewState;
  createdAt: Date;
  settledAt: Date | null;
}

const toPreview = (r: any): CannedPreview => ({
  id: String(r.id), workspaceId: r.workspace_id, ticketId: r.ticket_id, cannedResponseId: r.canned_response_id, shortcut: r.shortcut, agentId: r.agent_id,
  text: r.text, state: r.state, createdAt: r.created_at, settledAt: r.settled_at,
});

/** Ids come from callback data: anything but digits would be a bigint cast error. */
const isId = (id: string) => /^\d{1,18}$/.test(id);

export const cannedPreviewStore = {
  async insert(db: Db, p: { workspaceId: string; ticketId: string; cannedResponseId: string; shortcut: string; agentId: string; text: string; at: Date }): Promise<CannedPreview> {
    const [row] = await db('telegram_canned_previews').insert({
      workspace_id: p.workspaceId, ticket_id: p.ticketId, canned_response_id: p.cannedResponseId, shortcut: p.shortcut, agent_id: p.agentId, text: p.text, created_at: p.at,
    }).returning('*');
    return toPreview(row);
  },

  /** The preview of a ticket, locked until the transaction ends (Send settles it under this lock). */
  async lock(db: Db, workspaceId: string, ticketId: string, id: string): Promise<CannedPreview | null> {
    if (!isId(id)) return null;
    const row = await db('telegram_canned_previews').where({ id, workspace_id: workspaceId, ticket_id: ticketId }).forUpdate().first();
    return row ? toPreview(row) : null;
  },

  async find(db: Db, workspaceId: string, ticketId: string, id: string): Promise<CannedPreview | null> {
    if (!isId(id)) return null;
    const row = await db('telegram_canned_previews').where({ id, workspace_id: workspaceId, ticket_id: ticketId }).first();
    return row ? toPreview(row) : null;
  },

  /** Pending → `state`; false when it was not pending (already settled by another tap). */
  async settle(db: Db, workspaceId: string, ticketId: string, id: string, state: 'sent' | 'cancelled', at: Date): Promise<boolean> {
    if (!isId(id)) return false;
    const n = await db('telegram_canned_previews').where({ id, workspace_id: workspaceId, ticket_id: ticketId, state: 'pending' }).update({ state, settled_at: at });
    return n === 1;
  },
};
