/**
 * Pure rules of escalation (SPEC §5): whether a rule's conditions hold for a ticket at a
 * moment, which statuses a rule covers, and the ids a rule names. No I/O.
 */
import type { TicketStatus } from '../tickets/ticket-status.js';
import type { ActionJson, ConditionsJson } from './escalation-schemas.js';

export type Conditions = ConditionsJson;
export type Action = ActionJson;

/** What the conditions read of a ticket (and its customer). */
export interface Subject {
  status: TicketStatus;
  priority: string;
  teamId: string | null;
  assigneeId: string | null;
  unassignedSince: Date | null;
  slaAtRisk: boolean;
  slaBreached: boolean;
  archivedAt: Date | null;
  createdAt: Date;
  contactTags: readonly string[];
}

/** Without status_in a rule covers unfinished work only: escalating a resolved or closed ticket helps nobody. */
export const DEFAULT_STATUSES: readonly TicketStatus[] = ['open', 'in_progress', 'waiting_on_customer'];

export const statusesOf = (c: Conditions): readonly TicketStatus[] => c.status_in ?? DEFAULT_STATUSES;

const MINUTE = 60_000;

/** Every given condition holds at `now` (strictly more than the minutes given, for the time ones). */
export function holds(c: Conditions, s: Subject, now: Date): boolean {
  if (s.archivedAt !== null) return false;
  if (!statusesOf(c).includes(s.status)) return false;
  if (c.priority_in && !(c.priority_in as readonly string[]).includes(s.priority)) return false;
  if (c.team_id_in && !(c.team_id_in as readonly (string | null)[]).includes(s.teamId)) return false;
  if (c.sla === 'warning' && !s.slaAtRisk) return false;
  if (c.sla === 'breached' && !s.slaBreached) return false;
  if (c.age_minutes_gt !== undefined && !(now.getTime() - s.createdAt.getTime() > c.age_minutes_gt * MINUTE)) return false;
  if (c.contact_tag_in) {
    const tags = new Set(s.contactTags.map((t) => t.toLowerCase()));
    if (!c.contact_tag_in.some((t) => tags.has(t.trim().toLowerCase()))) return false;
  }
  if (c.unassigned_for_minutes_gt !== undefined) {
    if (s.assigneeId !== null || s.unassignedSince === null) return false;
    if (!(now.getTime() - s.unassignedSince.getTime() > c.unassigned_for_minutes_gt * MINUTE)) return false;
  }
  return true;
}

/** Where in a body each team and agent id sits (for 422/404 naming the field). */
export function idsNamed(c: Conditions | undefined, actions: readonly Action[] | undefined): { teams: { field: string; id: string }[]; agents: { field: string; id: string }[] } {
  const teams: { field: string; id: string }[] = [];
  const agents: { field: string; id: string }[] = [];
  (c?.team_id_in ?? []).forEach((id, i) => { if (id !== null) teams.push({ field: `conditions.team_id_in[${i}]`, id }); });
  (actions ?? []).forEach((a, i) => {
    if (a.type === 'assign_team') teams.push({ field: `actions[${i}].team_id`, id: a.team_id });
    if (a.type === 'assign_agent') agents.push({ field: `actions[${i}].agent_id`, id: a.agent_id });
  });
  return { teams, agents };
}

/** Contact tags are compared as stored (trimmed, lower case). */
export function normalizeConditions(c: Conditions): Conditions {
  return c.contact_tag_in ? { ...c, contact_tag_in: [...new Set(c.contact_tag_in.map((t) => t.trim().toLowerCase()))] } : c;
}
