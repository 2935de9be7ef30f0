/**
 * Canned responses (SPEC §4.5). Invariants:
 * - a title or body is a template over CANNED_VARIABLES only: an unknown name is refused when
 *   written (422 naming it), so rendering never meets one;
 * - every change of title or body is a new version, numbered under the row's lock: two
 *   concurrent PATCHes make two versions and neither change is lost;
 * - DELETE archives: the row and its versions stay, it is not found any more, and its shortcut
 *   is free for a new response;
 * - rendering reads the ticket, its customer, the agent and the workspace through their
 *   services; `use` renders for sending and counts the use in the same transaction.
 */
import type { AgentService } from '../agents/agent-service.js';
import type { Db } from '../db/knex.js';
import type { Actor } from '../kernel/actor.js';
import { AppError, notFound } from '../kernel/errors.js';
import type { Page, PageRequest } from '../kernel/pagination.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { renderTemplate, type Rendered } from '../lib/template.js';
import type { TicketService } from '../tickets/ticket-service.js';
import type { WorkspaceService } from '../workspaces/workspace-service.js';
import { closestShortcuts, templateErrors } from './canned.js';
import type { CreateCannedBody, ListCannedQuery, PatchCannedBody } from './canned-schemas.js';
import { cannedStore, type CannedResponse, type CannedVersion } from './canned-store.js';
import { cannedValues } from './canned-variables.js';

const isShortcutTaken = (err: unknown) => {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23505' && e.constraint === 'canned_responses_shortcut';
};

const taken = (shortcut: string) =>
  new AppError('conflict', `A canned response with the shortcut "${shortcut}" already exists`, { details: [{ field: 'shortcut', error: 'is taken', received: shortcut }] });

function checkTemplates(fields: { title?: string; body?: string }): void {
  const details = templateErrors(fields);
  if (!details.length) return;
  const first = details[0];
  throw new AppError('validation_error', `The ${first.field} ${first.error}`, { details });
}

