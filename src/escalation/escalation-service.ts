/**
 * Escalation rules (SPEC §5). Invariants:
 * - a rule names only ids that exist: an id of no workspace is 422 naming its field, another
 *   workspace's id is 404 exactly like an unknown id elsewhere in the API; notify texts use the
 *   canned-response variables only (422 naming the unknown ones);
 * - a rule fires once per ticket per condition window: when an evaluation finds its conditions
 *   true and its window (escalation_firings) closed; an evaluation that finds them false closes
 *   the window. An evaluation locks the ticket row first, and the window row is opened with
 *   INSERT … ON CONFLICT … WHERE NOT active, so two replicas evaluating one ticket fire once;
 * - an evaluation judges every rule against one snapshot of the ticket (the moment it looked);
 *   what firing rules change is judged by the next evaluation, which their own events queue;
 * - ping-pong guard: at most `maxFiringsPerTicketPerHour` firings per ticket in any hour, across
 *   rules; past it a rule's window opens without its actions (reported as suppressed), which
 *   ends a loop between rules that undo each other;
 * - firing applies the actions through the other modules' services, each in a savepoint: one
 *   that is refused (no agent available, agent at capacity) is skipped and reported, the others
 *   apply; then ticket.escalated ({rule_id, actions as applied}) in the same transaction;
 * - the actor of every change is the system.
 */
import type { AgentService } from '../agents/agent-service.js';
import type { AssignmentService } from '../assignment/assignment-service.js';
import { templateErrors } from '../canned/canned.js';
import type { CannedService } from '../canned/canned-service.js';
import type { Db } from '../db/knex.js';
import { inTransaction } from '../db/transaction.js';
import { eventOutbox } from '../events/event-outbox.js';
import { SYSTEM } from '../kernel/actor.js';
import { AppError, notFound, type FieldError } from '../kernel/errors.js';
import type { Page, PageRequest } from '../kernel/pagination.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { normalizeTags } from '../lib/tags.js';
import { sendQueue } from '../send-queue/send-queue.js';
import { presentTicket, type TicketService, type TicketView } from '../tickets/ticket-service.js';
import type { WorkspaceService } from '../workspaces/workspace-service.js';
import type { Workspace } from '../workspaces/workspace-store.js';
import { holds, idsNamed, normalizeConditions, statusesOf, type Action, type Conditions, type Subject } from './escalation.js';
import type { CreateEscalationRuleBody, ListEscalationRulesQuery, PatchEscalationRuleBody } from './escalation-schemas.js';
import { escalationStore, type EscalationRule, type RuleChanges } from './escalation-store.js';

export type { EscalationRule } from './escalation-store.js';

export const DEFAULT_MAX_FIRINGS_PER_TICKET_PER_HOUR = 10;

const HOUR = 3_600_000;
const MINUTE = 60_000;

/** An action as applied: the action, what came of it, and why when it was skipped. */
export type AppliedAction = Action & {
  outcome: 'applied' | 'unchanged' | 'skipped';
  reason?: string;
  /** notify: each target's outcome. */
  targets?: { to: 'topic' | 'lead_chat'; outcome: 'queued' | 'skipped'; reason?: string }[];
};

/** What one evaluation of a ticket did. */
export interface Evaluation {
  fired: { ruleId: string; ticketId: string; actions: AppliedAction[] }[];
  /** Rules whose window opened without their actions: the ping-pong guard. */
  suppressed: { ruleId: string; ticketId: string }[];
}

const refuse = (details: FieldError[]): never => {
  throw new AppError('validation_error', `The ${details[0].field} ${details[0].error}`, { details });
};

function toSubject(v: TicketView): Subject {
  const t = v.ticket;
  return {
    status: t.status, priority: t.priority, teamId: t.teamId, assigneeId: t.assigneeId, unassignedSince: t.unassignedSince,
    slaAtRisk: t.slaAtRisk, slaBreached: t.slaBreached, archivedAt: t.archivedAt, createdAt: t.createdAt, contactTags: v.contact.tags,
  };
}

/** Actions as stored: tags as tickets store them (trimmed, lower case). */
const normalizeActions = (actions: readonly Action[]): Action[] =>
  actions.map((a) => (a.type === 'add_tag' ? { ...a, tag: normalizeTags([a.tag])[0] } : a));

