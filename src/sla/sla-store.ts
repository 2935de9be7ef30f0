/**
 * SLA clocks and marks (sla_clocks, sla_marks): rows ↔ objects, and the sweep's bookkeeping as
 * one set-based statement. The sweep needs no business-time arithmetic: every clock row holds
 * its precomputed warning and due moments, so recording what came due is plain SQL over the
 * rows whose check_at has passed (an index on check_at), however many tickets there are.
 */
import type { Db } from '../db/knex.js';
import type { Clocks, Mark, SlaTarget } from './sla-clock.js';

const toClocks = (r: any): Clocks => ({
  policyId: r.policy_id,
  firstDone: r.first_done, firstWarned: r.first_warned, firstBreached: r.first_breached,
  nextCycle: r.next_cycle, nextStartedAt: r.next_started_at, nextWarned: r.next_warned, nextBreached: r.next_breached,
  resElapsedMs: Number(r.res_elapsed_ms), resRunningSince: r.res_running_since, resDone: r.res_done, resWarned: r.res_warned, resBreached: r.res_breached,
  firstWarnAt: r.first_warn_at, firstDueAt: r.first_due_at, nextWarnAt: r.next_warn_at, nextDueAt: r.next_due_at,
  resWarnAt: r.res_warn_at, resDueAt: r.res_due_at, checkAt: r.check_at,
});

const toRow = (c: Clocks) => ({
  policy_id: c.policyId,
  first_done: c.firstDone, first_warned: c.firstWarned, first_breached: c.firstBreached,
  next_cycle: c.nextCycle, next_started_at: c.nextStartedAt, next_warned: c.nextWarned, next_breached: c.nextBreached,
  res_elapsed_ms: Math.round(c.resElapsedMs), res_running_since: c.resRunningSince, res_done: c.resDone, res_warned: c.resWarned, res_breached: c.resBreached,
  first_warn_at: c.firstWarnAt, first_due_at: c.firstDueAt, next_warn_at: c.nextWarnAt, next_due_at: c.nextDueAt,
  res_warn_at: c.resWarnAt, res_due_at: c.resDueAt, check_at: c.checkAt,
});

export const toMark = (r: any): Mark => ({ target: r.target as SlaTarget, cycle: r.cycle, kind: r.kind, at: new Date(r.at), dueAt: new Date(r.due_at) });

/** One sweep's result for a ticket: the marks it recorded now and whether a running target is at risk. */
export interface SweptTicket {
  ticketId: string;
  atRisk: boolean;
  marks: Mark[];
}

// Which targets run, per clock row (the same rule as sla-clock.ts `pending`).
const RUNS_FIRST = 'd.policy_id IS NOT NULL AND NOT d.first_done AND d.first_due_at IS NOT NULL';
const RUNS_NEXT = 'd.policy_id IS NOT NULL AND d.next_started_at IS NOT NULL AND d.next_due_at IS NOT NULL';
const RUNS_RES = 'd.policy_id IS NOT NULL AND NOT d.res_done AND d.res_running_since IS NOT NULL AND d.res_due_at IS NOT NULL';

/**
 * One clocks row given as a jsonb parameter, then its ticket id as a parameter of its own (so
 * a captured statement replays with a new id: bench/limit.ts), inserted: the SQL the SLA port
 * hands the tickets module for a new ticket, so its insert stores the clocks in the same
 * statement while the sla_clocks table stays this module's.
 */
export const CLOCKS_INSERT_FROM_JSON = `INSERT INTO sla_clocks
   SELECT r.* FROM jsonb_populate_record(NULL::sla_clocks, ?::jsonb || jsonb_build_object('ticket_id', ?::text)) r`;

