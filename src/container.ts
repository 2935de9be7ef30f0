/** The one place things are constructed: plain functions, no framework. */
import type { Config } from './config.js';
import type { Knex } from './db/knex.js';
import type { Clock } from './lib/clock.js';
import type { Logger } from './lib/logger.js';
import { createApiKeyService } from './auth/api-key-service.js';
import { createWorkspaceService } from './workspaces/workspace-service.js';
import { createContactService } from './contacts/contact-service.js';
import { createMessageService } from './messages/message-service.js';
import { createTicketService, type TicketNotes } from './tickets/ticket-service.js';
import { createWebhookService } from './webhooks/webhook-service.js';
import { createAgentService } from './agents/agent-service.js';
import { createAssignmentService } from './assignment/assignment-service.js';
import { createQueueService } from './assignment/queue-service.js';
import { createMetricsService } from './metrics/metrics-service.js';
import { createTopicService } from './topics/topic-service.js';
import { createAccountService } from './accounts/account-service.js';
import { createCannedService } from './canned/canned-service.js';
import { createSlaService } from './sla/sla-service.js';
import type { TicketSla } from './tickets/ticket-sla.js';
import { createIntakeFormService } from './intake/intake-form-service.js';
import { createSlaPolicyService } from './sla/sla-policy-service.js';
import { createEscalationService } from './escalation/escalation-service.js';
import { createDashboardService } from './dashboard/dashboard-service.js';
import { createDigestService } from './digest/digest-service.js';

export interface Deps {
  config: Config;
  db: Knex;
  logger: Logger;
  clock: Clock;
}

export function createServices(deps: Deps) {
  const { clock } = deps;
  // A renamed workspace shows at once in its keys' requests on this replica (bound late: keys build on workspaces).
  const workspaces = createWorkspaceService({ clock, onUpdated: (id) => apiKeys.forgetWorkspace(id) });
  const contacts = createContactService({ clock });
  // Tickets post notes through messages, and messages build on tickets: the port is bound late.
  const notes = { add: (...args: Parameters<TicketNotes['add']>) => messages.addNote(...args) };
  // Agents show their open tickets, which the tickets module counts (and tickets build on agents): bound late too.
  const agents = createAgentService({ clock, openTicketCounts: (...args) => tickets.openCounts(...args) });
  const accounts = createAccountService({ clock, telegram: deps.config.telegram });
  // Tickets move SLA clocks in every change, and the sla module builds on tickets: bound late.
  const slaPort: TicketSla = {
    planNew: (...args) => sla.ticketPort.planNew(...args),
    changed: (...args) => sla.ticketPort.changed(...args),
    agentReplied: (...args) => sla.ticketPort.agentReplied(...args),
    customerWrote: (...args) => sla.ticketPort.customerWrote(...args),
  };
  const tickets = createTicketService({ clock, contacts, agents, accounts, notes, sla: slaPort });
  const slaPolicies = createSlaPolicyService({ clock, agents });
  // The sla module records the metrics facts (it knows each ticket's calendar); metrics reads
  // next-response breaches from the sla module's marks: that way back is bound late.
  const metrics = createMetricsService({ clock, agents, workspaces, slaBreaches: { breachesDue: (...args) => sla.breachesDue(...args) } });
  const sla = createSlaService({ clock, tickets, policies: slaPolicies, workspaces, metrics });
  const canned = createCannedService({ clock, tickets, agents, workspaces });
  const messages = createMessageService({ clock, contacts, tickets, accounts, workspaces, canned });
  const topics = createTopicService({ tickets, agents, accounts });
  const assignment = createAssignmentService({ clock, tickets, agents });
  const escalations = createEscalationService({
    clock, tickets, assignment, agents, canned, workspaces, maxFiringsPerTicketPerHour: deps.config.escalation.maxFiringsPerTicketPerHour,
  });
  const apiKeys = createApiKeyService({
    clock, db: deps.db, rotationOverlapHours: deps.config.apiKeys.rotationOverlapHours, defaultRateLimitPerMinute: deps.config.rateLimit.defaultPerMinute,
    lastUsedWriteIntervalSeconds: deps.config.apiKeys.lastUsedWriteIntervalSeconds, leaseMaxAgeMs: deps.config.apiKeys.leaseMaxAgeMs, workspaces,
  });
  return {
    workspaces,
    apiKeys,
    contacts,
    tickets,
    messages,
    canned,
    webhooks: createWebhookService({ clock, config: deps.config.webhooks }),
    accounts,
    agents,
    topics,
    assignment,
    queues: createQueueService({ tickets, agents }),
    metrics,
    intakeForms: createIntakeFormService({ clock }),
    slaPolicies,
    sla,
    escalations,
    dashboard: createDashboardService({ clock, publicUrl: deps.config.publicUrl, agents, apiKeys, workspaces }),
    digest: createDigestService({ metrics, tickets, accounts, workspaces }),
  };
}

export type Services = ReturnType<typeof createServices>;
