/**
 * SLA policies (SPEC §5). Invariants:
 * - a workspace has at most one live default: making a policy the default (create, or PATCH
 *   is_default: true) unsets the previous one in the same transaction, under the workspace's
 *   SLA_POLICIES_LOCK, so two concurrent switches never both win (nor fail);
 * - a default is workspace-wide: is_default together with a team_id is refused (422);
 * - a team has at most one live policy (409 naming team_id, also under concurrency: the unique
 *   index decides); a team_id of another workspace is 404, exactly like an unknown one;
 * - business hours are checked structurally by the schema and semantically by
 *   validateBusinessHours (time zone, intervals, holidays): every problem is one detail;
 * - DELETE archives: the row stays so tickets that used it keep their history; an archived
 *   policy is not found, and archiving the default leaves the workspace without one.
 * The SLA engine asks `policyFor` (team → default → none) and `findById`.
 */
import type { AgentService } from '../agents/agent-service.js';
import { LOCK_NAMESPACES, lockKey } from '../db/advisory-lock.js';
import type { Db } from '../db/knex.js';
import { inTransaction } from '../db/transaction.js';
import { AppError, notFound, type FieldError } from '../kernel/errors.js';
import type { Page, PageRequest } from '../kernel/pagination.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Priority } from '../tickets/ticket-status.js';
import { validateBusinessHours, type BusinessHours, type WeeklyInterval } from './business-time.js';
import type { CreateSlaPolicyBody, ListSlaPoliciesQuery, PatchSlaPolicyBody, SlaTargetJson } from './sla-policy-schemas.js';
import { slaPolicyStore, type SlaPolicy, type SlaPolicyChanges } from './sla-policy-store.js';

export type { SlaPolicy, SlaTarget } from './sla-policy-store.js';

/** lockKey namespace of the transaction lock that serialises changes of a workspace's default policy. */
export const SLA_POLICIES_LOCK = LOCK_NAMESPACES.slaDefaultPolicy;

export const DEFAULT_WARN_AT_PERCENT = 80;

type TargetsJson = Partial<Record<Priority, SlaTargetJson>>;
type BusinessHoursJson = { timezone: string; weekly: { day: number; start: string; end: string }[]; holidays?: string[] } | null;

const isUnique = (err: unknown, constraint: string) => {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23505' && e.constraint === constraint;
};

const teamTaken = (teamId: string) => new AppError('conflict', `The team ${teamId} already has an SLA policy; change or archive that one`, {
  details: [{ field: 'team_id', error: 'already has a live SLA policy', received: teamId }],
});

function toTargets(json: TargetsJson): SlaPolicy['targets'] {
  const out: SlaPolicy['targets'] = {};
  for (const [priority, t] of Object.entries(json) as [Priority, SlaTargetJson][]) {
    out[priority] = { firstResponseMinutes: t.first_response_minutes, nextResponseMinutes: t.next_response_minutes ?? null, resolutionMinutes: t.resolution_minutes };
  }
  return out;
}

/** The schema has checked the shape (day an integer 1-7); validateBusinessHours checks the meaning. */
const toBusinessHours = (json: BusinessHoursJson): BusinessHours | null =>
  json === null ? null : {
    timezone: json.timezone,
    weekly: json.weekly.map((w) => ({ day: w.day as WeeklyInterval['day'], start: w.start, end: w.end })),
    holidays: json.holidays ?? [],
  };

/** The problems the schema cannot see: business hours' meaning, and a default tied to a team. */
function semanticErrors(p: { isDefault: boolean; teamId: string | null; businessHours: BusinessHours | null }, given: { isDefault: boolean; teamId: boolean }): FieldError[] {
  const errors: FieldError[] = p.businessHours ? validateBusinessHours(p.businessHours) : [];
  if (p.isDefault && p.teamId !== null) {
    // Name the field the request changed (both on a create).
    const field = given.isDefault || !given.teamId ? 'is_default' : 'team_id';
    errors.push({
      field,
      error: 'a default policy is workspace-wide and cannot have a team_id; give the team its own policy, or make a policy without a team the default',
      received: field === 'is_default' ? true : p.teamId,
    });
  }
  return errors;
}

function refuse(errors: FieldError[]): void {
  if (!errors.length) return;
  throw new AppError('validation_error', `The ${errors[0].field} ${errors[0].error}`, { details: errors });
}

