/**
 * A ticket's SLA clocks as pure state transitions (SPEC §5). Three targets:
 * - first response: from created_at until the first public agent reply; never pauses;
 * - next response (optional): from a customer message that arrives after an agent replied,
 *   until the next public agent reply; each such wait is a new cycle;
 * - resolution: from created_at until resolved; optionally paused while waiting on the
 *   customer (the due time moves later by the paused business time); a reopen continues it.
 * Durations are business time of the policy's calendar (wall time without one). The state
 * keeps when each clock started and the business time already elapsed, never due times
 * alone, so a new priority or policy recomputes due times from history. A transition returns
 * the breaches it reveals (a target met late is a breach at its due time); the sweep
 * (sla-store.ts, in SQL) records warnings and breaches whose moment came. Each is recorded
 * once per ticket, target and cycle.
 */
import type { TicketStatus } from '../tickets/ticket-status.js';
import { addBusinessMinutes, businessSecondsBetween, type BusinessHours } from './business-time.js';

export type SlaTarget = 'first_response' | 'next_response' | 'resolution';

/** What a policy asks of one priority. */
export interface ClockRules {
  policyId: string;
  calendar: BusinessHours | null;
  warnAtPercent: number;
  pauseWhileWaiting: boolean;
  firstResponseMinutes: number;
  nextResponseMinutes: number | null;
  resolutionMinutes: number;
}

export interface Clocks {
  policyId: string | null;
  /** First response given, or the ticket stopped needing one (resolved or closed). */
  firstDone: boolean;
  firstWarned: boolean;
  firstBreached: boolean;
  /** Next response: the current cycle (0 = none yet) and when it started (null: not running). */
  nextCycle: number;
  nextStartedAt: Date | null;
  nextWarned: boolean;
  nextBreached: boolean;
  /** Resolution: business ms elapsed before resRunningSince (null: paused or stopped). */
  resElapsedMs: number;
  resRunningSince: Date | null;
  resDone: boolean;
  resWarned: boolean;
  resBreached: boolean;
  firstWarnAt: Date | null;
  firstDueAt: Date | null;
  nextWarnAt: Date | null;
  nextDueAt: Date | null;
  resWarnAt: Date | null;
  resDueAt: Date | null;
  /** The earliest warning or due moment not yet recorded: when the sweep must look again. */
  checkAt: Date | null;
}

export interface Mark {
  target: SlaTarget;
  cycle: number;
  kind: 'warning' | 'breach';
  /** When it happened: the warning point or the due time (not when it was noticed). */
  at: Date;
  dueAt: Date;
}

export interface Step {
  clocks: Clocks;
  marks: Mark[];
}

const ACTIVE: readonly TicketStatus[] = ['open', 'in_progress', 'waiting_on_customer'];

const add = (from: Date, minutes: number, rules: ClockRules) => addBusinessMinutes(from, Math.max(0, minutes), rules.calendar);
const elapsedMs = (a: Date, b: Date, rules: ClockRules | null) => Math.max(0, businessSecondsBetween(a, b, rules?.calendar ?? null) * 1000);
const earliest = (dates: (Date | null)[]) => dates.reduce<Date | null>((min, d) => (d && (!min || d < min) ? d : min), null);

/** Clocks of a new ticket: first response and resolution start at its creation. */
export function startClocks(rules: ClockRules | null, createdAt: Date): Clocks {
  return withMoments({
    policyId: rules?.policyId ?? null,
    firstDone: false, firstWarned: false, firstBreached: false,
    nextCycle: 0, nextStartedAt: null, nextWarned: false, nextBreached: false,
    resElapsedMs: 0, resRunningSince: createdAt, resDone: false, resWarned: false, resBreached: false,
    firstWarnAt: null, firstDueAt: null, nextWarnAt: null, nextDueAt: null, resWarnAt: null, resDueAt: null, checkAt: null,
  }, rules, createdAt);
}

/**
 * Due and warning moments from the clocks' history under `rules` (a new priority or policy
 * included). A met first response and a resolved ticket keep the due times they had.
 */
