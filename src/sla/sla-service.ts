/**
 * SLA clocks of tickets (SPEC §5). Invariants:
 * - the tickets module calls the port (`ticketPort`) inside every change that moves a clock,
 *   before it writes the row: a change's events already carry its due times;
 * - a ticket's policy is its team's, else the workspace default, else none; it is looked up
 *   again whenever the team or priority changes (a policy edited later applies to a ticket at
 *   its next such change, as in Zendesk); time already elapsed keeps counting;
 * - every warning and breach is recorded once per ticket, target and cycle (sla_marks' key),
 *   whoever notices it first: the sweep, or a change that meets a target late;
 * - a mark posts one short notice in the ticket's topic; notices of one ticket coalesce into one
 *   queued message rendered when sent (the group's budget is ~20 messages a minute);
 * - the sweep reads only due clocks (check_at index) and locks tickets before clocks, the
 *   order every change uses, skipping tickets in use (the next sweep takes them).
 */
import type { Db, Knex } from '../db/knex.js';
import { inTransaction } from '../db/transaction.js';
import { eventOutbox } from '../events/event-outbox.js';
import type { Clock } from '../lib/clock.js';
import { sendQueue } from '../send-queue/send-queue.js';
import type { Ticket } from '../tickets/ticket-store.js';
import type { SlaFields, SlaMark, SlaOutcome, TicketSla } from '../tickets/ticket-sla.js';
import { slaEvents, type TicketService } from '../tickets/ticket-service.js';
import type { Priority } from '../tickets/ticket-status.js';
import type { WorkspaceService } from '../workspaces/workspace-service.js';
import type { MetricsService } from '../metrics/metrics-service.js';
import { businessSecondsBetween } from './business-time.js';
import { agentReplied, customerWrote, rulesChanged, startClocks, statusMoved, viewOf, type ClockRules, type Clocks, type Mark, type SlaTarget, type Step } from './sla-clock.js';
import type { SlaPolicy } from './sla-policy-store.js';
import { CLOCKS_INSERT_FROM_JSON, slaStore } from './sla-store.js';

/** Where policies come from (the policies service). */
export interface PolicySource {
  policyFor(db: Db, workspaceId: string, teamId: string | null): Promise<SlaPolicy | null>;
}

export function rulesOf(policy: SlaPolicy | null, priority: Priority): ClockRules | null {
  const target = policy?.targets[priority];
  if (!policy || !target) return null;
  return {
    policyId: policy.id, calendar: policy.businessHours, warnAtPercent: policy.warnAtPercent, pauseWhileWaiting: policy.pauseWhileWaitingOnCustomer,
    firstResponseMinutes: target.firstResponseMinutes, nextResponseMinutes: target.nextResponseMinutes, resolutionMinutes: target.resolutionMinutes,
  };
}

function fieldsOf(c: Clocks): SlaFields {
  const v = viewOf(c);
  return {
    slaPolicyId: v.policyId, firstResponseDueAt: v.firstResponseDueAt, nextResponseDueAt: v.nextResponseDueAt, resolutionDueAt: v.resolutionDueAt,
    slaPaused: v.paused, slaDueAt: v.dueAt, slaAtRisk: v.atRisk,
  };
}

const TARGET_WORDS: Record<SlaTarget, string> = { first_response: 'first response', next_response: 'next response', resolution: 'resolution' };

