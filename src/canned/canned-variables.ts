/**
 * The variables a canned response (and an escalation notice) may use, and their values for a
 * ticket. Pure: the service gathers the ticket, contact, agent and workspace; this turns them
 * into the Map the template engine reads, which holds these names and nothing else.
 */
export const CANNED_VARIABLES = [
  'customer_name', 'customer_first_name', 'ticket_number', 'ticket_subject', 'agent_name', 'agent_first_name', 'workspace_name',
] as const;

export type CannedVariable = (typeof CANNED_VARIABLES)[number];

export interface VariableSources {
  contact: { name: string | null; firstName: string | null; lastName: string | null };
  ticket: { number: number; subject: string };
  /** The agent the reply speaks for; null = nobody (their variables are empty). */
  agent: { name: string } | null;
  workspace: { name: string };
}

const firstWord = (s: string | null | undefined) => s?.trim().split(/\s+/)[0] ?? null;

export function cannedValues(s: VariableSources): ReadonlyMap<CannedVariable, string | null> {
  const fullName = s.contact.name?.trim() || [s.contact.firstName, s.contact.lastName].filter(Boolean).join(' ').trim() || null;
  return new Map<CannedVariable, string | null>([
    ['customer_name', fullName],
    ['customer_first_name', s.contact.firstName?.trim() || firstWord(fullName)],
    ['ticket_number', String(s.ticket.number)],
    ['ticket_subject', s.ticket.subject],
    ['agent_name', s.agent?.name ?? null],
    ['agent_first_name', firstWord(s.agent?.name)],
    ['workspace_name', s.workspace.name],
  ]);
}