export function createEscalationService(deps: {
  clock: Clock; tickets: TicketService; assignment: AssignmentService; agents: AgentService; canned: CannedService; workspaces: WorkspaceService;
  maxFiringsPerTicketPerHour?: number;
}) {
  const { clock, tickets, assignment, agents, canned, workspaces } = deps;
  const maxPerHour = deps.maxFiringsPerTicketPerHour ?? DEFAULT_MAX_FIRINGS_PER_TICKET_PER_HOUR;

  async function require(db: Db, workspaceId: string, id: string, opts: { forUpdate?: boolean } = {}): Promise<EscalationRule> {
    const r = await escalationStore.find(db, workspaceId, id, opts);
    if (!r) throw notFound('Escalation rule');
    return r;
  }

  /** Templates (422), then ids: of no workspace → 422 naming each; of another workspace → 404. */
  async function check(db: Db, workspaceId: string, conditions: Conditions | undefined, actions: readonly Action[] | undefined): Promise<void> {
    const problems: FieldError[] = [];
    (actions ?? []).forEach((a, i) => {
      if (a.type !== 'notify') return;
      for (const e of templateErrors({ body: a.text })) problems.push({ ...e, field: `actions[${i}].text` });
    });
    if (problems.length) refuse(problems);
    const named = idsNamed(conditions, actions);
    const where = await agents.workspacesOf(db, { teamIds: named.teams.map((t) => t.id), agentIds: named.agents.map((a) => a.id) });
    const unknown = [
      ...named.teams.filter((t) => !where.teams.has(t.id)).map((t) => ({ field: t.field, error: 'is not a team', received: t.id })),
      ...named.agents.filter((a) => !where.agents.has(a.id)).map((a) => ({ field: a.field, error: 'is not an agent', received: a.id })),
    ];
    if (unknown.length) refuse(unknown);
    if (named.teams.some((t) => where.teams.get(t.id) !== workspaceId)) throw notFound('Team');
    if (named.agents.some((a) => where.agents.get(a.id) !== workspaceId)) throw notFound('Agent');
  }

  /** One action in its own savepoint: a refusal (an AppError) undoes only its part and is reported. */
  async function apply(db: Db, ws: Workspace, ticketId: string, a: Action, at: Date): Promise<AppliedAction> {
    try {
      return await inTransaction(db, async (sp): Promise<AppliedAction> => {
        const { ticket } = await tickets.get(sp, ws.id, ticketId);
        switch (a.type) {
          case 'set_priority':
            if (ticket.priority === a.priority) return { ...a, outcome: 'unchanged' };
            await tickets.update(sp, ws.id, ticketId, { priority: a.priority }, SYSTEM);
            return { ...a, outcome: 'applied' };
          case 'add_tag':
            if (ticket.tags.includes(a.tag)) return { ...a, outcome: 'unchanged' };
            await tickets.update(sp, ws.id, ticketId, { tags: [...ticket.tags, a.tag] }, SYSTEM);
            return { ...a, outcome: 'applied' };
          case 'assign_team':
            // Assigning a team it is in would only drop its assignee.
            if (ticket.teamId === a.team_id) return { ...a, outcome: 'unchanged' };
            await assignment.assign(sp, ws.id, ticketId, { team_id: a.team_id }, SYSTEM);
            return { ...a, outcome: 'applied' };
          case 'assign_agent':
            if (ticket.assigneeId === a.agent_id) return { ...a, outcome: 'unchanged' };
            await assignment.assign(sp, ws.id, ticketId, { agent_id: a.agent_id }, SYSTEM);
            return { ...a, outcome: 'applied' };
          case 'assign': {
            const after = await assignment.assign(sp, ws.id, ticketId, { strategy: a.strategy }, SYSTEM);
            return { ...a, outcome: after.ticket.assigneeId === ticket.assigneeId ? 'unchanged' : 'applied' };
          }
          case 'notify':
            return notify(sp, ws, ticketId, a, at);
        }
      });
    } catch (err) {
      if (err instanceof AppError) return { ...a, outcome: 'skipped', reason: err.detail };
      throw err;
    }
  }

  /** Queues the rendered text to each target; a target that cannot be reached is skipped and reported. */
  async function notify(db: Db, ws: Workspace, ticketId: string, a: Extract<Action, { type: 'notify' }>, at: Date): Promise<AppliedAction> {
    const { ticket } = await tickets.get(db, ws.id, ticketId);
    const { text } = await canned.renderForTicket(db, ws.id, a.text, ticketId, null);
    const targets: NonNullable<AppliedAction['targets']> = [];
    for (const to of a.to) {
      const skip = (reason: string) => targets.push({ to, outcome: 'skipped', reason });
      if (ws.mode !== 'live') { skip('a sandbox workspace sends nothing'); continue; }
      if (!ticket.accountId) { skip('the ticket has no bot'); continue; }
      if (to === 'topic') {
        if (ticket.topicChatId === null) { skip('the ticket has no topic'); continue; }
        await sendQueue.enqueue(db, { workspaceId: ws.id, accountId: ticket.accountId, chatId: ticket.topicChatId, op: 'send_message', ticketId, payload: { text, in_topic: true }, at });
      } else {
        if (ws.leadChatId === null) { skip('the workspace has no lead_chat_id'); continue; }
        await sendQueue.enqueue(db, { workspaceId: ws.id, accountId: ticket.accountId, chatId: ws.leadChatId, op: 'send_message', ticketId, payload: { text }, at });
      }
      targets.push({ to, outcome: 'queued' });
    }
    return { ...a, outcome: targets.some((t) => t.outcome === 'queued') ? 'applied' : 'skipped', targets };
  }

  /** Applies a rule's actions in order, then writes ticket.escalated (timeline and webhooks). */
  async function fire(db: Db, ws: Workspace, rule: EscalationRule, ticketId: string, at: Date): Promise<AppliedAction[]> {
    const applied: AppliedAction[] = [];
    for (const a of rule.actions) applied.push(await apply(db, ws, ticketId, a, at));
    const after = await tickets.get(db, ws.id, ticketId);
    const details = { rule_id: rule.id, actions: applied };
    await eventOutbox.record(db, ws.id, at, [{
      type: 'ticket.escalated', actor: SYSTEM, ticketId, contactId: after.ticket.contactId,
      payload: presentTicket(after.ticket, after.contact), detail: { ...details, rule_name: rule.name }, details,
    }]);
    return applied;
  }

  /**
   * Evaluates `rules` (the workspace's enabled ones, in order) for a ticket at `now`, with the
   * ticket locked until the caller's transaction ends. A ticket that is gone is nothing to do.
   */
  async function evaluateTicket(db: Db, ws: Workspace, ticketId: string, rules: readonly EscalationRule[], now: Date, out: Evaluation): Promise<void> {
    if (!rules.length) return;
    let view: TicketView;
    try {
      view = await tickets.get(db, ws.id, ticketId, { forUpdate: true });
    } catch (err) {
      if (err instanceof AppError && err.code === 'not_found') return;
      throw err;
    }
    const subject = toSubject(view);
    for (const rule of rules) {
      if (!holds(rule.conditions, subject, now)) {
        await escalationStore.closeWindow(db, rule.id, ticketId, now);
        continue;
      }
      if ((await escalationStore.lockWindow(db, rule.id, ticketId))?.active) continue;
      if (await escalationStore.recentFirings(db, ticketId, new Date(now.getTime() - HOUR)) >= maxPerHour) {
        if (await escalationStore.openWindow(db, rule.id, ticketId, now, false)) out.suppressed.push({ ruleId: rule.id, ticketId });
        continue;
      }
      if (!(await escalationStore.openWindow(db, rule.id, ticketId, now, true))) continue;
      await escalationStore.logFiring(db, ticketId, rule.id, now);
      out.fired.push({ ruleId: rule.id, ticketId, actions: await fire(db, ws, rule, ticketId, now) });
    }
  }

  /** Evaluates tickets grouped by workspace, in ticket id order (one lock order for every evaluator). */
  async function evaluateMany(db: Db, byWorkspace: Map<string, Set<string>>, now: Date): Promise<Evaluation> {
    const out: Evaluation = { fired: [], suppressed: [] };
    for (const [workspaceId, ids] of [...byWorkspace].sort(([a], [b]) => a.localeCompare(b))) {
      const rules = await escalationStore.enabledRules(db, workspaceId);
      if (!rules.length) continue;
      const ws = await workspaces.get(db, workspaceId);
      for (const id of [...ids].sort()) await evaluateTicket(db, ws, id, rules, now, out);
    }
    return out;
  }

  const add = (m: Map<string, Set<string>>, ws: string, ids: readonly string[]) => {
    if (!ids.length) return;
    const s = m.get(ws) ?? new Set<string>();
    for (const id of ids) s.add(id);
    m.set(ws, s);
  };

  return {
    async create(db: Db, workspaceId: string, body: CreateEscalationRuleBody): Promise<EscalationRule> {
      const conditions = normalizeConditions(body.conditions);
      const actions = normalizeActions(body.actions);
      await check(db, workspaceId, conditions, actions);
      const at = clock.now();
      return escalationStore.insert(db, { id: newId('esc'), workspaceId, name: body.name.trim(), enabled: body.enabled ?? true, conditions, actions, createdAt: at, updatedAt: at });
    },

    get: (db: Db, workspaceId: string, id: string): Promise<EscalationRule> => require(db, workspaceId, id),

    list: (db: Db, workspaceId: string, query: ListEscalationRulesQuery & PageRequest): Promise<Page<EscalationRule>> =>
      escalationStore.list(db, workspaceId, { enabled: query.enabled }, query),

    /** Only the fields given change; conditions and actions are replaced whole. */
    async update(db: Db, workspaceId: string, id: string, body: PatchEscalationRuleBody): Promise<EscalationRule> {
      await require(db, workspaceId, id, { forUpdate: true });
      const changes: RuleChanges = {
        name: body.name?.trim(), enabled: body.enabled,
        conditions: body.conditions && normalizeConditions(body.conditions),
        actions: body.actions && normalizeActions(body.actions),
      };
      await check(db, workspaceId, changes.conditions, changes.actions);
      return (await escalationStore.update(db, workspaceId, id, changes, clock.now()))!;
    },

    async archive(db: Db, workspaceId: string, id: string): Promise<void> {
      if (!(await escalationStore.archive(db, workspaceId, id, clock.now()))) throw notFound('Escalation rule');
    },

    /** Evaluates one ticket's rules now (in the caller's transaction). */
    async evaluate(db: Db, workspaceId: string, ticketId: string, now: Date = clock.now()): Promise<Evaluation> {
      return evaluateMany(db, new Map([[workspaceId, new Set([ticketId])]]), now);
    },

    /**
     * The events-outbox consumer: takes up to `limit` queued events and evaluates the tickets
     * they concern (a contact.tagged: the contact's open tickets). The rows are deleted in the
     * caller's transaction. Returns how many events it took, and what the evaluation did.
     */
    async processQueue(db: Db, limit: number, now: Date = clock.now()): Promise<Evaluation & { events: number }> {
      const claimed = await escalationStore.claim(db, limit);
      const byWorkspace = new Map<string, Set<string>>();
      for (const e of claimed) {
        if (e.ticketId) add(byWorkspace, e.workspaceId, [e.ticketId]);
        else if (e.contactId) add(byWorkspace, e.workspaceId, await tickets.openIdsOfContact(db, e.workspaceId, e.contactId));
      }
      return { events: claimed.length, ...(await evaluateMany(db, byWorkspace, now)) };
    },

    /**
     * The time sweep: the tickets whose age or unassigned-for threshold of some rule passed in
     * [previous run, now) — index range scans per timed rule, so the cost follows the tickets
     * that cross — are evaluated. The last-checked moment is locked for the whole run: two
     * sweeps run one after the other, and the second finds nothing left.
     */
    async sweep(db: Db, now: Date, lookbackMs: number): Promise<Evaluation & { tickets: number }> {
      const from = await escalationStore.lockSweep(db, new Date(now.getTime() - lookbackMs));
      if (from >= now) return { tickets: 0, fired: [], suppressed: [] };
      const byWorkspace = new Map<string, Set<string>>();
      for (const rule of await escalationStore.timedRules(db)) {
        const statuses = statusesOf(rule.conditions);
        const crossing = async (field: 'created' | 'unassigned', minutes: number | undefined) => {
          if (minutes === undefined) return;
          const shift = minutes * MINUTE;
          add(byWorkspace, rule.workspaceId, await tickets.crossing(db, rule.workspaceId, field, new Date(from.getTime() - shift), new Date(now.getTime() - shift), statuses));
        };
        await crossing('created', rule.conditions.age_minutes_gt);
        await crossing('unassigned', rule.conditions.unassigned_for_minutes_gt);
      }
      const result = await evaluateMany(db, byWorkspace, now);
      await escalationStore.saveSweep(db, now);
      return { tickets: [...byWorkspace.values()].reduce((n, s) => n + s.size, 0), ...result };
    },
  };
}

export type EscalationService = ReturnType<typeof createEscalationService>;