/** `6 min`, `2 h 05 min`, `3 d 4 h`. */
function span(ms: number): string {
  const minutes = Math.max(1, Math.ceil(ms / 60_000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${String(minutes % 60).padStart(2, '0')} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** A queued notice's marks, as the send queue keeps them. */
interface NoticeMark {
  target: SlaTarget;
  kind: 'warning' | 'breach';
  due_at: string;
}

/** What the sla module records for the metrics module: the measured moments (facts). */
export type MetricsFacts = Pick<MetricsService, 'recordFirstResponse' | 'recordResolution' | 'clearResolution' | 'recordNextResponse'>;

export function createSlaService(deps: { clock: Clock; tickets: TicketService; policies: PolicySource; workspaces: WorkspaceService; metrics: MetricsFacts }) {
  const { clock, tickets, policies, workspaces, metrics } = deps;

  const rulesFor = async (db: Db, t: Pick<Ticket, 'workspaceId' | 'teamId' | 'priority'>) => rulesOf(await policies.policyFor(db, t.workspaceId, t.teamId), t.priority);

  /** The ticket's clocks; a ticket from before SLA existed gets clocks started at its creation. */
  async function clocksOf(db: Db, t: Ticket): Promise<{ clocks: Clocks; rules: ClockRules | null }> {
    const stored = await slaStore.load(db, t.id);
    const rules = await rulesFor(db, t);
    if (stored) return { clocks: stored, rules };
    let clocks = startClocks(rules, t.createdAt);
    if (t.firstResponseAt) clocks = agentReplied(clocks, rules, t.createdAt, t.firstResponseAt).clocks;
    if (t.status !== 'open') clocks = statusMoved(clocks, rules, t.createdAt, 'open', t.status, t.updatedAt).clocks;
    return { clocks, rules };
  }

  /** Stores a step's clocks and marks; the outcome holds only marks not recorded before. */
  async function settle(db: Db, t: Ticket, step: Step, at: Date): Promise<SlaOutcome> {
    await slaStore.save(db, t.id, t.workspaceId, step.clocks);
    const marks = await slaStore.insertMarks(db, t.id, step.marks, at);
    await queueNotices(db, [{ ticket: t, marks }]);
    return { fields: fieldsOf(step.clocks), marks: marks.map(toSlaMark) };
  }

  /**
   * The metrics facts of a moment: first response and resolution are measured here because this
   * port sees each of them inside the ticket's transaction and knows the ticket's calendar (its
   * policy's business hours, whatever the priority's targets; none = wall time).
   */
  async function fact(db: Db, t: Ticket, at: Date, rules: ClockRules | null, agentId: string | null) {
    const calendar = rules ? rules.calendar : (await policies.policyFor(db, t.workspaceId, t.teamId))?.businessHours ?? null;
    return {
      ticketId: t.id, workspaceId: t.workspaceId, createdAt: t.createdAt, at, agentId, teamId: t.teamId, priority: t.priority,
      businessSeconds: businessSecondsBetween(t.createdAt, at, calendar),
    };
  }

  const toSlaMark = (m: Mark): SlaMark => ({ target: m.target, kind: m.kind, at: m.at, dueAt: m.dueAt });

  /** One coalesced notice per ticket with a topic (live workspaces only). */
  async function queueNotices(db: Db, items: { ticket: Ticket; marks: Mark[] }[]): Promise<void> {
    const modes = new Map<string, string>();
    for (const { ticket: t, marks } of items) {
      if (!marks.length || !t.accountId || t.topicChatId === null || t.topicThreadId === null || t.status === 'closed') continue;
      if (!modes.has(t.workspaceId)) modes.set(t.workspaceId, (await workspaces.get(db, t.workspaceId)).mode);
      if (modes.get(t.workspaceId) !== 'live') continue;
      const notice: NoticeMark[] = marks.map((m) => ({ target: m.target, kind: m.kind, due_at: m.dueAt.toISOString() }));
      await sendQueue.enqueueCoalesced(db, {
        workspaceId: t.workspaceId, accountId: t.accountId, chatId: t.topicChatId, op: 'sla_notice', ticketId: t.id, at: clock.now(),
        payload: { marks: notice },
      }, 'marks');
    }
  }

  const ticketPort: TicketSla = {
    async planNew(db, t) {
      const rules = await rulesFor(db, t);
      const clocks = startClocks(rules, t.createdAt);
      // Stored by the ticket's insert (no round trip of its own), with or without a policy: a
      // ticket created under none keeps none when a default policy appears later.
      return { fields: fieldsOf(clocks), clocks: { insertSql: CLOCKS_INSERT_FROM_JSON, row: slaStore.row(t.id, t.workspaceId, clocks) } };
    },

    async changed(db, before, after, at) {
      const { clocks, rules: oldRules } = await clocksOf(db, before);
      const rules = before.priority !== after.priority || before.teamId !== after.teamId ? await rulesFor(db, after) : oldRules;
      let step: Step = { clocks, marks: [] };
      if (rules !== oldRules) step = rulesChanged(step.clocks, rules, after.createdAt, before.status, at);
      if (after.status !== before.status) {
        const moved = statusMoved(step.clocks, rules, after.createdAt, before.status, after.status, at);
        step = { clocks: moved.clocks, marks: [...step.marks, ...moved.marks] };
        // The last resolution counts; a reopened ticket is unresolved until it is resolved again.
        if (after.status === 'resolved') await metrics.recordResolution(db, await fact(db, after, after.resolvedAt ?? at, rules, after.assigneeId));
        else if (before.status === 'resolved' && after.status !== 'closed') await metrics.clearResolution(db, after.id);
      }
      return settle(db, after, step, at);
    },

    async agentReplied(db, t, at, by = null) {
      const { clocks, rules } = await clocksOf(db, t);
      if (t.firstResponseAt === null || t.firstResponseAt > at) await metrics.recordFirstResponse(db, await fact(db, t, at, rules, by ?? t.assigneeId));
      if (clocks.nextStartedAt && clocks.nextDueAt) {
        await metrics.recordNextResponse(db, { ticketId: t.id, workspaceId: t.workspaceId, cycle: clocks.nextCycle, dueAt: clocks.nextDueAt, answeredAt: at });
      }
      return settle(db, t, agentReplied(clocks, rules, t.createdAt, at), at);
    },

    async customerWrote(db, t, at) {
      const { clocks, rules } = await clocksOf(db, t);
      const step = customerWrote(clocks, rules, t.createdAt, at, t.firstResponseAt !== null);
      return step.clocks === clocks ? null : settle(db, t, step, at);
    },
  };

  return {
    ticketPort,

    /**
     * One sweep: records every warning and breach that came due by `now`, in batches of
     * `batchSize` tickets, each batch one transaction. Returns how many tickets it looked at
     * and how many marks it recorded.
     */
    async sweep(db: Knex, now: Date, opts: { batchSize?: number; maxBatches?: number; signal?: AbortSignal } = {}): Promise<{ tickets: number; marks: number }> {
      const batchSize = opts.batchSize ?? 1000;
      let swept = 0;
      let recorded = 0;
      for (let batch = 0; batch < (opts.maxBatches ?? 100); batch++) {
        if (opts.signal?.aborted) break; // stopping, or another replica may sweep now: leave the rest to it
        const ids = await slaStore.dueTicketIds(db, now, batchSize);
        if (!ids.length) break;
        const done = await inTransaction(db, async (tx) => {
          const locked = await tickets.lockForSla(tx, ids);
          const results = await slaStore.sweep(tx, locked, now);
          const views = await tickets.applySlaMarks(tx, results.map((r) => ({ id: r.ticketId, atRisk: r.atRisk, marks: r.marks.map(toSlaMark) })));
          const byWorkspace = new Map<string, ReturnType<typeof slaEvents>>();
          const marksOf = new Map(results.map((r) => [r.ticketId, r.marks]));
          for (const v of views) {
            const events = slaEvents(v.ticket, v.contact, (marksOf.get(v.ticket.id) ?? []).map(toSlaMark));
            byWorkspace.set(v.ticket.workspaceId, [...(byWorkspace.get(v.ticket.workspaceId) ?? []), ...events]);
          }
          for (const [ws, events] of byWorkspace) await eventOutbox.record(tx, ws, now, events);
          await queueNotices(tx, views.map((v) => ({ ticket: v.ticket, marks: marksOf.get(v.ticket.id) ?? [] })));
          return { locked: locked.length, marks: results.reduce((n, r) => n + r.marks.length, 0) };
        });
        swept += done.locked;
        recorded += done.marks;
        // Everything due is in use elsewhere, or this was the last batch: the next sweep goes on.
        if (done.locked === 0 || ids.length < batchSize) break;
      }
      return { tickets: swept, marks: recorded };
    },

    /**
     * The text of a queued notice, rendered when it is sent: per target the worst of its marks
     * (a breach over a warning), leaving out warnings of targets met since. Null: nothing to say.
     */
    async noticeText(db: Db, workspaceId: string, ticketId: string, marks: NoticeMark[], now: Date = clock.now()): Promise<string | null> {
      const t = await tickets.find(db, workspaceId, ticketId);
      if (!t || t.status === 'closed') return null;
      const due: Record<SlaTarget, Date | null> = { first_response: t.firstResponseAt ? null : t.firstResponseDueAt, next_response: t.nextResponseDueAt, resolution: t.resolvedAt && t.status === 'resolved' ? null : t.resolutionDueAt };
      const worst = new Map<SlaTarget, NoticeMark>();
      for (const m of marks) if (!worst.has(m.target) || m.kind === 'breach') worst.set(m.target, m);
      const lines: string[] = [];
      for (const [target, m] of worst) {
        if (m.kind === 'breach') lines.push(`🔴 ${TARGET_WORDS[target]} overdue`);
        else if (due[target] && due[target]!.getTime() === Date.parse(m.due_at)) {
          const left = due[target]!.getTime() - now.getTime();
          lines.push(left > 0 ? `⚠️ ${TARGET_WORDS[target]} due in ${span(left)}` : `🔴 ${TARGET_WORDS[target]} overdue`);
        }
      }
      return lines.length ? `${lines.join(' · ')} (#${t.number})` : null;
    },

    /** Breaches of a target whose due time fell in [from, to) (the metrics module's SLA compliance). */
    breachesDue: (db: Db, workspaceId: string, target: SlaTarget, from: Date, to: Date) => slaStore.breachesDue(db, workspaceId, target, from, to),

    /** A ticket's marks, oldest first (what its warnings and breaches come from). */
    marksOf: (db: Db, ticketId: string) => slaStore.marksOf(db, ticketId),
  };
}

export type SlaService = ReturnType<typeof createSlaService>;