export function createSlaPolicyService(deps: { clock: Clock; agents: AgentService }) {
  const { clock, agents } = deps;

  const lockDefault = (db: Db, workspaceId: string) => db.raw('SELECT pg_advisory_xact_lock(?)', [lockKey(SLA_POLICIES_LOCK, workspaceId)]);

  async function require(db: Db, workspaceId: string, id: string, opts: { forUpdate?: boolean } = {}): Promise<SlaPolicy> {
    const p = await slaPolicyStore.find(db, workspaceId, id, opts);
    if (!p) throw notFound('SLA policy');
    return p;
  }

  /** Runs a write, turning the team's unique index into a 409 naming team_id. */
  async function guarded<T>(teamId: string | null | undefined, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      if (isUnique(err, 'sla_policies_team')) throw teamTaken(teamId ?? '');
      throw err;
    }
  }

  return {
    async create(db: Db, workspaceId: string, body: CreateSlaPolicyBody): Promise<SlaPolicy> {
      const isDefault = body.is_default ?? false;
      const teamId = body.team_id ?? null;
      const businessHours = toBusinessHours(body.business_hours ?? null);
      refuse(semanticErrors({ isDefault, teamId, businessHours }, { isDefault: true, teamId: true }));
      if (teamId) await agents.requireTeam(db, workspaceId, teamId);
      return guarded(teamId, () => inTransaction(db, async (tx) => {
        const at = clock.now();
        if (isDefault) {
          await lockDefault(tx, workspaceId);
          await slaPolicyStore.unsetDefault(tx, workspaceId, null, at);
        }
        return slaPolicyStore.insert(tx, {
          id: newId('sla'), workspaceId, name: body.name, isDefault, teamId, targets: toTargets(body.targets),
          warnAtPercent: body.warn_at_percent ?? DEFAULT_WARN_AT_PERCENT, pauseWhileWaitingOnCustomer: body.pause_while_waiting_on_customer ?? true,
          businessHours, createdAt: at, updatedAt: at,
        });
      }));
    },

    get: (db: Db, workspaceId: string, id: string): Promise<SlaPolicy> => require(db, workspaceId, id),

    list: (db: Db, workspaceId: string, query: ListSlaPoliciesQuery & PageRequest): Promise<Page<SlaPolicy>> =>
      slaPolicyStore.list(db, workspaceId, { teamId: query.team_id, isDefault: query.is_default }, query),

    /** Only the fields given change; targets and business_hours are replaced whole. */
    async update(db: Db, workspaceId: string, id: string, body: PatchSlaPolicyBody): Promise<SlaPolicy> {
      return guarded(body.team_id, () => inTransaction(db, async (tx) => {
        // The default's lock first (when the default may change), then the row: one order for everyone.
        if (body.is_default === true) await lockDefault(tx, workspaceId);
        const current = await require(tx, workspaceId, id, { forUpdate: true });
        const changes: SlaPolicyChanges = {
          name: body.name,
          isDefault: body.is_default,
          teamId: body.team_id,
          targets: body.targets ? toTargets(body.targets) : undefined,
          warnAtPercent: body.warn_at_percent,
          pauseWhileWaitingOnCustomer: body.pause_while_waiting_on_customer,
          businessHours: body.business_hours !== undefined ? toBusinessHours(body.business_hours) : undefined,
        };
        refuse(semanticErrors({
          isDefault: changes.isDefault ?? current.isDefault,
          teamId: changes.teamId !== undefined ? changes.teamId : current.teamId,
          businessHours: changes.businessHours !== undefined ? changes.businessHours : null,
        }, { isDefault: body.is_default !== undefined, teamId: body.team_id !== undefined }));
        if (changes.teamId) await agents.requireTeam(tx, workspaceId, changes.teamId);
        const at = clock.now();
        if (changes.isDefault && !current.isDefault) await slaPolicyStore.unsetDefault(tx, workspaceId, id, at);
        return slaPolicyStore.update(tx, workspaceId, id, changes, at);
      }));
    },

    async archive(db: Db, workspaceId: string, id: string): Promise<void> {
      if (!(await slaPolicyStore.archive(db, workspaceId, id, clock.now()))) throw notFound('SLA policy');
    },

    /** For the SLA engine: the team's live policy, else the workspace's live default, else null. */
    policyFor: (db: Db, workspaceId: string, teamId: string | null): Promise<SlaPolicy | null> => slaPolicyStore.policyFor(db, workspaceId, teamId),

    /** For the SLA engine: a live policy of the workspace, or null (archived ones are not found). */
    findById: (db: Db, workspaceId: string, id: string): Promise<SlaPolicy | null> => slaPolicyStore.find(db, workspaceId, id),
  };
}

export type SlaPolicyService = ReturnType<typeof createSlaPolicyService>;
