import type { Db } from '../db/knex.js';

/** The digests table: which local dates a workspace's digest was queued for. */
export const digestStore = {
  async exists(db: Db, workspaceId: string, localDate: string): Promise<boolean> {
    return !!(await db('digests').select(1).where({ workspace_id: workspaceId, local_date: localDate }).first());
  },

  /** Takes the day; false when it was already taken (another replica, an earlier tick). */
  async claim(db: Db, workspaceId: string, localDate: string, at: Date): Promise<boolean> {
    const r = await db.raw(
      'INSERT INTO digests (workspace_id, local_date, queued_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1',
      [workspaceId, localDate, at],
    );
    return r.rowCount === 1;
  },
};
