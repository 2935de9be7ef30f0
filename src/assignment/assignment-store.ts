/**
 * The assignment module's tables: round-robin rotations (assignment_rotations) and queue kicks
 * (queue_kicks, written by the triggers of migration 20261204000300).
 */
import { LOCK_NAMESPACES, lockKey } from '../db/advisory-lock.js';
import type { Db } from '../db/knex.js';

/** With "workspace:team" (or "workspace:none"), the lock of a queue's manual order. */
const QUEUE_ORDER_LOCK = LOCK_NAMESPACES.queueOrder;

/** A claimed kick: the team whose queue to work off, and which kick the claim saw. */
export interface Kick {
  workspaceId: string;
  teamId: string;
  /** How many kicks the row had counted when claimed: more by the end means look again. */
  kicks: number;
}

export const assignmentStore = {
  /**
   * The last agent a rotation picked, with the rotation row locked until the transaction ends:
   * concurrent round-robin picks of one team (or of the workspace, scope '*') queue here, so
   * each sees the pick before it.
   */
  async lockRotation(db: Db, workspaceId: string, scope: string): Promise<string | null> {
    const locked = () => db('assignment_rotations').select('last_agent_id').where({ workspace_id: workspaceId, scope }).forUpdate().first();
    // Every pick but a scope's first finds the row: one statement under the team's queue of picks.
    const row = await locked();
    if (row) return row.last_agent_id;
    // The first: two at once both insert, one waits for the other's commit and inserts nothing.
    await db('assignment_rotations').insert({ workspace_id: workspaceId, scope }).onConflict(['workspace_id', 'scope']).ignore();
    return (await locked()).last_agent_id;
  },

  async saveRotation(db: Db, workspaceId: string, scope: string, agentId: string): Promise<void> {
    await db('assignment_rotations').where({ workspace_id: workspaceId, scope }).update({ last_agent_id: agentId });
  },

  /**
   * Serialises changes of one queue's manual order (reorders) until the transaction ends: each
   * re-ranks from the order the previous one left. An advisory lock, because the no-team queue
   * has no row to lock.
   */
  async lockQueueOrder(db: Db, workspaceId: string, teamId: string | null): Promise<void> {
    await db.raw('SELECT pg_advisory_xact_lock(?)', [lockKey(QUEUE_ORDER_LOCK, `${workspaceId}:${teamId ?? 'none'}`)]);
  },

  /** Kicks a team's queue by hand (the triggers cover changes of tickets, agents and teams). */
  async kick(db: Db, workspaceId: string, teamId: string): Promise<void> {
    await db.raw('SELECT kick_queue(?, ?)', [workspaceId, teamId]);
  },

  /**
   * Leases the oldest kick nobody works on. Its own short transaction: the lease, not a held
   * lock, keeps other replicas off, so a change that kicks the same queue never waits for the
   * distribution to finish.
   */
  async claimKick(db: Db, leaseMs: number): Promise<Kick | null> {
    const r = await db.raw(
      `UPDATE queue_kicks k SET leased_until = clock_timestamp() + make_interval(secs => ?)
        WHERE k.team_id = (SELECT team_id FROM queue_kicks
                            WHERE leased_until IS NULL OR leased_until < clock_timestamp()
                            ORDER BY kicked_at LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING workspace_id, team_id, kicks`,
      [leaseMs / 1000],
    );
    const row = r.rows[0];
    return row ? { workspaceId: row.workspace_id, teamId: row.team_id, kicks: Number(row.kicks) } : null;
  },

  /** The kick is worked off: gone, unless a newer kick came meanwhile (then it is free again). */
  async finishKick(db: Db, k: Kick): Promise<void> {
    const deleted = await db('queue_kicks').where({ team_id: k.teamId, kicks: k.kicks }).del();
    if (!deleted) await db('queue_kicks').where({ team_id: k.teamId }).update({ leased_until: null });
  },

  /** When the next kick is due (a leased one when its lease runs out), for the worker's sleep. */
  async nextKickAt(db: Db): Promise<Date | null> {
    const r = await db('queue_kicks').min({ at: 'leased_until' }).whereNotNull('leased_until').first();
    return r?.at ? new Date(r.at) : null;
  },
};
