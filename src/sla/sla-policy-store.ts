/**
 * SLA policies (sla_policies): rows ↔ objects. The only file that touches the table. Every
 * finder is scoped to a workspace and sees live (not archived) rows only; archived rows stay
 * for the history of the tickets that used them.
 */
import type { Db } from '../db/knex.js';
import { prepared } from '../db/prepared.js';
import { paginate, type PageRequest } from '../kernel/pagination.js';
import type { Priority } from '../tickets/ticket-status.js';
import type { BusinessHours } from './business-time.js';

export interface SlaTarget {
  firstResponseMinutes: number;
  nextResponseMinutes: number | null;
  resolutionMinutes: number;
}

export interface SlaPolicy {
  id: string;
  workspaceId: string;
  name: string;
  isDefault: boolean;
  teamId: string | null;
  /** Only the priorities with a target; a priority without one has no SLA clock. */
  targets: Partial<Record<Priority, SlaTarget>>;
  warnAtPercent: number;
  pauseWhileWaitingOnCustomer: boolean;
  /** null = 24/7 wall-clock time. */
  businessHours: BusinessHours | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface SlaPolicyFilters {
  /** A team id, or 'none' for the policies without a team. */
  teamId?: string;
  isDefault?: boolean;
}

export type SlaPolicyChanges = Partial<Pick<SlaPolicy, 'name' | 'isDefault' | 'teamId' | 'targets' | 'warnAtPercent' | 'pauseWhileWaitingOnCustomer' | 'businessHours'>>;

/** Targets are stored as the API spells them (snake_case), so the rows read well in SQL. */
function targetsToJson(targets: SlaPolicy['targets']): string {
  const out: Record<string, Record<string, number>> = {};
  for (const [priority, t] of Object.entries(targets) as [Priority, SlaTarget][]) {
    out[priority] = { first_response_minutes: t.firstResponseMinutes, resolution_minutes: t.resolutionMinutes };
    if (t.nextResponseMinutes !== null) out[priority].next_response_minutes = t.nextResponseMinutes;
  }
  return JSON.stringify(out);
}

function targetsFromJson(json: Record<string, Record<string, number>>): SlaPolicy['targets'] {
  const out: SlaPolicy['targets'] = {};
  for (const [priority, t] of Object.entries(json) as [Priority, Record<string, number>][]) {
    out[priority] = { firstResponseMinutes: t.first_response_minutes, nextResponseMinutes: t.next_response_minutes ?? null, resolutionMinutes: t.resolution_minutes };
  }
  return out;
}

const businessHoursToJson = (bh: BusinessHours | null) => (bh === null ? null : JSON.stringify({ timezone: bh.timezone, weekly: bh.weekly, holidays: bh.holidays }));

const toPolicy = (r: any): SlaPolicy => ({
  id: r.id, workspaceId: r.workspace_id, name: r.name, isDefault: r.is_default, teamId: r.team_id,
  targets: targetsFromJson(r.targets), warnAtPercent: r.warn_at_percent, pauseWhileWaitingOnCustomer: r.pause_while_waiting_on_customer,
  businessHours: r.business_hours ?? null, createdAt: r.created_at, updatedAt: r.updated_at,
});

const live = (db: Db, workspaceId: string) => db('sla_policies').where({ workspace_id: workspaceId }).whereNull('archived_at');

// Prepared statements name their columns: with *, a migration adding a column would make every
// connection that prepared them fail ("cached plan must not change result type").
const POLICY_COLUMNS = `id, workspace_id, name, is_default, team_id, targets, warn_at_percent, pause_while_waiting_on_customer,
   business_hours, created_at, updated_at`;
const POLICY_DEFAULT = `SELECT ${POLICY_COLUMNS} FROM sla_policies WHERE workspace_id = ? AND archived_at IS NULL AND is_default LIMIT 1`;
const POLICY_FOR_TEAM = `SELECT ${POLICY_COLUMNS} FROM sla_policies WHERE workspace_id = ? AND archived_at IS NULL AND (team_id = ? OR is_default)
   ORDER BY (team_id IS NOT NULL) DESC LIMIT 1`;

export const slaPolicyStore = {
  async insert(db: Db, p: SlaPolicy): Promise<SlaPolicy> {
    const [row] = await db('sla_policies').insert({
      id: p.id, workspace_id: p.workspaceId, name: p.name, is_default: p.isDefault, team_id: p.teamId,
      targets: targetsToJson(p.targets), warn_at_percent: p.warnAtPercent, pause_while_waiting_on_customer: p.pauseWhileWaitingOnCustomer,
      business_hours: businessHoursToJson(p.businessHours), created_at: p.createdAt, updated_at: p.updatedAt,
    }).returning('*');
    return toPolicy(row);
  },

  async find(db: Db, workspaceId: string, id: string, opts: { forUpdate?: boolean } = {}): Promise<SlaPolicy | null> {
    const q = live(db, workspaceId).where({ id }).first();
    if (opts.forUpdate) q.forUpdate();
    const row = await q;
    return row ? toPolicy(row) : null;
  },

  /** The team's live policy, else the live default (one round trip); null when neither exists. */
  async policyFor(db: Db, workspaceId: string, teamId: string | null): Promise<SlaPolicy | null> {
    // Prepared: every ticket creation and SLA change asks (a workspace without a policy too).
    const r = teamId
      ? await prepared(db, 'sla_policy_for_team', POLICY_FOR_TEAM, [workspaceId, teamId])
      : await prepared(db, 'sla_policy_default', POLICY_DEFAULT, [workspaceId]);
    const row = r.rows[0];
    return row ? toPolicy(row) : null;
  },

  async update(db: Db, workspaceId: string, id: string, c: SlaPolicyChanges, at: Date): Promise<SlaPolicy> {
    const changes: Record<string, unknown> = { updated_at: at };
    if (c.name !== undefined) changes.name = c.name;
    if (c.isDefault !== undefined) changes.is_default = c.isDefault;
    if (c.teamId !== undefined) changes.team_id = c.teamId;
    if (c.targets !== undefined) changes.targets = targetsToJson(c.targets);
    if (c.warnAtPercent !== undefined) changes.warn_at_percent = c.warnAtPercent;
    if (c.pauseWhileWaitingOnCustomer !== undefined) changes.pause_while_waiting_on_customer = c.pauseWhileWaitingOnCustomer;
    if (c.businessHours !== undefined) changes.business_hours = businessHoursToJson(c.businessHours);
    const [row] = await db('sla_policies').where({ workspace_id: workspaceId, id }).update(changes).returning('*');
    return toPolicy(row);
  },

  /** Unsets the workspace's live default unless it is `exceptId`; true when one was unset. */
  async unsetDefault(db: Db, workspaceId: string, exceptId: string | null, at: Date): Promise<boolean> {
    const q = live(db, workspaceId).where({ is_default: true });
    if (exceptId) q.whereNot({ id: exceptId });
    return (await q.update({ is_default: false, updated_at: at })) > 0;
  },

  /** The row stays (with its is_default as it was): the partial unique indexes only count live rows. */
  async archive(db: Db, workspaceId: string, id: string, at: Date): Promise<boolean> {
    return (await live(db, workspaceId).where({ id }).update({ archived_at: at, updated_at: at })) > 0;
  },

  /** By created_at, then id. */
  list(db: Db, workspaceId: string, f: SlaPolicyFilters, page: PageRequest) {
    const q = live(db, workspaceId).select('*');
    if (f.teamId === 'none') q.whereNull('team_id');
    else if (f.teamId) q.where('team_id', f.teamId);
    if (f.isDefault !== undefined) q.where('is_default', f.isDefault);
    return paginate(q, [['created_at', 'asc'], ['id', 'asc']], page, toPolicy);
  },
};