export function withMoments(c: Clocks, rules: ClockRules | null, createdAt: Date): Clocks {
  const out: Clocks = { ...c, policyId: rules?.policyId ?? null };
  if (!rules) {
    Object.assign(out, { firstWarnAt: null, firstDueAt: null, nextWarnAt: null, nextDueAt: null, resWarnAt: null, resDueAt: null, checkAt: null });
    return out;
  }
  const part = rules.warnAtPercent / 100;
  if (!c.firstDone) {
    out.firstDueAt = add(createdAt, rules.firstResponseMinutes, rules);
    out.firstWarnAt = add(createdAt, rules.firstResponseMinutes * part, rules);
  }
  if (c.nextStartedAt && rules.nextResponseMinutes !== null) {
    out.nextDueAt = add(c.nextStartedAt, rules.nextResponseMinutes, rules);
    out.nextWarnAt = add(c.nextStartedAt, rules.nextResponseMinutes * part, rules);
  } else {
    out.nextDueAt = null;
    out.nextWarnAt = null;
  }
  if (!c.resDone) {
    if (c.resRunningSince) {
      const elapsedMinutes = c.resElapsedMs / 60_000;
      out.resDueAt = add(c.resRunningSince, rules.resolutionMinutes - elapsedMinutes, rules);
      out.resWarnAt = add(c.resRunningSince, rules.resolutionMinutes * part - elapsedMinutes, rules);
    } else {
      // Paused: no due time until the clock runs again.
      out.resDueAt = null;
      out.resWarnAt = null;
    }
  }
  out.checkAt = earliest(pending(out).flatMap((p) => [p.warned ? null : p.warnAt, p.breached ? null : p.dueAt]));
  return out;
}

interface Pending {
  target: SlaTarget;
  cycle: number;
  warnAt: Date | null;
  dueAt: Date | null;
  warned: boolean;
  breached: boolean;
}

/** The targets whose clocks run now. */
function pending(c: Clocks): Pending[] {
  if (!c.policyId) return [];
  const out: Pending[] = [];
  if (!c.firstDone && c.firstDueAt) out.push({ target: 'first_response', cycle: 0, warnAt: c.firstWarnAt, dueAt: c.firstDueAt, warned: c.firstWarned, breached: c.firstBreached });
  if (c.nextStartedAt && c.nextDueAt) out.push({ target: 'next_response', cycle: c.nextCycle, warnAt: c.nextWarnAt, dueAt: c.nextDueAt, warned: c.nextWarned, breached: c.nextBreached });
  if (!c.resDone && c.resRunningSince && c.resDueAt) out.push({ target: 'resolution', cycle: 0, warnAt: c.resWarnAt, dueAt: c.resDueAt, warned: c.resWarned, breached: c.resBreached });
  return out;
}

/** Records marks on the clocks' flags (the caller stores the marks themselves). */
function flag(c: Clocks, marks: Mark[]): Clocks {
  const out = { ...c };
  const has = (target: SlaTarget, kind: Mark['kind']) => marks.some((m) => m.target === target && m.kind === kind);
  out.firstWarned ||= has('first_response', 'warning');
  out.firstBreached ||= has('first_response', 'breach');
  out.nextWarned ||= has('next_response', 'warning');
  out.nextBreached ||= has('next_response', 'breach');
  out.resWarned ||= has('resolution', 'warning');
  out.resBreached ||= has('resolution', 'breach');
  return out;
}

/** A target that stops at `at` after its due time was breached then, if nobody noticed yet. */
function lateBreach(p: Pending | undefined, at: Date): Mark[] {
  return p && !p.breached && p.dueAt && p.dueAt < at ? [{ target: p.target, cycle: p.cycle, kind: 'breach', at: p.dueAt, dueAt: p.dueAt }] : [];
}

const find = (c: Clocks, target: SlaTarget) => pending(c).find((p) => p.target === target);

/** A public agent reply reached the customer: first response and the running next response are met. */
export function agentReplied(c: Clocks, rules: ClockRules | null, createdAt: Date, at: Date): Step {
  const marks = [...(c.firstDone ? [] : lateBreach(find(c, 'first_response'), at)), ...lateBreach(find(c, 'next_response'), at)];
  const next = flag({ ...c, firstDone: true, nextStartedAt: null }, marks);
  return { clocks: withMoments(next, rules, createdAt), marks };
}