export function createCannedService(deps: { clock: Clock; tickets: TicketService; agents: AgentService; workspaces: WorkspaceService }) {
  const { clock, tickets, agents, workspaces } = deps;

  async function require(db: Db, workspaceId: string, id: string, opts: { forUpdate?: boolean } = {}): Promise<CannedResponse> {
    const c = await cannedStore.find(db, workspaceId, id, opts);
    if (!c) throw notFound('Canned response');
    return c;
  }

  async function requireTeam(db: Db, workspaceId: string, teamId: string | null | undefined): Promise<void> {
    if (teamId) await agents.requireTeam(db, workspaceId, teamId);
  }

  async function withShortcut<T>(shortcut: string | undefined, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      if (isShortcutTaken(err)) throw taken(shortcut ?? '');
      throw err;
    }
  }

  /**
   * A template rendered for a ticket: its customer, number and subject, the workspace, and the
   * agent named (else the ticket's assignee, else nobody).
   */
  async function renderForTicket(db: Db, workspaceId: string, text: string, ticketId: string, agentId?: string | null): Promise<Rendered> {
    const { ticket, contact } = await tickets.get(db, workspaceId, ticketId);
    const agentOf = agentId ?? ticket.assigneeId;
    const agent = agentOf ? await agents.findById(db, workspaceId, agentOf) : null;
    if (agentId && !agent) throw notFound('Agent');
    const workspace = await workspaces.get(db, workspaceId);
    return renderTemplate(text, cannedValues({ contact, ticket, agent, workspace }));
  }

  return {
    renderForTicket,

    async create(db: Db, workspaceId: string, body: CreateCannedBody, actor: Actor): Promise<CannedResponse> {
      checkTemplates(body);
      await requireTeam(db, workspaceId, body.team_id);
      const at = clock.now();
      const created = await withShortcut(body.shortcut, () => cannedStore.insert(db, {
        id: newId('cr'), workspaceId, shortcut: body.shortcut, title: body.title, body: body.body, category: body.category ?? null,
        teamId: body.team_id ?? null, version: 1, usageCount: 0, createdAt: at, updatedAt: at,
      }));
      await cannedStore.insertVersion(db, created.id, { version: 1, title: created.title, body: created.body, createdAt: at, actor });
      return created;
    },

    get: (db: Db, workspaceId: string, id: string): Promise<CannedResponse> => require(db, workspaceId, id),

    list: (db: Db, workspaceId: string, query: ListCannedQuery & PageRequest): Promise<Page<CannedResponse>> =>
      cannedStore.list(db, workspaceId, { teamId: query.team_id, category: query.category, q: query.q }, query),

    /** A new version when title or body changes; shortcut, category and team change in place. */
    async update(db: Db, workspaceId: string, id: string, body: PatchCannedBody, actor: Actor): Promise<CannedResponse> {
      checkTemplates(body);
      const current = await require(db, workspaceId, id, { forUpdate: true });
      await requireTeam(db, workspaceId, body.team_id);
      const title = body.title ?? current.title;
      const text = body.body ?? current.body;
      const newVersion = title !== current.title || text !== current.body;
      const version = newVersion ? current.version + 1 : current.version;
      const at = clock.now();
      const updated = await withShortcut(body.shortcut, () => cannedStore.update(db, id, {
        shortcut: body.shortcut, title, body: text, category: body.category, teamId: body.team_id, version,
      }, at));
      if (newVersion) await cannedStore.insertVersion(db, id, { version, title, body: text, createdAt: at, actor });
      return updated;
    },

    async archive(db: Db, workspaceId: string, id: string): Promise<void> {
      if (!(await cannedStore.archive(db, workspaceId, id, clock.now()))) throw notFound('Canned response');
    },

    async versions(db: Db, workspaceId: string, id: string, page: PageRequest): Promise<Page<CannedVersion>> {
      await require(db, workspaceId, id);
      return cannedStore.listVersions(db, id, page);
    },

    /** POST …/render: the body for a ticket, and which variables came out empty. */
    async render(db: Db, workspaceId: string, id: string, r: { ticketId: string; agentId?: string }): Promise<Rendered> {
      const c = await require(db, workspaceId, id);
      return renderForTicket(db, workspaceId, c.body, r.ticketId, r.agentId);
    },

    /** The body rendered for sending on a ticket; the use is counted (with the caller's transaction). */
    async use(db: Db, workspaceId: string, id: string, ticketId: string, agentId: string | null): Promise<Rendered & { canned: CannedResponse }> {
      const canned = await require(db, workspaceId, id);
      const rendered = await renderForTicket(db, workspaceId, canned.body, ticketId, agentId);
      await cannedStore.countUse(db, workspaceId, id);
      return { ...rendered, canned };
    },

    /** A use made from a preview rendered earlier (Telegram's Send button). */
    countUse: (db: Db, workspaceId: string, id: string): Promise<void> => cannedStore.countUse(db, workspaceId, id),

    findByShortcut: (db: Db, workspaceId: string, shortcut: string): Promise<CannedResponse | null> =>
      cannedStore.findByShortcut(db, workspaceId, shortcut.toLowerCase()),

    /** The most used that a ticket of `teamId` may use (the team's and the workspace-wide). */
    mostUsedFor: (db: Db, workspaceId: string, teamId: string | null, limit: number): Promise<CannedResponse[]> =>
      cannedStore.usableFor(db, workspaceId, teamId, limit),

    /** Up to three usable shortcuts close to a mistyped one. */
    async closestTo(db: Db, workspaceId: string, teamId: string | null, given: string): Promise<string[]> {
      return closestShortcuts(given, await cannedStore.usableShortcuts(db, workspaceId, teamId));
    },
  };
}

export type CannedService = ReturnType<typeof createCannedService>;
