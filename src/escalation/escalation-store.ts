/**
 * The escalation module's tables (migration 20261207000400): rules, condition windows
 * (escalation_firings), the per-ticket firing log, the events-outbox queue and the sweep's
 * last-checked moment. Rule finders are scoped to a workspace and see live rows only.
 */
import type { Db } from '../db/knex.js';
import { paginate, type PageRequest } from '../kernel/pagination.js';
import type { Action, Conditions } from './escalation.js';

export interface EscalationRule {
  id: string;
  workspaceId: string;
  name: string;
  enabled: boolean;
  conditions: Conditions;
  actions: Action[];
  createdAt: Date;
  updatedAt: Date;
}

export type RuleChanges = Partial<Pick<EscalationRule, 'name' | 'enabled' | 'conditions' | 'actions'>>;

/** A claimed row of the events-outbox queue. */
export interface QueuedEvent {
  id: number;
  eventId: string;
  workspaceId: string;
  ticketId: string | null;
  contactId: string | null;
}

const toRule = (r: any): EscalationRule => ({
  id: r.id, workspaceId: r.workspace_id, name: r.name, enabled: r.enabled, conditions: r.conditions, actions: r.actions,
  createdAt: r.created_at, updatedAt: r.updated_at,
});

const live = (db: Db, workspaceId: string) => db('escalation_rules').where({ workspace_id: workspaceId }).whereNull('archived_at');