export const slaStore = {
  async load(db: Db, ticketId: string): Promise<Clocks | null> {
    const row = await db('sla_clocks').where({ ticket_id: ticketId }).forUpdate().first();
    return row ? toClocks(row) : null;
  },

  /** The sla_clocks row of a ticket's clocks, as JSON values (for an insert done by the ticket's creation). */
  row: (ticketId: string, workspaceId: string, c: Clocks): Record<string, unknown> => ({ ticket_id: ticketId, workspace_id: workspaceId, ...toRow(c) }),

  async save(db: Db, ticketId: string, workspaceId: string, c: Clocks): Promise<void> {
    await db('sla_clocks').insert({ ticket_id: ticketId, workspace_id: workspaceId, ...toRow(c) }).onConflict('ticket_id').merge();
  },

  /** Stores marks; returns those that were not recorded before (each is recorded once). */
  async insertMarks(db: Db, ticketId: string, marks: Mark[], recordedAt: Date): Promise<Mark[]> {
    if (!marks.length) return [];
    const rows = await db('sla_marks')
      .insert(marks.map((m) => ({ ticket_id: ticketId, target: m.target, cycle: m.cycle, kind: m.kind, at: m.at, due_at: m.dueAt, recorded_at: recordedAt })))
      .onConflict(['ticket_id', 'target', 'cycle', 'kind']).ignore()
      .returning('*');
    return rows.map(toMark);
  },

  /** Tickets whose next warning or due moment has come, earliest first. */
  async dueTicketIds(db: Db, now: Date, limit: number): Promise<string[]> {
    const rows = await db('sla_clocks').select('ticket_id').where('check_at', '<=', now).orderBy('check_at').limit(limit);
    return rows.map((r: { ticket_id: string }) => r.ticket_id);
  },

  /**
   * The sweep for tickets the caller has locked: records every warning and breach whose moment
   * came by `now` (a mark already recorded is skipped: exactly once), sets the clocks' flags
   * and moves check_at to the next moment not yet recorded.
   */
  async sweep(db: Db, ticketIds: string[], now: Date): Promise<SweptTicket[]> {
    if (!ticketIds.length) return [];
    const candidate = (target: SlaTarget, cycle: string, runs: string, warnAt: string, dueAt: string) => `
      SELECT d.ticket_id, '${target}' AS target, ${cycle} AS cycle, 'warning' AS kind, ${warnAt} AS at, ${dueAt} AS due_at FROM due d
       WHERE ${runs} AND ${warnAt} <= :now
      UNION ALL
      SELECT d.ticket_id, '${target}', ${cycle}, 'breach', ${dueAt}, ${dueAt} FROM due d
       WHERE ${runs} AND ${dueAt} <= :now`;
    const { rows } = await db.raw(
      `WITH due AS (
         SELECT * FROM sla_clocks WHERE ticket_id = ANY(:ids) FOR UPDATE
       ),
       candidates AS (
         ${candidate('first_response', '0', RUNS_FIRST, 'd.first_warn_at', 'd.first_due_at')}
         UNION ALL
         ${candidate('next_response', 'd.next_cycle', RUNS_NEXT, 'd.next_warn_at', 'd.next_due_at')}
         UNION ALL
         ${candidate('resolution', '0', RUNS_RES, 'd.res_warn_at', 'd.res_due_at')}
       ),
       recorded AS (
         INSERT INTO sla_marks (ticket_id, target, cycle, kind, at, due_at, recorded_at)
         SELECT ticket_id, target, cycle, kind, at, due_at, :now FROM candidates
         ON CONFLICT DO NOTHING
         RETURNING ticket_id, target, cycle, kind, at, due_at
       ),
       flags AS (
         SELECT d.ticket_id,
                ${RUNS_FIRST} AS runs_first, ${RUNS_NEXT} AS runs_next, ${RUNS_RES} AS runs_res,
                d.first_warned OR (${RUNS_FIRST} AND d.first_warn_at <= :now) AS fw,
                d.first_breached OR (${RUNS_FIRST} AND d.first_due_at <= :now) AS fb,
                d.next_warned OR (${RUNS_NEXT} AND d.next_warn_at <= :now) AS nw,
                d.next_breached OR (${RUNS_NEXT} AND d.next_due_at <= :now) AS nb,
                d.res_warned OR (${RUNS_RES} AND d.res_warn_at <= :now) AS rw,
                d.res_breached OR (${RUNS_RES} AND d.res_due_at <= :now) AS rb,
                d.first_warn_at, d.first_due_at, d.next_warn_at, d.next_due_at, d.res_warn_at, d.res_due_at
           FROM due d
       ),
       updated AS (
         UPDATE sla_clocks c
            SET first_warned = f.fw, first_breached = f.fb, next_warned = f.nw, next_breached = f.nb,
                res_warned = f.rw, res_breached = f.rb,
                check_at = LEAST(
                  CASE WHEN f.runs_first AND NOT f.fw THEN f.first_warn_at END, CASE WHEN f.runs_first AND NOT f.fb THEN f.first_due_at END,
                  CASE WHEN f.runs_next AND NOT f.nw THEN f.next_warn_at END, CASE WHEN f.runs_next AND NOT f.nb THEN f.next_due_at END,
                  CASE WHEN f.runs_res AND NOT f.rw THEN f.res_warn_at END, CASE WHEN f.runs_res AND NOT f.rb THEN f.res_due_at END)
           FROM flags f
          WHERE c.ticket_id = f.ticket_id
          RETURNING c.ticket_id,
                    (f.runs_first AND f.fw AND NOT f.fb) OR (f.runs_next AND f.nw AND NOT f.nb) OR (f.runs_res AND f.rw AND NOT f.rb) AS at_risk
       )
       SELECT u.ticket_id, u.at_risk,
              COALESCE(json_agg(json_build_object('target', r.target, 'cycle', r.cycle, 'kind', r.kind, 'at', r.at, 'due_at', r.due_at)
                                ORDER BY r.at, r.kind DESC) FILTER (WHERE r.ticket_id IS NOT NULL), '[]') AS marks
         FROM updated u LEFT JOIN recorded r ON r.ticket_id = u.ticket_id
        GROUP BY u.ticket_id, u.at_risk`,
      { ids: ticketIds, now },
    );
    return rows.map((r: any) => ({ ticketId: r.ticket_id, atRisk: r.at_risk, marks: r.marks.map(toMark) }));
  },

  /** Every mark of a ticket, oldest first. */
  /** Breaches of `target` whose due time fell in [from, to), of the workspace's tickets. */
  async breachesDue(db: Db, workspaceId: string, target: SlaTarget, from: Date, to: Date): Promise<{ ticketId: string; dueAt: Date }[]> {
    const rows = await db('sla_marks as m').join('tickets as t', 't.id', 'm.ticket_id')
      .where({ 't.workspace_id': workspaceId, 'm.target': target, 'm.kind': 'breach' })
      .where('m.due_at', '>=', from).where('m.due_at', '<', to)
      .select('m.ticket_id', 'm.due_at');
    return rows.map((r) => ({ ticketId: r.ticket_id, dueAt: r.due_at }));
  },

  async marksOf(db: Db, ticketId: string): Promise<Mark[]> {
    return (await db('sla_marks').where({ ticket_id: ticketId }).orderBy([{ column: 'at' }, { column: 'kind', order: 'desc' }])).map(toMark);
  },
};