/** A customer message: starts a next-response cycle when an agent has answered before and none runs. */
export function customerWrote(c: Clocks, rules: ClockRules | null, createdAt: Date, at: Date, answeredBefore: boolean): Step {
  if (!rules?.nextResponseMinutes || !answeredBefore || c.nextStartedAt) return { clocks: c, marks: [] };
  const next = { ...c, nextCycle: c.nextCycle + 1, nextStartedAt: at, nextWarned: false, nextBreached: false };
  return { clocks: withMoments(next, rules, createdAt), marks: [] };
}

/**
 * A status move at `at`. Resolving meets resolution and stops the other clocks; closing stops
 * everything; waiting on the customer pauses resolution when the policy says so; moving out of
 * waiting, or reopening, runs it again from where it stopped.
 */
export function statusMoved(c: Clocks, rules: ClockRules | null, createdAt: Date, from: TicketStatus, to: TicketStatus, at: Date): Step {
  const running = (x: Clocks) => (x.resRunningSince ? { ...x, resElapsedMs: x.resElapsedMs + elapsedMs(x.resRunningSince, at, rules), resRunningSince: null } : x);
  let next = { ...c };
  let marks: Mark[] = [];
  if (!ACTIVE.includes(to)) {
    marks = [...lateBreach(find(c, 'first_response'), at), ...lateBreach(find(c, 'next_response'), at), ...lateBreach(find(c, 'resolution'), at)];
    next = { ...running(next), firstDone: true, nextStartedAt: null, resDone: true };
  } else if (!ACTIVE.includes(from)) {
    // Reopened: resolution continues where it stopped (first response stays settled).
    next = { ...next, resDone: false, resRunningSince: to === 'waiting_on_customer' && rules?.pauseWhileWaiting ? null : at };
  } else if (to === 'waiting_on_customer' && rules?.pauseWhileWaiting) {
    next = running(next);
  } else if (from === 'waiting_on_customer' && !next.resDone && !next.resRunningSince) {
    next = { ...next, resRunningSince: at };
  }
  return { clocks: withMoments(flag(next, marks), rules, createdAt), marks };
}

/**
 * Another priority or policy (a team change): due times recomputed from history; with
 * pauses ruled differently, a paused resolution clock runs again (or pauses) from `at`.
 */
export function rulesChanged(c: Clocks, rules: ClockRules | null, createdAt: Date, status: TicketStatus, at: Date): Step {
  let next = { ...c };
  if (!next.resDone) {
    const shouldRun = ACTIVE.includes(status) && !(status === 'waiting_on_customer' && rules?.pauseWhileWaiting);
    if (shouldRun && !next.resRunningSince) next = { ...next, resRunningSince: at };
    if (!shouldRun && next.resRunningSince) next = { ...next, resElapsedMs: next.resElapsedMs + elapsedMs(next.resRunningSince, at, rules), resRunningSince: null };
  }
  return { clocks: withMoments(next, rules, createdAt), marks: [] };
}

/** What the ticket shows of its clocks (SPEC §5 `sla`), apart from the recorded marks. */
export interface ClockView {
  policyId: string | null;
  firstResponseDueAt: Date | null;
  nextResponseDueAt: Date | null;
  resolutionDueAt: Date | null;
  paused: boolean;
  /** The earliest due time of a running target ('infinity' when none: the sla_due sort). */
  dueAt: Date | null;
  /** A running target past its warning point and not breached. */
  atRisk: boolean;
}

export function viewOf(c: Clocks): ClockView {
  const running = pending(c);
  return {
    policyId: c.policyId,
    firstResponseDueAt: c.policyId ? c.firstDueAt : null,
    nextResponseDueAt: c.policyId ? c.nextDueAt : null,
    resolutionDueAt: c.policyId ? c.resDueAt : null,
    paused: !!c.policyId && !c.resDone && !c.resRunningSince,
    dueAt: earliest(running.map((p) => p.dueAt)),
    atRisk: running.some((p) => p.warned && !p.breached),
  };
}