export const escalationStore = {
  async insert(db: Db, r: EscalationRule): Promise<EscalationRule> {
    const [row] = await db('escalation_rules').insert({
      id: r.id, workspace_id: r.workspaceId, name: r.name, enabled: r.enabled, conditions: JSON.stringify(r.conditions),
      actions: JSON.stringify(r.actions), created_at: r.createdAt, updated_at: r.updatedAt,
    }).returning('*');
    return toRule(row);
  },

  async find(db: Db, workspaceId: string, id: string, opts: { forUpdate?: boolean } = {}): Promise<EscalationRule | null> {
    const q = live(db, workspaceId).where({ id }).first();
    if (opts.forUpdate) q.forUpdate();
    const row = await q;
    return row ? toRule(row) : null;
  },

  async update(db: Db, workspaceId: string, id: string, c: RuleChanges, at: Date): Promise<EscalationRule | null> {
    const changes: Record<string, unknown> = { updated_at: at };
    if (c.name !== undefined) changes.name = c.name;
    if (c.enabled !== undefined) changes.enabled = c.enabled;
    if (c.conditions !== undefined) changes.conditions = JSON.stringify(c.conditions);
    if (c.actions !== undefined) changes.actions = JSON.stringify(c.actions);
    const [row] = await live(db, workspaceId).where({ id }).update(changes).returning('*');
    return row ? toRule(row) : null;
  },

  async archive(db: Db, workspaceId: string, id: string, at: Date): Promise<boolean> {
    return (await live(db, workspaceId).where({ id }).update({ archived_at: at, updated_at: at })) > 0;
  },

  /** By created_at, then id. */
  list(db: Db, workspaceId: string, f: { enabled?: boolean }, page: PageRequest) {
    const q = live(db, workspaceId).select('*');
    if (f.enabled !== undefined) q.where('enabled', f.enabled);
    return paginate(q, [['created_at', 'asc'], ['id', 'asc']], page, toRule);
  },

  /** The workspace's live, enabled rules in creation order (the order they are evaluated in). */
  async enabledRules(db: Db, workspaceId: string): Promise<EscalationRule[]> {
    return (await live(db, workspaceId).where({ enabled: true }).orderBy([{ column: 'created_at' }, { column: 'id' }])).map(toRule);
  },

  /** Every workspace's live, enabled rules with a time threshold (index escalation_rules_timed). */
  async timedRules(db: Db): Promise<EscalationRule[]> {
    const rows = await db('escalation_rules').whereNull('archived_at').where({ enabled: true })
      .where((w) => { w.whereRaw(`conditions->'age_minutes_gt' IS NOT NULL`).orWhereRaw(`conditions->'unassigned_for_minutes_gt' IS NOT NULL`); });
    return rows.map(toRule);
  },

  // ---- condition windows ---------------------------------------------------------------

  /** The window of (rule, ticket), locked until the transaction ends; null: never evaluated true. */
  async lockWindow(db: Db, ruleId: string, ticketId: string): Promise<{ active: boolean } | null> {
    const row = await db('escalation_firings').select('active').where({ rule_id: ruleId, ticket_id: ticketId }).forUpdate().first();
    return row ? { active: row.active } : null;
  },

  /**
   * Opens the window: true when this call opened it (it was closed or absent), false when it
   * was open already — also when a concurrent evaluation opened it first (the row lock decides).
   * `fired`: the rule's actions ran (false: the guard suppressed them).
   */
  async openWindow(db: Db, ruleId: string, ticketId: string, at: Date, fired: boolean): Promise<boolean> {
    const r = await db.raw(
      `INSERT INTO escalation_firings AS f (rule_id, ticket_id, active, fired_at, count) VALUES (?, ?, true, ?, ?)
       ON CONFLICT (rule_id, ticket_id) DO UPDATE SET active = true, fired_at = EXCLUDED.fired_at, count = f.count + EXCLUDED.count
         WHERE NOT f.active
       RETURNING 1`,
      [ruleId, ticketId, fired ? at : null, fired ? 1 : 0],
    );
    return r.rows.length > 0;
  },

  async closeWindow(db: Db, ruleId: string, ticketId: string, at: Date): Promise<void> {
    await db('escalation_firings').where({ rule_id: ruleId, ticket_id: ticketId, active: true }).update({ active: false, cleared_at: at });
  },

  /** Firings of the ticket since `since` (older log rows of the ticket are pruned here). */
  async recentFirings(db: Db, ticketId: string, since: Date): Promise<number> {
    await db('escalation_firing_log').where({ ticket_id: ticketId }).where('fired_at', '<', since).del();
    const [{ n }] = await db('escalation_firing_log').where({ ticket_id: ticketId }).count({ n: '*' });
    return Number(n);
  },

  async logFiring(db: Db, ticketId: string, ruleId: string, at: Date): Promise<void> {
    await db('escalation_firing_log').insert({ ticket_id: ticketId, rule_id: ruleId, fired_at: at });
  },

  // ---- the events-outbox queue ---------------------------------------------------------

  /**
   * Takes up to `limit` queued events, oldest first, skipping rows another worker holds; the
   * rows are deleted in the caller's transaction, so they are gone exactly when their
   * evaluation commits.
   */
  async claim(db: Db, limit: number): Promise<QueuedEvent[]> {
    const r = await db.raw(
      `DELETE FROM escalation_queue WHERE id IN (
         SELECT id FROM escalation_queue ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED)
       RETURNING id, event_id, workspace_id, ticket_id, contact_id`,
      [limit],
    );
    return r.rows.map((row: any) => ({ id: Number(row.id), eventId: row.event_id, workspaceId: row.workspace_id, ticketId: row.ticket_id, contactId: row.contact_id }))
      .sort((a: QueuedEvent, b: QueuedEvent) => a.id - b.id);
  },

  // ---- the sweep's last-checked moment -------------------------------------------------

  /** The moment the previous sweep covered, locked until the transaction ends (`initial` on the first run). */
  async lockSweep(db: Db, initial: Date): Promise<Date> {
    await db.raw('INSERT INTO escalation_sweep_state (id, checked_until) VALUES (1, ?) ON CONFLICT (id) DO NOTHING', [initial]);
    const row = await db('escalation_sweep_state').select('checked_until').where({ id: 1 }).forUpdate().first();
    return row.checked_until;
  },

  async saveSweep(db: Db, checkedUntil: Date): Promise<void> {
    await db('escalation_sweep_state').where({ id: 1 }).update({ checked_until: checkedUntil });
  },
};
