/**
 * Which agent gets a ticket (SPEC §4.4), as pure functions over a snapshot of the candidates.
 * The database side (assignment-service.ts) takes the locks that make the snapshot true at
 * the moment of the pick; everything deciding *who* lives here and is unit-tested directly.
 */

export type Strategy = 'round_robin' | 'least_loaded' | 'skills';
export const STRATEGIES: readonly Strategy[] = ['round_robin', 'least_loaded', 'skills'];

/** An agent as a pick sees it. */
export interface Candidate {
  id: string;
  active: boolean;
  skills: string[];
  /** null: no cap. */
  maxOpenTickets: number | null;
  openTickets: number;
  lastAssignedAt: Date | null;
}

/** What a pick needs to know of the ticket. */
export interface TicketTraits {
  category: string | null;
  tags: string[];
}

export const hasRoom = (a: Candidate): boolean => a.maxOpenTickets === null || a.openTickets < a.maxOpenTickets;

/** Active and under capacity (team membership is decided by who the candidates are). */
export function eligible(candidates: readonly Candidate[]): Candidate[] {
  return candidates.filter((a) => a.active && hasRoom(a));
}

/** The skills a ticket asks for: its category and every `skill:<name>` tag. */
export function requiredSkills(t: TicketTraits): string[] {
  const skills = t.tags.filter((tag) => tag.startsWith('skill:')).map((tag) => tag.slice('skill:'.length)).filter(Boolean);
  if (t.category) skills.push(t.category);
  return [...new Set(skills.map((s) => s.toLowerCase()))];
}

const byId = (a: Candidate, b: Candidate) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The next eligible agent after `lastAgentId` in id order, wrapping around. */
export function pickRoundRobin(pool: readonly Candidate[], lastAgentId: string | null): Candidate | null {
  const ordered = [...pool].sort(byId);
  if (!ordered.length) return null;
  return ordered.find((a) => lastAgentId === null || a.id > lastAgentId) ?? ordered[0];
}

/** Fewest open tickets; ties: the longest since their last assignment (never first), then id. */
export function pickLeastLoaded(pool: readonly Candidate[]): Candidate | null {
  const since = (a: Candidate) => a.lastAssignedAt?.getTime() ?? -Infinity;
  return [...pool].sort((a, b) => a.openTickets - b.openTickets || since(a) - since(b) || byId(a, b))[0] ?? null;
}

/** Agents with every required skill (case-insensitive); among them the least loaded. */
export function pickBySkills(pool: readonly Candidate[], t: TicketTraits): Candidate | null {
  const needed = requiredSkills(t);
  const skilled = pool.filter((a) => {
    const has = new Set(a.skills.map((s) => s.toLowerCase()));
    return needed.every((s) => has.has(s));
  });
  return pickLeastLoaded(skilled);
}

/** The pick of `strategy` among the eligible candidates; null = no agent available. */
export function pick(strategy: Strategy, candidates: readonly Candidate[], t: TicketTraits, lastAgentId: string | null): Candidate | null {
  const pool = eligible(candidates);
  switch (strategy) {
    case 'round_robin': return pickRoundRobin(pool, lastAgentId);
    case 'least_loaded': return pickLeastLoaded(pool);
    case 'skills': return pickBySkills(pool, t);
  }
}
